//! Device keys as a login factor (seed 003: "something you have").
//!
//! A user registers Ed25519 device public keys (factor kind `device_key`, slot = the device
//! id; the name and key are sealed under the field key with the user's id as associated data,
//! so a database writer without the master key cannot add a device) and may require one at
//! login (factor kind `device_required`). Then an OPAQUE login only succeeds if its
//! `LoginFinish` names a registered device (`device_key_id`) and carries that key's signature
//! over the login's challenge ([`sesame_proto::device`]); otherwise it fails with the same
//! `authentication_failed` as a wrong password, audited as `login.failure` with reason
//! `device_key`. A password login (`POST /api/login`, TCP `AUTH`) cannot carry such a
//! signature, so it always fails for these users (reason `method=pwd device_key`).
//!
//! The requirement cannot be turned on without a device (400 `no_device_key`), and the last
//! device cannot be removed while it is on (409 `device_required`), so a user cannot lock
//! themselves out by mistake.
//!
//! Audit events: `device.added`, `device.removed`, `device.required` (reason `on`/`off`).

use serde::{Deserialize, Serialize};
use sesame_proto::b64;
use sesame_proto::device::{is_valid_device_key, verify_device_login, DEVICE_PUBLIC_KEY_LEN};
use sesame_proto::messages::LoginFinish;
use uuid::Uuid;

use super::{Authenticated, RequestContext, Sesame};
use crate::error::{ApiError, InputError};
use crate::store::{FactorKind, Slot};
use crate::store::{FactorRecord, UserRecord};

pub use sesame_api::messaging::DeviceList;
pub use sesame_api::messaging::DeviceView;

/// Factor kind of a registered device key (slot: the device id).
pub const KIND_DEVICE_KEY: FactorKind = FactorKind::DeviceKey;
/// Factor kind of the "device key required at login" switch.
pub const KIND_DEVICE_REQUIRED: FactorKind = FactorKind::DeviceRequired;
/// Most devices one user may register.
pub const MAX_DEVICES: usize = 20;
/// Longest device name, characters.
pub const MAX_DEVICE_NAME_CHARS: usize = 64;

const DEVICE_FIELD: &str = "factor:device_key";

/// What is sealed in a `device_key` factor.
#[derive(Serialize, Deserialize)]
struct Sealed {
    name: String,
    public_key: String,
}

fn row_id(user: Uuid, slot: &str) -> Vec<u8> {
    let mut id = user.as_bytes().to_vec();
    id.extend_from_slice(slot.as_bytes());
    id
}

impl Sesame {
    fn open_device(&self, f: &FactorRecord) -> Result<(DeviceView, [u8; 32]), ApiError> {
        let corrupt = || {
            ApiError::internal(format!(
                "device {} of {} does not open",
                f.slot.stored(),
                f.user_id
            ))
        };
        let sealed: Sealed = self
            .inner
            .secrets
            .fields
            .open(DEVICE_FIELD, &row_id(f.user_id, &f.slot.stored()), &f.value)
            .and_then(|json| serde_json::from_str(&json).ok())
            .ok_or_else(corrupt)?;
        let key = b64::decode(&sealed.public_key)
            .and_then(|k| <[u8; DEVICE_PUBLIC_KEY_LEN]>::try_from(k).ok())
            .ok_or_else(corrupt)?;
        Ok((
            DeviceView {
                id: f.slot.stored(),
                name: sealed.name,
                public_key: sealed.public_key,
                created_at: f.created_at,
            },
            key,
        ))
    }

    pub(super) async fn device_required(&self, user: Uuid) -> Result<bool, ApiError> {
        Ok(self
            .inner
            .store
            .factor(user, KIND_DEVICE_REQUIRED, &Slot::Only)
            .await?
            .is_some())
    }

    /// Registers a device key; returns its id.
    pub async fn add_device(
        &self,
        who: &Authenticated,
        name: &str,
        public_key: &str,
        ctx: &RequestContext,
    ) -> Result<String, ApiError> {
        // Adding, removing or requiring a device changes how the account logs in: it needs a
        // fresh authentication, like the other protected operations.
        self.require_fresh(who).await?;
        let name = name.trim();
        if name.is_empty()
            || name.chars().count() > MAX_DEVICE_NAME_CHARS
            || name.chars().any(char::is_control)
        {
            return Err(ApiError::new(
                InputError::InvalidDeviceName,
                format!("Device names are 1 to {MAX_DEVICE_NAME_CHARS} printable characters."),
            ));
        }
        if !b64::decode(public_key).is_some_and(|k| is_valid_device_key(&k)) {
            return Err(ApiError::new(
                InputError::InvalidDeviceKey,
                "The public key must be a valid Ed25519 key (32 bytes, base64url).",
            ));
        }
        let existing = self
            .inner
            .store
            .factors(who.user_id, KIND_DEVICE_KEY)
            .await?;
        if existing.len() >= MAX_DEVICES {
            return Err(ApiError::new(
                InputError::TooManyDevices,
                format!("At most {MAX_DEVICES} devices; remove one first."),
            ));
        }
        let id = Uuid::new_v4().to_string();
        let sealed = serde_json::to_string(&Sealed {
            name: name.to_owned(),
            public_key: public_key.to_owned(),
        })
        .map_err(ApiError::internal)?;
        let value =
            self.inner
                .secrets
                .fields
                .seal(DEVICE_FIELD, &row_id(who.user_id, &id), &sealed);
        self.inner
            .store
            .put_factor(&FactorRecord {
                user_id: who.user_id,
                kind: KIND_DEVICE_KEY,
                slot: Slot::Key(id.clone()),
                value,
                counter: 0,
                created_at: self.now_i64(),
                used_at: None,
            })
            .await?;
        self.audit(
            "device.added",
            Some(who.user_id),
            Some(format!("device={id}")),
            ctx,
        )
        .await;
        Ok(id)
    }

