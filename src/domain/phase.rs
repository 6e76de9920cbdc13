//! The three phases of a course, in the order they must come.

use std::fmt;

use super::InvalidInput;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Honesty,
    Accountability,
    Practice,
}

impl Phase {
    pub const ALL: [Phase; 3] = [Phase::Honesty, Phase::Accountability, Phase::Practice];

    pub fn parse(input: &str) -> Result<Phase, InvalidInput> {
        match input {
            "honesty" => Ok(Phase::Honesty),
            "accountability" => Ok(Phase::Accountability),
            "practice" => Ok(Phase::Practice),
            other => Err(InvalidInput::new(
                "phase",
                format!("{other:?} is not a phase (honesty, accountability or practice)"),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Honesty => "honesty",
            Phase::Accountability => "accountability",
            Phase::Practice => "practice",
        }
    }

    /// How the phase is named to readers.
    pub fn label(self) -> &'static str {
        match self {
            Phase::Honesty => "Honesty",
            Phase::Accountability => "Accountability",
            Phase::Practice => "Daily practice",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_phases_in_order() {
        let parsed: Vec<Phase> = ["honesty", "accountability", "practice"]
            .iter()
            .map(|p| Phase::parse(p).unwrap())
            .collect();
        assert_eq!(parsed, Phase::ALL);
        assert!(Phase::Honesty < Phase::Accountability && Phase::Accountability < Phase::Practice);
        for p in Phase::ALL {
            assert_eq!(Phase::parse(p.as_str()).unwrap(), p);
        }
    }

    #[test]
    fn refuses_anything_else() {
        for bad in ["", "Honesty", "practise", "honesty ", "daily"] {
            assert_eq!(Phase::parse(bad).unwrap_err().field, "phase");
        }
    }
}
