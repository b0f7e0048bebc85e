//! Client-side registration: the password never leaves the client.

use opaque_ke::{
    ClientRegistration, ClientRegistrationFinishParameters, Identifiers, RegistrationResponse,
};
use rand_core::{CryptoRng, RngCore};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::b64::Bytes;
use crate::client::{export_key, key32, ClientPolicy};
use crate::error::Error;
use crate::messages::{RegistrationChallenge, RegistrationFinish, RegistrationStart};
use crate::policy::normalize_password;
use crate::suite::Suite;

/// Begins a registration: blinds the password and returns the message to send.
pub fn start_registration<R: RngCore + CryptoRng>(
    rng: &mut R,
    username: &str,
    password: &str,
) -> Result<(ExpectRegistrationChallenge, RegistrationStart), Error> {
    let password = normalize_password(password);
    let start = ClientRegistration::<Suite>::start(rng, password.as_bytes())
        .map_err(|_| Error::Internal("registration start"))?;
    let msg = RegistrationStart {
        username: username.to_owned(),
        registration_request: Bytes(start.message.serialize().to_vec()),
    };
    Ok((
        ExpectRegistrationChallenge {
            username: username.to_owned(),
            password,
            state: start.state,
        },
        msg,
    ))
}

/// Client state waiting for the server's [`RegistrationChallenge`].
pub struct ExpectRegistrationChallenge {
    username: String,
    password: Zeroizing<String>,
    state: ClientRegistration<Suite>,
}

/// A finished client-side registration.
pub struct ClientRegistrationFinished {
    /// The message to upload.
    pub message: RegistrationFinish,
    /// OPAQUE's export key: known to this client only, stable across logins with the same
    /// password; the root of client-side encryption keys.
    pub export_key: Zeroizing<[u8; 64]>,
    /// The server's static public key, to pin.
    pub server_public_key: [u8; 32],
}

impl ExpectRegistrationChallenge {
    /// Checks the server's parameters and key, stretches the password and builds the record.
    pub fn finish<R: RngCore + CryptoRng>(
        self,
        rng: &mut R,
        challenge: &RegistrationChallenge,
        policy: &ClientPolicy,
    ) -> Result<ClientRegistrationFinished, Error> {
        let ksf = challenge.key_stretching.params();
        policy.ksf.check(&ksf)?;
        let announced = key32(challenge.server_public_key.as_slice(), "server_public_key")?;
        policy.check_pin(&announced)?;
        let response =
            RegistrationResponse::<Suite>::deserialize(challenge.registration_response.as_slice())
                .map_err(|_| Error::InvalidMessage("registration_response"))?;
        let argon2 = ksf.argon2()?;
        let result = self
            .state
            .finish(
                rng,
                self.password.as_bytes(),
                response,
                ClientRegistrationFinishParameters::new(Identifiers::default(), Some(&argon2)),
            )
            .map_err(|_| Error::InvalidMessage("registration_response"))?;
        let server_public_key = key32(&result.server_s_pk.serialize(), "server_public_key")?;
        if !bool::from(server_public_key.ct_eq(&announced)) {
            return Err(Error::ServerKeyMismatch);
        }
        Ok(ClientRegistrationFinished {
            message: RegistrationFinish {
                username: self.username,
                registration_record: Bytes(result.message.serialize().to_vec()),
                key_stretching: ksf.into(),
            },
            export_key: export_key(&result.export_key),
            server_public_key,
        })
    }
}
