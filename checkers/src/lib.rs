//! Checkers (stub).
