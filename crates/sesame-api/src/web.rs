//! The browser app's session routes (`/web/*`): a session token held in an `HttpOnly` cookie
//! instead of by the page (docs/web.md).
//!
//! The page logs in over the ordinary API (OPAQUE, `/api/login/*`), hands the session token it
//! opened from the confirmation to `POST /web/session` once, and forgets it. From then on the
//! cookie, which page scripts cannot read, is the session; the page asks `POST /web/refresh`
//! for short-lived access tokens, which it keeps in memory only and sends as
//! `Authorization: Bearer` to the API. Every `/web/*` request that carries the cookie must come
//! from the server's own origin ([`crate::CredentialError::CrossSiteRequest`] otherwise).

use serde::{Deserialize, Serialize};

/// The name of the session cookie when the server is not known to be served over TLS.
pub const SESSION_COOKIE: &str = "sesame_session";

/// The name of the session cookie over TLS: the `__Host-` prefix makes the browser refuse it
/// unless it is `Secure`, has `Path=/` and no `Domain`.
pub const SECURE_SESSION_COOKIE: &str = "__Host-sesame_session";

/// `POST /web/session`: the session token to keep in the cookie.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CookieSessionRequest {
    /// The session token from a login (`sess_…`).
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 256))]
    pub session_token: String,
}

impl std::fmt::Debug for CookieSessionRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieSessionRequest")
            .field("session_token", &"<redacted>")
            .finish()
    }
}
