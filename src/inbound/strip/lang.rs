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
    /// The same for forwards ("---------- Forwarded message ---------"): sent with no comment
    /// above, the forwarded text is what the person sent.
    pub forwards: Vec<String>,
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
    use super::super::{extract_answer, markers};
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

    const ANSWER: &str = "My own answer, in my own words.";

    /// Lowercased, with marks and whitespace runs made plain, as the patterns see text.
    fn plain(s: &str) -> String {
        markers::normalise(s).to_lowercase()
    }

    /// Notes in `problems` each entry of `list` that no text in `covered_by` contains.
    fn check_covered(
        problems: &mut Vec<String>,
        code: &str,
        what: &str,
        list: &[String],
        covered_by: &[String],
    ) {
        let texts: Vec<String> = covered_by.iter().map(|t| plain(t)).collect();
        for entry in list {
            let entry = plain(entry);
            if !texts.iter().any(|t| t.contains(&entry)) {
                problems.push(format!("{code}.toml: {what} {entry:?} has no example"));
            }
        }
    }

    /// Notes in `problems` when `got` differs from `want`.
    fn check(problems: &mut Vec<String>, code: &str, case: &str, got: String, want: &str) {
        if got != want {
            problems.push(format!("{code}.toml: {case:?} gave {got:?}"));
        }
    }

    fn assert_none(problems: Vec<String>) {
        assert!(problems.is_empty(), "\n{}", problems.join("\n"));
    }

    #[test]
    fn attribution_examples_end_the_answer_and_prose_stays() {
        let mut problems = Vec::new();
        for (code, lang) in LANGUAGES.iter() {
            let a = &lang.attribution;
            for example in &a.examples {
                let body = format!("{ANSWER}\n\n{example}\n> Their earlier words.\n");
                check(&mut problems, code, example, extract_answer(&body), ANSWER);
            }
            for prose in &a.prose {
                let body = format!("{prose}\nAnd then some more of my own words.");
                check(&mut problems, code, prose, extract_answer(&body), &body);
            }
            check_covered(&mut problems, code, "opener", &a.openers, &a.examples);
            check_covered(
                &mut problems,
                code,
                "continuation",
                &a.continuations,
                &a.examples,
            );
            check_covered(&mut problems, code, "verb", &a.verbs, &a.examples);
            check_covered(
                &mut problems,
                code,
                "first-person phrase",
                &a.first_person,
                &a.prose,
            );
        }
        assert_none(problems);
    }

    #[test]
    fn header_block_examples_end_the_answer() {
        let mut problems = Vec::new();
        for (code, lang) in LANGUAGES.iter() {
            let h = &lang.headers;
            for example in &h.examples {
                let body = format!("{ANSWER}\n\n{example}\n\nTheir earlier words.\n");
                check(&mut problems, code, example, extract_answer(&body), ANSWER);
            }
            for (what, list) in [
                ("from label", &h.from),
                ("date label", &h.date),
                ("to label", &h.to),
                ("label", &h.other),
            ] {
                check_covered(&mut problems, code, what, list, &h.examples);
            }
        }
        assert_none(problems);
    }

    #[test]
    fn separator_examples_end_the_answer() {
        let mut problems = Vec::new();
        for (code, lang) in LANGUAGES.iter() {
            let s = &lang.separators;
            for example in &s.examples {
                let body = format!("{ANSWER}\n\n{example}\n\nTheir earlier words.\n");
                check(&mut problems, code, example, extract_answer(&body), ANSWER);
            }
            check_covered(&mut problems, code, "title", &s.titles, &s.examples);
            check_covered(
                &mut problems,
                code,
                "forward title",
                &s.forwards,
                &s.examples,
            );
            check_covered(&mut problems, code, "intro", &s.intros, &s.examples);
            check_covered(
                &mut problems,
                code,
                "message word",
                &s.message_words,
                &s.examples,
            );
            check_covered(
                &mut problems,
                code,
                "reply-above marker",
                &s.reply_above,
                &s.examples,
            );
        }
        assert_none(problems);
    }

    #[test]
    fn device_examples_are_dropped_and_prose_stays() {
        let mut problems = Vec::new();
        for (code, lang) in LANGUAGES.iter() {
            let d = &lang.device;
            for example in &d.examples {
                if !markers::is_device_line(example) {
                    problems.push(format!("{code}.toml: {example:?} is no device line"));
                }
                let body = format!("{ANSWER}\n\n{example}\n");
                check(&mut problems, code, example, extract_answer(&body), ANSWER);
            }
            for prose in &d.prose {
                let body = format!("{ANSWER}\n\n{prose}");
                check(&mut problems, code, prose, extract_answer(&body), &body);
            }
            for template in &d.templates {
                let pattern = regex::Regex::new(&markers::template_pattern(template))
                    .unwrap_or_else(|e| panic!("{code}.toml: template {template:?}: {e}"));
                if !d
                    .examples
                    .iter()
                    .any(|e| pattern.is_match(&markers::normalise(e)))
                {
                    problems.push(format!("{code}.toml: template {template:?} has no example"));
                }
            }
            check_covered(
                &mut problems,
                code,
                "possessive",
                &d.possessives,
                &d.examples,
            );
        }
        assert_none(problems);
    }

    #[test]
    fn banner_examples_are_dropped() {
        let mut problems = Vec::new();
        for (code, lang) in LANGUAGES.iter() {
            let b = &lang.banners;
            for example in &b.examples {
                let body = format!("{example}\n\n{ANSWER}");
                check(&mut problems, code, example, extract_answer(&body), ANSWER);
            }
            for pattern in &b.patterns {
                let re = regex::Regex::new(&format!("(?i){pattern}"))
                    .unwrap_or_else(|e| panic!("{code}.toml: banner {pattern:?}: {e}"));
                if !b
                    .examples
                    .iter()
                    .any(|e| re.is_match(&markers::normalise(e)))
                {
                    problems.push(format!("{code}.toml: banner {pattern:?} has no example"));
                }
            }
        }
        assert_none(problems);
    }

    #[test]
    fn device_names_are_known_to_the_footer_test() {
        let unknown: Vec<&str> = all(|l| &l.device.brands)
            .into_iter()
            .chain(all(|l| &l.device.names))
            .filter(|name| !markers::is_device_line(&format!("Sent from my {name}")))
            .collect();
        assert!(unknown.is_empty(), "common.toml: {unknown:?}");
    }
}
