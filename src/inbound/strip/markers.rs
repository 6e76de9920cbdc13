//! Recognises the lines mail clients add around a reply: attributions, forwarded-header blocks, separators and device footers, in several languages.
//!
//! Every test here looks at one line, or at most three joined lines of bounded length, so the
//! stripper stays linear whatever the input.

use std::sync::LazyLock;

use regex::Regex;

/// Longer lines are prose: no client writes an attribution or header this long.
pub(super) const MAX_MARKER_LINE: usize = 400;

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("built-in pattern")
}

/// Verbs that end an attribution ("… wrote:") across the languages drip's readers use.
const VERBS: &str = r"wrote|writes|schrieb|schreef|escribió|escreveu|ha scritto|a écrit|skrev|kirjoitti|napisał\(a\)|napisała|napisał|napsal|napísal|írta|yazdı|έγραψε|написал\(а\)|написала|написал|написав|пише|写道|寫道";

/// Attribution shapes that leave no doubt once they also carry a date, a time or an address.
static CERTAIN_SHAPE: LazyLock<Regex> = LazyLock::new(|| {
    re(concat!(
        r"(?i)^(on|at)\s.*\s(wrote|writes)\s*:?$",
        r"|^le\s.*\sa\s+écrit\s*:$",
        r"|^am\s.*\sschrieb\b.*:$",
        r"|^el\s.*\sescribió\s*:$",
        r"|^op\s.*\sschreef\b.*:$",
        r"|^em\s.*\sescreveu\s*:$",
        r"|^il\s.*\sha\s+scritto\s*:$",
        r"|^(den|\d).*\sskrev\b.*:$",
        r"|^.*@.*\sskrev\b.*:$",
    ))
});
/// "… I wrote:" is someone quoting themselves in prose, never a client's attribution.
static FIRST_PERSON: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)\b(i|we)\s+(wrote|writes)\b"));
/// Any-language form `NAME ADDRESS VERB:` (the verb may also come before the name).
static VERB_WITH_ADDRESS: LazyLock<Regex> =
    LazyLock::new(|| re(&format!(r"(?i)(^|\s|>)({VERBS})(\s.*)?[:：]$")));
/// The short form "Ann wrote:", only trusted when a quote follows.
static SHORT_ATTRIBUTION: LazyLock<Regex> =
    LazyLock::new(|| re(&format!(r"(?i)^\S.*\s({VERBS})\s*[:：]$")));
/// Gmail's numeric form: "2024-01-01 9:00 GMT+01:00 Ann <ann@example.com>:" or "2013/7/20 Ann <ann@…>".
static DATE_FIRST: LazyLock<Regex> = LazyLock::new(|| re(r"^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\s"));
static GMT_TIME: LazyLock<Regex> = LazyLock::new(|| re(r"\d{1,2}:\d{2}\s+GMT[+-]\d"));
static DATE_OR_TIME: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(19|20)\d{2}\b|\b\d{1,2}[:.h]\d{2}\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b"));

/// How sure a line is an attribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Attribution {
    /// Shaped like one and dated or addressed: what follows is someone else's message.
    Certain,
    /// Only an attribution if quoted lines follow it (e.g. "Ann wrote:").
    IfQuoteFollows,
}

/// Whether `candidate` (one line, or a wrapped attribution joined with spaces) introduces a quoted message.
pub(super) fn attribution(candidate: &str) -> Option<Attribution> {
    // Zoho writes "---- On … wrote ----"; Outlook users sometimes bold it.
    let c = candidate.trim_matches(|ch: char| ch == '-' || ch == '*' || ch.is_whitespace());
    if c.is_empty()
        || c.len() > 3 * MAX_MARKER_LINE
        || !(may_end_attribution(c) || starts_with_digit(c))
    {
        return None;
    }
    let c = normalise(c);
    let c = c.as_str();
    let dated = DATE_OR_TIME.is_match(c);
    let addressed = c.contains('@');
    if starts_with_digit(c) && DATE_FIRST.is_match(c) && (addressed || GMT_TIME.is_match(c)) {
        return Some(Attribution::Certain);
    }
    if !may_end_attribution(c) {
        return None;
    }
    if (dated || addressed) && CERTAIN_SHAPE.is_match(c) && !FIRST_PERSON.is_match(c) {
        return Some(Attribution::Certain);
    }
    if addressed && VERB_WITH_ADDRESS.is_match(c) {
        return Some(Attribution::Certain);
    }
    // Unknown languages still show "<date> <name> <address>…:" right above the quote.
    let any_language = addressed && dated && (c.ends_with(':') || c.ends_with('：'));
    if any_language || SHORT_ATTRIBUTION.is_match(c) {
        return Some(Attribution::IfQuoteFollows);
    }
    None
}

