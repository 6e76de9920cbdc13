//! The admin's own account: their role and their second factor. The page offers a new TOTP
//! key (as a QR code, the `otpauth://` URI and the key in base32) and enrols it once a code
//! from it is typed back; then it shows the ten recovery codes, once. Enrolling ends every
//! other session of the admin; the browser that enrolled gets a new session.

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use axum::{Extension, Form};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::login::{session_cookie, set_cookie};
use super::page;
use crate::app::App;
use crate::auth::second_factor::{self, Confirmation, Offer};
use crate::auth::{self, Admin, FailureLimiter, totp};
use crate::domain::{Area, SessionStage};
use crate::web::WebError;
use crate::web::access::Routes;

pub(crate) const TOTP_PATH: &str = "/admin/account/totp";

pub fn router() -> Routes {
    Routes::new()
        .get(TOTP_PATH, &[Area::Account], show)
        .post(TOTP_PATH, &[Area::Account], confirm)
}

#[derive(Deserialize, Default)]
struct ShowQuery {
    /// Set after signing in with a recovery code.
    #[serde(default)]
    recovery: String,
}

/// The key in groups of four, easier to type.
fn grouped(secret: &str) -> String {
    secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

async fn totp_page(
    app: &App,
    admin: &Admin,
    status: StatusCode,
    offer: &Offer,
    recovered: bool,
    error: &str,
) -> Result<Response, WebError> {
    let left = if admin.totp {
        Some(second_factor::recovery_codes_left(&app.db, admin.id).await?)
    } else {
        None
    };
    page(
        app,
        Some(admin),
        status,
        "account_totp",
        json!({
            "nav": "account", "uri": offer.uri, "secret": grouped(&offer.secret), "qr": totp::qr_svg(&offer.uri),
            "left": left, "recovered": recovered, "error": error,
            "required": app.config.security.require_totp && !admin.totp,
        }),
    )
}

async fn offer(app: &App, admin: &Admin) -> Result<Offer, WebError> {
    Ok(second_factor::offer(
        &app.db,
        &app.vault,
        admin.id,
        &admin.username,
        &app.config.server.base_url,
    )
    .await?)
}

async fn show(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
    Query(q): Query<ShowQuery>,
) -> Result<Response, WebError> {
    let offer = offer(&app, &admin).await?;
    totp_page(&app, &admin, StatusCode::OK, &offer, q.recovery == "1", "").await
}

#[derive(Deserialize)]
struct CodeForm {
    #[serde(default)]
    code: String,
}

async fn confirm(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
    Form(f): Form<CodeForm>,
) -> Result<Response, WebError> {
    let now = Utc::now().timestamp();
    let limiter = FailureLimiter::codes();
    if let Err(wait) = limiter.check(admin.id, now) {
        let offer = offer(&app, &admin).await?;
        let minutes = (wait + 59) / 60;
        let text = format!("Too many wrong codes. Wait {minutes} minute(s) and try again.");
        let mut r = totp_page(
            &app,
            &admin,
            StatusCode::TOO_MANY_REQUESTS,
            &offer,
            false,
            &text,
        )
        .await?;
        if let Ok(v) = wait.to_string().parse() {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Ok(r);
    }
    let confirmation = second_factor::confirm(
        &app.db,
        &app.vault,
        admin.id,
        &admin.username,
        &app.config.server.base_url,
        &f.code,
        now,
    )
    .await?;
    let enrolled = match confirmation {
        Confirmation::Enrolled(e) => e,
        Confirmation::WrongCode => {
            limiter.record_failure(admin.id, now);
            let offer = offer(&app, &admin).await?;
            return totp_page(
                &app,
                &admin,
                StatusCode::UNPROCESSABLE_ENTITY,
                &offer,
                false,
                "code: that is not the code the app shows for this key now; check the phone's clock, or scan the key again",
            )
            .await;
        }
    };
    limiter.clear(admin.id);
    // Every session of the admin ended with the change; this browser gets a new one.
    let id = auth::start_session(
        &app.db,
        admin.id,
        enrolled.generation,
        SessionStage::Full,
        now,
    )
    .await?;
    let fresh = auth::session_admin(&app.db, &id, now)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the session made after enrolling is gone"))?;
    let mut response = page(
        &app,
        Some(&fresh),
        StatusCode::OK,
        "recovery_codes",
        json!({"nav": "account", "codes": enrolled.recovery_codes}),
    )?;
    set_cookie(
        &mut response,
        &session_cookie(&app, &id, auth::ABSOLUTE_SECONDS),
    );
    Ok(response)
}
