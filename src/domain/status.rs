//! The closed sets of states the database's CHECK constraints allow, as enums.
//!
//! Rows are read into these (a stored value outside the set is an error, never a silent
//! default), SQL binds [`as_str`](SubscriberStatus::as_str), and the rest of drip matches
//! on variants instead of comparing strings.

use std::fmt;

use super::InvalidInput;

/// Declares one status enum: its variants and their stored names, once.
macro_rules! status {
    ($(#[$meta:meta])* $name:ident, $field:literal { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn parse(text: &str) -> Result<$name, InvalidInput> {
                match text {
                    $($text => Ok($name::$variant),)+
                    other => Err(InvalidInput::new(
                        $field,
                        format!(
                            "{other:?} is not one of {}",
                            [$($text),+].join(", ")
                        ),
                    )),
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidInput;

            fn try_from(text: String) -> Result<$name, InvalidInput> {
                $name::parse(&text)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

status!(
    /// Where a person stands with this drip as a whole: never confirmed, confirmed (what
    /// they take, and whether it is paused, is each enrollment's), or out of everything.
    SubscriberStatus, "status" {
        Pending = "pending",
        Active = "active",
        Unsubscribed = "unsubscribed",
        Bounced = "bounced",
        Erased = "erased",
    }
);

status!(
    /// Where a person stands in one course.
    EnrollmentStatus, "status" {
        Active = "active",
        Paused = "paused",
        Completed = "completed",
        Stopped = "stopped",
    }
);

status!(
    /// What a delivery is: a lesson, a system mail, one mail of a broadcast, or an
    /// author's answer to a reader's reply.
    DeliveryKind, "kind" {
        Lesson = "lesson",
        Confirm = "confirm",
        Welcome = "welcome",
        Goodbye = "goodbye",
        Notice = "notice",
        Broadcast = "broadcast",
        Answer = "answer",
    }
);

status!(
    /// Whom a broadcast is for, by the state of their enrollment in its course: `active`
    /// takes it now (not paused), `completed` finished it, `everyone` is both (nobody who
    /// paused or left).
    Audience, "audience" {
        Active = "active",
        Everyone = "everyone",
        Completed = "completed",
    }
);

status!(
    /// Where a delivery is in the outbox.
    DeliveryStatus, "status" {
        Queued = "queued",
        Sent = "sent",
        Failed = "failed",
        Bounced = "bounced",
    }
);

status!(
    /// What an inbound message turned out to be.
    ReplyKind, "kind" {
        Reply = "reply",
        AutoReply = "auto_reply",
        Bounce = "bounce",
    }
);

status!(
    /// Whether a lesson goes out.
    LessonStatus, "status" {
        Published = "published",
        Draft = "draft",
    }
);

status!(
    /// A command a reply carries on its first line.
    Command, "command" {
        Pause = "pause",
        Resume = "resume",
        Stop = "stop",
        Next = "next",
    }
);

status!(
    /// How an inbound message was tied to a delivery.
    MatchedBy, "matched_by" {
        Token = "token",
        InReplyTo = "in_reply_to",
        Sender = "sender",
    }
);

status!(
    /// Where one event's delivery to one webhook endpoint stands.
    WebhookStatus, "status" {
        Pending = "pending",
        Delivered = "delivered",
        Failed = "failed",
    }
);

impl SubscriberStatus {
    /// Confirmed and not out of everything: a person drip may still write to.
    pub(crate) fn is_enrolled(self) -> bool {
        self == SubscriberStatus::Active
    }
}

impl EnrollmentStatus {
    /// Receiving the course's lessons, or taking a break from them.
    pub(crate) fn is_taking(self) -> bool {
        matches!(self, EnrollmentStatus::Active | EnrollmentStatus::Paused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stored_name_reads_back() {
        for s in SubscriberStatus::ALL {
            assert_eq!(SubscriberStatus::parse(s.as_str()).unwrap(), *s);
        }
        for k in DeliveryKind::ALL {
            assert_eq!(DeliveryKind::try_from(k.as_str().to_owned()).unwrap(), *k);
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        for k in ReplyKind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
    }

    #[test]
    fn an_unknown_stored_value_is_an_error_naming_the_set() {
        let e = EnrollmentStatus::parse("finished").unwrap_err();
        assert_eq!(e.field, "status");
        assert!(e.message.contains("active, paused, completed, stopped"));
    }
}
