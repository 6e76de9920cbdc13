//! Recognises the lines mail clients add around a reply: attributions, forwarded-header blocks, separators, device footers and banners.
//!
//! The words come from the per-language files in `lang/` (see [`super::lang`]); the rules
//! here are structural and hold for every language: an attribution has a date, a name or an
//! address, and a verb or a colon; a header block is several label lines one of which names
//! the sender; a device footer is a short line naming a device. Every test looks at one line,
//! or at most a few joined lines of bounded length, so the stripper stays linear whatever the
//! input.

use std::sync::LazyLock;

use regex::{Regex, RegexSet};

use super::lang::{self, alternation};

/// Longer lines are prose: no client writes an attribution or header this long.
pub(super) const MAX_MARKER_LINE: usize = 400;

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("built-in pattern {pattern:?}: {e}"))
}

/// The alternation of every language's entries in one list.
fn words(pick: impl Fn(&lang::Language) -> &Vec<String>) -> String {
    alternation(&lang::all(pick))
}

static VERBS: LazyLock<String> = LazyLock::new(|| words(|l| &l.attribution.verbs));
static OPENERS: LazyLock<String> = LazyLock::new(|| words(|l| &l.attribution.openers));
static CONTINUATIONS: LazyLock<String> = LazyLock::new(|| words(|l| &l.attribution.continuations));

/// "… I wrote:" is someone quoting themselves in prose, never a client's attribution.
static FIRST_PERSON: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)(^|[^\p{{L}}])({})([^\p{{L}}]|$)",
        words(|l| &l.attribution.first_person)
    ))
});
/// An attribution verb as a word of its own (or after a closing `>`).
static VERB_WORD: LazyLock<Regex> =
    LazyLock::new(|| re(&format!(r#"(?i)(^|[\s>(,"'\]])({})($|[\s/,:：(])"#, *VERBS)));
/// The verb ends the line, with or without a colon ("… wrote:", "… wrote").
static VERB_END: LazyLock<Regex> =
    LazyLock::new(|| re(&format!(r"(?i)(^|[\s>)\]])({})\s*[:：]?$", *VERBS)));
/// The verb, then anything, then the closing colon ("X <a@b> schrieb am …:").
static VERB_THEN_COLON: LazyLock<Regex> =
    LazyLock::new(|| re(&format!(r"(?i)(^|[\s>)\]])({})([\s/,].*)?[:：]$", *VERBS)));
static OPENER_START: LazyLock<Regex> = LazyLock::new(|| re(&format!(r"(?i)^({})(\s|,)", *OPENERS)));
static ATTRIBUTION_START: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)^([-*\s]*({}|{})(\s|,)|[-*\s]*\d)",
        *OPENERS, *CONTINUATIONS
    ))
});
/// Where an attribution may begin inside a line the person also typed on ("reply On … wrote:").
static OPENER_INSIDE: LazyLock<Regex> =
    LazyLock::new(|| re(&format!(r"(?i)(\s|-)({})\s", *OPENERS)));
static SENDER_THEN_VERB: LazyLock<Regex> =
    LazyLock::new(|| re(&format!(r"(?i)@\S*\s+({})([^\p{{L}}]|$)", *VERBS)));
/// Gmail's numeric form: "2024-01-01 9:00 GMT+01:00 Ann <ann@example.com>:" or "2013/7/20 Ann <ann@…>".
static DATE_FIRST: LazyLock<Regex> = LazyLock::new(|| re(r"^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\s"));
/// A line that opens with a date or a time ("30.09.2017, 18.30, …", "11:00 AM, …").
static LEADING_DATE: LazyLock<Regex> =
    LazyLock::new(|| re(r"^(\d{1,4}[-/.]\s?\d{1,2}[-/.]|\d{1,2}:\d{2}\b)"));
static GMT_TIME: LazyLock<Regex> = LazyLock::new(|| re(r"\d{1,2}:\d{2}\s+GMT[+-]\d"));
static DATE_OR_TIME: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(19|20)\d{2}\b|\b\d{1,2}[:.h]\d{2}\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b"));
static TIME: LazyLock<Regex> = LazyLock::new(|| re(r"\b\d{1,2}[:.h]\d{2}\b"));
static YEAR_OR_NUMERIC_DATE: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(19|20)\d{2}\b|\b\d{1,2}[./-]\d{1,2}[./-]\d{2,4}\b"));
/// The line ends with the sender's bracketed address and a colon: "… "Ann" <ann@example.com>:".
static ADDRESS_COLON_END: LazyLock<Regex> =
    LazyLock::new(|| re(r"<[^<>\s]+@[^<>\s]+>\)?\s*[:：]$"));

