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

async fn receive(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let expected = &app.config.inbound.token;
    if expected.is_empty() {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "the inbound webhook is off (set inbound.token)", "field": null})),
        )
            .into_response();
    }
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !token_matches(given.trim(), expected) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "a valid bearer token is required", "field": "authorization"})),
        )
            .into_response();
    }
    match crate::inbound::ingest(&app, &body, false, Utc::now()).await {
        Ok(outcome) => (StatusCode::OK, Json(json!(outcome))).into_response(),
        Err(e @ IngestError::Unreadable(_)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"error": e.to_string(), "field": "body"})),
        )
            .into_response(),
        Err(IngestError::Store(e)) => {
            tracing::error!(error = %format!("{e:#}"), "inbound message not stored");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": "cannot store the message now; retry later", "field": null})),
            )
                .into_response()
        }
    }
}
