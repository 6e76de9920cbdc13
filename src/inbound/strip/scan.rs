//! The line walk behind [`super::extract_answer`]: which lines are the person's, and where the quoted or forwarded message begins.

use super::markers::{self, Attribution, HeaderLine, Label, MAX_MARKER_LINE};
use super::{is_blank, is_quoted};

/// How far below a "From:" line the rest of a forwarded-header block may reach.
const HEADER_BLOCK_LINES: usize = 8;

/// Pattern checks allowed per message. Real replies need a few dozen; the cap keeps crafted
/// input (a megabyte of "1 a:" lines) linear with a small constant, at worst leaving it unstripped.
const PATTERN_BUDGET: usize = 4_000;

/// How many kept lines above an attribution may turn out to be its first lines.
const MAX_HEAD_LINES: usize = 3;

/// A spaced rule ("* * *") opens a footer only this close to the end of the message.
const MAX_FOOTER_LINES: usize = 10;

/// Where a marker ended the answer.
#[derive(Debug, Clone, Copy)]
pub(super) struct Cut {
    /// The first line after the marker block, where the text it introduces starts; `None`
    /// when what follows is a signature or footer, never the person's words.
    pub resume: Option<usize>,
}

/// Walks a reply's lines once, keeping the person's and stopping where someone else's message begins.
pub(super) struct Scanner<'l, 'a> {
    lines: &'l [&'a str],
    /// `next_content[i]`: the first non-blank line at or after `i`, so lookaheads are O(1).
    next_content: Vec<usize>,
    /// Header-label verdicts, each line's computed at most once.
    labels: Vec<Option<Option<HeaderLine>>>,
    budget: usize,
}

/// The lines kept so far, each with the index of the line it came from.
#[derive(Default)]
struct Kept<'a> {
    lines: Vec<&'a str>,
    from: Vec<usize>,
    /// How many of `lines` are not blank.
    content: usize,
}

impl<'a> Kept<'a> {
    fn push(&mut self, line: &'a str, from: usize) {
        self.content += usize::from(!is_blank(line));
        self.lines.push(line);
        self.from.push(from);
    }

    fn pop_blanks(&mut self) {
        while self.lines.last().is_some_and(|l| is_blank(l)) {
            self.lines.pop();
            self.from.pop();
        }
    }

    fn has_content(&self) -> bool {
        self.content > 0
    }

    fn holds(&self, i: usize) -> bool {
        self.from.binary_search(&i).is_ok()
    }

    /// Drops every kept line that came from line `top` or below.
    fn drop_from(&mut self, top: usize) {
        let keep = self.from.partition_point(|&f| f < top);
        self.content -= self.lines[keep..].iter().filter(|l| !is_blank(l)).count();
        self.lines.truncate(keep);
        self.from.truncate(keep);
    }
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

