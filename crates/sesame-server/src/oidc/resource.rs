//! Discovery, userinfo, revocation (RFC 7009), introspection (RFC 7662) and RP-initiated
//! logout, and the claims of each scope.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sesame_api::oauth::{Introspection, OAuthErrorCode, ProviderMetadata, UserInfo};
use uuid::Uuid;

use super::authorize::{error_page, page};
use super::token::{form_body, IdClaims};
use super::{hash, param, params, Failure, OAuthError, SCOPES};
use crate::error::ApiError;
use crate::http::Ctx;
use crate::service::{Authenticated, RequestContext, Sesame};
use crate::store::{AccountStatus, GrantRecord, TokenKind, TokenRecord};

impl Sesame {
    /// The claims of `scopes` for `user`; `None` when the account is gone or not active.
    pub(crate) async fn oidc_claims(
        &self,
        user: Uuid,
        scopes: &[String],
    ) -> Result<Option<UserInfo>, ApiError> {
        let Some(record) = self.store().user_by_id(user).await? else {
            return Ok(None);
        };
        if record.status != AccountStatus::Active {
            return Ok(None);
        }
        let has = |s: &str| scopes.iter().any(|g| g == s);
        let mut info = UserInfo {
            sub: user.to_string(),
            ..UserInfo::default()
        };
        if has("profile") || has("email") {
            let me = self
                .me(&Authenticated {
                    user_id: user,
                    session_id: Uuid::nil(),
                })
                .await?;
            if has("profile") {
                info.name = Some(
                    me.profile
                        .display_name
                        .clone()
                        .unwrap_or(me.username.clone()),
                );
                info.preferred_username = Some(me.username);
            }
            if has("email") {
                info.email_verified = me.email.as_ref().map(|_| true);
                info.email = me.email;
            }
        }
        if has("groups") {
            info.groups = Some(self.oidc_store()?.groups_of(user).await?);
        }
        Ok(Some(info))
    }

    /// A live token of `kind` and its grant.
    async fn oidc_live_token(
        &self,
        token: &str,
    ) -> Result<Option<(TokenRecord, GrantRecord)>, ApiError> {
        let now = i64::try_from(self.now()).unwrap_or(i64::MAX);
        let found = self.oidc_store()?.token(&hash(token)).await?;
        Ok(found.filter(|(t, g)| {
            g.revoked_at.is_none()
                && t.expires_at > now
                && (t.kind == TokenKind::Access || t.used_at.is_none())
        }))
    }
}

#[utoipa::path(
    get,
    path = "/.well-known/openid-configuration",
    tag = "oidc",
    summary = "OpenID Connect Discovery: the provider's metadata",
    responses((status = 200, description = "The metadata.", body = ProviderMetadata))
)]
pub(super) async fn configuration(State(s): State<Sesame>) -> Json<ProviderMetadata> {
    let iss = s.issuer();
    let base = iss.trim_end_matches('/');
    let list = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let auth = ["client_secret_basic", "client_secret_post", "none"];
    Json(ProviderMetadata {
        authorization_endpoint: format!("{base}/oauth2/authorize"),
        token_endpoint: format!("{base}/oauth2/token"),
        userinfo_endpoint: format!("{base}/oauth2/userinfo"),
        jwks_uri: format!("{base}/.well-known/jwks.json"),
        revocation_endpoint: format!("{base}/oauth2/revoke"),
        introspection_endpoint: format!("{base}/oauth2/introspect"),
        end_session_endpoint: format!("{base}/oauth2/logout"),
        issuer: iss.clone(),
        scopes_supported: list(&SCOPES),
        response_types_supported: list(&["code"]),
        response_modes_supported: list(&["query"]),
        grant_types_supported: list(&["authorization_code", "refresh_token"]),
        subject_types_supported: list(&["public"]),
        id_token_signing_alg_values_supported: list(&["RS256", "EdDSA"]),
        token_endpoint_auth_methods_supported: list(&auth),
        revocation_endpoint_auth_methods_supported: list(&auth),
        introspection_endpoint_auth_methods_supported: list(&auth[..2]),
        code_challenge_methods_supported: list(&["S256"]),
        claims_supported: list(&[
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "amr",
            "acr",
            "azp",
            "sid",
            "name",
            "preferred_username",
            "email",
            "email_verified",
            "groups",
        ]),
        prompt_values_supported: list(&["none", "login", "consent"]),
        authorization_response_iss_parameter_supported: true,
    })
}

#[utoipa::path(
    get,
    path = "/oauth2/userinfo",
    tag = "oidc",
    summary = "The signed-in user's claims, by the access token's scopes",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The claims.", body = UserInfo),
        (status = 401, description = "`invalid_token` (RFC 6750).", body = sesame_api::oauth::OAuthErrorBody)
    )
)]
pub(super) async fn userinfo(State(s): State<Sesame>, headers: HeaderMap) -> Response {
    claims_of_bearer(&s, &headers).await
}

