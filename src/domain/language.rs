//! The language a course is written in, as a BCP 47 tag (`en`, `fr`, `fr-CA`, `pt-BR`).

use std::fmt;

use super::InvalidInput;

/// A well-formed BCP 47 language tag in its usual spelling (`fr-CA`, not `FR_ca`): what
/// `course.toml` names in `language` and what chooses drip's words in pages and mails.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Language(String);

impl Language {
    pub fn parse(input: &str) -> Result<Language, InvalidInput> {
        let tag = input.trim();
        // ICU reads the Unicode locale identifier form of BCP 47 (language, script, region,
        // variants, extensions) and gives it back with the usual casing.
        match icu_locale_core::Locale::normalize(tag) {
            Ok(normal) if !tag.is_empty() && normal != "und" => Ok(Language(normal.into_owned())),
            _ => Err(InvalidInput::new(
                "language",
                format!(
                    "{tag:?} is not a BCP 47 language tag (use a code such as \"en\", \"fr\" or \"pt-BR\")"
                ),
            )),
        }
    }

    /// English: the language of a course that names none, and of every missing word.
    pub fn english() -> Language {
        Language("en".to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The tag and each shorter form of it, most specific first: `fr-CA` gives `fr-CA`,
    /// then `fr`.
    pub fn fallbacks(tag: &str) -> impl Iterator<Item = &str> {
        std::iter::successors(Some(tag), |t| t.rsplit_once('-').map(|(head, _)| head))
            .filter(|t| !t.is_empty())
    }
}

impl Default for Language {
    fn default() -> Self {
        Language::english()
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Language {
    type Error = InvalidInput;

    fn try_from(value: String) -> Result<Language, InvalidInput> {
        Language::parse(&value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_tags_are_kept_in_their_usual_spelling() {
        for (input, tag) in [
            ("en", "en"),
            ("fr", "fr"),
            ("fr-CA", "fr-CA"),
            ("FR-ca", "fr-CA"),
            ("pt-br", "pt-BR"),
            ("zh-hant-tw", "zh-Hant-TW"),
            ("sr-Latn", "sr-Latn"),
            (" de ", "de"),
        ] {
            assert_eq!(Language::parse(input).unwrap().as_str(), tag, "{input}");
        }
    }

    #[test]
    fn malformed_tags_are_refused_naming_the_field() {
        for bad in [
            "", "f", "french", "fr_CA", "fr-", "-fr", "fr--CA", "en-US-", "12", "und", "fr CA", "é",
        ] {
            let e = Language::parse(bad).unwrap_err();
            assert_eq!(e.field, "language", "{bad:?}");
            assert!(e.message.contains("BCP 47"), "{bad:?}: {}", e.message);
        }
    }

    #[test]
    fn fallbacks_drop_one_subtag_at_a_time() {
        let all: Vec<&str> = Language::fallbacks("zh-Hant-TW").collect();
        assert_eq!(all, ["zh-Hant-TW", "zh-Hant", "zh"]);
        assert_eq!(Language::fallbacks("fr").collect::<Vec<_>>(), ["fr"]);
    }
}
