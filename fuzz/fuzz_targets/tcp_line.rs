//! The TCP line protocol's field splitting and escaping: splitting never panics, and joining
//! the fields of any line then splitting again gives the same fields.
#![no_main]
#![forbid(unsafe_code)]

use libfuzzer_sys::fuzz_target;
use sesame_server::tcp::{escape, join, split_fields};

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let fields = split_fields(line);
    assert!(!fields.is_empty());
    let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
    let joined = join(&refs);
    assert!(!joined.contains('\n') && !joined.contains('\r'));
    assert_eq!(split_fields(&joined), fields);
    // One field escaped is one field.
    assert_eq!(split_fields(&escape(line)), vec![line.to_owned()]);
});
