//! TLS for `ssl_get` (rustls with the `ring` provider). Without `verify_cert` any certificate
//! is accepted, as keepalived's SSL_GET does (it checks that a web server answers, not who it
//! is); the handshake signatures are still verified, so the peer holds the key of the
//! certificate it shows. With `verify_cert` the chain is checked against `ca_file` (or the
//! system's trust store) and the name against `sni` / `virtualhost` (or the address).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::plan::Tls;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Accepts any certificate; checks the handshake signature with the certificate's key.
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// The client configuration for `tls`. Reads files (the CA file or the system store): call it
/// off the runtime's thread (`spawn_blocking`).
pub fn client_config(tls: &Tls) -> Result<Arc<ClientConfig>, String> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let config = if tls.verify {
        let mut roots = RootCertStore::empty();
        match &tls.ca_file {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
                for cert in certs {
                    let cert = cert.map_err(|e| format!("ca_file {}: {e}", path.display()))?;
                    roots
                        .add(cert)
                        .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                let (added, _) = roots.add_parsable_certificates(found.certs);
                if added == 0 {
                    return Err(format!(
                        "verify_cert: no trusted certificates in the system store ({} errors); set ca_file",
                        found.errors.len()
                    ));
                }
            }
        }
        if roots.is_empty() {
            return Err("verify_cert: ca_file holds no certificate".to_string());
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(
                provider.signature_verification_algorithms,
            )))
            .with_no_client_auth()
    };
    Ok(Arc::new(config))
}

/// The name the handshake uses: a DNS name is sent as SNI; without one (or for an address)
/// no SNI is sent and a verified certificate must name the address.
pub fn server_name(tls: &Tls, target: SocketAddr) -> ServerName<'static> {
    if let Some(name) = &tls.server_name {
        if let Ok(ip) = name.parse::<IpAddr>() {
            return ServerName::IpAddress(ip.into());
        }
        if let Ok(n) = ServerName::try_from(name.clone()) {
            return n;
        }
    }
    ServerName::IpAddress(target.ip().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let t = |n: Option<&str>| Tls {
            server_name: n.map(String::from),
            verify: false,
            ca_file: None,
        };
        let target: SocketAddr = "10.0.0.1:443".parse().expect("addr");
        assert!(matches!(
            server_name(&t(Some("www.example.org")), target),
            ServerName::DnsName(_)
        ));
        assert!(matches!(
            server_name(&t(Some("10.0.0.9")), target),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name(&t(None), target),
            ServerName::IpAddress(_)
        ));
    }

    #[test]
    fn configs_build() {
        let t = Tls {
            server_name: None,
            verify: false,
            ca_file: None,
        };
        assert!(client_config(&t).is_ok());
        let missing = Tls {
            server_name: None,
            verify: true,
            ca_file: Some("/nonexistent/ca.pem".into()),
        };
        let e = client_config(&missing).expect_err("missing file");
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    }
}
