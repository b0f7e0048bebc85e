//! Every HTTP route with the error codes it can answer: the table the server's OpenAPI
//! document is generated from, and that the server checks its answers against.
//!
//! Each route lists the codes of its own logic; the codes every route of a kind shares are
//! added by [`Route::errors`]: a JSON body ([`BODY_ERRORS`]), a bearer token
//! ([`CredentialError::Unauthorized`]), throttling, a fresh authentication, and
//! [`ServerError::Internal`] everywhere.

use crate::error::{
    CredentialError as C, ErrorCode, InputError as I, LimitError as L, ServerError as S,
};

/// What a route needs of its caller and which codes it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// `GET`, `POST`, `PUT` or `DELETE`.
    pub method: &'static str,
    /// The path template, as in the OpenAPI document (`/api/sessions/{id}`).
    pub path: &'static str,
    /// Whether the route takes a JSON body.
    pub body: bool,
    /// Whether the route needs `Authorization: Bearer <access token>`.
    pub auth: bool,
    /// Whether the route is throttled (per account or per address).
    pub throttled: bool,
    /// Whether the route needs a fresh authentication (docs/api.md §11.1).
    pub fresh: bool,
    /// The codes of the route's own logic.
    pub own: &'static [ErrorCode],
}

/// The codes of every route with a JSON body (and, on `/api/*`, of the sealed envelope).
pub const BODY_ERRORS: &[ErrorCode] = &[
    ErrorCode::Input(I::InvalidJson),
    ErrorCode::Input(I::InvalidRequest),
    ErrorCode::Input(I::UnsupportedMediaType),
    ErrorCode::Input(I::PayloadTooLarge),
    ErrorCode::Input(I::EnvelopeInvalid),
    ErrorCode::Input(I::EnvelopeMissingClientKey),
];

impl Route {
    /// Every code the route can answer, each once, in table order.
    pub fn errors(&self) -> Vec<ErrorCode> {
        let mut all: Vec<ErrorCode> = Vec::new();
        if self.body {
            all.extend_from_slice(BODY_ERRORS);
        }
        if self.auth {
            all.push(C::Unauthorized.into());
        }
        if self.fresh {
            all.push(C::ReauthenticationRequired.into());
        }
        if self.throttled {
            all.push(L::TooManyAttempts.into());
        }
        if self.throttled || self.fresh {
            all.push(S::Unavailable.into());
        }
        all.extend_from_slice(self.own);
        all.push(S::Internal.into());
        let mut seen = Vec::with_capacity(all.len());
        for code in all {
            if !seen.contains(&code) {
                seen.push(code);
            }
        }
        seen.sort();
        seen
    }

    /// The statuses of [`Route::errors`], each once, ascending.
    pub fn error_statuses(&self) -> Vec<u16> {
        let mut statuses: Vec<u16> = self.errors().iter().map(|c| c.status()).collect();
        statuses.sort_unstable();
        statuses.dedup();
        statuses
    }
}

/// The codes any request may get whatever its route: a path no route has, a method the path
/// does not take, and a connection over the server's caps (answered before any routing).
pub const FALLBACK_ERRORS: &[ErrorCode] = &[
    ErrorCode::Input(I::NotFound),
    ErrorCode::Input(I::MethodNotAllowed),
    ErrorCode::Limit(L::TooManyConnections),
];

/// The route `method path`, if the table has it.
pub fn find(method: &str, path: &str) -> Option<&'static Route> {
    ROUTES
        .iter()
        .find(|r| r.method.eq_ignore_ascii_case(method) && r.path == path)
}

const fn route(method: &'static str, path: &'static str, own: &'static [ErrorCode]) -> Route {
    Route {
        method,
        path,
        body: false,
        auth: false,
        throttled: false,
        fresh: false,
        own,
    }
}

