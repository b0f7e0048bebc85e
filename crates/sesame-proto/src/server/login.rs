//! OPAQUE login, server half, as a consuming state machine.
//!
//! [`start_login`] answers KE1 with a challenge and returns an [`ExpectLoginFinish`] to keep
//! (in memory or, serialized, in a shared store) under the login id. Its
//! [`finish`](ExpectLoginFinish::finish) consumes it, so a login id can be used once; it yields
//! a [`PasswordVerified`] proof, the only way the server crate can create a session, and a
//! [`ConfirmationSealer`] for step 4.

use opaque_ke::{CredentialFinalization, CredentialRequest, ServerLogin, ServerLoginParameters};
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use crate::b64::{self, Bytes};
use crate::confirm::{transcript_hash, ConfirmationKey};
use crate::error::Error;
use crate::messages::{LoginChallenge, LoginConfirmation, LoginFinish, LoginStart};
use crate::policy::Username;
use crate::record::CredentialRecord;
use crate::server::ServerKeys;
use crate::suite::{KsfParams, Suite};
use crate::time::Timestamp;

/// How long a login id lives by default, in seconds.
pub const DEFAULT_LOGIN_TTL_SECS: u64 = 60;

const STATE_VERSION: u8 = 1;

/// Answers step 1 of a login (`username` + KE1) with the challenge of step 2.
///
/// `username` is the canonical form of `msg.username`; `record` is that user's record, or
/// `None` for an unknown user, who gets a challenge made from a fake record with the default
/// parameters: same sizes, same shape, and a failure only at step 4.
pub fn start_login<R: RngCore + CryptoRng>(
    rng: &mut R,
    keys: &ServerKeys,
    username: &Username,
    record: Option<&CredentialRecord>,
    msg: &LoginStart,
    now: Timestamp,
    ttl_secs: u64,
) -> Result<(ExpectLoginFinish, LoginChallenge), Error> {
    let request = CredentialRequest::<Suite>::deserialize(msg.ke1.as_slice())
        .map_err(|_| Error::InvalidMessage("ke1"))?;
    let ksf = record.map(|r| r.ksf).unwrap_or(KsfParams::DEFAULT);
    let result = ServerLogin::start(
        rng,
        &keys.setup,
        record.map(|r| r.upload.clone()),
        request,
        username.as_str().as_bytes(),
        ServerLoginParameters::default(),
    )
    .map_err(|_| Error::InvalidMessage("ke1"))?;
    let mut id = [0u8; 16];
    rng.fill_bytes(&mut id);
    let login_id = b64::encode(id);
    let ke2 = result.message.serialize().to_vec();
    let challenge = LoginChallenge {
        login_id: login_id.clone(),
        ke2: Bytes(ke2.clone()),
        key_stretching: ksf.into(),
        server_public_key: Bytes(keys.public_key().to_vec()),
        expires_in: ttl_secs,
    };
    let state = ExpectLoginFinish {
        login_id,
        username: username.clone(),
        expires_at: now.plus(ttl_secs),
        known_user: record.is_some(),
        ke1: msg.ke1.0.clone(),
        ke2,
        opaque: result.state,
    };
    Ok((state, challenge))
}

/// Server state between the challenge (step 2) and the client's proof (step 3).
pub struct ExpectLoginFinish {
    login_id: String,
    username: Username,
    expires_at: Timestamp,
    known_user: bool,
    ke1: Vec<u8>,
    ke2: Vec<u8>,
    opaque: ServerLogin<Suite>,
}

impl ExpectLoginFinish {
    /// The single-use login id this state answers to.
    pub fn login_id(&self) -> &str {
        &self.login_id
    }

    /// The canonical username the login is for.
    pub fn username(&self) -> &Username {
        &self.username
    }

    /// When this state stops being accepted.
    pub fn expires_at(&self) -> Timestamp {
        self.expires_at
    }

    /// The KE2 this login's challenge carried (what a device key signs, [`crate::device`]).
    pub fn ke2(&self) -> &[u8] {
        &self.ke2
    }