    /// The person's lines in order from line `start`, up to the first line that ends the answer, and where that was.
    pub(super) fn written_lines(&mut self, start: usize) -> (Vec<&'a str>, Option<Cut>) {
        let lines = self.lines;
        let mut out = Kept::default();
        // Set when quoted lines or an attribution were dropped since the last kept line: the
        // blank lines around them collapse into one, or into none if the person left none above.
        let mut gap = false;
        let mut blank_before_gap = false;
        let mut i = start;
        while i < lines.len() {
            let line = lines[i];
            if is_quoted(line) && !is_decoration(line) {
                // "On … Ann <\nann@…>\n> wrote:": the wrapped attribution closes on a quote-like line.
                if markers::is_closing_fragment(line)
                    && self.spend()
                    && let Some(top) = self.head_above(&out, i, line, true)
                {
                    out.drop_from(top);
                    let after = self.next_content[i + 1];
                    if after < lines.len() && !is_quoted(lines[after]) {
                        return self.finish(out, Some(i + 1));
                    }
                }
                if !gap {
                    blank_before_gap = out.lines.last().is_some_and(|l| is_blank(l));
                }
                gap = true;
                i += 1;
                continue;
            }
            if self.continues_quote(i) {
                i += 1;
                continue;
            }
            if is_blank(line) {
                if !gap {
                    out.push("", i);
                }
                i += 1;
                continue;
            }
            if !out.has_content() {
                // A gateway's warning, or the device line some clients put first.
                if markers::is_banner(line) && self.spend() {
                    i = self.paragraph_end(i);
                    continue;
                }
                if self.stands_alone(i) && self.spend() && markers::is_device_line(line) {
                    i += 1;
                    continue;
                }
            }
            let may_be_marker = self.may_be_marker(i);
            if may_be_marker && let Some(resume) = self.ends_answer(i) {
                let top = self.block_head(&out, i);
                out.drop_from(top);
                return self.finish(out, resume);
            }
            let mut attribution = if may_be_marker {
                self.attribution_at(i)
            } else {
                None
            };
            // "reply On … wrote:": the person typed on the attribution's line.
            let mut prefix = None;
            let whole_line = attribution.is_none_or(|(len, _)| len == 1);
            if whole_line
                && may_be_marker
                && markers::may_end_attribution(line)
                && !markers::opens_attribution(line)
                && let Some((at, sure)) = self.attribution_inside(i)
            {
                attribution = Some((1, sure));
                prefix = Some(line[..at].trim_end_matches(|c: char| c == '-' || c.is_whitespace()));
            }
            if let Some((len, sureness)) = attribution {
                let after = self.next_content[i + len];
                let quote_follows = after < lines.len() && is_quoted(lines[after]);
                let top = if prefix.is_none() && !markers::opens_attribution(line) {
                    self.head_above(&out, i, &self.joined(i, i + len), false)
                } else {
                    None
                };
                if quote_follows || after == lines.len() || sureness == Attribution::Certain {
                    if let Some(top) = top {
                        out.drop_from(top);
                    }
                    if let Some(prefix) = prefix.filter(|p| !p.trim().is_empty()) {
                        push_kept(&mut out, prefix, i, &mut gap, blank_before_gap);
                    }
                }
                if quote_follows || after == lines.len() {
                    if !gap {
                        blank_before_gap = out.lines.last().is_some_and(|l| is_blank(l));
                    }
                    gap = true;
                    i += len;
                    continue;
                }
                // An attribution over unquoted text: the rest is a copy of someone else's
                // message (Outlook mobile and many webmails quote that way).
                if sureness == Attribution::Certain {
                    return self.finish(out, Some(i + len));
                }
            }
            if out.has_content() {
                // A "* * *" footer, or a device line between the answer and an unquoted original.
                if markers::is_spaced_rule(line) && self.near_end(i) {
                    return self.finish(out, None);
                }
                if self.stands_alone(i) && self.spend() && markers::is_device_line(line) {
                    return self.finish(out, Some(i + 1));
                }
            }
            push_kept(&mut out, line, i, &mut gap, blank_before_gap);
            i += 1;
        }
        (out.lines, None)
    }

    fn finish(&self, out: Kept<'a>, resume: Option<usize>) -> (Vec<&'a str>, Option<Cut>) {
        (out.lines, Some(Cut { resume }))
    }