/// A cheap test that lets most lines skip the patterns: attributions end in a colon or in "wrote".
pub(super) fn may_end_attribution(line: &str) -> bool {
    let l = line.trim_end_matches(|ch: char| ch == '-' || ch == '*' || ch.is_whitespace());
    l.ends_with(':')
        || l.ends_with('：')
        || l.get(l.len().saturating_sub(5)..)
            .is_some_and(|e| e.eq_ignore_ascii_case("wrote"))
}

/// Gmail's numeric attributions ("2013/7/20 Ann <…>") start with a digit and may lack a colon.
pub(super) fn starts_with_digit(line: &str) -> bool {
    line.trim_start_matches(|ch: char| ch == '-' || ch == '*' || ch.is_whitespace())
        .starts_with(|ch: char| ch.is_ascii_digit())
}

static ATTRIBUTION_START: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)^([-*\s]*(on|at|le|am|el|op|em|il|den|w dniu|dne)\s|[-*\s]*\d)"));

/// Whether a line could open an attribution that wraps onto the next lines.
pub(super) fn starts_like_attribution(line: &str) -> bool {
    line.len() <= MAX_MARKER_LINE && ATTRIBUTION_START.is_match(line)
}

static SENDER_THEN_VERB: LazyLock<Regex> =
    LazyLock::new(|| re(&format!(r"(?i)@\S*\s+({VERBS})\b")));

/// Whether a line opens an attribution by naming the sender's address before the verb.
pub(super) fn names_sender_first(line: &str) -> bool {
    line.len() <= MAX_MARKER_LINE && line.contains('@') && SENDER_THEN_VERB.is_match(line)
}

/// Outlook-style header labels: the "From" one starts a block, the others fill it.
static FROM_LABEL: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)^[\s*]*(from|de|von|van|da|från|fra|fran|od|от|lähettäjä|feladó|kimden|expéditeur|remitente|mittente|afzender|absender|发件人|寄件者|差出人)[\s*]*[:：]",
    )
});
static OTHER_LABEL: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)^[\s*]*(sent|date|to|subject|cc|bcc|reply-to|envoyé|à|a|objet|gesendet|datum|an|betreff|verzonden|aan|onderwerp|inviato|data|oggetto|risposta|enviado|enviada|fecha|para|asunto|assunto|skickat|till|ämne|sendt|til|emne|dato|wysłano|do|temat|отправлено|кому|тема|дата|lähetetty|vastaanottaja|aihe|kopie|kopia|cc|发送时间|收件人|主题|日期)[\s*]*[:：]",
    )
});

/// Whether the line is a header field of a quoted-below message ("From: …", "Sent: …", "Objet : …").
pub(super) fn header_label(line: &str) -> Option<bool> {
    let line = normalise(line);
    if FROM_LABEL.is_match(&line) {
        Some(true)
    } else if OTHER_LABEL.is_match(&line) {
        Some(false)
    } else {
        None
    }
}

static SEPARATOR: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)^[\s*_]*-{2,}\s*(original message|forwarded message|ursprüngliche nachricht|weitergeleitete nachricht|message d'origine|message transféré|mensaje original|mensaje reenviado|oorspronkelijk bericht|doorgestuurd bericht|messaggio originale|messaggio inoltrato|mensagem original|mensagem encaminhada|ursprungligt meddelande|vidarebefordrat meddelande|opprinnelig melding|videresendt melding|oprindelig meddelelse|videresendt meddelelse|alkuperäinen viesti|välitetty viesti|wiadomość oryginalna|oryginalna wiadomość|исходное сообщение|пересылаемое сообщение|below this line is a copy of the message|this is a copy of the message)\b.*$",
    )
});
static FORWARD_INTRO: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)^(begin forwarded message|anfang der weitergeleiteten nachricht|début du message réexpédié|inicio del mensaje reenviado|begin doorgestuurd bericht|inizio messaggio inoltrato|início da mensagem reencaminhada|vidarebefordrat brev|videresendt besked)\s*[:：]",
    )
});

/// Whether the line is a signature delimiter (`-- `) or Outlook's underscore rule: nothing after it is the answer.
pub(super) fn is_signature_or_rule_cut(line: &str) -> bool {
    let trimmed = line.trim();
    trimmed == "--" || (trimmed.len() >= 20 && trimmed.bytes().all(|b| b == b'_'))
}

