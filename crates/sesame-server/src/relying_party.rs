//! The WebAuthn relying party: its id (a domain) and the origins passkeys may be used from.
//!
//! Configured by `webauthn_rp_id` and `webauthn_origins` (`SESAME_WEBAUTHN_RP_ID`,
//! `SESAME_WEBAUTHN_ORIGINS`). Unset, both follow the issuer: the relying party id is the
//! issuer's host and the one origin is the issuer's scheme, host and port. WebAuthn has no
//! relying party on an IP address, so an issuer on an address (the development default
//! `http://127.0.0.1:7878`) gives the id `localhost` and the origin `http://localhost:7878`:
//! open the app at `http://localhost:PORT` to use passkeys there.
//!
//! Every origin must be `https://` (or `http://` on `localhost`, which browsers treat as
//! secure) with a host equal to the id or under it; the server refuses to start otherwise,
//! since no browser would ever produce a credential the server accepts. The default derived
//! from an `http://` issuer on a domain is not refused (that would stop servers that never
//! asked for passkeys from starting); browsers offer no WebAuthn on such a page anyway. Port 0 in an origin
//! means any port: that is what the default gives when `listen` has port 0 (the port is only
//! known once bound, as in tests).

use std::sync::Arc;

use url::{Host, Url};
use webauthn_rs::{Webauthn, WebauthnBuilder};

/// The relying party id and origins, and the WebAuthn verifier built from them.
#[derive(Debug, Clone)]
pub struct RelyingParty {
    id: String,
    origins: Vec<Url>,
    webauthn: Arc<Webauthn>,
}

/// Why a relying party configuration cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("webauthn: {0}")]
pub struct RelyingPartyError(String);

impl RelyingParty {
    /// A relying party `id` for `origins` (absolute URLs, no path); refused when an origin
    /// cannot match the id.
    pub fn new(id: &str, origins: &[String]) -> Result<RelyingParty, RelyingPartyError> {
        RelyingParty::build(id, origins, false)
    }

    /// The relying party [`RelyingParty::defaults_for`] `issuer` gives, which may be on plain
    /// `http://` (passkeys then simply do not work there).
    pub fn derived(issuer: &str) -> Result<RelyingParty, RelyingPartyError> {
        let (id, origins) = RelyingParty::defaults_for(issuer);
        RelyingParty::build(&id, &origins, true)
    }

    fn build(
        id: &str,
        origins: &[String],
        any_scheme: bool,
    ) -> Result<RelyingParty, RelyingPartyError> {
        let err = |m: String| RelyingPartyError(m);
        let id = id.trim().to_ascii_lowercase();
        if id.is_empty() || id.parse::<std::net::IpAddr>().is_ok() || id.contains('/') {
            return Err(err(format!(
                "webauthn_rp_id {id:?} must be a domain name (not an address); use `localhost` \
                 for development"
            )));
        }
        let mut urls = Vec::with_capacity(origins.len());
        for origin in origins {
            let url = Url::parse(origin).map_err(|e| err(format!("origin {origin:?}: {e}")))?;
            check_origin(&id, &url, any_scheme)
                .map_err(|m| err(format!("origin {origin:?}: {m}")))?;
            urls.push(url);
        }
        let first = urls
            .first()
            .ok_or_else(|| err("webauthn_origins must name at least one origin".into()))?;
        let any_port = urls.iter().any(|u| u.port() == Some(0));
        let mut builder = WebauthnBuilder::new(&id, first)
            .map_err(|e| err(format!("relying party {id:?}: {e}")))?
            .rp_name("Sesame")
            .allow_any_port(any_port);
        for url in &urls[1..] {
            builder = builder.append_allowed_origin(url);
        }
        let webauthn = builder
            .build()
            .map_err(|e| err(format!("relying party {id:?}: {e}")))?;
        Ok(RelyingParty {
            id,
            origins: urls,
            webauthn: Arc::new(webauthn),
        })
    }

    /// The relying party for `issuer` when nothing is configured: `(id, origins)`.
    pub fn defaults_for(issuer: &str) -> (String, Vec<String>) {
        let Ok(mut url) = Url::parse(issuer) else {
            return ("localhost".into(), vec!["http://localhost".into()]);
        };
        let id = match url.host() {
            Some(Host::Domain(d)) => d.to_ascii_lowercase(),
            _ => {
                let _ = url.set_host(Some("localhost"));
                "localhost".to_owned()
            }
        };
        (id, vec![url.origin().ascii_serialization()])
    }

    /// The relying party of a development server (`localhost`, `http://localhost:7878`).
    pub fn development() -> RelyingParty {
        let (id, origins) = RelyingParty::defaults_for("http://127.0.0.1:7878");
        match RelyingParty::new(&id, &origins) {
            Ok(rp) => rp,
            // The constant above is a valid configuration; this arm is never taken.
            Err(e) => unreachable!("{e}"),
        }
    }

    /// The relying party id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The origins passkeys may be used from.
    pub fn origins(&self) -> &[Url] {
        &self.origins
    }

    /// The WebAuthn verifier.
    pub fn webauthn(&self) -> &Webauthn {
        &self.webauthn
    }
}

/// Whether `url` is an origin a browser could create credentials from for `id`.
fn check_origin(id: &str, url: &Url, any_scheme: bool) -> Result<(), String> {
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err("an origin is a scheme, a host and a port, nothing more".into());
    }
    let Some(Host::Domain(host)) = url.host() else {
        return Err("the host must be a domain name, not an address".into());
    };
    let host = host.to_ascii_lowercase();
    if host != id && !host.ends_with(&format!(".{id}")) {
        return Err(format!("its host is not {id} or a subdomain of it"));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if host == "localhost" || any_scheme => Ok(()),
        _ => Err("must be https:// (http:// only on localhost)".into()),
    }
}

#[cfg(test)]
mod tests;
