//! `POST /oauth2/token`: the authorization code (with PKCE) and refresh token grants, and the
//! ID token.
//!
//! A code is consumed atomically (`Ephemeral::take`); a marker of its use lives on for
//! [`USED_MARKER_SECS`], so a replayed code revokes the grant it issued. A refresh token is
//! spent when it is used and a new one returned; presenting a spent one revokes its whole
//! family (the grant and every token issued from it).

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use sesame_api::oauth::{OAuthErrorCode, TokenResponse, UserInfo};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

use super::authorize::{code_key, CodeGrant};
use super::{
    hash, new_token, param, params, Failure, IdTokenAlg, OAuthError, ID_TOKEN_TTL_SECS,
    REFRESH_TTL_SECS,
};
use crate::error::ApiError;
use crate::http::Ctx;
use crate::service::{RequestContext, Sesame};
use crate::store::{GrantRecord, OidcClientRecord, TokenKind, TokenRecord};

/// How long an access token lives, seconds.
pub const ACCESS_TTL_SECS: i64 = 900;
/// How long the marker of a used code lives, seconds.
pub const USED_MARKER_SECS: u64 = 3600;

/// The claims of an ID token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct IdClaims {
    pub iss: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub amr: Vec<String>,
    pub acr: String,
    pub azp: String,
    /// The Sesame session signed in with (end-session ends it).
    pub sid: String,
    #[serde(flatten)]
    pub info: UserInfo,
}

fn invalid_grant(description: &str) -> Failure {
    OAuthError::new(OAuthErrorCode::InvalidGrant, description).into()
}

fn used_key(code_hash: &[u8]) -> String {
    format!("oidc:used:{}", hex::encode(code_hash))
}

