//! The account subcommands: `2fa`, `backup-codes`, `profile`, `passwd`, `delete-account`,
//! `security-questions` and `recover`, and the second-factor step of `sesame login`.
//!
//! The sensitive operations need a fresh authentication on the server (a login or a
//! re-authentication within the last few minutes). When the server answers
//! `reauthentication_required`, these commands ask for the password, re-authenticate with
//! OPAQUE (the password never leaves this machine) and retry once.

use std::future::Future;
use std::io::{IsTerminal as _, Write as _};

use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};
use sesame_client::profile::StoredSession;
use sesame_client::{Error as ClientError, Login, PendingLogin, Registered};

use crate::client_cmds::Ctx;

/// Prints a line on standard output, ignoring write errors (a closed pipe).
macro_rules! say {
    ($($arg:tt)*) => {{
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, $($arg)*);
        let _ = out.flush();
    }};
}

/// How many codes a person may type at one prompt before the command gives up.
const CODE_TRIES: usize = 3;

mod password;
mod prompt;
mod recovery;
mod two_factor;

use password::{delete_account, passwd, profile};
use prompt::{prompt_line, secret};
use recovery::{recover, set_security_questions};
use sesame_client::api::{AccountStatus, CredentialError, ErrorCode};
use two_factor::{
    device_factor, regenerate_backup_codes, show_backup_codes, totp_disable, totp_enable,
};

/// The account subcommands.
#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Two-factor authentication with an authenticator app (TOTP).
    #[command(name = "2fa")]
    TwoFa(TwoFaArgs),
    /// Single-use backup codes (they replace an authenticator code, or recover the account).
    BackupCodes(BackupCodesArgs),
    /// Show your profile, or change it with the flags.
    Profile(ProfileArgs),
    /// Change your password (client-side OPAQUE: it never leaves this machine).
    Passwd(PasswdArgs),
    /// Delete your account and everything of it on the server.
    DeleteAccount(DeleteAccountArgs),
    /// Security questions: with an authenticator code they can recover the account.
    SecurityQuestions(SecurityQuestionsArgs),
    /// Forgot the password: set a new one with a backup code, an emailed code or an
    /// authenticator code plus security answers. Every session is signed out.
    Recover(RecoverArgs),
}

/// Where the password for a re-authentication comes from.
#[derive(Debug, Clone, Copy, Args)]
pub struct ReauthArgs {
    /// If the server asks to confirm the password, read it from the first line of standard
    /// input instead of prompting.
    #[arg(long)]
    pub password_stdin: bool,
}

/// Flags of `sesame 2fa`.
#[derive(Debug, Args)]
pub struct TwoFaArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: TwoFaAction,
}

/// Actions of `sesame 2fa`.
#[derive(Debug, Subcommand)]
pub enum TwoFaAction {
    /// Show what protects the account: the authenticator app, backup codes left, security
    /// questions.
    Status(crate::client_cmds::JsonArgs),
    /// Turn it on: shows a QR code for the app, then asks for a code from it.
    Enable(TwoFaEnableArgs),
    /// Turn it off (needs a code from the app, or a backup code).
    Disable(TwoFaDisableArgs),
    /// Require (`on`) or stop requiring (`off`) a key stored on this device at every login.
    Device(TwoFaDeviceArgs),
}

/// Flags of `sesame 2fa device`.
#[derive(Debug, Args)]
pub struct TwoFaDeviceArgs {
    /// `on` or `off`.
    #[arg(value_parser = ["on", "off"])]
    pub state: String,
    #[command(flatten)]
    pub reauth: ReauthArgs,
}

/// Flags of `sesame 2fa enable`.
#[derive(Debug, Args)]
pub struct TwoFaEnableArgs {
    #[command(flatten)]
    pub reauth: ReauthArgs,
}

/// Flags of `sesame 2fa disable`.
#[derive(Debug, Args)]
pub struct TwoFaDisableArgs {
    /// A code from the app (or a backup code); asked for when omitted.
    #[arg(long, value_name = "CODE")]
    pub code: Option<String>,
    #[command(flatten)]
    pub reauth: ReauthArgs,
}

/// Flags of `sesame backup-codes`.
#[derive(Debug, Args)]
pub struct BackupCodesArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: BackupCodesAction,
}

/// Actions of `sesame backup-codes`.
#[derive(Debug, Subcommand)]
pub enum BackupCodesAction {
    /// Make a new set; the old codes stop working.
    Regenerate(ReauthArgs),
}

