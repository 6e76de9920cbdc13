//! The line walk behind [`super::extract_answer`]: which lines are the person's, and where the quoted or forwarded message begins.

use super::markers::{self, Attribution, MAX_MARKER_LINE};
use super::{is_blank, is_quoted};

/// How far below a "From:" line the rest of a forwarded-header block may reach.
const HEADER_BLOCK_LINES: usize = 8;

/// Pattern checks allowed per message. Real replies need a few dozen; the cap keeps crafted
/// input (a megabyte of "1 a:" lines) linear with a small constant, at worst leaving it unstripped.
const PATTERN_BUDGET: usize = 4_000;

/// Walks a reply's lines once, keeping the person's and stopping where someone else's message begins.
pub(super) struct Scanner<'l, 'a> {
    lines: &'l [&'a str],
    /// `next_content[i]`: the first non-blank line at or after `i`, so lookaheads are O(1).
    next_content: Vec<usize>,
    /// Header-label verdicts, each line's computed at most once.
    labels: Vec<Option<Option<bool>>>,
    budget: usize,
}

impl<'l, 'a> Scanner<'l, 'a> {
    pub(super) fn new(lines: &'l [&'a str]) -> Self {
        let mut next_content = vec![lines.len(); lines.len() + 1];
        for i in (0..lines.len()).rev() {
            next_content[i] = if is_blank(lines[i]) {
                next_content[i + 1]
            } else {
                i
            };
        }
        Scanner {
            lines,
            next_content,
            labels: vec![None; lines.len()],
            budget: PATTERN_BUDGET,
        }
    }

    /// Spends one unit of the pattern budget; false once it is gone.
    fn spend(&mut self) -> bool {
        self.budget = self.budget.saturating_sub(1);
        self.budget > 0
    }

    /// The person's lines in order, up to the first line that ends the answer.
    pub(super) fn written_lines(&mut self) -> Vec<&'a str> {
        let lines = self.lines;
        let mut out: Vec<&str> = Vec::new();
        // Set when quoted lines or an attribution were dropped since the last kept line: the
        // blank lines around them collapse into one.
        let mut gap = false;
        let mut i = 0;
        while i < lines.len() {
            let line = lines[i];
            if is_quoted(line) {
                gap = true;
                i += 1;
                continue;
            }
            if is_blank(line) {
                if !gap {
                    out.push("");
                }
                i += 1;
                continue;
            }
            let may_be_marker = self.may_be_marker(i);
            if may_be_marker && self.ends_answer(i) {
                break;
            }
            let attribution = if may_be_marker {
                self.attribution_at(i)
            } else {
                None
            };
            if let Some((len, sureness)) = attribution {
                let after = self.next_content[i + len];
                let quote_follows = after < lines.len() && is_quoted(lines[after]);
                if quote_follows || after == lines.len() {
                    gap = true;
                    i += len;
                    continue;
                }
                // An attribution over unquoted text: the rest is a copy of someone else's
                // message (Outlook mobile and many webmails quote that way).
                if sureness == Attribution::Certain {
                    break;
                }
            }
            if gap {
                while out.last().is_some_and(|l| is_blank(l)) {
                    out.pop();
                }
                if !out.is_empty() {
                    out.push("");
                }
                gap = false;
            }
            out.push(line);
            i += 1;
        }
        out
    }

    /// A cheap test that lets plain prose skip every pattern: markers have a colon, a dash or
    /// underscore run, a leading digit, or sit just above a line that may end an attribution.
    fn may_be_marker(&self, i: usize) -> bool {
        let line = self.lines[i];
        let ends_near = |j: usize| {
            self.lines
                .get(j)
                .is_some_and(|l| markers::may_end_attribution(l))
        };
        line.len() <= MAX_MARKER_LINE
            && (line.contains(':')
                || line.contains('：')
                || line.contains("--")
                || line.contains("__")
                || markers::starts_with_digit(line)
                || ends_near(i)
                || ends_near(i + 1)
                || ends_near(i + 2))
    }

    fn ends_answer(&mut self, i: usize) -> bool {
        let line = self.lines[i];
        if markers::is_signature_or_rule_cut(line) {
            return true;
        }
        if markers::may_be_separator(line) && self.spend() && markers::is_separator(line) {
            return true;
        }
        self.starts_header_block(i)
    }

    /// Whether line `i` opens a forwarded-header block: labels on at least three of the next lines, one of them "From".
    fn starts_header_block(&mut self, i: usize) -> bool {
        let Some(mut has_from) = self.header_label(i) else {
            return false;
        };
        let mut labels = 1;
        for j in i + 1..(i + 1 + HEADER_BLOCK_LINES).min(self.lines.len()) {
            if is_quoted(self.lines[j]) {
                break;
            }
            if let Some(is_from) = self.header_label(j) {
                labels += 1;
                has_from |= is_from;
            }
        }
        has_from && labels >= 3
    }

    fn header_label(&mut self, i: usize) -> Option<bool> {
        if let Some(known) = self.labels[i] {
            return known;
        }
        let line = self.lines[i];
        let label = if markers::may_be_header(line) && self.spend() {
            markers::header_label(line)
        } else {
            None
        };
        self.labels[i] = Some(label);
        label
    }

    /// Whether an attribution starts at line `i`, and over how many lines (clients wrap long ones).
    fn attribution_at(&mut self, i: usize) -> Option<(usize, Attribution)> {
        if let Some(sure) = self.attribution_between(i, i + 1) {
            return Some((1, sure));
        }
        // A wrapped attribution begins with its date or its "On"/"Le"/"Am"… and is cut
        // mid-phrase; a finished sentence above an attribution is prose and must survive.
        let first = self.lines[i].trim();
        let may_close = |j: usize| {
            self.lines
                .get(j)
                .is_some_and(|l| markers::may_end_attribution(l))
        };
        if !(may_close(i + 1) || may_close(i + 2) || markers::starts_with_digit(first)) {
            return None;
        }
        // Gmail's German form names the sender first: "Ann <ann@…> schrieb am Fr., 28.\nApr. 2017 …:".
        let opens = (markers::starts_like_attribution(first)
            && !first.ends_with(['.', '!', '?', ';', ':']))
            || markers::names_sender_first(first);
        if !opens {
            return None;
        }
        for len in 2..=3 {
            for start in i + 1..i + len {
                if markers::starts_like_attribution(self.lines.get(start)?.trim())
                    && self.attribution_between(start, i + len).is_some()
                {
                    return None;
                }
            }
            if let Some(sure) = self.attribution_between(i, i + len) {
                return Some((len, sure));
            }
        }
        None
    }

    /// Whether lines `from..to`, joined, form an attribution.
    fn attribution_between(&mut self, from: usize, to: usize) -> Option<Attribution> {
        let part = self.lines.get(from..to)?;
        let (last, rest) = part.split_last()?;
        // Most candidates fail this cheap test before any joining or pattern matching.
        let plausible = markers::may_end_attribution(last) || markers::starts_with_digit(part[0]);
        // A wrapped address can push a lone ">:" onto the last line; that is no quote.
        let closing_bracket =
            !rest.is_empty() && last.trim().len() <= 2 && last.trim().starts_with('>');
        let usable = part
            .iter()
            .all(|l| !is_blank(l) && l.len() <= MAX_MARKER_LINE)
            && rest.iter().all(|l| !is_quoted(l))
            && (!is_quoted(last) || closing_bracket);
        if !plausible || !usable || !self.spend() {
            return None;
        }
        let candidate = part.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ");
        markers::attribution(&candidate)
    }
}
