//! Tells a person's reply from a bounce or an auto-reply, and reads subscription commands and distress words in an answer.

mod bounce;

use std::sync::LazyLock;

use regex::Regex;

use super::parse::InboundMessage;

/// What an inbound message is; only a `Reply` may count as an answer (the stored kinds,
/// one enum with the database's).
pub use crate::domain::ReplyKind as Kind;

/// What a bounce says about the failed delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounce {
    /// An enhanced status code such as `5.1.1`, best effort: `5.0.0`/`4.0.0` when only the class is known.
    pub status: String,
    /// A permanent failure (5.x.x); otherwise temporary (4.x.x).
    pub hard: bool,
    /// The address that could not be reached, when the report names it.
    pub recipient: Option<String>,
    /// The `Message-ID` of the message that bounced, without angle brackets.
    pub original_message_id: Option<String>,
}

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("built-in pattern")
}

/// Out-of-office subjects start with one of these; the original subject usually follows.
static AUTO_SUBJECT_START: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)^\W*(auto:|(out of (the )?office|automatic reply|auto(matic)?[- ]?(reply|response|answer)|autoreply|autoresponder|abwesenheitsnotiz|abwesend|automatische antwort|réponse automatique|absence|absent|respuesta automática|respuesta automatica|fuera de la oficina|ausente|fuori ufficio|risposta automatica|afwezig|automatisch antwoord|niet aanwezig|frånvaro|autosvar|automatiskt svar|fraværende|fravær|resposta automática|fora do escritório|poza biurem|automatyczna odpowiedź|vacation|on vacation|on leave)\b)",
    )
});
/// Phrases that mark an auto-reply anywhere in a subject that is not itself a reply ("Ann is out of the office").
static AUTO_SUBJECT_ANYWHERE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(out of (the )?office|automatic reply|auto-reply|autoreply|abwesenheitsnotiz|réponse automatique|respuesta automática|fuori ufficio|automatisch antwoord|resposta automática)\b",
    )
});
/// "Re:", "AW:", "SV:", "Antw:", "RE :"…: the subject of a person's reply to the lesson.
static REPLY_PREFIX: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)^\s*(re|aw|sv|vs|antw|antwort|rif|r|ref|réf|odp|fw|fwd|tr|wg)\s*:"));

/// Classifies a parsed message; a bounce also comes with what it reports.
///
/// Bounces are checked first, since many bounces also carry auto-reply markers.
pub fn classify(msg: &InboundMessage) -> (Kind, Option<Bounce>) {
    if let Some(bounce) = bounce::bounce(msg) {
        return (Kind::Bounce, Some(bounce));
    }
    if is_success_report(msg) || is_auto_reply(msg) {
        return (Kind::AutoReply, None);
    }
    (Kind::Reply, None)
}

/// A report that is not a failure, such as a DSN saying "delivered" or a read receipt: machine mail all the same.
fn is_success_report(msg: &InboundMessage) -> bool {
    msg.dsn.is_some() || msg.auto_headers.report_type.is_some()
}

fn is_auto_reply(msg: &InboundMessage) -> bool {
    let h = &msg.auto_headers;
    let first_token = |v: &str| v.split(';').next().unwrap_or("").trim().to_string();
    let set = |v: &Option<String>| {
        v.as_deref()
            .is_some_and(|v| !matches!(first_token(v).as_str(), "no" | "false" | "0" | ""))
    };
    let auto_submitted = set(&h.auto_submitted);
    let precedence = h.precedence.as_deref().is_some_and(|p| {
        matches!(
            first_token(p).as_str(),
            "auto_reply" | "bulk" | "junk" | "list"
        )
    });
    // Exchange lists what its own auto-replies must not trigger: "DR, OOF, AutoReply" or "All".
    let suppress = h.x_auto_response_suppress.as_deref().is_some_and(|v| {
        v.split([',', ' '])
            .any(|token| matches!(token, "oof" | "autoreply" | "all"))
    });
    let subject = &msg.subject;
    let ooo_subject = AUTO_SUBJECT_START.is_match(subject)
        || (!REPLY_PREFIX.is_match(subject) && AUTO_SUBJECT_ANYWHERE.is_match(subject));
    auto_submitted
        || set(&h.x_autoreply)
        || set(&h.x_autorespond)
        || precedence
        || suppress
        || ooo_subject
}

