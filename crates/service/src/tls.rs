//! Transport security: mutual TLS with rustls (the `ring` provider), client certificates
//! verified against the configured CA, and authorisation of the peer by the DNS names in its
//! certificate's subject alternative names against an allow-list. Plaintext exists only for
//! loopback addresses, behind an explicit setting.

use std::net::SocketAddr;

use rustls_pki_types::CertificateDer;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};
use zeroize::Zeroizing;

use crate::ServiceError;

/// The PEM files of one party: the CA that signs both parties' certificates, and this party's
/// certificate chain and private key.
#[derive(Clone)]
pub struct TlsCredentials {
    /// The CA certificate(s) that peers' certificates must chain to.
    pub ca_pem: String,
    /// This party's certificate (chain).
    pub cert_pem: String,
    /// This party's private key; zeroized on drop.
    pub key_pem: Zeroizing<String>,
}

impl std::fmt::Debug for TlsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsCredentials").finish_non_exhaustive()
    }
}

impl TlsCredentials {
    fn identity(&self) -> Identity {
        Identity::from_pem(self.cert_pem.as_bytes(), self.key_pem.as_bytes())
    }

    fn ca(&self) -> Certificate {
        Certificate::from_pem(self.ca_pem.as_bytes())
    }

    pub(crate) fn server_config(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(self.identity())
            .client_ca_root(self.ca())
            .client_auth_optional(false)
    }

    pub(crate) fn client_config(&self, server_name: &str) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(self.ca())
            .identity(self.identity())
            .domain_name(server_name)
    }
}

/// How a peer's connection is protected.
#[derive(Debug, Clone)]
pub enum TransportSecurity {
    /// Mutual TLS: both sides present certificates signed by the configured CA.
    MutualTls(TlsCredentials),
    /// Plaintext, allowed only on loopback addresses (tests, demos on one machine).
    InsecureLoopback,
}

impl TransportSecurity {
    /// Refuses plaintext for an address that is not loopback.
    ///
    /// # Errors
    /// [`ServiceError::InsecureNotLoopback`].
    pub fn check_address(&self, address: SocketAddr) -> Result<(), ServiceError> {
        match self {
            Self::InsecureLoopback if !address.ip().is_loopback() => {
                Err(ServiceError::InsecureNotLoopback(address))
            }
            _ => Ok(()),
        }
    }
}

/// The name of a peer that connected over plaintext loopback (no certificate to name it).
pub const INSECURE_PEER_NAME: &str = "insecure-loopback";

/// Installs the `ring` crypto provider as the process default, once; tonic's server side
/// builds its rustls configuration from the process default.
pub(crate) fn install_ring_provider() {
    // Err means a provider is already installed, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The identity of the peer that presented `chain`: the first DNS name in its leaf
/// certificate's subject alternative names that is on `allowed`.
///
/// # Errors
/// No certificate ([`ServiceError::Unauthenticated`]), an unparsable certificate, or no name on
/// the allow-list ([`ServiceError::NotAllowed`], naming what the certificate carries).
pub fn authorise_peer(
    chain: Option<&[CertificateDer<'static>]>,
    allowed: &[String],
) -> Result<String, ServiceError> {
    let leaf = chain
        .and_then(|c| c.first())
        .ok_or(ServiceError::Unauthenticated)?;
    let cert = webpki::EndEntityCert::try_from(leaf)
        .map_err(|e| ServiceError::Tls(format!("peer certificate does not parse: {e}")))?;
    let names: Vec<String> = cert.valid_dns_names().map(str::to_owned).collect();
    if let Some(name) = names.iter().find(|n| allowed.iter().any(|a| a == *n)) {
        return Ok(name.clone());
    }
    let presented = if names.is_empty() {
        "no dns name".to_owned()
    } else {
        names
            .iter()
            .map(|n| format!("'{}'", blindlink_protocol::sanitise_peer_text(n, 64)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(ServiceError::NotAllowed { presented })
}
