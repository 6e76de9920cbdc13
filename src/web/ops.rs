//! `/healthz` and `/metrics` (Prometheus text format).

use std::fmt::Write;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use chrono::Utc;

use crate::app::App;
use crate::db;

pub fn router() -> Router<App> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
}

async fn healthz(State(app): State<App>) -> impl IntoResponse {
    match app.db.ping().await {
        Ok(()) => (StatusCode::OK, "ok\n"),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "health check: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n")
        }
    }
}

async fn metrics(State(app): State<App>) -> Result<impl IntoResponse, super::WebError> {
    let now = Utc::now().timestamp();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP drip_deliveries Deliveries by status.\n# TYPE drip_deliveries gauge"
    );
    for (status, n) in db::deliveries::count_by_status(&app.db).await? {
        let _ = writeln!(out, "drip_deliveries{{status=\"{status}\"}} {n}");
    }
    let (depth, oldest) = db::deliveries::queue_depth(&app.db, now).await?;
    let _ = writeln!(
        out,
        "# HELP drip_queue_depth Deliveries due now and not yet sent.\n# TYPE drip_queue_depth gauge\ndrip_queue_depth {depth}"
    );
    let age = oldest.map(|t| (now - t).max(0)).unwrap_or(0);
    let _ = writeln!(
        out,
        "# HELP drip_queue_oldest_age_seconds Age of the oldest due delivery.\n# TYPE drip_queue_oldest_age_seconds gauge\ndrip_queue_oldest_age_seconds {age}"
    );
    let _ = writeln!(
        out,
        "# HELP drip_subscribers Subscribers by status.\n# TYPE drip_subscribers gauge"
    );
    for (status, n) in db::subscribers::count_by_status(&app.db).await? {
        let _ = writeln!(out, "drip_subscribers{{status=\"{status}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP drip_replies Replies stored, by kind (retention deletes old ones).\n# TYPE drip_replies gauge"
    );
    for (kind, n) in db::replies::count_by_kind(&app.db).await? {
        let _ = writeln!(out, "drip_replies{{kind=\"{kind}\"}} {n}");
    }
    crate::metrics::render_send_metrics(&mut out);
    crate::metrics::render_signup_metrics(&mut out, app.signups.figures());
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out))
}
