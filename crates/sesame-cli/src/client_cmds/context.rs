//! [`Ctx`], what every client command works with: the profile, the server and the HTTP
//! client, with the stored login, its refresh and this device's login keys.

use std::future::Future;
use std::io::Write as _;

use anyhow::{anyhow, bail, Context as _};
use sesame_client::profile::{unix_now, Profile, ProfileError, StoredSession, Trust};
use sesame_client::tls::certificate_fingerprint;
use sesame_client::{Client, ClientPolicy, Error as ClientError, TlsOptions};

use super::is_loopback;

/// `--ca-file`: the private CA the client commands trust for `https://` servers.
static CA_FILE: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();

/// Sets `--ca-file` (once, before any command runs).
pub(crate) fn set_ca_file(path: Option<std::path::PathBuf>) {
    let _ = CA_FILE.set(path);
}

fn ca_file() -> Option<&'static std::path::Path> {
    CA_FILE.get().and_then(|p| p.as_deref())
}

/// What every client command works with.
pub(crate) struct Ctx {
    pub(crate) profile: Profile,
    /// The canonical server URL (the profile's key).
    pub(crate) server: String,
    pub(crate) client: Client,
}

/// This device's login key for one account on one server (`sesame 2fa device on`).
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct DeviceKey {
    /// The id the server gave the key.
    pub(crate) id: String,
    /// The Ed25519 seed, base64url.
    pub(crate) seed: String,
}

impl Ctx {
    /// `<profile>/devices/<server>.json`: username → [`DeviceKey`] (mode 0600).
    fn devices_path(&self) -> std::path::PathBuf {
        let stem: String = self
            .server
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        self.profile
            .root()
            .join("devices")
            .join(format!("{stem}.json"))
    }

