//! Typed values that are parsed once at the edge and trusted everywhere after.

mod admin;
mod course;
mod email;
mod language;
pub mod net;
mod phase;
mod slug;
mod status;
mod timezone;
pub mod token;
mod window;

pub use admin::{Action, Area, Role, SessionStage};
pub use course::{CoursePhase, Phases};
pub use email::EmailAddress;
pub use language::Language;
pub use net::IpNet;
pub use phase::Phase;
pub use slug::Slug;
pub use status::{
    Audience, Command, DeliveryKind, DeliveryStatus, EnrollmentStatus, LessonStatus, MatchedBy,
    ReplyKind, SubscriberStatus,
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
    /// Which refusal it is, where a subscriber may see it: the sign-up form and the
    /// preferences page say it in the course's language (`invalid.<field>.<reason>` in
    /// the catalogue). None where only the operator sees the message.
    pub reason: Option<&'static str>,
}

impl InvalidInput {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        InvalidInput {
            field,
            message: message.into(),
            reason: None,
        }
    }

    /// Names the refusal for the catalogue (see `reason`).
    pub fn because(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self
    }
}
