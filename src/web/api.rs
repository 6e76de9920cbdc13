//! The JSON API under `/api/v1`, for scripts. Every request carries `Authorization: Bearer
//! <token>` (from `drip admin token USER`); no cookie is looked at, so no CSRF applies. The
//! token's admin's role applies, through the same route table as the admin pages
//! (`crate::web::access`): a route outside it answers 403.
//! Errors are `{"error": "...", "field": "..." | null}` with a fitting status.

use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;

use super::AsJson;
use super::access::{Refusal, Routes};
use crate::app::App;
use crate::auth::{self, Admin};

mod broadcasts;
mod courses;
pub(crate) mod docs;
mod enrollments;
mod lessons;
mod subscribers;

/// Where the API lives.
const PREFIX: &str = "/api/v1";

/// Every API route, with the areas each touches.
pub(crate) fn routes() -> Routes {
    Routes::under(PREFIX)
        .merge(courses::router())
        .merge(broadcasts::router())
        .merge(subscribers::router())
        .merge(enrollments::router())
        .merge(lessons::router())
        .merge(docs::router())
}

pub fn router(app: &App) -> Router<App> {
    let v1 = routes()
        .guarded(app, refuse)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such API route", None) })
        .layer(middleware::from_fn_with_state(app.clone(), require_token));
    Router::new().nest(PREFIX, v1)
}

fn refuse(_: &App, admin: Option<&Admin>, _: &Method, why: Refusal) -> Response {
    let field = match why {
        Refusal::MustEnrol => "totp",
        _ => "role",
    };
    if let Some(admin) = admin {
        tracing::info!(user = %admin.username, role = %admin.role, "API request refused: {}", why.explain());
    }
    ApiError::new(StatusCode::FORBIDDEN, why.explain(), Some(field)).into_response()
}

/// The API's errors are the web's one error, answered as JSON.
pub(crate) type ApiError = AsJson;

pub(crate) type ApiResult = Result<Response, ApiError>;

/// `Json<T>` whose refusals are API errors (unknown fields, wrong types, bad syntax, too
/// large), with axum's status for each.
pub(crate) struct Body<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Json::<T>::from_request(req, state)
            .await
            .map(|Json(v)| Body(v))
            .map_err(|e| AsJson(e.into()))
    }
}

/// `Query<T>` whose refusals (an unknown parameter, a number that is not one) are 422 API
/// errors naming the parameter, as a body's are.
pub(crate) struct Params<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Params(v)),
            Err(e) => {
                let detail = std::error::Error::source(&e)
                    .map(ToString::to_string)
                    .unwrap_or_default();
                let field = super::error::field_of(&detail)
                    .unwrap_or("query")
                    .to_owned();
                Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("the query string was refused: {detail}"),
                    Some(&field),
                ))
            }
        }
    }
}

/// A broadcast's id in the path: not a number is a 404 (there is no such broadcast), in
/// the API's JSON rather than axum's plain text.
pub(crate) struct Id(pub(crate) i64);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<i64>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(id)) => Ok(Id(id)),
            Err(_) => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "the id is not a number: there is no such item",
                Some("id"),
            )),
        }
    }
}

async fn require_token(State(app): State<App>, mut req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or("");
    let admin = if given.is_empty() {
        None
    } else {
        match auth::token_admin(&app.db, given, Utc::now().timestamp()).await {
            Ok(a) => a,
            Err(e) => return ApiError::from(e).into_response(),
        }
    };
    match admin {
        Some(a) => {
            req.extensions_mut().insert(a);
            next.run(req).await
        }
        None => {
            let mut r = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "a valid bearer token is required (drip admin token USER)",
                Some("authorization"),
            )
            .into_response();
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            r
        }
    }
}

/// A list's `limit`: 1 to 1000, 100 when left out.
pub(crate) fn page_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    let limit = limit.unwrap_or(100);
    if (1..=1000).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "limit must be from 1 to 1000",
            Some("limit"),
        ))
    }
}

/// A stored time as RFC 3339, as every time in the API is given.
pub(crate) fn time(t: Option<i64>) -> Option<String> {
    t.and_then(|t| DateTime::from_timestamp(t, 0))
        .map(|t| t.to_rfc3339())
}
