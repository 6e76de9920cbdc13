//! A phase's name: what a course's `[[phases]]` declare and each lesson names.
//!
//! The engine knows no phase. Which names exist and in what order is the course's own
//! business (`course.toml`); here a name is only checked to be a well-formed slug.

use std::fmt;

use super::{InvalidInput, Slug};

#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, utoipa::ToSchema,
)]
#[serde(transparent)]
pub struct Phase(String);

impl Phase {
    pub fn parse(input: &str) -> Result<Phase, InvalidInput> {
        Slug::parse(input)
            .map(|s| Phase(s.as_str().to_owned()))
            .map_err(|e| InvalidInput::new("phase", e.message))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Phase {
    /// Stands in for a phase that did not parse, so the other content rules can still run
    /// and report everything at once; content holding it is never returned or stored.
    pub(crate) fn unparsed() -> Phase {
        Phase("unparsed".to_owned())
    }
}

impl TryFrom<String> for Phase {
    type Error = InvalidInput;

    fn try_from(value: String) -> Result<Phase, InvalidInput> {
        Phase::parse(&value)
    }
}

impl<'de> serde::Deserialize<'de> for Phase {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Phase, D::Error> {
        let s = String::deserialize(d)?;
        Phase::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_slug_is_a_phase_name() {
        for ok in ["honesty", "week-1", "follow-ups", "x"] {
            assert_eq!(Phase::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn refuses_what_is_not_a_slug() {
        for bad in ["", "Honesty", "two words", "trailing-", "a--b"] {
            assert_eq!(Phase::parse(bad).unwrap_err().field, "phase");
        }
    }
}
