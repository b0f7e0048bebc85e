//! Registered relying parties: registration by the operator or the configuration file, and
//! client authentication at the token, revocation and introspection endpoints
//! (`client_secret_basic`, `client_secret_post`, `none` for public clients).

use axum::http::{header, HeaderMap};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sesame_api::oauth::OAuthErrorCode;
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use super::{hash, param, OAuthError, SCOPES};
use crate::error::{ApiError, InputError};
use crate::service::Sesame;
use crate::store::OidcClientRecord;

/// The algorithm a client's ID tokens are signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum IdTokenAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (the default: every library supports it).
    #[default]
    RS256,
    /// Ed25519.
    EdDSA,
}

impl IdTokenAlg {
    /// The JOSE name.
    pub const fn as_str(self) -> &'static str {
        match self {
            IdTokenAlg::RS256 => "RS256",
            IdTokenAlg::EdDSA => "EdDSA",
        }
    }

    /// The algorithm named `s` (`RS256` or `EdDSA`).
    pub fn parse(s: &str) -> Option<IdTokenAlg> {
        [IdTokenAlg::RS256, IdTokenAlg::EdDSA]
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
    }
}

/// A client to register (the `sesame admin oidc client add` flags, or a `[[oidc.clients]]`
/// table of the configuration file).
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSpec {
    /// The `client_id`; a random one when `None`.
    #[serde(default)]
    pub id: Option<String>,
    /// Shown on the consent screen.
    pub name: String,
    /// Exact redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Exact post-logout redirect URIs.
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// A public client (a browser or native app): no secret, PKCE required.
    #[serde(default)]
    pub public: bool,
    /// The scopes it may ask for; every known scope when empty.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Skip the consent screen (first-party apps).
    #[serde(default)]
    pub skip_consent: bool,
    /// The ID token algorithm.
    #[serde(default)]
    pub id_token_alg: IdTokenAlg,
    /// The secret of a confidential client declared in the configuration file (at least 32
    /// characters); a random one is drawn when `None`.
    #[serde(default)]
    pub secret: Option<String>,
}

/// A registered client as the operator sees it.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct RegisteredClient {
    /// The `client_id`.
    pub client_id: String,
    /// The name.
    pub name: String,
    /// Whether it is public.
    pub public: bool,
    /// Redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Post-logout redirect URIs.
    pub post_logout_redirect_uris: Vec<String>,
    /// Allowed scopes.
    pub scopes: Vec<String>,
    /// Whether consent is skipped.
    pub skip_consent: bool,
    /// ID token algorithm.
    pub id_token_alg: String,
    /// `cli` or `config`.
    pub source: String,
    /// Registered (unix seconds).
    pub created_at: i64,
    /// The secret, only right after it was drawn (shown once).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

impl std::fmt::Debug for ClientSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSpec")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("redirect_uris", &self.redirect_uris)
            .field("public", &self.public)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for RegisteredClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisteredClient")
            .field("client_id", &self.client_id)
            .field("name", &self.name)
            .field("public", &self.public)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

impl RegisteredClient {
    fn of(c: &OidcClientRecord, secret: Option<String>) -> RegisteredClient {
        RegisteredClient {
            client_id: c.id.clone(),
            name: c.name.clone(),
            public: c.secret_hash.is_none(),
            redirect_uris: c.redirect_uris.clone(),
            post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
            scopes: c.scopes.clone(),
            skip_consent: c.skip_consent,
            id_token_alg: c.id_token_alg.clone(),
            source: c.source.clone(),
            created_at: c.created_at,
            client_secret: secret,
        }
    }
}

fn bad(message: impl Into<std::borrow::Cow<'static, str>>) -> ApiError {
    ApiError::new(InputError::InvalidRequest, message)
}

/// Checks a redirect URI: absolute, `https` or a loopback `http`, no fragment.
fn check_uri(uri: &str) -> Result<(), ApiError> {
    let u = url::Url::parse(uri).map_err(|e| bad(format!("{uri}: {e}")))?;
    let loopback = matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if u.fragment().is_some() {
        return Err(bad(format!("{uri}: a redirect URI has no fragment")));
    }
    match u.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(bad(format!(
            "{uri}: use https (http only on a loopback address)"
        ))),
    }
}

impl Sesame {
    /// Registers a client (or replaces the one with the same id); answers its secret once.
    pub async fn oidc_register_client(
        &self,
        spec: ClientSpec,
        source: &str,
    ) -> Result<RegisteredClient, ApiError> {
        if spec.name.trim().is_empty() || spec.redirect_uris.is_empty() {
            return Err(bad("A client needs a name and at least one redirect URI."));
        }
        for uri in spec
            .redirect_uris
            .iter()
            .chain(&spec.post_logout_redirect_uris)
        {
            check_uri(uri)?;
        }
        let scopes = if spec.scopes.is_empty() {
            SCOPES.iter().map(|s| (*s).to_owned()).collect()
        } else {
            spec.scopes.clone()
        };
        if let Some(unknown) = scopes.iter().find(|s| !SCOPES.contains(&s.as_str())) {
            return Err(bad(format!("Unknown scope {unknown}.")));
        }
        let id = spec.id.clone().unwrap_or_else(|| {
            let mut b = [0u8; 16];
            self.rng().fill(&mut b);
            hex::encode(b)
        });
        if id.is_empty() || id.len() > 128 || id.contains(':') {
            return Err(bad("A client id is 1 to 128 characters without ':'."));
        }
        let (secret, secret_hash) = match (spec.public, spec.secret) {
            (true, _) => (None, None),
            (false, Some(given)) if given.len() < 32 => {
                return Err(bad("A client secret has at least 32 characters."))
            }
            (false, Some(given)) => (None, Some(hash(&given))),
            (false, None) => {
                let (s, h) = super::new_token(self, "");
                (Some(s), Some(h))
            }
        };
        let record = OidcClientRecord {
            id,
            name: spec.name.trim().to_owned(),
            secret_hash,
            redirect_uris: spec.redirect_uris,
            post_logout_redirect_uris: spec.post_logout_redirect_uris,
            scopes,
            skip_consent: spec.skip_consent,
            id_token_alg: spec.id_token_alg.as_str().to_owned(),
            source: source.to_owned(),
            created_at: i64::try_from(self.now()).unwrap_or(i64::MAX),
        };
        self.oidc_store()?.put_client(&record).await?;
        Ok(RegisteredClient::of(&record, secret))
    }

