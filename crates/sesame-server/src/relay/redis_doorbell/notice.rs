//! The text of doorbell notices: what one node publishes and the others parse.

use std::collections::HashSet;

use uuid::Uuid;

use super::SessionsEnded;

/// A notice: this node's id, then the users'.
pub(super) fn notice(node: Uuid, users: &[Uuid]) -> String {
    let mut s = String::with_capacity(33 * (users.len() + 1));
    s.push_str(&node.simple().to_string());
    for u in users {
        s.push(' ');
        s.push_str(&u.simple().to_string());
    }
    s
}

/// A sessions-ended notice: `<node> end:<user>:<one|all>:<session>`.
pub(super) fn end_notice(node: Uuid, user: Uuid, which: SessionsEnded) -> String {
    let (kind, session) = match which {
        SessionsEnded::One(id) => ("one", id),
        SessionsEnded::AllBut(keep) => ("all", keep.unwrap_or(Uuid::nil())),
    };
    format!(
        "{} end:{}:{kind}:{}",
        node.simple(),
        user.simple(),
        session.simple()
    )
}

/// One `end:…` token of a notice.
pub(super) fn parse_end(token: &str) -> Option<(Uuid, SessionsEnded)> {
    let mut parts = token.strip_prefix("end:")?.split(':');
    let user = Uuid::try_parse(parts.next()?).ok()?;
    let kind = parts.next()?;
    let session = Uuid::try_parse(parts.next()?).ok()?;
    if parts.next().is_some() {
        return None;
    }
    let which = match kind {
        "one" => SessionsEnded::One(session),
        "all" => SessionsEnded::AllBut((!session.is_nil()).then_some(session)),
        _ => return None,
    };
    Some((user, which))
}

/// The users a notice names (and the sessions it ends), unless it came from `node` itself.
pub(super) fn users_of(
    payload: &[u8],
    node: Uuid,
    into: &mut HashSet<Uuid>,
    ends: &mut Vec<(Uuid, SessionsEnded)>,
) {
    let Ok(text) = std::str::from_utf8(payload) else {
        return;
    };
    let mut ids = text.split_ascii_whitespace();
    match ids.next().map(Uuid::try_parse) {
        Some(Ok(from)) if from != node => {}
        _ => return,
    }
    for token in ids {
        if let Ok(user) = Uuid::try_parse(token) {
            into.insert(user);
        } else if let Some(end) = parse_end(token) {
            ends.push(end);
        }
    }
}
