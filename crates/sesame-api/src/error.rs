//! Every error code of the API, with its HTTP status, defined once.
//!
//! [`ErrorCode`] groups the codes by who is at fault: the caller's input ([`InputError`]), the
//! caller's credentials or standing ([`CredentialError`]), a limit the caller ran into
//! ([`LimitError`]), the server ([`ServerError`]), and the framing of the connection-oriented
//! transports ([`ConnectionError`], WebSocket and TCP only). The table at the bottom of this
//! file is the only place a code string or a status number is written: the server renders
//! errors from it on every transport, the client parses them back with
//! [`ErrorCode::from_wire`], and the OpenAPI document and docs/api.md §4 are checked against
//! it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Declares the groups and the one table (code string and HTTP status per variant).
macro_rules! error_table {
    ($(
        $(#[$gdoc:meta])*
        $group:ident($genum:ident) {
            $(
                $(#[$vdoc:meta])*
                $variant:ident => ($code:literal, $status:literal),
            )*
        }
    )*) => {
        $(
            $(#[$gdoc])*
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
            #[non_exhaustive]
            pub enum $genum {
                $( $(#[$vdoc])* $variant, )*
            }

            impl $genum {
                /// Every variant of the group, in table order.
                pub const ALL: &'static [$genum] = &[$($genum::$variant),*];

                /// The stable, machine-readable code sent on every transport.
                pub const fn as_str(self) -> &'static str {
                    match self { $($genum::$variant => $code,)* }
                }

                /// The HTTP status the code is answered with.
                pub const fn status(self) -> u16 {
                    match self { $($genum::$variant => $status,)* }
                }
            }

            impl From<$genum> for ErrorCode {
                fn from(e: $genum) -> Self {
                    ErrorCode::$group(e)
                }
            }
        )*

        /// An error answer's code, grouped by who is at fault.
        ///
        /// Branch on the variant, never on the code string or the status: both are derived
        /// from the variant ([`ErrorCode::as_str`], [`ErrorCode::status`]).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $( $(#[$gdoc])* $group($genum), )*
        }

        impl ErrorCode {
            /// Every code, group by group, in table order.
            pub fn all() -> impl Iterator<Item = ErrorCode> {
                std::iter::empty()
                    $( .chain($genum::ALL.iter().copied().map(ErrorCode::$group)) )*
            }

            /// The stable, machine-readable code sent on every transport.
            pub const fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$group(e) => e.as_str(),)* }
            }

            /// The HTTP status the code is answered with (connection errors, which only
            /// the WebSocket and TCP transports send, have a nominal 4xx).
            pub const fn status(self) -> u16 {
                match self { $(ErrorCode::$group(e) => e.status(),)* }
            }
        }
    };
}

impl ErrorCode {
    /// The variant a code received on the wire stands for. `status` (when the code arrived
    /// over HTTP) tells apart the one code used with two statuses (`invalid_code`: 401 for
    /// second factors, 400 for emailed verification codes). Unknown codes (from a newer
    /// server) give `None`. Without a status the meaning used by the WebSocket and TCP
    /// transports is taken.
    pub fn from_wire(code: &str, status: Option<u16>) -> Option<ErrorCode> {
        let matching: Vec<ErrorCode> = ErrorCode::all().filter(|c| c.as_str() == code).collect();
        match status {
            Some(status) => matching
                .iter()
                .copied()
                .find(|c| c.status() == status)
                .or_else(|| matching.first().copied()),
            // WebSocket and TCP only ever send a code's later meaning (`invalid_code` there is
            // always a second factor's).
            None => matching.last().copied(),
        }
    }

