//! TLS for SIP (RFC 3261 26.2, SIPS): the server side serves a certificate from
//! `--tls-cert`/`--tls-key` or a self-signed one made at start (rcgen); the client side
//! verifies the server unless the account's VerifyServerCertificate is false, as a device does.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use tokio_rustls::rustls::crypto::{ring, verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::rustls::{ClientConfig, DigitallySignedStruct, Error, RootCertStore, ServerConfig, SignatureScheme};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The device's TLS sides.
#[derive(Clone)]
pub struct Tls {
    /// Accepts connections on SIPTLSPort.
    pub acceptor: TlsAcceptor,
    /// Connects without verifying the server (VerifyServerCertificate false).
    pub trusting: TlsConnector,
    /// Connects verifying the server against the device's own certificate as the only root
    /// (there is no system store in an emulator's world).
    pub verifying: TlsConnector,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls")
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// Why TLS could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read or holds nothing usable.
    #[error("{0}")]
    File(String),
    /// rcgen or rustls refused the material.
    #[error("{0}")]
    Material(String),
    /// Not a DNS name or IP address.
    #[error("{0}: not a server name")]
    ServerName(String),
}

impl Tls {
    /// TLS from PEM files, or a self-signed certificate for `names` when none are given.
    pub fn new(cert_and_key: Option<(&Path, &Path)>, names: Vec<String>) -> Result<Tls, TlsError> {
        let material = |e: &dyn std::fmt::Display| TlsError::Material(e.to_string());
        let (certs, key) = match cert_and_key {
            Some((cert, key)) => load(cert, key)?,
            None => {
                let made = rcgen::generate_simple_self_signed(names)
                    .map_err(|e| material(&format!("cannot make a certificate: {e}")))?;
                let key = PrivateKeyDer::try_from(made.key_pair.serialize_der()).map_err(|e| material(&e))?;
                (vec![made.cert.der().clone()], key)
            }
        };
        let server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| material(&e))?
            .with_no_client_auth()
            .with_single_cert(certs.clone(), key)
            .map_err(|e| material(&format!("bad certificate or key: {e}")))?;
        let mut roots = RootCertStore::empty();
        for c in &certs {
            roots.add(c.clone()).map_err(|e| material(&e))?;
        }
        let verifying = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| material(&e))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let trusting = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| material(&e))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider())))
            .with_no_client_auth();
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            trusting: TlsConnector::from(Arc::new(trusting)),
            verifying: TlsConnector::from(Arc::new(verifying)),
        })
    }

    /// The server name to present for `host` (an IP address or a DNS name).
    pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        ServerName::try_from(host.to_owned()).map_err(|_| TlsError::ServerName(host.to_owned()))
    }
}

/// A certificate chain and a private key.
type Material = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

fn load(cert: &Path, key: &Path) -> Result<Material, TlsError> {
    let file = |p: &Path, why: &dyn std::fmt::Display| TlsError::File(format!("{}: {why}", p.display()));
    let read = |p: &Path| std::fs::read(p).map_err(|e| file(p, &format!("cannot read: {e}")));
    let certs = rustls_pemfile::certs(&mut read(cert)?.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file(cert, &e))?;
    if certs.is_empty() {
        return Err(file(cert, &"holds no certificate"));
    }
    let key = rustls_pemfile::private_key(&mut read(key)?.as_slice())
        .map_err(|e| file(key, &e))?
        .ok_or_else(|| file(key, &"holds no private key"))?;
    Ok((certs, key))
}

/// Accepts any server certificate (the account's VerifyServerCertificate is false), while still
/// checking the handshake signatures.
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_certificate_is_made_when_none_is_given() {
        let tls = Tls::new(None, vec!["127.0.0.1".into(), "doorsim".into()]);
        assert!(tls.is_ok());
        assert!(Tls::server_name("[::1]").is_ok() && Tls::server_name("door.local").is_ok());
        assert!(Tls::new(Some((Path::new("/nonexistent.pem"), Path::new("/nonexistent.key"))), vec![]).is_err());
    }
}
