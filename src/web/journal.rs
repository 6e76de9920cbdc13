//! A subscriber's journal: their answers, lesson by lesson, and everything stored about
//! them as a download.
//!
//! Every lesson mail carries a journal link, and mails get forwarded. So that link (which
//! never expires) opens no answers: it offers to mail a fresh link to the address the course
//! goes to, and that one works for [`ACCESS_HOURS`]. Whoever holds the inbox reads the
//! journal; whoever was forwarded a lesson does not.
//!
//! Mail security scanners open every link in a mail. No `GET` here changes anything, sends
//! anything or shows an answer: the lesson's link offers a button that mails the fresh
//! link; the fresh link opens a page with one button that shows the journal (a `POST`), and
//! the journal's downloads are buttons too. So a scanner neither mails the subscriber nor
//! reads their answers, and the data export's audit event is written only for a person who
//! pressed its button.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use serde_json::json;

use super::WebError;
use super::public::{course_page, person_course, render, subscriber_for};
use crate::app::App;
use crate::db;
use crate::domain::Purpose;
use crate::subscriptions;

use crate::subscriptions::{
    JOURNAL_ACCESS_HOURS as ACCESS_HOURS, JOURNAL_RESEND_MINUTES as RESEND_MINUTES,
};

pub fn router() -> Router<App> {
    Router::new()
        .route("/journal/{token}", get(gate).post(send_link))
        .route("/journal/open/{access}", get(open_page).post(journal))
        .route(
            "/journal/open/{access}/export",
            get(export_page).post(export),
        )
}

/// The link from a lesson mail: explains, and offers to mail a fresh link.
async fn gate(State(app): State<App>, Path(token): Path<String>) -> Result<Response, WebError> {
    let s = subscriber_for(&app, Purpose::Journal, &token).await?;
    let course = course_page(&app, &person_course(&app, &s).await?).await?;
    Ok(render(
        &app,
        "journal_gate",
        &course.language,
        json!({"course": course, "token": token, "hours": ACCESS_HOURS}),
    )?
    .into_response())
}

/// Queues the mail with a fresh link (unless one went out minutes ago). The page says the
/// same either way.
async fn send_link(
    State(app): State<App>,
    Path(token): Path<String>,
) -> Result<Response, WebError> {
    let s = subscriber_for(&app, Purpose::Journal, &token).await?;
    let now = Utc::now().timestamp();
    subscriptions::request_journal_link(&app, s.id, now - RESEND_MINUTES * 60, now).await?;
    let course = course_page(&app, &person_course(&app, &s).await?).await?;
    Ok(render(
        &app,
        "journal_sent",
        &course.language,
        json!({"course": course, "hours": ACCESS_HOURS}),
    )?
    .into_response())
}

/// Whose journal a mailed link opens, while it has not expired. The journal page and the
/// data export share this check: the export must never be easier to reach than the answers.
async fn journal_owner(
    app: &App,
    access: &str,
) -> Result<db::subscribers::SubscriberRow, WebError> {
    let id = app
        .signer
        .verify_until(Purpose::JournalAccess, access, Utc::now().timestamp())
        .map_err(|e| {
            WebError::Link(if e.message.contains("expired") {
                "link_expired"
            } else {
                "link_invalid"
            })
        })?;
    db::subscribers::by_id(&app.db, id)
        .await?
        .filter(|s| s.status != crate::domain::SubscriberStatus::Erased)
        .ok_or(WebError::Link("no_subscription"))
}

/// The mailed link (and the export's address) opens a page with one button; the button
/// does the rest. `export`: the page of the data export's button rather than the journal's.
async fn button_page(app: &App, access: &str, export: bool) -> Result<Response, WebError> {
    let s = journal_owner(app, access).await?;
    let page = course_page(app, &person_course(app, &s).await?).await?;
    let mut response = render(
        app,
        "journal_open",
        &page.language,
        json!({"course": page, "access": access, "export": export}),
    )?
    .into_response();
    private(&mut response);
    Ok(response)
}

async fn open_page(
    State(app): State<App>,
    Path(access): Path<String>,
) -> Result<Response, WebError> {
    button_page(&app, &access, false).await
}

async fn export_page(
    State(app): State<App>,
    Path(access): Path<String>,
) -> Result<Response, WebError> {
    button_page(&app, &access, true).await
}

/// A page about someone's answers: kept by no browser cache or proxy, and its address (which
/// holds the access token) never sent onward as a referrer.
fn private(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, "no-store".parse().expect("ascii"));
    headers.insert(
        header::REFERRER_POLICY,
        "no-referrer".parse().expect("ascii"),
    );
}

