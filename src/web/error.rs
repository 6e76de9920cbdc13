//! One error type for every handler: a page (or JSON) the person can act on, and the cause
//! of a 500 in the log, never in the response.

use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

#[derive(Debug)]
pub enum WebError {
    /// A link whose token is wrong, truncated or from another purpose, or a missing row.
    NotFound(&'static str),
    /// The database is locked or restarting: nothing was done, try again shortly.
    Unavailable(anyhow::Error),
    Internal(anyhow::Error),
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

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            WebError::NotFound(what) => {
                (StatusCode::NOT_FOUND, Html(page("Link not found", what))).into_response()
            }
            WebError::Unavailable(e) => {
                tracing::warn!(error = %format!("{e:#}"), "database unavailable; answered 503");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(axum::http::header::RETRY_AFTER, "30")],
                    Html(page(
                        "Busy for a moment",
                        "Nothing was changed. Please try again in a minute.",
                    )),
                )
                    .into_response()
            }
            WebError::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Html(page(
                        "Something went wrong",
                        "Please try again in a moment.",
                    )),
                )
                    .into_response()
            }
        }
    }
}

/// A minimal page that does not depend on templates (which may be what failed).
fn page(title: &str, message: &str) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title></head>\
         <body style=\"font-family: Georgia, serif; max-width: 36rem; margin: 4rem auto; padding: 0 1rem; line-height: 1.6\"><h1>{}</h1><p>{}</p></body></html>",
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
    let field = quoted.or(path).unwrap_or("body");
    (e.status(), e.body_text(), field.to_owned())
}
