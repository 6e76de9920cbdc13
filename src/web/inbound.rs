//! `POST /inbound/email`: a raw RFC 5322 message from a mail provider's webhook or a relay,
//! authorised by the bearer token in `[inbound] token` (the route is off while it is empty).

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::Utc;
use hmac::Mac;
use serde_json::json;

use crate::app::App;
use crate::inbound::IngestError;
use crate::web::AsJson;

pub fn router() -> Router<App> {
    Router::new().route("/inbound/email", post(receive))
}

/// Compares through HMAC so the time taken says nothing about how much of the token matched.
fn token_matches(given: &str, expected: &str) -> bool {
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(b"drip inbound token").expect("any key length");
    mac.update(expected.as_bytes());
    let want = mac.finalize().into_bytes();
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(b"drip inbound token").expect("any key length");
    mac.update(given.as_bytes());
    mac.verify_slice(&want).is_ok()
}

async fn receive(
    State(app): State<App>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AsJson> {
    let expected = &app.config.inbound.token;
    if expected.is_empty() {
        return Err(AsJson::new(
            StatusCode::NOT_FOUND,
            "the inbound webhook is off (set inbound.token)",
            None,
        ));
    }
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !token_matches(given.trim(), expected) {
        return Err(AsJson::new(
            StatusCode::UNAUTHORIZED,
            "a valid bearer token is required",
            Some("authorization"),
        ));
    }
    match crate::inbound::ingest(&app, &body, false, Utc::now()).await {
        Ok(outcome) => Ok((StatusCode::OK, Json(json!(outcome))).into_response()),
        Err(e @ IngestError::Unreadable(_)) => Err(AsJson::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            e.to_string(),
            Some("body"),
        )),
        Err(IngestError::Store(e)) => {
            tracing::error!(error = %format!("{e:#}"), "inbound message not stored");
            // Always "try again" for the mail server, whatever the cause.
            Err(AsJson::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot store the message now; retry later",
                None,
            ))
        }
    }
}