    /// Verifies the client's KE3. Consumes the state: a login id works once.
    ///
    /// Fails with [`Error::AuthenticationFailed`] for a wrong password, an unknown user and
    /// a tampered message alike.
    pub fn finish(
        self,
        msg: &LoginFinish,
        now: Timestamp,
    ) -> Result<(PasswordVerified, ConfirmationSealer), Error> {
        if msg.login_id != self.login_id {
            return Err(Error::UnknownLogin);
        }
        if now >= self.expires_at {
            return Err(Error::LoginExpired);
        }
        let finalization = CredentialFinalization::<Suite>::deserialize(msg.ke3.as_slice())
            .map_err(|_| Error::InvalidMessage("ke3"))?;
        let result = self
            .opaque
            .finish(finalization, ServerLoginParameters::default())
            .map_err(|_| Error::AuthenticationFailed)?;
        if !self.known_user {
            return Err(Error::AuthenticationFailed);
        }
        let th = transcript_hash(&self.login_id, &self.ke1, &self.ke2, msg.ke3.as_slice());
        let key = ConfirmationKey::derive(&self.login_id, th, &result.session_key)?;
        Ok((
            PasswordVerified {
                username: self.username,
                method: AuthMethod::Opaque,
            },
            ConfirmationSealer { key },
        ))
    }

    /// Serializes the state for a shared store. It holds key-exchange secrets: keep it no
    /// longer than [`ExpectLoginFinish::expires_at`] and never log it.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(700));
        out.push(STATE_VERSION);
        out.extend_from_slice(&self.expires_at.0.to_be_bytes());
        out.push(u8::from(self.known_user));
        let opaque = Zeroizing::new(self.opaque.serialize().to_vec());
        for part in [
            self.login_id.as_bytes(),
            self.username.as_str().as_bytes(),
            &self.ke1,
            &self.ke2,
            &opaque,
        ] {
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part);
        }
        out
    }

    /// Reads a state written by [`ExpectLoginFinish::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<ExpectLoginFinish, Error> {
        let corrupt = Error::Corrupt("login state");
        let (head, mut rest) = bytes.split_at_checked(10).ok_or(corrupt.clone())?;
        if head[0] != STATE_VERSION || head[9] > 1 {
            return Err(corrupt);
        }
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&head[1..9]);
        let mut next = || -> Result<&[u8], Error> {
            let (len, tail) = rest
                .split_at_checked(4)
                .ok_or(Error::Corrupt("login state"))?;
            let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
            let (part, tail) = tail
                .split_at_checked(len)
                .ok_or(Error::Corrupt("login state"))?;
            rest = tail;
            Ok(part)
        };
        let login_id = String::from_utf8(next()?.to_vec()).map_err(|_| corrupt.clone())?;
        let username = std::str::from_utf8(next()?)
            .ok()
            .and_then(|u| Username::parse(u).ok())
            .ok_or(corrupt.clone())?;
        let ke1 = next()?.to_vec();
        let ke2 = next()?.to_vec();
        let opaque = ServerLogin::<Suite>::deserialize(next()?).map_err(|_| corrupt.clone())?;
        Ok(ExpectLoginFinish {
            login_id,
            username,
            expires_at: Timestamp(u64::from_be_bytes(ts)),
            known_user: head[9] == 1,
            ke1,
            ke2,
            opaque,
        })
    }
}

impl std::fmt::Debug for ExpectLoginFinish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExpectLoginFinish")
            .field("login_id", &self.login_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// How the password was proven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// The client ran OPAQUE itself: the password never left it.
    Opaque,
    /// The client sent the password and the server ran the client half (password login).
    Password,
}

impl AuthMethod {
    /// The `amr`-style name of the method (`"opaque"` or `"pwd"`).
    pub fn as_str(&self) -> &'static str {
        match self {
            AuthMethod::Opaque => "opaque",
            AuthMethod::Password => "pwd",
        }
    }
}

/// Proof that a user's password was verified. Only this crate can make one, and only after a
/// successful OPAQUE finish: the server creates sessions from it and from nothing else.
#[derive(Debug)]
pub struct PasswordVerified {
    pub(crate) username: Username,
    pub(crate) method: AuthMethod,
}

impl PasswordVerified {
    /// The canonical username whose password was verified.
    pub fn username(&self) -> &Username {
        &self.username
    }

    /// How it was verified.
    pub fn method(&self) -> AuthMethod {
        self.method
    }
}

/// Seals the login confirmation (step 4) under the key derived from this login's session key.
pub struct ConfirmationSealer {
    key: ConfirmationKey,
}

impl ConfirmationSealer {
    /// Seals `payload` (whatever the server hands out: tokens, ids) for the client.
    pub fn seal<R: RngCore + CryptoRng>(
        &self,
        rng: &mut R,
        payload: &[u8],
    ) -> Result<LoginConfirmation, Error> {
        self.key.seal(rng, payload)
    }
}

impl std::fmt::Debug for ConfirmationSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConfirmationSealer(..)")
    }
}