    /// Lines `from..to`, trimmed and joined with spaces, blank ones skipped.
    fn joined(&self, from: usize, to: usize) -> String {
        self.lines[from..to.min(self.lines.len())]
            .iter()
            .map(|l| l.trim())
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The first line after the paragraph that holds line `i`.
    fn paragraph_end(&self, i: usize) -> usize {
        let mut j = i;
        while j < self.lines.len() && !is_blank(self.lines[j]) && j - i < HEADER_BLOCK_LINES * 2 {
            j += 1;
        }
        j
    }

    /// Whether line `i` is a paragraph of its own: blank lines (or the message's ends) around it.
    fn stands_alone(&self, i: usize) -> bool {
        let line = self.lines[i];
        line.len() <= 200
            && (i == 0 || is_blank(self.lines[i - 1]))
            && self.lines.get(i + 1).is_none_or(|l| is_blank(l))
    }

    /// Whether at most a few lines of content follow line `i` before the message or its quote ends.
    fn near_end(&self, i: usize) -> bool {
        let mut j = self.next_content[i + 1];
        for _ in 0..=MAX_FOOTER_LINES {
            if j >= self.lines.len() || is_quoted(self.lines[j]) {
                return true;
            }
            j = self.next_content[j + 1];
        }
        false
    }

    /// Whether line `i`, unquoted between two quoted lines, is the rest of a quoted line a client
    /// wrapped without repeating the `>`: it continues a long line in lower case, or is only
    /// the tail of a link.
    fn continues_quote(&self, i: usize) -> bool {
        let (Some(prev), Some(next)) = (
            i.checked_sub(1).map(|p| self.lines[p]),
            self.lines.get(i + 1),
        ) else {
            return false;
        };
        let line = self.lines[i];
        if !is_quoted(prev) || !is_quoted(next) || is_blank(line) || line.len() > 200 {
            return false;
        }
        let prev_text = prev.trim_start().trim_start_matches(['>', ' ']);
        let first = line.trim_start().chars().next();
        let wrapped_prose =
            prev_text.chars().count() >= 60 && first.is_some_and(char::is_lowercase);
        let token = line.trim();
        let link_tail =
            !token.contains(' ') && token.contains(['=', '/', '_', '&', '%', '#', ')', '<', '>']);
        let no_words = link_tail_only(line);
        wrapped_prose || link_tail || no_words
    }

    /// A cheap test that lets plain prose skip every pattern: markers have a colon, a dash or
    /// underscore run, a `#` frame, a leading digit, or sit just above a line that may end an attribution.
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
                || line.contains("##")
                || markers::starts_with_digit(line)
                || ends_near(i)
                || ends_near(i + 1)
                || ends_near(i + 2))
    }

    /// Whether line `i` ends the answer, and if so where the text it introduces starts.
    fn ends_answer(&mut self, i: usize) -> Option<Option<usize>> {
        let line = self.lines[i];
        if markers::is_signature_or_rule_cut(line) {
            return Some(None);
        }
        let separator =
            markers::may_be_separator(line) && self.spend() && markers::is_separator(line);
        // Only a forward's text may stand for the answer: below an "Original Message" or a
        // bare header block is the message being answered.
        if separator {
            let forward = markers::is_forward(line);
            return Some(forward.then(|| self.after_header_block(i)));
        }
        if self.starts_header_block(i) {
            return Some(None);
        }
        if line.contains('@') && self.spend() && markers::is_run_together_headers(line) {
            return Some(None);
        }
        None
    }

    /// The first line after the separator or header block at line `i` and its header lines.
    fn after_header_block(&mut self, i: usize) -> usize {
        let mut j = self.paragraph_end(i);
        // A separator alone on its paragraph: the header block is the next one.
        let next = self.next_content[j];
        if j == i + 1 && next < self.lines.len() && self.header_label(next).is_some() {
            j = self.paragraph_end(next);
        }
        j
    }

    /// Whether line `i` opens a forwarded-header block: labels on at least three of the next
    /// lines, one of them "From"; or two labels in a row giving a timestamp and an address.
    fn starts_header_block(&mut self, i: usize) -> bool {
        let Some(first) = self.header_label(i) else {
            return false;
        };
        let mut has_from = first.label == Label::From;
        let mut labels = 1;
        let mut dated = first.has_date && first.label == Label::Date;
        let mut addressed = first.has_address && matches!(first.label, Label::From | Label::To);
        let mut in_a_row = true;
        let mut row = 1;
        for j in i + 1..(i + 1 + HEADER_BLOCK_LINES).min(self.lines.len()) {
            if is_quoted(self.lines[j]) {
                break;
            }
            match self.header_label(j) {
                Some(h) => {
                    labels += 1;
                    has_from |= h.label == Label::From;
                    if in_a_row {
                        row += 1;
                        dated |= h.has_date && h.label == Label::Date;
                        addressed |= h.has_address && matches!(h.label, Label::From | Label::To);
                    }
                }
                None => in_a_row = false,
            }
        }
        (has_from && labels >= 3) || (row >= 2 && dated && addressed)
    }

    fn header_label(&mut self, i: usize) -> Option<HeaderLine> {
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

    /// The first line of the marker block that ends at line `i`: rules, dash-framed titles and
    /// colon-less attributions right above a separator or header block belong to it.
    fn block_head(&mut self, out: &Kept<'a>, i: usize) -> usize {
        let mut top = i;
        let mut j = i;
        while j > 0 && i - j < 2 {
            j -= 1;
            let line = self.lines[j];
            if is_blank(line) {
                continue;
            }
            if !out.holds(j) || !self.spend() {
                break;
            }
            let trimmed = line.trim();
            let belongs = markers::is_rule(line)
                || markers::is_framed_title(line)
                || markers::is_separator(line)
                || (markers::opens_attribution(line)
                    && !trimmed.ends_with([':', '：', '.', '!', '?'])
                    && markers::has_full_date(&markers::normalise(line))
                    && markers::attribution(&format!("{trimmed}:")) == Some(Attribution::Certain));
            if !belongs {
                break;
            }
            top = j;
        }
        top
    }

    /// The first of the kept lines just above line `i` that turn out to open the attribution
    /// `tail` (line `i` onwards): "pe 20. lokakuuta 2017 klo 17.50 Ann\n<ann@…> kirjoitti:".
    /// The head must open like an attribution or carry a full timestamp, and not end a
    /// sentence; a blank line inside is allowed only above a closing fragment ("> wrote:").
    fn head_above(
        &mut self,
        out: &Kept<'a>,
        i: usize,
        tail: &str,
        closing_fragment: bool,
    ) -> Option<usize> {
        let tail_alone = markers::attribution(tail);
        let mut heads: Vec<usize> = Vec::new();
        let mut blanks = 0;
        let mut j = i;
        while heads.len() < MAX_HEAD_LINES + usize::from(closing_fragment) && j > 0 {
            j -= 1;
            let line = self.lines[j];
            if is_blank(line) {
                blanks += 1;
                if !closing_fragment || blanks > 1 {
                    break;
                }
                continue;
            }
            if is_quoted(line)
                || line.len() > 200
                || !out.holds(j)
                || line.trim_end().ends_with(['.', '!', '?', ';'])
            {
                break;
            }
            heads.push(j);
        }
        for &top in heads.iter().rev() {
            let head = self.lines[top];
            if !(markers::opens_attribution(head)
                || markers::has_full_date(&markers::normalise(head)))
            {
                continue;
            }
            if !self.spend() {
                return None;
            }
            let candidate = format!("{} {}", self.joined(top, i), tail.trim());
            let joined = markers::attribution(&candidate);
            if joined.is_some() && joined >= tail_alone {
                return Some(top);
            }
        }
        None
    }

    /// Whether an attribution starts inside line `i`, after text the person typed: the byte
    /// offset where it starts, and how sure it is. Only a certain one, above a quote or at the end, counts.
    fn attribution_inside(&mut self, i: usize) -> Option<(usize, Attribution)> {
        let line = self.lines[i];
        let after = self.next_content[i + 1];
        if !(after == self.lines.len() || is_quoted(self.lines[after])) {
            return None;
        }
        for at in markers::openers_inside(line) {
            if !self.spend() {
                return None;
            }
            // The person's part carries no date: "At 18:40 on 5 March, Ann writes:" is one attribution.
            let rest = &line[at..];
            if markers::is_dated(rest)
                && !markers::is_dated(&line[..at])
                && markers::attribution(rest) == Some(Attribution::Certain)
            {
                return Some((at, Attribution::Certain));
            }
        }
        None
    }

    /// Whether an attribution starts at line `i`, and over how many lines (clients wrap long ones).
    fn attribution_at(&mut self, i: usize) -> Option<(usize, Attribution)> {
        if let Some(sure) = self.attribution_between(i, i + 1) {
            // "Op … om 12:09 schreef\nAnn <ann@…>:": the verb ends the first line, the sender the second.
            let next = self.lines.get(i + 1).copied().unwrap_or_default();
            let open_ended = !self.lines[i].trim_end().ends_with([':', '：']);
            if open_ended
                && !is_blank(next)
                && !is_quoted(next)
                && markers::may_end_attribution(next)
                && let Some(joined) = self.attribution_between(i, i + 2)
            {
                return Some((2, joined.max(sure)));
            }
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
        let opens = ((markers::starts_like_attribution(first)
            || markers::has_full_date(&markers::normalise(first)))
            && !first.ends_with(['.', '!', '?', ';', ':']))
            || markers::names_sender_first(first);
        if !opens {
            return None;
        }
        for len in 2..=3 {
            for start in i + 1..i + len {
                if markers::opens_attribution(self.lines.get(start)?.trim())
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

/// Keeps `line`, first closing a gap left by dropped quotes with one blank line, or none if
/// the person left none above the quote.
fn push_kept<'a>(
    out: &mut Kept<'a>,
    line: &'a str,
    i: usize,
    gap: &mut bool,
    blank_before_gap: bool,
) {
    if *gap {
        out.pop_blanks();
        if out.has_content() && blank_before_gap {
            out.push("", i);
        }
        *gap = false;
    }
    out.push(line, i);
}

/// A line that starts with `>` but closes with `<` is a banner's arrows (">>> visit us <<<"), not a quote.
fn is_decoration(line: &str) -> bool {
    let t = line.trim();
    t.len() <= MAX_MARKER_LINE && t.starts_with(">>") && t.ends_with("<<")
}

/// Whether the line holds no words outside its links: " (http://…) >" left over from a wrapped quote.
fn link_tail_only(line: &str) -> bool {
    if !line.contains("://") {
        return false;
    }
    let mut words = false;
    for token in line.split_whitespace() {
        if token.contains("://") {
            continue;
        }
        words |= token.chars().any(char::is_alphanumeric);
    }
    !words
}
