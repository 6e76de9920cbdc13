//! One error type for every handler: a page (or JSON) the person can act on, and the cause
//! of a 500 in the log, never in the response.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

#[derive(Debug)]
pub enum WebError {
    /// A link whose token is wrong, truncated or from another purpose, or a missing row.
    NotFound(&'static str),
    Internal(anyhow::Error),
}

impl From<anyhow::Error> for WebError {
    fn from(e: anyhow::Error) -> Self {
        WebError::Internal(e)
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            WebError::NotFound(what) => {
                (StatusCode::NOT_FOUND, Html(page("Link not found", what))).into_response()
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
