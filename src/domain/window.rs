//! When a lesson may be sent: at once, or at the next occurrence of a cron expression read
//! in the subscriber's time zone. Parsed once, where the text comes in (a lesson file, the
//! editor, the API, a stored revision); the schedule never re-parses it.

use std::fmt;
use std::str::FromStr;

use super::InvalidInput;

#[derive(Debug, Clone)]
pub struct SendWindow {
    text: String,
    kind: WindowKind,
}

#[derive(Debug, Clone)]
pub enum WindowKind {
    Immediate,
    Cron(Box<cron::Schedule>),
}

impl SendWindow {
    pub fn parse(text: &str) -> Result<SendWindow, InvalidInput> {
        let text = text.trim();
        if text == "immediate" {
            return Ok(SendWindow {
                text: text.to_owned(),
                kind: WindowKind::Immediate,
            });
        }
        if text.split_whitespace().count() != 6 {
            return Err(InvalidInput::new(
                "send_window",
                format!(
                    "send_window {text:?} must be \"immediate\" or a cron expression with 6 fields (sec min hour day month weekday)"
                ),
            ));
        }
        let schedule = cron::Schedule::from_str(text).map_err(|e| {
            // The cron crate's message repeats the expression on a line of its own;
            // a problem is one line (`path:line: message`), so keep only the reason.
            let e = e.to_string();
            let reason = e.lines().last().unwrap_or("").trim().to_owned();
            InvalidInput::new(
                "send_window",
                format!("send_window {text:?} is not a valid cron expression: {reason}"),
            )
        })?;
        Ok(SendWindow {
            text: text.to_owned(),
            kind: WindowKind::Cron(Box::new(schedule)),
        })
    }

    pub fn kind(&self) -> &WindowKind {
        &self.kind
    }

    pub fn is_immediate(&self) -> bool {
        matches!(self.kind, WindowKind::Immediate)
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// A subscriber's own pacing for one course (the preferences page): the days of the week
/// and the local hour they get lessons, in place of the course's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, utoipa::ToSchema)]
pub struct Pace {
    /// Bit 0 is Monday … bit 6 Sunday; never zero.
    days: u8,
    hour: u8,
}

/// The days in the order of [`Pace`]'s bits, as cron names them.
pub const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

impl Pace {
    pub fn new(days: u8, hour: u8) -> Result<Pace, InvalidInput> {
        if days == 0 || days > 0x7f {
            return Err(InvalidInput::new(
                "days",
                "choose at least one day of the week",
            ));
        }
        if hour > 23 {
            return Err(InvalidInput::new("hour", "must be an hour from 0 to 23"));
        }
        Ok(Pace { days, hour })
    }

    /// The stored pair, both set or both NULL; anything else stored is an error.
    pub fn from_columns(
        days: Option<i64>,
        hour: Option<i64>,
    ) -> Result<Option<Pace>, InvalidInput> {
        match (days, hour) {
            (None, None) => Ok(None),
            (Some(d), Some(h)) => Pace::new(
                u8::try_from(d).map_err(|_| InvalidInput::new("pace_days", "out of range"))?,
                u8::try_from(h).map_err(|_| InvalidInput::new("pace_hour", "out of range"))?,
            )
            .map(Some),
            _ => Err(InvalidInput::new("pace", "days and hour are set together")),
        }
    }

    pub fn days(self) -> u8 {
        self.days
    }

    pub fn hour(self) -> u8 {
        self.hour
    }

    pub fn has_day(self, index: usize) -> bool {
        index < 7 && self.days & (1 << index) != 0
    }

    /// The window this pacing means: a cron expression on the chosen days at the hour.
    pub fn window(self) -> SendWindow {
        let days: Vec<&str> = (0..7)
            .filter(|i| self.has_day(*i))
            .map(|i| WEEKDAYS[i])
            .collect();
        SendWindow::parse(&format!("0 0 {} * * {}", self.hour, days.join(",")))
            .expect("a pace always makes a valid cron expression")
    }
}

/// Two windows are the same when they are written the same.
impl PartialEq for SendWindow {
    fn eq(&self, other: &SendWindow) -> bool {
        self.text == other.text
    }
}

impl Eq for SendWindow {}

impl fmt::Display for SendWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl serde::Serialize for SendWindow {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for SendWindow {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<SendWindow, D::Error> {
        let s = String::deserialize(d)?;
        SendWindow::parse(&s).map_err(|e| serde::de::Error::custom(e.message))
    }
}

impl TryFrom<String> for SendWindow {
    type Error = InvalidInput;

    fn try_from(value: String) -> Result<SendWindow, InvalidInput> {
        SendWindow::parse(&value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse() {
        assert!(SendWindow::parse("immediate").unwrap().is_immediate());
        assert!(matches!(
            SendWindow::parse("0 0 8 * * *").unwrap().kind(),
            WindowKind::Cron(_)
        ));
        assert_eq!(
            SendWindow::parse(" 0 0 8 * * * ").unwrap().as_str(),
            "0 0 8 * * *"
        );
        for bad in ["0 8 * * *", "0 0 25 * * *", "soon", ""] {
            assert_eq!(
                SendWindow::parse(bad).unwrap_err().field,
                "send_window",
                "{bad}"
            );
        }
    }
}