/// How sure a line is an attribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Attribution {
    /// Only an attribution if quoted lines follow it (e.g. "Ann wrote:").
    IfQuoteFollows,
    /// Shaped like one and dated or addressed: what follows is someone else's message.
    Certain,
}

/// Whether `s` holds a year, a time or a numeric date.
pub(super) fn is_dated(s: &str) -> bool {
    DATE_OR_TIME.is_match(s)
}

/// Whether `s` holds both a time and a year or numeric date: a timestamp, not a weekday in prose.
pub(super) fn has_full_date(s: &str) -> bool {
    TIME.is_match(s) && YEAR_OR_NUMERIC_DATE.is_match(s)
}

/// Whether `candidate` (one line, or a wrapped attribution joined with spaces) introduces a quoted message.
pub(super) fn attribution(candidate: &str) -> Option<Attribution> {
    if candidate.len() > 3 * MAX_MARKER_LINE {
        return None;
    }
    let c = normalise(candidate);
    // Zoho and Android write "---- On … wrote ----"; Outlook users sometimes bold it.
    let framed = c.starts_with("--") && c.ends_with("--");
    let c = c.trim_matches(|ch: char| ch == '-' || ch == '*' || ch.is_whitespace());
    if c.is_empty() || !(may_end_attribution(c) || starts_with_digit(c)) {
        return None;
    }
    let dated = DATE_OR_TIME.is_match(c);
    let addressed = c.contains('@');
    if starts_with_digit(c) && DATE_FIRST.is_match(c) && (addressed || GMT_TIME.is_match(c)) {
        return Some(Attribution::Certain);
    }
    if !may_end_attribution(c) || FIRST_PERSON.is_match(c) {
        return None;
    }
    let colon = c.ends_with(':') || c.ends_with('：');
    let verb_at_end = VERB_END.is_match(c);
    let verb = verb_at_end || VERB_WORD.is_match(c);
    let opener = OPENER_START.is_match(c) || LEADING_DATE.is_match(c);
    // "On <date>, Ann <ann@…> wrote:", "Le <date>, Ann a écrit :", "W dniu <date> Ann napisał:".
    if verb && (dated || addressed) && opener && (colon || verb_at_end) {
        return Some(Attribution::Certain);
    }
    // "<name> <address> <verb> …:" in any language, the verb before or after the name.
    if addressed && (verb_at_end || VERB_THEN_COLON.is_match(c)) {
        return Some(Attribution::Certain);
    }
    // "Ann schrieb am Do. 20. Juni 2024 um 14:49:": a verb and a full timestamp.
    if verb && colon && has_full_date(c) {
        return Some(Attribution::Certain);
    }
    // Date-first forms with no verb: "30.09.2017, 18.30, "Ann" <ann@…>:", Mail.ru, Gmail in Russian.
    if dated && ADDRESS_COLON_END.is_match(c) {
        return Some(Attribution::Certain);
    }
    // Unknown languages still show "<date> <name> <address>…:" right above the quote.
    let any_language = addressed && dated && colon;
    let short = verb_at_end && (colon || framed) && c.split_whitespace().count() <= 8;
    if any_language || short {
        return Some(Attribution::IfQuoteFollows);
    }
    None
}

/// A cheap test that lets most lines skip the patterns: attributions end in a colon or in a verb.
pub(super) fn may_end_attribution(line: &str) -> bool {
    let l = line.trim_end_matches(|ch: char| {
        ch == '-' || ch == '*' || ch.is_whitespace() || is_invisible(ch)
    });
    if l.ends_with(':') || l.ends_with('：') {
        return true;
    }
    // The last word, when it could be a verb ("wrote", "schrieb"): a short regex on a short tail.
    let tail_start = l.char_indices().rev().take(24).last().map_or(0, |(i, _)| i);
    let tail = &l[tail_start..];
    tail.chars().any(char::is_alphabetic) && VERB_END.is_match(tail)
}

/// Gmail's numeric attributions ("2013/7/20 Ann <…>") start with a digit and may lack a colon.
pub(super) fn starts_with_digit(line: &str) -> bool {
    line.trim_start_matches(|ch: char| {
        ch == '-' || ch == '*' || ch.is_whitespace() || is_invisible(ch)
    })
    .starts_with(|ch: char| ch.is_ascii_digit())
}

