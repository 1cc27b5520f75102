//! The server's connection layer, below gRPC: accepts TCP connections, runs the TLS handshake
//! itself (bounded by [`Limits::handshake_timeout`]), counts open connections against
//! [`Limits::max_connections`], closes connections that stay without a session or call for
//! [`Limits::connection_idle_timeout`], and logs every connection it refuses or closes with the
//! peer's address and the reason.
//!
//! At the connection limit a new connection first evicts the oldest connection still in its TLS
//! handshake (a silent client holds no slot against a real one). If every slot holds an
//! established connection, the new one is admitted "over capacity" (at most
//! [`OVERFLOW_CONNECTIONS`] of them): its calls are answered `ResourceExhausted` with "server is
//! at capacity", so the client gets a clear error at once rather than a hang; beyond that the
//! connection is closed right after it is accepted.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, Sleep};
use tonic::transport::server::Connected;

use crate::Limits;

/// Connections admitted beyond [`Limits::max_connections`] only to be told that the server is
/// at capacity.
pub const OVERFLOW_CONNECTIONS: usize = 16;
/// How long an over-capacity connection stays open without a call (it has been told why).
const OVERFLOW_LINGER: Duration = Duration::from_secs(1);
/// Pause after a failed `accept` (e.g. out of descriptors) before the next one.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Where the server's log lines go.
pub(crate) type LogSink = Arc<dyn Fn(&str) + Send + Sync>;

/// What a request handler knows about the connection it came on.
#[derive(Clone)]
pub(crate) struct ConnectionInfo {
    /// The peer's address.
    pub(crate) remote: SocketAddr,
    /// The peer's certificate chain (mutual TLS), leaf first.
    pub(crate) certs: Option<Arc<Vec<CertificateDer<'static>>>>,
    /// Admitted beyond the connection limit: every call is refused.
    pub(crate) over_capacity: bool,
    /// Open sessions and the time of the last call, for the idle timeout.
    pub(crate) activity: Arc<Activity>,
}

/// Open session streams and the last time a call started or ended on one connection.
pub(crate) struct Activity {
    open: AtomicUsize,
    last: Mutex<Instant>,
}

impl Activity {
    fn new() -> Self {
        Self {
            open: AtomicUsize::new(0),
            last: Mutex::new(Instant::now()),
        }
    }

    /// A call started or ended now.
    pub(crate) fn touch(&self) {
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }

    /// Counts a session stream as open until the guard is dropped.
    pub(crate) fn stream(self: &Arc<Self>) -> StreamGuard {
        self.open.fetch_add(1, Ordering::SeqCst);
        self.touch();
        StreamGuard(Arc::clone(self))
    }

    /// When the connection becomes idle if nothing happens: `None` while a session is open.
    fn idle_deadline(&self, timeout: Duration) -> Option<Instant> {
        if self.open.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let last = *self.last.lock().unwrap_or_else(PoisonError::into_inner);
        Some(last + timeout)
    }
}

/// An open session stream on a connection.
pub(crate) struct StreamGuard(Arc<Activity>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
        self.0.touch();
    }
}

/// The connection count, and the connections still in their TLS handshake (oldest first),
/// each with the sender that evicts it.
struct GateState {
    open: usize,
    overflow: usize,
    next_id: u64,
    handshaking: BTreeMap<u64, oneshot::Sender<()>>,
}

/// Admission of connections against the limit.
struct Gate {
    max: usize,
    state: Mutex<GateState>,
}

enum Admission {
    /// A slot, and (TLS) the registration of the handshake that eviction may end.
    Regular(Slot, Option<(u64, oneshot::Receiver<()>)>),
    Overflow(Slot),
    Refused,
}

impl Gate {
    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits a new connection; `handshake`: it has a TLS handshake ahead, registered (in the
    /// same step, so the order of eviction is the order of arrival) as evictable.
    fn admit(self: &Arc<Self>, handshake: bool) -> Admission {
        let mut state = self.lock();
        let regular = if state.open < self.max {
            true
        } else if let Some((_, evict)) = state.handshaking.pop_first() {
            // The evicted connection frees its slot when its task ends; until then the count
            // is one over, never more per eviction.
            let _ = evict.send(());
            true
        } else {
            false
        };
        if regular {
            state.open += 1;
            let registration = handshake.then(|| {
                let (tx, rx) = oneshot::channel();
                let id = state.next_id;
                state.next_id += 1;
                state.handshaking.insert(id, tx);
                (id, rx)
            });
            return Admission::Regular(Slot::new(self, false), registration);
        }
        if state.overflow < OVERFLOW_CONNECTIONS {
            state.overflow += 1;
            return Admission::Overflow(Slot::new(self, true));
        }
        Admission::Refused
    }

    fn handshake_done(&self, id: u64) {
        self.lock().handshaking.remove(&id);
    }
}

/// One counted connection; freed when dropped.
struct Slot {
    gate: Arc<Gate>,
    overflow: bool,
}

impl Slot {
    fn new(gate: &Arc<Gate>, overflow: bool) -> Self {
        Self {
            gate: Arc::clone(gate),
            overflow,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.gate.lock();
        if self.overflow {
            state.overflow = state.overflow.saturating_sub(1);
        } else {
            state.open = state.open.saturating_sub(1);
        }
    }
}

enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// An accepted (and, with TLS, authenticated) connection, handed to the gRPC server.
pub(crate) struct Connection {
    io: Io,
    info: ConnectionInfo,
    idle: Pin<Box<Sleep>>,
    idle_timeout: Duration,
    log: LogSink,
    _slot: Slot,
}

impl Connection {
    /// Checks the idle timer: an error once the connection has had no session and no call for
    /// its idle timeout. Registers the timer's wake-up otherwise.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Result<(), io::Error> {
        while self.idle.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            match self.info.activity.idle_deadline(self.idle_timeout) {
                Some(deadline) if deadline <= now => {
                    (self.log)(&format!(
                        "closed connection from {}: no session or call for {:?}",
                        self.info.remote, self.idle_timeout
                    ));
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "connection idle timeout",
                    ));
                }
                Some(deadline) => self.idle.as_mut().reset(deadline),
                None => self.idle.as_mut().reset(now + self.idle_timeout),
            }
        }
        Ok(())
    }
}

