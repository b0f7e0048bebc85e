//! The error answers of every operation, generated from the contract's route table.
//!
//! For each route of `sesame_api::routes::ROUTES`, one response per status the route can
//! answer with; its schema is the error envelope with `code` limited to exactly the codes of
//! that status, so a client generated from the document (and a schema checker such as
//! schemathesis) knows every code it can meet. An annotation that already describes a status
//! (`/readyz` answers 503 with its own body) is kept.

use sesame_api::routes::{self, Route};
use sesame_api::ErrorCode;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, OpenApi, PathItem};

/// Adds the error responses of every operation the route table knows.
pub(super) fn errors(doc: &mut OpenApi) {
    for (path, item) in doc.paths.paths.iter_mut() {
        for (method, op) in with_methods(item) {
            if let Some(route) = routes::find(method, path) {
                add(op, route);
            }
        }
    }
}

/// The operations of a path item with their method names.
pub(super) fn with_methods(item: &mut PathItem) -> Vec<(&'static str, &mut Operation)> {
    [
        ("GET", item.get.as_mut()),
        ("PUT", item.put.as_mut()),
        ("POST", item.post.as_mut()),
        ("DELETE", item.delete.as_mut()),
        ("PATCH", item.patch.as_mut()),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.map(|op| (m, op)))
    .collect()
}

fn add(op: &mut Operation, route: &Route) {
    let errors = route.errors();
    for status in route.error_statuses() {
        let key = status.to_string();
        if op.responses.responses.contains_key(&key) {
            continue;
        }
        let codes: Vec<ErrorCode> = errors
            .iter()
            .copied()
            .filter(|c| c.status() == status)
            .collect();
        op.responses.responses.insert(key, response(&codes).into());
    }
}

fn response(codes: &[ErrorCode]) -> utoipa::openapi::Response {
    let names: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
    let description = names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let code = ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(names.clone()));
    let detail = ObjectBuilder::new()
        .property("code", code)
        .required("code")
        .property("message", ObjectBuilder::new().schema_type(Type::String))
        .required("message");
    let body = ObjectBuilder::new()
        .property("error", detail)
        .required("error");
    let mut builder = ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new().schema(Some(body)).build(),
    );
    // Throttling and temporary trouble say when to come back (the codes decide, not the status).
    if codes.iter().any(|c| c.is_retryable()) {
        let seconds = ObjectBuilder::new().schema_type(Type::Integer);
        builder = builder.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(Some(seconds))
                .description(Some("Seconds to wait before retrying."))
                .build(),
        );
    }
    builder.build()
}
