use super::*;

#[test]
fn every_route_is_listed_once_and_answers_internal() {
    let mut seen = std::collections::BTreeSet::new();
    for r in ROUTES {
        assert!(
            seen.insert((r.method, r.path)),
            "{} {} twice",
            r.method,
            r.path
        );
        let errors = r.errors();
        assert!(errors.contains(&S::Internal.into()), "{}", r.path);
        assert_eq!(r.auth, errors.contains(&C::Unauthorized.into()));
        assert_eq!(r.body, errors.contains(&I::InvalidJson.into()));
        let mut sorted = errors.clone();
        sorted.dedup();
        assert_eq!(sorted.len(), errors.len(), "{}: a code twice", r.path);
    }
    assert!(find("post", "/api/login/finish").is_some());
    assert!(find("GET", "/api/login/finish").is_none());
}

#[test]
fn login_finish_answers_unknown_login_as_400() {
    let r = find("POST", "/api/login/finish").unwrap();
    assert!(r.errors().contains(&I::UnknownLogin.into()));
    assert_eq!(ErrorCode::from(I::UnknownLogin).status(), 400);
    assert!(r.error_statuses().contains(&400));
}
