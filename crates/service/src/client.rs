//! The initiator: connects to a responder and runs sessions over `Linkage.Session`.

use std::net::SocketAddr;

use blindlink_protocol::{
    DisclosureLedger, InitiatorHandshake, Message, ProtocolError, SessionDriver, SessionId,
    SessionOffer,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Request;
use tonic::transport::{Channel, Endpoint};

use crate::link::Link;
use crate::pb::linkage_client::LinkageClient;
use crate::pb::{Chunk, ServerInfoReply, ServerInfoRequest};
use crate::tls::{TransportSecurity, install_ring_provider};
use crate::{Limits, ServiceError, error_chain};

/// Where and how to reach a responder.
#[derive(Debug, Clone)]
pub struct PeerEndpoint {
    /// The responder's address.
    pub address: SocketAddr,
    /// The name the responder's certificate must carry (its SAN DNS name), e.g. `registry`.
    pub server_name: String,
    /// Mutual TLS or plaintext loopback.
    pub security: TransportSecurity,
    /// Sizes and deadlines.
    pub limits: Limits,
}

/// A connection to one responder; sessions run one after another or, on clones, at once.
#[derive(Debug, Clone)]
pub struct Initiator {
    channel: Channel,
    client: LinkageClient<Channel>,
    server_name: String,
    limits: Limits,
}

impl Initiator {
    /// Connects (TCP, TLS and HTTP/2) to the responder.
    ///
    /// # Errors
    /// Plaintext to a non-loopback address, unusable TLS material, or no connection (with the
    /// transport's reason).
    pub async fn connect(endpoint: &PeerEndpoint) -> Result<Self, ServiceError> {
        endpoint.security.check_address(endpoint.address)?;
        let scheme = match endpoint.security {
            TransportSecurity::MutualTls(_) => "https",
            TransportSecurity::InsecureLoopback => "http",
        };
        let limits = &endpoint.limits;
        let mut channel = Endpoint::from_shared(format!("{scheme}://{}", endpoint.address))
            .map_err(|e| ServiceError::Transport(error_chain(&e)))?
            .connect_timeout(limits.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(crate::KEEPALIVE_INTERVAL)
            .keep_alive_timeout(crate::KEEPALIVE_TIMEOUT);
        if let TransportSecurity::MutualTls(credentials) = &endpoint.security {
            install_ring_provider();
            channel = channel
                .tls_config(credentials.client_config(&endpoint.server_name))
                .map_err(|e| ServiceError::Tls(error_chain(&e)))?;
        }
        let channel = channel.connect().await.map_err(|e| {
            ServiceError::Transport(format!(
                "cannot connect to {}: {}",
                endpoint.address,
                error_chain(&e)
            ))
        })?;
        let max_message = limits.max_grpc_message_bytes();
        Ok(Self {
            channel: channel.clone(),
            client: LinkageClient::new(channel)
                .max_decoding_message_size(max_message)
                .max_encoding_message_size(max_message),
            server_name: endpoint.server_name.clone(),
            limits: limits.clone(),
        })
    }

    /// The connection, for other services on the same server (health checking).
    #[must_use]
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// The generated gRPC client, for probing the server below the protocol (tests).
    pub fn raw(&mut self) -> &mut LinkageClient<Channel> {
        &mut self.client
    }

    /// Asks the responder what it speaks.
    ///
    /// # Errors
    /// The responder refused (e.g. this party is not on its allow-list) or is unreachable.
    pub async fn server_info(&mut self) -> Result<ServerInfoReply, ServiceError> {
        let mut request = Request::new(ServerInfoRequest {});
        request.set_timeout(self.limits.request_timeout);
        self.client
            .server_info(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| ServiceError::from_peer_status(&s))
    }

    /// Runs one session: the handshake with `offer`, then `driver` until it finishes and the
    /// responder ends its side. Any error is also told to the responder (an abort message)
    /// unless the responder ended the session itself.
    ///
    /// # Security
    /// `secret` is used only for the key-check values and is not kept.
    ///
    /// # Errors
    /// Whatever ended the session: a difference found by the handshake, a protocol violation by
    /// the responder, the responder's status, a timeout.
    pub async fn run_session(
        &mut self,
        offer: SessionOffer,
        secret: &[u8],
        session_id: SessionId,
        driver: &mut dyn SessionDriver,
    ) -> Result<DisclosureLedger, ServiceError> {
        let (tx, rx) = mpsc::channel(crate::CHANNEL_DEPTH);
        let mut request = Request::new(ReceiverStream::new(rx));
        request.set_timeout(self.limits.session_deadline);
        let response = self
            .client
            .session(request)
            .await
            .map_err(|s| ServiceError::from_peer_status(&s))?;
        let mut link = Link::new(response.into_inner(), tx, |c: Chunk| c, &self.limits);
        let deadline = self.limits.session_deadline;
        let outcome = tokio::time::timeout(
            deadline,
            initiate(
                &mut link,
                offer,
                secret,
                session_id,
                driver,
                &self.server_name,
            ),
        )
        .await
        .unwrap_or(Err(ServiceError::Timeout {
            what: "session",
            after: deadline,
        }));
        if let Err(e) = &outcome {
            let peer_ended = matches!(
                e,
                ServiceError::PeerStatus { .. }
                    | ServiceError::Protocol(
                        ProtocolError::PeerAborted(_) | ProtocolError::PeerClosed(_)
                    )
            );
            if !peer_ended {
                // Tell the responder why, end this side, and wait (briefly) for the responder to
                // end its side: dropping the call at once could cancel the stream before the
                // abort is delivered.
                let _ = tokio::time::timeout(crate::FAREWELL_TIMEOUT, async {
                    if link.outbound.queue(&Message::abort(&e.peer_text())).is_ok() {
                        let _ = link.outbound.flush().await;
                    }
                    link.outbound.close();
                    while let Ok(Some(_)) = link.inbound.read().await {}
                })
                .await;
            }
        }
        outcome
    }
}

async fn initiate(
    link: &mut Link<Chunk>,
    offer: SessionOffer,
    secret: &[u8],
    session_id: SessionId,
    driver: &mut dyn SessionDriver,
    server_name: &str,
) -> Result<DisclosureLedger, ServiceError> {
    let (waiting, hello) = InitiatorHandshake::start(offer, secret, session_id);
    link.outbound.queue(&hello)?;
    let reply = link
        .recv()
        .await?
        .ok_or(ProtocolError::PeerClosed("before answering the hello"))?;
    let established = waiting.handle(reply)?;
    driver.established(&established);
    let mut ledger = crate::link::open_ledger(&established, server_name);
    let driven = link.drive(driver, &mut ledger).await;
    if driven.is_ok() {
        link.outbound.flush().await?;
        link.outbound.close();
        // The responder ends its side once it has seen the end of ours.
        match link.recv().await? {
            None => {}
            Some(Message::Abort(reason)) => return Err(ProtocolError::PeerAborted(reason).into()),
            Some(other) => {
                return Err(ProtocolError::UnexpectedMessage {
                    got: other.kind().name(),
                    state: "after the session was complete",
                    expected: "the end of the responder's stream",
                }
                .into());
            }
        }
    }
    link.record_traffic(&mut ledger);
    driven?;
    Ok(ledger)
}
