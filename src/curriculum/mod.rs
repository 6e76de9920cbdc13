//! The curriculum as files: `lessons/<course>/course.toml` and `NN-slug.md`, parsed in two
//! steps (raw TOML, then checked values), linted with every problem named by file and line,
//! synced into the database as revisions and exported back byte for byte.

mod lint;
mod parse;
mod sync;

pub use lint::{Problem, check_content, lint_dir};
pub use parse::{CourseFile, LessonContent, LessonFile, Window, parse_course, parse_lesson};
pub use sync::{SyncOutcome, SyncReport, export_course, sync_course};

use std::path::{Path, PathBuf};

/// A course folder read from disk: the course and its lessons in file order.
#[derive(Debug, Clone)]
pub struct CourseDir {
    pub dir: PathBuf,
    pub course: CourseFile,
    pub lessons: Vec<LessonFile>,
}

/// Reads and lints a course folder; any problem refuses the whole folder, so a sync never
/// loads half a course.
pub fn load_dir(dir: &Path) -> Result<CourseDir, Vec<Problem>> {
    lint_dir(dir)
}
