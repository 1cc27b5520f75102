//! The responder: a tonic server that runs one session per `Linkage.Session` stream, keyed by
//! the session id in the initiator's hello, with health checking and reflection beside it.

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use blindlink_protocol::{
    DisclosureLedger, EstablishedSession, Message, PROTOCOL_VERSION, PingResponder, ProtocolError,
    ResponderHandshake, SessionDriver, SessionId, SessionOffer,
};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use zeroize::Zeroizing;

use crate::accept::{ConnectionInfo, LogSink, accept_loop};
use crate::link::Link;
use crate::pb::linkage_server::{Linkage, LinkageServer};
use crate::pb::{Chunk, ServerInfoReply, ServerInfoRequest};
use crate::tls::{INSECURE_PEER_NAME, TransportSecurity, authorise_peer, install_ring_provider};
use crate::{Limits, ServiceError, error_chain};

/// Creates the responder's mode driver for each established session.
pub trait DriverFactory: Send + Sync + 'static {
    /// The driver for `session`, run against the authenticated `peer`.
    ///
    /// # Errors
    /// The mode is not available on this server.
    fn responder(
        &self,
        session: &EstablishedSession,
        peer: &str,
    ) -> Result<Box<dyn SessionDriver>, ProtocolError>;
}

/// Answers pings: the connectivity test vehicle, not a linkage mode.
#[derive(Debug, Clone, Copy, Default)]
pub struct PingResponderFactory;

impl DriverFactory for PingResponderFactory {
    fn responder(
        &self,
        _session: &EstablishedSession,
        _peer: &str,
    ) -> Result<Box<dyn SessionDriver>, ProtocolError> {
        Ok(Box::new(PingResponder::default()))
    }
}

/// Everything the responder needs besides its mode drivers.
pub struct ServerConfig {
    /// Mutual TLS or plaintext loopback.
    pub security: TransportSecurity,
    /// Peer identities (certificate SAN DNS names) that may open sessions.
    pub allowed_peers: Vec<String>,
    /// Sizes, deadlines and the concurrency limit.
    pub limits: Limits,
    /// The mode, schema and parameters this side offers.
    pub offer: SessionOffer,
    /// The linkage secret, for the key-check value only; zeroized on drop.
    pub secret: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("security", &self.security)
            .field("allowed_peers", &self.allowed_peers)
            .field("limits", &self.limits)
            .field("offer", &self.offer)
            .finish_non_exhaustive()
    }
}

/// How one session (or one refused attempt) ended on the server.
#[derive(Debug, Clone)]
pub struct SessionReport {
    /// The authenticated peer, or what was known of it.
    pub peer: String,
    /// The session id, once the hello arrived.
    pub session_id: Option<SessionId>,
    /// The ledger of a completed session, or why it ended.
    pub outcome: Result<DisclosureLedger, ServiceError>,
}

struct Shared {
    config: ServerConfig,
    factory: Box<dyn DriverFactory>,
    sessions: Arc<Semaphore>,
    /// Ids of the sessions running now: the key of the server's session state.
    active: Mutex<HashSet<SessionId>>,
    reports: Option<mpsc::UnboundedSender<SessionReport>>,
    log: LogSink,
}

/// Holds a session id in the active set and frees it when the session ends, however it ends.
struct ActiveSession<'a> {
    shared: &'a Shared,
    id: SessionId,
}

impl Drop for ActiveSession<'_> {
    fn drop(&mut self) {
        self.shared
            .active
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

impl Shared {
    fn claim(&self, id: SessionId) -> Result<ActiveSession<'_>, ServiceError> {
        let mut active = self.active.lock().unwrap_or_else(PoisonError::into_inner);
        if !active.insert(id) {
            return Err(ServiceError::DuplicateSession(id.to_string()));
        }
        Ok(ActiveSession { shared: self, id })
    }

    fn report(&self, report: SessionReport) {
        if let Some(tx) = &self.reports {
            // A dropped receiver only means nobody is listening any more.
            let _ = tx.send(report);
        }
    }

    /// The peer of a request on an authenticated connection; a connection over the server's
    /// connection limit is refused first.
    fn authorise<T>(&self, request: &Request<T>) -> Result<String, ServiceError> {
        let info = request
            .extensions()
            .get::<ConnectionInfo>()
            .ok_or_else(|| ServiceError::Transport("request without connection info".into()))?;
        info.activity.touch();
        if info.over_capacity {
            return Err(ServiceError::AtCapacity(self.config.limits.max_connections));
        }
        match &self.config.security {
            TransportSecurity::InsecureLoopback => Ok(INSECURE_PEER_NAME.to_owned()),
            TransportSecurity::MutualTls(_) => authorise_peer(
                info.certs.as_deref().map(Vec::as_slice),
                &self.config.allowed_peers,
            ),
        }
    }

    /// Authorises a call to health checking or reflection: the same allow-list as sessions.
    fn authorise_call(&self, request: Request<()>) -> Result<Request<()>, Status> {
        match self.authorise(&request) {
            Ok(_) => Ok(request),
            Err(e) => {
                (self.log)(&format!("refused a call from {}: {e}", remote_of(&request)));
                Err(e.to_status())
            }
        }
    }
}

