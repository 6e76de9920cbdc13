//! Authors' answers: an admin writes back to one reader's reply. The answer is a mail from
//! the course's address, threaded under the reply (`In-Reply-To` and `References` carry its
//! Message-ID), with a reply token of its own, so that what the reader writes back comes in
//! as a reply to the answer and stays in the same conversation: reply, answer, reply, ...
//!
//! The text is sealed at rest like a reply's. The mail goes through the outbox as a delivery
//! of kind `answer` (leases, retries, rate limits), and leaves only while the reader still
//! takes mail from the course: it is checked when the answer is written and again when the
//! mail leaves.
//!
//! The admin page and the API call [`answer`]; the journal and the admin's conversation page
//! read [`conversations`].

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

use crate::app::App;
use crate::db::{self, answers::AnswerRow, replies::ReplyRow};
use crate::domain::{EnrollmentStatus, InvalidInput, ReplyKind, SubscriberStatus};

/// The longest answer, in characters: a letter, not a newsletter.
pub const MAX_CHARS: usize = 20_000;

#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    #[error("no reply {0}")]
    NotFound(i64),
    /// The reply is there but cannot be answered; says why.
    #[error("reply {id} cannot be answered: {why}")]
    Refused { id: i64, why: &'static str },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<sqlx::Error> for AnswerError {
    fn from(e: sqlx::Error) -> Self {
        AnswerError::Other(e.into())
    }
}

/// An answer written and queued.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Queued {
    pub id: i64,
    pub reply: i64,
    /// The delivery that carries it.
    pub delivery: i64,
}

/// The text as it will be sent: trimmed, at least one letter, at most [`MAX_CHARS`], and
/// no control characters but line breaks and tabs.
pub fn check_text(text: &str) -> Result<String, InvalidInput> {
    let text = text.replace("\r\n", "\n");
    let text = text.trim();
    if text.is_empty() {
        return Err(InvalidInput::new("text", "the answer is empty"));
    }
    let chars = text.chars().count();
    if chars > MAX_CHARS {
        return Err(InvalidInput::new(
            "text",
            format!("the answer is {chars} characters long; at most {MAX_CHARS}"),
        ));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(InvalidInput::new(
            "text",
            "the answer contains a control character",
        ));
    }
    Ok(text.to_owned())
}

/// Why a reply cannot be answered now (its reader, their course), if it cannot.
fn refusal(a: &db::answers::Answerable) -> Option<&'static str> {
    if a.kind != ReplyKind::Reply.as_str() {
        return Some("only a reader's own reply can be answered, not an auto-reply or a bounce");
    }
    if a.subscriber_id.is_none() {
        return Some("it was never matched to a reader");
    }
    match a.subscriber_status.as_deref() {
        Some(s) if s == SubscriberStatus::Active.as_str() => {}
        _ => {
            return Some(
                "its reader takes no mail from this site any more (left, bounced or erased)",
            );
        }
    }
    if a.enrollment_status.as_deref() == Some(EnrollmentStatus::Stopped.as_str()) {
        return Some("its reader left the course");
    }
    None
}

/// Why reply `reply_id` cannot be answered now, if it cannot (None: it can); the page shows
/// this instead of the form. [`answer`] checks again when it writes.
pub async fn cannot_answer(app: &App, reply_id: i64) -> Result<Option<&'static str>, AnswerError> {
    let reply = db::answers::answerable_now(&app.db, reply_id)
        .await?
        .ok_or(AnswerError::NotFound(reply_id))?;
    Ok(refusal(&reply))
}

/// Writes `text` as `author`'s answer to reply `reply_id` and queues its mail, in one
/// transaction. Bad text names the field `text` and writes nothing.
pub async fn answer(
    app: &App,
    reply_id: i64,
    author: &str,
    text: &str,
    now: DateTime<Utc>,
) -> Result<Queued, AnswerError> {
    let text = check_text(text)?;
    let now_s = now.timestamp();
    let mut tx = app.db.begin_write().await?;
    let reply = db::answers::answerable(&mut tx, reply_id)
        .await?
        .ok_or(AnswerError::NotFound(reply_id))?;
    if let Some(why) = refusal(&reply) {
        return Err(AnswerError::Refused { id: reply_id, why });
    }
    let subscriber_id = reply.subscriber_id.expect("refusal checks the reader");
    let delivery = db::deliveries::enqueue_answer(
        &mut tx,
        subscriber_id,
        reply.enrollment_id,
        reply.course_id,
        now_s,
    )
    .await?;
    let sealed = app.vault.seal(text.as_bytes());
    let id = db::answers::insert(
        &mut tx,
        &db::answers::NewAnswer {
            reply_id,
            subscriber_id,
            delivery_id: delivery,
            author,
            text: &sealed,
            created_at: now_s,
        },
    )
    .await?;
    db::events::log(
        &mut tx,
        Some(subscriber_id),
        author,
        "answer_written",
        &json!({"reply": reply_id, "answer": id, "delivery": delivery}),
        now_s,
    )
    .await?;
    tx.commit().await?;
    Ok(Queued {
        id,
        reply: reply_id,
        delivery,
    })
}

