//! Account enumeration through timing: does a route that takes a username answer an existing
//! name measurably slower or faster than a name nobody has?
//!
//! For each route (OPAQUE login start, password login with a wrong password, recovery start,
//! verification-mail resend, the key directory) the bench sends 2 × N requests, one at a time
//! and interleaved in pairs (an existing and a non-existing name of the same length, in a
//! random order within each pair), every name used once per route, and compares the two
//! latency samples with the two-sample Kolmogorov–Smirnov test. The target is p > 0.01 on
//! every route: nothing distinguishes the two distributions at the 1 % level. Both sides must
//! also get the same status. The accounts are registered first (client-side OPAQUE, one
//! Argon2id each) and have no email address, questions or keys, like most accounts an
//! attacker would probe. N is 1,000, or `--max-requests` if smaller.

use std::time::Duration;

use anyhow::Context as _;
use rand_core::{OsRng, RngCore as _};
use reqwest::{RequestBuilder, StatusCode};
use sesame_api::account::RecoverStart;
use sesame_api::auth::{PasswordLoginRequest, ResendRequest};
use zeroize::Zeroizing;

use crate::opaque::BenchClient;
use crate::stats::{fmt_num, ks_two_sample, Comparison, Recorder, Scenario};

use super::{make_users, start, Options};

/// Most samples per side and route.
const SAMPLES: u64 = 1_000;
/// Unrecorded requests per route before the measured ones (names nobody has).
const WARM_UP: usize = 50;
/// The smallest p-value that passes: the two sides are not told apart at the 1 % level.
const P_MIN: f64 = 0.01;
/// The password sent to `POST /api/login`: nobody's.
const WRONG_PASSWORD: &str = "not the password of any account here";

/// A route that takes a username.
#[derive(Debug, Clone, Copy)]
enum Route {
    LoginStart,
    PasswordLogin,
    RecoveryStart,
    EmailResend,
    KeyDirectory,
}

impl Route {
    const ALL: [Route; 5] = [
        Route::LoginStart,
        Route::PasswordLogin,
        Route::RecoveryStart,
        Route::EmailResend,
        Route::KeyDirectory,
    ];

    fn label(self) -> &'static str {
        match self {
            Route::LoginStart => "POST /api/login/start",
            Route::PasswordLogin => "POST /api/login (wrong pw)",
            Route::RecoveryStart => "POST /api/recover/start",
            Route::EmailResend => "POST /api/verify-email/resend",
            Route::KeyDirectory => "GET /api/keys/{name}",
        }
    }

    /// The answer both sides must get.
    fn status(self) -> StatusCode {
        match self {
            Route::LoginStart | Route::RecoveryStart => StatusCode::OK,
            Route::PasswordLogin => StatusCode::UNAUTHORIZED,
            Route::EmailResend => StatusCode::ACCEPTED,
            Route::KeyDirectory => StatusCode::NOT_FOUND,
        }
    }

    /// The request for `name`, built (and its body serialized) before the clock starts; the
    /// key directory is asked with `token` (any signed-in user may ask).
    fn request(self, bc: &BenchClient, token: &str, name: &str) -> anyhow::Result<RequestBuilder> {
        let url = |path: &str| bc.base.join(path).context("URL");
        let username = name.to_owned();
        Ok(match self {
            Route::LoginStart => {
                let (_, start) =
                    sesame_proto::client::start_login(&mut OsRng, name, WRONG_PASSWORD)
                        .context("KE1")?;
                bc.http.post(url("api/login/start")?).json(&start)
            }
            Route::PasswordLogin => {
                let body = PasswordLoginRequest {
                    username,
                    password: Zeroizing::new(WRONG_PASSWORD.to_owned()),
                };
                bc.http.post(url("api/login")?).json(&body)
            }
            Route::RecoveryStart => {
                let body = RecoverStart {
                    username,
                    registration_request: None,
                };
                bc.http.post(url("api/recover/start")?).json(&body)
            }
            Route::EmailResend => bc
                .http
                .post(url("api/verify-email/resend")?)
                .json(&ResendRequest { username }),
            Route::KeyDirectory => bc
                .http
                .get(url(&format!("api/keys/{name}"))?)
                .bearer_auth(token),
        })
    }
}

