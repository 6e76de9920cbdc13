//! drip's own words in each language: one file per language, `templates/i18n/<tag>.toml`
//! (`en.toml`, `fr.toml`, `pt-BR.toml`...), loaded with the templates.
//!
//! Keys are the TOML tables' dotted paths (`confirm.ask.button`). A value is a text, where
//! `{name}` is filled in by the template or the code, or a list of texts (month names).
//! A key is looked up in the tag's own file, then in each shorter form of the tag
//! (`fr-CA`, then `fr`), then in English: a missing word shows in English, never as nothing.
//! `drip lessons lint` names every key a file lacks.
//!
//! Templates call `t("key", name=value, ...)`; the language is the `lang` of the context
//! being rendered (pages are given it, mails take their course's), never a global setting.
//! In an HTML template the text and every argument not marked safe are escaped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{Datelike, Timelike};
use minijinja::value::Kwargs;
use minijinja::{AutoEscape, Error, ErrorKind, HtmlEscape, State, Value};

use crate::domain::{InvalidInput, Language};

/// The language every other falls back to; its file must exist and hold every key.
pub const FALLBACK: &str = "en";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Text(String),
    List(Vec<String>),
}

/// One language's file.
#[derive(Debug)]
struct File {
    tag: String,
    path: PathBuf,
    entries: BTreeMap<String, Entry>,
}

/// Every language's words, loaded once.
#[derive(Debug)]
pub struct Catalogue {
    /// English first, then the others by tag.
    files: Vec<File>,
}

/// Something wrong in a catalogue that still lets drip run: shown by lint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    /// The file it is in (`templates/i18n/fr.toml`).
    pub file: String,
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for Gap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: {}", self.file, self.key, self.message)
    }
}

/// A piece of a text: as written, or a `{name}` to fill in.
#[derive(Debug, PartialEq, Eq)]
enum Piece<'a> {
    Literal(&'a str),
    Slot(&'a str),
}

/// Cuts a text at its `{name}` placeholders (a name is lowercase letters, digits and `_`);
/// any other brace is text.
fn pieces(text: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let rest = text;
    let mut literal_start = 0;
    let mut at = 0;
    while let Some(open) = rest[at..].find('{').map(|i| at + i) {
        let name_end = rest[open + 1..]
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .map(|i| open + 1 + i);
        match name_end {
            Some(close) if close > open + 1 && rest[close..].starts_with('}') => {
                if open > literal_start {
                    out.push(Piece::Literal(&rest[literal_start..open]));
                }
                out.push(Piece::Slot(&rest[open + 1..close]));
                literal_start = close + 1;
                at = close + 1;
            }
            _ => at = open + 1,
        }
    }
    if literal_start < rest.len() {
        out.push(Piece::Literal(&rest[literal_start..]));
    }
    out
}

/// What a date text may use (see [`Catalogue::date`]), whatever its English text uses.
const DATE_SLOTS: [&str; 8] = [
    "weekday", "day", "month", "year", "time", "hour", "minute", "zone",
];

/// The placeholders a translation of `key` may use: its English text's, or for a date
/// every part of a date.
fn allowed<'a>(key: &str, english: &'a str) -> BTreeSet<&'a str> {
    if key.starts_with("date.") && !slots(english).is_empty() {
        DATE_SLOTS.into_iter().collect()
    } else {
        slots(english)
    }
}

fn slots(text: &str) -> BTreeSet<&str> {
    pieces(text)
        .into_iter()
        .filter_map(|p| match p {
            Piece::Slot(name) => Some(name),
            Piece::Literal(_) => None,
        })
        .collect()
}

/// Fills the placeholders of `text` with `value(name)`; a placeholder without a value is
/// an error naming it.
fn fill(
    text: &str,
    mut literal: impl FnMut(&str, &mut String),
    mut value: impl FnMut(&str, &mut String) -> Result<(), String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len() + 16);
    for piece in pieces(text) {
        match piece {
            Piece::Literal(s) => literal(s, &mut out),
            Piece::Slot(name) => value(name, &mut out)?,
        }
    }
    Ok(out)
}

