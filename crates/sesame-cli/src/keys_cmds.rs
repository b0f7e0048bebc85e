//! `sesame keys show|verify|trust`, and the identity-key setup that `sesame register` and
//! `sesame login` run ([`after_register`], [`after_login`]).

use std::io::Write as _;

use clap::{Args, Subcommand};
use sesame_client::messaging::{
    self, ContactTrust, IdentitySource, KeyDirectory, MessagingError, MessagingStore, Messenger,
    ResolvedContact,
};
use sesame_client::profile::{Profile, StoredSession};
use sesame_client::Client;
use sesame_proto::e2e::PublicIdentity;

use crate::chat::MsgCtx;

/// Prints a line on standard output, ignoring write errors (a closed pipe).
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// Flags of `sesame keys`.
#[derive(Debug, Args)]
pub struct KeysArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: KeysAction,
}

/// Actions of `sesame keys`.
#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Show a user's published keys and whether they are pinned and verified (your own keys
    /// without USER).
    Show {
        /// The user (yourself when omitted).
        user: Option<String>,
        /// Print JSON instead of text (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Print the safety number of you and USER, to compare with them out of band.
    Verify {
        /// The other user.
        user: String,
        /// The safety number matched: mark USER's keys as verified.
        #[arg(long)]
        confirm: bool,
    },
    /// Accept the new keys of USER after a key change (check with them first).
    Trust {
        /// The user whose keys changed.
        user: String,
        /// Do not ask for confirmation (for scripts).
        #[arg(long)]
        yes: bool,
    },
}

