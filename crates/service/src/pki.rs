//! A development public-key infrastructure: one CA and one certificate per party name, for
//! `blindlink certs` and for tests. Production deployments use their own CA.
//!
//! Each party certificate carries its name as a DNS subject alternative name and as the common
//! name, and may be used both as a TLS server and as a TLS client, since a party may run either
//! side of a session. Keys are ECDSA P-256.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use zeroize::Zeroizing;

use crate::ServiceError;
use crate::tls::TlsCredentials;

/// One party's certificate and key.
#[derive(Clone)]
pub struct PartyCertificate {
    /// The party's name (the SAN DNS name).
    pub name: String,
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PEM; zeroized on drop.
    pub key_pem: Zeroizing<String>,
}

impl std::fmt::Debug for PartyCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartyCertificate")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A development CA and the certificates it issued.
#[derive(Debug, Clone)]
pub struct DevPki {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// One certificate per party, in the order asked for.
    pub parties: Vec<PartyCertificate>,
}

impl DevPki {
    /// Generates a CA and one certificate per name.
    ///
    /// # Errors
    /// No names, a name that is not a valid DNS name, a duplicate name, or a failure in the
    /// certificate library.
    ///
    /// # Example
    /// ```
    /// let pki = blindlink_service::DevPki::generate(&["registry", "insurer"]).unwrap();
    /// assert_eq!(pki.parties[1].name, "insurer");
    /// assert!(pki.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    /// assert!(blindlink_service::DevPki::generate(&["not a name"]).is_err());
    /// ```
    pub fn generate(names: &[&str]) -> Result<Self, ServiceError> {
        if names.is_empty() {
            return Err(ServiceError::Certificate("no party names given".to_owned()));
        }
        for (i, name) in names.iter().enumerate() {
            check_party_name(name)?;
            if names[..i].contains(name) {
                return Err(ServiceError::Certificate(format!(
                    "party name '{name}' is given twice"
                )));
            }
        }
        let failed = |e: rcgen::Error| ServiceError::Certificate(e.to_string());

        let ca_key = KeyPair::generate().map_err(failed)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca_params.distinguished_name = distinguished_name("blindlink development CA");
        let ca_cert = ca_params.self_signed(&ca_key).map_err(failed)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let parties = names
            .iter()
            .map(|name| {
                let key = KeyPair::generate().map_err(failed)?;
                let mut params =
                    CertificateParams::new(vec![(*name).to_owned()]).map_err(failed)?;
                params.distinguished_name = distinguished_name(name);
                params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
                params.extended_key_usages = vec![
                    ExtendedKeyUsagePurpose::ServerAuth,
                    ExtendedKeyUsagePurpose::ClientAuth,
                ];
                let cert = params.signed_by(&key, &issuer).map_err(failed)?;
                Ok(PartyCertificate {
                    name: (*name).to_owned(),
                    cert_pem: cert.pem(),
                    key_pem: Zeroizing::new(key.serialize_pem()),
                })
            })
            .collect::<Result<Vec<_>, ServiceError>>()?;
        Ok(Self {
            ca_pem: ca_cert.pem(),
            parties,
        })
    }

    /// The TLS credentials of party `name`, for tests and the demo.
    ///
    /// # Errors
    /// No party of that name.
    pub fn credentials(&self, name: &str) -> Result<TlsCredentials, ServiceError> {
        let party = self
            .parties
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| ServiceError::Certificate(format!("no certificate for '{name}'")))?;
        Ok(TlsCredentials {
            ca_pem: self.ca_pem.clone(),
            cert_pem: party.cert_pem.clone(),
            key_pem: party.key_pem.clone(),
        })
    }
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

/// Checks that a party name can be a DNS name in a certificate (and a file name).
///
/// # Errors
/// The name is empty, longer than 63 bytes, or has characters other than lowercase ASCII
/// letters, digits, `-` and `.`, or starts or ends with `-` or `.`, or is `ca`.
pub fn check_party_name(name: &str) -> Result<(), ServiceError> {
    let bad = |reason: &str| {
        Err(ServiceError::Certificate(format!(
            "party name '{}' {reason}",
            blindlink_protocol::sanitise_peer_text(name, 70)
        )))
    };
    if name.is_empty() || name.len() > 63 {
        return bad("must be 1 to 63 characters long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        return bad("may contain only lowercase letters, digits, '-' and '.'");
    }
    if name.starts_with(['-', '.']) || name.ends_with(['-', '.']) || name.contains("..") {
        return bad("must not start or end with '-' or '.', nor contain '..'");
    }
    if name == "ca" {
        return bad("is reserved for the CA's files");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(names: &[&str], expected: &str) {
        let got = match DevPki::generate(names) {
            Ok(pki) => format!(
                "ok {}",
                pki.parties
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Err(e) => e.to_string(),
        };
        assert_eq!(got, expected);
    }

    #[test]
    fn party_names() {
        check(
            &["registry", "insurer-2", "a.example"],
            "ok registry,insurer-2,a.example",
        );
        check(&[], "certificate generation: no party names given");
        check(
            &["a", "a"],
            "certificate generation: party name 'a' is given twice",
        );
        check(
            &["Registry"],
            "certificate generation: party name 'Registry' may contain only lowercase letters, \
             digits, '-' and '.'",
        );
        check(
            &["../etc"],
            "certificate generation: party name '../etc' may contain only lowercase letters, \
             digits, '-' and '.'",
        );
        check(
            &["-x"],
            "certificate generation: party name '-x' must not start or end with '-' or '.', nor \
             contain '..'",
        );
        check(
            &["ca"],
            "certificate generation: party name 'ca' is reserved for the CA's files",
        );
        check(
            &[""],
            "certificate generation: party name '' must be 1 to 63 characters long",
        );
    }

    #[test]
    fn keys_are_pem_and_distinct() {
        let pki = DevPki::generate(&["a", "b"]).unwrap();
        assert!(
            pki.parties[0]
                .key_pem
                .starts_with("-----BEGIN PRIVATE KEY-----")
        );
        assert_ne!(*pki.parties[0].key_pem, *pki.parties[1].key_pem);
        assert!(format!("{:?}", pki.parties[0]).contains("name: \"a\""));
        assert!(!format!("{:?}", pki.parties[0]).contains("PRIVATE"));
    }
}
