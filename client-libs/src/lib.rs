//! Nothing to export: this crate holds end-to-end tests of client libraries
//! (`tests/`) against a hearsay-node cluster, so that their dependencies
//! (redis-rs, a Python venv with redis-py) stay out of the node itself.