/// Flags of `sesame profile`.
#[derive(Debug, Args)]
pub struct ProfileArgs {
    /// Set the display name ("" clears it).
    #[arg(long, value_name = "NAME")]
    pub display_name: Option<String>,
    /// Set the bio ("" clears it).
    #[arg(long, value_name = "TEXT")]
    pub bio: Option<String>,
    /// Set the picture URL, https:// ("" clears it).
    #[arg(long, value_name = "URL")]
    pub picture_url: Option<String>,
    /// Change the email address: a code is mailed to the new one, and the change is made
    /// when it is entered (asked for at once on a terminal, or later with --email-code).
    #[arg(long, value_name = "ADDRESS", conflicts_with = "remove_email")]
    pub email: Option<String>,
    /// Confirm a pending address change with the code mailed to the new address.
    #[arg(long, value_name = "CODE", conflicts_with = "remove_email")]
    pub email_code: Option<String>,
    /// Remove the email address (recovery by email then stops working).
    #[arg(long)]
    pub remove_email: bool,
    /// Print the account as JSON (for scripts).
    #[arg(long)]
    pub json: bool,
}

/// Flags of `sesame passwd`.
#[derive(Debug, Args)]
pub struct PasswdArgs {
    /// Also sign out every other session of the account.
    #[arg(long)]
    pub revoke_other_sessions: bool,
    /// Read the current password and then the new one from the first two lines of standard
    /// input instead of prompting.
    #[arg(long)]
    pub password_stdin: bool,
}

/// Flags of `sesame delete-account`.
#[derive(Debug, Args)]
pub struct DeleteAccountArgs {
    /// Do not ask to type the username to confirm.
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub reauth: ReauthArgs,
}

/// Flags of `sesame security-questions`.
#[derive(Debug, Args)]
pub struct SecurityQuestionsArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: SecurityQuestionsAction,
}

/// Actions of `sesame security-questions`.
#[derive(Debug, Subcommand)]
pub enum SecurityQuestionsAction {
    /// Choose 2 or 3 questions and answer them (replaces the ones set before). Without a
    /// terminal, reads each question (a number from the list, or your own text) and its
    /// answer from standard input, one per line, and an empty line after 2.
    Set(ReauthArgs),
}

/// Flags of `sesame recover`.
#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// The account to recover.
    pub username: String,
    /// A backup code.
    #[arg(long, value_name = "CODE")]
    pub backup_code: Option<String>,
    /// The code mailed to the account's address (the first run without it mails one).
    #[arg(long, value_name = "CODE")]
    pub email_code: Option<String>,
    /// A code from the authenticator app: with --email-code, or alone to answer the
    /// security questions.
    #[arg(long, value_name = "CODE")]
    pub totp_code: Option<String>,
    /// A one-time reset code from the server's operator (`sesame admin user reset-password`
    /// or `admin user create`); it stands alone.
    #[arg(long, value_name = "CODE", conflicts_with_all = ["backup_code", "email_code", "totp_code"])]
    pub reset_code: Option<String>,
    /// Read the new password from the first line of standard input (and the answers to the
    /// security questions from the following lines) instead of prompting.
    #[arg(long)]
    pub password_stdin: bool,
    /// Recover even when this device cannot keep the messaging identity (new keys are then
    /// made at the next login, and contacts see a key change); asked otherwise.
    #[arg(long)]
    pub yes: bool,
}

/// Runs an account subcommand against `server`.
pub async fn run(server: &str, cmd: AccountCommand) -> anyhow::Result<()> {
    let ctx = Ctx::new(server).await?;
    match cmd {
        AccountCommand::TwoFa(args) => match args.action {
            TwoFaAction::Enable(a) => totp_enable(&ctx, a).await,
            TwoFaAction::Disable(a) => totp_disable(&ctx, a).await,
            TwoFaAction::Device(a) => device_factor(&ctx, a).await,
            TwoFaAction::Status(args) => two_factor::status(&ctx, args.json).await,
        },
        AccountCommand::BackupCodes(args) => match args.action {
            BackupCodesAction::Regenerate(reauth) => regenerate_backup_codes(&ctx, reauth).await,
        },
        AccountCommand::Profile(args) => profile(&ctx, args).await,
        AccountCommand::Passwd(args) => passwd(&ctx, args).await,
        AccountCommand::DeleteAccount(args) => delete_account(&ctx, args).await,
        AccountCommand::SecurityQuestions(args) => match args.action {
            SecurityQuestionsAction::Set(reauth) => set_security_questions(&ctx, reauth).await,
        },
        AccountCommand::Recover(args) => recover(&ctx, args).await,
    }
}

