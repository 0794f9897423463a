//! Workloads (stub).
