//! The key directory over HTTP: publishing and looking up public identities, and the
//! encrypted key backup (`/api/keys`, `/api/keys/backup`).

use reqwest::RequestBuilder;
use serde::{Deserialize, Serialize};
use sesame_api::messaging::{IdentityUpload, KeyBackup, PublishedIdentity};
use sesame_proto::e2e::PublicIdentity;
use uuid::Uuid;

use crate::client::{error_from_body, retry_after, Client};

/// A user's published identity, decoded: the body of `GET /api/keys/{username}` (the
/// contract's [`PublishedIdentity`]) with its keys as a [`PublicIdentity`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyDirectoryEntry {
    /// The canonical username.
    pub username: String,
    /// The account id.
    pub user_id: Uuid,
    /// The public identity.
    #[serde(flatten)]
    pub identity: PublicIdentity,
    /// When the keys were published (Unix seconds).
    #[serde(default)]
    pub updated_at: Option<serde_json::Value>,
}

impl KeyDirectoryEntry {
    /// Decodes the keys of `published`; `None` when one is not canonical base64url of the
    /// right length.
    pub fn decode(published: PublishedIdentity) -> Option<KeyDirectoryEntry> {
        fn fixed<const N: usize>(text: &str) -> Option<[u8; N]> {
            sesame_proto::b64::decode(text)?.try_into().ok()
        }
        Some(KeyDirectoryEntry {
            identity: PublicIdentity {
                signing_key: fixed(&published.signing_key)?,
                encryption_key: fixed(&published.encryption_key)?,
                encryption_key_signature: fixed(&published.encryption_key_signature)?,
            },
            username: published.username,
            user_id: published.user_id,
            updated_at: Some(published.updated_at.into()),
        })
    }
}

/// The body of `PUT /api/keys` for `identity`.
fn upload(identity: &PublicIdentity) -> IdentityUpload {
    IdentityUpload {
        signing_key: sesame_proto::b64::encode(identity.signing_key),
        encryption_key: sesame_proto::b64::encode(identity.encryption_key),
        encryption_key_signature: sesame_proto::b64::encode(identity.encryption_key_signature),
    }
}

/// The key routes of the server: the directory and the encrypted backup.
#[derive(Debug, Clone)]
pub struct KeyDirectory {
    client: Client,
    http: reqwest::Client,
}

impl KeyDirectory {
    /// The key routes of `client`'s server.
    pub fn new(client: &Client) -> crate::Result<KeyDirectory> {
        let http = crate::tls::http_builder(client.tls()).build()?;
        Ok(KeyDirectory {
            client: client.clone(),
            http,
        })
    }

    /// The client this directory talks through.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// `PUT /api/keys`: publishes this user's public identity.
    pub async fn publish(&self, token: &str, identity: &PublicIdentity) -> crate::Result<()> {
        let req = self
            .http
            .put(self.client.url("api/keys")?)
            .json(&upload(identity));
        send(req.bearer_auth(token)).await.map(drop)
    }

    /// `GET /api/keys/{username}`: `None` when the user has no keys (or does not exist).
    pub async fn lookup(
        &self,
        token: &str,
        username: &str,
    ) -> crate::Result<Option<KeyDirectoryEntry>> {
        let mut url = self.client.url("api/keys/")?;
        url.path_segments_mut()
            .map_err(|()| crate::Error::Internal("the base URL cannot take a path".into()))?
            .pop_if_empty()
            .push(username);
        match send(self.http.get(url).bearer_auth(token)).await {
            Ok(body) => serde_json::from_slice::<PublishedIdentity>(&body)
                .ok()
                .and_then(KeyDirectoryEntry::decode)
                .map(Some)
                .ok_or_else(|| {
                    crate::Error::UnexpectedResponse("malformed key directory entry".into())
                }),
            Err(e) if e.is(sesame_api::InputError::KeysNotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `PUT /api/keys/backup`: stores the encrypted backup of the private keys.
    pub async fn upload_backup(&self, token: &str, blob: &[u8]) -> crate::Result<()> {
        let body = KeyBackup {
            blob: sesame_proto::b64::encode(blob),
        };
        let req = self
            .http
            .put(self.client.url("api/keys/backup")?)
            .json(&body);
        send(req.bearer_auth(token)).await.map(drop)
    }

    /// `GET /api/keys/backup`: the encrypted backup, `None` if there is none.
    pub async fn download_backup(&self, token: &str) -> crate::Result<Option<Vec<u8>>> {
        let req = self.http.get(self.client.url("api/keys/backup")?);
        match send(req.bearer_auth(token)).await {
            Ok(body) => serde_json::from_slice::<KeyBackup>(&body)
                .ok()
                .and_then(|b| sesame_proto::b64::decode(&b.blob))
                .map(Some)
                .ok_or_else(|| crate::Error::UnexpectedResponse("malformed key backup".into())),
            Err(e) if e.is(sesame_api::InputError::BackupNotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

async fn send(req: RequestBuilder) -> crate::Result<Vec<u8>> {
    let resp = req.send().await?;
    let status = resp.status();
    if status.is_success() {
        return Ok(resp.bytes().await?.to_vec());
    }
    let retry = retry_after(resp.headers());
    let body = resp.bytes().await.unwrap_or_default();
    Err(error_from_body(status, &body, retry))
}