/// Sends `req` and reads the whole answer: its status and how long it took.
async fn timed(req: RequestBuilder) -> anyhow::Result<(StatusCode, Duration)> {
    // A latency measurement: real elapsed time is the point.
    #[allow(clippy::disallowed_methods)]
    let started = std::time::Instant::now();
    let resp = req.send().await.context("send")?;
    let status = resp.status();
    resp.bytes().await.context("read the answer")?;
    Ok((status, started.elapsed()))
}

/// The two latency samples of one route, microseconds, and their recorders.
struct Sides {
    known: Vec<f64>,
    unknown: Vec<f64>,
    rec_known: Recorder,
    rec_unknown: Recorder,
}

/// Measures `route` over the pairs `(known[i], unknown[i])`, each pair in a random order.
async fn measure(
    bc: &BenchClient,
    token: &str,
    route: Route,
    known: &[String],
    unknown: &[String],
) -> anyhow::Result<(Sides, Duration)> {
    let mut s = Sides {
        known: Vec::with_capacity(known.len()),
        unknown: Vec::with_capacity(unknown.len()),
        rec_known: Recorder::default(),
        rec_unknown: Recorder::default(),
    };
    let mut total = Duration::ZERO;
    for (k, u) in known.iter().zip(unknown) {
        let known_first = OsRng.next_u32() & 1 == 0;
        let order = if known_first {
            [(true, k), (false, u)]
        } else {
            [(false, u), (true, k)]
        };
        for (is_known, name) in order {
            let (status, took) = timed(route.request(bc, token, name)?).await?;
            total += took;
            let (samples, rec) = if is_known {
                (&mut s.known, &mut s.rec_known)
            } else {
                (&mut s.unknown, &mut s.rec_unknown)
            };
            samples.push(took.as_secs_f64() * 1e6);
            if status == route.status() {
                rec.ok(took);
            } else {
                rec.error(&format!("status_{}", status.as_u16()));
            }
        }
    }
    Ok((s, total))
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// The `enumeration` scenario (see the module documentation).
pub(super) async fn enumeration(o: &Options) -> anyhow::Result<Scenario> {
    let mut s = Scenario::new(
        "enumeration",
        "existing vs non-existing usernames: latency distributions per route (KS test)",
    );
    let n = usize::try_from(o.max_requests.min(SAMPLES))
        .unwrap_or(1)
        .max(1);
    let (_server, bc) = start(o, &mut s).await?;
    let users = make_users(&bc, "enk", n).await?;
    // The asker of the key directory: an account of its own, not one of the measured names.
    let asker = make_users(&bc, "asker", 1).await?;
    let token = bc
        .login(&asker[0].name, &asker[0].password)
        .await
        .map_err(|e| anyhow::anyhow!("log in the asker: {e:?}"))?
        .session
        .access_token;
    let known: Vec<String> = users.into_iter().map(|u| u.name).collect();
    // Same length as their partners: only the first letters differ.
    let unknown: Vec<String> = known
        .iter()
        .map(|k| k.replacen("enk-", "enu-", 1))
        .collect();
    let warm: Vec<String> = known
        .iter()
        .map(|k| k.replacen("enk-", "enw-", 1))
        .collect();
    for route in Route::ALL {
        for name in warm.iter().take(WARM_UP) {
            timed(route.request(&bc, &token, name)?).await?;
        }
        let (sides, elapsed) = measure(&bc, &token, route, &known, &unknown).await?;
        let ks = ks_two_sample(&sides.known, &sides.unknown);
        let mut arm_k = sides
            .rec_known
            .finish(&format!("{} known", route.label()), 1, elapsed);
        let arm_u = sides
            .rec_unknown
            .finish(&format!("{} unknown", route.label()), 1, elapsed);
        let (mk, mu) = (median(&sides.known), median(&sides.unknown));
        arm_k.notes.push(format!(
            "KS D = {:.4}, p = {:.3e}; medians known {} µs, unknown {} µs (known − unknown {} µs)",
            ks.d,
            ks.p,
            fmt_num(mk),
            fmt_num(mu),
            fmt_num(mk - mu)
        ));
        s.comparisons.push(Comparison::at_least(
            &format!("{}: KS p-value", route.label()),
            ks.p,
            "",
            P_MIN,
        ));
        s.arms.push(arm_k);
        s.arms.push(arm_u);
    }
    s.notes.push(format!(
        "{n} existing and {n} non-existing names per route, each used once per route, one \
         request at a time, pairs in random order; {WARM_UP} warm-up requests per route"
    ));
    s.notes.push(format!(
        "load average at the end (1, 5, 15 min): {}",
        crate::target::load_average()
    ));
    Ok(s)
}