/// The dotted keys of a TOML table and their values.
fn flatten(
    prefix: &str,
    table: &toml::Table,
    into: &mut BTreeMap<String, Entry>,
) -> Result<(), String> {
    for (name, value) in table {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        match value {
            toml::Value::String(s) => {
                into.insert(key, Entry::Text(s.clone()));
            }
            toml::Value::Table(t) => flatten(&key, t, into)?,
            toml::Value::Array(items) => {
                let texts: Option<Vec<String>> = items
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect();
                let texts = texts.ok_or_else(|| format!("{key}: a list holds texts only"))?;
                into.insert(key, Entry::List(texts));
            }
            _ => return Err(format!("{key}: must be a text or a list of texts")),
        }
    }
    Ok(())
}

impl File {
    fn read(path: &Path) -> anyhow::Result<File> {
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let tag = Language::parse(stem).map_err(|e| {
            anyhow::anyhow!(
                "{}: the file name must be a language tag: {e}",
                path.display()
            )
        })?;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let table: toml::Table = toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map(|s| crate::curriculum::line_of(&text, s.start))
                .unwrap_or(1);
            let message = e
                .message()
                .lines()
                .next()
                .unwrap_or("invalid TOML")
                .to_owned();
            anyhow::anyhow!("{}:{line}: {message}", path.display())
        })?;
        let mut entries = BTreeMap::new();
        flatten("", &table, &mut entries)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok(File {
            tag: tag.as_str().to_owned(),
            path: path.to_owned(),
            entries,
        })
    }
}

impl Catalogue {
    /// Reads every `<tag>.toml` in `dir`. English must be there; a translation may lack keys
    /// (English shows instead) but not use a placeholder its English text does not fill, nor
    /// hold a list of another length.
    pub fn load(dir: &Path) -> anyhow::Result<Catalogue> {
        let entries = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read the translations folder {}", dir.display()))?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        let mut files = Vec::new();
        for path in paths {
            let file = File::read(&path)?;
            if let Some(other) = files
                .iter()
                .find(|f: &&File| f.tag.eq_ignore_ascii_case(&file.tag))
            {
                anyhow::bail!(
                    "{} and {} are the same language",
                    other.path.display(),
                    file.path.display()
                );
            }
            files.push(file);
        }
        let english = files
            .iter()
            .position(|f| f.tag == FALLBACK)
            .with_context(|| format!("missing {}", dir.join("en.toml").display()))?;
        let en = files.remove(english);
        for file in &files {
            for (key, entry) in &file.entries {
                match (entry, en.entries.get(key)) {
                    (Entry::Text(text), Some(Entry::Text(english))) => {
                        let known = allowed(key, english);
                        if let Some(unknown) = slots(text).into_iter().find(|s| !known.contains(s))
                        {
                            anyhow::bail!(
                                "{}: {key}: {{{unknown}}} is not filled in for this text (the English one has {})",
                                file.path.display(),
                                if known.is_empty() {
                                    "no placeholders".to_owned()
                                } else {
                                    known
                                        .iter()
                                        .map(|s| format!("{{{s}}}"))
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                }
                            );
                        }
                    }
                    (Entry::List(items), Some(Entry::List(english)))
                        if items.len() != english.len() =>
                    {
                        anyhow::bail!(
                            "{}: {key}: has {} entries, the English list {}",
                            file.path.display(),
                            items.len(),
                            english.len()
                        );
                    }
                    (Entry::List(_), Some(Entry::List(_))) | (_, None) => {}
                    (_, Some(_)) => anyhow::bail!(
                        "{}: {key}: must be a {} as in en.toml",
                        file.path.display(),
                        if matches!(entry, Entry::Text(_)) {
                            "list"
                        } else {
                            "text"
                        }
                    ),
                }
            }
        }
        files.insert(0, en);
        Ok(Catalogue { files })
    }

    /// The entry for `key` in the first file `lang` reads from that has it: the tag's own,
    /// each shorter form's, then English.
    fn entry(&self, lang: &str, key: &str) -> Option<&Entry> {
        let file = |tag: &str| self.files.iter().find(|f| f.tag.eq_ignore_ascii_case(tag));
        Language::fallbacks(lang)
            .filter_map(file)
            .chain(std::iter::once(&self.files[0]))
            .find_map(|f| f.entries.get(key))
    }

