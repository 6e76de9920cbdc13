//! The words mail clients write around a reply, per language, read from `lang/*.toml`.
//!
//! Each file lists one language's attribution openers and verbs, header labels, separator
//! titles, device-footer templates and banners, each section with examples written for the
//! tests (see `README.md`, "Reply languages"). The structural rules that use these words live
//! in `markers.rs`; this module only loads the files and turns word lists into regex
//! alternations. The files are compiled in with `include_str!`, so a broken file fails the
//! tests, never a running server.

use std::sync::LazyLock;

use serde::Deserialize;

/// Every language file, by its code. Adding a language: write `lang/<code>.toml` and add it here.
pub(super) const FILES: &[(&str, &str)] = &[
    ("common", include_str!("lang/common.toml")),
    ("ar", include_str!("lang/ar.toml")),
    ("ca", include_str!("lang/ca.toml")),
    ("cs", include_str!("lang/cs.toml")),
    ("da", include_str!("lang/da.toml")),
    ("de", include_str!("lang/de.toml")),
    ("el", include_str!("lang/el.toml")),
    ("en", include_str!("lang/en.toml")),
    ("es", include_str!("lang/es.toml")),
    ("fi", include_str!("lang/fi.toml")),
    ("fr", include_str!("lang/fr.toml")),
    ("he", include_str!("lang/he.toml")),
    ("hu", include_str!("lang/hu.toml")),
    ("it", include_str!("lang/it.toml")),
    ("ja", include_str!("lang/ja.toml")),
    ("ko", include_str!("lang/ko.toml")),
    ("nl", include_str!("lang/nl.toml")),
    ("no", include_str!("lang/no.toml")),
    ("pl", include_str!("lang/pl.toml")),
    ("pt", include_str!("lang/pt.toml")),
    ("ro", include_str!("lang/ro.toml")),
    ("ru", include_str!("lang/ru.toml")),
    ("sk", include_str!("lang/sk.toml")),
    ("sv", include_str!("lang/sv.toml")),
    ("tr", include_str!("lang/tr.toml")),
    ("uk", include_str!("lang/uk.toml")),
    ("vi", include_str!("lang/vi.toml")),
    ("zh", include_str!("lang/zh.toml")),
];

/// One language file. Every list is optional; words are matched case-insensitively, as whole
/// words where the script has spaces, after whitespace runs become one space.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct Language {
    pub name: String,
    pub attribution: AttributionWords,
    pub headers: HeaderWords,
    pub separators: SeparatorWords,
    pub device: DeviceWords,
    pub banners: BannerWords,
}

/// "On <date>, <name> <address> wrote:" and its translations.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct AttributionWords {
    /// Words an attribution opens with ("On", "Le", "Am", "W dniu").
    pub openers: Vec<String>,
    /// Words that open the second line of a wrapped attribution ("at 10:18,"): accepted at the
    /// start of a wrapped attribution, but never enough to swallow the line above.
    pub continuations: Vec<String>,
    /// The verb or phrase saying someone wrote what follows ("wrote", "a écrit", "napisał").
    pub verbs: Vec<String>,
    /// "I wrote", "ich schrieb": a person quoting themselves in prose, never a client's line.
    pub first_person: Vec<String>,
    /// Attributions (one per entry, `\n` where a client wraps it) that must be recognised above a quote.
    pub examples: Vec<String>,
    /// Lines of prose using these words that must stay.
    pub prose: Vec<String>,
}

/// The header block a client copies above an unquoted original ("From: / Sent: / To: / Subject:").
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct HeaderWords {
    pub from: Vec<String>,
    pub date: Vec<String>,
    pub to: Vec<String>,
    pub other: Vec<String>,
    /// Header blocks (lines joined by `\n`) that must end the answer.
    pub examples: Vec<String>,
}

/// Lines that open an original or forwarded message.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct SeparatorWords {
    /// Titles clients frame with dashes ("-----Original Message-----").
    pub titles: Vec<String>,
    /// Lines ending in a colon that introduce a forward ("Begin forwarded message:").
    pub intros: Vec<String>,
    /// The word for "message": a dash-framed title holding it is a separator.
    pub message_words: Vec<String>,
    /// Helpdesk markers ("## Please type your reply above this line ##").
    pub reply_above: Vec<String>,
    pub examples: Vec<String>,
}

/// "Sent from my iPhone" and its translations.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct DeviceWords {
    /// Whole footer lines; `{device}` stands for the device or app, which must then name one
    /// (see `common.toml`) or look like a product name.
    pub templates: Vec<String>,
    /// "my", "mon", "meinem": after one, any product-like name counts as a device.
    pub possessives: Vec<String>,
    /// Footer lines that must be recognised.
    pub examples: Vec<String>,
    /// Lines that must not be taken for footers.
    pub prose: Vec<String>,
    /// Only in `common.toml`: device and app names, matched as whole words.
    pub names: Vec<String>,
    /// Only in `common.toml`: brand names also matched with a suffix ("iPhonesta", "iPhone-omról").
    pub brands: Vec<String>,
    /// Only in `common.toml`: words after which a footer names the network or platform
    /// ("… BlackBerry device on the Vega network"), not the device.
    pub joiners: Vec<String>,
}

/// Notices a mail gateway puts above the reply ("CAUTION: external sender").
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct BannerWords {
    /// Regular expressions matched against the start of the first paragraph, case-insensitively.
    pub patterns: Vec<String>,
    pub examples: Vec<String>,
}

/// Every language file, parsed. A file that does not parse is a build-time mistake: the
/// panic names the file and the line.
pub(super) static LANGUAGES: LazyLock<Vec<(&'static str, Language)>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|(code, text)| {
            let lang: Language = toml::from_str(text)
                .unwrap_or_else(|e| panic!("src/inbound/strip/lang/{code}.toml: {e}"));
            (*code, lang)
        })
        .collect()
});

/// All entries of one list across every language.
pub(super) fn all<'a>(pick: impl Fn(&'a Language) -> &'a Vec<String>) -> Vec<&'a str> {
    let mut out: Vec<&str> = LANGUAGES
        .iter()
        .flat_map(|(_, lang)| pick(lang).iter().map(String::as_str))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// A regex alternation of `words`, longest first so the longest phrase wins; spaces match any
/// whitespace run.
pub(super) fn alternation(words: &[&str]) -> String {
    let mut words: Vec<String> = words
        .iter()
        .map(|w| w.trim().to_lowercase())
        .filter(|w| !w.is_empty())
        .collect();
    words.sort_by_key(|w| std::cmp::Reverse(w.chars().count()));
    words.dedup();
    words
        .iter()
        .map(|w| {
            w.split(' ')
                .map(regex::escape)
                .collect::<Vec<_>>()
                .join(r"\s+")
        })
        .collect::<Vec<_>>()
        .join("|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_file_parses_and_names_itself() {
        assert_eq!(LANGUAGES.len(), FILES.len());
        for (code, lang) in LANGUAGES.iter() {
            assert!(!lang.name.is_empty(), "{code}.toml has no name");
        }
    }

    #[test]
    fn alternation_escapes_and_puts_longer_phrases_first() {
        let alt = alternation(&["a", "a.b c", "A"]);
        assert_eq!(alt, r"a\.b\s+c|a");
    }
}
