//! The HTTP side: public pages (sign-up, confirm, unsubscribe, preferences, journal),
//! health and metrics, the admin UI (`admin`) and the JSON API (`api`). Each part exposes
//! `router()`; they are merged here. Handlers stay thin: they parse input into domain types
//! and call `subscriptions` or `db`.

pub mod access;
pub(crate) mod admin;
mod api;
pub(crate) mod client;
pub(crate) mod error;
mod inbound;
mod journal;
mod ops;
mod public;

use axum::Router;
use axum::extract::DefaultBodyLimit;

use crate::app::App;

pub use error::{AsJson, WebError};

/// Requests to the public pages are small forms; anything larger is refused with 413.
const FORM_LIMIT: usize = 64 * 1024;

pub fn router(app: App) -> Router {
    let inbound_limit = app.config.inbound.max_message_bytes;
    // The subscriber's side, and any address without a page: error pages in the course's
    // language.
    let subscriber_side = public::router()
        .merge(journal::router())
        .fallback(|| async { WebError::Link("no_page") })
        .layer(axum::middleware::map_response_with_state(
            app.clone(),
            error::in_course_language,
        ));
    Router::new()
        .merge(subscriber_side)
        .merge(ops::router())
        .layer(DefaultBodyLimit::max(FORM_LIMIT))
        // Raw messages are larger than forms: their own limit, from the configuration.
        .merge(inbound::router().layer(DefaultBodyLimit::max(inbound_limit)))
        // The admin UI and the JSON API set their own limits and sign-in checks.
        .merge(admin::router(&app))
        .merge(api::router(&app))
        .with_state(app)
}

/// Every signed-in route of the admin UI and the JSON API with the areas it touches, as the
/// route table holds them: what the role checks enforce, listed for tests and docs.
pub fn access_rules() -> Vec<access::Rule> {
    let mut rules = admin::routes().rules().to_vec();
    rules.extend_from_slice(api::routes().rules());
    rules
}

/// A JSON document as a file to save (a subscriber's data export): never cached, never
/// sniffed into something a browser would render.
pub(crate) fn json_download(file_name: &str, body: String) -> axum::response::Response {
    use axum::http::header;
    use axum::response::IntoResponse;
    (
        [
            (
                header::CONTENT_TYPE,
                "application/json; charset=utf-8".to_owned(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        ],
        body,
    )
        .into_response()
}
