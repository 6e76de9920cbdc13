//! The HTTP side: public pages (sign-up, confirm, unsubscribe, preferences, journal),
//! health and metrics. Each part exposes `router()`; they are merged here. Handlers stay
//! thin: they parse input into domain types and call `subscriptions` or `db`.

mod error;
mod ops;
mod public;

use axum::Router;
use axum::extract::DefaultBodyLimit;

use crate::app::App;

pub use error::WebError;

/// Requests to the public pages are small forms; anything larger is refused with 413.
const FORM_LIMIT: usize = 64 * 1024;

pub fn router(app: App) -> Router {
    Router::new()
        .merge(public::router())
        .merge(ops::router())
        .layer(DefaultBodyLimit::max(FORM_LIMIT))
        .with_state(app)
}