/// The peer's address of a request, for log lines.
fn remote_of<T>(request: &Request<T>) -> String {
    request
        .extensions()
        .get::<ConnectionInfo>()
        .map_or_else(|| "an unknown address".to_owned(), |i| i.remote.to_string())
}

/// The `Linkage` gRPC service.
struct LinkageService {
    shared: Arc<Shared>,
}

#[tonic::async_trait]
impl Linkage for LinkageService {
    type SessionStream = ReceiverStream<Result<Chunk, Status>>;

    async fn session(
        &self,
        request: Request<Streaming<Chunk>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let shared = Arc::clone(&self.shared);
        let remote = remote_of(&request);
        let stream = request
            .extensions()
            .get::<ConnectionInfo>()
            .map(|i| i.activity.stream());
        let peer = match shared.authorise(&request) {
            Ok(peer) => peer,
            Err(e @ ServiceError::AtCapacity(_)) => {
                (shared.log)(&format!("refused a session from {remote}: {e}"));
                return Err(e.to_status());
            }
            Err(e) => {
                (shared.log)(&format!("refused a session from {remote}: {e}"));
                shared.report(SessionReport {
                    peer: "unauthorised peer".to_owned(),
                    session_id: None,
                    outcome: Err(e.clone()),
                });
                return Err(e.to_status());
            }
        };
        let limit = shared.config.limits.max_concurrent_sessions;
        let Ok(permit) = Arc::clone(&shared.sessions).try_acquire_owned() else {
            let e = ServiceError::Busy(limit);
            shared.report(SessionReport {
                peer,
                session_id: None,
                outcome: Err(e.clone()),
            });
            return Err(e.to_status());
        };
        let (tx, rx) = mpsc::channel(crate::CHANNEL_DEPTH);
        let mut link = Link::new(request.into_inner(), tx, Ok, &shared.config.limits);
        (shared.log)(&format!("session from {peer} at {remote} started"));
        tokio::spawn(async move {
            let _stream = stream;
            let mut session_id = None;
            let deadline = shared.config.limits.session_deadline;
            let outcome = tokio::time::timeout(
                deadline,
                respond(&shared, &peer, &mut link, &mut session_id),
            )
            .await
            .unwrap_or(Err(ServiceError::Timeout {
                what: "session",
                after: deadline,
            }));
            if let Err(e) = &outcome {
                // Best effort: the peer may already be gone.
                let _ = tokio::time::timeout(crate::FAREWELL_TIMEOUT, async {
                    let _ = link.outbound.flush().await;
                    let _ = link.outbound.send_raw(Err(e.to_status())).await;
                })
                .await;
            }
            drop(permit);
            shared.report(SessionReport {
                peer,
                session_id,
                outcome,
            });
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn server_info(
        &self,
        request: Request<ServerInfoRequest>,
    ) -> Result<Response<ServerInfoReply>, Status> {
        self.shared.authorise(&request).map_err(|e| {
            (self.shared.log)(&format!("refused a call from {}: {e}", remote_of(&request)));
            e.to_status()
        })?;
        Ok(Response::new(ServerInfoReply {
            protocol_version: u32::from(PROTOCOL_VERSION),
            modes: vec![self.shared.config.offer.mode.to_string()],
            max_chunk_bytes: u32::try_from(self.shared.config.limits.max_chunk_bytes)
                .unwrap_or(u32::MAX),
        }))
    }
}

/// The responder's side of one session.
async fn respond(
    shared: &Shared,
    peer: &str,
    link: &mut Link<Result<Chunk, Status>>,
    session_id: &mut Option<SessionId>,
) -> Result<DisclosureLedger, ServiceError> {
    let first = link
        .recv()
        .await?
        .ok_or(ProtocolError::PeerClosed("before sending its hello"))?;
    let _active = match &first {
        Message::Hello(hello) => {
            *session_id = Some(hello.session_id);
            Some(shared.claim(hello.session_id)?)
        }
        _ => None,
    };
    let answer =
        ResponderHandshake::new(shared.config.offer.clone(), &shared.config.secret).handle(first);
    if let Some(reply) = &answer.reply {
        link.outbound.queue(reply)?;
    }
    let established = answer.result?;
    let mut ledger = crate::link::open_ledger(&established, peer);
    let mut driver = shared.factory.responder(&established, peer)?;
    driver.established(&established);
    let driven = link.drive(driver.as_mut(), &mut ledger).await;
    link.record_traffic(&mut ledger);
    driven?;
    link.outbound.flush().await?;
    link.outbound.close();
    Ok(ledger)
}

/// A configured responder, ready to serve.
pub struct Responder {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl Responder {
    /// A responder with this configuration and these mode drivers; `reports` receives one
    /// [`SessionReport`] per session or refused attempt. Log lines (connections refused or
    /// closed below the protocol, with the peer's address and the reason; sessions started)
    /// go to standard error unless [`Responder::log_to`] says otherwise.
    #[must_use]
    pub fn new(
        config: ServerConfig,
        factory: impl DriverFactory,
        reports: Option<mpsc::UnboundedSender<SessionReport>>,
    ) -> Self {
        let sessions = Arc::new(Semaphore::new(config.limits.max_concurrent_sessions));
        Self {
            shared: Arc::new(Shared {
                config,
                factory: Box::new(factory),
                sessions,
                active: Mutex::new(HashSet::new()),
                reports,
                log: Arc::new(|line: &str| eprintln!("{line}")),
            }),
        }
    }

    /// Sends the server's log lines to `log` instead of standard error. Lines never hold key
    /// material: they name peer addresses, certificate names and reasons.
    ///
    /// # Example
    /// ```
    /// # use blindlink_service::{Responder, ServerConfig, PingResponderFactory, Limits, TransportSecurity};
    /// # use blindlink_protocol::{Mode, Parameters, SchemaDescriptor, SessionOffer};
    /// # let config = ServerConfig {
    /// #     security: TransportSecurity::InsecureLoopback,
    /// #     allowed_peers: Vec::new(),
    /// #     limits: Limits::default(),
    /// #     offer: SessionOffer {
    /// #         mode: Mode::Exact,
    /// #         schema: SchemaDescriptor::new([("name", "text")]).unwrap(),
    /// #         parameters: Parameters::new([("k", "v")]).unwrap(),
    /// #     },
    /// #     secret: Default::default(),
    /// # };
    /// let responder = Responder::new(config, PingResponderFactory, None)
    ///     .log_to(|line| println!("server: {line}"));
    /// ```
    #[must_use]
    pub fn log_to(mut self, log: impl Fn(&str) + Send + Sync + 'static) -> Self {
        // The state is shared only once the responder serves, so this always finds it alone.
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.log = Arc::new(log);
        }
        self
    }

    /// Serves on `listener` until `shutdown` completes, then drains: no new connection or
    /// session is accepted and the sessions running finish (each within its deadline).
    ///
    /// # Errors
    /// Plaintext on a non-loopback address, plaintext with an allow-list (plaintext cannot
    /// authenticate peers, so the list could not be enforced), unusable TLS material, or a
    /// failure of the server.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServiceError> {
        let address = listener
            .local_addr()
            .map_err(|e| ServiceError::Transport(format!("listener has no address: {e}")))?;
        let config = &self.shared.config;
        config.security.check_address(address)?;
        let limits = &config.limits;
        let acceptor = match &config.security {
            TransportSecurity::MutualTls(credentials) => {
                install_ring_provider();
                Some(tokio_rustls::TlsAcceptor::from(Arc::new(
                    credentials.server_config()?,
                )))
            }
            TransportSecurity::InsecureLoopback if !config.allowed_peers.is_empty() => {
                return Err(ServiceError::InsecureAllowList(
                    config
                        .allowed_peers
                        .iter()
                        .map(|p| blindlink_protocol::sanitise_peer_text(p, 64))
                        .collect::<Vec<_>>()
                        .join(", "),
                ));
            }
            TransportSecurity::InsecureLoopback => None,
        };
        let mut builder = tonic::transport::Server::builder()
            .concurrency_limit_per_connection(limits.max_concurrent_sessions)
            .max_concurrent_streams(
                u32::try_from(limits.max_concurrent_sessions).unwrap_or(u32::MAX),
            )
            .http2_keepalive_interval(Some(crate::KEEPALIVE_INTERVAL))
            .http2_keepalive_timeout(Some(crate::KEEPALIVE_TIMEOUT))
            .timeout(limits.request_timeout);
        let (health_reporter, health) = tonic_health::server::health_reporter();
        health_reporter
            .set_serving::<LinkageServer<LinkageService>>()
            .await;
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(crate::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .map_err(|e| ServiceError::Transport(format!("reflection service: {e}")))?;
        let max_message = limits.max_grpc_message_bytes();
        let linkage = LinkageServer::new(LinkageService {
            shared: Arc::clone(&self.shared),
        })
        .max_decoding_message_size(max_message)
        .max_encoding_message_size(max_message);
        // Health checking and reflection answer only peers that may open sessions.
        let for_health = Arc::clone(&self.shared);
        let for_reflection = Arc::clone(&self.shared);
        let health = tonic::service::interceptor::InterceptedService::new(
            health,
            move |request: Request<()>| for_health.authorise_call(request),
        );
        let reflection = tonic::service::interceptor::InterceptedService::new(
            reflection,
            move |request: Request<()>| for_reflection.authorise_call(request),
        );
        let connections = ReceiverStream::new(accept_loop(
            listener,
            acceptor,
            limits,
            Arc::clone(&self.shared.log),
        ))
        .map(Ok::<_, std::io::Error>);
        builder
            .add_service(health)
            .add_service(reflection)
            .add_service(linkage)
            .serve_with_incoming_shutdown(connections, shutdown)
            .await
            .map_err(|e| ServiceError::Transport(error_chain(&e)))
    }
}
