//! The curriculum as files: `lessons/<course>/course.toml` and `NN-slug.md`, parsed in two
//! steps (raw TOML, then checked values), linted with every problem named by file and line,
//! synced into the database as revisions and exported back byte for byte.

pub mod edit;
mod load;
mod parse;
mod problem;
mod rules;
pub mod start;
mod sync;

pub use load::{course_dirs, duplicate_slugs, load_dir};
pub use parse::{CourseFile, LessonContent, LessonFile, parse_course, parse_lesson};
pub use problem::Problem;
pub(crate) use problem::line_of;
pub(crate) use rules::unknown_variables;
pub use rules::{after_days, check_broadcast_body, check_content, max_wait_days};
pub use sync::{SyncOutcome, SyncReport, export_course, sync_course};

use std::path::PathBuf;

/// A course folder read from disk: the course and its lessons in file order.
#[derive(Debug, Clone)]
pub struct CourseDir {
    pub dir: PathBuf,
    pub course: CourseFile,
    pub lessons: Vec<LessonFile>,
}
