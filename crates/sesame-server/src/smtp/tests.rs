use super::*;

fn settings(security: SmtpSecurity, host: &str) -> SmtpSettings {
    SmtpSettings {
        host: host.into(),
        port: 2525,
        security,
        username: Some("mailer".into()),
        password: Some(Zeroizing::new("hunter2-secret".into())),
        from: "Sesame <no-reply@example.com>".into(),
        timeout: Duration::from_secs(3),
    }
}

#[test]
fn describe_names_host_port_and_security_never_the_password() {
    for security in [
        SmtpSecurity::StartTls,
        SmtpSecurity::Tls,
        SmtpSecurity::None,
    ] {
        let s = settings(security, "127.0.0.1");
        let d = SmtpMailer::new(&s).unwrap().describe();
        assert!(d.contains("127.0.0.1:2525"), "{d}");
        assert!(!d.contains("hunter2"), "{d}");
        assert!(!format!("{s:?}").contains("hunter2"));
    }
    let d = SmtpMailer::new(&settings(SmtpSecurity::StartTls, "mail.example.com"))
        .unwrap()
        .describe();
    assert!(d.contains("STARTTLS"), "{d}");
}

#[test]
fn plain_text_credentials_only_to_loopback() {
    assert!(SmtpMailer::new(&settings(SmtpSecurity::None, "mail.example.com")).is_err());
    assert!(SmtpMailer::new(&settings(SmtpSecurity::None, "localhost")).is_ok());
    assert!(SmtpMailer::new(&settings(SmtpSecurity::None, "[::1]")).is_ok());
    let mut anonymous = settings(SmtpSecurity::None, "relay.internal");
    anonymous.username = None;
    assert!(SmtpMailer::new(&anonymous).is_ok());
}

#[test]
fn config_picks_the_mailer() {
    let mut config = Config {
        data_dir: "/nonexistent/sesame".into(),
        ..Config::default()
    };
    assert!(mailer_for(&config).unwrap().describe().contains("outbox"));
    config.smtp_host = Some("127.0.0.1".into());
    config.smtp_security = "none".into();
    config.smtp_port = 2525;
    let d = mailer_for(&config).unwrap().describe();
    assert!(d.starts_with("SMTP 127.0.0.1:2525"), "{d}");
    config.smtp_security = "ssl".into();
    assert!(mailer_for(&config).is_err());
    config.smtp_security = "starttls".into();
    config.smtp_from = "not a mailbox".into();
    assert!(mailer_for(&config).is_err());
}
