//! `GET /oauth2/authorize` and the consent API of the `/consent` page.
//!
//! The request is checked in RFC 6749's order: an unknown client or a redirect URI not
//! registered exactly is shown as an error page (never redirected); every later error is
//! redirected to the client with `error=` and `state`. The user is whoever the browser's
//! session cookie names (docs/web.md); without a live session — or with `prompt=login`, or a
//! sign-in older than `max_age` — the browser is sent to `/signin?next=<this request>`, which
//! comes back here after every factor. A client's first use asks for consent on `/consent`.

use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use sesame_api::oauth::{ConsentDecision, ConsentPrompt, ConsentRedirect, OAuthErrorCode};
use uuid::Uuid;

use super::{hash, new_token, param, params, Failure, OAuthError, CODE_TTL_SECS};
use crate::error::{ApiError, InputError};
use crate::http::{ApiJson, ApiPath, Auth, Ctx};
use crate::service::{RequestContext, Sesame};
use crate::store::{AccountStatus, OidcClientRecord, SessionRecord};
use crate::tokens::{hash_session_token, SESSION_TOKEN_PREFIX};

/// How long the consent page may take, seconds.
const CONSENT_TTL_SECS: u64 = 600;

/// A checked authorization request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct AuthRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub scopes: Vec<String>,
    /// The PKCE `S256` challenge.
    pub challenge: Option<String>,
}

/// What a code (or a consent ticket) stands for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct CodeGrant {
    pub req: AuthRequest,
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub auth_time: i64,
    pub amr: Vec<String>,
}

/// The short-lived store's key of a code.
pub(super) fn code_key(code_hash: &[u8]) -> String {
    format!("oidc:code:{}", hex::encode(code_hash))
}

fn ticket_key(ticket: &str) -> String {
    format!("oidc:consent:{}", hex::encode(hash(ticket)))
}

fn err(code: OAuthErrorCode, description: &str) -> OAuthError {
    OAuthError::new(code, description)
}

#[utoipa::path(
    get,
    path = "/oauth2/authorize",
    tag = "oidc",
    summary = "OpenID Connect authorization endpoint (authorization code flow with PKCE)",
    description = "Browser-facing. Redirects to the client's registered redirect URI with \
                   `code`, `state` and `iss`, or `error` (RFC 6749 §4.1.2.1); to `/signin` \
                   when nobody is signed in; to `/consent` on a client's first use. An unknown \
                   client or redirect URI is an HTML error page.",
    responses(
        (status = 302, description = "To the client, the sign-in page or the consent page."),
        (status = 400, description = "An HTML page: unknown client or redirect URI.", content_type = "text/html")
    )
)]
pub(super) async fn authorize(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let list = match params(query.as_bytes()) {
        Ok(list) => list,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, &e.description),
    };
    let client = match checked_client(&s, &list).await {
        Ok(Ok(c)) => c,
        Ok(Err(message)) => return error_page(StatusCode::BAD_REQUEST, message),
        Err(e) => return e.into_response(),
    };
    let redirect_uri = param(&list, "redirect_uri").unwrap_or_default().to_owned();
    let state = param(&list, "state").map(str::to_owned);
    match decide(&s, &ctx, &headers, &list, &client).await {
        Ok(resp) => resp,
        Err(Failure::OAuth(e)) => found(&error_redirect(&s, &redirect_uri, &e, state.as_deref())),
        Err(Failure::Server(e)) => {
            let e = OAuthError::new(OAuthErrorCode::ServerError, e.message);
            found(&error_redirect(&s, &redirect_uri, &e, state.as_deref()))
        }
    }
}

/// The client, if `client_id` names one and `redirect_uri` is one of its own exactly.
async fn checked_client(
    s: &Sesame,
    list: &[(String, String)],
) -> Result<Result<OidcClientRecord, &'static str>, ApiError> {
    let Some(id) = param(list, "client_id") else {
        return Ok(Err("The request names no client (client_id)."));
    };
    let Some(client) = s.oidc_store()?.client(id).await? else {
        return Ok(Err("This application is not registered with this server."));
    };
    match param(list, "redirect_uri") {
        Some(uri) if client.redirect_uris.iter().any(|r| r == uri) => Ok(Ok(client)),
        _ => Ok(Err(
            "The redirect URI is not one this application registered.",
        )),
    }
}

