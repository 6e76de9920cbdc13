//! One error type for every handler: what went wrong, in words the person can act on, and
//! the cause of a 500 in the log, never in the response. A page answers it as HTML; the JSON
//! API, the inbound webhook and a JSON sign-up wrap it in [`AsJson`] and answer
//! `{"error": "...", "field": "..." | null}` with the same status.
//!
//! The subscriber's side (its routes are wrapped in [`in_course_language`]) says the same
//! pages in the course's language, from the catalogue's `errors` keys; the admin UI and the
//! API keep the English words here.

use std::borrow::Cow;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::domain::InvalidInput;

#[derive(Debug)]
pub enum WebError {
    /// A link whose token is wrong, truncated or from another purpose, or a missing row.
    NotFound(&'static str),
    /// A subscriber's link or address that leads nowhere: `errors.<key>` in the catalogue
    /// says why, in the course's language (`link_invalid`, `no_subscription`...).
    Link(&'static str),
    /// The input was refused; `field` names what to fix. 422 unless `status` says otherwise
    /// (401 a missing token, 409 a conflict, 413 too large, 415 not JSON, ...).
    Refused {
        status: StatusCode,
        message: String,
        field: Option<String>,
    },
    /// The database is locked or restarting: nothing was done, try again shortly.
    Unavailable(anyhow::Error),
    Internal(anyhow::Error),
}

impl WebError {
    /// A refusal with its status, message and the field it is about.
    pub(crate) fn refused(
        status: StatusCode,
        message: impl Into<String>,
        field: Option<&str>,
    ) -> Self {
        WebError::Refused {
            status,
            message: message.into(),
            field: field.map(str::to_owned),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            WebError::NotFound(_) | WebError::Link(_) => StatusCode::NOT_FOUND,
            WebError::Refused { status, .. } => *status,
            WebError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Logs what needs logging; returns (title, message, field) to show.
    fn shown(&self) -> (&'static str, Cow<'_, str>, Option<&str>) {
        match self {
            WebError::NotFound(what) => ("Link not found", Cow::Borrowed(*what), None),
            // Only the subscriber's routes raise it, and they say it in the course's words.
            WebError::Link(_) => (
                "Link not found",
                Cow::Borrowed("This link does not lead anywhere."),
                None,
            ),
            WebError::Refused { message, field, .. } => (
                "Not accepted",
                Cow::Borrowed(message.as_str()),
                field.as_deref(),
            ),
            WebError::Unavailable(e) => {
                tracing::warn!(error = %format!("{e:#}"), "database unavailable; answered 503");
                (
                    "Busy for a moment",
                    Cow::Borrowed(
                        "the database is busy or restarting; nothing was changed, try again shortly",
                    ),
                    None,
                )
            }
            WebError::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "request failed");
                (
                    "Something went wrong",
                    Cow::Borrowed("internal error; see the server log"),
                    None,
                )
            }
        }
    }
}

impl From<anyhow::Error> for WebError {
    fn from(e: anyhow::Error) -> Self {
        if crate::db::is_unavailable(&e) {
            WebError::Unavailable(e)
        } else {
            WebError::Internal(e)
        }
    }
}

impl From<InvalidInput> for WebError {
    fn from(e: InvalidInput) -> Self {
        WebError::Refused {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: e.to_string(),
            field: Some(e.field.to_owned()),
        }
    }
}

impl From<crate::curriculum::start::StartError> for WebError {
    fn from(e: crate::curriculum::start::StartError) -> Self {
        use crate::curriculum::start::StartError;
        match e {
            StartError::Invalid(e) => e.into(),
            e @ StartError::Taken(_) => {
                WebError::refused(StatusCode::CONFLICT, e.to_string(), Some("slug"))
            }
            StartError::Other(e) => WebError::Internal(e),
        }
    }
}

impl From<crate::answers::AnswerError> for WebError {
    fn from(e: crate::answers::AnswerError) -> Self {
        use crate::answers::AnswerError;
        match e {
            AnswerError::Invalid(e) => e.into(),
            AnswerError::NotFound(_) => WebError::NotFound("There is no reply with this number."),
            e @ AnswerError::Refused { .. } => {
                WebError::refused(StatusCode::CONFLICT, e.to_string(), Some("id"))
            }
            AnswerError::Other(e) => e.into(),
        }
    }
}

impl From<crate::broadcasts::BroadcastError> for WebError {
    fn from(e: crate::broadcasts::BroadcastError) -> Self {
        use crate::broadcasts::BroadcastError;
        match e {
            BroadcastError::Invalid(e) => e.into(),
            BroadcastError::NotFound(_) => WebError::NotFound("There is no such broadcast."),
            e @ BroadcastError::Finished { .. } => {
                WebError::refused(StatusCode::CONFLICT, e.to_string(), Some("id"))
            }
            BroadcastError::Other(e) => WebError::Internal(e),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (title, message, _) = self.shown();
        // Pages speak to people: the technical wording of a 503 or 500 is for the API.
        let message = match &self {
            WebError::Unavailable(_) => {
                Cow::Borrowed("Nothing was changed. Please try again in a minute.")
            }
            WebError::Internal(_) => Cow::Borrowed("Please try again in a moment."),
            _ => message,
        };
        let body = Html(page("en", title, &message));
        let words = self.words();
        let mut response = match self {
            WebError::Unavailable(_) => {
                (status, [(axum::http::header::RETRY_AFTER, "30")], body).into_response()
            }
            _ => (status, body).into_response(),
        };
        response.extensions_mut().insert(words);
        response
    }
}

/// What an error page says, as keys of the catalogue's `errors` table, for
/// [`in_course_language`] to put in words.
#[derive(Debug, Clone)]
struct Words {
    title: &'static str,
    /// A key, or (for a refusal) the message as it is.
    message: Result<&'static str, String>,
}

impl WebError {
    fn words(&self) -> Words {
        let (title, message) = match self {
            WebError::NotFound(what) => ("link_title", Err((*what).to_owned())),
            WebError::Link(key) => ("link_title", Ok(*key)),
            WebError::Refused { message, .. } => ("refused_title", Err(message.clone())),
            WebError::Unavailable(_) => ("busy_title", Ok("busy")),
            WebError::Internal(_) => ("internal_title", Ok("internal")),
        };
        Words { title, message }
    }
}

/// Says the error pages of the subscriber's routes in the course's language. The page stays
/// the minimal one (no template, which may be what failed); only its words change.
pub(super) async fn in_course_language(
    axum::extract::State(app): axum::extract::State<crate::app::App>,
    mut response: Response,
) -> Response {
    let Some(words) = response.extensions_mut().remove::<Words>() else {
        return response;
    };
    // The database may be what failed: English rather than a page that waits for it.
    let lang = tokio::time::timeout(std::time::Duration::from_secs(2), app.site_language())
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| crate::render::i18n::FALLBACK.to_owned());
    let catalogue = app.renderer.catalogue();
    let text = |key: &str| {
        let key = format!("errors.{key}");
        catalogue.text(&lang, &key).unwrap_or(&key).to_owned()
    };
    let message = match &words.message {
        Ok(key) => text(key),
        Err(as_is) => as_is.clone(),
    };
    let body = page(&lang, &text(words.title), &message);
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// Every refusal of the JSON API (and of the other JSON answers), as the OpenAPI document
/// describes it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody {
    /// What went wrong, in words the caller can act on.
    pub error: String,
    /// The field, parameter or header to fix, when one is to blame.
    #[schema(required = true)]
    pub field: Option<String>,
}

/// The same error answered as JSON: `{"error", "field"}`.
#[derive(Debug)]
pub struct AsJson(pub WebError);

impl AsJson {
    /// A refusal answered as JSON (see [`WebError::refused`]).
    pub(crate) fn new(status: StatusCode, error: impl Into<String>, field: Option<&str>) -> AsJson {
        AsJson(WebError::refused(status, error, field))
    }
}

impl<E: Into<WebError>> From<E> for AsJson {
    fn from(e: E) -> Self {
        AsJson(e.into())
    }
}

impl IntoResponse for AsJson {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let (_, message, field) = self.0.shown();
        let body = Json(ErrorBody {
            error: message.into_owned(),
            field: field.map(str::to_owned),
        });
        match self.0 {
            WebError::Unavailable(_) => {
                (status, [(axum::http::header::RETRY_AFTER, "30")], body).into_response()
            }
            _ => (status, body).into_response(),
        }
    }
}

/// A refused JSON body, as the one error.
impl From<JsonRejection> for WebError {
    fn from(e: JsonRejection) -> Self {
        let (status, message, field) = json_rejection(&e);
        WebError::Refused {
            status,
            message,
            field: Some(field),
        }
    }
}

/// A minimal page that does not depend on templates (which may be what failed).
fn page(lang: &str, title: &str, message: &str) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    format!(
        "<!DOCTYPE html><html lang=\"{}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title></head>\
         <body style=\"font-family: Georgia, serif; max-width: 36rem; margin: 4rem auto; padding: 0 1rem; line-height: 1.6\"><h1>{}</h1><p>{}</p></body></html>",
        esc(lang),
        esc(title),
        esc(title),
        esc(message)
    )
}

