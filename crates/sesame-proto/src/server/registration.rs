//! Client-side registration, server half: answer the OPRF request, accept the record.

use opaque_ke::{RegistrationRequest, RegistrationUpload, ServerRegistration};

use crate::b64::Bytes;
use crate::error::Error;
use crate::messages::{RegistrationChallenge, RegistrationFinish, RegistrationStart};
use crate::policy::Username;
use crate::record::CredentialRecord;
use crate::server::ServerKeys;
use crate::suite::{KsfParams, KsfPolicy, Suite};

/// Answers a [`RegistrationStart`] for the canonical `username`, asking the client to stretch
/// with `ksf`.
///
/// Stateless: the OPRF key is derived from the server's seed and the username, so nothing has
/// to be kept between this call and [`registration_record`].
pub fn registration_challenge(
    keys: &ServerKeys,
    username: &Username,
    msg: &RegistrationStart,
    ksf: KsfParams,
) -> Result<RegistrationChallenge, Error> {
    let request = RegistrationRequest::<Suite>::deserialize(msg.registration_request.as_slice())
        .map_err(|_| Error::InvalidMessage("registration_request"))?;
    let result =
        ServerRegistration::<Suite>::start(&keys.setup, request, username.as_str().as_bytes())
            .map_err(|_| Error::InvalidMessage("registration_request"))?;
    Ok(RegistrationChallenge {
        registration_response: Bytes(result.message.serialize().to_vec()),
        key_stretching: ksf.into(),
        server_public_key: Bytes(keys.public_key().to_vec()),
    })
}

/// Turns a [`RegistrationFinish`] into the record to store, refusing key-stretching
/// parameters outside `policy`.
pub fn registration_record(
    msg: &RegistrationFinish,
    policy: &KsfPolicy,
) -> Result<CredentialRecord, Error> {
    let ksf = msg.key_stretching.params();
    policy.check(&ksf)?;
    let upload = RegistrationUpload::<Suite>::deserialize(msg.registration_record.as_slice())
        .map_err(|_| Error::InvalidMessage("registration_record"))?;
    Ok(CredentialRecord {
        ksf,
        upload: ServerRegistration::finish(upload),
    })
}
