//! The client subcommands: `register`, `login`, `logout`, `whoami`, `sessions`.
//!
//! The profile ([`sesame_client::profile`]) keeps the server keys pinned on first use and the
//! current login of each server between runs.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use sesame_client::profile::{unix_now, StoredSession};
use sesame_client::LoginOutcome;
use uuid::Uuid;
use zeroize::Zeroizing;

/// Prints a line on standard output, ignoring write errors: a closed pipe (`sesame sessions |
/// head`) must not turn into a panic, and there is nothing better to do with the output.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod context;

pub(crate) use context::{set_ca_file, Ctx};

/// The client subcommands.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Create an account. The password never leaves this machine (client-side OPAQUE)
    /// unless --server-assisted is given.
    Register(RegisterArgs),
    /// Log in and keep the session in the profile.
    Login(LoginArgs),
    /// Revoke the stored session on the server and forget it.
    Logout(LogoutArgs),
    /// Show the account you are logged in as.
    Whoami(JsonArgs),
    /// List your sessions, or revoke one.
    Sessions(SessionsArgs),
    /// Activate an account registered with --email, with the code mailed to it (or
    /// --resend to mail a new one).
    VerifyEmail(VerifyEmailArgs),
}

pub(crate) use crate::output::JsonArgs;

/// Flags of `sesame verify-email`.
#[derive(Debug, Args)]
pub struct VerifyEmailArgs {
    /// The account.
    pub username: String,
    /// The code from the email.
    #[arg(required_unless_present = "resend")]
    pub code: Option<String>,
    /// Mail a new code instead.
    #[arg(long, conflicts_with = "code")]
    pub resend: bool,
}

/// Flags of `sesame register`.
#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// The username (asked for when omitted).
    pub username: Option<String>,
    /// Read the password from the first line of standard input instead of prompting.
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
    /// Send the password to the server and let it register on your behalf (for servers or
    /// setups where client-side OPAQUE is not possible).
    #[arg(long)]
    pub server_assisted: bool,
    /// An email address for recovery codes; when the server sends mail, the account stays
    /// pending until the code mailed there is entered (`sesame verify-email`).
    #[arg(long, value_name = "ADDRESS")]
    pub email: Option<String>,
}

/// Flags of `sesame login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The username (asked for when omitted).
    pub username: Option<String>,
    /// Read the password from the first line of standard input instead of prompting.
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
    /// Log in over the WebSocket (`/auth/login`) instead of REST.
    #[arg(long)]
    pub ws: bool,
    /// The authenticator code (or a backup code) if the account asks for one; asked for
    /// when omitted.
    #[arg(long, value_name = "CODE")]
    pub code: Option<String>,
}

/// Flags of `sesame logout`.
#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Revoke every session of the account, on every device.
    #[arg(long)]
    pub all: bool,
}

/// Flags of `sesame sessions`.
#[derive(Debug, Args)]
pub struct SessionsArgs {
    /// Without an action, lists the sessions.
    #[command(subcommand)]
    pub action: Option<SessionsAction>,
    /// Print the list as JSON (for scripts).
    #[arg(long)]
    pub json: bool,
}

/// Actions of `sesame sessions`.
#[derive(Debug, Subcommand)]
pub enum SessionsAction {
    /// Revoke one of your sessions by its id.
    Revoke {
        /// The session id, as listed by `sesame sessions`.
        id: Uuid,
    },
}

/// Runs a client subcommand against `server`.
pub async fn run(server: &str, cmd: ClientCommand) -> anyhow::Result<()> {
    let ctx = Ctx::new(server).await?;
    match cmd {
        ClientCommand::Register(args) => register(&ctx, args).await,
        ClientCommand::Login(args) => login(&ctx, args).await,
        ClientCommand::Logout(args) => logout(&ctx, args).await,
        ClientCommand::Whoami(args) => whoami(&ctx, args.json).await,
        ClientCommand::Sessions(args) => match args.action {
            None => list_sessions(&ctx, args.json).await,
            Some(SessionsAction::Revoke { id }) => revoke_session(&ctx, id).await,
        },
        ClientCommand::VerifyEmail(args) => verify_email(&ctx, args).await,
    }
}

