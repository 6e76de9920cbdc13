//! TLS to the relay: what drip trusts, and the relay's certificate in words.
//!
//! Trusted: the system's store (`rustls-native-certs`: /etc/ssl/certs, or `SSL_CERT_FILE` /
//! `SSL_CERT_DIR`), the built-in web roots (`webpki-roots`, for a machine with no store),
//! and the CAs of `[smtp] ca_file`. `[smtp] tls_verify = false` trusts anything; the
//! configuration refuses it unless the web app is on localhost, and every start warns.

use anyhow::Context;
use chrono::{DateTime, Utc};
use lettre::transport::smtp::client::{Certificate, CertificateStore, TlsParameters};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::config;

/// What the TLS parameters were built from, for `drip smtp check`.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// Certificates taken from the system's store.
    pub system: usize,
    /// CAs taken from `[smtp] ca_file`.
    pub ca_file: usize,
    /// false: `tls_verify = false`, nothing is checked.
    pub verify: bool,
}

/// The TLS parameters for `smtp` (None for `tls = "none"`), and what they trust.
pub(crate) fn parameters(smtp: &config::Smtp) -> anyhow::Result<(Option<TlsParameters>, Trust)> {
    if smtp.tls == config::Tls::None {
        return Ok((None, Trust::default()));
    }
    let (params, trust) = build(smtp, smtp.tls_verify)?;
    if !smtp.tls_verify {
        tracing::warn!(
            host = %smtp.host,
            "smtp.tls_verify = false: the relay's certificate is NOT checked, so anyone on the path can read the mail and the password; for a lab only"
        );
    }
    Ok((Some(params), trust))
}

/// Parameters that accept any certificate: only for `drip smtp check`, to show the
/// certificate a relay presents after it failed to verify.
pub fn unverified(smtp: &config::Smtp) -> anyhow::Result<TlsParameters> {
    Ok(build(smtp, false)?.0)
}

fn build(smtp: &config::Smtp, verify: bool) -> anyhow::Result<(TlsParameters, Trust)> {
    let mut trust = Trust {
        verify,
        ..Trust::default()
    };
    let mut builder = TlsParameters::builder(smtp.host.clone())
        .certificate_store(CertificateStore::WebpkiRoots)
        .dangerous_accept_invalid_certs(!verify);
    // lettre refuses the whole store if one certificate is not a usable trust anchor; the
    // system's store may hold such oddities, so each is checked the way rustls will use it.
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::debug!(%error, "a certificate of the system's store could not be read");
    }
    for der in native.certs {
        if usable_anchor(&der) {
            builder = builder.add_root_certificate(
                Certificate::from_der(der.to_vec()).context("a system CA certificate")?,
            );
            trust.system += 1;
        }
    }
    for der in ca_file(&smtp.ca_file)? {
        builder = builder
            .add_root_certificate(Certificate::from_der(der.to_vec()).context("smtp.ca_file")?);
        trust.ca_file += 1;
    }
    let params = builder
        .build_rustls()
        .map_err(|e| anyhow::anyhow!("smtp: cannot set up TLS for {}: {e}", smtp.host))?;
    Ok((params, trust))
}

fn usable_anchor(der: &CertificateDer<'_>) -> bool {
    rustls::RootCertStore::empty()
        .add(der.clone().into_owned())
        .is_ok()
}

/// The CA certificates of `[smtp] ca_file` (none when it is empty); errors name the file.
pub fn ca_file(path: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let pem = std::fs::read(path).with_context(|| format!("smtp.ca_file: cannot read {path}"))?;
    let mut certs = Vec::new();
    for (i, cert) in CertificateDer::pem_slice_iter(&pem).enumerate() {
        let cert = cert.map_err(|e| {
            anyhow::anyhow!(
                "smtp.ca_file: {path}: certificate {} is not valid PEM ({e})",
                i + 1
            )
        })?;
        anyhow::ensure!(
            usable_anchor(&cert),
            "smtp.ca_file: {path}: certificate {} cannot be used as a CA (not a well-formed X.509 certificate)",
            i + 1
        );
        certs.push(cert);
    }
    anyhow::ensure!(
        !certs.is_empty(),
        "smtp.ca_file: {path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
    );
    Ok(certs)
}

/// Subject, issuer and expiry of a DER certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertificateInfo {
    pub subject: String,
    pub issuer: String,
    pub not_after: DateTime<Utc>,
}

impl CertificateInfo {
    pub fn parse(der: &[u8]) -> Option<CertificateInfo> {
        use x509_cert::der::Decode;
        let cert = x509_cert::Certificate::from_der(der).ok()?;
        let tbs = &cert.tbs_certificate;
        let not_after = tbs.validity.not_after.to_unix_duration();
        Some(CertificateInfo {
            subject: tbs.subject.to_string(),
            issuer: tbs.issuer.to_string(),
            not_after: DateTime::from_timestamp(not_after.as_secs() as i64, 0)?,
        })
    }
}

impl std::fmt::Display for CertificateInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "subject {}, issuer {}, expires {}",
            self.subject,
            self.issuer,
            self.not_after.format("%Y-%m-%d %H:%M UTC")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_that_is_missing_empty_or_not_pem_is_named() {
        let err = ca_file("/nonexistent/ca.pem").unwrap_err().to_string();
        assert!(
            err.contains("smtp.ca_file") && err.contains("/nonexistent/ca.pem"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let err = ca_file(path.to_str().unwrap()).unwrap_err().to_string();
        assert!(err.contains("holds no PEM certificate"), "{err}");
        std::fs::write(
            &path,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let err = ca_file(path.to_str().unwrap()).unwrap_err().to_string();
        assert!(err.contains("certificate 1"), "{err}");
    }

    #[test]
    fn a_generated_ca_is_read_and_described() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "drip unit-test CA");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&key).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, ca.pem()).unwrap();
        let certs = ca_file(path.to_str().unwrap()).unwrap();
        assert_eq!(certs.len(), 1);
        let info = CertificateInfo::parse(&certs[0]).unwrap();
        assert_eq!(info.subject, "CN=drip unit-test CA");
        assert_eq!(info.issuer, info.subject);
        assert!(info.not_after > Utc::now());
    }
}
