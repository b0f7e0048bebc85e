//! `sesame 2fa` (TOTP and device keys) and `sesame backup-codes`.

use std::io::{IsTerminal as _, Write as _};

use anyhow::{bail, Context as _};
use sesame_client::Error as ClientError;

use crate::client_cmds::Ctx;

use super::prompt::prompt_line;
use super::{
    protected, ReauthArgs, TwoFaDeviceArgs, TwoFaDisableArgs, TwoFaEnableArgs, CODE_TRIES,
};
use sesame_client::api::CredentialError;

/// `sesame 2fa status`.
pub(super) async fn status(ctx: &Ctx, json: bool) -> anyhow::Result<()> {
    let client = &ctx.client;
    let (_, me) = ctx
        .authed(move |token| async move { client.me(&token).await })
        .await?;
    if json {
        let v = serde_json::json!({
            "totp_enabled": me.totp_enabled,
            "backup_codes_left": me.backup_codes_left,
            "security_questions": me.security_questions,
        });
        say!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    say!(
        "Authenticator app:  {}",
        if me.totp_enabled {
            "on (every login asks for a code)"
        } else {
            "off"
        }
    );
    say!("Backup codes left:  {}", me.backup_codes_left);
    say!("Security questions: {}", me.security_questions);
    if !me.totp_enabled {
        say!("Turn the authenticator on with `sesame 2fa enable`.");
    }
    Ok(())
}

pub(super) async fn totp_enable(ctx: &Ctx, args: TwoFaEnableArgs) -> anyhow::Result<()> {
    let client = &ctx.client;
    // Already on: a new enrolment would silently replace it only once confirmed; say so.
    let (_, me) = ctx
        .authed(move |token| async move { client.me(&token).await })
        .await?;
    if me.totp_enabled {
        anyhow::bail!(
            "the authenticator app is already on; to move it to another app, turn it off \
             first (`sesame 2fa disable`), then enable it again"
        );
    }
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
pub(super) async fn device_factor(ctx: &Ctx, args: TwoFaDeviceArgs) -> anyhow::Result<()> {
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

pub(super) async fn totp_disable(ctx: &Ctx, args: TwoFaDisableArgs) -> anyhow::Result<()> {
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

pub(super) async fn regenerate_backup_codes(ctx: &Ctx, reauth: ReauthArgs) -> anyhow::Result<()> {
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
pub(super) fn show_backup_codes(codes: &[String]) {
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
mod tests;
