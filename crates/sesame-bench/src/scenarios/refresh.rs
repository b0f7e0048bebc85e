//! P4: refresh vs `/healthz`.

use std::sync::Arc;

use crate::load::closed_loop;
use crate::opaque::OpError;
use crate::stats::{Comparison, Scenario};

use super::{login_all, make_users, measured, start, Options};

pub(super) async fn p4(o: &Options) -> anyhow::Result<Scenario> {
    let mut s = Scenario::new("p4", "session refresh vs /healthz requests/s");
    let (server, bc) = start(o, &mut s).await?;
    let c = o.concurrency.max(1);
    let users = make_users(&bc, "p4", c.min(64)).await?;
    let sessions = login_all(&bc, &users).await?;
    let tokens: Arc<Vec<String>> =
        Arc::new(sessions.into_iter().map(|s| s.session_token).collect());
    let (b, t) = (bc.clone(), tokens.clone());
    let refresh = measured(
        &server,
        closed_loop(
            "refresh POST /api/session/refresh",
            o.bounds(c),
            move |w, _| {
                let (b, token) = (b.clone(), t[w % t.len()].clone());
                async move {
                    b.client
                        .refresh(&token)
                        .await
                        .map(drop)
                        .map_err(OpError::from)
                }
            },
        ),
    )
    .await;
    let b = bc.clone();
    let health = measured(
        &server,
        closed_loop("GET /healthz", o.bounds(c), move |_, _| {
            let b = b.clone();
            async move { b.client.health().await.map_err(OpError::from) }
        }),
    )
    .await;
    s.comparisons.push(Comparison::at_least(
        "refresh/s as a share of /healthz/s",
        100.0 * refresh.per_second / health.per_second.max(1e-9),
        "%",
        50.0,
    ));
    s.notes.push(format!(
        "{} sessions, one per virtual client (round robin)",
        tokens.len()
    ));
    s.arms.push(refresh);
    s.arms.push(health);
    server.stop().await;
    Ok(s)
}