/// Runs `sesame keys …` against `server`.
pub async fn run(server: &str, args: KeysArgs) -> anyhow::Result<()> {
    let ctx = MsgCtx::new(server).await?;
    let mut session = ctx.stored_session()?;
    let messenger = ctx.messenger(&session)?;
    // A cheap authenticated call first, so that a refused token is refreshed once here.
    let (m, own_name) = (&messenger, messenger.username());
    let own = ctx
        .authed(&mut session, |token| async move {
            Ok(m.directory().lookup(&token, own_name).await?)
        })
        .await;
    let token = session.access_token.clone();
    match args.action {
        KeysAction::Show { user: None, json } if json => {
            let me = messenger.public();
            let published = match own {
                Ok(Some(entry)) => Some(entry.identity.same_keys(&me)),
                Ok(None) => Some(false),
                Err(_) => None,
            };
            let mut v = identity_json(messenger.username(), &me);
            v["published"] = serde_json::json!(published);
            say!("{}", serde_json::to_string_pretty(&v)?);
        }
        KeysAction::Show { user: None, .. } => {
            let me = messenger.public();
            say!(
                "Your identity keys ({} on {}):",
                messenger.username(),
                ctx.server
            );
            print_identity(&me);
            match own {
                Ok(Some(entry)) if entry.identity.same_keys(&me) => {
                    say!("  published:        yes")
                }
                Ok(Some(_)) => say!(
                    "  published:        NO: the server publishes OTHER keys for you; log in \
                     again to republish yours"
                ),
                Ok(None) => say!("  published:        no; log in again to publish them"),
                Err(e) => say!("  published:        unknown ({e})"),
            }
        }
        KeysAction::Show {
            user: Some(user),
            json,
        } => {
            let resolved = resolve_loudly(&messenger, &token, &user).await?;
            if json {
                let mut v = identity_json(&resolved.username, &resolved.contact.identity);
                v["verified"] = (resolved.contact.trust == ContactTrust::Verified).into();
                say!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            say!("Keys of {} on {}:", resolved.username, ctx.server);
            print_identity(&resolved.contact.identity);
            say!("  {}", pin_state(&resolved));
        }
        KeysAction::Verify { user, confirm } => verify(&messenger, &token, &user, confirm).await?,
        KeysAction::Trust { user, yes } => {
            confirm_trust(&messenger, &user, yes)?;
            trust(&messenger, &token, &user).await?
        }
    }
    Ok(())
}

/// `sesame keys verify USER [--confirm]`: shows the safety number, or marks the keys verified.
async fn verify(
    messenger: &Messenger,
    token: &str,
    user: &str,
    confirm: bool,
) -> anyhow::Result<()> {
    let resolved = resolve_loudly(messenger, token, user).await?;
    let number = messenger.safety_number(&resolved.username, &resolved.contact.identity);
    say!(
        "Safety number of {} and {}:",
        messenger.username(),
        resolved.username
    );
    say!("");
    for line in safety_lines(&number) {
        say!("    {line}");
    }
    say!("");
    if confirm {
        messenger.mark_verified(&resolved.username)?;
        say!(
            "Marked the keys of {} as verified (fingerprint {})",
            resolved.username,
            resolved.contact.identity.fingerprint()
        );
    } else {
        say!(
            "Compare it with {} in person or over a channel you trust: they see the \
             same number with `sesame keys verify {}`.",
            resolved.username,
            messenger.username()
        );
        say!(
            "If it matches, run `sesame keys verify {} --confirm`. If it does not, \
             someone may be intercepting your messages.",
            resolved.username
        );
        say!("  {}", pin_state(&resolved));
    }
    Ok(())
}

/// `sesame keys trust USER`: accepts a contact's changed keys.
/// Asks before new keys replace pinned ones (unless `yes`): accepting keys that an attacker
/// substituted is exactly what pinning guards against.
fn confirm_trust(messenger: &Messenger, user: &str, yes: bool) -> anyhow::Result<()> {
    let Some(pinned) = messenger.pinned(user)? else {
        return Ok(()); // nothing pinned: this is a first use, not a replacement
    };
    eprintln!(
        "You are about to replace the pinned keys of {user} ({}){}. Do it only after {user} \
         told you, in person or on a channel you trust, that their keys changed.",
        pinned.identity.fingerprint(),
        pinned
            .changed_to
            .as_ref()
            .map(|new| format!(" with {}", new.fingerprint()))
            .unwrap_or_default()
    );
    if yes {
        return Ok(());
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        anyhow::bail!("not replacing the keys without confirmation: pass --yes");
    }
    eprint!("Accept the new keys of {user}? [y/N] ");
    std::io::Write::flush(&mut std::io::stderr()).ok();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        anyhow::bail!("the pinned keys of {user} were kept")
    }
}

async fn trust(messenger: &Messenger, token: &str, user: &str) -> anyhow::Result<()> {
    let before = messenger.pinned(user)?;
    let resolved = messenger.accept_changed_keys(token, user).await?;
    match before {
        Some(old) if !old.identity.same_keys(&resolved.contact.identity) => {
            say!(
                "Replaced the pinned keys of {}: {} -> {}",
                resolved.username,
                old.identity.fingerprint(),
                resolved.contact.identity.fingerprint()
            );
            say!(
                "The new keys are unverified: compare the safety number with `sesame \
                 keys verify {}`.",
                resolved.username
            );
        }
        _ => say!(
            "Pinned the keys of {} ({}); unverified",
            resolved.username,
            resolved.contact.identity.fingerprint()
        ),
    }
    Ok(())
}

