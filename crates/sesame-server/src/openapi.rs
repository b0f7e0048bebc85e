//! The OpenAPI 3.1 document of every HTTP route, served at `GET /openapi.json`.
//!
//! Generated from the code: each handler carries a `#[utoipa::path]` annotation next to it
//! (`http/*.rs`, `relay/routes.rs`, `envelope.rs`, `metrics.rs`, this file) naming its
//! success answer; every body is a type of the contract crate `sesame-api` (or a protocol
//! message of `sesame-proto`), whose schemas carry the limits the server enforces. The error
//! answers of each operation are generated here from the contract's route table
//! (`sesame_api::routes`): one response per status, whose schema lists exactly the codes the
//! route can answer with that status. What no annotation can say is added here too: the two
//! WebSocket routes (`GET /auth/login`, `GET /ws`), the routes mounted twice under another
//! name (`/register`, `/api/getkey`), the bearer security scheme and the error envelope as
//! every operation's `default` answer.
//!
//! `tests/observability.rs` checks that every `.route(…)` in the source is in the document,
//! with every method, so a route cannot be added without documenting it.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use sesame_api::{ErrorBody, ErrorDetail};
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, PathItem, Ref, Required};
use utoipa::{Modify, OpenApi, PartialSchema};

mod errors;
use errors::errors;

/// The name of the bearer security scheme (`Authorization: Bearer <access token>`).
pub const BEARER: &str = "bearer";

/// Routes mounted a second time under another path, as `(alias, documented path)`.
pub const ALIASES: [(&str, &str); 2] = [
    ("/register", "/api/register"),
    ("/api/getkey", "/api/server-key"),
];

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sesame",
        description = "Sesame's HTTP API: OPAQUE and password login, sessions, second factors, \
                       account recovery, end-to-end encrypted messaging. Every body is JSON (at \
                       most 64 KiB); every error is `{\"error\": {\"code\", \"message\"}}` with \
                       its status, and `Retry-After` on 429 and 503. Any `/api/*` request may \
                       instead be sealed to the server key (`{\"encryptedData\": …}`, see \
                       `GET /api/server-key`). docs/api.md is the reference.",
        license(name = "MIT OR Apache-2.0"),
    ),
    paths(crate::envelope::server_key, crate::metrics::serve_metrics, serve),
    components(schemas(ErrorBody, ErrorDetail, sesame_api::messaging::RelayAck)),
    modifiers(&Extras),
    tags(
        (name = "auth", description = "Registration and login (OPAQUE and password)."),
        (name = "sessions", description = "Sessions and their tokens."),
        (name = "account", description = "The caller's account, second factors, password."),
        (name = "recovery", description = "Account recovery."),
        (name = "messaging", description = "End-to-end encrypted messaging: relay, key directory, key backup."),
        (name = "devices", description = "Device keys as a login factor."),
        (name = "passkeys", description = "Passkeys (WebAuthn): registration and management; sign-in is under auth."),
        (name = "admin", description = "The admin API: users and the audit log (admin accounts only)."),
        (name = "discovery", description = "Server keys and identity."),
        (name = "operations", description = "Health, readiness, metrics, this document."),
        (name = "web", description = "The browser app's cookie session (docs/web.md)."),
        (name = "oidc", description = "The OpenID Connect provider (docs/oidc.md). Its errors are OAuth 2.0's own `{\"error\", \"error_description\"}`."),
    )
)]
struct ApiDoc;

/// Sections of the document declared next to handlers in private modules (an inherent
/// `impl Sections` there returns each one).
pub(crate) struct Sections;

/// The whole document.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(Sections::discovery());
    doc.merge(Sections::auth());
    doc.merge(Sections::sessions());
    doc.merge(Sections::account());
    doc.merge(Sections::passkeys());
    doc.merge(Sections::admin());
    doc.merge(Sections::relay());
    doc.merge(crate::web::openapi());
    doc.merge(crate::oidc::openapi());
    errors(&mut doc);
    aliases(&mut doc);
    websockets(&mut doc);
    default_errors(&mut doc);
    doc
}

/// `GET /openapi.json`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    summary = "This OpenAPI document",
    responses((status = 200, description = "The OpenAPI 3.1 document of every route.", body = serde_json::Value))
)]
pub(crate) async fn serve() -> Response {
    static JSON: OnceLock<String> = OnceLock::new();
    let json = JSON.get_or_init(|| {
        document().to_json().unwrap_or_else(|e| {
            format!("{{\"error\":{{\"code\":\"internal\",\"message\":\"{e}\"}}}}")
        })
    });
    ([(header::CONTENT_TYPE, "application/json")], json.clone()).into_response()
}

