//! The HTTP accept loop: hyper (through hyper-util, as `axum::serve` does) with the limits
//! `axum::serve` lacks, so that idle or slow clients cannot stop the server from answering.
//!
//! * **Connection caps.** At most [`HttpSettings::max_connections`] connections at once
//!   (lowered at start to fit the descriptor limit, `accept.rs`) and at most
//!   [`HttpSettings::max_per_address`] from one IP address. A connection beyond either is
//!   answered `503` with `{"error":{"code":"too_many_connections",…}}` and closed at once. A
//!   connection upgraded to a WebSocket keeps its place until its socket closes.
//! * **Header timeout.** A request head must be complete within
//!   [`HttpSettings::header_timeout`] of the connection's start, or of its first byte after
//!   a previous answer (a trickled head is cut off).
//! * **Idle timeout.** A keep-alive connection silent for [`HttpSettings::idle_timeout`]
//!   after an answer is closed.
//! * **Body timeout.** A request body must be complete within [`HttpSettings::body_timeout`]
//!   of the end of its head, however it trickles; the route then sees a read error (its
//!   answer is `400`), and the connection is not reused.
//!
//! A per-connection watchdog enforces the first two (it wakes at most once a second); the
//! body carries its own deadline. Accept errors back off (`accept.rs`).
//!
//! **TLS** ([`crate::tls`]). With an acceptor, each connection's TLS handshake runs in its
//! own task and must finish within the header timeout; the watchdog counts the encrypted
//! bytes, so a trickled handshake is cut off like a trickled head. A connection over a cap
//! is closed without an answer (a plain-text `503` would mean nothing to a TLS client).

use std::collections::HashMap;
use std::future::Future as _;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt as _;

use crate::accept::AcceptErrors;

/// The limits of the HTTP listener (configuration keys `http_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpSettings {
    /// Most connections at once.
    pub max_connections: usize,
    /// Most connections at once from one IP address (0: no cap).
    pub max_per_address: usize,
    /// Time to send a complete request head.
    pub header_timeout: Duration,
    /// Time a keep-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// Time to send a whole request body.
    pub body_timeout: Duration,
}

/// Most often the watchdog of one connection wakes.
const WATCHDOG_TICK: Duration = Duration::from_secs(1);
/// `head_started` when no head is being read.
const NONE: u64 = u64::MAX;

/// Serves `app` on `listener` (over TLS with `tls`) until `stop` turns true, then lets open
/// connections finish their requests (each is bounded by the timeouts) and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    settings: HttpSettings,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut stop: watch::Receiver<bool>,
) {
    let limits = Arc::new(Limits::new(settings));
    let mut errors = AcceptErrors::new("http");
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let (stream, addr) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => {
                    errors.accepted();
                    a
                }
                Err(e) => {
                    errors.failed(&e).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        let Some(slot) = limits.admit(addr.ip()) else {
            if tls.is_none() {
                refuse(&stream);
            }
            continue;
        };
        tasks.spawn(connection(
            stream,
            addr,
            app.clone(),
            settings,
            tls.clone(),
            slot,
            stop.clone(),
        ));
        while tasks.try_join_next().is_some() {}
    }
    drop(listener);
    while tasks.join_next().await.is_some() {}
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Answers a connection over a cap without reading it, and closes it.
fn refuse(stream: &TcpStream) {
    let code = sesame_api::ErrorCode::from(sesame_api::LimitError::TooManyConnections);
    let body = sesame_api::ErrorBody {
        error: code.detail("Too many connections; try again later."),
    };
    let body = serde_json::to_string(&body).unwrap_or_default();
    let status = axum::http::StatusCode::from_u16(code.status())
        .unwrap_or(axum::http::StatusCode::SERVICE_UNAVAILABLE);
    let answer = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    // A fresh socket's send buffer is empty: this does not block, and is best effort.
    let _ = stream.try_write(answer.as_bytes());
}

/// Serves one connection (after its TLS handshake, with `tls`) until it closes, times out,
/// or (after `stop`) finishes its request.
async fn connection(
    stream: TcpStream,
    addr: SocketAddr,
    app: Router,
    settings: HttpSettings,
    tls: Option<tokio_rustls::TlsAcceptor>,
    slot: Slot,
    stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity::new(slot));
    let tracked = Tracked {
        io: stream,
        activity: activity.clone(),
    };
    let Some(acceptor) = tls else {
        return drive(TokioIo::new(tracked), addr, app, settings, activity, stop).await;
    };
    match tokio::time::timeout(settings.header_timeout, acceptor.accept(tracked)).await {
        Ok(Ok(stream)) => drive(TokioIo::new(stream), addr, app, settings, activity, stop).await,
        Ok(Err(e)) => tracing::debug!(%addr, %e, "TLS handshake failed"),
        Err(_) => tracing::debug!(%addr, "TLS handshake timed out"),
    }
}