/// Whether a line could open an attribution that wraps onto the next lines.
pub(super) fn starts_like_attribution(line: &str) -> bool {
    line.len() <= MAX_MARKER_LINE && ATTRIBUTION_START.is_match(line)
}

/// Whether a line opens an attribution firmly: with an opener word ("On", "Le") or a date,
/// not a continuation ("at 10:18,") or any digit.
pub(super) fn opens_attribution(line: &str) -> bool {
    if line.len() > MAX_MARKER_LINE {
        return false;
    }
    let l = normalise(line);
    let l = l.trim_start_matches(|ch: char| ch == '-' || ch == '*' || ch.is_whitespace());
    OPENER_START.is_match(l) || LEADING_DATE.is_match(l) || DATE_FIRST.is_match(l)
}

/// Whether a line opens an attribution by naming the sender's address before the verb.
pub(super) fn names_sender_first(line: &str) -> bool {
    line.len() <= MAX_MARKER_LINE && line.contains('@') && SENDER_THEN_VERB.is_match(line)
}

/// The byte offsets in `line` where an attribution opener follows other text ("reply On …").
pub(super) fn openers_inside(line: &str) -> impl Iterator<Item = usize> + '_ {
    OPENER_INSIDE
        .find_iter(line)
        .map(|m| m.start() + 1)
        .filter(|&at| at > 1)
        .take(4)
}

/// Whether a quoted line is only the end of a wrapped attribution whose address closed on it:
/// "> wrote:" or ">:" under "On … Ann <ann@…".
pub(super) fn is_closing_fragment(line: &str) -> bool {
    let rest = line.trim_start().trim_start_matches('>').trim();
    rest.len() <= 40
        && (rest == ":"
            || rest == "："
            || (rest.ends_with([':', '：'])
                && rest.split_whitespace().count() <= 3
                && VERB_END.is_match(rest)))
}

/// What a header label announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Label {
    From,
    Date,
    To,
    Other,
}

/// One header line: its label, and whether its value holds an address or a full timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct HeaderLine {
    pub label: Label,
    pub has_address: bool,
    pub has_date: bool,
}

static LABELS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "(?P<from>{})|(?P<date>{})|(?P<to>{})|(?P<other>{})",
        words(|l| &l.headers.from),
        words(|l| &l.headers.date),
        words(|l| &l.headers.to),
        words(|l| &l.headers.other)
    )
});
/// Outlook-style header labels at the start of a line, bold or not: "From:", "*Sent:*", "Objet :".
static HEADER_LABEL: LazyLock<Regex> =
    LazyLock::new(|| re(&format!(r"(?i)^[\s*]*(?:{})[\s*]*[:：]", *LABELS)));
/// Labels anywhere in a line, for webmails that run the whole block together on one line.
static LABEL_INSIDE: LazyLock<Regex> =
    LazyLock::new(|| re(&format!(r"(?i)(?:^|[\s\d*])(?:{})[\s*]*[:：]", *LABELS)));

fn label_of(caps: &regex::Captures<'_>) -> Label {
    if caps.name("from").is_some() {
        Label::From
    } else if caps.name("date").is_some() {
        Label::Date
    } else if caps.name("to").is_some() {
        Label::To
    } else {
        Label::Other
    }
}

/// Whether the line is a header field of a quoted-below message ("From: …", "Sent: …", "Objet : …").
pub(super) fn header_label(line: &str) -> Option<HeaderLine> {
    let line = normalise(line);
    let caps = HEADER_LABEL.captures(&line)?;
    let value = &line[caps.get(0).map_or(0, |m| m.end())..];
    Some(HeaderLine {
        label: label_of(&caps),
        has_address: value.contains('@'),
        has_date: has_full_date(value),
    })
}

/// Whether one line holds a whole header block run together ("Subject: … Date: … From: … To: …").
pub(super) fn is_run_together_headers(line: &str) -> bool {
    if line.len() > MAX_MARKER_LINE || line.matches([':', '：']).count() < 3 || !line.contains('@')
    {
        return false;
    }
    let line = normalise(line);
    let mut from = false;
    let mut count = 0;
    for caps in LABEL_INSIDE.captures_iter(&line).take(16) {
        count += 1;
        from |= label_of(&caps) == Label::From;
    }
    from && count >= 3
}

