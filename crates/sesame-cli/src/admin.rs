//! `sesame admin`: operator commands on the configured database. They need the master key,
//! so they run where the server's configuration is, not over the network.

use anyhow::Context as _;
use sesame_server::service::{AdminAction, UserSummary};
use sesame_server::store::{AuditRecord, Role};

use crate::serve::{load_config, StorageArgs};

/// Flags and subcommands of `sesame admin`.
#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    #[command(flatten)]
    storage: StorageArgs,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AdminCommand {
    /// List the accounts (newest last), with status, role, second factor and sessions.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Act on one account: show, ban, unban, grant or revoke the admin role.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Sessions of an account: end them all.
    Sessions {
        #[command(subcommand)]
        command: SessionsCommand,
    },
    /// The audit log, newest first.
    Audit {
        /// Only this user's entries.
        #[arg(long)]
        user: Option<String>,
        /// Only entries since TIME: RFC 3339 (2026-01-01T00:00:00Z), a duration ago (2h, 7d)
        /// or unix seconds.
        #[arg(long)]
        since: Option<String>,
        /// At most this many entries.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Print a fresh random master key (for SESAME_MASTER_KEY or a key file).
    GenMasterKey,
    /// The OpenID Connect provider's clients (docs/oidc.md).
    Oidc {
        #[command(subcommand)]
        command: crate::admin_oidc::OidcCommand,
    },
    /// The OpenID Connect ID-token signing keys: rotation (docs/oidc.md).
    Keys {
        #[command(subcommand)]
        command: crate::admin_oidc::KeysCommand,
    },
    /// Groups, for the OpenID Connect `groups` claim.
    Group {
        #[command(subcommand)]
        command: crate::admin_oidc::GroupCommand,
    },
}

#[derive(Debug, clap::Subcommand)]
enum UsersCommand {
    /// List users in creation order.
    List {
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Skip this many.
        #[arg(long, default_value_t = 0)]
        offset: u32,
    },
}

#[derive(Debug, clap::Subcommand)]
enum UserCommand {
    /// Create an account whose password nobody knows, and print a one-time code with which
    /// its owner sets one (`sesame recover NAME --reset-code CODE`).
    Create {
        /// Username.
        name: String,
        /// How long the code stays valid (e.g. 30m, 24h, 7d; at most 30d).
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        valid: std::time::Duration,
    },
    /// Print a one-time password-reset code for a user to redeem with `sesame recover NAME
    /// --reset-code CODE` (you never choose or see their password). A second factor still
    /// applies at their next login; an earlier code stops working.
    ResetPassword {
        /// Username.
        name: String,
        /// How long the code stays valid (e.g. 30m, 24h, 7d; at most 30d).
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        valid: std::time::Duration,
    },
    /// Show a user.
    Show {
        /// Username.
        name: String,
    },
    /// Ban a user: no login, every session revoked.
    Ban {
        /// Username.
        name: String,
    },
    /// Lift a ban.
    Unban {
        /// Username.
        name: String,
    },
    /// Give a user the admin role: the admin API (`/api/admin/…`) and the web admin page.
    GrantAdmin {
        /// Username.
        name: String,
    },
    /// Take the admin role back (effective at the user's next admin request).
    RevokeAdmin {
        /// Username.
        name: String,
    },
    /// Delete a user's account for good (sessions, keys, messages); asks unless --yes.
    Delete {
        /// Username.
        name: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Remove a user's second factors (authenticator, device-key requirement, passkeys), so
    /// the password alone signs in again; backup codes stay.
    Reset2fa {
        /// Username.
        name: String,
    },
    /// List a user's passkeys (id, name, created, last used).
    Passkeys {
        /// Username.
        name: String,
    },
    /// Remove one of a user's passkeys (audited); the last one also ends the requirement of a
    /// phishing-resistant second factor.
    RemovePasskey {
        /// Username.
        name: String,
        /// The passkey id (from `passkeys`).
        id: String,
    },
}

#[derive(Debug, clap::Subcommand)]
enum SessionsCommand {
    /// List a user's live sessions (device, address, last use).
    List {
        /// Username.
        name: String,
    },
    /// Revoke every session of a user.
    Revoke {
        /// Username.
        name: String,
    },
}

/// Runs one admin command.
pub async fn run(args: AdminArgs) -> anyhow::Result<()> {
    if let AdminCommand::GenMasterKey = args.command {
        let key = sesame_server::secrets::MasterKey::generate().to_text();
        if args.json {
            println!("{}", serde_json::json!({ "master_key": &*key }));
        } else {
            println!("{}", &*key);
        }
        return Ok(());
    }
    let config = load_config(args.storage.config.as_deref(), &args.storage)?;
    let (store, master) = sesame_server::server::open_existing(&config).await?;
    let sesame = sesame_server::server::build(&config, store.clone(), &master).await?;
    let result = command(&sesame, args.command, args.json).await;
    store.close().await;
    result
}

async fn command(s: &sesame_server::Sesame, cmd: AdminCommand, json: bool) -> anyhow::Result<()> {
    match cmd {
        AdminCommand::Users {
            command: UsersCommand::List { limit, offset },
        } => {
            let users = s.admin_users(limit, offset).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&users)?);
            } else if users.is_empty() {
                println!("no users");
            } else {
                for u in &users {
                    println!("{}", user_line(u));
                }
            }
        }
        AdminCommand::User { command } => user_command(s, command, json).await?,
        AdminCommand::Sessions {
            command: SessionsCommand::List { name },
        } => {
            let sessions = s.admin_sessions(&name).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&sessions)?);
            } else if sessions.is_empty() {
                println!("{name} has no live session");
            } else {
                for v in &sessions {
                    println!(
                        "{}  created {}  last used {}  from {}  {}",
                        v.id,
                        time(v.created_at),
                        time(v.last_seen_at),
                        v.client_addr.as_deref().unwrap_or("-"),
                        v.user_agent.as_deref().unwrap_or("-"),
                    );
                }
            }
        }
        AdminCommand::Sessions {
            command: SessionsCommand::Revoke { name },
        } => {
            let n = s.admin_revoke_sessions(&name).await?;
            done(json, &format!("revoked {n} session(s) of {name}"))?;
        }
        AdminCommand::Audit { user, since, limit } => {
            let since = since.map(|t| parse_since(&t, s.now())).transpose()?;
            let entries = s.admin_audit(user.as_deref(), since, limit).await?;
            let ids: Vec<_> = entries.iter().filter_map(|e| e.user_id).collect();
            let names = s.usernames_of(ids).await?;
            let name = |e: &AuditRecord| e.user_id.and_then(|id| names.get(&id).cloned());
            if json {
                let v: Vec<_> = entries.iter().map(|e| audit_json(e, name(e))).collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for e in &entries {
                    println!("{}", audit_line(e, name(e)));
                }
            }
        }
        AdminCommand::GenMasterKey => {}
        AdminCommand::Oidc { command } => crate::admin_oidc::oidc(s, command, json).await?,
        AdminCommand::Keys { command } => crate::admin_oidc::keys(s, command, json).await?,
        AdminCommand::Group { command } => crate::admin_oidc::group(s, command, json).await?,
    }
    Ok(())
}

