use super::*;

#[test]
fn the_document_has_the_added_routes_and_errors_everywhere() {
    let doc = document();
    for path in ["/auth/login", "/ws", "/register", "/api/getkey", "/metrics"] {
        assert!(doc.paths.paths.contains_key(path), "{path}");
    }
    let mut ids = std::collections::BTreeSet::new();
    for (path, item) in doc.paths.paths.iter() {
        let mut item = item.clone();
        for op in operations(&mut item) {
            assert!(
                op.responses.responses.contains_key("default"),
                "{path}: no error answer"
            );
            let id = op.operation_id.clone().expect("an operation id");
            assert!(
                ids.insert(id.clone()),
                "{path}: duplicate operation id {id}"
            );
        }
    }
    let json = doc.to_json().unwrap();
    assert!(json.starts_with("{\"openapi\":\"3.1"), "{}", &json[..40]);
}
