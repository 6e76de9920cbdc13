//! `/admin/webhooks` (owners only): the endpoints drip posts its events to, each with its
//! latest deliveries (status, time, the answer's code); adding one (its secret shown once,
//! on the page that answers the form) and removing one. The same functions as
//! `drip webhooks` (`crate::webhooks`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use chrono::Utc;
use serde_json::json;

use super::{page, see_other};
use crate::app::App;
use crate::auth::Admin;
use crate::domain::{Area, EventType};
use crate::web::WebError;
use crate::web::access::Routes;
use crate::webhooks::{self, AddError};

pub fn router() -> Routes {
    Routes::new()
        .get("/admin/webhooks", &[Area::Webhooks], list)
        .post("/admin/webhooks", &[Area::Webhooks], add)
        .post("/admin/webhooks/{id}/remove", &[Area::Webhooks], remove)
}

/// Deliveries shown per endpoint.
const RECENT: i64 = 10;

/// The page: every endpoint, the form (refilled and with its error after a refusal), and
/// a just-added endpoint's secret.
async fn render(
    app: &App,
    admin: &Admin,
    status: StatusCode,
    form: serde_json::Value,
    added: Option<&webhooks::Added>,
) -> Result<Response, WebError> {
    let endpoints = webhooks::list(app, RECENT).await?;
    let ticked: Vec<String> = form["events"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let events: Vec<_> = EventType::ALL
        .iter()
        .map(|e| json!({"name": e.as_str(), "ticked": ticked.iter().any(|t| t == e.as_str())}))
        .collect();
    page(
        app,
        Some(admin),
        status,
        "webhooks",
        json!({
            "nav": "webhooks",
            "endpoints": endpoints,
            "events": events,
            "form": form,
            "added": added,
            "retry_hours": app.config.webhooks.retry_hours,
        }),
    )
}

async fn list(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
) -> Result<Response, WebError> {
    render(&app, &admin, StatusCode::OK, json!({}), None).await
}

/// The add form: `url` and one `events` field per ticked box (hence pairs, not a struct).
async fn add(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let url = fields
        .iter()
        .find(|(k, _)| k == "url")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let ticked: Vec<String> = fields
        .iter()
        .filter(|(k, _)| k == "events")
        .map(|(_, v)| v.clone())
        .collect();
    match webhooks::add(&app, &url, &ticked.join(","), &admin.username, Utc::now()).await {
        Ok(added) => render(&app, &admin, StatusCode::OK, json!({}), Some(&added)).await,
        Err(AddError::Invalid(e)) => {
            let form = json!({"url": url, "events": ticked, "error": e.message, "field": e.field});
            render(&app, &admin, StatusCode::UNPROCESSABLE_ENTITY, form, None).await
        }
        Err(AddError::Other(e)) => Err(e.into()),
    }
}

async fn remove(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    if !webhooks::remove(&app, id, &admin.username, Utc::now()).await? {
        return Err(WebError::NotFound(
            "There is no such webhook (removed already?).",
        ));
    }
    Ok(see_other("/admin/webhooks"))
}
