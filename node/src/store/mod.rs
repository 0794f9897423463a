//! Keyspace (implemented by the store work item).