/// A JSON body refused before its fields were read, as (status, message, field): axum's
/// status (413 too large, 415 not JSON, 400 not JSON at all, 422 the wrong shape), and for
/// the wrong shape the field serde names, else `body`.
pub(crate) fn json_rejection(e: &JsonRejection) -> (StatusCode, String, String) {
    if e.status() != StatusCode::UNPROCESSABLE_ENTITY {
        return (e.status(), e.body_text(), "body".to_owned());
    }
    let detail = std::error::Error::source(e)
        .map(ToString::to_string)
        .unwrap_or_default();
    let field = field_of(&detail).unwrap_or("body");
    (e.status(), e.body_text(), field.to_owned())
}

/// The field a serde refusal is about: the one it quotes (unknown, missing), else the path
/// serde_path_to_error puts first.
pub(crate) fn field_of(detail: &str) -> Option<&str> {
    let quoted = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|p| detail.split_once(p))
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(name, _)| name);
    // serde_path_to_error puts the path first: `email: invalid type: …`.
    let path = detail
        .split_once(": ")
        .map(|(p, _)| p)
        .filter(|p| !p.is_empty() && p.chars().all(|c| c.is_alphanumeric() || "_.[]".contains(c)))
        .and_then(|p| p.split(['.', '[']).next());
    quoted.or(path)
}

/// An unknown or missing course is the caller's to fix, and names the field `course`.
impl From<crate::app::CourseChoice> for WebError {
    fn from(e: crate::app::CourseChoice) -> Self {
        match e {
            crate::app::CourseChoice::Other(e) => WebError::from(e),
            refused => WebError::refused(
                StatusCode::UNPROCESSABLE_ENTITY,
                refused.to_string(),
                Some("course"),
            ),
        }
    }
}