/// Serves HTTP on one (possibly TLS) connection; see [`connection`].
async fn drive<I>(
    io: TokioIo<I>,
    addr: SocketAddr,
    app: Router,
    settings: HttpSettings,
    activity: Arc<Activity>,
    mut stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            activity.request_started();
            let (mut parts, body) = req.into_parts();
            parts.extensions.insert(ConnectInfo(addr));
            let body = Body::new(DeadlineBody {
                inner: body,
                deadline: Box::pin(tokio::time::sleep(settings.body_timeout)),
            });
            let req = axum::http::Request::from_parts(parts, body);
            let (app, activity) = (app.clone(), activity.clone());
            async move {
                let answer = app.oneshot(req).await;
                activity.request_done();
                answer
            }
        })
    };
    let builder = auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        tokio::select! {
            served = conn.as_mut() => {
                if let Err(e) = served {
                    tracing::debug!(%addr, %e, "http connection ended with an error");
                }
                return;
            }
            () = stopped(&mut stop), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            why = activity.expired(settings) => {
                tracing::debug!(%addr, why, "closing an http connection");
                return;
            }
        }
    }
}

/// The connection caps.
struct Limits {
    total: Arc<Semaphore>,
    per_address: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// A connection's place under the caps; freed when the socket closes.
struct Slot {
    _total: tokio::sync::OwnedSemaphorePermit,
    ip: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

impl Limits {
    fn new(s: HttpSettings) -> Limits {
        Limits {
            total: Arc::new(Semaphore::new(s.max_connections.max(1))),
            per_address: s.max_per_address,
            open: Arc::default(),
        }
    }

    /// A place for a connection from `ip`, if both caps allow it.
    fn admit(&self, ip: IpAddr) -> Option<Slot> {
        let total = self.total.clone().try_acquire_owned().ok()?;
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_default();
        if self.per_address > 0 && *n >= self.per_address {
            if *n == 0 {
                open.remove(&ip);
            }
            return None;
        }
        *n += 1;
        Some(Slot {
            _total: total,
            ip,
            open: self.open.clone(),
        })
    }
}

/// What the watchdog of one connection watches. Times are milliseconds since `epoch`.
struct Activity {
    epoch: Instant,
    /// Requests being handled.
    busy: AtomicUsize,
    /// No request yet.
    fresh: AtomicBool,
    /// The end of the last answer (or the start), or the last byte written since.
    idle_since: AtomicU64,
    /// The first byte read while no request was being handled ([`NONE`]: none yet).
    head_started: AtomicU64,
    _slot: Slot,
}

impl Activity {
    fn new(slot: Slot) -> Activity {
        Activity {
            epoch: Instant::now(),
            busy: AtomicUsize::new(0),
            fresh: AtomicBool::new(true),
            idle_since: AtomicU64::new(0),
            head_started: AtomicU64::new(NONE),
            _slot: slot,
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    fn read(&self) {
        if self.busy.load(Ordering::Acquire) == 0 {
            let now = self.now();
            let _ =
                self.head_started
                    .compare_exchange(NONE, now, Ordering::AcqRel, Ordering::Acquire);
        }
    }

    fn wrote(&self) {
        self.idle_since.store(self.now(), Ordering::Release);
    }

    fn request_started(&self) {
        self.busy.fetch_add(1, Ordering::AcqRel);
        self.fresh.store(false, Ordering::Release);
        self.head_started.store(NONE, Ordering::Release);
    }

    fn request_done(&self) {
        self.idle_since.store(self.now(), Ordering::Release);
        self.busy.fetch_sub(1, Ordering::AcqRel);
    }

    /// The deadline in force, and which limit it is; `None` while a request is handled.
    fn deadline(&self, s: HttpSettings) -> Option<(u64, &'static str)> {
        if self.busy.load(Ordering::Acquire) > 0 {
            return None;
        }
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(NONE / 2);
        let head = self.head_started.load(Ordering::Acquire);
        let idle = self.idle_since.load(Ordering::Acquire);
        Some(if head != NONE {
            (head.max(idle) + ms(s.header_timeout), "header_timeout")
        } else if self.fresh.load(Ordering::Acquire) {
            (idle + ms(s.header_timeout), "header_timeout")
        } else {
            (idle + ms(s.idle_timeout), "idle_timeout")
        })
    }

    /// Resolves (with the limit's name) once the connection overstayed a limit.
    async fn expired(&self, s: HttpSettings) -> &'static str {
        loop {
            let now = self.now();
            let wake = match self.deadline(s) {
                Some((at, why)) if at <= now => return why,
                Some((at, _)) => Duration::from_millis(at - now).min(WATCHDOG_TICK),
                None => WATCHDOG_TICK,
            };
            tokio::time::sleep(wake).await;
        }
    }
}

/// The socket, noting reads and writes for the watchdog.
struct Tracked {
    io: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// A request body that fails once its deadline passed, however it trickles.
struct DeadlineBody {
    inner: Incoming,
    deadline: Pin<Box<Sleep>>,
}

impl http_body::Body for DeadlineBody {
    type Data = axum::body::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        if self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err("the request body took too long".into())));
        }
        Pin::new(&mut self.inner)
            .poll_frame(cx)
            .map_err(axum::BoxError::from)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