    fn device_keys(&self) -> anyhow::Result<std::collections::BTreeMap<String, DeviceKey>> {
        match std::fs::read(self.devices_path()) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).context("device key file is corrupt")?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Default::default()),
            Err(e) => Err(e).context("cannot read the device key file"),
        }
    }

    /// This device's key for `username`, if one was registered here.
    pub(crate) fn device_key(
        &self,
        username: &str,
    ) -> anyhow::Result<Option<(String, ed25519_dalek::SigningKey)>> {
        let Some(d) = self.device_keys()?.remove(username) else {
            return Ok(None);
        };
        let seed: [u8; 32] = sesame_proto::b64::decode(&d.seed)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| anyhow!("device key file is corrupt"))?;
        Ok(Some((d.id, ed25519_dalek::SigningKey::from_bytes(&seed))))
    }

    /// Stores this device's key for `username`.
    pub(crate) fn save_device_key(
        &self,
        username: &str,
        id: &str,
        key: &ed25519_dalek::SigningKey,
    ) -> anyhow::Result<()> {
        let mut all = self.device_keys()?;
        all.insert(
            username.to_owned(),
            DeviceKey {
                id: id.to_owned(),
                seed: sesame_proto::b64::encode(key.to_bytes()),
            },
        );
        let bytes = serde_json::to_vec_pretty(&all)?;
        sesame_client::profile::write_atomic(&self.devices_path(), &bytes)
            .map_err(|(action, e)| anyhow!("cannot {action} the device key file: {e}"))
    }

    /// The client, signing logins with this device's key for `username` when there is one.
    pub(crate) fn client_for(&self, username: &str) -> anyhow::Result<Client> {
        let canonical = sesame_proto::policy::Username::parse(username)
            .map(|u| u.as_str().to_owned())
            .unwrap_or_else(|_| username.to_owned());
        Ok(match self.device_key(&canonical)? {
            Some((id, key)) => self.client.clone().with_device_key(id, key),
            None => self.client.clone(),
        })
    }

    /// The context for `server_url`. For an `https://` server the certificate is checked
    /// first: against `--ca-file` when given, else the public roots, else the certificate
    /// pinned for this server (pinned now on first contact; a changed one is refused).
    pub(crate) async fn new(server_url: &str) -> anyhow::Result<Ctx> {
        let server = sesame_client::server_id(server_url)?;
        let profile = Profile::open()?;
        let pinned = profile.pinned_key(&server)?;
        let policy = ClientPolicy {
            pinned_server_key: pinned,
            ..ClientPolicy::default()
        };
        let https = sesame_client::parse_server_url(&server)?.scheme() == "https";
        let mut pin = None;
        let client = match (https, ca_file()) {
            (false, _) => Client::new(&server, policy)?,
            (true, Some(ca)) => {
                let pem = std::fs::read(ca)
                    .with_context(|| format!("cannot read the CA file {}", ca.display()))?;
                Client::with_tls(&server, policy, TlsOptions::with_ca_pem(&pem)?)?
            }
            (true, None) => {
                let tls = TlsOptions::pinned(profile.pinned_tls_certificate(&server)?)?;
                pin = Some(tls.clone());
                Client::with_tls(&server, policy, tls)?
            }
        };
        if client.base_url().scheme() == "http" && !is_loopback(client.base_url()) {
            eprintln!(
                "warning: {server} is plain HTTP: OPAQUE keeps the password safe, but session \
                 tokens travel unencrypted; use https:// outside a test setup"
            );
        }
        let ctx = Ctx {
            profile,
            server,
            client,
        };
        if let Some(tls) = pin {
            ctx.check_tls_pin(&tls).await?;
        }
        Ok(ctx)
    }

    /// One request to see the server's certificate before anything depends on it: a
    /// certificate the public roots do not vouch for is pinned on first contact, and a
    /// changed one is refused with both fingerprints. An unreachable server is left to the
    /// command to report.
    async fn check_tls_pin(&self, tls: &TlsOptions) -> anyhow::Result<()> {
        let probe = self.client.health().await;
        let handshake_done = match &probe {
            Ok(()) => true,
            Err(e) => matches!(
                e,
                ClientError::Server { .. } | ClientError::UnexpectedResponse(_)
            ),
        };
        match (tls.presented(), tls.pinned_sha256()) {
            (Some(seen), Some(pinned)) if seen != pinned => Err(anyhow!(self
                .profile
                .tls_certificate_changed(&self.server, &pinned, &seen))),
            (Some(seen), None) if handshake_done => {
                if self.profile.trust_tls_certificate(&self.server, &seen)? == Trust::Pinned {
                    say!(
                        "Trusting TLS certificate {} for {} (no public CA vouches for it; \
                         pinned on first use)",
                        certificate_fingerprint(&seen),
                        self.server
                    );
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Pins the server key on first use and says so.
    pub(crate) fn trust(&self, key: &[u8; 32]) -> anyhow::Result<()> {
        match self.profile.trust_server(&self.server, key)? {
            Trust::Pinned => say!(
                "Trusting server key {} for {}",
                sesame_client::fingerprint(key),
                self.server
            ),
            Trust::AlreadyPinned => {}
        }
        Ok(())
    }

    /// Turns a library error into one that tells the user what to do.
    pub(crate) fn explain(&self, err: ClientError) -> anyhow::Error {
        match err {
            ClientError::ServerKeyMismatch {
                server,
                pinned,
                presented,
            } => anyhow!(ProfileError::KeyChanged {
                server,
                pinned,
                presented,
                path: self.profile.known_servers_path(),
            }),
            ClientError::Server {
                retry_after: Some(secs),
                ..
            } => anyhow!("{err}; try again in {secs} s"),
            other => anyhow!(other),
        }
    }

    pub(crate) fn stored_session(&self) -> anyhow::Result<StoredSession> {
        self.profile
            .load_session(&self.server)?
            .ok_or_else(|| anyhow!("not logged in to {}; run `sesame login`", self.server))
    }

    /// A usable access token for `session`, refreshed (and saved) when it has expired.
    pub(crate) async fn access_token(&self, session: &mut StoredSession) -> anyhow::Result<String> {
        let now = unix_now();
        if session.access_expired(now) {
            self.refresh(session).await?;
        }
        Ok(session.access_token.clone())
    }

    /// Refreshes the access token of `session` and saves it; a dead session is forgotten.
    pub(crate) async fn refresh(&self, session: &mut StoredSession) -> anyhow::Result<()> {
        match self.client.refresh(&session.session_token).await {
            Ok(refreshed) => {
                session.apply_refresh(&refreshed, unix_now());
                self.profile.save_session(session)?;
                Ok(())
            }
            Err(e) if e.is_unauthorized() => {
                // Only the server the session was made with may end it: another program or
                // another server at this address must not make us forget a live session.
                self.same_server().await?;
                self.profile.remove_session(&self.server)?;
                bail!(
                    "your session on {} has expired or was revoked; log in again with \
                     `sesame login`",
                    self.server
                )
            }
            Err(e) => Err(self.explain(e)).context("cannot refresh the access token"),
        }
    }

    /// Runs `call` with a fresh access token of the stored session, refreshing once more if
    /// the server refuses the token (it may have expired early, or the clocks disagree).
    pub(crate) async fn authed<T, F, Fut>(&self, call: F) -> anyhow::Result<(StoredSession, T)>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let mut session = self.stored_session()?;
        let token = self.access_token(&mut session).await?;
        match call(token).await {
            Ok(value) => Ok((session, value)),
            Err(e) if e.is_unauthorized() => {
                self.refresh(&mut session).await?;
                let value = call(session.access_token.clone())
                    .await
                    .map_err(|e| self.explain(e))?;
                Ok((session, value))
            }
            Err(e) => Err(self.explain(e)),
        }
    }
}

impl Ctx {
    /// Checks that the server answering now has the OPAQUE key pinned for this address (from
    /// `/.well-known/sesame`); a mismatch is the pin error, and nothing is forgotten.
    async fn same_server(&self) -> anyhow::Result<()> {
        let Some(pinned) = self.profile.pinned_key(&self.server)? else {
            return Ok(());
        };
        let info = self.client.server_info().await.map_err(|e| {
            self.explain(e).context(format!(
                "the server at {} refused the session and cannot show it is the server you \
                 logged in to; the session was kept",
                self.server
            ))
        })?;
        let presented = sesame_proto::b64::decode(&info.opaque_public_key)
            .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok());
        match presented {
            Some(key) if key == pinned => Ok(()),
            Some(key) => Err(
                anyhow!(self.profile.key_changed(&self.server, &pinned, &key))
                    .context("the session was kept"),
            ),
            None => bail!(
                "the server at {} does not publish a valid server key; the session was kept",
                self.server
            ),
        }
    }

    /// A usable access token for a session that is not (or no longer) the stored one, without
    /// saving anything; `None` if the session is dead or the server unreachable.
    pub(super) async fn access_token_of(&self, session: &mut StoredSession) -> Option<String> {
        let now = unix_now();
        if session.access_expired(now) {
            let refreshed = self.client.refresh(&session.session_token).await.ok()?;
            session.apply_refresh(&refreshed, now);
        }
        Some(session.access_token.clone())
    }
}
