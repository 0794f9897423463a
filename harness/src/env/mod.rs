//! The environment of a run: network namespaces and links, the registry of everything
//! a run creates (and its clean-up), node processes, and the recorder that writes the
//! run folder's JSON-lines files. Imports nothing above it.

pub mod net;
pub mod process;
pub mod recorder;
pub mod registry;
pub mod stamp;
pub mod sys;
