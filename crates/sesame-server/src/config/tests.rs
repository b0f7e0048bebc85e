use super::Config;

#[derive(serde::Serialize, Default)]
struct Flags {
    #[serde(skip_serializing_if = "Option::is_none")]
    login_ttl: Option<u64>,
}

#[test]
fn file_then_env_then_flags() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "s.toml",
            "login_ttl = 30\naudience = \"file\"\nhash_queue = 5\n",
        )?;
        jail.set_env("SESAME_AUDIENCE", "env");
        jail.set_env("SESAME_REQUIRE_SERVICES", "1"); // not a config key: ignored
        let c = Config::load(
            Some("s.toml".as_ref()),
            Flags {
                login_ttl: Some(45),
            },
        )
        .unwrap();
        assert_eq!(c.login_ttl, 45, "flags win");
        assert_eq!(c.audience, "env", "env beats the file");
        assert_eq!(c.hash_queue, 5, "file beats defaults");
        assert_eq!(c.listen.port(), 7878);
        Ok(())
    });
}

#[test]
fn typos_and_weak_parameters_are_refused() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("typo.toml", "lisen = \"127.0.0.1:1\"\n")?;
        assert!(Config::load(Some("typo.toml".as_ref()), Flags::default()).is_err());
        jail.create_file("weak.toml", "argon2_memory = 1024\n")?;
        assert!(Config::load(Some("weak.toml".as_ref()), Flags::default()).is_err());
        assert!(Config::load(Some("missing.toml".as_ref()), Flags::default()).is_err());
        Ok(())
    });
}