static SEPARATOR: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)^[\s*_]*-{{2,}}\s*({})\b",
        words(|l| &l.separators.titles)
    ))
});
static FORWARD_TITLE: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)^[\s*_]*-{{2,}}\s*({})\b",
        words(|l| &l.separators.forwards)
    ))
});
static FORWARD_INTRO: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)^[\s*_-]*({})[\s*]*[:：]",
        words(|l| &l.separators.intros)
    ))
});
/// A short title framed by dashes: "-----Reply Message-----", "------ Alte Nachricht ------".
static FRAMED_TITLE: LazyLock<Regex> =
    LazyLock::new(|| re(r"^[\s*_]*-{2,}\s*(?P<title>[^-]{2,60}?)\s*-{2,}[\s*_]*$"));
static MESSAGE_WORD: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)(^|[^\p{{L}}])({})([^\p{{L}}]|$)",
        words(|l| &l.separators.message_words)
    ))
});
static REPLY_ABOVE: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)\b({})\b",
        words(|l| &l.separators.reply_above)
    ))
});

/// Whether the line is a signature delimiter (`-- `) or Outlook's underscore rule: nothing after it is the answer.
pub(super) fn is_signature_or_rule_cut(line: &str) -> bool {
    let trimmed = line.trim();
    trimmed == "--" || (trimmed.len() >= 20 && trimmed.bytes().all(|b| b == b'_'))
}

/// A cheap test before [`is_separator`]: separators have a dash run, a colon or a `#` frame.
pub(super) fn may_be_separator(line: &str) -> bool {
    line.len() <= MAX_MARKER_LINE
        && (line.contains("--") || line.contains(':') || line.contains('：') || line.contains('#'))
}

/// Whether the line opens an original or forwarded message ("-----Original Message-----",
/// "Begin forwarded message:", a dash-framed title naming a message) or is a helpdesk's
/// "reply above this line" marker.
pub(super) fn is_separator(line: &str) -> bool {
    let line = normalise(line);
    if SEPARATOR.is_match(&line) || is_forward_normalised(&line) {
        return true;
    }
    if let Some(title) = FRAMED_TITLE
        .captures(&line)
        .and_then(|c| c.name("title"))
        .map(|t| t.as_str())
        && title.split_whitespace().count() <= 5
        && MESSAGE_WORD.is_match(title)
    {
        return true;
    }
    line.len() <= 160 && REPLY_ABOVE.is_match(&line)
}

/// Whether the line opens a forwarded message: "---------- Forwarded message ---------", "Begin forwarded message:".
pub(super) fn is_forward(line: &str) -> bool {
    line.len() <= MAX_MARKER_LINE && is_forward_normalised(&normalise(line))
}

fn is_forward_normalised(line: &str) -> bool {
    FORWARD_TITLE.is_match(line) || FORWARD_INTRO.is_match(line)
}

/// Whether the line is a dash-framed title of any kind ("---- Anything ----"): above a header
/// block or an attribution it belongs to them.
pub(super) fn is_framed_title(line: &str) -> bool {
    line.len() <= MAX_MARKER_LINE && FRAMED_TITLE.is_match(&normalise(line))
}

/// A cheap test before [`header_label`]: a label's colon comes early in the line.
pub(super) fn may_be_header(line: &str) -> bool {
    line.len() <= MAX_MARKER_LINE
        && line
            .char_indices()
            .take(40)
            .any(|(_, c)| c == ':' || c == '：')
}

/// Whether the line is only a visual rule ("-----", "=====", "***") or Gmail's tracker mark.
pub(super) fn is_rule(line: &str) -> bool {
    let t = line.trim();
    t == "\u{1427}" || (t.chars().count() >= 2 && t.chars().all(|c| "-_=*~#+".contains(c)))
}

/// Whether the line is a spaced break ("* * *", "**. . . . .**") that signature and footer
/// blocks open with; unlike a plain rule it is never table or Markdown syntax inside prose.
pub(super) fn is_spaced_rule(line: &str) -> bool {
    let t = line.trim();
    // Markdown bold around the rule: "**. . . .**".
    let t = match t.strip_prefix("**").and_then(|t| t.strip_suffix("**")) {
        Some(inner) if !inner.is_empty() => inner.trim(),
        _ => t,
    };
    let marks = t.chars().filter(|c| "*.·•-_=~".contains(*c)).count();
    t.len() <= 80
        && marks >= 3
        && t.contains(' ')
        && t.chars().all(|c| c == ' ' || "*.·•-_=~".contains(c))
        && !t.contains("  ")
}

