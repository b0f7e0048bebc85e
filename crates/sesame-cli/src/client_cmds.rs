//! The client subcommands: `register`, `login`, `logout`, `whoami`, `sessions`.
//!
//! The profile ([`sesame_client::profile`]) keeps the server keys pinned on first use and the
//! current login of each server between runs.

use std::future::Future;
use std::io::{BufRead as _, IsTerminal as _, Write as _};

use anyhow::{anyhow, bail, Context as _};
use clap::{Args, Subcommand};
use sesame_client::profile::{unix_now, Profile, ProfileError, StoredSession, Trust};
use sesame_client::{Client, ClientPolicy, Error as ClientError, LoginOutcome};
use uuid::Uuid;
use zeroize::Zeroizing;

/// Prints a line on standard output, ignoring write errors: a closed pipe (`sesame sessions |
/// head`) must not turn into a panic, and there is nothing better to do with the output.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

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
    Whoami,
    /// List your sessions, or revoke one.
    Sessions(SessionsArgs),
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
    let ctx = Ctx::new(server)?;
    match cmd {
        ClientCommand::Register(args) => register(&ctx, args).await,
        ClientCommand::Login(args) => login(&ctx, args).await,
        ClientCommand::Logout(args) => logout(&ctx, args).await,
        ClientCommand::Whoami => whoami(&ctx).await,
        ClientCommand::Sessions(args) => match args.action {
            None => list_sessions(&ctx).await,
            Some(SessionsAction::Revoke { id }) => revoke_session(&ctx, id).await,
        },
    }
}

/// What every client command works with.
pub(crate) struct Ctx {
    pub(crate) profile: Profile,
    /// The canonical server URL (the profile's key).
    pub(crate) server: String,
    pub(crate) client: Client,
}

/// This device's login key for one account on one server (`sesame 2fa device on`).
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct DeviceKey {
    /// The id the server gave the key.
    pub(crate) id: String,
    /// The Ed25519 seed, base64url.
    pub(crate) seed: String,
}

impl Ctx {
    /// `<profile>/devices/<server>.json`: username → [`DeviceKey`] (mode 0600).
    fn devices_path(&self) -> std::path::PathBuf {
        let stem: String = self
            .server
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        self.profile
            .root()
            .join("devices")
            .join(format!("{stem}.json"))
    }

