use clap::Command;

use super::{finish, EXAMPLES};
use crate::Cli;

/// Every command path below `c` (without `help`), as `"admin user show"`.
fn paths(c: &Command, prefix: &str, out: &mut Vec<String>) {
    for s in c.get_subcommands().filter(|s| s.get_name() != "help") {
        let path = format!("{prefix}{}", s.get_name());
        out.push(path.clone());
        paths(s, &format!("{path} "), out);
    }
}

/// The words of a shell command line: double quotes group, nothing else is special.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut started) = (false, false);
    for ch in line.chars() {
        match ch {
            '"' => (quoted, started) = (!quoted, true),
            ' ' if !quoted => {
                if started {
                    out.push(std::mem::take(&mut cur));
                }
                started = false;
            }
            c => (started, _) = (true, cur.push(c)),
        }
    }
    if started {
        out.push(cur);
    }
    out
}

#[test]
fn every_command_has_examples() {
    use clap::CommandFactory as _;
    let cmd = finish(Cli::command());
    let mut all = Vec::new();
    paths(&cmd, "", &mut all);
    let listed: Vec<&str> = EXAMPLES.iter().map(|(p, _)| *p).collect();
    for path in &all {
        assert!(listed.contains(&path.as_str()), "no examples for `{path}`");
    }
    for path in &listed {
        assert!(
            all.iter().any(|p| p == path),
            "examples for unknown `{path}`"
        );
    }
}

#[test]
fn every_example_parses() {
    use clap::CommandFactory as _;
    for (path, examples) in EXAMPLES {
        for line in examples.lines() {
            // The command of a pipeline or a redirection.
            let line = line.rsplit("| ").next().unwrap();
            let line = line.split(" > ").next().unwrap();
            let args = words(line);
            assert_eq!(args[0], "sesame", "{line}");
            let parsed = finish(Cli::command()).try_get_matches_from(&args);
            assert!(parsed.is_ok(), "`{line}` (for {path}): {parsed:?}");
        }
    }
}

#[test]
fn server_side_commands_hide_the_client_options() {
    use clap::CommandFactory as _;
    let mut cmd = finish(Cli::command());
    let serve = cmd.find_subcommand_mut("serve").unwrap();
    let help = serve.render_help().to_string();
    assert!(
        !help.contains("--server") && !help.contains("--ca-file"),
        "{help}"
    );
    assert!(help.contains("Examples:\n  sesame serve"), "{help}");
    let admin = cmd.find_subcommand_mut("admin").unwrap();
    let show = admin
        .find_subcommand_mut("user")
        .unwrap()
        .find_subcommand_mut("show")
        .unwrap();
    let help = show.render_help().to_string();
    assert!(!help.contains("--server"), "{help}");
    let mut cmd = finish(Cli::command());
    let login = cmd.find_subcommand_mut("login").unwrap();
    assert!(login.render_help().to_string().contains("--server"));
}