/// What `sesame register` prints after the account exists: the backup codes, once.
pub(crate) fn after_register(registered: &Registered) {
    if registered.status == AccountStatus::Pending {
        say!("The account is pending until you enter the code mailed to you.");
    }
    show_backup_codes(&registered.backup_codes);
}

/// The second-factor step of `sesame login`: `code` from the command line, or asked for.
pub(crate) async fn second_factor(
    ctx: &Ctx,
    mut pending: PendingLogin,
    code: Option<&str>,
) -> anyhow::Result<Login> {
    if let Some(code) = code {
        return match pending.submit(code).await {
            Ok(login) => Ok(after_code(ctx, login, code).await),
            Err(e) => {
                pending.cancel().await;
                Err(code_error(ctx, e))
            }
        };
    }
    let interactive = std::io::stdin().is_terminal();
    if interactive {
        eprintln!("This account has two-factor authentication.");
    }
    let tries = if interactive { CODE_TRIES } else { 1 };
    for attempt in 1..=tries {
        let read = tokio::task::spawn_blocking(|| {
            prompt_line("Code from your authenticator app (or a backup code): ")
        });
        let code = pending
            .keep_alive_while(read)
            .await
            .map_err(|e| anyhow!("cannot read the code: {e}"))??;
        if code.trim().is_empty() {
            pending.cancel().await;
            bail!("no code given");
        }
        match pending.submit(&code).await {
            Ok(login) => return Ok(after_code(ctx, login, &code).await),
            Err(e) if e.is(CredentialError::InvalidCode) && attempt < tries => {
                eprintln!("That code is wrong, expired or already used; try again.");
            }
            Err(e) => {
                pending.cancel().await;
                return Err(code_error(ctx, e));
            }
        }
    }
    unreachable!("the last try returns")
}

/// After a login completed with `code`: when it was a backup code (not the six digits of an
/// authenticator), says how many are left, so the person knows when to make new ones.
async fn after_code(ctx: &Ctx, login: Login, code: &str) -> Login {
    let code = code.trim();
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        return login;
    }
    if let Ok(me) = ctx.client.me(&login.session.access_token).await {
        let left = me.backup_codes_left;
        say!("Backup code used: {left} left.");
        if left <= 3 {
            say!("Make a fresh set soon: sesame backup-codes regenerate");
        }
    }
    login
}

/// A wrong-code error in words.
fn code_error(ctx: &Ctx, e: ClientError) -> anyhow::Error {
    match e.server_code() {
        Some(ErrorCode::Credentials(CredentialError::InvalidCode)) => {
            anyhow!("the code is wrong, expired or already used")
        }
        Some(ErrorCode::Credentials(CredentialError::MfaExpired)) => {
            anyhow!("the second-factor step expired; log in again")
        }
        _ => ctx.explain(e),
    }
}

/// Runs `call` with the stored session's access token; when the server wants a fresh
/// authentication, asks for the password, re-authenticates and retries once.
async fn protected<T, F, Fut>(
    ctx: &Ctx,
    reauth: ReauthArgs,
    call: F,
) -> anyhow::Result<(StoredSession, T)>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<T, ClientError>>,
{
    match ctx.authed(&call).await {
        Err(e) if needs_reauth(&e) => {
            reauthenticate(ctx, reauth.password_stdin).await?;
            ctx.authed(&call).await
        }
        other => other,
    }
}

fn needs_reauth(e: &anyhow::Error) -> bool {
    e.downcast_ref::<ClientError>()
        .is_some_and(ClientError::is_reauthentication_required)
}

/// Asks for the password and re-authenticates the stored session with OPAQUE.
async fn reauthenticate(ctx: &Ctx, password_stdin: bool) -> anyhow::Result<()> {
    let session = ctx.stored_session()?;
    eprintln!(
        "This needs a fresh authentication: confirm the password of {}.",
        session.username
    );
    let password = secret("Password: ", password_stdin)?;
    let client = &ctx.client;
    let username = session.username.as_str();
    let password = &password;
    let result = ctx
        .authed(move |token| async move { client.reauth(&token, username, password).await })
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(e)
            if e.downcast_ref::<ClientError>()
                .is_some_and(|e| matches!(e, ClientError::AuthenticationFailed)) =>
        {
            bail!("re-authentication failed: wrong password")
        }
        Err(e) => Err(e.context("re-authentication failed")),
    }
}