    fn device_keys(&self) -> anyhow::Result<std::collections::BTreeMap<String, DeviceKey>> {
        match std::fs::read(self.devices_path()) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).context("device key file is corrupt")?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Default::default()),
            Err(e) => Err(e).context("cannot read the device key file"),
        }
    }

    /// This device's key for `username`, if one was registered here.
    pub(crate) fn device_key(
        &self,
        username: &str,
    ) -> anyhow::Result<Option<(String, ed25519_dalek::SigningKey)>> {
        let Some(d) = self.device_keys()?.remove(username) else {
            return Ok(None);
        };
        let seed: [u8; 32] = sesame_proto::b64::decode(&d.seed)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| anyhow!("device key file is corrupt"))?;
        Ok(Some((d.id, ed25519_dalek::SigningKey::from_bytes(&seed))))
    }

    /// Stores this device's key for `username`.
    pub(crate) fn save_device_key(
        &self,
        username: &str,
        id: &str,
        key: &ed25519_dalek::SigningKey,
    ) -> anyhow::Result<()> {
        let mut all = self.device_keys()?;
        all.insert(
            username.to_owned(),
            DeviceKey {
                id: id.to_owned(),
                seed: sesame_proto::b64::encode(key.to_bytes()),
            },
        );
        let bytes = serde_json::to_vec_pretty(&all)?;
        sesame_client::profile::write_atomic(&self.devices_path(), &bytes)
            .map_err(|(action, e)| anyhow!("cannot {action} the device key file: {e}"))
    }

    /// The client, signing logins with this device's key for `username` when there is one.
    pub(crate) fn client_for(&self, username: &str) -> anyhow::Result<Client> {
        let canonical = sesame_proto::policy::Username::parse(username)
            .map(|u| u.as_str().to_owned())
            .unwrap_or_else(|_| username.to_owned());
        Ok(match self.device_key(&canonical)? {
            Some((id, key)) => self.client.clone().with_device_key(id, key),
            None => self.client.clone(),
        })
    }

    pub(crate) fn new(server_url: &str) -> anyhow::Result<Ctx> {
        let server = sesame_client::server_id(server_url)?;
        let profile = Profile::open()?;
        let pinned = profile.pinned_key(&server)?;
        let policy = ClientPolicy {
            pinned_server_key: pinned,
            ..ClientPolicy::default()
        };
        let client = Client::new(&server, policy)?;
        if client.base_url().scheme() == "http" && !is_loopback(client.base_url()) {
            eprintln!(
                "warning: {server} is plain HTTP: OPAQUE keeps the password safe, but session \
                 tokens travel unencrypted; use https:// outside a test setup"
            );
        }
        Ok(Ctx {
            profile,
            server,
            client,
        })
    }

    /// Pins the server key on first use and says so.
    pub(crate) fn trust(&self, key: &[u8; 32]) -> anyhow::Result<()> {
        match self.profile.trust_server(&self.server, key)? {
            Trust::Pinned => say!(
                "Trusting server key {} for {}",
                sesame_client::fingerprint(key),
                self.server
            ),
            Trust::AlreadyPinned => {}
        }
        Ok(())
    }

    /// Turns a library error into one that tells the user what to do.
    pub(crate) fn explain(&self, err: ClientError) -> anyhow::Error {
        match err {
            ClientError::ServerKeyMismatch {
                server,
                pinned,
                presented,
            } => anyhow!(ProfileError::KeyChanged {
                server,
                pinned,
                presented,
                path: self.profile.known_servers_path(),
            }),
            ClientError::Server {
                retry_after: Some(secs),
                ..
            } => anyhow!("{err}; try again in {secs} s"),
            other => anyhow!(other),
        }
    }

    pub(crate) fn stored_session(&self) -> anyhow::Result<StoredSession> {
        self.profile
            .load_session(&self.server)?
            .ok_or_else(|| anyhow!("not logged in to {}; run `sesame login`", self.server))
    }

    /// A usable access token for `session`, refreshed (and saved) when it has expired.
    pub(crate) async fn access_token(&self, session: &mut StoredSession) -> anyhow::Result<String> {
        let now = unix_now();
        if session.access_expired(now) {
            self.refresh(session).await?;
        }
        Ok(session.access_token.clone())
    }

    /// Refreshes the access token of `session` and saves it; a dead session is forgotten.
    pub(crate) async fn refresh(&self, session: &mut StoredSession) -> anyhow::Result<()> {
        match self.client.refresh(&session.session_token).await {
            Ok(refreshed) => {
                session.apply_refresh(&refreshed, unix_now());
                self.profile.save_session(session)?;
                Ok(())
            }
            Err(e) if e.is_unauthorized() => {
                self.profile.remove_session(&self.server)?;
                bail!(
                    "your session on {} has expired or was revoked; log in again with \
                     `sesame login`",
                    self.server
                )
            }
            Err(e) => Err(self.explain(e)).context("cannot refresh the access token"),
        }
    }

    /// Runs `call` with a fresh access token of the stored session, refreshing once more if
    /// the server refuses the token (it may have expired early, or the clocks disagree).
    pub(crate) async fn authed<T, F, Fut>(&self, call: F) -> anyhow::Result<(StoredSession, T)>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let mut session = self.stored_session()?;
        let token = self.access_token(&mut session).await?;
        match call(token).await {
            Ok(value) => Ok((session, value)),
            Err(e) if e.is_unauthorized() => {
                self.refresh(&mut session).await?;
                let value = call(session.access_token.clone())
                    .await
                    .map_err(|e| self.explain(e))?;
                Ok((session, value))
            }
            Err(e) => Err(self.explain(e)),
        }
    }
}