async fn verify_email(ctx: &Ctx, args: VerifyEmailArgs) -> anyhow::Result<()> {
    if args.resend {
        ctx.client
            .resend_verification(&args.username)
            .await
            .map_err(|e| ctx.explain(e))?;
        say!(
            "If {} awaits email verification, a new code is on its way.",
            args.username
        );
        return Ok(());
    }
    let code = args.code.unwrap_or_default();
    let verified = ctx
        .client
        .verify_email(&args.username, &code)
        .await
        .map_err(|e| ctx.explain(e))
        .context("email verification failed")?;
    say!("{} (account status: {})", verified.message, verified.status);
    say!("Next: sesame login {}", args.username);
    Ok(())
}

async fn register(ctx: &Ctx, args: RegisterArgs) -> anyhow::Result<()> {
    let username = username_arg(args.username)?;
    // The name first: nobody types a password twice for a name that cannot be had.
    ctx.client
        .check_username(&username)
        .await
        .map_err(|e| ctx.explain(e))
        .context("cannot register this name")?;
    let password = read_new_password(args.password_stdin, &username)?;
    if args.server_assisted {
        if args.email.is_some() {
            bail!("--email works with client-side registration (without --server-assisted)");
        }
        let registered = ctx
            .client
            .register_with_password(&username, &password)
            .await
            .map_err(|e| ctx.explain(e))
            .context("registration failed")?;
        say!(
            "Registered {} (id {}) with server-assisted registration",
            registered.username,
            registered.user_id
        );
        crate::account_cmds::after_register(&registered);
        say!("Next: sesame login {}", registered.username);
        return Ok(());
    }
    // The messaging identity is made here and published with the account (public half, and
    // the private half wrapped under the new export key), so others can write at once.
    let identity = sesame_proto::e2e::IdentityKeys::generate(&mut rand_core::OsRng);
    let registration = ctx
        .client
        .register_with_identity(&username, &password, Some(&identity), args.email.as_deref())
        .await
        .map_err(|e| ctx.explain(e))
        .context("registration failed")?;
    let registered = &registration.registered;
    say!(
        "Registered {} (id {})",
        registered.username,
        registered.user_id
    );
    ctx.trust(&registration.server_public_key)?;
    crate::account_cmds::after_register(registered);
    crate::keys_cmds::after_register(
        &ctx.profile,
        &ctx.server,
        &registered.username,
        &registration.export_key,
        &identity,
    );
    if registered.status == sesame_client::api::AccountStatus::Pending {
        say!(
            "The account is pending: enter the code mailed to {} with `sesame verify-email {} \
             CODE` (or `--resend` for a new one).",
            args.email.as_deref().unwrap_or("your address"),
            registered.username
        );
        return Ok(());
    }
    say!("Next: sesame login {}", registered.username);
    Ok(())
}

async fn login(ctx: &Ctx, args: LoginArgs) -> anyhow::Result<()> {
    let username = username_arg(args.username)?;
    let password = read_password(args.password_stdin, false)?;
    // Accounts that require a device key get this device's signature on the login.
    let client = ctx.client_for(&username)?;
    let result = if args.ws {
        client.login_ws(&username, &password).await
    } else {
        client.login(&username, &password).await
    };
    drop(password);
    let login = match result.map_err(|e| ctx.explain(e)).context("login failed")? {
        LoginOutcome::Session(login) => login,
        LoginOutcome::SecondFactor(pending) => {
            crate::account_cmds::second_factor(ctx, pending, args.code.as_deref())
                .await
                .context("login failed")?
        }
    };
    ctx.trust(&login.server_public_key)?;
    let previous = ctx.profile.load_session(&ctx.server)?;
    let session = StoredSession::from_issued(&ctx.server, &login.session, unix_now());
    ctx.profile.save_session(&session)?;
    say!(
        "Logged in as {} (user id {})",
        login.session.username,
        login.session.user_id
    );
    say!(
        "Session {} {}",
        session.session_id,
        session_lifetime(&session)
    );
    crate::keys_cmds::after_login(&ctx.profile, &ctx.client, &session, &login.export_key).await;
    // The replaced login is revoked rather than left alive on the server, unreachable.
    if let Some(mut old) = previous.filter(|old| old.session_id != session.session_id) {
        let revoked = match ctx.access_token_of(&mut old).await {
            Some(token) => ctx.client.logout(&token).await.is_ok(),
            None => false,
        };
        if revoked && old.username != session.username {
            say!(
                "Logged out {} on this profile: it keeps one account per server. To stay \
                 signed in as both, give one of them its own profile (SESAME_HOME=DIR).",
                old.username
            );
        } else if revoked {
            say!("Logged out the previous session of {}", old.username);
        }
    }
    Ok(())
}

