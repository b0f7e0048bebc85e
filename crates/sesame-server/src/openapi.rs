//! The OpenAPI 3.1 document of every HTTP route, served at `GET /openapi.json`.
//!
//! Generated from the code: each handler carries a `#[utoipa::path]` annotation next to it
//! (`http.rs`, `http/account.rs`, `relay/routes.rs`, `envelope.rs`, `metrics.rs`, this file),
//! request and response types derive [`utoipa::ToSchema`] (the wire messages of
//! `sesame-proto` through its `openapi` feature). The few answers built with `json!` in a
//! handler are described by the schema-only types below. What no annotation can say is added
//! here: the two WebSocket routes (`GET /auth/login`, `GET /ws`), the routes mounted twice
//! under another name (`/register`, `/api/getkey`), the bearer security scheme and the error
//! envelope as every operation's `default` answer.
//!
//! `tests/observability.rs` checks that every `.route(…)` in the source is in the document,
//! with every method, so a route cannot be added without documenting it.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, PathItem, Ref, Required};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};
use uuid::Uuid;

use crate::service::{Profile, SessionView};

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
    paths(
        crate::http::healthz,
        crate::http::readyz,
        crate::http::jwks,
        crate::http::server_info,
        crate::http::register_password,
        crate::http::register_start,
        crate::http::register_finish,
        crate::http::verify_email,
        crate::http::verify_email_resend,
        crate::http::login_start,
        crate::http::login_finish,
        crate::http::login_password,
        crate::http::login_second_factor,
        crate::http::refresh,
        crate::http::logout,
        crate::http::logout_all,
        crate::http::sessions,
        crate::http::revoke_session,
        crate::envelope::server_key,
        crate::metrics::serve_metrics,
        serve,
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&Extras),
    tags(
        (name = "auth", description = "Registration and login (OPAQUE and password)."),
        (name = "sessions", description = "Sessions and their tokens."),
        (name = "account", description = "The caller's account, second factors, password."),
        (name = "recovery", description = "Account recovery."),
        (name = "messaging", description = "End-to-end encrypted messaging: relay, key directory, key backup."),
        (name = "devices", description = "Device keys as a login factor."),
        (name = "discovery", description = "Server keys and identity."),
        (name = "operations", description = "Health, readiness, metrics, this document."),
    )
)]
struct ApiDoc;

/// Sections of the document declared next to handlers in private modules (an inherent
/// `impl Sections` there returns each one).
pub(crate) struct Sections;

/// The whole document.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(Sections::account());
    doc.merge(Sections::relay());
    aliases(&mut doc);
    websockets(&mut doc);
    errors_and_security(&mut doc);
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
             (answered `accepted` once stored, or `error`) and `ack`; the server sends \
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
fn errors_and_security(doc: &mut utoipa::openapi::OpenApi) {
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

// ---------------------------------------------------------------------------------------
// Schemas of answers that handlers build with `json!` (documentation only).

/// The error envelope of every failed request.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The inside of [`ErrorBody`].
#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable, machine-readable code (`authentication_failed`, `too_many_attempts`, …).
    pub code: String,
    /// A human-readable explanation.
    pub message: String,
}

/// `GET /healthz`.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
}

/// `GET /readyz`.
#[derive(Serialize, ToSchema)]
pub struct Ready {
    /// `ready` or `unavailable`.
    pub status: String,
    /// `ok` or `unavailable: <why>`.
    pub database: String,
    /// `ok`, `unavailable: <why>` or `not configured`.
    pub redis: String,
    /// When unavailable: `{"code": "unavailable", "message"}`.
    pub error: Option<ErrorDetail>,
}

/// `GET /.well-known/jwks.json`: the key that signs access tokens.
#[derive(Serialize, ToSchema)]
pub struct Jwks {
    /// One Ed25519 key (`kty` `OKP`, `crv` `Ed25519`, `alg` `EdDSA`, `use` `sig`, `kid`, `x`).
    pub keys: Vec<serde_json::Value>,
}

/// `GET /.well-known/sesame`.
#[derive(Serialize, ToSchema)]
pub struct ServerInfo {
    /// The OPAQUE server public key (base64url).
    pub opaque_public_key: String,
    /// `SHA256:…` of that key, for checking out of band.
    pub fingerprint: String,
    /// The access tokens' `iss`.
    pub issuer: String,
    /// The server's version.
    pub version: String,
}

/// A plain acknowledgement.
#[derive(Serialize, ToSchema)]
pub struct Message {
    /// Human message.
    pub message: String,
}

/// `POST /api/verify-email`.
#[derive(Serialize, ToSchema)]
pub struct EmailVerified {
    /// Human message.
    pub message: String,
    /// The account's status now (`active`).
    pub status: String,
}

