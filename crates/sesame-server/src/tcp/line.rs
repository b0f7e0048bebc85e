//! The line codec of the TCP protocol: fields separated by `|`; a backslash escapes `|`, itself,
//! a line feed (`\n`) and a carriage return (`\r`) (docs/api.md §8).

/// Splits a line into unescaped fields.
pub fn split_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => push(&mut fields, '\n'),
                Some('r') => push(&mut fields, '\r'),
                Some(other) => push(&mut fields, other),
                None => push(&mut fields, '\\'),
            },
            '|' => fields.push(String::new()),
            other => push(&mut fields, other),
        }
    }
    fields
}

fn push(fields: &mut [String], c: char) {
    if let Some(last) = fields.last_mut() {
        last.push(c);
    }
}

/// Escapes one field for a line.
pub fn escape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    for c in field.chars() {
        match c {
            '|' => out.push_str("\\|"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            other => out.push(other),
        }
    }
    out
}

/// Joins fields into a line (without the line break).
pub fn join(fields: &[&str]) -> String {
    fields
        .iter()
        .map(|f| escape(f))
        .collect::<Vec<_>>()
        .join("|")
}