/// Checks the rest of the request.
fn check(list: &[(String, String)], client: &OidcClientRecord) -> Result<AuthRequest, OAuthError> {
    if param(list, "request").is_some() || param(list, "request_uri").is_some() {
        return Err(err(
            OAuthErrorCode::InvalidRequest,
            "Request objects are not supported.",
        ));
    }
    match param(list, "response_type") {
        Some("code") => {}
        None => {
            return Err(err(
                OAuthErrorCode::InvalidRequest,
                "response_type is missing.",
            ))
        }
        Some(_) => {
            return Err(err(
                OAuthErrorCode::UnsupportedResponseType,
                "Only response_type=code is supported.",
            ))
        }
    }
    if param(list, "response_mode").is_some_and(|m| m != "query") {
        return Err(err(
            OAuthErrorCode::InvalidRequest,
            "Only response_mode=query is supported.",
        ));
    }
    let scopes: Vec<String> = param(list, "scope")
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if !scopes.iter().any(|s| s == "openid") {
        return Err(err(
            OAuthErrorCode::InvalidScope,
            "The scope must include openid.",
        ));
    }
    if scopes.iter().any(|s| !client.scopes.contains(s)) {
        return Err(err(
            OAuthErrorCode::InvalidScope,
            "A scope this client may not ask for.",
        ));
    }
    let challenge = param(list, "code_challenge");
    match (challenge, param(list, "code_challenge_method")) {
        (None, None) if client.secret_hash.is_some() => {}
        (None, _) => {
            return Err(err(
                OAuthErrorCode::InvalidRequest,
                "PKCE (code_challenge, S256) is required.",
            ))
        }
        (Some(_), Some("S256")) => {}
        (Some(_), _) => {
            return Err(err(
                OAuthErrorCode::InvalidRequest,
                "Only the S256 PKCE method is accepted.",
            ))
        }
    }
    if challenge.is_some_and(|c| c.len() != 43 || sesame_proto::b64::decode(c).is_none()) {
        return Err(err(
            OAuthErrorCode::InvalidRequest,
            "The code_challenge is not S256's.",
        ));
    }
    Ok(AuthRequest {
        client_id: client.id.clone(),
        redirect_uri: param(list, "redirect_uri").unwrap_or_default().to_owned(),
        state: param(list, "state").map(str::to_owned),
        nonce: param(list, "nonce").map(str::to_owned),
        scopes,
        challenge: challenge.map(str::to_owned),
    })
}

/// `prompt` and `max_age`: whether to sign in again, and whether the user may be asked.
struct Prompt {
    none: bool,
    login: bool,
    consent: bool,
    max_age: Option<i64>,
}

fn prompt(list: &[(String, String)]) -> Result<Prompt, OAuthError> {
    let values: Vec<&str> = param(list, "prompt")
        .unwrap_or_default()
        .split(' ')
        .filter(|v| !v.is_empty())
        .collect();
    if values
        .iter()
        .any(|v| !["none", "login", "consent", "select_account"].contains(v))
    {
        return Err(err(OAuthErrorCode::InvalidRequest, "Unknown prompt value."));
    }
    let none = values.contains(&"none");
    if none && values.len() > 1 {
        return Err(err(
            OAuthErrorCode::InvalidRequest,
            "prompt=none stands alone.",
        ));
    }
    let max_age = match param(list, "max_age") {
        None => None,
        Some(v) => Some(
            v.parse::<u32>()
                .map_err(|_| {
                    err(
                        OAuthErrorCode::InvalidRequest,
                        "max_age is not a number of seconds.",
                    )
                })?
                .into(),
        ),
    };
    Ok(Prompt {
        none,
        login: values.contains(&"login"),
        consent: values.contains(&"consent"),
        max_age,
    })
}

/// The rest of the flow, once the redirect URI is known to be the client's.
async fn decide(
    s: &Sesame,
    ctx: &RequestContext,
    headers: &HeaderMap,
    list: &[(String, String)],
    client: &OidcClientRecord,
) -> Result<Response, Failure> {
    let req = check(list, client)?;
    let p = prompt(list)?;
    let now = i64::try_from(s.now()).unwrap_or(i64::MAX);
    let session = browser_session(s, headers).await?;
    let stale = |sess: &SessionRecord| p.max_age.is_some_and(|m| now - sess.created_at > m);
    let session = match session {
        Some(sess) if !p.login && !stale(&sess) => sess,
        _ if p.none => {
            return Err(err(OAuthErrorCode::LoginRequired, "Nobody is signed in.").into())
        }
        other => return Ok(sign_in_redirect(list, p.login || other.is_some())),
    };
    let grant = CodeGrant {
        user_id: session.user_id,
        session_id: session.id,
        auth_time: session.created_at,
        amr: session.methods.clone(),
        req,
    };
    let consented = s.oidc_store()?.consent(session.user_id, &client.id).await?;
    let covered = consented.is_some_and(|c| grant.req.scopes.iter().all(|s| c.contains(s)));
    if client.skip_consent || (covered && !p.consent) {
        return Ok(found(&issue_code(s, &grant, ctx).await?));
    }
    if p.none {
        return Err(err(
            OAuthErrorCode::ConsentRequired,
            "The user has not consented yet.",
        )
        .into());
    }
    let (ticket, _) = new_token(s, "oct_");
    let value = serde_json::to_vec(&grant).map_err(ApiError::internal)?;
    s.ephemeral()
        .put(
            &ticket_key(&ticket),
            &value,
            s.now_ms(),
            Duration::from_secs(CONSENT_TTL_SECS),
        )
        .await?;
    Ok(found(&format!("/consent?ticket={ticket}")))
}

