//! The contract cannot drift: the error answers the OpenAPI document declares for every
//! operation are exactly those of the route table the server checks its answers against
//! (`sesame_api::routes`, see `metrics::check_declared`), every operation is in the table and
//! every table entry in the document, and docs/api.md §4 lists exactly the codes of
//! `sesame_api::ErrorCode` with their statuses.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use sesame_api::routes::{Route, ROUTES};
use sesame_api::ErrorCode;

/// The served document, as JSON.
fn document() -> Value {
    let json = sesame_server::openapi::document().to_json().unwrap();
    serde_json::from_str(&json).unwrap()
}

/// The paths the table leaves out on purpose: the WebSocket upgrades and the aliases.
const NOT_IN_TABLE: [&str; 4] = ["/auth/login", "/ws", "/register", "/api/getkey"];

/// `status -> codes` of an operation's error responses, read from its schemas.
fn declared(op: &Value) -> BTreeMap<u16, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for (status, response) in op["responses"].as_object().unwrap() {
        let Ok(status) = status.parse::<u16>() else {
            continue; // `default`
        };
        if status < 400 {
            continue;
        }
        let schema = &response["content"]["application/json"]["schema"];
        let codes = schema["properties"]["error"]["properties"]["code"]["enum"]
            .as_array()
            .map(|codes| {
                codes
                    .iter()
                    .map(|c| c.as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        out.insert(status, codes);
    }
    out
}

/// `status -> codes` the route table says the route answers.
fn expected(route: &Route) -> BTreeMap<u16, BTreeSet<String>> {
    let mut out: BTreeMap<u16, BTreeSet<String>> = BTreeMap::new();
    for code in route.errors() {
        out.entry(code.status())
            .or_default()
            .insert(code.as_str().to_owned());
    }
    out
}

#[test]
fn every_operation_declares_exactly_the_errors_of_the_route_table() {
    let doc = document();
    let mut seen = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let method = method.to_uppercase();
            if NOT_IN_TABLE.contains(&path.as_str()) {
                continue;
            }
            let route = sesame_api::routes::find(&method, path)
                .unwrap_or_else(|| panic!("{method} {path} is documented but not in the table"));
            seen.insert((route.method, route.path));
            let mut declared = declared(op);
            let mut expected = expected(route);
            if path.starts_with("/oauth2/") {
                // The OpenID Connect endpoints answer OAuth's own error bodies (RFC 6749 §5.2,
                // `sesame_api::oauth`) and HTML pages, which carry no Sesame code.
                declared.retain(|_, codes| !codes.is_empty());
            }
            if path == "/readyz" {
                // Its 503 carries the readiness report, not the error envelope.
                declared.remove(&503);
                expected.remove(&503);
            }
            assert_eq!(declared, expected, "{method} {path}");
        }
    }
    for r in ROUTES {
        assert!(
            seen.contains(&(r.method, r.path)),
            "{} {} is in the table but not documented",
            r.method,
            r.path
        );
    }
}

#[test]
fn login_finish_documents_unknown_login_as_400_like_the_server() {
    let doc = document();
    let declared = declared(&doc["paths"]["/api/login/finish"]["post"]);
    assert!(declared[&400].contains("unknown_login"), "{declared:?}");
    assert!(!declared[&401].contains("unknown_login"), "{declared:?}");
    assert_eq!(
        sesame_api::InputError::UnknownLogin.status(),
        400,
        "docs/api.md §4"
    );
}

/// The rows of the table in docs/api.md §4: `(code, status)`, `None` for "—".
fn documented_codes() -> Vec<(String, Option<u16>)> {
    let api =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md")).unwrap();
    let start = api.find("## 4. Error codes").expect("§4");
    let end = start + api[start..].find("\n## 5.").expect("§5");
    let mut rows = Vec::new();
    for line in api[start..end].lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 || !cells[1].starts_with('`') {
            continue;
        }
        let status = cells[2].trim_matches('*');
        let status = if status == "—" {
            None
        } else {
            Some(status.parse::<u16>().unwrap_or_else(|_| panic!("{line}")))
        };
        for code in cells[1].split(',') {
            rows.push((code.trim().trim_matches('`').to_owned(), status));
        }
    }
    rows
}

#[test]
fn docs_api_md_lists_exactly_the_codes_of_the_enum() {
    let rows = documented_codes();
    let mut on_http: BTreeSet<ErrorCode> = ROUTES.iter().flat_map(|r| r.errors()).collect();
    on_http.extend(sesame_api::routes::FALLBACK_ERRORS);
    let documented: BTreeSet<(String, Option<u16>)> = rows.iter().cloned().collect();
    assert_eq!(documented.len(), rows.len(), "a row repeats a code");
    let mut from_enum = BTreeSet::new();
    for code in ErrorCode::all() {
        // HTTP codes with their status; codes no HTTP route answers as "—".
        let status = on_http.contains(&code).then(|| code.status());
        from_enum.insert((code.as_str().to_owned(), status));
    }
    let missing: Vec<_> = from_enum.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&from_enum).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "docs/api.md §4 and sesame_api::ErrorCode differ.\n  not in the docs (or another \
         status): {missing:?}\n  not in the enum (or another status): {extra:?}"
    );
}
