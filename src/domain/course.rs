//! A course's phases, in the order its `course.toml` declares them.
//!
//! The order is the course's rule for its lessons: a lesson's phase may never come before
//! the phase of a lesson ahead of it. Lint, the admin editor and the lesson reorder all ask
//! [`Phases::out_of_order`], so the rule has one wording and one implementation.

use super::{InvalidInput, Phase};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CoursePhase {
    pub name: Phase,
    pub title: String,
    #[serde(default)]
    pub description: String,
}

/// At least one phase, names unique, in order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct Phases(Vec<CoursePhase>);

impl Phases {
    pub fn new(phases: Vec<CoursePhase>) -> Result<Phases, InvalidInput> {
        if phases.is_empty() {
            return Err(InvalidInput::new(
                "phases",
                "a course declares at least one [[phases]] entry (name, title, description)",
            ));
        }
        for (i, p) in phases.iter().enumerate() {
            if phases[..i].iter().any(|q| q.name == p.name) {
                return Err(InvalidInput::new(
                    "phases",
                    format!("phase {:?} is declared twice", p.name.as_str()),
                ));
            }
            if p.title.trim().is_empty() {
                return Err(InvalidInput::new(
                    "phases",
                    format!("phase {:?} needs a title", p.name.as_str()),
                ));
            }
        }
        Ok(Phases(phases))
    }

    pub fn iter(&self) -> impl Iterator<Item = &CoursePhase> {
        self.0.iter()
    }

    pub fn first(&self) -> &Phase {
        &self.0[0].name
    }

    pub fn get(&self, name: &Phase) -> Option<&CoursePhase> {
        self.0.iter().find(|p| &p.name == name)
    }

    fn index(&self, name: &Phase) -> Option<usize> {
        self.0.iter().position(|p| &p.name == name)
    }

    /// The declared names, in order, as a reader of an error message wants them.
    pub fn names(&self) -> String {
        let names: Vec<&str> = self.0.iter().map(|p| p.name.as_str()).collect();
        names.join(", ")
    }

    /// Checks that `name` is one of this course's phases.
    pub fn check(&self, name: &Phase) -> Result<(), InvalidInput> {
        match self.index(name) {
            Some(_) => Ok(()),
            None => Err(InvalidInput::new(
                "phase",
                format!(
                    "{:?} is not a phase of this course (its phases: {})",
                    name.as_str(),
                    self.names()
                ),
            )),
        }
    }

    /// Whether a lesson in phase `later` may not follow one in phase `earlier`. An
    /// undeclared phase is reported by [`Phases::check`], not here.
    pub fn out_of_order(&self, earlier: &Phase, later: &Phase) -> bool {
        match (self.index(earlier), self.index(later)) {
            (Some(a), Some(b)) => b < a,
            _ => false,
        }
    }

    /// The one wording of the order rule.
    pub(crate) fn order_message(&self) -> String {
        format!("this course's phases go {}", self.names())
    }
}

impl<'de> serde::Deserialize<'de> for Phases {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Phases, D::Error> {
        let list = Vec::<CoursePhase>::deserialize(d)?;
        Phases::new(list).map_err(|e| serde::de::Error::custom(e.message))
    }
}

/// The stored form: a JSON array of `{name, title, description}`.
impl TryFrom<String> for Phases {
    type Error = InvalidInput;

    fn try_from(json: String) -> Result<Phases, InvalidInput> {
        serde_json::from_str(&json)
            .map_err(|e| InvalidInput::new("phases", format!("stored phases are not valid: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phases(names: &[&str]) -> Result<Phases, InvalidInput> {
        Phases::new(
            names
                .iter()
                .map(|n| CoursePhase {
                    name: Phase::parse(n).unwrap(),
                    title: n.to_uppercase(),
                    description: String::new(),
                })
                .collect(),
        )
    }

    #[test]
    fn order_is_the_declared_one() {
        let p = phases(&["start", "middle", "end"]).unwrap();
        let (s, m, e) = (
            Phase::parse("start").unwrap(),
            Phase::parse("middle").unwrap(),
            Phase::parse("end").unwrap(),
        );
        assert!(!p.out_of_order(&s, &m) && !p.out_of_order(&m, &m) && !p.out_of_order(&s, &e));
        assert!(p.out_of_order(&e, &m) && p.out_of_order(&m, &s));
        assert_eq!(p.names(), "start, middle, end");
        assert!(
            p.check(&Phase::parse("other").unwrap())
                .unwrap_err()
                .message
                .contains("start, middle, end")
        );
    }

    #[test]
    fn refuses_none_and_duplicates() {
        assert!(phases(&[]).is_err());
        assert!(
            phases(&["a", "b", "a"])
                .unwrap_err()
                .message
                .contains("twice")
        );
    }

    #[test]
    fn stored_form_round_trips() {
        let p = phases(&["one", "two"]).unwrap();
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(Phases::try_from(json).unwrap(), p);
        assert!(Phases::try_from("{\"one\": \"x\"}".to_owned()).is_err());
    }
}