/// The live session of the browser's cookie, if its account is active.
async fn browser_session(
    s: &Sesame,
    headers: &HeaderMap,
) -> Result<Option<SessionRecord>, ApiError> {
    let Some(token) = crate::web::cookie_token(s, headers) else {
        return Ok(None);
    };
    if !token.starts_with(SESSION_TOKEN_PREFIX) || token.len() > 128 {
        return Ok(None);
    }
    let now = i64::try_from(s.now()).unwrap_or(i64::MAX);
    let found = s
        .store()
        .session_and_owner_by_token_hash(&hash_session_token(&token))
        .await?;
    Ok(match found {
        Some((sess, Some(AccountStatus::Active)))
            if sess.idle_expires_at > now && sess.absolute_expires_at > now =>
        {
            Some(sess)
        }
        _ => None,
    })
}

/// To the sign-in page, which comes back to this request (without `prompt=login`, so the
/// new sign-in is not asked for again). `login=1` asks for a sign-in even when one is live.
fn sign_in_redirect(list: &[(String, String)], again: bool) -> Response {
    let mut back = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in list {
        if k == "prompt" {
            let rest: Vec<&str> = v.split(' ').filter(|p| *p != "login").collect();
            if !rest.is_empty() {
                back.append_pair(k, &rest.join(" "));
            }
        } else {
            back.append_pair(k, v);
        }
    }
    let next = format!("/oauth2/authorize?{}", back.finish());
    let mut to = url::form_urlencoded::Serializer::new(String::new());
    to.append_pair("next", &next);
    if again {
        to.append_pair("login", "1");
    }
    if let Some(hint) = param(list, "login_hint") {
        to.append_pair("login_hint", hint);
    }
    found(&format!("/signin?{}", to.finish()))
}

/// Stores a code for `grant` and answers the client's redirect URI with it.
async fn issue_code(
    s: &Sesame,
    grant: &CodeGrant,
    ctx: &RequestContext,
) -> Result<String, Failure> {
    let (code, h) = new_token(s, "oac_");
    let value = serde_json::to_vec(grant).map_err(ApiError::internal)?;
    s.ephemeral()
        .put(
            &code_key(&h),
            &value,
            s.now_ms(),
            Duration::from_secs(CODE_TTL_SECS),
        )
        .await?;
    let detail = format!("client={}", grant.req.client_id);
    s.audit("oidc.authorized", Some(grant.user_id), Some(detail), ctx)
        .await;
    let issuer = s.issuer();
    let mut pairs = vec![("code", code.as_str()), ("iss", issuer.as_str())];
    if let Some(state) = &grant.req.state {
        pairs.push(("state", state));
    }
    Ok(with_query(&grant.req.redirect_uri, &pairs))
}

/// `uri` with `pairs` added to its query.
fn with_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    match url::Url::parse(uri) {
        Ok(mut u) => {
            u.query_pairs_mut().extend_pairs(pairs);
            u.to_string()
        }
        Err(_) => "/".into(),
    }
}

/// The client's redirect URI with an RFC 6749 §4.1.2.1 error.
fn error_redirect(s: &Sesame, uri: &str, e: &OAuthError, state: Option<&str>) -> String {
    let issuer = s.issuer();
    let mut pairs = vec![
        ("error", e.code.as_str()),
        ("error_description", e.description.as_str()),
        ("iss", issuer.as_str()),
    ];
    if let Some(state) = state {
        pairs.push(("state", state));
    }
    with_query(uri, &pairs)
}

/// `302 Found` to `location`.
fn found(location: &str) -> Response {
    let value = HeaderValue::from_str(location).unwrap_or(HeaderValue::from_static("/"));
    (StatusCode::FOUND, [(header::LOCATION, value)]).into_response()
}

