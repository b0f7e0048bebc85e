use super::*;

#[test]
fn the_command_line_is_well_formed() {
    Cli::command().debug_assert();
}

#[test]
fn client_commands_parse() {
    let cli = Cli::try_parse_from([
        "sesame",
        "--server",
        "https://example.com",
        "login",
        "alice",
        "--password-stdin",
        "--ws",
    ])
    .unwrap();
    assert_eq!(cli.server, "https://example.com");
    assert!(matches!(cli.command, Command::Client(_)));
    // --password-stdin needs the username on the command line (stdin carries the password).
    assert!(Cli::try_parse_from(["sesame", "register", "--password-stdin"]).is_err());
    assert!(Cli::try_parse_from(["sesame", "sessions", "revoke", "not-a-uuid"]).is_err());
    assert!(Cli::try_parse_from([
        "sesame",
        "sessions",
        "revoke",
        "0d6e2b4c-1b5e-4a8f-a0a4-46b3c1f0e2d9"
    ])
    .is_ok());
    assert!(Cli::try_parse_from(["sesame", "serve"]).is_ok());
}