    /// The caller's devices and whether one is required at login.
    pub async fn devices(&self, who: &Authenticated) -> Result<DeviceList, ApiError> {
        let rows = self
            .inner
            .store
            .factors(who.user_id, KIND_DEVICE_KEY)
            .await?;
        let devices = rows
            .iter()
            .map(|f| self.open_device(f).map(|(view, _)| view))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(DeviceList {
            devices,
            required: self.device_required(who.user_id).await?,
        })
    }

    /// Removes one of the caller's devices; 404 `device_not_found`, 409 `device_required` for
    /// the last device while one is required.
    pub async fn delete_device(
        &self,
        who: &Authenticated,
        id: &str,
        ctx: &RequestContext,
    ) -> Result<(), ApiError> {
        self.require_fresh(who).await?;
        let store = &self.inner.store;
        if store
            .factor(who.user_id, KIND_DEVICE_KEY, &Slot::Key(id.to_owned()))
            .await?
            .is_none()
        {
            return Err(ApiError::new(InputError::DeviceNotFound, "No such device."));
        }
        if self.device_required(who.user_id).await?
            && store.factors(who.user_id, KIND_DEVICE_KEY).await?.len() <= 1
        {
            return Err(ApiError::new(
                InputError::DeviceRequired,
                "Logins require a device key: turn that off before removing the last device.",
            ));
        }
        store
            .delete_factors(
                who.user_id,
                KIND_DEVICE_KEY,
                Some(&Slot::Key(id.to_owned())),
            )
            .await?;
        self.audit(
            "device.removed",
            Some(who.user_id),
            Some(format!("device={id}")),
            ctx,
        )
        .await;
        Ok(())
    }

    /// Turns the device-key requirement on or off; 400 `no_device_key` to turn it on without a
    /// registered device.
    pub async fn set_device_required(
        &self,
        who: &Authenticated,
        required: bool,
        ctx: &RequestContext,
    ) -> Result<(), ApiError> {
        self.require_fresh(who).await?;
        let store = &self.inner.store;
        if required {
            if store
                .factors(who.user_id, KIND_DEVICE_KEY)
                .await?
                .is_empty()
            {
                return Err(ApiError::new(
                    InputError::NoDeviceKey,
                    "Register a device key (POST /api/devices) before requiring one.",
                ));
            }
            store
                .put_factor(&FactorRecord {
                    user_id: who.user_id,
                    kind: KIND_DEVICE_REQUIRED,
                    slot: Slot::Only,
                    value: b"1".to_vec(),
                    counter: 0,
                    created_at: self.now_i64(),
                    used_at: None,
                })
                .await?;
        } else {
            store
                .delete_factors(who.user_id, KIND_DEVICE_REQUIRED, None)
                .await?;
        }
        let state = if required { "on" } else { "off" };
        self.audit(
            "device.required",
            Some(who.user_id),
            Some(state.into()),
            ctx,
        )
        .await;
        Ok(())
    }

    /// At OPAQUE login, once the password proof verified: if `user` requires a device key,
    /// checks that `msg` carries a valid signature by one of theirs over this login's
    /// challenge (`login_id`, `ke2`). Fails like a wrong password otherwise.
    pub(crate) async fn check_device_login(
        &self,
        user: &UserRecord,
        msg: &LoginFinish,
        ke2: &[u8],
        ctx: &RequestContext,
    ) -> Result<(), ApiError> {
        if !self.device_required(user.id).await? {
            return Ok(());
        }
        let ok = match (&msg.device_key_id, &msg.device_signature) {
            (Some(id), Some(sig)) if id.len() <= 64 => {
                match self
                    .inner
                    .store
                    .factor(user.id, KIND_DEVICE_KEY, &Slot::Key(id.to_owned()))
                    .await?
                {
                    Some(f) => {
                        let (_, key) = self.open_device(&f)?;
                        verify_device_login(&key, &msg.login_id, ke2, sig.as_slice())
                    }
                    None => false,
                }
            }
            _ => false,
        };
        if ok {
            return Ok(());
        }
        self.audit(
            "login.failure",
            Some(user.id),
            Some("device_key".into()),
            ctx,
        )
        .await;
        Err(ApiError::authentication_failed())
    }

    /// At password login, once the password verified: users who require a device key cannot
    /// log in this way (a password login carries no device signature).
    pub(crate) async fn refuse_password_if_device_required(
        &self,
        user: &UserRecord,
        ctx: &RequestContext,
    ) -> Result<(), ApiError> {
        if !self.device_required(user.id).await? {
            return Ok(());
        }
        self.audit(
            "login.failure",
            Some(user.id),
            Some("method=pwd device_key".into()),
            ctx,
        )
        .await;
        Err(ApiError::authentication_failed())
    }
}
