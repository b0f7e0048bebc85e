//! The server half: its long-term keys, registration, login and the server-assisted paths
//! for clients that can only send a password.

mod assisted;
mod keys;
mod login;
mod registration;

pub use assisted::{login_with_password, register_with_password};
pub use keys::{fingerprint as keys_fingerprint, ServerKeys};
pub use login::{
    start_login, AuthMethod, ConfirmationSealer, ExpectLoginFinish, PasswordVerified,
    DEFAULT_LOGIN_TTL_SECS,
};
pub use registration::{registration_challenge, registration_record};