/// A subscription command given as the first line of an answer.
pub use crate::domain::Command;

/// The command in `answer`: its first non-empty line, trimmed, lowercased and without trailing
/// punctuation, is exactly `pause`, `resume`, `stop` or `unsubscribe` (which means stop).
pub fn command(answer: &str) -> Option<Command> {
    let line = answer.lines().map(str::trim).find(|l| !l.is_empty())?;
    let word = line
        .trim_end_matches(|c: char| {
            c.is_ascii_punctuation() || c.is_whitespace() || c == '…' || c == '¡' || c == '¿'
        })
        .to_lowercase();
    match word.as_str() {
        "pause" => Some(Command::Pause),
        "resume" | "reprendre" => Some(Command::Resume),
        "stop" | "unsubscribe" => Some(Command::Stop),
        "next" | "suivant" => Some(Command::Next),
        _ => None,
    }
}

/// Whether `answer` contains any of the configured `words` or phrases, case-insensitively and as
/// whole words; phrases match across line breaks and curly apostrophes.
pub fn distress(answer: &str, words: &[String]) -> bool {
    let text = fold(answer);
    words
        .iter()
        .map(|w| fold(w))
        .filter(|w| !w.is_empty())
        .any(|word| {
            text.match_indices(&word).any(|(at, _)| {
                let before = text[..at].chars().next_back();
                let after = text[at + word.len()..].chars().next();
                !before.is_some_and(char::is_alphanumeric)
                    && !after.is_some_and(char::is_alphanumeric)
            })
        })
}