impl Connected for Connection {
    type ConnectInfo = ConnectionInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.info.clone()
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Err(e) = self.poll_idle(cx) {
            return Poll::Ready(Err(e));
        }
        match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Accepts connections on `listener` until the returned receiver is dropped; TLS with
/// `acceptor`, plaintext without.
pub(crate) fn accept_loop(
    listener: TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    limits: &Limits,
    log: LogSink,
) -> mpsc::Receiver<Connection> {
    let (tx, rx) = mpsc::channel::<Connection>(limits.max_connections.clamp(1, 1024));
    let gate = Arc::new(Gate {
        max: limits.max_connections.max(1),
        state: Mutex::new(GateState {
            open: 0,
            overflow: 0,
            next_id: 0,
            handshaking: BTreeMap::new(),
        }),
    });
    let handshake_timeout = limits.handshake_timeout;
    let idle_timeout = limits.connection_idle_timeout;
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = tx.closed() => break,
                accepted = listener.accept() => accepted,
            };
            let (tcp, remote) = match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    log(&format!("accepting a connection failed: {e}"));
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            let (slot, registration, over_capacity) = match gate.admit(acceptor.is_some()) {
                Admission::Regular(slot, registration) => (slot, registration, false),
                Admission::Overflow(slot) => (slot, None, true),
                Admission::Refused => {
                    log(&format!(
                        "refused connection from {remote}: server is at its limit of {} \
                         connections (and {OVERFLOW_CONNECTIONS} over it)",
                        gate.max
                    ));
                    drop(tcp);
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let tx = tx.clone();
            let gate = Arc::clone(&gate);
            let acceptor = acceptor.clone();
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let handshaken = match acceptor {
                    None => Some((Io::Plain(tcp), None)),
                    Some(acceptor) => {
                        handshake(
                            &acceptor,
                            tcp,
                            remote,
                            &gate,
                            registration,
                            handshake_timeout,
                            &log,
                        )
                        .await
                    }
                };
                let Some((io, certs)) = handshaken else {
                    return;
                };
                let idle_timeout = if over_capacity {
                    OVERFLOW_LINGER.min(idle_timeout)
                } else {
                    idle_timeout
                };
                let connection = Connection {
                    io,
                    info: ConnectionInfo {
                        remote,
                        certs,
                        over_capacity,
                        activity: Arc::new(Activity::new()),
                    },
                    idle: Box::pin(tokio::time::sleep(idle_timeout)),
                    idle_timeout,
                    log,
                    _slot: slot,
                };
                // A closed receiver means the server is shutting down: the connection is dropped.
                let _ = tx.send(connection).await;
            });
        }
    });
    rx
}

/// The TLS handshake of one connection, bounded in time, and evictable while it runs if it
/// is `registration`ed. Logs why it failed.
async fn handshake(
    acceptor: &tokio_rustls::TlsAcceptor,
    tcp: TcpStream,
    remote: SocketAddr,
    gate: &Gate,
    registration: Option<(u64, oneshot::Receiver<()>)>,
    timeout: Duration,
    log: &LogSink,
) -> Option<(Io, Option<Arc<Vec<CertificateDer<'static>>>>)> {
    let (id, evicted) = match registration {
        Some((id, rx)) => (Some(id), rx),
        // Over capacity: not evictable. The sender is dropped at once, so the receiver ends
        // with an error (which the select below ignores), never with an eviction.
        None => (None, oneshot::channel::<()>().1),
    };
    let result = tokio::select! {
        result = tokio::time::timeout(timeout, acceptor.accept(tcp)) => Some(result),
        Ok(()) = evicted => None,
    };
    if let Some(id) = id {
        gate.handshake_done(id);
    }
    match result {
        None => {
            log(&format!(
                "closed connection from {remote}: still in its tls handshake when the server \
                 reached its limit of {} connections",
                gate.max
            ));
            None
        }
        Some(Err(_)) => {
            log(&format!(
                "closed connection from {remote}: no tls handshake within {timeout:?}"
            ));
            None
        }
        Some(Ok(Err(e))) => {
            log(&format!(
                "refused connection from {remote}: tls handshake failed: {e}"
            ));
            None
        }
        Some(Ok(Ok(tls))) => {
            let certs = tls
                .get_ref()
                .1
                .peer_certificates()
                .map(|chain| Arc::new(chain.iter().map(|c| c.clone().into_owned()).collect()));
            Some((Io::Tls(Box::new(tls)), certs))
        }
    }
}
