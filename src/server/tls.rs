//! TLS for the gRPC port (rustls on aws-lc-rs): the certificate is read again whenever its files
//! change (cert-manager rotates them) without touching open connections, and with a client CA,
//! clients must present a certificate whose URI or DNS SANs name them.

use std::{
    fs,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::{Duration, SystemTime},
};

use rustls::{
    RootCertStore, ServerConfig,
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject as _},
    server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier},
    sign::CertifiedKey,
};
use tokio_rustls::TlsAcceptor;

use crate::transport::TlsConfig;

#[derive(Debug, thiserror::Error)]
#[error("TLS: {0}")]
pub struct TlsError(String);

/// The TLS side of the gRPC listener.
pub struct Tls {
    pub acceptor: TlsAcceptor,
    certificate: Arc<ReloadingCertificate>,
}

impl Tls {
    /// Reads the certificate, key and client CA, as serving and `check-config` both need.
    pub fn new(config: &TlsConfig) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let certificate = Arc::new(ReloadingCertificate::load(config, Arc::clone(&provider))?);
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|err| TlsError(err.to_string()))?;
        let builder = match &config.client_ca_file {
            None => builder.with_no_client_auth(),
            Some(file) => {
                let mut roots = RootCertStore::empty();
                for certificate in read_certificates(file)? {
                    roots
                        .add(certificate)
                        .map_err(|err| TlsError(format!("{}: {err}", file.display())))?;
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    Arc::clone(&provider),
                )
                .build()
                .map_err(|err| TlsError(format!("{}: {err}", file.display())))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut server = builder.with_cert_resolver(Arc::clone(&certificate) as _);
        server.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            certificate,
        })
    }

    /// Checks the certificate's files every `reload_interval` until the process ends, and takes
    /// a changed pair in for new handshakes. A pair that does not load is logged and ignored.
    pub fn spawn_reloader(&self) {
        let certificate = Arc::clone(&self.certificate);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(certificate.reload_interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let certificate = Arc::clone(&certificate);
                // File reads block: off the async workers.
                tokio::task::spawn_blocking(move || certificate.reload_if_changed())
                    .await
                    .ok();
            }
        });
    }
}

/// The server certificate, replaced when its files change.
#[derive(Debug)]
struct ReloadingCertificate {
    cert_file: PathBuf,
    key_file: PathBuf,
    reload_interval: Duration,
    provider: Arc<CryptoProvider>,
    current: RwLock<(Arc<CertifiedKey>, Option<FilesVersion>)>,
}

/// What the files looked like when last read.
type FilesVersion = [(SystemTime, u64); 2];

impl ReloadingCertificate {
    fn load(config: &TlsConfig, provider: Arc<CryptoProvider>) -> Result<Self, TlsError> {
        let version = files_version(&config.cert_file, &config.key_file);
        let key = certified_key(&config.cert_file, &config.key_file, &provider)?;
        Ok(Self {
            cert_file: config.cert_file.clone(),
            key_file: config.key_file.clone(),
            reload_interval: config.reload_interval,
            provider,
            current: RwLock::new((Arc::new(key), version)),
        })
    }

    fn reload_if_changed(&self) {
        let version = files_version(&self.cert_file, &self.key_file);
        let unchanged = self
            .current
            .read()
            .map(|current| current.1 == version)
            .unwrap_or(false);
        if unchanged {
            return;
        }
        match certified_key(&self.cert_file, &self.key_file, &self.provider) {
            Ok(key) => {
                if let Ok(mut current) = self.current.write() {
                    *current = (Arc::new(key), version);
                }
                tracing::info!(cert_file = %self.cert_file.display(), "TLS certificate reloaded");
            }
            // Mid-rotation the pair may not match yet: keep serving the old one.
            Err(err) => {
                tracing::warn!(%err, "TLS certificate not reloaded; the previous one stays")
            }
        }
    }
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current
            .read()
            .ok()
            .map(|current| Arc::clone(&current.0))
    }
}

fn files_version(cert: &Path, key: &Path) -> Option<FilesVersion> {
    let version = |path: &Path| {
        let metadata = fs::metadata(path).ok()?;
        Some((metadata.modified().ok()?, metadata.len()))
    };
    Some([version(cert)?, version(key)?])
}

fn certified_key(
    cert_file: &Path,
    key_file: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let chain = read_certificates(cert_file)?;
    // The key's bytes are never quoted in an error.
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|_| TlsError(format!("{}: no PEM private key", key_file.display())))?;
    CertifiedKey::from_der(chain, key, provider).map_err(|err| {
        TlsError(format!(
            "{} and {}: {err}",
            cert_file.display(),
            key_file.display()
        ))
    })
}

fn read_certificates(file: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certificates = CertificateDer::pem_file_iter(file)
        .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
        .map_err(|err| TlsError(format!("{}: {err}", file.display())))?;
    if certificates.is_empty() {
        return Err(TlsError(format!("{}: no PEM certificate", file.display())));
    }
    Ok(certificates)
}

/// The URI and DNS subject alternative names of a client's certificate: the identities a
/// caller's `identity` is matched against.
pub fn identities(certificate: &CertificateDer<'_>) -> Vec<String> {
    use x509_parser::{extensions::GeneralName, prelude::FromDer as _};
    let Ok((_, parsed)) = x509_parser::certificate::X509Certificate::from_der(certificate) else {
        return Vec::new();
    };
    let Ok(Some(names)) = parsed.subject_alternative_name() else {
        return Vec::new();
    };
    names
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::URI(uri) => Some((*uri).to_owned()),
            GeneralName::DNSName(dns) => Some((*dns).to_owned()),
            _ => None,
        })
        .collect()
}