    /// Whether the caller should retry later (throttling and temporary server trouble).
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::Limit(_)
                | ErrorCode::Server(ServerError::Unavailable | ServerError::ShuttingDown)
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

error_table! {
    /// The caller sent something the API does not accept.
    Input(InputError) {
        /// The body is not JSON.
        InvalidJson => ("invalid_json", 400),
        /// Wrong shape, missing or unknown field, bad base64url, a JSON value that is not an
        /// object, a bad path or query parameter; TCP: the wrong number of fields.
        InvalidRequest => ("invalid_request", 400),
        /// The body was not sent as `Content-Type: application/json`.
        UnsupportedMediaType => ("unsupported_media_type", 415),
        /// The body is over 64 KiB.
        PayloadTooLarge => ("payload_too_large", 413),
        /// There is no such route.
        NotFound => ("not_found", 404),
        /// The route exists, not with this method.
        MethodNotAllowed => ("method_not_allowed", 405),
        /// The username is under 3 characters after normalisation.
        UsernameTooShort => ("username_too_short", 400),
        /// The username is over 32 characters after normalisation, or over 256 bytes raw.
        UsernameTooLong => ("username_too_long", 400),
        /// The username has a character outside `a-z 0-9 . _ -` after normalisation.
        UsernameInvalidCharacter => ("username_invalid_character", 400),
        /// The username starts with `.`, `_` or `-`.
        UsernameInvalidStart => ("username_invalid_start", 400),
        /// The username is reserved.
        UsernameReserved => ("username_reserved", 400),
        /// The password is under 8 characters.
        PasswordTooShort => ("password_too_short", 400),
        /// The password is over 128 characters.
        PasswordTooLong => ("password_too_long", 400),
        /// The password contains the username.
        PasswordContainsUsername => ("password_contains_username", 400),
        /// The password is on the common-password list.
        PasswordCommon => ("password_common", 400),
        /// The name already has an account.
        UsernameTaken => ("username_taken", 409),
        /// A binary protocol field has the wrong size or is not a valid element (WebSocket:
        /// also a malformed frame; TCP: also bad base64url or non-integer parameters).
        InvalidMessage => ("invalid_message", 400),
        /// The Argon2id parameters are outside the policy.
        KeyStretchingRejected => ("key_stretching_rejected", 400),
        /// The `login_id` is unknown, already used, expired, or not this login's.
        UnknownLogin => ("unknown_login", 400),
        /// The login state is past its expiry.
        LoginExpired => ("login_expired", 400),
        /// Not an acceptable email address.
        EmailInvalid => ("email_invalid", 400),
        /// Another account has this email address.
        EmailTaken => ("email_taken", 409),
        /// The emailed verification code is wrong.
        VerificationCodeInvalid => ("invalid_code", 400),
        /// There is no live verification code (expired, burnt, never sent; unknown or banned
        /// account).
        CodeExpired => ("code_expired", 400),
        /// The account is already active.
        AlreadyVerified => ("already_verified", 400),
        /// There is no pending TOTP secret to confirm.
        TotpNotPending => ("totp_not_pending", 400),
        /// The username is not the signed-in user's.
        UsernameMismatch => ("username_mismatch", 400),
        /// A profile field breaks its rule.
        ProfileInvalid => ("profile_invalid", 400),
        /// Security questions or answers break a rule.
        SecurityQuestionsInvalid => ("security_questions_invalid", 400),
        /// The `recovery_id` is unknown, used or expired.
        RecoveryExpired => ("recovery_expired", 400),
        /// A sealed body does not open.
        EnvelopeInvalid => ("envelope_invalid", 400),
        /// A sealed body names no key to seal the answer to.
        EnvelopeMissingClientKey => ("envelope_missing_client_key", 400),
        /// Not one of the caller's live sessions.
        SessionNotFound => ("session_not_found", 404),
        /// No such user (the admin API and the operator commands).
        UserNotFound => ("user_not_found", 404),
        /// There is no user with that name to send to.
        UnknownRecipient => ("unknown_recipient", 404),
        /// The message's ciphertext is over the relay's limit.
        MessageTooLarge => ("message_too_large", 413),
        /// One relay acknowledgement carries more message ids than the relay takes at once
        /// (`sesame_proto::e2e::MAX_ACK_IDS`); nothing of it was acknowledged.
        TooManyAcks => ("too_many_acks", 413),
        /// The user has published no identity keys.
        KeysNotFound => ("keys_not_found", 404),
        /// The published identity does not verify.
        InvalidIdentity => ("invalid_identity", 400),
        /// No key backup is stored.
        BackupNotFound => ("backup_not_found", 404),
        /// The key backup is over its limit.
        BackupTooLarge => ("backup_too_large", 413),
        /// The key backup is empty or not base64url.
        InvalidBackup => ("invalid_backup", 400),
        /// A device name is not 1–64 printable characters.
        InvalidDeviceName => ("invalid_device_name", 400),
        /// A device key is not 32 bytes or is a weak key.
        InvalidDeviceKey => ("invalid_device_key", 400),
        /// The account has the most devices it may have.
        TooManyDevices => ("too_many_devices", 409),
        /// No such device.
        DeviceNotFound => ("device_not_found", 404),
        /// The last device cannot go while the account requires a device key.
        DeviceRequired => ("device_required", 409),
        /// A device key cannot be required before one is registered.
        NoDeviceKey => ("no_device_key", 400),
        /// A passkey name is not 1–64 printable characters.
        InvalidPasskeyName => ("invalid_passkey_name", 400),
        /// A passkey registration does not verify (wrong origin or relying party, a bad
        /// attestation, a malformed credential, a credential already registered).
        PasskeyInvalid => ("passkey_invalid", 400),
        /// The passkey ceremony is unknown, used, expired, or not the caller's.
        PasskeyCeremonyExpired => ("passkey_ceremony_expired", 400),
        /// The account has the most passkeys it may have.
        TooManyPasskeys => ("too_many_passkeys", 409),
        /// No such passkey.
        PasskeyNotFound => ("passkey_not_found", 404),
        /// The last passkey cannot go while the account requires a phishing-resistant factor.
        PasskeyRequired => ("passkey_required", 409),
        /// The account has no passkey (to sign in with, or to require).
        NoPasskey => ("no_passkey", 400),
        /// An admin may not ban or delete their own account through the admin API.
        CannotTargetSelf => ("cannot_target_self", 400),
    }

    /// The caller's credentials or standing do not allow what it asked.
    Credentials(CredentialError) {
        /// Wrong password, unknown user or forged proof (one code for all).
        AuthenticationFailed => ("authentication_failed", 401),
        /// Missing, invalid or expired access token, or its session ended.
        Unauthorized => ("unauthorized", 401),
        /// The session token is unknown, ended or expired, or the account is banned.
        SessionInvalid => ("session_invalid", 401),
        /// A wrong, expired or already used TOTP or backup code.
        InvalidCode => ("invalid_code", 401),
        /// The second-factor ticket is unknown, used, expired or burnt.
        MfaExpired => ("mfa_expired", 401),
        /// The recovery proof does not check out (also for unknown users).
        RecoveryFailed => ("recovery_failed", 401),
        /// Correct credentials, banned account.
        AccountBanned => ("account_banned", 403),
        /// Correct credentials, email not verified yet.
        AccountPending => ("account_pending", 403),
        /// The session is not fresh: re-authenticate first.
        ReauthenticationRequired => ("reauthentication_required", 403),
        /// The TCP password verbs are disabled on this server.
        PasswordVerbsDisabled => ("password_verbs_disabled", 403),
        /// A relay command before `SESSION` on TCP.
        NotAuthenticated => ("not_authenticated", 401),
        /// A request carrying the browser session cookie came from another origin (a
        /// cross-site request forgery, refused whatever it asked).
        CrossSiteRequest => ("cross_site_request", 403),
        /// The passkey's assertion at the second step does not verify: another credential, a
        /// wrong origin, a replayed or cloned authenticator.
        PasskeyRejected => ("passkey_rejected", 401),
        /// The account accepts only a phishing-resistant second factor: a passkey (or a backup
        /// code), not an authenticator code.
        PhishingResistantRequired => ("phishing_resistant_required", 403),
        /// A valid session whose account may not do this (the admin API for a non-admin).
        Forbidden => ("forbidden", 403),
    }

    /// The caller ran into a limit; retrying later may work.
    Limit(LimitError) {
        /// The per-account or per-address limit; `Retry-After` says when.
        TooManyAttempts => ("too_many_attempts", 429),
        /// The relay's per-sender message rate; `Retry-After` says when.
        RateLimited => ("rate_limited", 429),
        /// The recipient's mailbox is full.
        MailboxFull => ("mailbox_full", 409),
        /// The Argon2 pool is saturated; `Retry-After: 1`.
        Busy => ("busy", 503),
        /// The server holds as many connections as it may (in total or from this address);
        /// the connection is closed after this answer.
        TooManyConnections => ("too_many_connections", 503),
    }

    /// The server could not do its part.
    Server(ServerError) {
        /// A server fault (logged on the server; the message says nothing internal).
        Internal => ("internal", 500),
        /// A backing store does not answer; `Retry-After: 5`.
        Unavailable => ("unavailable", 503),
        /// The server is shutting down (relay connections).
        ShuttingDown => ("shutting_down", 503),
    }

    /// The framing of a WebSocket or TCP connection (never an HTTP answer).
    Connection(ConnectionError) {
        /// No message within the step timeout.
        Timeout => ("timeout", 408),
        /// The client closed the connection.
        Closed => ("closed", 400),
        /// A WebSocket protocol error.
        InvalidFrame => ("invalid_frame", 400),
        /// A frame out of order.
        UnexpectedMessage => ("unexpected_message", 400),
        /// A TCP command before a login on the connection.
        NoSession => ("no_session", 400),
        /// A TCP verb the server does not know.
        UnknownVerb => ("unknown_verb", 400),
        /// A TCP line over the limit.
        LineTooLong => ("line_too_long", 413),
        /// A TCP line or WebSocket text frame that is not UTF-8 (WebSocket close 1007).
        InvalidUtf8 => ("invalid_utf8", 400),
        /// A WebSocket message over the frame limit (WebSocket close 1009).
        MessageTooBig => ("message_too_big", 413),
        /// The connection was idle for too long.
        IdleTimeout => ("idle_timeout", 408),
        /// The relay connection's session ended.
        SessionEnded => ("session_ended", 401),
        /// The relay connection did not read its deliveries fast enough.
        SlowConsumer => ("slow_consumer", 429),
    }
}

impl From<sesame_proto::policy::UsernameError> for InputError {
    fn from(e: sesame_proto::policy::UsernameError) -> Self {
        use sesame_proto::policy::UsernameError as U;
        match e {
            U::TooShort => InputError::UsernameTooShort,
            U::TooLong => InputError::UsernameTooLong,
            U::InvalidCharacter(_) => InputError::UsernameInvalidCharacter,
            U::InvalidStart => InputError::UsernameInvalidStart,
            // `Reserved`, and any rule a later policy adds, is refused as reserved.
            _ => InputError::UsernameReserved,
        }
    }
}

impl From<sesame_proto::policy::PasswordError> for InputError {
    fn from(e: sesame_proto::policy::PasswordError) -> Self {
        use sesame_proto::policy::PasswordError as P;
        match e {
            P::TooShort => InputError::PasswordTooShort,
            P::TooLong => InputError::PasswordTooLong,
            P::ContainsUsername => InputError::PasswordContainsUsername,
            // `Common`, and any rule a later policy adds, is refused as common.
            _ => InputError::PasswordCommon,
        }
    }
}

/// The body of every HTTP error answer: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong: the inside of [`ErrorBody`], of the WebSocket login's `error` frames and of
/// the relay's `error` frames. One type for all three: it is sesame-proto's relay
/// [`FrameError`](sesame_proto::e2e::FrameError), which the relay frames embed.
pub use sesame_proto::e2e::FrameError as ErrorDetail;

impl ErrorCode {
    /// The detail of this code with `message`.
    pub fn detail(self, message: impl Into<String>) -> ErrorDetail {
        ErrorDetail {
            code: self.as_str().to_owned(),
            message: message.into(),
            retry_after: None,
        }
    }

    /// The typed code of `detail`, when this build knows it (see [`ErrorCode::from_wire`]).
    pub fn of(detail: &ErrorDetail, status: Option<u16>) -> Option<ErrorCode> {
        ErrorCode::from_wire(&detail.code, status)
    }
}

#[cfg(test)]
mod tests;
