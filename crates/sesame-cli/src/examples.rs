//! The examples shown at the end of every command's `--help`, in one table, and the
//! finishing touches on the command line that clap's derive cannot express (the client's
//! `--server` and `--ca-file` are hidden where they do nothing: `serve` and `admin`).

use clap::Command;

/// `(command path, examples)`: every command and subcommand has an entry (a test checks
/// it, and that every example parses).
pub const EXAMPLES: &[(&str, &str)] = &[
    ("serve", "sesame serve\nsesame serve --data-dir /var/lib/sesame --listen 0.0.0.0:7878\nsesame serve --config /etc/sesame/sesame.toml"),
    ("admin", "sesame admin users list\nsesame admin --data-dir /var/lib/sesame user show alice\nsesame admin --json audit --user alice --since 2h"),
    ("admin users", "sesame admin users list --limit 20"),
    ("admin users list", "sesame admin users list\nsesame admin users list --limit 50 --offset 100\nsesame admin --json users list"),
    ("admin user", "sesame admin user show alice\nsesame admin user reset-password alice"),
    ("admin user create", "sesame admin user create carol\nsesame admin user create carol --valid 7d"),
    ("admin user reset-password", "sesame admin user reset-password alice\nsesame admin user reset-password alice --valid 2h"),
    ("admin user show", "sesame admin user show alice\nsesame admin --json user show alice"),
    ("admin user ban", "sesame admin user ban mallory"),
    ("admin user unban", "sesame admin user unban mallory"),
    ("admin user grant-admin", "sesame admin user grant-admin alice"),
    ("admin user revoke-admin", "sesame admin user revoke-admin alice"),
    ("admin user delete", "sesame admin user delete mallory --yes"),
    ("admin user reset2fa", "sesame admin user reset2fa alice"),
    ("admin user passkeys", "sesame admin user passkeys alice"),
    ("admin user remove-passkey", "sesame admin user remove-passkey alice 3f0c9a1e"),
    ("admin sessions", "sesame admin sessions list alice\nsesame admin sessions revoke alice"),
    ("admin sessions list", "sesame admin sessions list alice\nsesame admin --json sessions list alice"),
    ("admin sessions revoke", "sesame admin sessions revoke alice"),
    ("admin audit", "sesame admin audit\nsesame admin audit --user alice --since 7d --limit 20\nsesame admin audit --since 2026-01-01T00:00:00Z"),
    ("admin gen-master-key", "sesame admin gen-master-key > master.key"),
    ("admin oidc", "sesame admin oidc client list"),
    ("admin oidc client", "sesame admin oidc client add \"Wiki\" --redirect-uri https://wiki.example.com/callback"),
    ("admin oidc client add", "sesame admin oidc client add \"Wiki\" --redirect-uri https://wiki.example.com/callback\nsesame admin oidc client add \"Phone app\" --public --redirect-uri com.example.app:/cb"),
    ("admin oidc client list", "sesame admin oidc client list\nsesame admin --json oidc client list"),
    ("admin oidc client show", "sesame admin oidc client show wiki"),
    ("admin oidc client remove", "sesame admin oidc client remove wiki"),
    ("admin oidc client rotate-secret", "sesame admin oidc client rotate-secret wiki"),
    ("admin keys", "sesame admin keys list\nsesame admin keys rotate"),
    ("admin keys rotate", "sesame admin keys rotate\nsesame admin keys rotate --activate-in 48h"),
    ("admin keys list", "sesame admin keys list"),
    ("admin group", "sesame admin group create staff\nsesame admin group add staff alice"),
    ("admin group create", "sesame admin group create staff"),
    ("admin group delete", "sesame admin group delete staff"),
    ("admin group add", "sesame admin group add staff alice"),
    ("admin group remove", "sesame admin group remove staff alice"),
    ("admin group list", "sesame admin group list"),
    ("register", "sesame register alice\nsesame register alice --email alice@example.com\necho \"$PASSWORD\" | sesame register alice --password-stdin"),
    ("login", "sesame login alice\nsesame login alice --code 123456\nsesame --server https://id.example.com login alice"),
    ("logout", "sesame logout\nsesame logout --all"),
    ("whoami", "sesame whoami\nsesame whoami --json"),
    ("sessions", "sesame sessions\nsesame sessions --json\nsesame sessions revoke 0d6e2b4c-1b5e-4a8f-a0a4-46b3c1f0e2d9"),
    ("verify-email", "sesame verify-email alice 123456\nsesame verify-email alice --resend"),
    ("sessions revoke", "sesame sessions revoke 0d6e2b4c-1b5e-4a8f-a0a4-46b3c1f0e2d9"),
    ("2fa", "sesame 2fa status\nsesame 2fa enable\nsesame 2fa disable --code 123456"),
    ("2fa status", "sesame 2fa status\nsesame 2fa status --json"),
    ("2fa enable", "sesame 2fa enable"),
    ("2fa disable", "sesame 2fa disable\nsesame 2fa disable --code 123456"),
    ("2fa device", "sesame 2fa device on\nsesame 2fa device off"),
    ("backup-codes", "sesame backup-codes regenerate"),
    ("backup-codes regenerate", "sesame backup-codes regenerate"),
    ("profile", "sesame profile\nsesame profile --display-name \"Alice L.\" --bio \"\"\nsesame profile --email alice@example.com\nsesame profile --email-code 123456\nsesame profile --json"),
    ("passwd", "sesame passwd\nsesame passwd --revoke-other-sessions"),
    ("delete-account", "sesame delete-account"),
    ("security-questions", "sesame security-questions set"),
    ("security-questions set", "sesame security-questions set"),
    ("recover", "sesame recover alice --backup-code abcde-12345\nsesame recover alice --email-code 123456\nsesame recover alice --reset-code abcde-fghjk-mnpqr-stvwx"),
    ("keys", "sesame keys show\nsesame keys verify bob"),
    ("keys show", "sesame keys show\nsesame keys show bob --json"),
    ("keys verify", "sesame keys verify bob\nsesame keys verify bob --confirm"),
    ("keys trust", "sesame keys trust bob"),
    ("send", "sesame send bob \"see you at 8\"\necho \"report attached\" | sesame send bob -"),
    ("inbox", "sesame inbox\nsesame inbox --wait 10"),
    ("chat", "sesame chat bob"),
    ("server", "sesame server show\nsesame server forget http://127.0.0.1:7878"),
    ("server show", "sesame server show\nsesame server show --json"),
    ("server forget", "sesame server forget\nsesame server forget https://id.example.com"),
    ("completions", "sesame completions bash > ~/.local/share/bash-completion/completions/sesame\nsesame completions zsh > ~/.zfunc/_sesame"),
];

