//! Native TLS on the client port: the server certificate and key (PEM files from `[tls]`),
//! one rustls configuration shared by every shard, and reloading on SIGHUP.
//!
//! The certificate is found per handshake through a resolver holding the current one behind a
//! lock: a read per new TLS connection, never per message. A reload swaps it; connections
//! already open keep the session they have. A reload that fails keeps the old certificate.

use crate::config::TlsConfig;
use futures_rustls::{
    rustls::{
        crypto::ring,
        pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
        server::{ClientHello, ResolvesServerCert},
        sign::CertifiedKey,
        ServerConfig,
    },
    TlsAcceptor,
};
use std::sync::{Arc, RwLock};

/// The server side of TLS: what every shard's acceptor uses.
pub struct TlsContext {
    files: TlsConfig,
    current: Arc<CurrentCert>,
    config: Arc<ServerConfig>,
}

/// The certificate new handshakes get.
#[derive(Debug)]
struct CurrentCert(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.read().ok().map(|cert| cert.clone())
    }
}

impl TlsContext {
    /// Reads the certificate and key; an error names the file at fault.
    pub fn load(files: &TlsConfig) -> Result<TlsContext, String> {
        let current = Arc::new(CurrentCert(RwLock::new(Arc::new(certified_key(files)?))));
        let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        Ok(TlsContext { files: files.clone(), current, config: Arc::new(config) })
    }

    /// Reads the files again; new connections get the new certificate. On error the old one
    /// stays.
    pub fn reload(&self) -> Result<(), String> {
        let fresh = Arc::new(certified_key(&self.files)?);
        match self.current.0.write() {
            Ok(mut cert) => *cert = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        Ok(())
    }

    /// An acceptor for new connections.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.clone())
    }
}

/// The certificate chain and its key, checked to match.
fn certified_key(files: &TlsConfig) -> Result<CertifiedKey, String> {
    let cert_file = &files.cert_file;
    let certs = CertificateDer::pem_file_iter(cert_file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("tls.cert_file {cert_file}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("tls.cert_file {cert_file}: no certificate in it"));
    }
    let key_file = &files.key_file;
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| format!("tls.key_file {key_file}: {e}"))?;
    let key = ring::default_provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("tls.key_file {key_file}: {e}"))?;
    let certified = CertifiedKey::new(certs, key);
    certified
        .keys_match()
        .map_err(|e| format!("tls.key_file {key_file} does not match tls.cert_file: {e}"))?;
    Ok(certified)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_files_are_named() {
        let files = TlsConfig {
            cert_file: "/nonexistent/cert.pem".into(),
            key_file: "/nonexistent/key.pem".into(),
        };
        let err = TlsContext::load(&files).err().unwrap_or_default();
        assert!(err.contains("tls.cert_file /nonexistent/cert.pem"), "{err}");
    }
}
