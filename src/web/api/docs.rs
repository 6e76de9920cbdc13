//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 description of every `/api/v1` route, made
//! by utoipa from the handlers' `#[utoipa::path]` annotations and the types they take and
//! answer, so the document follows the code. A test compares its paths with the route
//! table ([`super::routes`]), and another runs schemathesis against a running drip with it.
//!
//! Like every API route it needs a bearer token (any role may read it: [`Area::Account`]).
//! The errors every route can answer are added here once ([`Common`]), the ones a route
//! answers for its own reasons on its annotation.

use axum::Json;
use axum::response::IntoResponse;
use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::{ApiResult, PREFIX};
use crate::domain::Area;
use crate::web::access::Routes;
use crate::web::error::ErrorBody;

pub fn router() -> Routes {
    Routes::under(PREFIX).get("/openapi.json", &[Area::Account], openapi_json)
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "drip",
        description = "The JSON API of a drip instance. Every request carries `Authorization: Bearer TOKEN` (from `drip admin token USER`); the token's admin's role decides what it may read and change. Errors are `{\"error\": \"...\", \"field\": \"...\" | null}`.",
    ),
    paths(
        openapi_json,
        super::courses::list,
        super::courses::create,
        super::courses::one,
        super::broadcasts::list,
        super::broadcasts::create,
        super::broadcasts::one,
        super::broadcasts::cancel,
        super::lessons::list_lessons,
        super::lessons::get_lesson,
        super::lessons::put_lesson,
        super::lessons::patch_lesson,
        super::lessons::list_replies,
        super::lessons::answer_reply,
        super::subscribers::list_subscribers,
        super::subscribers::create_subscriber,
        super::subscribers::get_subscriber,
        super::subscribers::delete_subscriber,
        super::subscribers::pause,
        super::subscribers::resume,
        super::subscribers::export,
        super::subscribers::create_enrollment,
        super::enrollments::list,
        super::enrollments::one,
        super::enrollments::stop,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Common),
)]
pub(crate) struct ApiDoc;

/// The document as served.
pub(crate) fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document of /api/v1", content_type = "application/json", body = Object)),
)]
async fn openapi_json() -> ApiResult {
    Ok(Json(document()).into_response())
}

/// What every route shares: the prefix, the bearer token, and the errors any route can
/// answer (401, 403, 503), a body's (400, 413, 415, 422) and a query's or a path's (422, 404).
struct Common;

const ERROR: &str = "Error";

impl Modify for Common {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A token from `drip admin token USER`"))
                    .build(),
            ),
        );
        components.responses.insert(
            ERROR.to_owned(),
            RefOr::T(
                ResponseBuilder::new()
                    .description("Refused: `error` says why, `field` what to fix")
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("ErrorBody")))
                            .build(),
                    )
                    .build(),
            ),
        );
        doc.security = Some(vec![SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
        let paths = std::mem::take(&mut doc.paths.paths);
        for (path, mut item) in paths {
            for op in operations(&mut item) {
                add_errors(op);
            }
            doc.paths.paths.insert(format!("{PREFIX}{path}"), item);
        }
    }
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
    ]
    .into_iter()
    .flatten()
}

fn add_errors(op: &mut Operation) {
    // No valid token; the role may not; the database is busy (nothing done, try again).
    let mut codes = vec!["401", "403", "503"];
    if op.request_body.is_some() {
        // Not JSON at all, too large, not sent as JSON, a field missing, unknown or refused.
        codes.extend(["400", "413", "415", "422"]);
    }
    let params = op.parameters.as_deref().unwrap_or_default();
    if params.iter().any(|p| p.parameter_in == ParameterIn::Query) {
        codes.push("422");
    }
    if params.iter().any(|p| p.parameter_in == ParameterIn::Path) {
        codes.push("404");
    }
    for code in codes {
        op.responses
            .responses
            .entry(code.to_owned())
            .or_insert_with(|| RefOr::Ref(Ref::from_response_name(ERROR)));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Every route of the table is in the document, and nothing else: a new route without
    /// its annotation fails here.
    #[test]
    fn the_document_lists_every_route_of_the_table() {
        let table: BTreeSet<(String, String)> = super::super::routes()
            .rules()
            .iter()
            .map(|r| (r.method.as_str().to_lowercase(), r.path.clone()))
            .collect();
        let doc = document();
        let mut listed = BTreeSet::new();
        for (path, item) in &doc.paths.paths {
            for (method, op) in [
                ("get", &item.get),
                ("put", &item.put),
                ("post", &item.post),
                ("delete", &item.delete),
                ("patch", &item.patch),
            ] {
                if op.is_some() {
                    listed.insert((method.to_owned(), path.clone()));
                }
            }
        }
        let missing: Vec<_> = table.difference(&listed).collect();
        let extra: Vec<_> = listed.difference(&table).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "routes without documentation: {missing:?}; documented but not routed: {extra:?}"
        );
        assert!(table.len() >= 20, "{table:?}");
    }

    #[test]
    fn the_document_is_openapi_3_1_with_the_bearer_token_and_the_error() {
        let doc = serde_json::to_value(document()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{doc}");
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        let error = &doc["components"]["schemas"]["ErrorBody"];
        assert_eq!(
            error["required"],
            serde_json::json!(["error", "field"]),
            "{error}"
        );
        // Every operation answers 401 as the error.
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                assert_eq!(
                    op["responses"]["401"]["$ref"], "#/components/responses/Error",
                    "{method} {path}"
                );
            }
        }
    }
}