/// The subscriber's own answers, lesson by lesson (the button of [`open_page`]); with the
/// form field `download` (the page's own button), as a Markdown file. The body is read as
/// form pairs whatever its content type, so that a bare POST opens the page.
async fn journal(
    State(app): State<App>,
    Path(access): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, WebError> {
    let download = url::form_urlencoded::parse(&body).any(|(k, _)| k == "download");
    let s = journal_owner(&app, &access).await?;
    let course = person_course(&app, &s).await?;
    // Answers of every course the person took.
    let mut lessons = Vec::new();
    for c in db::courses::list(&app.db).await? {
        lessons.extend(db::lessons::list(&app.db, c.id).await?);
    }
    let replies = db::replies::for_subscriber(&app.db, s.id).await?;
    let answers = db::answers::for_subscriber(&app.db, s.id).await?;
    let lang = course.language.as_str();
    let words = app.renderer.catalogue();
    let note = words.format(lang, "journal.note", &[])?;
    let when = |at: i64| -> anyhow::Result<String> {
        Ok(chrono::DateTime::from_timestamp(at, 0)
            .map(|t| words.date(lang, "date.journal", &t.with_timezone(&s.timezone.tz())))
            .transpose()?
            .unwrap_or_default())
    };
    let (you_again, from_author) = (
        words.format(lang, "journal.you_again", &[])?,
        words.format(lang, "journal.answer", &[])?,
    );
    let open = |sealed: &[u8]| String::from_utf8_lossy(&app.open_reply_text(sealed)).into_owned();
    // One entry per conversation: the first answer to a lesson, then what followed (the
    // course's authors writing back, the reader again), in order.
    let entries: Vec<serde_json::Value> = crate::answers::conversations(&replies, &answers, open)
        .iter()
        .map(|c| {
            let lesson = lessons.iter().find(|l| Some(l.id) == c.lesson_id);
            let (first, rest) = c.turns.split_first().expect("a conversation has a turn");
            let more = rest
                .iter()
                .map(|t| {
                    Ok(json!({
                        "by": t.by,
                        "label": if t.by == "author" { &from_author } else { &you_again },
                        "text": t.text,
                        "when": when(t.at)?,
                    }))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            Ok(json!({
                "lesson": lesson.map(|l| l.content.title.clone()).unwrap_or_else(|| note.clone()),
                "prompt": lesson.map(|l| l.content.prompt.clone()).unwrap_or_default(),
                "text": first.text,
                "received": when(first.at)?,
                "more": more,
            }))
        })
        .collect::<anyhow::Result<_>>()?;
    if download {
        let heading = words.format(lang, "journal.file_heading", &[("course", &course.title)])?;
        // A header holds ASCII only: a translated name keeps its plain letters.
        let file_name: String = words
            .format(lang, "journal.file_name", &[])?
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .collect();
        let disposition = format!("attachment; filename=\"{file_name}\"");
        let mut md = format!("# {heading}\n\n");
        for e in &entries {
            md.push_str(&format!(
                "## {}\n\n_{}_\n\n{}\n\n({})\n\n",
                e["lesson"].as_str().unwrap_or(""),
                e["prompt"].as_str().unwrap_or(""),
                e["text"].as_str().unwrap_or(""),
                e["received"].as_str().unwrap_or("")
            ));
            for m in e["more"].as_array().into_iter().flatten() {
                md.push_str(&format!(
                    "**{}** ({})\n\n{}\n\n",
                    m["label"].as_str().unwrap_or(""),
                    m["when"].as_str().unwrap_or(""),
                    m["text"].as_str().unwrap_or("")
                ));
            }
        }
        return Ok((
            [
                (header::CONTENT_TYPE, "text/markdown; charset=utf-8"),
                (header::CONTENT_DISPOSITION, disposition.as_str()),
                (header::CACHE_CONTROL, "no-store"),
            ],
            md,
        )
            .into_response());
    }
    let page = course_page(&app, &course).await?;
    let mut response = render(
        &app,
        "journal",
        &page.language,
        json!({"course": page, "entries": entries, "access": access}),
    )?
    .into_response();
    private(&mut response);
    Ok(response)
}

/// Everything stored about the subscriber as a JSON file (their right of access): the button
/// of the journal page, and of [`export_page`].
async fn export(State(app): State<App>, Path(access): Path<String>) -> Result<Response, WebError> {
    let s = journal_owner(&app, &access).await?;
    let now = Utc::now();
    let export = subscriptions::export::export(&app, s.id, "subscriber", "journal", now)
        .await?
        .ok_or(WebError::Link("no_subscription"))?;
    Ok(super::json_download(
        &subscriptions::export::file_name(now),
        export.to_json()?,
    ))
}