    /// Every registered client.
    pub async fn oidc_clients(&self) -> Result<Vec<RegisteredClient>, ApiError> {
        let all = self.oidc_store()?.clients().await?;
        Ok(all.iter().map(|c| RegisteredClient::of(c, None)).collect())
    }

    /// One registered client.
    pub async fn oidc_client(&self, id: &str) -> Result<Option<RegisteredClient>, ApiError> {
        let c = self.oidc_store()?.client(id).await?;
        Ok(c.map(|c| RegisteredClient::of(&c, None)))
    }

    /// Removes a client with its consents, grants and tokens; `false` if none.
    pub async fn oidc_remove_client(&self, id: &str) -> Result<bool, ApiError> {
        Ok(self.oidc_store()?.delete_client(id).await?)
    }

    /// Registers the clients of the configuration file (source `config`) and removes the
    /// ones it declared before and no longer does. A confidential client declared there must
    /// carry its `secret`.
    pub async fn oidc_sync_config_clients(&self, specs: &[ClientSpec]) -> Result<(), ApiError> {
        if specs.is_empty() && self.store().oidc().is_none() {
            return Ok(());
        }
        let store = self.oidc_store()?;
        for spec in specs {
            let Some(id) = spec.id.clone() else {
                return Err(bad(format!("client {:?} needs an id", spec.name)));
            };
            if !spec.public && spec.secret.is_none() {
                return Err(bad(format!("confidential client {id} needs a secret")));
            }
            self.oidc_register_client(spec.clone(), "config").await?;
        }
        for old in store.clients().await? {
            let declared = specs
                .iter()
                .any(|s| s.id.as_deref() == Some(old.id.as_str()));
            if old.source == "config" && !declared {
                store.delete_client(&old.id).await?;
            }
        }
        Ok(())
    }

    /// Draws a new secret for a confidential client (the old one stops working at once).
    pub async fn oidc_rotate_secret(&self, id: &str) -> Result<RegisteredClient, ApiError> {
        let store = self.oidc_store()?;
        let mut c = store
            .client(id)
            .await?
            .ok_or_else(|| ApiError::new(InputError::NotFound, "No such client."))?;
        if c.secret_hash.is_none() {
            return Err(bad("A public client has no secret."));
        }
        let (secret, h) = super::new_token(self, "");
        c.secret_hash = Some(h);
        store.put_client(&c).await?;
        Ok(RegisteredClient::of(&c, Some(secret)))
    }

    /// Authenticates the client of a token, revocation or introspection request.
    pub(crate) async fn oidc_authenticate_client(
        &self,
        headers: &HeaderMap,
        form: &[(String, String)],
    ) -> Result<OidcClientRecord, super::Failure> {
        let refused = || {
            OAuthError::new(
                OAuthErrorCode::InvalidClient,
                "Client authentication failed.",
            )
        };
        let basic = basic_credentials(headers)?;
        let (id, secret) = match (basic, param(form, "client_secret")) {
            (Some(_), Some(_)) => {
                return Err(OAuthError::new(
                    OAuthErrorCode::InvalidRequest,
                    "Use one client authentication method.",
                )
                .into())
            }
            (Some((id, secret)), None) => (id, Some(secret)),
            (None, secret) => {
                let id = param(form, "client_id").ok_or_else(refused)?;
                (id.to_owned(), secret.map(|s| Zeroizing::new(s.to_owned())))
            }
        };
        if let (Some(form_id), true) = (param(form, "client_id"), secret.is_some()) {
            if form_id != id {
                return Err(refused().into());
            }
        }
        let client = self.oidc_store()?.client(&id).await?.ok_or_else(refused)?;
        match (&client.secret_hash, secret) {
            (None, None) => Ok(client),
            (Some(stored), Some(given)) if bool::from(hash(&given).ct_eq(stored)) => Ok(client),
            _ => Err(refused().into()),
        }
    }
}

/// `Authorization: Basic` credentials, form-urlencoded as RFC 6749 §2.3.1 says.
fn basic_credentials(
    headers: &HeaderMap,
) -> Result<Option<(String, Zeroizing<String>)>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let refused = || {
        OAuthError::new(
            OAuthErrorCode::InvalidClient,
            "Malformed Basic credentials.",
        )
    };
    let value = value.to_str().map_err(|_| refused())?;
    let Some((scheme, b64)) = value.split_once(' ') else {
        return Err(refused());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let raw = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| refused())?,
    );
    let text = std::str::from_utf8(&raw).map_err(|_| refused())?;
    let (id, secret) = text.split_once(':').ok_or_else(refused)?;
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok(Some((decode(id), Zeroizing::new(decode(secret)))))
}