/// The command with the examples of [`EXAMPLES`] and the client's options hidden where they
/// do nothing.
pub fn finish(mut cmd: Command) -> Command {
    cmd.build();
    for (path, examples) in EXAMPLES {
        let words: Vec<&str> = path.split(' ').collect();
        cmd = with_sub(cmd, &words, &|c: Command| {
            let text = examples
                .lines()
                .map(|l| format!("  {l}"))
                .collect::<Vec<_>>()
                .join("\n");
            // A command's own closing words (the chat's keys, say) stay, before the examples.
            let own = c.get_after_help().map(|h| h.to_string());
            match own {
                Some(own) if own.contains("Example") => c,
                Some(own) => c.after_help(format!("{own}\n\nExamples:\n{text}")),
                None => c.after_help(format!("Examples:\n{text}")),
            }
        });
    }
    for server_side in ["serve", "admin"] {
        cmd = cmd.mut_subcommand(server_side, hide_client_options);
    }
    cmd
}

/// `c` with `f` applied to the subcommand at `path` (the command itself for an empty path).
fn with_sub(c: Command, path: &[&str], f: &dyn Fn(Command) -> Command) -> Command {
    match path.split_first() {
        None => f(c),
        Some((first, rest)) => c.mut_subcommand(*first, |s| with_sub(s, rest, f)),
    }
}

/// Hides `--server` and `--ca-file` in `c` and all its subcommands.
fn hide_client_options(c: Command) -> Command {
    let names: Vec<String> = c
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    let mut c = c;
    for id in ["server", "ca_file"] {
        if c.get_arguments().any(|a| a.get_id() == id) {
            c = c.mut_arg(id, |a| a.hide(true));
        }
    }
    for name in names {
        c = c.mut_subcommand(name, hide_client_options);
    }
    c
}

#[cfg(test)]
mod tests;