    /// Whether some file speaks `lang` (itself or a shorter form of its tag), so that its
    /// readers do not get English.
    pub fn speaks(&self, lang: &str) -> bool {
        Language::fallbacks(lang)
            .any(|tag| self.files.iter().any(|f| f.tag.eq_ignore_ascii_case(tag)))
    }

    /// The tags of the files, English first.
    pub fn languages(&self) -> impl Iterator<Item = &str> {
        self.files.iter().map(|f| f.tag.as_str())
    }

    /// The text for `key` in `lang`, or English.
    pub fn text(&self, lang: &str, key: &str) -> Option<&str> {
        match self.entry(lang, key)? {
            Entry::Text(t) => Some(t),
            Entry::List(_) => None,
        }
    }

    fn list(&self, lang: &str, key: &str) -> Option<&[String]> {
        match self.entry(lang, key)? {
            Entry::List(l) => Some(l),
            Entry::Text(_) => None,
        }
    }

    /// The text for `key` with its placeholders filled in from `args`, as plain text.
    /// A key no file has, or a placeholder without a value, is an error.
    pub fn format(&self, lang: &str, key: &str, args: &[(&str, &str)]) -> anyhow::Result<String> {
        let text = self
            .text(lang, key)
            .with_context(|| format!("no text for {key:?} in {}", self.files[0].path.display()))?;
        fill(
            text,
            |s, out| out.push_str(s),
            |name, out| match args.iter().find(|(n, _)| *n == name) {
                Some((_, v)) => {
                    out.push_str(v);
                    Ok(())
                }
                None => Err(format!("{key}: nothing fills {{{name}}}")),
            },
        )
        .map_err(|e| anyhow::anyhow!(e))
    }

    /// The text's paragraphs (separated by blank lines), filled in as by [`Self::format`].
    pub fn paragraphs(
        &self,
        lang: &str,
        key: &str,
        args: &[(&str, &str)],
    ) -> anyhow::Result<Vec<String>> {
        Ok(self
            .format(lang, key, args)?
            .split("\n\n")
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect())
    }

    /// Why an input was refused, in the reader's words: `invalid.<field>.<reason>` with
    /// `{value}` the input as typed (quoted), or the refusal's own message where it names no
    /// reason the catalogue knows.
    pub fn refusal(&self, lang: &str, refused: &InvalidInput, value: &str) -> String {
        let quoted = format!("{:?}", value.trim());
        refused
            .reason
            .and_then(|reason| {
                let key = format!("invalid.{}.{reason}", refused.field);
                self.format(lang, &key, &[("value", &quoted)]).ok()
            })
            .unwrap_or_else(|| refused.message.clone())
    }

    /// The key a count chooses: `key` itself if it is a text, else `key.one` for the counts
    /// `language.plural_one` lists (`1` in English, `0 1` in French), `key.other` for the rest.
    fn counted(&self, lang: &str, key: &str, count: i64) -> String {
        if self.text(lang, key).is_some() {
            return key.to_owned();
        }
        let one = self
            .text(lang, "language.plural_one")
            .unwrap_or("1")
            .split([' ', ','])
            .filter_map(|n| n.trim().parse::<i64>().ok())
            .any(|n| n == count);
        format!("{key}.{}", if one { "one" } else { "other" })
    }

    /// A date and time on the reader's wall clock, written as the text `key` says with
    /// `{weekday}`, `{day}`, `{month}`, `{year}`, `{time}` (08:00), `{hour}` (8), `{minute}`
    /// (00) and `{zone}` (CET), in the words of `lang` (`date.weekdays`, `date.months`, and
    /// `date.first_day` for a language that writes the 1st of the month differently).
    pub fn date<Tz: chrono::TimeZone>(
        &self,
        lang: &str,
        key: &str,
        at: &chrono::DateTime<Tz>,
    ) -> anyhow::Result<String>
    where
        Tz::Offset: std::fmt::Display,
    {
        let name = |list: &str, index: usize| -> anyhow::Result<String> {
            self.list(lang, list)
                .and_then(|l| l.get(index))
                .cloned()
                .with_context(|| format!("no {list} entry {index}"))
        };
        let weekday = name(
            "date.weekdays",
            at.weekday().num_days_from_monday() as usize,
        )?;
        let month = name("date.months", at.month0() as usize)?;
        let day = match (at.day(), self.text(lang, "date.first_day")) {
            (1, Some(first)) => first.to_owned(),
            (d, _) => d.to_string(),
        };
        let year = at.year().to_string();
        let time = at.format("%H:%M").to_string();
        let hour = at.hour().to_string();
        let minute = format!("{:02}", at.minute());
        let zone = at.format("%Z").to_string();
        self.format(
            lang,
            key,
            &[
                ("weekday", &weekday),
                ("day", &day),
                ("month", &month),
                ("year", &year),
                ("time", &time),
                ("hour", &hour),
                ("minute", &minute),
                ("zone", &zone),
            ],
        )
    }

