//! `sesame security-questions` and `sesame recover`.

use std::io::{IsTerminal as _, Write as _};

use anyhow::{bail, Context as _};
use sesame_client::account::{QuestionAnswer, RecoveryProof};
use sesame_client::messaging::{self, MessagingStore};
use sesame_proto::e2e::{IdentityKeys, WrapKey};
use sesame_proto::policy::Username;

use crate::client_cmds::Ctx;

use super::prompt::{new_password, prompt_line, secret_answer};
use super::two_factor::show_backup_codes;
use super::{protected, ReauthArgs, RecoverArgs};
use sesame_client::api::CredentialError;

pub(super) async fn set_security_questions(ctx: &Ctx, reauth: ReauthArgs) -> anyhow::Result<()> {
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

pub(super) async fn recover(ctx: &Ctx, args: RecoverArgs) -> anyhow::Result<()> {
    let username = args.username.trim().to_owned();
    let mut proof = RecoveryProof {
        backup_code: args.backup_code.map(|c| c.trim().to_owned()),
        email_code: args.email_code.map(|c| c.trim().to_owned()),
        totp_code: args.totp_code.map(|c| c.trim().to_owned()),
        answers: None,
        reset_code: args.reset_code.map(|c| c.trim().to_owned()),
    };
    if proof.backup_code.is_none()
        && proof.email_code.is_none()
        && proof.totp_code.is_none()
        && proof.reset_code.is_none()
    {
        let code = prompt_line("Backup code (or give --email-code or --totp-code): ")?;
        if code.trim().is_empty() {
            bail!("give a backup code, an emailed code, or an authenticator code");
        }
        proof.backup_code = Some(code.trim().to_owned());
    }
    let with_questions = proof.totp_code.is_some() && proof.email_code.is_none();
    let kept = identity_to_keep(ctx, &username, args.yes, args.password_stdin)?;
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
    if let Some((keys, old)) = kept {
        let store = MessagingStore::new(&ctx.profile);
        let canonical = Username::parse(&username)?;
        match messaging::keep_through_recovery(
            &store,
            &ctx.server,
            canonical.as_str(),
            &old,
            &keys,
            &recovered.export_key,
        ) {
            Ok(_) => say!(
                "Messaging: your identity keys and conversations were kept (re-wrapped for the \
                 new password); contacts see no change."
            ),
            Err(e) => eprintln!("warning: could not keep the messaging identity: {e}"),
        }
        crate::chat::warn_set_aside(&store);
    }
    show_backup_codes(&recovered.backup_codes);
    say!("Next: sesame login {username}");
    Ok(())
}

/// The messaging identity this device can keep through the recovery (unlocked by its current
/// login on this server), or, when it cannot, the person's consent to new keys: said before
/// anything changes, asked unless `--yes`.
fn identity_to_keep(
    ctx: &Ctx,
    username: &str,
    yes: bool,
    password_stdin: bool,
) -> anyhow::Result<Option<(IdentityKeys, WrapKey)>> {
    let canonical = Username::parse(username)?;
    let session = ctx
        .profile
        .load_session(&ctx.server)?
        .filter(|s| s.username == canonical.as_str());
    if let Some(session) = session {
        let store = MessagingStore::new(&ctx.profile);
        if let Some(kept) = messaging::unlockable_identity(&store, &session)? {
            return Ok(Some(kept));
        }
    }
    eprintln!(
        "This device cannot unlock the messaging identity of {canonical} (it is encrypted \
         under the forgotten password, and this device is not logged in as {canonical}). \
         After the recovery, new identity keys are made at the next login: contacts will see \
         that your keys changed, and messages waiting for the old keys cannot be read."
    );
    if yes {
        return Ok(None);
    }
    if password_stdin || !std::io::stdin().is_terminal() {
        bail!("not recovering without confirmation: pass --yes to recover with new messaging keys");
    }
    let answer = prompt_line("Recover anyway, with new messaging keys? [y/N] ")?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(None)
    } else {
        bail!("recovery cancelled; nothing was changed")
    }
}