impl Route {
    const fn body(mut self) -> Self {
        self.body = true;
        self
    }
    const fn auth(mut self) -> Self {
        self.auth = true;
        self
    }
    const fn throttled(mut self) -> Self {
        self.throttled = true;
        self
    }
    const fn fresh(mut self) -> Self {
        self.fresh = true;
        self
    }
}

/// One code by its group alias (`I`, `C`, `L`, `S`) and variant.
macro_rules! code {
    (I :: $v:ident) => {
        ErrorCode::Input(I::$v)
    };
    (C :: $v:ident) => {
        ErrorCode::Credentials(C::$v)
    };
    (L :: $v:ident) => {
        ErrorCode::Limit(L::$v)
    };
    (S :: $v:ident) => {
        ErrorCode::Server(S::$v)
    };
}

/// A static list of codes.
macro_rules! codes {
    ($($group:ident :: $variant:ident),* $(,)?) => {
        &[$(code!($group :: $variant)),*]
    };
}

/// The username rules' codes.
const USERNAME: [ErrorCode; 5] = [
    ErrorCode::Input(I::UsernameTooShort),
    ErrorCode::Input(I::UsernameTooLong),
    ErrorCode::Input(I::UsernameInvalidCharacter),
    ErrorCode::Input(I::UsernameInvalidStart),
    ErrorCode::Input(I::UsernameReserved),
];

/// The password rules' codes.
const PASSWORD: [ErrorCode; 4] = [
    ErrorCode::Input(I::PasswordTooShort),
    ErrorCode::Input(I::PasswordTooLong),
    ErrorCode::Input(I::PasswordContainsUsername),
    ErrorCode::Input(I::PasswordCommon),
];

/// Joins fixed arrays of codes in a constant.
const fn join<const A: usize, const B: usize, const N: usize>(
    a: [ErrorCode; A],
    b: [ErrorCode; B],
) -> [ErrorCode; N] {
    let mut out = [ErrorCode::Server(S::Internal); N];
    let mut i = 0;
    while i < A {
        out[i] = a[i];
        i += 1;
    }
    while i < A + B {
        out[i] = b[i - A];
        i += 1;
    }
    out
}

const REGISTER: [ErrorCode; 13] = join(
    join::<5, 4, 9>(USERNAME, PASSWORD),
    [
        ErrorCode::Input(I::UsernameTaken),
        ErrorCode::Input(I::EmailInvalid),
        ErrorCode::Input(I::EmailTaken),
        ErrorCode::Limit(L::Busy),
    ],
);
const REGISTER_START: [ErrorCode; 7] = join(
    USERNAME,
    [
        ErrorCode::Input(I::UsernameTaken),
        ErrorCode::Input(I::InvalidMessage),
    ],
);
const REGISTER_FINISH: [ErrorCode; 13] = join(
    USERNAME,
    [
        ErrorCode::Input(I::UsernameTaken),
        ErrorCode::Input(I::InvalidMessage),
        ErrorCode::Input(I::KeyStretchingRejected),
        ErrorCode::Input(I::EmailInvalid),
        ErrorCode::Input(I::EmailTaken),
        ErrorCode::Input(I::InvalidIdentity),
        ErrorCode::Input(I::InvalidBackup),
        ErrorCode::Input(I::BackupTooLarge),
    ],
);
const VERIFY_EMAIL: [ErrorCode; 8] = join(
    USERNAME,
    [
        ErrorCode::Input(I::VerificationCodeInvalid),
        ErrorCode::Input(I::CodeExpired),
        ErrorCode::Input(I::AlreadyVerified),
    ],
);
const LOGIN_START: [ErrorCode; 6] = join(USERNAME, [ErrorCode::Input(I::InvalidMessage)]);
const LOGIN_PASSWORD: [ErrorCode; 10] = join(
    USERNAME,
    [
        ErrorCode::Input(I::PasswordTooLong),
        ErrorCode::Credentials(C::AuthenticationFailed),
        ErrorCode::Credentials(C::AccountBanned),
        ErrorCode::Credentials(C::AccountPending),
        ErrorCode::Limit(L::Busy),
    ],
);
const REAUTH_START: [ErrorCode; 7] = join(
    USERNAME,
    [
        ErrorCode::Input(I::UsernameMismatch),
        ErrorCode::Input(I::InvalidMessage),
    ],
);
const PASSWORD_FINISH: [ErrorCode; 8] = join(
    USERNAME,
    [
        ErrorCode::Input(I::UsernameMismatch),
        ErrorCode::Input(I::InvalidMessage),
        ErrorCode::Input(I::KeyStretchingRejected),
    ],
);
const PASSWORD_CHANGE: [ErrorCode; 5] = join(PASSWORD, [ErrorCode::Limit(L::Busy)]);
const RECOVER_FINISH: [ErrorCode; 9] = join(
    PASSWORD,
    [
        ErrorCode::Credentials(C::RecoveryFailed),
        ErrorCode::Input(I::RecoveryExpired),
        ErrorCode::Input(I::InvalidMessage),
        ErrorCode::Input(I::KeyStretchingRejected),
        ErrorCode::Limit(L::Busy),
    ],
);