static URL: LazyLock<Regex> = LazyLock::new(|| {
    re(r"\(\s*https?://[^)]*\)|<\s*(https?://|mailto:)[^>]*>|https?://\S+|[\[\]]")
});
/// Every device template in one regex; each alternative has one group, its device.
static DEVICE_TEMPLATES: LazyLock<Regex> = LazyLock::new(|| {
    let alternatives: Vec<String> = lang::all(|l| &l.device.templates)
        .iter()
        .map(|t| format!("(?:{})", template_body(t)))
        .collect();
    re(&format!("(?i)^(?:{})$", alternatives.join("|")))
});
static DEVICE_NAME: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)(^|[^\p{{L}}])(({})|({})([^\p{{L}}]|$))",
        words(|l| &l.device.brands),
        words(|l| &l.device.names)
    ))
});
static POSSESSIVE: LazyLock<Regex> =
    LazyLock::new(|| re(&format!(r"(?i)^({})\s+", words(|l| &l.device.possessives))));
static JOINER: LazyLock<Regex> =
    LazyLock::new(|| re(&format!(r"(?i)\s({})\s", words(|l| &l.device.joiners))));

/// Turns "sent from {device}" into an anchored, case-insensitive regex capturing the device.
#[cfg(test)]
pub(super) fn template_pattern(template: &str) -> String {
    format!("(?i)^{}$", template_body(template))
}

/// The regex for one template, unanchored: literal words, `{device}` as the one group, `{word}` as any word.
fn template_body(template: &str) -> String {
    let mut out = String::new();
    for (i, part) in template.trim().split("{device}").enumerate() {
        if i > 0 {
            out.push_str(r"\s*(.+?)\s*");
        }
        let literal = part
            .split("{word}")
            .map(|piece| {
                piece
                    .split(' ')
                    .map(regex::escape)
                    .collect::<Vec<_>>()
                    .join(r"\s+")
            })
            .collect::<Vec<_>>()
            .join(r"\S+");
        out.push_str(&literal);
    }
    out
}

/// Whether the line is a "Sent from my iPhone"-style footer, in any of the languages.
pub(super) fn is_device_line(line: &str) -> bool {
    if line.len() > MAX_MARKER_LINE {
        return false;
    }
    let without_links = URL.replace_all(line, " ");
    let l = normalise(&without_links);
    let l = l.trim_matches(|c: char| c.is_whitespace() || "().!".contains(c));
    if l.is_empty() || l.len() > 160 {
        return false;
    }
    if l.starts_with("<<") && l.ends_with(">>") && l.to_lowercase().starts_with("<<sent by") {
        return true;
    }
    DEVICE_TEMPLATES
        .captures(l)
        .and_then(|c| c.iter().skip(1).flatten().next())
        .is_some_and(|device| names_a_device(device.as_str()))
}

/// Whether the words a footer template left over name a device or an app: a known name, a
/// product-like name after "my" ("my Wiko RIDGE 4G"), or one word in CamelCase ("TypeApp").
fn names_a_device(device: &str) -> bool {
    let (possessive, rest) = match POSSESSIVE.find(device) {
        Some(m) => (true, &device[m.end()..]),
        None => (false, device),
    };
    // "my desk, this feels easier …" is a sentence; "my cell, excuse typos" is not.
    let clause_end = rest
        .find([',', ';', '!', '?'])
        .into_iter()
        .chain(rest.find(". "))
        .min();
    let clause = &rest[..clause_end.unwrap_or(rest.len())];
    // "BlackBerry device on the Vega network": the device comes before the joiner.
    let (name, tail) = match JOINER.find(clause) {
        Some(m) => (&clause[..m.start()], &clause[m.end()..]),
        None => (clause, ""),
    };
    let name_words = name.split_whitespace().count();
    if name_words == 0 || name_words > 4 || tail.split_whitespace().count() > 5 {
        return false;
    }
    if DEVICE_NAME.is_match(name) || DEVICE_NAME.is_match(tail) && name_words <= 2 {
        return true;
    }
    let product_like = name
        .split_whitespace()
        .any(|w| w.chars().any(|c| c.is_uppercase() || c.is_ascii_digit()));
    let camel_case = name_words == 1
        && name
            .chars()
            .zip(name.chars().skip(1))
            .any(|(a, b)| a.is_lowercase() && b.is_uppercase());
    clause_end.is_none() && ((possessive && product_like) || camel_case)
}

static BANNER: LazyLock<RegexSet> = LazyLock::new(|| {
    let patterns: Vec<String> = lang::all(|l| &l.banners.patterns)
        .iter()
        .map(|p| format!("(?i){p}"))
        .collect();
    RegexSet::new(patterns).expect("banner patterns")
});