/// One turn of a conversation: what the reader wrote, or an answer to them.
#[derive(Debug, Clone, Serialize)]
pub struct Turn {
    /// "reader" or "author".
    pub by: &'static str,
    pub at: i64,
    pub text: String,
    /// The reply's id for the reader's turns; the answer's for an author's.
    pub id: i64,
    /// The admin who wrote an answer.
    pub author: Option<String>,
    /// An answer's mail: queued, sent, failed or bounced.
    pub status: Option<String>,
    pub last_error: Option<String>,
}

/// A reply and everything after it, in order: the answers to it, the reader's replies to
/// those answers, and so on.
#[derive(Debug, Clone, Serialize)]
pub struct Conversation {
    /// The first reply's id, and the lesson it answers (None: a broadcast or another mail).
    pub root: i64,
    pub lesson_id: Option<i64>,
    pub turns: Vec<Turn>,
}

/// Groups one reader's replies (kind `reply` only) and the answers to them into
/// conversations, each in the order it happened, the conversations by their first turn.
/// `open` opens sealed text.
pub fn conversations(
    replies: &[ReplyRow],
    answers: &[AnswerRow],
    open: impl Fn(&[u8]) -> String,
) -> Vec<Conversation> {
    let replies: Vec<&ReplyRow> = replies
        .iter()
        .filter(|r| r.kind == ReplyKind::Reply)
        .collect();
    // The reply a reply's conversation starts at: follow "answers an answer to" back.
    let root_of = |mut id: i64| {
        for _ in 0..=replies.len() {
            let parent = replies
                .iter()
                .find(|r| r.id == id)
                .and_then(|r| r.in_answer_to)
                .and_then(|a| answers.iter().find(|x| x.id == a))
                .map(|a| a.reply_id)
                .filter(|p| replies.iter().any(|r| r.id == *p));
            match parent {
                Some(p) => id = p,
                None => break,
            }
        }
        id
    };
    // A turn never comes before the one it answers, whatever the clocks said: its place
    // is the later of its own time and its parent's place, then how deep it is.
    let reply_place = |id: i64| -> (i64, usize) {
        let (mut at, mut depth, mut id) = (i64::MIN, 0usize, id);
        let mut chain = Vec::new();
        for _ in 0..=replies.len() {
            let Some(r) = replies.iter().find(|r| r.id == id) else {
                break;
            };
            chain.push(r.received_at);
            let Some(a) = r
                .in_answer_to
                .and_then(|a| answers.iter().find(|x| x.id == a))
            else {
                break;
            };
            chain.push(a.created_at);
            id = a.reply_id;
        }
        for t in chain.iter().rev() {
            at = at.max(*t);
            depth += 1;
        }
        (at, depth)
    };
    type Placed = ((i64, usize), Turn);
    let mut out: Vec<(i64, Vec<Placed>)> = Vec::new();
    let mut place =
        |root: i64, key: (i64, usize), turn: Turn| match out.iter_mut().find(|(r, _)| *r == root) {
            Some((_, turns)) => turns.push((key, turn)),
            None => out.push((root, vec![(key, turn)])),
        };
    for r in &replies {
        place(
            root_of(r.id),
            reply_place(r.id),
            Turn {
                by: "reader",
                at: r.received_at,
                text: open(&r.text),
                id: r.id,
                author: None,
                status: None,
                last_error: None,
            },
        );
    }
    for a in answers {
        if !replies.iter().any(|r| r.id == a.reply_id) {
            continue;
        }
        let (parent_at, depth) = reply_place(a.reply_id);
        place(
            root_of(a.reply_id),
            (parent_at.max(a.created_at), depth + 1),
            Turn {
                by: "author",
                at: a.created_at,
                text: open(&a.text),
                id: a.id,
                author: Some(a.author.clone()),
                status: a.status.clone(),
                last_error: a.last_error.clone(),
            },
        );
    }
    let mut done: Vec<Conversation> = out
        .into_iter()
        .map(|(root, mut turns)| {
            turns.sort_by_key(|(key, t)| (*key, t.by == "author", t.id));
            Conversation {
                root,
                lesson_id: replies
                    .iter()
                    .find(|r| r.id == root)
                    .and_then(|r| r.lesson_id),
                turns: turns.into_iter().map(|(_, t)| t).collect(),
            }
        })
        .collect();
    done.sort_by_key(|c| (c.turns[0].at, c.root));
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(id: i64, at: i64, in_answer_to: Option<i64>) -> ReplyRow {
        ReplyRow {
            id,
            subscriber_id: Some(1),
            lesson_id: Some(7),
            lesson: None,
            kind: ReplyKind::Reply,
            matched_by: None,
            command: None,
            from_addr: String::new(),
            subject: String::new(),
            text: format!("r{id}").into_bytes(),
            has_raw: 0,
            flagged: 0,
            flag_reason: String::new(),
            read_at: None,
            received_at: at,
            in_answer_to,
        }
    }

    fn answer(id: i64, reply_id: i64, at: i64) -> AnswerRow {
        AnswerRow {
            id,
            reply_id,
            subscriber_id: 1,
            delivery_id: None,
            author: "ann".into(),
            text: format!("a{id}").into_bytes(),
            created_at: at,
            reply_message_id: None,
            reply_subject: String::new(),
            reply_delivery_id: None,
            reply_received_at: 0,
            status: None,
            sent_at: None,
            last_error: None,
        }
    }

    fn texts(c: &Conversation) -> Vec<&str> {
        c.turns.iter().map(|t| t.text.as_str()).collect()
    }

    #[test]
    fn a_chain_of_replies_and_answers_is_one_conversation_in_order() {
        // r1, answered by a1, r2 answers a1, a2 answers r2; r3 is a reply of its own.
        let replies = [
            reply(1, 100, None),
            reply(2, 300, Some(1)),
            reply(3, 150, None),
        ];
        let answers = [answer(1, 1, 200), answer(2, 2, 300)];
        let cs = conversations(&replies, &answers, |b| {
            String::from_utf8(b.to_vec()).unwrap()
        });
        assert_eq!(cs.len(), 2);
        assert_eq!(cs[0].root, 1);
        assert_eq!(texts(&cs[0]), ["r1", "a1", "r2", "a2"]);
        assert_eq!(texts(&cs[1]), ["r3"]);
        assert_eq!(cs[0].turns[1].by, "author");
    }

    #[test]
    fn a_turn_never_comes_before_the_one_it_answers_whatever_the_clocks() {
        // The answer's clock ran behind the mail server's: written "before" the reply.
        let replies = [reply(1, 500, None), reply(2, 450, Some(1))];
        let answers = [answer(1, 1, 400)];
        let cs = conversations(&replies, &answers, |b| {
            String::from_utf8(b.to_vec()).unwrap()
        });
        assert_eq!(texts(&cs[0]), ["r1", "a1", "r2"]);
    }

    #[test]
    fn an_answer_whose_reply_is_gone_shows_nowhere_and_a_loop_ends() {
        let mut looped = reply(5, 10, Some(9));
        looped.id = 5;
        let replies = [looped, reply(6, 20, Some(8))];
        // Answer 9 answers reply 6, answer 8 answers reply 5: a cycle no real data makes.
        let answers = [answer(9, 6, 15), answer(8, 5, 25), answer(4, 99, 1)];
        let cs = conversations(&replies, &answers, |_| String::new());
        let turns: usize = cs.iter().map(|c| c.turns.len()).sum();
        assert_eq!(turns, 4, "the answer to a reply that is gone is left out");
    }

    #[test]
    fn bad_text_names_the_field() {
        for bad in ["", "   \n ", "a\u{7}b"] {
            assert_eq!(check_text(bad).unwrap_err().field, "text", "{bad:?}");
        }
        let long = "x".repeat(MAX_CHARS + 1);
        assert_eq!(check_text(&long).unwrap_err().field, "text");
        assert_eq!(check_text(" Thank you.\r\n").unwrap(), "Thank you.");
    }
}
