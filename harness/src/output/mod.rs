//! Views of run folders: summary.json and junit.xml, report.html and the results
//! index, compare and matrix tables. They read folders; they never call back into the
//! runner (only `cli/` imports this folder).

pub mod compare;
pub mod junit;
pub mod markup;
pub mod matrix;
pub mod report;
pub mod run_files;
pub mod scale;
pub mod summary;