/// An admin route about one user (or, for the audit log, filtered by one).
const ADMIN_ONE: [ErrorCode; 3] = [
    ErrorCode::Credentials(C::Forbidden),
    ErrorCode::Input(I::UserNotFound),
    ErrorCode::Input(I::InvalidRequest),
];
/// An admin action the admin may not take on their own account.
const ADMIN_NOT_SELF: [ErrorCode; 4] = join(ADMIN_ONE, [ErrorCode::Input(I::CannotTargetSelf)]);

/// Every HTTP route (the two WebSocket upgrades and the `/register`, `/api/getkey` aliases
/// excepted), with its errors.
pub const ROUTES: &[Route] = &[
    route("GET", "/healthz", &[]),
    route("GET", "/readyz", codes![S::Unavailable]),
    route("GET", "/.well-known/jwks.json", &[]),
    route("GET", "/.well-known/sesame", &[]),
    // The OpenID Connect provider (docs/oidc.md). Its protocol errors are OAuth's own
    // (`crate::oauth::OAuthErrorCode`, RFC 6749 §5.2), not codes of this table; only a server
    // failure answers the Sesame envelope.
    route("GET", "/.well-known/openid-configuration", &[]),
    route("GET", "/oauth2/authorize", &[]),
    route("POST", "/oauth2/token", &[]),
    route("GET", "/oauth2/userinfo", &[]),
    route("POST", "/oauth2/userinfo", &[]),
    route("POST", "/oauth2/revoke", &[]),
    route("POST", "/oauth2/introspect", &[]),
    route("GET", "/oauth2/logout", &[]),
    route("GET", "/api/oauth2/consent/{ticket}", codes![I::NotFound]).auth(),
    route("POST", "/api/oauth2/consent/{ticket}", codes![I::NotFound])
        .auth()
        .body(),
    route("GET", "/openapi.json", &[]),
    route("GET", "/metrics", &[]),
    route("GET", "/api/server-key", &[]),
    route("POST", "/api/register", &REGISTER).body().throttled(),
    route("POST", "/api/register/start", &REGISTER_START)
        .body()
        .throttled(),
    route("POST", "/api/register/finish", &REGISTER_FINISH)
        .body()
        .throttled(),
    route("POST", "/api/verify-email", &VERIFY_EMAIL)
        .body()
        .throttled(),
    route("POST", "/api/verify-email/resend", &USERNAME)
        .body()
        .throttled(),
    route("POST", "/api/login/start", &LOGIN_START)
        .body()
        .throttled(),
    route(
        "POST",
        "/api/login/finish",
        codes![
            I::InvalidMessage,
            I::UnknownLogin,
            I::LoginExpired,
            C::AuthenticationFailed,
            C::AccountBanned,
            C::AccountPending,
        ],
    )
    .body()
    .throttled(),
    route("POST", "/api/login", &LOGIN_PASSWORD)
        .body()
        .throttled(),
    route(
        "POST",
        "/api/login/second-factor",
        codes![
            C::InvalidCode,
            C::MfaExpired,
            C::AccountBanned,
            C::PhishingResistantRequired,
        ],
    )
    .body()
    .throttled(),
    // Passkeys (WebAuthn) at sign-in: the second factor, or alone (discoverable).
    route(
        "POST",
        "/api/login/passkey/start",
        codes![C::MfaExpired, I::NoPasskey],
    )
    .body()
    .throttled(),
    route(
        "POST",
        "/api/login/passkey/finish",
        codes![
            C::PasskeyRejected,
            C::MfaExpired,
            C::AccountBanned,
            I::PasskeyCeremonyExpired,
        ],
    )
    .body()
    .throttled(),
    route("POST", "/api/login/passkey/discoverable/start", &[]).throttled(),
    route(
        "POST",
        "/api/login/passkey/discoverable/finish",
        codes![
            C::AuthenticationFailed,
            C::AccountBanned,
            C::AccountPending,
            I::PasskeyCeremonyExpired,
        ],
    )
    .body()
    .throttled(),
    route("POST", "/api/session/refresh", codes![C::SessionInvalid]).body(),
    route("POST", "/api/logout", &[]).auth(),
    route("POST", "/api/logout-all", &[]).auth(),
    route("GET", "/api/sessions", &[]).auth(),
    route(
        "DELETE",
        "/api/sessions/{id}",
        codes![I::SessionNotFound, I::InvalidRequest],
    )
    .auth(),
    route("GET", "/api/me", &[]).auth(),
    route("PUT", "/api/me", codes![I::ProfileInvalid])
        .auth()
        .body(),
    route("DELETE", "/api/me", &[]).auth().fresh(),
    route("POST", "/api/generate-qr", &[]).auth().fresh(),
    route(
        "POST",
        "/api/enable-authenticator",
        codes![C::InvalidCode, I::TotpNotPending],
    )
    .auth()
    .body()
    .throttled()
    .fresh(),
    route("POST", "/api/2fa/totp/disable", codes![C::InvalidCode])
        .auth()
        .body()
        .throttled()
        .fresh(),
    route("POST", "/api/backup-codes/regenerate", &[])
        .auth()
        .fresh(),
    route(
        "POST",
        "/api/reauth",
        codes![I::PasswordTooLong, C::AuthenticationFailed, L::Busy],
    )
    .auth()
    .body()
    .throttled(),
    route("POST", "/api/reauth/start", &REAUTH_START)
        .auth()
        .body()
        .throttled(),
    route(
        "POST",
        "/api/reauth/finish",
        codes![
            I::InvalidMessage,
            I::UnknownLogin,
            I::LoginExpired,
            C::AuthenticationFailed,
        ],
    )
    .auth()
    .body()
    .throttled(),
    route("POST", "/api/password", &PASSWORD_CHANGE)
        .auth()
        .body()
        .fresh(),
    route("POST", "/api/password/start", &REAUTH_START)
        .auth()
        .body()
        .fresh(),
    route("POST", "/api/password/finish", &PASSWORD_FINISH)
        .auth()
        .body()
        .fresh(),
    route(
        "PUT",
        "/api/security-questions",
        codes![I::SecurityQuestionsInvalid, L::Busy],
    )
    .auth()
    .body()
    .fresh(),
    route("GET", "/api/security-questions/catalog", &[]),
    route(
        "POST",
        "/api/me/email",
        codes![I::EmailInvalid, L::TooManyAttempts],
    )
    .auth()
    .body()
    .fresh(),
    route(
        "POST",
        "/api/me/email/verify",
        codes![I::VerificationCodeInvalid, I::CodeExpired, I::EmailTaken],
    )
    .auth()
    .body(),
    route("DELETE", "/api/me/email", &[]).auth().fresh(),
    route("POST", "/api/recover/start", &LOGIN_START)
        .body()
        .throttled(),
    route("POST", "/api/recover/finish", &RECOVER_FINISH)
        .body()
        .throttled(),
    route("PUT", "/api/keys", codes![I::InvalidIdentity])
        .auth()
        .body(),
    route(
        "GET",
        "/api/keys/{username}",
        codes![I::KeysNotFound, I::InvalidRequest],
    )
    .auth(),
    route(
        "PUT",
        "/api/keys/backup",
        codes![I::InvalidBackup, I::BackupTooLarge],
    )
    .auth()
    .body(),
    route("GET", "/api/keys/backup", codes![I::BackupNotFound]).auth(),
    route("GET", "/api/devices", &[]).auth(),
    route(
        "POST",
        "/api/devices",
        codes![I::InvalidDeviceName, I::InvalidDeviceKey, I::TooManyDevices],
    )
    .auth()
    .body()
    .fresh(),
    route(
        "DELETE",
        "/api/devices/{id}",
        codes![I::DeviceNotFound, I::DeviceRequired, I::InvalidRequest],
    )
    .auth()
    .fresh(),
    route("PUT", "/api/2fa/device", codes![I::NoDeviceKey])
        .auth()
        .body()
        .fresh(),
    // Passkeys (WebAuthn): the caller's own.
    route("GET", "/api/passkeys", &[]).auth(),
    route("POST", "/api/passkeys/register/start", &[])
        .auth()
        .fresh(),
    route(
        "POST",
        "/api/passkeys/register/finish",
        codes![
            I::InvalidPasskeyName,
            I::PasskeyInvalid,
            I::PasskeyCeremonyExpired,
            I::TooManyPasskeys,
        ],
    )
    .auth()
    .body()
    .fresh(),
    route(
        "PUT",
        "/api/passkeys/{id}",
        codes![I::InvalidPasskeyName, I::PasskeyNotFound, I::InvalidRequest],
    )
    .auth()
    .body(),
    route(
        "DELETE",
        "/api/passkeys/{id}",
        codes![I::PasskeyNotFound, I::PasskeyRequired, I::InvalidRequest],
    )
    .auth()
    .fresh(),
    route("PUT", "/api/2fa/phishing-resistant", codes![I::NoPasskey])
        .auth()
        .body()
        .fresh(),
    // The browser app's cookie session (docs/web.md).
    route(
        "POST",
        "/web/session",
        codes![C::SessionInvalid, C::CrossSiteRequest],
    )
    .body(),
    route(
        "POST",
        "/web/refresh",
        codes![C::SessionInvalid, C::CrossSiteRequest],
    ),
    route("POST", "/web/logout", codes![C::CrossSiteRequest]),
    route("GET", "/api/me/activity", codes![I::InvalidRequest]).auth(),
    route(
        "GET",
        "/api/admin/users",
        codes![C::Forbidden, I::InvalidRequest],
    )
    .auth(),
    route("GET", "/api/admin/users/{name}", &ADMIN_ONE).auth(),
    route("DELETE", "/api/admin/users/{name}", &ADMIN_NOT_SELF)
        .auth()
        .fresh(),
    route("POST", "/api/admin/users/{name}/ban", &ADMIN_NOT_SELF)
        .auth()
        .fresh(),
    route("POST", "/api/admin/users/{name}/unban", &ADMIN_ONE).auth(),
    route(
        "POST",
        "/api/admin/users/{name}/revoke-sessions",
        &ADMIN_ONE,
    )
    .auth()
    .fresh(),
    route("POST", "/api/admin/users/{name}/reset-2fa", &ADMIN_ONE)
        .auth()
        .fresh(),
    route("GET", "/api/admin/audit", &ADMIN_ONE).auth(),
];

#[cfg(test)]
mod tests;
