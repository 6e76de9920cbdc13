//! A lesson's or course's name in URLs, headers and file names.

use std::fmt;

use super::InvalidInput;

/// Lowercase ASCII letters, digits and single hyphens, 1 to 80 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Slug(String);

impl Slug {
    pub fn parse(input: &str) -> Result<Slug, InvalidInput> {
        let ok = !input.is_empty()
            && input.len() <= 80
            && input
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !input.starts_with('-')
            && !input.ends_with('-')
            && !input.contains("--");
        if ok {
            Ok(Slug(input.to_owned()))
        } else {
            Err(InvalidInput::new(
                "slug",
                format!("{input:?} must be 1-80 lowercase letters, digits and single hyphens"),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_kebab_case() {
        for ok in ["welcome", "a-clean-slate", "day-2", "x"] {
            assert_eq!(Slug::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn refuses_the_rest() {
        let long = "a".repeat(81);
        for bad in [
            "",
            "Welcome",
            "a clean slate",
            "-a",
            "a-",
            "a--b",
            "a_b",
            "é",
            "../etc",
            "a\nb",
            &long,
        ] {
            assert_eq!(Slug::parse(bad).unwrap_err().field, "slug", "{bad:?}");
        }
    }
}
