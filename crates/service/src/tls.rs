//! Transport security: mutual TLS with rustls (the `ring` provider), client certificates
//! verified against the configured CA, and authorisation of the peer by the DNS names in its
//! certificate's subject alternative names against an allow-list. Plaintext exists only for
//! loopback addresses, behind an explicit setting.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};
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

    /// The server's rustls configuration: this party's certificate, client certificates
    /// required and verified against the CA, HTTP/2 by ALPN.
    ///
    /// # Errors
    /// A PEM file that does not parse or a key that does not fit the certificate (the message
    /// names the file's role, never its contents).
    pub(crate) fn server_config(&self) -> Result<rustls::ServerConfig, ServiceError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(self.ca_pem.as_bytes()) {
            let cert = cert.map_err(|_| ServiceError::Tls("the ca pem does not parse".into()))?;
            roots
                .add(cert)
                .map_err(|e| ServiceError::Tls(format!("the ca certificate is unusable: {e}")))?;
        }
        if roots.is_empty() {
            return Err(ServiceError::Tls("the ca pem holds no certificate".into()));
        }
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                .build()
                .map_err(|e| ServiceError::Tls(format!("client certificate verifier: {e}")))?;
        let chain = CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| ServiceError::Tls("the certificate pem does not parse".into()))?;
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())
            .map_err(|_| ServiceError::Tls("the private key pem does not parse".into()))?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ServiceError::Tls(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(|e| ServiceError::Tls(format!("certificate and key: {e}")))?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(config)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DevPki;

    fn leaf(pki: &DevPki, name: &str) -> CertificateDer<'static> {
        let pem = &pki
            .parties
            .iter()
            .find(|p| p.name == name)
            .unwrap()
            .cert_pem;
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        CertificateDer::from(decode_base64(&b64))
    }

    /// A small base64 decoder so the test needs no extra dependency.
    fn decode_base64(text: &str) -> Vec<u8> {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = Vec::new();
        let (mut acc, mut bits) = (0u32, 0);
        for c in text.bytes().filter(|&c| c != b'=') {
            let v = ALPHABET.iter().position(|&a| a == c).unwrap() as u32;
            acc = (acc << 6) | v;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
            }
        }
        out
    }

    fn check(cert: Option<&str>, allowed: &[&str], expected: &str) {
        let pki = DevPki::generate(&["registry", "insurer", "mallory"]).unwrap();
        let chain = cert.map(|name| vec![leaf(&pki, name)]);
        let allowed: Vec<String> = allowed.iter().map(|s| (*s).to_owned()).collect();
        let got = match authorise_peer(chain.as_deref(), &allowed) {
            Ok(name) => format!("ok {name}"),
            Err(e) => e.to_string(),
        };
        assert_eq!(got, expected);
    }

    #[test]
    fn authorisation_by_certificate_name() {
        check(Some("insurer"), &["insurer"], "ok insurer");
        check(Some("insurer"), &["registry", "insurer"], "ok insurer");
        check(
            Some("mallory"),
            &["insurer"],
            "peer certificate names 'mallory', none of which is on the allow-list",
        );
        check(
            Some("insurer"),
            &[],
            "peer certificate names 'insurer', none of which is on the allow-list",
        );
        check(None, &["insurer"], "peer presented no client certificate");
    }

    #[test]
    fn garbage_certificate_is_refused() {
        let junk = CertificateDer::from(vec![0x30, 0x03, 0x01, 0x01, 0xff]);
        let err = authorise_peer(Some(&[junk]), &["insurer".to_owned()]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("tls configuration: peer certificate does not parse: "),
            "{err}"
        );
    }

    #[test]
    fn plaintext_only_on_loopback() {
        let check = |addr: &str, expected: &str| {
            let got = match TransportSecurity::InsecureLoopback.check_address(addr.parse().unwrap())
            {
                Ok(()) => "ok".to_owned(),
                Err(e) => e.to_string(),
            };
            assert_eq!(got, expected, "{addr}");
        };
        check("127.0.0.1:1", "ok");
        check("127.8.9.10:1", "ok");
        check("[::1]:1", "ok");
        check(
            "0.0.0.0:1",
            "refusing plaintext on non-loopback address 0.0.0.0:1 (insecure-loopback allows only \
             127.0.0.0/8 and ::1)",
        );
        check(
            "[::]:1",
            "refusing plaintext on non-loopback address [::]:1 (insecure-loopback allows only \
             127.0.0.0/8 and ::1)",
        );
    }
}