/// `sesame admin user …`.
async fn user_command(
    s: &sesame_server::Sesame,
    command: UserCommand,
    json: bool,
) -> anyhow::Result<()> {
    let user = match command {
        UserCommand::Show { name } => s.admin_user(&name).await?,
        UserCommand::Ban { name } => s.admin_set_banned(&name, true).await?,
        UserCommand::Unban { name } => s.admin_set_banned(&name, false).await?,
        UserCommand::GrantAdmin { name } => s.admin_set_role(&name, Role::Admin).await?,
        UserCommand::RevokeAdmin { name } => s.admin_set_role(&name, Role::User).await?,
        UserCommand::Passkeys { name } => return passkeys(s, &name, json).await,
        UserCommand::Create { name, valid } => {
            let issued = s.admin_create_user(&name, valid).await?;
            return print_reset_code(&issued, "created", json);
        }
        UserCommand::ResetPassword { name, valid } => {
            let issued = s.admin_issue_reset_code(&name, valid).await?;
            return print_reset_code(&issued, "reset code for", json);
        }
        UserCommand::Delete { name, yes } => {
            if !yes {
                anyhow::bail!("deleting {name} cannot be undone: run again with --yes");
            }
            s.admin_operator_act(&name, AdminAction::Delete).await?;
            return done(json, &format!("deleted {name}"));
        }
        UserCommand::Reset2fa { name } => {
            let n = s
                .admin_operator_act(&name, AdminAction::ResetSecondFactors)
                .await?;
            return done(json, &format!("removed {n} second factor(s) of {name}"));
        }
        UserCommand::RemovePasskey { name, id } => {
            s.admin_remove_passkey(&name, &id).await?;
            return done(json, &format!("removed passkey {id} of {name}"));
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&user)?);
    } else {
        println!("{}", user_line(&user));
    }
    Ok(())
}