#[utoipa::path(
    post,
    path = "/oauth2/userinfo",
    tag = "oidc",
    summary = "The signed-in user's claims (the same as `GET`)",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The claims.", body = UserInfo),
        (status = 401, description = "`invalid_token` (RFC 6750).", body = sesame_api::oauth::OAuthErrorBody)
    )
)]
pub(super) async fn userinfo_post(State(s): State<Sesame>, headers: HeaderMap) -> Response {
    claims_of_bearer(&s, &headers).await
}

async fn claims_of_bearer(s: &Sesame, headers: &HeaderMap) -> Response {
    let refused = || OAuthError::new(OAuthErrorCode::InvalidToken, "The access token is invalid.");
    let Some(token) = crate::http::bearer(headers) else {
        return refused().into_response();
    };
    let found = match s.oidc_live_token(token).await {
        Ok(found) => found,
        Err(e) => return e.into_response(),
    };
    let Some((_, grant)) = found.filter(|(t, _)| t.kind == TokenKind::Access) else {
        return refused().into_response();
    };
    match s.oidc_claims(grant.user_id, &grant.scopes).await {
        Ok(Some(info)) => ([(header::CACHE_CONTROL, "no-store")], Json(info)).into_response(),
        Ok(None) => refused().into_response(),
        Err(e) => e.into_response(),
    }
}

