//! Instruction counts of the login path (`sesame-login-count`, run by `callgrind.sh`).
//!
//! - [`bare_logins`] runs whole OPAQUE logins in process; the server's two steps are
//!   [`server_start`] and [`server_finish`], the only functions callgrind collects in
//!   (`--toggle-collect`), so their count is the bare server login work.
//! - [`http_logins`] drives a `sesame serve` started under callgrind (through a wrapper given
//!   as its binary): it zeroes the server's counters, runs `n` logins over HTTP one after the
//!   other, and dumps the counters, for each `n` asked; the difference between two dumps
//!   divided by the difference in logins is one HTTP login's count, without startup or idle
//!   work.

use std::time::Duration;

use anyhow::Context as _;
use opaque_ke::{ClientLogin, ClientLoginFinishParameters, CredentialResponse, Identifiers};
use rand_core::OsRng;
use sesame_proto::b64::Bytes;
use sesame_proto::messages::{LoginChallenge, LoginFinish, LoginStart};
use sesame_proto::policy::Username;
use sesame_proto::server::{self as proto_server, ExpectLoginFinish, ServerKeys};
use sesame_proto::{CredentialRecord, KsfParams, Timestamp};

use crate::ksf::{BenchSuite, CachingKsf};
use crate::opaque::BenchClient;
use crate::target::{BenchServer, ServerOptions};

/// Bytes the bare login seals in place of the session (the size of a `SessionIssued`).
pub const SESSION_PAYLOAD_BYTES: usize = 420;

/// The server's first step: `start_login` and the state's round trip through bytes (what
/// the ephemeral store keeps between the two requests).
#[inline(never)]
pub fn server_start(
    keys: &ServerKeys,
    username: &Username,
    record: &CredentialRecord,
    msg: &LoginStart,
    now: Timestamp,
) -> anyhow::Result<(impl std::ops::Deref<Target = Vec<u8>>, LoginChallenge)> {
    let (state, challenge) =
        proto_server::start_login(&mut OsRng, keys, username, Some(record), msg, now, 60)
            .map_err(|e| anyhow::anyhow!("server start: {e}"))?;
    // Zeroized on drop: it holds the key exchange's secrets.
    Ok((state.to_bytes(), challenge))
}

/// The server's second step: the state from bytes, `finish`, and sealing a session-sized
/// payload to the client.
#[inline(never)]
pub fn server_finish(
    stored: &[u8],
    finish: &LoginFinish,
    now: Timestamp,
    payload: &[u8],
) -> anyhow::Result<()> {
    let state = ExpectLoginFinish::from_bytes(stored).map_err(|e| anyhow::anyhow!("state: {e}"))?;
    let (_verified, sealer) = state
        .finish(finish, now)
        .map_err(|e| anyhow::anyhow!("server finish: {e}"))?;
    sealer
        .seal(&mut OsRng, payload)
        .map_err(|e| anyhow::anyhow!("seal: {e}"))?;
    Ok(())
}

/// An account for the bare loop: server keys, a name and its credential record.
pub struct BareAccount {
    /// The server's keys.
    pub keys: ServerKeys,
    /// The account name.
    pub username: Username,
    /// Its record (Argon2id at the default parameters).
    pub record: CredentialRecord,
    /// Its password.
    pub password: String,
}

impl BareAccount {
    /// A fresh account (one Argon2id).
    pub fn new() -> anyhow::Result<BareAccount> {
        let keys = ServerKeys::generate(&mut OsRng);
        let username = Username::parse("bare-user").map_err(|e| anyhow::anyhow!("{e}"))?;
        let password = "bare loop password 1234".to_owned();
        let record = proto_server::register_with_password(
            &mut OsRng,
            &keys,
            &username,
            &password,
            KsfParams::DEFAULT,
        )
        .map_err(|e| anyhow::anyhow!("register: {e}"))?;
        Ok(BareAccount {
            keys,
            username,
            record,
            password,
        })
    }
}

/// One whole login in process; returns the time of the server's two steps only.
pub fn bare_login(a: &BareAccount, payload: &[u8]) -> anyhow::Result<Duration> {
    let password = a.password.as_bytes();
    // Client step 1 (not timed).
    let c = ClientLogin::<BenchSuite>::start(&mut OsRng, password)
        .map_err(|_| anyhow::anyhow!("client start"))?;
    let msg = LoginStart {
        username: a.username.as_str().to_owned(),
        ke1: Bytes(c.message.serialize().to_vec()),
    };
    let now = Timestamp(unix_now());
    let t0 = std::time::Instant::now();
    let (stored, challenge) = server_start(&a.keys, &a.username, &a.record, &msg, now)?;
    let mut this = t0.elapsed();
    // Client step 3 (not timed; memoized stretching).
    let response = CredentialResponse::<BenchSuite>::deserialize(challenge.ke2.as_slice())
        .map_err(|_| anyhow::anyhow!("ke2"))?;
    let stretch = CachingKsf::new(challenge.key_stretching.params());
    let fin = c
        .state
        .finish(
            &mut OsRng,
            password,
            response,
            ClientLoginFinishParameters::new(None, Identifiers::default(), Some(&stretch)),
        )
        .map_err(|_| anyhow::anyhow!("client finish"))?;
    let finish = LoginFinish {
        login_id: challenge.login_id.clone(),
        ke3: Bytes(fin.message.serialize().to_vec()),
        device_key_id: None,
        device_signature: None,
    };
    let t1 = std::time::Instant::now();
    server_finish(&stored, &finish, now, payload)?;
    this += t1.elapsed();
    Ok(this)
}

/// `n` bare logins one after the other on one account.
pub fn bare_logins(n: u64) -> anyhow::Result<()> {
    let account = BareAccount::new()?;
    let payload = vec![b'x'; SESSION_PAYLOAD_BYTES];
    for _ in 0..n {
        bare_login(&account, &payload)?;
    }
    Ok(())
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Runs `callgrind_control` with `args` on `pid` and checks it succeeded.
async fn callgrind_control(args: &[&str], pid: u32) -> anyhow::Result<()> {
    let status = tokio::process::Command::new("callgrind_control")
        .args(args)
        .arg(pid.to_string())
        .stdout(std::process::Stdio::null())
        .status()
        .await
        .context("run callgrind_control")?;
    anyhow::ensure!(
        status.success(),
        "callgrind_control {args:?} {pid}: {status}"
    );
    Ok(())
}

/// Starts the server `options` describe (its binary a wrapper running `sesame` under
/// callgrind), registers one account, warms up, then for each `n` in `counts`: zero the
/// counters, `n` logins over HTTP, dump. Returns the server's pid (the dumps'
/// `callgrind.out.<pid>.<k>`).
pub async fn http_logins(options: &ServerOptions, counts: &[u64]) -> anyhow::Result<u32> {
    let server = BenchServer::start(options).await?;
    let pid = server.pid.context("the server's pid")?;
    let bc = BenchClient::connect(&server.base).await?;
    let (name, password) = ("count-user", "count user password 1234");
    bc.register(name, password)
        .await
        .map_err(|e| anyhow::anyhow!("register: {e}"))?;
    for _ in 0..3 {
        bc.login(name, password)
            .await
            .map_err(|e| anyhow::anyhow!("warm-up login: {e}"))?;
    }
    for &n in counts {
        callgrind_control(&["--zero"], pid).await?;
        for _ in 0..n {
            bc.login(name, password)
                .await
                .map_err(|e| anyhow::anyhow!("login: {e}"))?;
        }
        callgrind_control(&[&format!("--dump={n} logins")], pid).await?;
    }
    server.stop().await;
    Ok(pid)
}