async fn logout(ctx: &Ctx, args: LogoutArgs) -> anyhow::Result<()> {
    let Some(mut session) = ctx.profile.load_session(&ctx.server)? else {
        say!("Not logged in to {}", ctx.server);
        return Ok(());
    };
    let client = &ctx.client;
    if args.all {
        let (_, revoked) = ctx
            .authed(move |token| async move { client.logout_all(&token).await })
            .await?;
        ctx.profile.remove_session(&ctx.server)?;
        forget_unlock_key(ctx, &session.username);
        say!(
            "Logged out {} everywhere: revoked {revoked} session{}",
            session.username,
            if revoked == 1 { "" } else { "s" }
        );
        return Ok(());
    }
    let token = match ctx.access_token(&mut session).await {
        Ok(token) => token,
        Err(_) if ctx.profile.load_session(&ctx.server)?.is_none() => {
            // The refresh found the session dead and forgot it: logged out already.
            say!("The session had already expired or been revoked on the server");
            say!("Logged out {} from {}", session.username, ctx.server);
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    match client.logout(&token).await {
        Ok(()) => {}
        Err(e) if e.is_unauthorized() => {
            say!("The session had already expired or been revoked on the server")
        }
        Err(e) => {
            return Err(ctx.explain(e)).context(
                "cannot reach the server to revoke the session; it is still stored, try again",
            )
        }
    }
    ctx.profile.remove_session(&ctx.server)?;
    forget_unlock_key(ctx, &session.username);
    say!("Logged out {} from {}", session.username, ctx.server);
    Ok(())
}

/// Deletes the cached key that unlocks the messaging identity for this login: after logout
/// the private keys need the password again.
fn forget_unlock_key(ctx: &Ctx, username: &str) {
    let store = sesame_client::messaging::MessagingStore::new(&ctx.profile);
    if let Err(e) = store.remove_unlock(&ctx.server, username) {
        say!("warning: could not delete the cached messaging unlock key: {e}");
    }
}

async fn whoami(ctx: &Ctx, json: bool) -> anyhow::Result<()> {
    let client = &ctx.client;
    let (session, me) = ctx
        .authed(move |token| async move { client.me(&token).await })
        .await?;
    if json {
        let v = serde_json::json!({
            "server": ctx.server,
            "session_id": session.session_id,
            "session_idle_timeout": session.session_idle_timeout,
            "session_expires_at": session.session_expires_at,
            "account": me,
        });
        say!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    say!("Logged in to {} as {}", ctx.server, me.username);
    say!("  user id:      {}", me.user_id);
    say!("  status:       {}", me.status);
    say!("  role:         {}", me.role);
    say!("  created:      {}", fmt_time(me.created_at));
    if let Some(last) = me.last_login_at {
        say!("  last login:   {}", fmt_time(last));
    }
    say!(
        "  session:      {} ({})",
        session.session_id,
        session_lifetime(&session)
    );
    if let Some(key) = ctx.client.policy().pinned_server_key {
        say!("  server key:   {}", sesame_client::fingerprint(&key));
    }
    Ok(())
}

async fn list_sessions(ctx: &Ctx, json: bool) -> anyhow::Result<()> {
    let client = &ctx.client;
    let (session, mut list) = ctx
        .authed(move |token| async move { client.sessions(&token).await })
        .await?;
    list.sort_by_key(|s| std::cmp::Reverse(s.last_seen_at));
    if json {
        say!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    say!(
        "{} session{} of {} on {}:",
        list.len(),
        if list.len() == 1 { "" } else { "s" },
        session.username,
        ctx.server
    );
    for s in &list {
        let marker = if s.current { "* " } else { "  " };
        let current = if s.current { " (this session)" } else { "" };
        say!("{marker}{}{current}", s.id);
        say!(
            "    created {}, last seen {}",
            fmt_time(s.created_at),
            fmt_time(s.last_seen_at)
        );
        say!(
            "    expires {} (idle) / {} (at the latest)",
            fmt_time(s.idle_expires_at),
            fmt_time(s.absolute_expires_at)
        );
        let from = s.client_addr.as_deref().unwrap_or("unknown address");
        let agent = s.user_agent.as_deref().unwrap_or("unknown client");
        say!("    from {from}, {agent}");
        if !s.methods.is_empty() {
            say!(
                "    signed in with {}",
                s.methods
                    .iter()
                    .map(|m| m.amr())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    Ok(())
}

async fn revoke_session(ctx: &Ctx, id: Uuid) -> anyhow::Result<()> {
    let client = &ctx.client;
    let (session, ()) = ctx
        .authed(move |token| async move { client.revoke_session(&token, id).await })
        .await
        .with_context(|| format!("cannot revoke session {id}"))?;
    say!("Revoked session {id}");
    if session.session_id == id {
        ctx.profile.remove_session(&ctx.server)?;
        say!(
            "That was this session: you are now logged out of {}",
            ctx.server
        );
    }
    Ok(())
}

/// The username from the command line, or asked for on the terminal.
fn username_arg(arg: Option<String>) -> anyhow::Result<String> {
    if let Some(name) = arg {
        return Ok(name);
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!("give the username on the command line (standard input is not a terminal)");
    }
    eprint!("Username: ");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("cannot read the username")?;
    let name = line.trim().to_owned();
    if name.is_empty() {
        bail!("no username given");
    }
    Ok(name)
}

/// The password: one line of standard input, or asked for (twice when `confirm`) on the
/// terminal without echo.
fn read_password(from_stdin: bool, confirm: bool) -> anyhow::Result<Zeroizing<String>> {
    if from_stdin {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        return password_from_line(line);
    }
    let prompt = |text: &str| {
        rpassword::prompt_password(text)
            .map(Zeroizing::new)
            .context("cannot ask for the password (no terminal?); pipe it in with --password-stdin")
    };
    let password = prompt("Password: ")?;
    if password.is_empty() {
        bail!("no password given");
    }
    if confirm {
        let again = prompt("Repeat the password: ")?;
        if *again != *password {
            bail!("the passwords do not match");
        }
    }
    Ok(password)
}

/// The password rules, shown before a new password is asked for.
fn password_rules() -> String {
    use sesame_proto::policy::{PASSWORD_MAX_CHARS, PASSWORD_MIN_CHARS};
    format!(
        "Choose a password of {PASSWORD_MIN_CHARS} to {PASSWORD_MAX_CHARS} characters (a few \
         words are easiest to remember), not containing your username, and not one of the \
         30,000 most common passwords."
    )
}

/// A new password for `username`: the rules shown first, and checked before it is repeated.
fn read_new_password(from_stdin: bool, username: &str) -> anyhow::Result<Zeroizing<String>> {
    let canonical = sesame_proto::policy::Username::parse(username)?;
    if from_stdin {
        let password = read_password(true, false)?;
        check_password(&password, &canonical)?;
        return Ok(password);
    }
    eprintln!("{}", password_rules());
    loop {
        let password = read_password(false, false)?;
        match check_password(&password, &canonical) {
            Ok(()) => {}
            Err(e) => {
                eprintln!("{e}; try another.");
                continue;
            }
        }
        let again = rpassword::prompt_password("Repeat the password: ")
            .map(Zeroizing::new)
            .context("cannot ask for the password")?;
        if *again == *password {
            return Ok(password);
        }
        eprintln!("The two entries differ; once more.");
    }
}

/// The policy's verdict on a new password, as the error the CLI prints.
fn check_password(
    password: &str,
    canonical: &sesame_proto::policy::Username,
) -> anyhow::Result<()> {
    sesame_proto::policy::check_password(password, canonical)
        .map_err(|e| anyhow::anyhow!("password refused: {e}"))
}

/// Strips the line ending of a password read from standard input (nothing else: spaces are
/// part of the password).
fn password_from_line(mut line: Zeroizing<String>) -> anyhow::Result<Zeroizing<String>> {
    let len = line.trim_end_matches(['\n', '\r']).len();
    line.truncate(len);
    if line.is_empty() {
        bail!("no password on standard input");
    }
    Ok(line)
}

/// Whether the URL's host is a loopback name or address.
fn is_loopback(url: &sesame_client::Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC`.
/// Both ends of a session: the absolute expiry, and the idle timeout that ends it sooner
/// when it goes unused (each command that refreshes it restarts the idle clock).
fn session_lifetime(session: &StoredSession) -> String {
    let until = fmt_time(i64::try_from(session.session_expires_at).unwrap_or(i64::MAX));
    match session.session_idle_timeout {
        0 => format!("is valid until {until}"),
        idle => format!(
            "ends after {} without use, and on {until} at the latest",
            humantime::format_duration(std::time::Duration::from_secs(idle))
        ),
    }
}

fn fmt_time(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        secs / 3_600,
        secs % 3_600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests;
