//! The frames of the WebSocket login (`GET /auth/login`): JSON text frames tagged by `type`.
//!
//! ```text
//! client login_start        {username, ke1}
//! server login_challenge    {login_id, ke2, key_stretching, server_public_key, expires_in}
//! client login_finish       {login_id, ke3, device_key_id?, device_signature?}
//! server login_confirmation {login_id, sealed}
//! client login_ack          {login_id, status: success | failed, reason?}
//! server login_result       {status: accepted | revoked | second_factor_required}
//! (second factor)
//! client second_factor      {mfa_token, code}
//! server session            {...SessionIssued}        (or an `invalid_code` error: retry)
//! server error              {error: {code, message, retry_after?}}   (then close)
//! ```

use serde::{Deserialize, Serialize};
use sesame_proto::messages::{
    LoginAck, LoginChallenge, LoginConfirmation, LoginFinish, LoginStart,
};

use crate::auth::SecondFactorRequest;
use crate::error::ErrorDetail;
use crate::sessions::SessionIssued;

/// The most bytes of one frame, either way.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// How long the server waits for each client step, in seconds.
pub const STEP_TIMEOUT_SECS: u64 = 30;

/// A frame from the client.
#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(clippy::enum_variant_names)] // the variant names are the wire `type` values
#[allow(clippy::large_enum_variant)] // one frame at a time
pub enum LoginClientFrame {
    /// Step 1: the username and KE1.
    LoginStart(LoginStart),
    /// Step 3: KE3 (and the device signature when the account requires one).
    LoginFinish(LoginFinish),
    /// Step 5: the client's verdict on the confirmation.
    LoginAck(LoginAck),
    /// The second factor, when `login_result` asked for it.
    SecondFactor(SecondFactorRequest),
}

/// What `login_result` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginResultStatus {
    /// The session stands.
    Accepted,
    /// The client refused the confirmation; the session was revoked.
    Revoked,
    /// The password was right; send `second_factor` next.
    SecondFactorRequired,
}

/// A frame from the server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(clippy::enum_variant_names)] // the variant names are the wire `type` values
#[allow(clippy::large_enum_variant)] // one frame at a time
pub enum LoginServerFrame {
    /// Step 2: the challenge.
    LoginChallenge(LoginChallenge),
    /// Step 4: the confirmation sealed under the session key.
    LoginConfirmation(LoginConfirmation),
    /// Step 6: the outcome of the client's `login_ack`.
    LoginResult {
        /// The outcome.
        status: LoginResultStatus,
    },
    /// The session, after a second factor.
    Session(SessionIssued),
    /// Something went wrong; the server closes after it (except `invalid_code`).
    Error {
        /// What went wrong.
        error: ErrorDetail,
    },
}
