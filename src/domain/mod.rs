//! Typed values that are parsed once at the edge and trusted everywhere after.

mod course;
mod email;
mod phase;
mod slug;
mod status;
mod timezone;
pub mod token;
mod window;

pub use course::{CoursePhase, Phases};
pub use email::EmailAddress;
pub use phase::Phase;
pub use slug::Slug;
pub use status::{
    Command, DeliveryKind, DeliveryStatus, EnrollmentStatus, LessonStatus, MatchedBy, ReplyKind,
    SubscriberStatus,
};
pub use timezone::Timezone;
pub use token::{Purpose, Signer};
pub use window::{Pace, SendWindow, WEEKDAYS, WindowKind};

/// Why an input was refused; `field` names what the user must fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidInput {
    pub field: &'static str,
    pub message: String,
}

impl InvalidInput {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        InvalidInput {
            field,
            message: message.into(),
        }
    }
}