async fn register(ctx: &Ctx, args: RegisterArgs) -> anyhow::Result<()> {
    let username = username_arg(args.username)?;
    let password = read_password(args.password_stdin, true)?;
    if args.server_assisted {
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
    let registration = ctx
        .client
        .register(&username, &password)
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
    );
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
        "Session {} is valid until {}",
        session.session_id,
        fmt_time(i64::try_from(session.session_expires_at).unwrap_or(i64::MAX))
    );
    crate::keys_cmds::after_login(&ctx.profile, &ctx.client, &session, &login.export_key).await;
    // The replaced login is revoked rather than left alive on the server, unreachable.
    if let Some(mut old) = previous.filter(|old| old.session_id != session.session_id) {
        let revoked = match ctx.access_token_of(&mut old).await {
            Some(token) => ctx.client.logout(&token).await.is_ok(),
            None => false,
        };
        if revoked {
            say!("Logged out the previous session of {}", old.username);
        }
    }
    Ok(())
}

impl Ctx {
    /// A usable access token for a session that is not (or no longer) the stored one, without
    /// saving anything; `None` if the session is dead or the server unreachable.
    async fn access_token_of(&self, session: &mut StoredSession) -> Option<String> {
        let now = unix_now();
        if session.access_expired(now) {
            let refreshed = self.client.refresh(&session.session_token).await.ok()?;
            session.apply_refresh(&refreshed, now);
        }
        Some(session.access_token.clone())
    }
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

async fn whoami(ctx: &Ctx) -> anyhow::Result<()> {
    let client = &ctx.client;
    let (session, me) = ctx
        .authed(move |token| async move { client.me(&token).await })
        .await?;
    say!("Logged in to {} as {}", ctx.server, me.username);
    say!("  user id:      {}", me.user_id);
    say!("  status:       {}", me.status);
    say!("  created:      {}", fmt_time(me.created_at));
    if let Some(last) = me.last_login_at {
        say!("  last login:   {}", fmt_time(last));
    }
    say!(
        "  session:      {} (valid until {})",
        session.session_id,
        fmt_time(i64::try_from(session.session_expires_at).unwrap_or(i64::MAX))
    );
    if let Some(key) = ctx.client.policy().pinned_server_key {
        say!("  server key:   {}", sesame_client::fingerprint(&key));
    }
    Ok(())
}

async fn list_sessions(ctx: &Ctx) -> anyhow::Result<()> {
    let client = &ctx.client;
    let (session, mut list) = ctx
        .authed(move |token| async move { client.sessions(&token).await })
        .await?;
    list.sort_by_key(|s| std::cmp::Reverse(s.last_seen_at));
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
mod tests {
    use super::*;

    #[test]
    fn times_print_in_utc() {
        assert_eq!(fmt_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(fmt_time(1_767_225_600), "2026-01-01 00:00:00 UTC");
        assert_eq!(fmt_time(951_825_599), "2000-02-29 11:59:59 UTC");
        assert_eq!(fmt_time(4_102_444_800), "2100-01-01 00:00:00 UTC");
        assert_eq!(fmt_time(-1), "1969-12-31 23:59:59 UTC");
    }

    #[test]
    fn stdin_passwords_lose_only_the_line_ending() {
        let p = |s: &str| password_from_line(Zeroizing::new(s.to_owned()));
        assert_eq!(p("secret pw\n").unwrap().as_str(), "secret pw");
        assert_eq!(p("secret pw\r\n").unwrap().as_str(), "secret pw");
        assert_eq!(p(" spaced \n").unwrap().as_str(), " spaced ");
        assert_eq!(p("no newline").unwrap().as_str(), "no newline");
        assert!(p("\n").is_err());
        assert!(p("").is_err());
    }

    #[test]
    fn loopback_hosts_are_recognised() {
        let url = |s: &str| sesame_client::parse_server_url(s).unwrap();
        assert!(is_loopback(&url("http://127.0.0.1:7878")));
        assert!(is_loopback(&url("http://localhost:7878")));
        assert!(is_loopback(&url("http://[::1]:7878")));
        assert!(!is_loopback(&url("http://example.com")));
        assert!(!is_loopback(&url("http://10.0.0.1")));
    }
}