/// An HTML page for an error that must not be redirected (no script, the app's stylesheet).
pub(super) fn error_page(status: StatusCode, message: &str) -> Response {
    page(status, "This sign-in request cannot continue", message)
}

/// A minimal server-rendered page.
pub(super) fn page(status: StatusCode, title: &str, message: &str) -> Response {
    let escape = |t: &str| {
        t.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&#39;")
    };
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t} · Sesame</title><link rel=\"stylesheet\" href=\"/assets/{set}/app.css\">\
         </head><body><main id=\"main\"><h1>{t}</h1><p data-testid=\"oidc-message\">{m}</p>\
         <p><a href=\"/\">Sesame</a></p></main></body></html>\n",
        t = escape(title),
        m = escape(message),
        set = crate::web::asset_set(),
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response()
}

/// The consent ticket's grant, if it is live and the caller's.
async fn ticket(s: &Sesame, who: Uuid, ticket: &str, take: bool) -> Result<CodeGrant, ApiError> {
    let gone = || ApiError::new(InputError::NotFound, "This consent request has expired.");
    let key = ticket_key(ticket);
    let raw = if take {
        s.ephemeral().take(&key, s.now_ms()).await?
    } else {
        s.ephemeral().get(&key, s.now_ms()).await?
    };
    let grant: CodeGrant = serde_json::from_slice(&raw.ok_or_else(gone)?).map_err(|_| gone())?;
    if grant.user_id != who {
        return Err(gone());
    }
    Ok(grant)
}

#[utoipa::path(
    get,
    path = "/api/oauth2/consent/{ticket}",
    tag = "oidc",
    summary = "What the consent page asks: the client and the scopes",
    params(("ticket" = String, Path, description = "The ticket of the `/consent?ticket=` page.")),
    security(("bearer" = [])),
    responses((status = 200, description = "The request to consent to.", body = ConsentPrompt))
)]
pub(super) async fn consent_prompt(
    State(s): State<Sesame>,
    Auth(who): Auth,
    ApiPath(t): ApiPath,
) -> Result<Json<ConsentPrompt>, ApiError> {
    let grant = ticket(&s, who.user_id, &t, false).await?;
    let client = s.oidc_store()?.client(&grant.req.client_id).await?;
    let client = client.ok_or_else(|| ApiError::new(InputError::NotFound, "No such client."))?;
    Ok(Json(ConsentPrompt {
        client_id: client.id,
        client_name: client.name,
        scopes: grant.req.scopes,
        user_id: who.user_id,
    }))
}

#[utoipa::path(
    post,
    path = "/api/oauth2/consent/{ticket}",
    tag = "oidc",
    summary = "Allow or refuse a client; answers where the browser goes next",
    params(("ticket" = String, Path, description = "The ticket of the `/consent?ticket=` page.")),
    request_body = ConsentDecision,
    security(("bearer" = [])),
    responses((status = 200, description = "The client's redirect URI with a code or `access_denied`.", body = ConsentRedirect))
)]
pub(super) async fn consent_decide(
    State(s): State<Sesame>,
    Auth(who): Auth,
    Ctx(ctx): Ctx,
    ApiPath(t): ApiPath,
    ApiJson(decision): ApiJson<ConsentDecision>,
) -> Result<Json<ConsentRedirect>, ApiError> {
    let grant = ticket(&s, who.user_id, &t, true).await?;
    let detail = Some(format!("client={}", grant.req.client_id));
    if !decision.approve {
        s.audit("oidc.consent_denied", Some(who.user_id), detail, &ctx)
            .await;
        let e = err(OAuthErrorCode::AccessDenied, "The user refused.");
        let to = error_redirect(&s, &grant.req.redirect_uri, &e, grant.req.state.as_deref());
        return Ok(Json(ConsentRedirect { redirect_to: to }));
    }
    let now = i64::try_from(s.now()).unwrap_or(i64::MAX);
    s.oidc_store()?
        .put_consent(who.user_id, &grant.req.client_id, &grant.req.scopes, now)
        .await?;
    s.audit("oidc.consent_granted", Some(who.user_id), detail, &ctx)
        .await;
    let to = match issue_code(&s, &grant, &ctx).await {
        Ok(to) => to,
        Err(Failure::Server(e)) => return Err(e),
        Err(Failure::OAuth(e)) => {
            error_redirect(&s, &grant.req.redirect_uri, &e, grant.req.state.as_deref())
        }
    };
    Ok(Json(ConsentRedirect { redirect_to: to }))
}