/// Shows a reset code once, with what the person does with it.
fn print_reset_code(
    issued: &sesame_server::service::IssuedResetCode,
    what: &str,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(issued)?);
        return Ok(());
    }
    let name = &issued.username;
    println!("{what} {name}: one-time code {}", issued.code);
    println!(
        "valid until {}; shown once, not stored in clear",
        time(issued.expires_at)
    );
    println!(
        "{name} sets a new password with: sesame recover {name} --reset-code {}",
        issued.code
    );
    Ok(())
}

/// `sesame admin user passkeys NAME`.
async fn passkeys(s: &sesame_server::Sesame, name: &str, json: bool) -> anyhow::Result<()> {
    let list = s.admin_passkeys(name).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    if list.passkeys.is_empty() {
        println!("no passkeys");
    }
    for p in &list.passkeys {
        let used = p.last_used_at.map_or_else(|| "never".to_owned(), time);
        let synced = if p.backup_eligible { " synced" } else { "" };
        println!(
            "{}  {:?}  created={}  last_used={used}{synced}",
            p.id,
            p.name,
            time(p.created_at)
        );
    }
    if list.phishing_resistant_required {
        println!("phishing-resistant second factor required");
    }
    Ok(())
}

fn time(secs: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0).unsigned_abs());
    humantime::format_rfc3339_seconds(t).to_string()
}

fn user_line(u: &UserSummary) -> String {
    format!(
        "{:<32} {}  {:<7}  {:<5}  created {}  last login {}  sessions {}  totp {}",
        u.username,
        u.id,
        u.status.as_str(),
        u.role.as_str(),
        time(u.created_at),
        u.last_login_at.map(time).unwrap_or_else(|| "never".into()),
        u.sessions,
        if u.totp_enabled { "on" } else { "off" },
    )
}

/// One audit row for the operator: the user by name (and id), `(deleted)` when the account
/// is gone.
fn audit_line(e: &AuditRecord, name: Option<String>) -> String {
    let user = match (e.user_id, name) {
        (Some(id), Some(name)) => format!("{name} ({id})"),
        (Some(id), None) => format!("(deleted) ({id})"),
        (None, _) => "-".into(),
    };
    format!(
        "{}  {:<26} user={} reason={} addr={} agent={}",
        time(e.at),
        e.event,
        user,
        e.reason.as_deref().unwrap_or("-"),
        e.client_addr.as_deref().unwrap_or("-"),
        e.user_agent.as_deref().unwrap_or("-"),
    )
}

fn audit_json(e: &AuditRecord, name: Option<String>) -> serde_json::Value {
    serde_json::json!({
        "id": e.id, "at": time(e.at), "event": e.event, "user_id": e.user_id, "username": name,
        "reason": e.reason, "client_addr": e.client_addr, "user_agent": e.user_agent,
    })
}

/// RFC 3339, a duration ago (`2h`, `7d`), or unix seconds.
fn parse_since(text: &str, now: u64) -> anyhow::Result<i64> {
    if let Ok(secs) = text.parse::<i64>() {
        return Ok(secs);
    }
    if let Ok(t) = humantime::parse_rfc3339_weak(text) {
        let secs = t.duration_since(std::time::UNIX_EPOCH)?.as_secs();
        return Ok(i64::try_from(secs)?);
    }
    let ago = humantime::parse_duration(text).with_context(|| {
        format!("--since {text}: not RFC 3339, a duration (2h, 7d) or unix seconds")
    })?;
    Ok(i64::try_from(now.saturating_sub(ago.as_secs()))?)
}

/// Says what an action did: a line, or `{"done": …}` with `--json`.
pub(crate) fn done(json: bool, what: &str) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::json!({ "done": what }));
    } else {
        println!("{what}");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
