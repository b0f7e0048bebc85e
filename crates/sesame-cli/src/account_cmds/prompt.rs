//! Reading passwords, codes and answers from the terminal or standard input.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use anyhow::{anyhow, bail, Context as _};
use sesame_proto::policy::{check_password, Username};
use zeroize::Zeroizing;

/// A new password: asked twice, or one line of standard input; checked against the policy
/// here before anything is sent.
pub(super) fn new_password(username: &str, from_stdin: bool) -> anyhow::Result<Zeroizing<String>> {
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
pub(super) fn secret(prompt: &str, from_stdin: bool) -> anyhow::Result<Zeroizing<String>> {
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
pub(super) fn secret_answer(prompt: &str) -> anyhow::Result<Zeroizing<String>> {
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password(prompt)
            .map(Zeroizing::new)
            .context("cannot read the answer");
    }
    prompt_line(prompt).map(Zeroizing::new)
}

/// One line of standard input (without its line ending), after `prompt` on a terminal.
pub(super) fn prompt_line(prompt: &str) -> anyhow::Result<String> {
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