#[utoipa::path(
    post,
    path = "/oauth2/token",
    tag = "oidc",
    summary = "OAuth 2.0 token endpoint: authorization_code (PKCE) and refresh_token grants",
    description = "A form body (`application/x-www-form-urlencoded`). Client authentication: \
                   `client_secret_basic`, `client_secret_post`, or `none` with PKCE for public \
                   clients. Errors are RFC 6749 §5.2 bodies.",
    responses(
        (status = 200, description = "Tokens.", body = TokenResponse),
        (status = 400, description = "An OAuth error.", body = sesame_api::oauth::OAuthErrorBody),
        (status = 401, description = "`invalid_client`.", body = sesame_api::oauth::OAuthErrorBody)
    )
)]
pub(super) async fn token(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match grant(&s, &ctx, &headers, &body).await {
        Ok(t) => (
            [
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                (header::PRAGMA, HeaderValue::from_static("no-cache")),
            ],
            Json(t),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// Refuses a body that is not a form.
pub(super) fn form_body(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Vec<(String, String)>, OAuthError> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !form {
        return Err(OAuthError::new(
            OAuthErrorCode::InvalidRequest,
            "The body must be application/x-www-form-urlencoded.",
        ));
    }
    params(body)
}

async fn grant(
    s: &Sesame,
    ctx: &RequestContext,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<TokenResponse, Failure> {
    let form = form_body(headers, body)?;
    let client = s.oidc_authenticate_client(headers, &form).await?;
    match param(&form, "grant_type") {
        Some("authorization_code") => code_grant(s, ctx, &client, &form).await,
        Some("refresh_token") => refresh_grant(s, ctx, &client, &form).await,
        None => {
            Err(OAuthError::new(OAuthErrorCode::InvalidRequest, "grant_type is missing.").into())
        }
        Some(_) => Err(OAuthError::new(
            OAuthErrorCode::UnsupportedGrantType,
            "Only authorization_code and refresh_token.",
        )
        .into()),
    }
}

/// RFC 7636 §4.6: `BASE64URL(SHA256(verifier)) == challenge`, in constant time.
pub(super) fn pkce_ok(challenge: Option<&str>, verifier: Option<&str>) -> bool {
    match (challenge, verifier) {
        (None, None) => true,
        (Some(c), Some(v)) => {
            let well_formed = (43..=128).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            let computed = sesame_proto::b64::encode(Sha256::digest(v.as_bytes()));
            well_formed && bool::from(computed.as_bytes().ct_eq(c.as_bytes()))
        }
        _ => false,
    }
}

async fn code_grant(
    s: &Sesame,
    ctx: &RequestContext,
    client: &OidcClientRecord,
    form: &[(String, String)],
) -> Result<TokenResponse, Failure> {
    let code = param(form, "code")
        .ok_or_else(|| OAuthError::new(OAuthErrorCode::InvalidRequest, "code is missing."))?;
    let h = hash(code);
    let now = i64::try_from(s.now()).unwrap_or(i64::MAX);
    let Some(raw) = s.ephemeral().take(&code_key(&h), s.now_ms()).await? else {
        if let Some(id) = s.ephemeral().get(&used_key(&h), s.now_ms()).await? {
            let id = String::from_utf8_lossy(&id).into_owned();
            s.oidc_store()?.revoke_grant(&id, now).await?;
            let detail = format!("client={} grant={id}", client.id);
            s.audit("oidc.code_replayed", None, Some(detail), ctx).await;
        }
        return Err(invalid_grant(
            "The code is invalid, expired or already used.",
        ));
    };
    let code: CodeGrant = serde_json::from_slice(&raw).map_err(ApiError::internal)?;
    if code.req.client_id != client.id {
        return Err(invalid_grant("The code was issued to another client."));
    }
    if param(form, "redirect_uri") != Some(code.req.redirect_uri.as_str()) {
        return Err(invalid_grant(
            "The redirect_uri differs from the authorization request's.",
        ));
    }
    if !pkce_ok(code.req.challenge.as_deref(), param(form, "code_verifier")) {
        return Err(invalid_grant("The PKCE code_verifier does not match."));
    }
    let grant = GrantRecord {
        id: s.rng().uuid().to_string(),
        client_id: client.id.clone(),
        user_id: code.user_id,
        session_id: code.session_id.to_string(),
        scopes: code.req.scopes.clone(),
        auth_time: code.auth_time,
        amr: code.amr.clone(),
        created_at: now,
        revoked_at: None,
    };
    let ttl = Duration::from_secs(USED_MARKER_SECS);
    s.ephemeral()
        .put(&used_key(&h), grant.id.as_bytes(), s.now_ms(), ttl)
        .await?;
    let out = issue(s, client, &grant, code.req.nonce.as_deref(), None)
        .await?
        .ok_or_else(|| ApiError::internal("a new grant has no spent refresh token"))?;
    let detail = format!("client={} grant={}", client.id, grant.id);
    s.audit("oidc.token_issued", Some(grant.user_id), Some(detail), ctx)
        .await;
    Ok(out)
}

async fn refresh_grant(
    s: &Sesame,
    ctx: &RequestContext,
    client: &OidcClientRecord,
    form: &[(String, String)],
) -> Result<TokenResponse, Failure> {
    let token = param(form, "refresh_token").ok_or_else(|| {
        OAuthError::new(OAuthErrorCode::InvalidRequest, "refresh_token is missing.")
    })?;
    let h = hash(token);
    let now = i64::try_from(s.now()).unwrap_or(i64::MAX);
    let store = s.oidc_store()?;
    let Some((tok, grant)) = store.token(&h).await? else {
        return Err(invalid_grant("The refresh token is invalid or revoked."));
    };
    let live = grant.revoked_at.is_none() && tok.expires_at > now;
    if tok.kind != TokenKind::Refresh || grant.client_id != client.id || !live {
        return Err(invalid_grant("The refresh token is invalid or revoked."));
    }
    if let Some(asked) = param(form, "scope") {
        if asked
            .split(' ')
            .any(|sc| !sc.is_empty() && !grant.scopes.iter().any(|g| g == sc))
        {
            return Err(
                OAuthError::new(OAuthErrorCode::InvalidScope, "More than was granted.").into(),
            );
        }
    }
    let issued = match tok.used_at {
        Some(_) => None,
        None => issue(s, client, &grant, None, Some(&h)).await?,
    };
    match issued {
        Some(out) => {
            let detail = format!("client={} grant={}", client.id, grant.id);
            s.audit(
                "oidc.token_refreshed",
                Some(grant.user_id),
                Some(detail),
                ctx,
            )
            .await;
            Ok(out)
        }
        None => {
            store.revoke_grant(&grant.id, now).await?;
            let detail = format!("client={} grant={}", client.id, grant.id);
            s.audit(
                "oidc.refresh_reused",
                Some(grant.user_id),
                Some(detail),
                ctx,
            )
            .await;
            Err(invalid_grant(
                "The refresh token was already used; the grant is revoked.",
            ))
        }
    }
}

/// Stores the tokens of `grant` (a new grant, or a rotation of the refresh token `rotated`)
/// and answers them with an ID token. `None` when `rotated` was spent meanwhile.
async fn issue(
    s: &Sesame,
    client: &OidcClientRecord,
    grant: &GrantRecord,
    nonce: Option<&str>,
    rotated: Option<&[u8]>,
) -> Result<Option<TokenResponse>, Failure> {
    let now = i64::try_from(s.now()).unwrap_or(i64::MAX);
    let Some(info) = s.oidc_claims(grant.user_id, &grant.scopes).await? else {
        return Err(invalid_grant("The account is no longer active."));
    };
    let (access, access_hash) = new_token(s, "oat_");
    let (refresh, refresh_hash) = new_token(s, "ort_");
    let record = |hash: Vec<u8>, kind, life| TokenRecord {
        hash,
        grant_id: grant.id.clone(),
        kind,
        created_at: now,
        expires_at: now + life,
        used_at: None,
    };
    let tokens = [
        record(access_hash, TokenKind::Access, ACCESS_TTL_SECS),
        record(refresh_hash, TokenKind::Refresh, REFRESH_TTL_SECS),
    ];
    let store = s.oidc_store()?;
    match rotated {
        None => store.create_grant(grant, &tokens).await?,
        Some(old) if store.rotate_refresh(old, now, &tokens).await? => {}
        Some(_) => return Ok(None),
    }
    let mfa = grant.amr.iter().any(|m| m == "mfa");
    let claims = IdClaims {
        iss: s.issuer(),
        aud: client.id.clone(),
        exp: now + ID_TOKEN_TTL_SECS,
        iat: now,
        auth_time: grant.auth_time,
        nonce: nonce.map(str::to_owned),
        amr: grant.amr.clone(),
        acr: if mfa {
            "urn:sesame:acr:mfa"
        } else {
            "urn:sesame:acr:pwd"
        }
        .into(),
        azp: client.id.clone(),
        sid: grant.session_id.clone(),
        info,
    };
    let alg = IdTokenAlg::parse(&client.id_token_alg).unwrap_or_default();
    let id_token = s.oidc_sign(alg, &claims).await?;
    Ok(Some(TokenResponse {
        access_token: access,
        token_type: "Bearer".into(),
        expires_in: ACCESS_TTL_SECS.unsigned_abs(),
        refresh_token: Some(refresh),
        id_token: Some(id_token),
        scope: grant.scopes.join(" "),
    }))
}
