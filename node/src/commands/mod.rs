//! Command table (implemented by the commands work item).