    /// What lint says about the files: every key of en.toml a translation lacks (its
    /// readers see the English words), and every key it has that English does not (never
    /// shown).
    pub fn gaps(&self) -> Vec<Gap> {
        let en = &self.files[0];
        let mut gaps = Vec::new();
        for file in &self.files[1..] {
            let shown = file.path.display().to_string();
            for key in en.entries.keys().filter(|k| !file.entries.contains_key(*k)) {
                gaps.push(Gap {
                    file: shown.clone(),
                    key: key.clone(),
                    message: "missing: the English text is shown instead".into(),
                });
            }
            for key in file.entries.keys().filter(|k| !en.entries.contains_key(*k)) {
                gaps.push(Gap {
                    file: shown.clone(),
                    key: key.clone(),
                    message: format!("not in {}: never shown", en.path.display()),
                });
            }
        }
        gaps
    }

    /// The template function `t(key, name=value, ...)`.
    pub(super) fn t(&self, state: &State, key: &str, kwargs: Kwargs) -> Result<Value, Error> {
        let lang = state
            .lookup("lang")
            .filter(|v| !v.is_undefined() && !v.is_none());
        let lang = lang.as_ref().and_then(|v| v.as_str()).ok_or_else(|| {
            Error::new(
                ErrorKind::UndefinedError,
                "t(): the context has no `lang` to choose the words by",
            )
        })?;
        let count: Option<i64> = kwargs.get("count")?;
        let key = match count {
            Some(n) => self.counted(lang, key, n),
            None => key.to_owned(),
        };
        let missing = || {
            Error::new(
                ErrorKind::UndefinedError,
                format!("t(): no text for {key:?}"),
            )
        };
        let text = self.text(lang, &key).ok_or_else(missing)?;
        let english = self.text(FALLBACK, &key).ok_or_else(missing)?;
        // An argument the English text has no place for is a mistake in the template.
        let known = slots(english);
        if let Some(extra) = kwargs.args().find(|a| *a != "count" && !known.contains(a)) {
            return Err(Error::new(
                ErrorKind::TooManyArguments,
                format!("t({key:?}): the text has no {{{extra}}}"),
            ));
        }
        let html = matches!(state.auto_escape(), AutoEscape::Html);
        let escape = |s: &str, out: &mut String| {
            if html {
                out.push_str(&HtmlEscape(s).to_string());
            } else {
                out.push_str(s);
            }
        };
        let filled = fill(text, escape, |name, out| {
            let v: Value = kwargs
                .get(name)
                .map_err(|_| format!("t({key:?}): nothing fills {{{name}}}"))?;
            let shown = v.to_string();
            if html && !v.is_safe() {
                escape(&shown, out);
            } else {
                out.push_str(&shown);
            }
            Ok(())
        })
        .map_err(|e| Error::new(ErrorKind::MissingArgument, e))?;
        for name in kwargs.args() {
            let _: Value = kwargs.get(name)?;
        }
        Ok(if html {
            Value::from_safe_string(filled)
        } else {
            Value::from(filled)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> Catalogue {
        Catalogue::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/i18n")).unwrap()
    }

    #[test]
    fn placeholders_are_lowercase_names_in_braces() {
        assert_eq!(
            pieces("Hi {name}, {x-y} {} {a_1}!"),
            [
                Piece::Literal("Hi "),
                Piece::Slot("name"),
                Piece::Literal(", {x-y} {} "),
                Piece::Slot("a_1"),
                Piece::Literal("!"),
            ]
        );
        assert_eq!(pieces("{course}"), [Piece::Slot("course")]);
        assert_eq!(pieces("no braces"), [Piece::Literal("no braces")]);
        assert_eq!(pieces("{Upper} {open"), [Piece::Literal("{Upper} {open")]);
    }

    /// French is complete: every key of en.toml, no key English lacks, the same
    /// placeholders in each text and lists of the same length.
    #[test]
    fn french_has_every_key_of_english_and_no_other() {
        let c = shipped();
        assert_eq!(c.languages().collect::<Vec<_>>(), ["en", "fr"]);
        assert_eq!(c.gaps(), [], "fr.toml against en.toml");
        let (en, fr) = (&c.files[0], &c.files[1]);
        assert_eq!(
            en.entries.keys().collect::<Vec<_>>(),
            fr.entries.keys().collect::<Vec<_>>()
        );
        for (key, entry) in &en.entries {
            match (entry, &fr.entries[key]) {
                (Entry::Text(e), Entry::Text(f)) if key.starts_with("date.") => {
                    assert!(slots(f).is_subset(&allowed(key, e)), "{key}");
                }
                (Entry::Text(e), Entry::Text(f)) => {
                    assert_eq!(slots(e), slots(f), "{key}: placeholders differ");
                    assert!(!f.trim().is_empty(), "{key} is empty in French");
                }
                (Entry::List(e), Entry::List(f)) => assert_eq!(e.len(), f.len(), "{key}"),
                _ => panic!("{key}: a text in one file and a list in the other"),
            }
        }
    }

    /// Every `t("...")` in a template names a key of en.toml (or a counted one).
    #[test]
    fn every_key_the_templates_use_is_in_english() {
        let c = shipped();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let call = regex::Regex::new(r#"\bt\("([a-z0-9_.]+)"\s*[,)]"#).unwrap();
        let mut used = 0;
        for sub in ["email", "web"] {
            for entry in std::fs::read_dir(root.join(sub)).unwrap() {
                let path = entry.unwrap().path();
                if !path.is_file() {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                for m in call.captures_iter(&text) {
                    let key = &m[1];
                    let counted = c.text(FALLBACK, &format!("{key}.one")).is_some()
                        && c.text(FALLBACK, &format!("{key}.other")).is_some();
                    assert!(
                        c.text(FALLBACK, key).is_some() || counted,
                        "{}: t({key:?}) is not in en.toml",
                        path.display()
                    );
                    used += 1;
                }
            }
        }
        assert!(used > 50, "only {used} t() calls found");
    }

    #[test]
    fn a_missing_key_falls_back_by_the_tags_shorter_forms_then_english() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("en.toml"),
            "a = \"A\"\nb = \"B\"\nc = \"C {x}\"\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("fr.toml"), "a = \"A-fr\"\nb = \"B-fr\"\n").unwrap();
        std::fs::write(dir.path().join("fr-CA.toml"), "a = \"A-ca\"\nzz = \"?\"\n").unwrap();
        let c = Catalogue::load(dir.path()).unwrap();
        assert_eq!(c.text("fr-CA", "a"), Some("A-ca"));
        assert_eq!(c.text("fr-CA", "b"), Some("B-fr"));
        assert_eq!(c.text("fr-CA", "c"), Some("C {x}"));
        assert_eq!(c.text("fr-BE", "a"), Some("A-fr"));
        assert_eq!(c.text("de", "a"), Some("A"));
        assert!(c.speaks("fr-BE") && c.speaks("fr-CA") && c.speaks("en-GB"));
        assert!(!c.speaks("de"));
        assert_eq!(c.format("fr", "c", &[("x", "1")]).unwrap(), "C 1");
        assert!(
            c.format("fr", "c", &[])
                .unwrap_err()
                .to_string()
                .contains("{x}")
        );
        let gaps: Vec<String> = c.gaps().iter().map(ToString::to_string).collect();
        assert!(
            gaps.iter()
                .any(|g| g.ends_with("fr.toml: c: missing: the English text is shown instead")),
            "{gaps:?}"
        );
        assert!(
            gaps.iter().any(|g| g.contains("fr-CA.toml: zz: not in")),
            "{gaps:?}"
        );
        assert!(
            gaps.iter().any(|g| g.contains("fr-CA.toml: b: missing")),
            "{gaps:?}"
        );
    }

    #[test]
    fn a_translation_that_uses_an_unknown_placeholder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("en.toml"),
            "[mail]\nhello = \"Hi {name}\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("fr.toml"),
            "[mail]\nhello = \"Bonjour {nom}\"\n",
        )
        .unwrap();
        let e = Catalogue::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("fr.toml: mail.hello: {nom}"), "{e}");
        std::fs::write(
            dir.path().join("fr.toml"),
            "[mail]\nhello = \"Bonjour\"\nbad = 3\n",
        )
        .unwrap();
        let e = Catalogue::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("fr.toml: mail.bad: must be a text"), "{e}");
        std::fs::write(dir.path().join("fr.toml"), "[mail\n").unwrap();
        let e = Catalogue::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("fr.toml:1: "), "{e}");
        std::fs::remove_file(dir.path().join("en.toml")).unwrap();
        std::fs::write(dir.path().join("fr.toml"), "").unwrap();
        let e = Catalogue::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("en.toml"), "{e}");
    }

    /// The English words of a refusal the sign-up form shows are the ones the rule itself
    /// gives (the CLI and the API say those), so English pages read as before.
    #[test]
    fn english_refusals_are_the_rules_own_words() {
        use crate::domain::{EmailAddress, Timezone};
        use crate::subscriptions::NewSubscriber;
        let c = shipped();
        let mut refusals: Vec<(InvalidInput, String)> = [
            "a\nb@example.com",
            "",
            &format!("{}@example.com", "a".repeat(250)),
            "ann.example.com",
            &format!("{}@example.com", "a".repeat(65)),
            "a b@example.com",
            "ann@ｅxample.com",
            "ann@localhost",
            "ann@exa_mple.com",
        ]
        .iter()
        .map(|a| (EmailAddress::parse(a).unwrap_err(), a.to_string()))
        .collect();
        refusals.push((
            Timezone::parse("Mars/Base").unwrap_err(),
            "Mars/Base".into(),
        ));
        for name in ["n".repeat(101), "A\nB".into(), "Eve\u{202E}x".into()] {
            let e = NewSubscriber::parse("a@example.com", &name, "", Timezone::UTC).unwrap_err();
            refusals.push((e[0].clone(), name));
        }
        let mut reasons = BTreeSet::new();
        for (e, value) in &refusals {
            let reason = e.reason.unwrap_or_else(|| panic!("{e} names no reason"));
            reasons.insert(format!("invalid.{}.{reason}", e.field));
            assert_eq!(c.refusal("en", e, value), e.message, "{e}");
            assert_ne!(c.refusal("fr", e, value), e.message, "{e}: not in French");
        }
        let listed: BTreeSet<String> = c.files[0]
            .entries
            .keys()
            .filter(|k| k.starts_with("invalid."))
            .cloned()
            .collect();
        assert_eq!(
            reasons, listed,
            "every refusal in en.toml is one the rules give"
        );
    }

    #[test]
    fn dates_are_written_in_the_readers_words() {
        let c = shipped();
        let tz: chrono_tz::Tz = "Europe/Paris".parse().unwrap();
        let at = chrono::TimeZone::with_ymd_and_hms(&tz, 2026, 3, 3, 8, 0, 0).unwrap();
        assert_eq!(
            c.date("en", "date.first_lesson", &at).unwrap(),
            "Tuesday 3 March at 08:00 (CET)"
        );
        assert_eq!(
            c.date("fr", "date.first_lesson", &at).unwrap(),
            "mardi 3 mars à 8\u{a0}h\u{a0}00 (CET)"
        );
        let first = chrono::TimeZone::with_ymd_and_hms(&tz, 2026, 6, 1, 7, 30, 0).unwrap();
        assert_eq!(
            c.date("fr-CA", "date.journal", &first).unwrap(),
            "1er juin 2026"
        );
        assert_eq!(c.date("en", "date.journal", &first).unwrap(), "1 June 2026");
    }

    #[test]
    fn counts_choose_the_form_the_language_uses() {
        let c = shipped();
        assert_eq!(
            c.counted("en", "index.phase_lessons", 1),
            "index.phase_lessons.one"
        );
        assert_eq!(
            c.counted("en", "index.phase_lessons", 0),
            "index.phase_lessons.other"
        );
        assert_eq!(
            c.counted("fr", "index.phase_lessons", 0),
            "index.phase_lessons.one"
        );
        assert_eq!(
            c.counted("fr", "index.phase_lessons", 2),
            "index.phase_lessons.other"
        );
    }
}
