use std::collections::BTreeSet;
use std::path::Path;

use super::*;

/// Every file under `dir`, relative to `root`, with `/` separators.
fn files(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(root, &path, out);
        } else {
            let rel = path.strip_prefix(root).unwrap().to_string_lossy();
            out.insert(rel.replace('\\', "/"));
        }
    }
}

#[test]
fn every_file_of_the_app_is_embedded_and_nothing_else() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    let mut on_disk = BTreeSet::new();
    files(&root, &root, &mut on_disk);
    // The shell is served at the pages; the vendor lock files are for the byte check only.
    for not_an_asset in [
        "index.html",
        "vendor/package.json",
        "vendor/package-lock.json",
    ] {
        assert!(on_disk.remove(not_an_asset), "{not_an_asset} is missing");
    }
    let embedded: BTreeSet<String> = ASSETS
        .iter()
        .map(|a| a.path.to_owned())
        .filter(|p| p != "common-passwords.txt")
        .collect();
    assert_eq!(on_disk, embedded);
}

#[test]
fn the_shell_names_the_asset_set_and_runs_no_inline_script() {
    let page = assets::shell();
    let set = asset_set();
    assert_eq!(set.len(), 16);
    assert!(page.contains(&format!("/assets/{set}/js/main.mjs")));
    assert!(!page.contains("{{assets}}"));
    // Every <script> element loads a file; none has a body.
    for (i, _) in page.match_indices("<script") {
        let tag_end = i + page[i..].find('>').unwrap();
        assert!(page[i..tag_end].contains(" src="), "inline script at {i}");
        assert!(page[tag_end + 1..].starts_with("</script>"));
    }
    assert!(!page.contains(" on"), "no inline event handler attributes");
    assert!(!page.contains("style="), "no inline styles");
}

#[test]
fn the_policy_forbids_inline_script_and_framing() {
    let csp = CONTENT_SECURITY_POLICY;
    assert!(csp.contains("script-src 'self' 'wasm-unsafe-eval';"));
    assert!(!csp.contains("unsafe-inline"));
    assert!(csp.contains("frame-ancestors 'none'"));
}