/// Lowercases, drops accents (é is e: phones type either), straightens apostrophes, reads
/// a hyphen as a space ("self-harm" is "self harm") and makes every whitespace run one
/// space, so a phrase in the list matches however it was typed.
fn fold(text: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let plain: String = text
        .nfd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .map(|c| match c {
            '’' | 'ʼ' | '‘' => '\'',
            '-' | '‐' | '‑' | '–' => ' ',
            c => c,
        })
        .collect();
    plain
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::parse::AutoHeaders;

    fn reply(subject: &str) -> InboundMessage {
        InboundMessage {
            from: Some("ann@example.com".into()),
            subject: subject.into(),
            ..Default::default()
        }
    }

    #[test]
    fn kinds_have_stored_names() {
        assert_eq!(
            [Kind::Reply, Kind::AutoReply, Kind::Bounce].map(Kind::as_str),
            ["reply", "auto_reply", "bounce"]
        );
        assert_eq!(
            [Command::Pause, Command::Resume, Command::Stop].map(Command::as_str),
            ["pause", "resume", "stop"]
        );
    }

    #[test]
    fn a_lesson_subject_with_absence_in_it_is_still_a_reply() {
        assert_eq!(classify(&reply("Re: Absence and presence")).0, Kind::Reply);
        assert_eq!(
            classify(&reply("AW: Lektion 4: Abwesenheit")).0,
            Kind::Reply
        );
        assert_eq!(
            classify(&reply("Absence: back on Monday")).0,
            Kind::AutoReply
        );
        assert_eq!(
            classify(&reply("Réponse automatique : Leçon 3")).0,
            Kind::AutoReply
        );
        assert_eq!(
            classify(&reply("AUTO: Ann Berg (returning 08/01/2024)")).0,
            Kind::AutoReply
        );
        assert_eq!(
            classify(&reply("Ann Berg is out of the office")).0,
            Kind::AutoReply
        );
    }

    #[test]
    fn auto_reply_headers_count_unless_they_say_no() {
        let with = |h: AutoHeaders| InboundMessage {
            auto_headers: h,
            ..reply("Re: Lesson 3")
        };
        assert_eq!(
            classify(&with(AutoHeaders {
                auto_submitted: Some("no".into()),
                ..Default::default()
            }))
            .0,
            Kind::Reply
        );
        assert_eq!(
            classify(&with(AutoHeaders {
                auto_submitted: Some("auto-generated; owner=x".into()),
                ..Default::default()
            }))
            .0,
            Kind::AutoReply
        );
        assert_eq!(
            classify(&with(AutoHeaders {
                x_autorespond: Some("yes".into()),
                ..Default::default()
            }))
            .0,
            Kind::AutoReply
        );
        assert_eq!(
            classify(&with(AutoHeaders {
                precedence: Some("list".into()),
                ..Default::default()
            }))
            .0,
            Kind::AutoReply
        );
        assert_eq!(
            classify(&with(AutoHeaders {
                precedence: Some("first-class".into()),
                ..Default::default()
            }))
            .0,
            Kind::Reply
        );
        assert_eq!(
            classify(&with(AutoHeaders {
                x_auto_response_suppress: Some("dr, rn, nrn, oof, autoreply".into()),
                ..Default::default()
            }))
            .0,
            Kind::AutoReply
        );
        assert_eq!(
            classify(&with(AutoHeaders {
                x_auto_response_suppress: Some("dr".into()),
                ..Default::default()
            }))
            .0,
            Kind::Reply
        );
    }

    #[test]
    fn commands_are_the_whole_first_line() {
        assert_eq!(command("PAUSE"), Some(Command::Pause));
        assert_eq!(command("\n\n  Resume!  \nthanks"), Some(Command::Resume));
        assert_eq!(command("Unsubscribe."), Some(Command::Stop));
        assert_eq!(command("stop"), Some(Command::Stop));
        assert_eq!(command("Next"), Some(Command::Next));
        assert_eq!(command("NEXT please"), None);
        assert_eq!(command("Stop asking me this."), None);
        assert_eq!(command("I want to pause"), None);
        assert_eq!(command(""), None);
    }

    #[test]
    fn distress_words_match_whole_words_and_phrases() {
        let words = [
            "kill".to_string(),
            "don't want to live".to_string(),
            "  ".to_string(),
        ];
        assert!(distress("Sometimes I want to KILL him.", &words));
        assert!(distress("I don’t want\nto live like this", &words));
        assert!(!distress("It takes skill and patience.", &words));
        assert!(!distress("Killing time at the station.", &words));
        assert!(!distress("anything", &[]));
    }

    /// The list shipped in config.toml, read as drip reads it.
    fn shipped_list() -> Vec<String> {
        let config: toml::Value = toml::from_str(include_str!("../../config.toml")).unwrap();
        config["inbound"]["distress_words"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn the_shipped_list_flags_danger_and_not_what_readers_say_about_themselves() {
        let words = shipped_list();
        for flagged in [
            "I keep not wanting to live.",
            "Some days I don't want to be here anymore",
            "he threatened to kill himself if I left",
            "I'm scared of him when he drinks",
            "she won't let me leave the house",
            "I have thought about self harm",
            "I was abusive and I know it",
            "je ne veux plus vivre comme ça",
            "j'ai peur de lui",
            "il m'a frappee hier",
            "elle menace de me tuer",
        ] {
            assert!(distress(flagged, &words), "not flagged: {flagged}");
        }
        for calm in [
            "My alcohol abuse started at university.",
            "I hurt her badly when I lied.",
            "It hit me how much I had lost.",
            "I could kill for a quiet evening.",
            "She was afraid I would lie again.",
            "We control our spending together now.",
            "mon abus d'alcool a tout abîmé",
            "j'ai violé sa confiance",
            "je l'ai blessée en mentant",
        ] {
            assert!(!distress(calm, &words), "flagged: {calm}");
        }
    }
}
