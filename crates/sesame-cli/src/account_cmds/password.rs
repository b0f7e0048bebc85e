//! `sesame profile`, `sesame passwd` and `sesame delete-account`.

use std::io::Write as _;

use anyhow::{bail, Context as _};
use sesame_client::account::{PasswordChanged, ProfileUpdate};
use sesame_client::messaging::{self, KeyDirectory, MessagingStore};
use sesame_client::profile::StoredSession;
use sesame_client::Error as ClientError;

use crate::client_cmds::Ctx;

use super::prompt::{new_password, prompt_line, secret};
use super::{protected, DeleteAccountArgs, PasswdArgs, ProfileArgs, ReauthArgs};

pub(super) async fn profile(ctx: &Ctx, args: ProfileArgs) -> anyhow::Result<()> {
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
        tell(args.json, "Profile updated.");
    }
    let (email, code) = (args.email.clone(), args.email_code.clone());
    email_change(ctx, email, code, args.remove_email, args.json).await?;
    let (_, account) = ctx
        .authed(move |token| async move { client.account(&token).await })
        .await?;
    if args.json {
        say!("{}", serde_json::to_string_pretty(&account)?);
        return Ok(());
    }
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

/// `profile --email`, `--email-code` and `--remove-email`.
async fn email_change(
    ctx: &Ctx,
    email: Option<String>,
    mut code: Option<String>,
    remove: bool,
    json: bool,
) -> anyhow::Result<()> {
    let client = &ctx.client;
    let reauth = || ReauthArgs {
        password_stdin: false,
    };
    if remove {
        protected(ctx, reauth(), move |token| async move {
            client.remove_email(&token).await
        })
        .await
        .context("cannot remove the email address")?;
        tell(json, "Email address removed.");
        return Ok(());
    }
    if let Some(email) = email {
        let email = &email;
        protected(ctx, reauth(), move |token| async move {
            client.change_email_start(&token, email).await
        })
        .await
        .context("cannot change the email address")?;
        tell(
            json,
            &format!("A code was sent to {email}: the address changes when it is entered."),
        );
        if code.is_none() && std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            let typed = prompt_line("Code from the mail (empty to enter it later): ")?;
            code = Some(typed.trim().to_owned()).filter(|c| !c.is_empty());
        }
        if code.is_none() {
            tell(json, "Later: sesame profile --email-code CODE");
        }
    }
    if let Some(code) = code {
        let code = code.trim();
        let (_, now) = ctx
            .authed(move |token| async move { client.change_email_finish(&token, code).await })
            .await
            .context("cannot confirm the new email address")?;
        tell(json, &format!("Email address changed to {now}."));
    }
    Ok(())
}

/// A line for the person: on standard output, or on standard error when standard output
/// carries JSON.
fn tell(json: bool, line: &str) {
    if json {
        eprintln!("{line}");
    } else {
        say!("{line}");
    }
}

pub(super) async fn passwd(ctx: &Ctx, args: PasswdArgs) -> anyhow::Result<()> {
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
    let store = MessagingStore::new(&ctx.profile);
    let result = async {
        let directory = KeyDirectory::new(&ctx.client)?;
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
        Ok(true) => {
            say!("Messaging: identity keys and conversations re-wrapped for the new password.");
            crate::chat::warn_set_aside(&store);
        }
        Ok(false) => {}
        Err(e) => eprintln!(
            "warning: could not re-wrap the messaging identity keys for the new password: {e}; \
             they may have to be replaced at the next login"
        ),
    }
}

pub(super) async fn delete_account(ctx: &Ctx, args: DeleteAccountArgs) -> anyhow::Result<()> {
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
