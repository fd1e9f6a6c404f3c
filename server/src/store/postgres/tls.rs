//! TLS to PostgreSQL, set in the database URL the way libpq reads it.
//!
//! | `sslmode`      | encrypted           | certificate checked                          |
//! |----------------|---------------------|----------------------------------------------|
//! | `disable`      | no                  | no                                           |
//! | `prefer`       | if the server can   | no (as libpq)                                |
//! | `require`      | yes                 | chain only, when `sslrootcert` is given      |
//! | `verify-ca`    | yes                 | chain (against `sslrootcert`)                |
//! | `verify-full`  | yes                 | chain and host name (against `sslrootcert`)  |
//!
//! `sslrootcert` is a PEM file of trusted certificates, or `system` for the public roots
//! (Mozilla's list, built in). The verifying modes refuse to start without it, as libpq does,
//! rather than trust nothing or everything by accident. tokio-postgres itself knows `disable`,
//! `prefer` and `require`; this module takes the other two (and `sslrootcert`) out of the URL
//! and passes on `require`, with the matching certificate check.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

/// Why TLS to PostgreSQL could not be set up (before any connection is tried).
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("the database URL is not valid")]
    Url(#[source] tokio_postgres::Error),
    #[error("the database URL could not be read: {0}")]
    UrlSyntax(String),
    #[error("sslmode={0} needs sslrootcert=<PEM file> or sslrootcert=system")]
    NoRootCert(&'static str),
    #[error("the certificates in {path} could not be read")]
    RootCertFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} holds no usable certificate")]
    NoCertificates { path: PathBuf },
    #[error("TLS set-up")]
    Rustls(#[from] rustls::Error),
}

/// How much of the server's certificate is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    Nothing,
    Chain,
    ChainAndName,
}

/// What a database URL asks for, read.
pub struct PgTarget {
    pub config: tokio_postgres::Config,
    pub tls: MakeRustlsConnect,
    pub check: Check,
}

/// Read `url` (a `postgres://` URL or libpq's `key=value` form) and its TLS settings.
pub fn target(url: &str) -> Result<PgTarget, TlsSetupError> {
    let (rest, mode, root) = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        take_tls_params(url)?
    } else {
        (url.to_string(), None, None)
    };
    let config: tokio_postgres::Config = rest.parse().map_err(TlsSetupError::Url)?;
    let check = match (mode.as_deref(), &root) {
        (Some("verify-full"), None) => return Err(TlsSetupError::NoRootCert("verify-full")),
        (Some("verify-ca"), None) => return Err(TlsSetupError::NoRootCert("verify-ca")),
        (Some("verify-full"), Some(_)) => Check::ChainAndName,
        (Some("verify-ca"), Some(_)) => Check::Chain,
        // libpq: `require` with a root certificate checks the chain
        (_, Some(_)) => Check::Chain,
        _ => Check::Nothing,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let client = match check {
        Check::Nothing => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unchecked(provider)))
            .with_no_client_auth(),
        Check::Chain | Check::ChainAndName => {
            let roots = Arc::new(roots(root.as_ref().expect("a root certificate"))?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?;
            let verifier: Arc<dyn ServerCertVerifier> = if check == Check::ChainAndName {
                webpki
            } else {
                Arc::new(ChainOnly(webpki))
            };
            builder
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth()
        }
    };
    Ok(PgTarget {
        config,
        tls: MakeRustlsConnect::new(client),
        check,
    })
}

/// Where the trusted certificates come from.
enum Root {
    System,
    File(PathBuf),
}

/// Take `sslmode=verify-*` and `sslrootcert` out of a URL (tokio-postgres refuses them) and put
/// `sslmode=require` in their place.
fn take_tls_params(url: &str) -> Result<(String, Option<String>, Option<Root>), TlsSetupError> {
    let mut parsed =
        reqwest::Url::parse(url).map_err(|e| TlsSetupError::UrlSyntax(e.to_string()))?;
    let (mut mode, mut root, mut kept) = (None, None, Vec::new());
    for (k, v) in parsed.query_pairs() {
        match k.as_ref() {
            "sslmode" => mode = Some(v.into_owned()),
            "sslrootcert" if v == "system" => root = Some(Root::System),
            "sslrootcert" => root = Some(Root::File(PathBuf::from(v.as_ref()))),
            _ => kept.push((k.into_owned(), v.into_owned())),
        }
    }
    let passed = match mode.as_deref() {
        Some("verify-ca" | "verify-full") => Some("require"),
        Some(other) => Some(other),
        None => None,
    };
    if let Some(m) = passed {
        kept.push(("sslmode".into(), m.into()));
    }
    if kept.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(kept);
    }
    Ok((parsed.to_string(), mode, root))
}

fn roots(root: &Root) -> Result<RootCertStore, TlsSetupError> {
    let mut store = RootCertStore::empty();
    match root {
        Root::System => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Root::File(path) => {
            let pem = std::fs::read(path).map_err(|source| TlsSetupError::RootCertFile {
                path: path.clone(),
                source,
            })?;
            for cert in CertificateDer::pem_slice_iter(&pem).flatten() {
                // a certificate webpki cannot use as an anchor is skipped, as in a system store
                let _ = store.add(cert);
            }
            if store.is_empty() {
                return Err(TlsSetupError::NoCertificates { path: path.clone() });
            }
        }
    }
    Ok(store)
}

/// `prefer` and `require` without a root certificate: encrypted, but any certificate is taken
/// (what libpq does; the server logs a warning at start). The handshake's signatures are still
/// checked, so the session is with whoever holds the certificate's key.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
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
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trusted root; the host name is not compared.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifying_modes_are_taken_out_of_the_url_and_need_a_root() {
        let t = target("postgres://u@db.example:5432/union?sslmode=verify-full&sslrootcert=system&application_name=up").unwrap();
        assert_eq!(t.check, Check::ChainAndName);
        assert_eq!(
            t.config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
        assert_eq!(t.config.get_application_name(), Some("up"));
        assert!(matches!(
            target("postgres://u@db.example/union?sslmode=verify-ca"),
            Err(TlsSetupError::NoRootCert("verify-ca"))
        ));
        assert!(matches!(
            target("postgres://u@db.example/union?sslmode=require&sslrootcert=/nonexistent.pem"),
            Err(TlsSetupError::RootCertFile { .. })
        ));
        let plain = target("postgres://u@db.example/union?sslmode=disable").unwrap();
        assert_eq!(plain.check, Check::Nothing);
        assert_eq!(
            plain.config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Disable
        );
        // tokio-postgres's own errors stay typed
        assert!(matches!(
            target("postgres://u@db.example/union?sslmode=sometimes"),
            Err(TlsSetupError::Url(_))
        ));
    }
}
