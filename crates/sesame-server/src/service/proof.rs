//! Proofs: values that only the code which checked something can make.
//!
//! A session is created from a [`LoginComplete`] and from nothing else; a session is marked
//! freshly authenticated from a [`Fresh`] and from nothing else. Neither has a public field
//! or a constructor that takes raw ids: each is made from the proof of the step before it.
//!
//! ```text
//! ExpectLoginFinish ──finish──▶ PasswordVerified            (sesame-proto: the OPAQUE check)
//!        PasswordVerified + NoSecondFactor ──▶ LoginComplete (second_factor.rs says none is set)
//!        PasswordVerified + ticket ──code──▶ SecondFactorVerified ──▶ LoginComplete
//! assertion ──verify──▶ PasskeyVerified ──▶ LoginComplete     (passkey_login.rs: passwordless)
//! LoginComplete ──▶ create_session ──▶ Fresh (the login is a fresh authentication)
//! PasswordVerified (re-authentication) ──▶ Fresh
//! ```

use sesame_api::sessions::AuthMethod;
use sesame_proto::server::{AuthMethod as PasswordMethod, PasswordVerified};
use uuid::Uuid;

use super::passkey_login::PasskeyVerified;
use super::second_factor::{NoSecondFactor, SecondFactorVerified};

/// A login that passed every factor the account has: the only input of `create_session`.
#[derive(Debug)]
pub(crate) struct LoginComplete {
    user_id: Uuid,
    username: String,
    /// How the password was proven; `None` for a passwordless (passkey) sign-in.
    password: Option<PasswordMethod>,
    methods: Vec<AuthMethod>,
}

impl LoginComplete {
    /// A password login of an account without a second factor.
    pub(super) fn password_only(
        verified: PasswordVerified,
        user_id: Uuid,
        _none: NoSecondFactor,
    ) -> LoginComplete {
        LoginComplete {
            user_id,
            username: verified.username().as_str().to_owned(),
            password: Some(verified.method()),
            methods: vec![AuthMethod::Pwd],
        }
    }

    /// A login whose second factor checked out.
    pub(super) fn after_second_factor(proof: SecondFactorVerified) -> LoginComplete {
        LoginComplete {
            user_id: proof.user_id(),
            username: proof.username().to_owned(),
            password: Some(proof.password()),
            methods: vec![AuthMethod::Pwd, proof.factor(), AuthMethod::Mfa],
        }
    }

    /// A passwordless sign-in with a passkey: `hwk` alone.
    pub(super) fn passkey_only(proof: PasskeyVerified) -> LoginComplete {
        LoginComplete {
            user_id: proof.user_id(),
            username: proof.username().to_owned(),
            password: None,
            methods: vec![AuthMethod::Hwk],
        }
    }

    /// The account.
    pub(crate) fn user_id(&self) -> Uuid {
        self.user_id
    }

    /// The canonical username.
    pub(crate) fn username(&self) -> &str {
        &self.username
    }

    /// How the sign-in was proven, for metrics: `opaque`, `pwd` or `passkey`.
    pub(crate) fn method_label(&self) -> &'static str {
        self.password.map_or("passkey", |m| m.as_str())
    }

    /// The RFC 8176 `amr` values of the session.
    pub(crate) fn methods(&self) -> &[AuthMethod] {
        &self.methods
    }

    /// The audit detail of the login: `method=opaque`, or `methods=pwd,otp,mfa` (`methods=hwk`).
    pub(crate) fn audit_detail(&self) -> String {
        if let (Some(password), [AuthMethod::Pwd]) = (self.password, self.methods.as_slice()) {
            return format!("method={}", password.as_str());
        }
        let names: Vec<&str> = self.methods.iter().map(|m| m.amr()).collect();
        format!("methods={}", names.join(","))
    }
}

/// A session that has just proven its user's password: the only input of `mark_fresh`.
#[derive(Debug)]
pub(crate) struct Fresh {
    session_id: Uuid,
}

impl Fresh {
    /// A new session is fresh: its login just happened.
    pub(super) fn from_login(_login: &LoginComplete, session_id: Uuid) -> Fresh {
        Fresh { session_id }
    }

    /// A session whose user re-entered the password (OPAQUE or server-assisted); `None`
    /// when the password proven is not the session owner's (`caller`).
    pub(super) fn from_reauthentication(
        verified: PasswordVerified,
        caller: &str,
        session_id: Uuid,
    ) -> Option<Fresh> {
        (verified.username().as_str() == caller).then_some(Fresh { session_id })
    }

    /// The session.
    pub(crate) fn session_id(&self) -> Uuid {
        self.session_id
    }
}
