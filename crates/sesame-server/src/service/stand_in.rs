//! What the service reads in place of an account that does not exist, so that the routes
//! that take a username do the same work for unknown names as for known ones (timing-safe
//! account lookups, docs/security.md): the same store lookups, the same parsing and the same
//! cryptography. Made once at start-up; never stored and never matching anything.

use sesame_proto::CredentialRecord;
use uuid::Uuid;

use crate::secrets::ServerSecrets;

/// The row id stand-in values are bound to: the nil UUID, which no account has.
pub(crate) const STAND_IN_ID: Uuid = Uuid::nil();

/// Stand-ins for an unknown account's stored fields.
pub(crate) struct StandIn {
    /// The stored form of a credential record nobody can log in with
    /// ([`CredentialRecord::stand_in_bytes`]).
    pub(crate) record: Vec<u8>,
    /// An email address sealed for [`STAND_IN_ID`], opened where a real account's address
    /// would be (it is never mailed).
    pub(crate) email: Vec<u8>,
}

impl StandIn {
    /// Fresh stand-ins under this server's keys.
    pub(crate) fn new(secrets: &ServerSecrets, rng: &crate::rng::Rng) -> StandIn {
        StandIn {
            record: CredentialRecord::stand_in_bytes(&mut rng.handle(), &secrets.opaque),
            email: secrets
                .fields
                .seal("email", STAND_IN_ID.as_bytes(), "nobody@stand-in.invalid"),
        }
    }
}
