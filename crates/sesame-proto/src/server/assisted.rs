//! Server-assisted paths, for clients that can only send a password (seed-style
//! `POST /register`, `POST /api/login`, the TCP `REGISTER`/`AUTH` verbs).
//!
//! The server receives the password once, runs the OPAQUE *client* half itself and keeps
//! exactly the record a client-side registration would have produced; login is then the same
//! for both. The password is normalised into a zeroizing buffer and wiped when the call
//! returns. Both functions run Argon2id: call them off the async runtime.

use opaque_ke::{
    ClientLogin, ClientLoginFinishParameters, ClientRegistration,
    ClientRegistrationFinishParameters, Identifiers, ServerLogin, ServerLoginParameters,
    ServerRegistration,
};
use rand_core::{CryptoRng, RngCore};

use crate::error::Error;
use crate::policy::{normalize_password, Username};
use crate::record::CredentialRecord;
use crate::server::login::{AuthMethod, PasswordVerified};
use crate::server::ServerKeys;
use crate::suite::{KsfParams, Suite};

/// Registers `password` for `username` on the server's behalf and returns the record to store.
///
/// The caller checks the password policy first; this only runs the protocol.
pub fn register_with_password<R: RngCore + CryptoRng>(
    rng: &mut R,
    keys: &ServerKeys,
    username: &Username,
    password: &str,
    ksf: KsfParams,
) -> Result<CredentialRecord, Error> {
    let password = normalize_password(password);
    let argon2 = ksf.argon2()?;
    let start = ClientRegistration::<Suite>::start(rng, password.as_bytes())
        .map_err(|_| Error::Internal("registration start"))?;
    let response = ServerRegistration::<Suite>::start(
        &keys.setup,
        start.message,
        username.as_str().as_bytes(),
    )
    .map_err(|_| Error::Internal("registration response"))?;
    let finish = start
        .state
        .finish(
            rng,
            password.as_bytes(),
            response.message,
            ClientRegistrationFinishParameters::new(Identifiers::default(), Some(&argon2)),
        )
        .map_err(|_| Error::Internal("registration finish"))?;
    Ok(CredentialRecord {
        ksf,
        upload: ServerRegistration::finish(finish.message),
    })
}

/// Verifies `password` against `record` by running both halves of an OPAQUE login.
///
/// For an unknown user (`record` is `None`) the same work is done against a fake record with
/// the default parameters and the answer is the same [`Error::AuthenticationFailed`] as for a
/// wrong password, so neither the answer nor its timing tells whether the user exists.
pub fn login_with_password<R: RngCore + CryptoRng>(
    rng: &mut R,
    keys: &ServerKeys,
    username: &Username,
    record: Option<&CredentialRecord>,
    password: &str,
) -> Result<PasswordVerified, Error> {
    let password = normalize_password(password);
    let ksf = record.map(|r| r.ksf).unwrap_or(KsfParams::DEFAULT);
    let argon2 = ksf.argon2()?;
    let start = ClientLogin::<Suite>::start(rng, password.as_bytes())
        .map_err(|_| Error::Internal("login start"))?;
    let server = ServerLogin::start(
        rng,
        &keys.setup,
        record.map(|r| r.upload.clone()),
        start.message,
        username.as_str().as_bytes(),
        ServerLoginParameters::default(),
    )
    .map_err(|_| Error::Internal("login response"))?;
    let client = start
        .state
        .finish(
            rng,
            password.as_bytes(),
            server.message,
            ClientLoginFinishParameters::new(None, Identifiers::default(), Some(&argon2)),
        )
        .map_err(|_| Error::AuthenticationFailed)?;
    server
        .state
        .finish(client.message, ServerLoginParameters::default())
        .map_err(|_| Error::AuthenticationFailed)?;
    if record.is_none() {
        return Err(Error::AuthenticationFailed);
    }
    Ok(PasswordVerified {
        username: username.clone(),
        method: AuthMethod::Password,
    })
}
