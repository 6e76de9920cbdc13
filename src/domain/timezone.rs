//! An IANA time zone name such as `Europe/Paris`.

use std::fmt;

use chrono_tz::Tz;

use super::InvalidInput;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timezone(Tz);

impl Timezone {
    pub fn parse(input: &str) -> Result<Timezone, InvalidInput> {
        let name = input.trim();
        // chrono-tz also accepts names case-insensitively and a few legacy aliases; drip
        // keeps exactly what the tz database calls the zone so stored values compare.
        match name.parse::<Tz>() {
            Ok(tz) if !name.is_empty() => Ok(Timezone(tz)),
            _ => Err(InvalidInput::new(
                "timezone",
                format!("{name:?} is not a known time zone (use an IANA name like Europe/Paris)"),
            )
            .because("unknown")),
        }
    }

    pub fn tz(self) -> Tz {
        self.0
    }

    pub fn name(self) -> &'static str {
        self.0.name()
    }

    pub const UTC: Timezone = Timezone(Tz::UTC);

    /// Every zone name, for the subscribe form's select.
    pub(crate) fn all_names() -> impl Iterator<Item = &'static str> {
        chrono_tz::TZ_VARIANTS
            .iter()
            .map(|tz| tz.name())
            .filter(|n| n.contains('/') || *n == "UTC")
    }
}

impl fmt::Display for Timezone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name())
    }
}

/// The stored form: an IANA name, checked when the row is read.
impl TryFrom<String> for Timezone {
    type Error = InvalidInput;

    fn try_from(name: String) -> Result<Timezone, InvalidInput> {
        Timezone::parse(&name)
    }
}

impl serde::Serialize for Timezone {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_iana_names() {
        for ok in [
            "UTC",
            "Europe/Paris",
            "America/New_York",
            "Pacific/Auckland",
            "Asia/Kolkata",
            " Europe/Paris ",
        ] {
            assert!(Timezone::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            Timezone::parse("Europe/Paris").unwrap().name(),
            "Europe/Paris"
        );
    }

    #[test]
    fn refuses_unknown_zones() {
        for bad in [
            "",
            "Mars/Olympus",
            "Paris",
            "+02:00",
            "Europe/Paris\nX: y",
            "CEST",
        ] {
            assert_eq!(
                Timezone::parse(bad).unwrap_err().field,
                "timezone",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn lists_zones_for_the_form() {
        let names: Vec<_> = Timezone::all_names().collect();
        assert!(names.contains(&"Europe/Paris") && names.contains(&"UTC"));
        assert!(names.len() > 300);
    }
}