/// A session in seed 004's login shape: the session fields plus `message`, `token` (the
/// access token), `uuid` (the user id) and `expires_at` (RFC 3339, the access token's end).
#[derive(Serialize, ToSchema)]
pub struct LoginSession {
    /// `Login successful.`
    pub message: String,
    /// The user's id.
    pub user_id: Uuid,
    /// The user's id again (seed name).
    pub uuid: Uuid,
    /// The canonical username.
    pub username: String,
    /// The new session's id.
    pub session_id: Uuid,
    /// The session token (refreshes access tokens; keep it secret).
    pub session_token: String,
    /// A fresh access token (JWT).
    pub access_token: String,
    /// The access token again (seed name).
    pub token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// When the access token expires (RFC 3339).
    pub expires_at: String,
    /// When the session ends at the latest (unix seconds).
    pub session_expires_at: i64,
}

/// A password login that needs a second factor (`POST /api/login/second-factor` next).
#[derive(Serialize, ToSchema)]
pub struct SecondFactorPending {
    /// `Second factor required.`
    pub message: String,
    /// Always `true`.
    pub second_factor_required: bool,
    /// The ticket to present with the code.
    pub mfa_token: String,
    /// Accepted kinds of code: `totp`, `backup_code`.
    pub methods: Vec<String>,
    /// Seconds the ticket stays valid.
    pub expires_in: u64,
}

/// `POST /api/login`: a session, or a second-factor ticket.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum PasswordLogin {
    /// Logged in.
    Session(LoginSession),
    /// A second factor is needed.
    SecondFactor(SecondFactorPending),
}

/// `POST /api/logout-all`.
#[derive(Serialize, ToSchema)]
pub struct Revoked {
    /// How many sessions were revoked.
    pub revoked: u64,
}

/// `GET /api/sessions`.
#[derive(Serialize, ToSchema)]
pub struct Sessions {
    /// The caller's live sessions.
    pub sessions: Vec<SessionView>,
}

/// `GET /api/server-key`: the key to seal requests to.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvelopeKey {
    /// X25519 public key, standard base64.
    pub public_key: String,
    /// The sealing algorithm (`crypto_box_seal`).
    pub algorithm: String,
}

/// `GET /api/me`.
#[derive(Serialize, ToSchema)]
pub struct Me {
    /// The user's id.
    pub user_id: Uuid,
    /// The user's id again (seed name).
    pub uuid: Uuid,
    /// The canonical username.
    pub username: String,
    /// `active` (or `pending`, `banned`).
    pub status: String,
    /// Created (unix seconds).
    pub created_at: i64,
    /// Last login (unix seconds).
    pub last_login_at: Option<i64>,
    /// Public profile.
    pub profile: Profile,
    /// Whether an authenticator app is enabled.
    pub totp_enabled: bool,
    /// Unused backup codes.
    pub backup_codes_left: u64,
    /// How many security questions are set.
    pub security_questions: u64,
    /// The verified email address, if any.
    pub email: Option<String>,
}

/// `PUT /api/me`.
#[derive(Serialize, ToSchema)]
pub struct ProfileUpdated {
    /// `Profile updated.`
    pub message: String,
    /// The profile now.
    pub profile: Profile,
}

/// Fresh single-use backup codes, shown once.
#[derive(Serialize, ToSchema)]
pub struct BackupCodes {
    /// Human message.
    pub message: String,
    /// The codes.
    #[serde(rename = "backupCodes")]
    pub backup_codes: Vec<String>,
}

/// `POST /api/reauth`.
#[derive(Serialize, ToSchema)]
pub struct Reauthenticated {
    /// Always `true`.
    pub reauthenticated: bool,
    /// Seconds the fresh authentication lasts.
    pub expires_in: u64,
}

/// `POST /api/password`, `POST /api/password/finish`.
#[derive(Serialize, ToSchema)]
pub struct PasswordChanged {
    /// `Password changed.`
    pub message: String,
    /// How many other sessions were revoked.
    pub revoked_sessions: u64,
}

/// `GET /api/security-questions/catalog`.
#[derive(Serialize, ToSchema)]
pub struct QuestionCatalog {
    /// The questions one may choose from.
    pub questions: Vec<String>,
}

/// `GET /api/keys/backup`, `PUT /api/keys/backup`.
#[derive(Serialize, ToSchema)]
pub struct KeyBackup {
    /// The encrypted key backup (opaque to the server).
    pub blob: String,
}

/// `POST /api/devices`.
#[derive(Serialize, ToSchema)]
pub struct DeviceCreated {
    /// The new device's id.
    pub id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_has_the_added_routes_and_errors_everywhere() {
        let doc = document();
        for path in ["/auth/login", "/ws", "/register", "/api/getkey", "/metrics"] {
            assert!(doc.paths.paths.contains_key(path), "{path}");
        }
        let mut ids = std::collections::BTreeSet::new();
        for (path, item) in doc.paths.paths.iter() {
            let mut item = item.clone();
            for op in operations(&mut item) {
                assert!(
                    op.responses.responses.contains_key("default"),
                    "{path}: no error answer"
                );
                let id = op.operation_id.clone().expect("an operation id");
                assert!(
                    ids.insert(id.clone()),
                    "{path}: duplicate operation id {id}"
                );
            }
        }
        let json = doc.to_json().unwrap();
        assert!(json.starts_with("{\"openapi\":\"3.1"), "{}", &json[..40]);
    }
}