/// Whether the line opens a notice a mail gateway puts above the reply ("CAUTION: external sender…").
pub(super) fn is_banner(line: &str) -> bool {
    line.len() <= 2 * MAX_MARKER_LINE && BANNER.is_match(normalise(line).trim())
}

/// Zero-width and direction marks: invisible, so a line of them is blank and they never split a word.
pub(super) fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}' | '\u{00AD}')
}

/// Makes look-alike characters plain so patterns can be written simply: whitespace runs (the
/// no-break spaces French puts before colons too) become one space, invisible marks and Arabic
/// vowel signs go, Arabic-Indic digits become ASCII and Unicode hyphens become '-'.
pub(super) fn normalise(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.chars() {
        if is_invisible(c) || matches!(c, '\u{0640}' | '\u{064B}'..='\u{065F}' | '\u{0670}') {
            continue;
        }
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(match c {
            '\u{0660}'..='\u{0669}' => char::from(b'0' + (c as u32 - 0x0660) as u8),
            '\u{06F0}'..='\u{06F9}' => char::from(b'0' + (c as u32 - 0x06F0) as u8),
            '\u{2010}' | '\u{2011}' => '-',
            _ => c,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_drops_marks_and_plainens_digits() {
        assert_eq!(
            normalise("\u{202b}في ٠٤\u{200f}/٠٧  x\u{202c}"),
            "في 04/07 x"
        );
        assert_eq!(normalise("iPhone\u{2011}ul"), "iPhone-ul");
    }

    #[test]
    fn template_patterns_capture_the_device() {
        let p = re(&template_pattern("von meinem {device} gesendet"));
        let caps = p.captures("Von meinem  iPad gesendet").unwrap();
        assert_eq!(&caps[1], "iPad");
        let p = re(&template_pattern("{word} from my {device}"));
        assert_eq!(&p.captures("Typed from my phone").unwrap()[1], "phone");
        let p = re(&template_pattern("{device}から送信"));
        assert_eq!(&p.captures("iPhoneから送信").unwrap()[1], "iPhone");
    }

    #[test]
    fn attribution_shapes_hold_across_languages() {
        for (line, want) in [
            ("Ruth wrote:", Some(Attribution::IfQuoteFollows)),
            ("---- Ruth wrote ----", Some(Attribution::IfQuoteFollows)),
            (
                "On 5 Mar 2024, Ruth <ruth@example.com> wrote",
                Some(Attribution::Certain),
            ),
            (
                "05.03.2024, 18.40, \"Ruth\" <ruth@example.com>:",
                Some(Attribution::Certain),
            ),
            (
                "Tuesday, 5 March 2024, 6:40 PM +0100 from ruth@example.com <ruth@example.com>:",
                Some(Attribution::Certain),
            ),
            (
                "On 5 Mar 2024 I emailed ruth@example.com this:",
                Some(Attribution::IfQuoteFollows),
            ),
            ("On Monday at 9:30 I wrote:", None),
            ("On the other hand:", None),
            ("2024-03-05 18:40:25", None),
        ] {
            assert_eq!(attribution(line), want, "{line}");
        }
    }

    #[test]
    fn separators_need_a_message_word_or_a_known_title() {
        assert!(is_separator("------ Alte Nachricht ------"));
        assert!(is_separator("## Please type your reply above this line ##"));
        assert!(!is_separator("----- Part two -----"));
        assert!(!is_separator("-- first point"));
        assert!(is_framed_title("----- Part two -----"));
    }

    #[test]
    fn spaced_rules_are_not_markdown_rules() {
        assert!(is_spaced_rule("* * *"));
        assert!(is_spaced_rule("**. . . . . . .**"));
        assert!(!is_spaced_rule("-----"));
        assert!(!is_spaced_rule("| --- | --- |"));
        assert!(!is_spaced_rule("* item"));
    }

    #[test]
    fn run_together_headers_need_a_sender_and_three_labels() {
        assert!(is_run_together_headers(
            "Subject: Week two Date: 2024-03-05 18:40From: Desk desk@example.net To: ruth@example.com"
        ));
        assert!(!is_run_together_headers(
            "From: my side: fear. To: be honest: shame, ruth@example.com"
        ));
    }

    #[test]
    fn closing_fragments_are_short() {
        assert!(is_closing_fragment(">:"));
        assert!(is_closing_fragment("> wrote:"));
        assert!(!is_closing_fragment("> I think so:"));
    }
}