/// A cheap test before [`is_separator`]: separators have a dash run or a colon.
pub(super) fn may_be_separator(line: &str) -> bool {
    line.len() <= MAX_MARKER_LINE
        && (line.contains("--") || line.contains(':') || line.contains('：'))
}

/// Whether the line opens an original or forwarded message ("-----Original Message-----", "Begin forwarded message:").
pub(super) fn is_separator(line: &str) -> bool {
    let line = normalise(line);
    SEPARATOR.is_match(&line) || FORWARD_INTRO.is_match(&line)
}

/// A cheap test before [`header_label`]: a label's colon comes early in the line.
pub(super) fn may_be_header(line: &str) -> bool {
    line.len() <= MAX_MARKER_LINE
        && line
            .char_indices()
            .take(32)
            .any(|(_, c)| c == ':' || c == '：')
}

/// Whether the line is only a visual rule ("-----", "=====", "***") or Gmail's tracker mark.
pub(super) fn is_rule(line: &str) -> bool {
    let t = line.trim();
    t == "\u{1427}" || (t.chars().count() >= 2 && t.chars().all(|c| "-_=*~#+".contains(c)))
}

static URL: LazyLock<Regex> = LazyLock::new(|| {
    re(r"\(\s*https?://[^)]*\)|<\s*(https?://|mailto:)[^>]*>|https?://\S+|[\[\]]")
});
/// Footers complete in themselves.
static DEVICE_PHRASE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)^(von meinem .+ gesendet|diese nachricht wurde von meinem .+ gesendet|get (the )?outlook( app)? for .+|download outlook for .+|from my (iphone|ipad|ipod|android|blackberry|mobile|phone)( \S+)?|\S+ from (my )?(mobile|phone|iphone|ipad|android)( device)?|sent from (a|my) (phone|mobile|mobile device|tablet)|<<sent by .+>>|(从|從)我的\s*.+\s*(发送|傳送)|iphoneから送信)$",
    )
});
/// `SENT FROM [MY] REST` in several languages; `rest` must then name a device or an app,
/// or after "my" look like a product name ("Sent from my TI-85").
static DEVICE_LEAD: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)^(sent|envoyé|envoye|enviado|enviada|inviato|inviata|verzonden|verstuurd|skickat|sendt|gesendet|lähetetty|wysłane|отправлено)\s+(from|via|with|using|de|depuis|desde|do|da|dal|vanaf|met|van|från|fra|von|vom|mit|z|с|из)\s+(?P<my>(my|mon|ma|mi|meu|minha|mio|mijn|min|mitt|meinem|mojego|моего)\s+)?(?P<rest>.+)$",
    )
});
static DEVICE_WORD: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(iphone|ipad|ipod|android|blackberry|mobile|phone|cell|cellphone|tablet|device|smartphone|handy|mobilgerät|portable|móvil|movil|celular|telefone|telefono|teléfono|téléphone|telefoon|mobiel|mobil|watch|ios|ipados|outlook|gmail|yahoo|mail|mailbox|airmail|spark|samsung|galaxy|pixel|huawei|xiaomi|nokia|htc|motorola|kindle|surface)\b",
    )
});

/// Whether the line is a "Sent from my iPhone"-style footer; callers only ask about trailing lines.
pub(super) fn is_device_line(line: &str) -> bool {
    if line.len() > MAX_MARKER_LINE {
        return false;
    }
    let without_links = URL.replace_all(line, " ");
    let l = normalise(&without_links);
    let l = l.trim_matches(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == '.');
    if l.is_empty() || l.len() > 120 {
        return false;
    }
    if DEVICE_PHRASE.is_match(l) {
        return true;
    }
    let Some(lead) = DEVICE_LEAD.captures(l) else {
        return false;
    };
    let rest = lead.name("rest").map_or("", |r| r.as_str());
    let possessive = lead.name("my").is_some();
    // "Sent from my desk, is much easier…" is a sentence; "Sent from my cell, excuse typos" is not.
    let clause_end = rest
        .find([',', ';', '!', '?'])
        .into_iter()
        .chain(rest.find(". "))
        .min();
    let clause = &rest[..clause_end.unwrap_or(rest.len())];
    let named = DEVICE_WORD.is_match(clause);
    let brand_like = clause
        .split_whitespace()
        .any(|w| w.chars().any(|c| c.is_uppercase() || c.is_ascii_digit()));
    clause.split_whitespace().count() <= 6
        && (named || (possessive && clause_end.is_none() && brand_like))
}

/// Makes look-alike spaces plain and runs of whitespace single, so patterns can use plain spaces.
fn normalise(s: &str) -> String {
    // char::is_whitespace covers the no-break spaces French puts before colons.
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
