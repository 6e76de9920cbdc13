//! CSV import (an upload, with a report of every rejected row) and export (a download in
//! the same columns as `drip subscribers export`).

use axum::Extension;
use axum::extract::{Multipart, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use futures::TryStreamExt;
use serde_json::json;

use super::{IMPORT_PATH, forbidden, page};
use crate::app::App;
use crate::auth::{self, Admin};
use crate::db;
use crate::domain::Area;
use crate::web::WebError;
use crate::web::access::Routes;

pub fn router() -> Routes {
    Routes::new()
        .get(IMPORT_PATH, &[Area::Subscribers], form)
        .post(IMPORT_PATH, &[Area::Subscribers], import)
        .get(
            "/admin/subscribers/export.csv",
            &[Area::Subscribers],
            export,
        )
}

async fn form(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
) -> Result<Response, WebError> {
    page(
        &app,
        Some(&admin),
        StatusCode::OK,
        "import",
        json!({"nav": "subscribers"}),
    )
}

/// Reads the upload's parts; the CSRF part is checked before the file is imported.
async fn import(
    State(app): State<App>,
    Extension(current): Extension<super::CurrentCourse>,
    Extension(admin): Extension<Admin>,
    mut multipart: Multipart,
) -> Result<Response, WebError> {
    let mut csrf = String::new();
    let mut confirmed = false;
    let mut file: Option<(String, Vec<u8>)> = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                let text = format!("The upload could not be read: {e}");
                return page(
                    &app,
                    Some(&admin),
                    StatusCode::BAD_REQUEST,
                    "import",
                    json!({"nav": "subscribers", "error": text}),
                );
            }
        };
        match field.name().unwrap_or("") {
            "csrf" => csrf = field.text().await.unwrap_or_default(),
            "confirmed" => confirmed = true,
            "file" => {
                let name = field.file_name().unwrap_or("upload.csv").to_owned();
                match field.bytes().await {
                    Ok(b) => file = Some((name, b.to_vec())),
                    Err(e) => {
                        let text = format!("The file could not be read: {e}");
                        return page(
                            &app,
                            Some(&admin),
                            StatusCode::BAD_REQUEST,
                            "import",
                            json!({"nav": "subscribers", "error": text}),
                        );
                    }
                }
            }
            _ => {}
        }
    }
    if csrf.is_empty() || !auth::same_secret(&csrf, &admin.csrf) {
        return Ok(forbidden());
    }
    let Some((name, bytes)) = file.filter(|(_, b)| !b.is_empty()) else {
        return page(
            &app,
            Some(&admin),
            StatusCode::UNPROCESSABLE_ENTITY,
            "import",
            json!({"nav": "subscribers", "error": "file: choose a CSV file to import"}),
        );
    };
    let report = match crate::subscriptions::import::import_reader(
        &app,
        &current.course,
        std::io::Cursor::new(bytes),
        confirmed,
        Utc::now(),
    )
    .await
    {
        Ok(report) => report,
        Err(e) => match e.downcast_ref::<crate::subscriptions::import::Unreadable>() {
            Some(u) => {
                return page(
                    &app,
                    Some(&admin),
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "import",
                    json!({"nav": "subscribers", "error": format!("{name}:{}: {} (nothing was imported)", u.line, u.message)}),
                );
            }
            None => return Err(e.into()),
        },
    };
    tracing::info!(admin = %admin.username, file = %name, imported = report.imported, rejected = report.rejected.len(), "subscribers imported");
    let rejected: Vec<_> = report
        .rejected
        .iter()
        .map(|(line, why)| json!({"line": line, "why": why}))
        .collect();
    page(
        &app,
        Some(&admin),
        StatusCode::OK,
        "import",
        json!({
            "nav": "subscribers", "report": {"file": name, "imported": report.imported, "added_to_course": report.added_to_course, "existing": report.existing, "rejected": rejected, "confirmed": confirmed},
        }),
    )
}

async fn export(State(app): State<App>) -> Result<Response, WebError> {
    use crate::subscriptions::spreadsheet;
    let mut w = csv::Writer::from_writer(Vec::new());
    let csv_error = |e: csv::Error| WebError::Internal(e.into());
    w.write_record(spreadsheet::COLUMNS).map_err(csv_error)?;
    let mut rows = db::subscribers::stream_all(&app.db);
    while let Some(s) = rows
        .try_next()
        .await
        .map_err(|e| WebError::Internal(e.into()))?
    {
        if s.status != crate::domain::SubscriberStatus::Erased {
            w.write_record(spreadsheet::row(&s)).map_err(csv_error)?;
        }
    }
    let body = w
        .into_inner()
        .map_err(|e| WebError::Internal(anyhow::anyhow!("{e}")))?;
    let file = format!(
        "attachment; filename=\"subscribers-{}.csv\"",
        Utc::now().format("%Y%m%d")
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, file),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response())
}