#[utoipa::path(
    post,
    path = "/oauth2/revoke",
    tag = "oidc",
    summary = "RFC 7009 token revocation",
    description = "A refresh token revokes its whole grant; an access token only itself. \
                   Unknown tokens succeed too.",
    responses(
        (status = 200, description = "Revoked (or unknown)."),
        (status = 400, description = "An OAuth error.", body = sesame_api::oauth::OAuthErrorBody),
        (status = 401, description = "`invalid_client`.", body = sesame_api::oauth::OAuthErrorBody)
    )
)]
pub(super) async fn revoke(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match revoke_inner(&s, &ctx, &headers, &body).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn revoke_inner(
    s: &Sesame,
    ctx: &RequestContext,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), Failure> {
    let form = form_body(headers, body)?;
    let client = s.oidc_authenticate_client(headers, &form).await?;
    let token = param(&form, "token")
        .ok_or_else(|| OAuthError::new(OAuthErrorCode::InvalidRequest, "token is missing."))?;
    let store = s.oidc_store()?;
    let Some((t, grant)) = store.token(&hash(token)).await? else {
        return Ok(());
    };
    if grant.client_id != client.id {
        return Ok(());
    }
    let now = i64::try_from(s.now()).unwrap_or(i64::MAX);
    match t.kind {
        TokenKind::Refresh => {
            store.revoke_grant(&grant.id, now).await?;
        }
        TokenKind::Access => {
            store.delete_token(&t.hash).await?;
        }
    }
    let detail = format!(
        "client={} grant={} kind={}",
        client.id,
        grant.id,
        t.kind.as_str()
    );
    s.audit("oidc.revoked", Some(grant.user_id), Some(detail), ctx)
        .await;
    Ok(())
}

#[utoipa::path(
    post,
    path = "/oauth2/introspect",
    tag = "oidc",
    summary = "RFC 7662 token introspection (confidential clients, their own tokens)",
    responses(
        (status = 200, description = "Whether the token is live, and what it is.", body = Introspection),
        (status = 400, description = "An OAuth error (`invalid_request`: no form body or no token).", body = sesame_api::oauth::OAuthErrorBody),
        (status = 401, description = "`invalid_client`.", body = sesame_api::oauth::OAuthErrorBody)
    )
)]
pub(super) async fn introspect(
    State(s): State<Sesame>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match introspect_inner(&s, &headers, &body).await {
        Ok(i) => ([(header::CACHE_CONTROL, "no-store")], Json(i)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn introspect_inner(
    s: &Sesame,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Introspection, Failure> {
    let form = form_body(headers, body)?;
    let client = s.oidc_authenticate_client(headers, &form).await?;
    if client.secret_hash.is_none() {
        let e = OAuthError::new(
            OAuthErrorCode::InvalidClient,
            "Public clients cannot introspect.",
        );
        return Err(e.into());
    }
    let token = param(&form, "token")
        .ok_or_else(|| OAuthError::new(OAuthErrorCode::InvalidRequest, "token is missing."))?;
    let Some((t, grant)) = s.oidc_live_token(token).await? else {
        return Ok(Introspection::default());
    };
    if grant.client_id != client.id {
        return Ok(Introspection::default());
    }
    let username = s
        .oidc_claims(grant.user_id, &["profile".into()])
        .await?
        .and_then(|i| i.preferred_username);
    Ok(Introspection {
        active: true,
        scope: Some(grant.scopes.join(" ")),
        client_id: Some(client.id),
        username,
        token_type: Some(match t.kind {
            TokenKind::Access => "access_token".into(),
            TokenKind::Refresh => "refresh_token".into(),
        }),
        exp: Some(t.expires_at),
        iat: Some(t.created_at),
        sub: Some(grant.user_id.to_string()),
        iss: Some(s.issuer()),
    })
}

#[utoipa::path(
    get,
    path = "/oauth2/logout",
    tag = "oidc",
    summary = "RP-initiated logout (end_session_endpoint)",
    description = "Ends the Sesame session named by `id_token_hint`'s `sid` and the browser's \
                   cookie session, then redirects to `post_logout_redirect_uri` (with `state`) \
                   when it is registered for the client, or shows a page.",
    responses(
        (status = 302, description = "To the client's post-logout redirect URI."),
        (status = 200, description = "An HTML page: signed out.", content_type = "text/html"),
        (status = 400, description = "An HTML page: an unregistered redirect URI.", content_type = "text/html")
    )
)]
pub(super) async fn end_session(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let list = match params(query.unwrap_or_default().as_bytes()) {
        Ok(l) => l,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, &e.description),
    };
    let hint: Option<IdClaims> = match param(&list, "id_token_hint") {
        Some(t) => match s.oidc_verify(t).await {
            Some(c) => Some(c),
            None => return error_page(StatusCode::BAD_REQUEST, "The id_token_hint is not valid."),
        },
        None => None,
    };
    let client_id = hint
        .as_ref()
        .map(|h| h.aud.clone())
        .or(param(&list, "client_id").map(str::to_owned));
    let redirect = match post_logout_target(&s, &list, client_id.as_deref()).await {
        Ok(r) => r,
        Err(Ok(message)) => return error_page(StatusCode::BAD_REQUEST, message),
        Err(Err(e)) => return e.into_response(),
    };
    if let Err(e) = end_sessions(&s, &ctx, &headers, hint.as_ref()).await {
        return e.into_response();
    }
    let mut resp = match redirect {
        Some(to) => (StatusCode::FOUND, [(header::LOCATION, to)]).into_response(),
        None => page(
            StatusCode::OK,
            "You are signed out",
            "You have been signed out of Sesame.",
        ),
    };
    resp.headers_mut()
        .insert(header::SET_COOKIE, crate::web::clear_cookie(&s));
    resp
}

/// The checked `post_logout_redirect_uri` with `state`, if one was asked for.
async fn post_logout_target(
    s: &Sesame,
    list: &[(String, String)],
    client_id: Option<&str>,
) -> Result<Option<String>, Result<&'static str, ApiError>> {
    let Some(uri) = param(list, "post_logout_redirect_uri") else {
        return Ok(None);
    };
    let Some(client_id) = client_id else {
        return Err(Ok(
            "A post-logout redirect needs id_token_hint or client_id.",
        ));
    };
    let client = s
        .oidc_store()
        .map_err(Err)?
        .client(client_id)
        .await
        .map_err(|e| Err(e.into()))?;
    if !client.is_some_and(|c| c.post_logout_redirect_uris.iter().any(|r| r == uri)) {
        return Err(Ok(
            "The post-logout redirect URI is not one this application registered.",
        ));
    }
    let mut u =
        url::Url::parse(uri).map_err(|_| Ok("The post-logout redirect URI is not a URL."))?;
    if let Some(state) = param(list, "state") {
        u.query_pairs_mut().append_pair("state", state);
    }
    Ok(Some(u.to_string()))
}

/// Ends the session the hint names and the browser's cookie session.
async fn end_sessions(
    s: &Sesame,
    ctx: &RequestContext,
    headers: &HeaderMap,
    hint: Option<&IdClaims>,
) -> Result<(), ApiError> {
    if let Some(h) = hint {
        let user = Uuid::parse_str(&h.info.sub).ok();
        let sid = Uuid::parse_str(&h.sid).ok();
        if let (Some(user), Some(sid)) = (user, sid) {
            if s.store().delete_session(user, sid).await? {
                s.sessions_ended(user, crate::relay::SessionsEnded::One(sid))
                    .await;
            }
            let detail = format!("client={}", h.aud);
            s.audit("oidc.logout", Some(user), Some(detail), ctx).await;
        }
    }
    if let Some(token) = crate::web::cookie_token(s, headers) {
        s.logout_by_token(&token, ctx).await?;
    }
    Ok(())
}
