//! Client-side login: steps 1, 3 and the check of step 4.

use opaque_ke::{ClientLogin, ClientLoginFinishParameters, CredentialResponse, Identifiers};
use rand_core::{CryptoRng, RngCore};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::b64::Bytes;
use crate::client::{export_key, key32, ClientPolicy};
use crate::confirm::{transcript_hash, ConfirmationKey};
use crate::error::Error;
use crate::messages::{LoginChallenge, LoginConfirmation, LoginFinish, LoginStart};
use crate::policy::normalize_password;
use crate::suite::Suite;

/// Step 1: blinds the password and makes KE1.
pub fn start_login<R: RngCore + CryptoRng>(
    rng: &mut R,
    username: &str,
    password: &str,
) -> Result<(ExpectLoginChallenge, LoginStart), Error> {
    let password = normalize_password(password);
    let start = ClientLogin::<Suite>::start(rng, password.as_bytes())
        .map_err(|_| Error::Internal("login start"))?;
    let ke1 = start.message.serialize().to_vec();
    let msg = LoginStart {
        username: username.to_owned(),
        ke1: Bytes(ke1.clone()),
    };
    Ok((
        ExpectLoginChallenge {
            password,
            ke1,
            state: start.state,
        },
        msg,
    ))
}

/// Client state waiting for the server's [`LoginChallenge`].
pub struct ExpectLoginChallenge {
    password: Zeroizing<String>,
    ke1: Vec<u8>,
    state: ClientLogin<Suite>,
}

/// The outcome of step 3.
pub struct ClientLoginFinished {
    /// KE3, to send to the server.
    pub message: LoginFinish,
    /// State to open the server's confirmation with.
    pub confirmation: ExpectLoginConfirmation,
    /// OPAQUE's export key (the same one registration produced).
    pub export_key: Zeroizing<[u8; 64]>,
    /// The server's static public key, authenticated by the exchange.
    pub server_public_key: [u8; 32],
}

impl ExpectLoginChallenge {
    /// Step 3: checks the parameters and the pinned key, stretches the password, opens the
    /// envelope (which authenticates the server) and makes KE3.
    ///
    /// A wrong password and a wrong server both fail here with
    /// [`Error::AuthenticationFailed`].
    pub fn finish<R: RngCore + CryptoRng>(
        self,
        rng: &mut R,
        challenge: &LoginChallenge,
        policy: &ClientPolicy,
    ) -> Result<ClientLoginFinished, Error> {
        let ksf = challenge.key_stretching.params();
        policy.ksf.check(&ksf)?;
        let announced = key32(challenge.server_public_key.as_slice(), "server_public_key")?;
        policy.check_pin(&announced)?;
        let response = CredentialResponse::<Suite>::deserialize(challenge.ke2.as_slice())
            .map_err(|_| Error::InvalidMessage("ke2"))?;
        let argon2 = ksf.argon2()?;
        let result = self
            .state
            .finish(
                rng,
                self.password.as_bytes(),
                response,
                ClientLoginFinishParameters::new(None, Identifiers::default(), Some(&argon2)),
            )
            .map_err(|_| Error::AuthenticationFailed)?;
        let server_public_key = key32(&result.server_s_pk.serialize(), "server_public_key")?;
        if !bool::from(server_public_key.ct_eq(&announced)) {
            return Err(Error::ServerKeyMismatch);
        }
        let ke3 = result.message.serialize().to_vec();
        let th = transcript_hash(
            &challenge.login_id,
            &self.ke1,
            challenge.ke2.as_slice(),
            &ke3,
        );
        let key = ConfirmationKey::derive(&challenge.login_id, th, &result.session_key)?;
        Ok(ClientLoginFinished {
            message: LoginFinish {
                login_id: challenge.login_id.clone(),
                ke3: Bytes(ke3),
                device_key_id: None,
                device_signature: None,
            },
            confirmation: ExpectLoginConfirmation { key },
            export_key: export_key(&result.export_key),
            server_public_key,
        })
    }
}

/// Client state waiting for the server's [`LoginConfirmation`].
pub struct ExpectLoginConfirmation {
    key: ConfirmationKey,
}

impl ExpectLoginConfirmation {
    /// Opens the confirmation and returns its payload. Failure means the server did not
    /// complete this exchange: report `failed` and discard whatever it sent.
    pub fn open(self, msg: &LoginConfirmation) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.key.open(msg)
    }
}