/// Resolves `user`, turning a key change into a loud error.
async fn resolve_loudly(
    messenger: &messaging::Messenger,
    token: &str,
    user: &str,
) -> anyhow::Result<ResolvedContact> {
    match messenger.resolve(token, user).await {
        Ok(r) => {
            if r.first_use {
                say!(
                    "Pinned the keys of {} on first use ({})",
                    r.username,
                    r.contact.identity.fingerprint()
                );
            }
            Ok(r)
        }
        Err(e @ MessagingError::KeyChanged { .. }) => {
            eprintln!("{}", banner(&e.to_string()));
            Err(anyhow::anyhow!(
                "the keys of {user} changed; not trusting them"
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// A loud, framed warning.
pub(crate) fn banner(text: &str) -> String {
    let rule = "!".repeat(72);
    format!("{rule}\n{text}\n{rule}")
}

/// A user's public identity for `--json`.
fn identity_json(username: &str, p: &PublicIdentity) -> serde_json::Value {
    serde_json::json!({
        "username": username,
        "fingerprint": p.fingerprint().to_string(),
        "signing_key": sesame_proto::b64::encode(p.signing_key),
        "encryption_key": sesame_proto::b64::encode(p.encryption_key),
    })
}

fn print_identity(p: &PublicIdentity) {
    say!("  fingerprint:      {}", p.fingerprint());
    say!(
        "  signing key:      {} (Ed25519)",
        sesame_proto::b64::encode(p.signing_key)
    );
    say!(
        "  encryption key:   {} (X25519)",
        sesame_proto::b64::encode(p.encryption_key)
    );
}

fn pin_state(r: &ResolvedContact) -> String {
    match r.contact.trust {
        ContactTrust::Verified => "status: pinned, VERIFIED (safety number confirmed)".into(),
        ContactTrust::Unverified => format!(
            "status: pinned on first use, unverified (compare the safety number: `sesame keys \
             verify {}`)",
            r.username
        ),
    }
}

/// The 12 groups of a safety number in two lines of six.
fn safety_lines(number: &str) -> Vec<String> {
    let groups: Vec<&str> = number.split(' ').collect();
    groups.chunks(6).map(|c| c.join(" ")).collect()
}

/// After a client-side registration: makes the identity keys and keeps them on this device
/// (published at the first login). Never fails the registration: problems are warnings.
pub(crate) fn after_register(
    profile: &Profile,
    server: &str,
    username: &str,
    export_key: &[u8; 64],
    keys: &sesame_proto::e2e::IdentityKeys,
) {
    let store = MessagingStore::new(profile);
    match messaging::keep_identity(&store, server, username, export_key, keys) {
        Ok(public) => say!(
            "Created and published your identity keys for end-to-end messaging ({}): others \
             can write to you now",
            public.fingerprint()
        ),
        Err(e) => eprintln!(
            "warning: could not create identity keys for messaging: {e}; the next login \
             will try again"
        ),
    }
}

/// After a login: restores, creates or confirms the identity keys, publishes them and
/// their encrypted backup. Never fails the login: problems are warnings.
pub(crate) async fn after_login(
    profile: &Profile,
    client: &Client,
    session: &StoredSession,
    export_key: &[u8; 64],
) {
    let result = async {
        let directory = KeyDirectory::new(client)?;
        let store = MessagingStore::new(profile);
        messaging::ensure_identity(&store, &directory, session, export_key).await
    }
    .await;
    match result {
        Ok(report) => {
            for w in &report.warnings {
                eprintln!("{}", banner(&format!("WARNING: {w}")));
            }
            let what = match report.source {
                IdentitySource::Created => "created new identity keys",
                IdentitySource::Backup => "restored your identity keys from the encrypted backup",
                IdentitySource::Device => "identity keys ready",
            };
            let published = if report.published { ", published" } else { "" };
            say!(
                "Messaging: {what}{published} ({})",
                report.public.fingerprint()
            );
        }
        Err(e) => eprintln!(
            "warning: end-to-end messaging is not set up: {:#}",
            anyhow::Error::from(e).context("cannot set up the identity keys")
        ),
    }
}

/// Context for error messages of the messaging commands.
pub(crate) fn explain(e: MessagingError) -> anyhow::Error {
    match e {
        e @ MessagingError::KeyChanged { .. } => {
            eprintln!("{}", banner(&e.to_string()));
            anyhow::anyhow!("refusing to use changed keys")
        }
        other => anyhow::Error::from(other),
    }
    .context("messaging failed")
}

#[cfg(test)]
mod tests;
