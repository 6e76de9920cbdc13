//! Every rule of when a lesson is due, and of what number it has, in one place.
//!
//! - [`window`]: the window math (a cron window or `immediate`, `after_days`, daylight
//!   saving), read in the subscriber's time zone.
//! - [`progression`]: a course's lessons as a [`Syllabus`]: the first lesson on
//!   confirmation, the next after a send or a reply (`wait_for_reply`, `max_wait_days`),
//!   where a resumed or moved subscriber picks up, a time-zone change, the lesson number.
//! - [`pacing`]: at most so many lessons on one local day per person, across courses.
//! - [`impact`]: what an edit or a reorder does to the people already planned.
//! - [`local_time`]: a broadcast's "HH:MM on each reader's clock".
//!
//! The scheduler, the sender, sign-up, resume, the reply pipeline, the admin's impact
//! preview and `drip simulate` all ask these functions; none works a due time out itself.
//! Nothing here reads the clock or the database: `now` and the rows are passed in.

pub mod impact;
pub mod local_time;
mod pacing;
mod progression;
mod window;

pub use impact::{Change, Impact};
pub use pacing::DailyLimit;
pub use progression::{AfterSend, Syllabus, next_published};