/// The parts of the document no annotation produces.
struct Extras;

impl Modify for Extras {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token from a login or `POST /api/session/refresh`.",
                    ))
                    .build(),
            ),
        );
    }
}

fn aliases(doc: &mut utoipa::openapi::OpenApi) {
    for (alias, target) in ALIASES {
        let Some(mut item) = doc.paths.paths.get(target).cloned() else {
            continue;
        };
        for op in operations(&mut item) {
            op.operation_id = op.operation_id.take().map(|id| format!("{id}_alias"));
            op.description = Some(format!(
                "The same route as `{target}` under another name.\n\n{}",
                op.description.take().unwrap_or_default()
            ));
        }
        doc.paths.paths.insert(alias.to_owned(), item);
    }
}

fn websockets(doc: &mut utoipa::openapi::OpenApi) {
    let upgrade = |description: &str| ResponseBuilder::new().description(description).build();
    let login = OperationBuilder::new()
        .operation_id(Some("login_socket"))
        .tag("auth")
        .summary(Some("OPAQUE login over WebSocket"))
        .description(Some(
            "Upgrades to a WebSocket (send `Connection: Upgrade`, `Upgrade: websocket`). JSON text \
             frames tagged by `type`: `login_start` → `login_challenge`, `login_finish` → \
             `login_confirmation`, `login_ack` → `login_result`, then `second_factor` → `session` \
             when a second factor is required; any error is `{\"type\":\"error\",\"error\":{\"code\",\"message\"}}` \
             and closes. Frames are at most 64 KiB; each step must arrive within 30 s \
             (docs/api.md).",
        ))
        .response("101", upgrade("Switching Protocols: the login runs on the WebSocket."))
        .response("400", upgrade("Not a WebSocket upgrade request (plain-text answer)."))
        .response("426", upgrade("Upgrade required (plain-text answer)."))
        .build();
    let relay = OperationBuilder::new()
        .operation_id(Some("relay_socket"))
        .tag("messaging")
        .summary(Some("The message relay over WebSocket"))
        .description(Some(
            "Authenticates first (`Authorization: Bearer <access token or session token>`, or \
             `?token=` for browsers), then upgrades to a WebSocket (send `Connection: Upgrade`, \
             `Upgrade: websocket`). JSON text frames tagged by `type`: the client sends `send` \
             (answered `accepted` once stored, or `error`) and `ack` (schema `RelayAck`: one \
             `id`, or `ids` with up to 512 message ids deleted in one store operation; more \
             are refused with `too_many_acks`); the server sends \
             `message` frames, the backlog first, then live ones. Pings every 30 s; closed after \
             90 s of silence (docs/messaging.md).",
        ))
        .parameter(
            ParameterBuilder::new()
                .name("token")
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some(
                    "An access or session token, for clients that cannot set headers.",
                ))
                .schema(Some(String::schema())),
        )
        .securities(Some([
            SecurityRequirement::new(BEARER, Vec::<String>::new()),
            SecurityRequirement::default(),
        ]))
        .response(
            "101",
            upgrade("Switching Protocols: the relay runs on the WebSocket."),
        )
        .response("400", upgrade("Not a WebSocket upgrade request."))
        .response("401", error_response("No valid token."))
        .response("426", upgrade("Upgrade required (plain-text answer)."))
        .build();
    doc.paths.paths.insert(
        "/auth/login".to_owned(),
        PathItem::new(HttpMethod::Get, login),
    );
    doc.paths
        .paths
        .insert("/ws".to_owned(), PathItem::new(HttpMethod::Get, relay));
}

fn error_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
}

/// The error envelope as every operation's `default` answer.
fn default_errors(doc: &mut utoipa::openapi::OpenApi) {
    for item in doc.paths.paths.values_mut() {
        for op in operations(item) {
            op.responses
                .responses
                .entry("default".to_owned())
                .or_insert_with(|| {
                    error_response("An error: `{\"error\": {\"code\", \"message\"}}`.").into()
                });
        }
    }
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.options.as_mut(),
        item.head.as_mut(),
        item.patch.as_mut(),
        item.trace.as_mut(),
    ]
    .into_iter()
    .flatten()
}

#[cfg(test)]
mod tests;
