//! The account subcommands: `2fa`, `backup-codes`, `profile`, `passwd`, `delete-account`,
//! `security-questions` and `recover`, and the second-factor step of `sesame login`.
//!
//! The sensitive operations need a fresh authentication on the server (a login or a
//! re-authentication within the last few minutes). When the server answers
//! `reauthentication_required`, these commands ask for the password, re-authenticate with
//! OPAQUE (the password never leaves this machine) and retry once.

use std::future::Future;
use std::io::{BufRead as _, IsTerminal as _, Write as _};

use anyhow::{anyhow, bail, Context as _};
use clap::{Args, Subcommand};
use sesame_client::account::{PasswordChanged, ProfileUpdate, QuestionAnswer, RecoveryProof};
use sesame_client::api::{AccountStatus, CredentialError, ErrorCode};
use sesame_client::messaging::{self, KeyDirectory, MessagingStore};
use sesame_client::profile::StoredSession;
use sesame_client::{Error as ClientError, Login, PendingLogin, Registered};
use sesame_proto::policy::{check_password, Username};
use zeroize::Zeroizing;

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
    /// Read the new password from the first line of standard input (and the answers to the
    /// security questions from the following lines) instead of prompting.
    #[arg(long)]
    pub password_stdin: bool,
}

/// Runs an account subcommand against `server`.
pub async fn run(server: &str, cmd: AccountCommand) -> anyhow::Result<()> {
    let ctx = Ctx::new(server)?;
    match cmd {
        AccountCommand::TwoFa(args) => match args.action {
            TwoFaAction::Enable(a) => totp_enable(&ctx, a).await,
            TwoFaAction::Disable(a) => totp_disable(&ctx, a).await,
            TwoFaAction::Device(a) => device_factor(&ctx, a).await,
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
            Ok(login) => Ok(login),
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
            Ok(login) => return Ok(login),
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

async fn totp_enable(ctx: &Ctx, args: TwoFaEnableArgs) -> anyhow::Result<()> {
    let client = &ctx.client;
    let (_, enrolment) = protected(ctx, args.reauth, move |token| async move {
        client.generate_qr(&token).await
    })
    .await
    .context("cannot start two-factor enrolment")?;
    say!("Scan this QR code with your authenticator app:");
    say!();
    match qr_lines(&enrolment.otpauth_url) {
        Some(lines) => {
            for line in lines {
                say!("{line}");
            }
        }
        None => say!("(the URI is too long for a QR code; type the secret instead)"),
    }
    say!();
    say!("Or add it by hand:");
    say!("  URI:    {}", enrolment.otpauth_url);
    say!("  Secret: {}", group_secret(&enrolment.secret));
    let interactive = std::io::stdin().is_terminal();
    let tries = if interactive { CODE_TRIES } else { 1 };
    for attempt in 1..=tries {
        let code = prompt_line("Code shown by the app: ")?;
        let code = code.trim().to_owned();
        if code.is_empty() {
            bail!("no code given: two-factor authentication stays off");
        }
        let result = protected(ctx, args.reauth, |token| {
            let code = code.clone();
            async move { client.enable_authenticator(&token, &code).await }
        })
        .await;
        match result {
            Ok(_) => {
                say!(
                    "Two-factor authentication is on: logins now ask for a code from the app \
                     (or one of your backup codes)."
                );
                return Ok(());
            }
            Err(e) if is_invalid_code(&e) && attempt < tries => {
                eprintln!("That code is wrong; check the app's clock and try again.");
            }
            Err(e) if is_invalid_code(&e) => {
                bail!("the code is wrong: two-factor authentication stays off")
            }
            Err(e) => return Err(e.context("cannot enable two-factor authentication")),
        }
    }
    unreachable!("the last try returns")
}

fn is_invalid_code(e: &anyhow::Error) -> bool {
    e.downcast_ref::<ClientError>()
        .is_some_and(|e| e.is(CredentialError::InvalidCode))
}

/// `sesame 2fa device on|off`: registers this device's key (made once, kept in the profile)
/// and requires it at login, or lifts the requirement.
async fn device_factor(ctx: &Ctx, args: TwoFaDeviceArgs) -> anyhow::Result<()> {
    let session = ctx.stored_session()?;
    let client = &ctx.client;
    if args.state == "off" {
        protected(ctx, args.reauth, move |token| async move {
            client.set_device_required(&token, false).await
        })
        .await
        .context("cannot turn the device-key requirement off")?;
        say!("Logins no longer need this device's key.");
        return Ok(());
    }
    let id = match ctx.device_key(&session.username)? {
        Some((id, _)) => id,
        None => {
            let key = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
            let public = key.verifying_key().to_bytes();
            let name = format!("sesame-cli {}", ctx.server);
            let name = name.as_str();
            let (_, id) = protected(ctx, args.reauth, move |token| async move {
                client.add_device(&token, name, &public).await
            })
            .await
            .context("cannot register this device's key")?;
            ctx.save_device_key(&session.username, &id, &key)?;
            id
        }
    };
    protected(ctx, args.reauth, move |token| async move {
        client.set_device_required(&token, true).await
    })
    .await
    .context("cannot require the device key")?;
    say!(
        "Logins of {} now need this device's key (device {id}).",
        session.username
    );
    Ok(())
}

async fn totp_disable(ctx: &Ctx, args: TwoFaDisableArgs) -> anyhow::Result<()> {
    let code = match args.code {
        Some(code) => code,
        None => prompt_line("Code from your authenticator app (or a backup code): ")?,
    };
    let code = code.trim();
    if code.is_empty() {
        bail!("no code given");
    }
    let client = &ctx.client;
    let result = protected(ctx, args.reauth, move |token| async move {
        client.disable_authenticator(&token, code).await
    })
    .await;
    match result {
        Ok(_) => {
            say!("Two-factor authentication is off: the password alone logs in again.");
            Ok(())
        }
        Err(e) if is_invalid_code(&e) => bail!("the code is wrong, expired or already used"),
        Err(e) => Err(e.context("cannot disable two-factor authentication")),
    }
}

async fn regenerate_backup_codes(ctx: &Ctx, reauth: ReauthArgs) -> anyhow::Result<()> {
    let client = &ctx.client;
    let (_, codes) = protected(ctx, reauth, move |token| async move {
        client.regenerate_backup_codes(&token).await
    })
    .await
    .context("cannot make new backup codes")?;
    say!("New backup codes; the old ones no longer work.");
    show_backup_codes(&codes);
    Ok(())
}

/// Prints backup codes with the warning to keep them.
fn show_backup_codes(codes: &[String]) {
    if codes.is_empty() {
        return;
    }
    say!(
        "Backup codes: each works once, in place of an authenticator code or to recover the \
         account."
    );
    say!("Store these now, somewhere safe: they are not shown again.");
    for (i, code) in codes.iter().enumerate() {
        say!("  {:>2}. {code}", i + 1);
    }
}

async fn profile(ctx: &Ctx, args: ProfileArgs) -> anyhow::Result<()> {
    let change = |v: Option<String>| v.map(|v| Some(v.trim().to_owned()).filter(|v| !v.is_empty()));
    let update = ProfileUpdate {
        display_name: change(args.display_name),
        bio: change(args.bio),
        picture_url: change(args.picture_url),
    };
    let client = &ctx.client;
    if !update.is_empty() {
        let update = &update;
        let reauth = ReauthArgs {
            password_stdin: false,
        };
        protected(ctx, reauth, move |token| async move {
            client.update_profile(&token, update).await
        })
        .await
        .context("cannot update the profile")?;
        say!("Profile updated.");
    }
    let (_, account) = ctx
        .authed(move |token| async move { client.account(&token).await })
        .await?;
    let unset = "(not set)";
    say!("Profile of {} on {}:", account.username, ctx.server);
    say!(
        "  display name:        {}",
        account.profile.display_name.as_deref().unwrap_or(unset)
    );
    say!(
        "  bio:                 {}",
        account.profile.bio.as_deref().unwrap_or(unset)
    );
    say!(
        "  picture URL:         {}",
        account.profile.picture_url.as_deref().unwrap_or(unset)
    );
    say!(
        "  email:               {}",
        account.email.as_deref().unwrap_or(unset)
    );
    say!("  status:              {}", account.status);
    say!(
        "  two-factor (TOTP):   {}",
        if account.totp_enabled { "on" } else { "off" }
    );
    say!("  backup codes left:   {}", account.backup_codes_left);
    say!("  security questions:  {}", account.security_questions);
    Ok(())
}

async fn passwd(ctx: &Ctx, args: PasswdArgs) -> anyhow::Result<()> {
    let session = ctx.stored_session()?;
    let username = session.username.clone();
    let current = secret("Current password: ", args.password_stdin)?;
    let new = new_password(&username, args.password_stdin)?;
    let client = &ctx.client;
    let (current, new, name) = (&current, &new, username.as_str());
    let revoke = args.revoke_other_sessions;
    let result = ctx
        .authed(move |token| async move {
            client
                .change_password(&token, name, current, new, revoke)
                .await
        })
        .await;
    let (session, changed) = match result {
        Ok(done) => done,
        Err(e)
            if e.downcast_ref::<ClientError>()
                .is_some_and(|e| matches!(e, ClientError::AuthenticationFailed)) =>
        {
            bail!("the current password is wrong; nothing changed")
        }
        Err(e) => return Err(e.context("cannot change the password")),
    };
    say!("Password changed for {username}.");
    rewrap_messaging_keys(ctx, &session, &changed).await;
    if revoke {
        say!(
            "Signed out {} other session{}.",
            changed.revoked_sessions,
            if changed.revoked_sessions == 1 {
                ""
            } else {
                "s"
            }
        );
    }
    Ok(())
}

/// The messaging identity keys are wrapped under the password's export key: re-wraps them
/// (and their server backup) under the new one. Never fails the password change.
async fn rewrap_messaging_keys(ctx: &Ctx, session: &StoredSession, changed: &PasswordChanged) {
    let result = async {
        let directory = KeyDirectory::new(&ctx.client)?;
        let store = MessagingStore::new(&ctx.profile);
        messaging::rewrap_for_new_password(
            &store,
            &directory,
            session,
            changed.previous_export_key.as_deref(),
            &changed.export_key,
        )
        .await
    }
    .await;
    match result {
        Ok(true) => say!("Messaging: identity keys re-wrapped for the new password."),
        Ok(false) => {}
        Err(e) => eprintln!(
            "warning: could not re-wrap the messaging identity keys for the new password: {e}; \
             they may have to be replaced at the next login"
        ),
    }
}

async fn delete_account(ctx: &Ctx, args: DeleteAccountArgs) -> anyhow::Result<()> {
    let session = ctx.stored_session()?;
    if !args.yes {
        say!(
            "This deletes the account {} on {} and everything of it, for good.",
            session.username,
            ctx.server
        );
        let typed = prompt_line(&format!(
            "Type the username ({}) to confirm: ",
            session.username
        ))?;
        if typed.trim() != session.username {
            bail!("the username does not match; nothing was deleted");
        }
    }
    let client = &ctx.client;
    protected(ctx, args.reauth, move |token| async move {
        client.delete_account(&token).await
    })
    .await
    .context("cannot delete the account")?;
    ctx.profile.remove_session(&ctx.server)?;
    say!(
        "Deleted the account {} on {}; you are logged out.",
        session.username,
        ctx.server
    );
    Ok(())
}

async fn set_security_questions(ctx: &Ctx, reauth: ReauthArgs) -> anyhow::Result<()> {
    ctx.stored_session()?;
    let catalog = ctx
        .client
        .security_questions_catalog()
        .await
        .map_err(|e| ctx.explain(e))
        .context("cannot fetch the list of questions")?;
    say!("Choose 2 or 3 questions: a number from this list, or type your own question.");
    for (i, q) in catalog.iter().enumerate() {
        say!("  {:>2}. {q}", i + 1);
    }
    say!("Answers are compared ignoring case and extra spaces.");
    let mut chosen: Vec<QuestionAnswer> = Vec::new();
    while chosen.len() < 3 {
        let n = chosen.len() + 1;
        let hint = if n > 2 { ", empty to stop" } else { "" };
        let typed = prompt_line(&format!("Question {n}{hint}: "))?;
        let typed = typed.trim();
        if typed.is_empty() {
            if n > 2 {
                break;
            }
            bail!("at least 2 questions are needed");
        }
        let question = match typed.parse::<usize>() {
            Ok(i) if (1..=catalog.len()).contains(&i) => {
                if std::io::stdin().is_terminal() {
                    say!("  {}", catalog[i - 1]);
                }
                catalog[i - 1].clone()
            }
            Ok(_) => bail!("no question number {typed} in the list"),
            Err(_) => typed.to_owned(),
        };
        if chosen
            .iter()
            .any(|q| q.question.eq_ignore_ascii_case(&question))
        {
            bail!("each question may be chosen once");
        }
        let answer = secret_answer("Answer: ")?;
        if answer.trim().is_empty() {
            bail!("no answer given");
        }
        chosen.push(QuestionAnswer { question, answer });
    }
    let client = &ctx.client;
    let chosen = &chosen;
    protected(ctx, reauth, move |token| async move {
        client.set_security_questions(&token, chosen).await
    })
    .await
    .context("cannot set the security questions")?;
    say!(
        "Security questions set ({}). With a code from your authenticator app they can \
         recover the account; alone they never can.",
        chosen.len()
    );
    Ok(())
}

async fn recover(ctx: &Ctx, args: RecoverArgs) -> anyhow::Result<()> {
    let username = args.username.trim().to_owned();
    let mut proof = RecoveryProof {
        backup_code: args.backup_code.map(|c| c.trim().to_owned()),
        email_code: args.email_code.map(|c| c.trim().to_owned()),
        totp_code: args.totp_code.map(|c| c.trim().to_owned()),
        answers: None,
    };
    if proof.backup_code.is_none() && proof.email_code.is_none() && proof.totp_code.is_none() {
        let code = prompt_line("Backup code (or give --email-code or --totp-code): ")?;
        if code.trim().is_empty() {
            bail!("give a backup code, an emailed code, or an authenticator code");
        }
        proof.backup_code = Some(code.trim().to_owned());
    }
    let with_questions = proof.totp_code.is_some() && proof.email_code.is_none();
    let password = new_password(&username, args.password_stdin)?;
    let started = ctx
        .client
        .recover_start(&username, &password)
        .await
        .map_err(|e| ctx.explain(e))
        .context("cannot start the recovery")?;
    drop(password);
    if with_questions {
        say!("Answer your security questions:");
        let mut answers = Vec::new();
        for q in &started.questions {
            say!("  {q}");
            answers.push(secret_answer("Answer: ")?.to_string());
        }
        proof.answers = Some(answers);
    }
    let recovered = match ctx.client.recover_finish(started, &proof).await {
        Ok(r) => r,
        Err(e) if e.is(CredentialError::RecoveryFailed) => bail!(
            "recovery failed: the codes or answers do not check out (or there is no such account)"
        ),
        Err(e) => return Err(ctx.explain(e).context("recovery failed")),
    };
    ctx.trust(&recovered.server_public_key)?;
    if ctx
        .profile
        .load_session(&ctx.server)?
        .is_some_and(|s| Username::parse(&username).is_ok_and(|u| u.as_str() == s.username))
    {
        ctx.profile.remove_session(&ctx.server)?;
    }
    say!("Password reset for {username}; every session of the account was signed out.");
    show_backup_codes(&recovered.backup_codes);
    say!("Next: sesame login {username}");
    Ok(())
}

/// A new password: asked twice, or one line of standard input; checked against the policy
/// here before anything is sent.
fn new_password(username: &str, from_stdin: bool) -> anyhow::Result<Zeroizing<String>> {
    let password = secret("New password: ", from_stdin)?;
    if !from_stdin {
        let again = secret("Repeat the new password: ", false)?;
        if *again != *password {
            bail!("the passwords do not match");
        }
    }
    let name = Username::parse(username).map_err(|e| anyhow!("invalid username: {e}"))?;
    check_password(&password, &name).map_err(|e| anyhow!("password refused: {e}"))?;
    Ok(password)
}

/// A secret: one line of standard input, or asked for on the terminal without echo.
fn secret(prompt: &str, from_stdin: bool) -> anyhow::Result<Zeroizing<String>> {
    let value = if from_stdin {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        let len = line.trim_end_matches(['\n', '\r']).len();
        line.truncate(len);
        line
    } else {
        rpassword::prompt_password(prompt)
            .map(Zeroizing::new)
            .context("cannot ask for the password (no terminal?); use --password-stdin")?
    };
    if value.is_empty() {
        bail!("no password given");
    }
    Ok(value)
}

/// An answer to a security question: without echo on a terminal, else one line of input.
fn secret_answer(prompt: &str) -> anyhow::Result<Zeroizing<String>> {
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password(prompt)
            .map(Zeroizing::new)
            .context("cannot read the answer");
    }
    prompt_line(prompt).map(Zeroizing::new)
}

/// One line of standard input (without its line ending), after `prompt` on a terminal.
fn prompt_line(prompt: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("{prompt}");
        std::io::stderr().flush().ok();
    }
    let mut line = String::new();
    let n = stdin
        .lock()
        .read_line(&mut line)
        .context("cannot read standard input")?;
    if n == 0 {
        bail!("standard input ended before: {}", prompt.trim_end());
    }
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

/// A base32 secret in groups of four, easier to type.
fn group_secret(secret: &str) -> String {
    secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The QR code of `text` for a terminal, two modules per character (upper and lower half
/// blocks), light modules drawn as blocks so it scans on the usual dark background; `None`
/// if `text` is too long for a QR code.
fn qr_lines(text: &str) -> Option<Vec<String>> {
    use qrcodegen::{QrCode, QrCodeEcc};
    const QUIET: i32 = 2;
    let qr = QrCode::encode_text(text, QrCodeEcc::Medium).ok()?;
    let size = qr.size();
    let light = |x: i32, y: i32| !qr.get_module(x, y);
    let mut lines = Vec::new();
    let mut y = -QUIET;
    while y < size + QUIET {
        let line: String = (-QUIET..size + QUIET)
            .map(|x| match (light(x, y), light(x, y + 1)) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            })
            .collect();
        lines.push(line);
        y += 2;
    }
    Some(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qr_codes_draw_two_rows_per_line_with_a_quiet_zone() {
        let uri =
            "otpauth://totp/Sesame:alice?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Sesame";
        let lines = qr_lines(uri).unwrap();
        let size = qrcodegen::QrCode::encode_text(uri, qrcodegen::QrCodeEcc::Medium)
            .unwrap()
            .size() as usize;
        assert_eq!(lines.len(), (size + 4).div_ceil(2));
        assert!(lines.iter().all(|l| l.chars().count() == size + 4));
        // The quiet zone is light: the first line is all full blocks.
        assert!(lines[0].chars().all(|c| c == '█'), "{}", lines[0]);
        // The top-left finder pattern starts dark right after the quiet zone.
        let row: Vec<char> = lines[1].chars().collect();
        assert_eq!(row[2], ' ', "{}", lines[1]);
        // Every module reads back from the characters: light is drawn, dark is blank.
        let qr = qrcodegen::QrCode::encode_text(uri, qrcodegen::QrCodeEcc::Medium).unwrap();
        let grid: Vec<Vec<char>> = lines.iter().map(|l| l.chars().collect()).collect();
        for y in -2..qr.size() + 2 {
            for x in -2..qr.size() + 2 {
                let c = grid[((y + 2) / 2) as usize][(x + 2) as usize];
                let light = if (y + 2) % 2 == 0 {
                    matches!(c, '█' | '▀')
                } else {
                    matches!(c, '█' | '▄')
                };
                assert_eq!(light, !qr.get_module(x, y), "module ({x}, {y})");
            }
        }
        assert!(qr_lines(&"x".repeat(8000)).is_none());
    }

    #[test]
    fn secrets_are_grouped_for_typing() {
        assert_eq!(group_secret("ABCDEFGHIJ"), "ABCD EFGH IJ");
        assert_eq!(group_secret(""), "");
    }
}
