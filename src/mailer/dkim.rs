//! DKIM: the private key in every form OpenSSL writes, the public half for `drip dns`, and
//! the signature itself, made by lettre over every header RFC 6376 §5.4.1 names that a
//! mail carries, with the ones a forger would most like to add signed once more.
//!
//! Why an extra signed name breaks an added header: a verifier takes a header name listed
//! in `h=` once per instance, from the bottom up, and a name listed once more than the mail
//! has instances stands for "no such header" (§5.4.2). A header added later is then the
//! instance the extra name picks up, and the signature no longer matches.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use lettre::Message;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::HeaderName;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;

/// The headers RFC 6376 §5.4.1 says should be signed, in the order they go into `h=`.
pub const SIGNED_HEADERS: [&str; 14] = [
    "From",
    "Reply-To",
    "Subject",
    "Date",
    "To",
    "Cc",
    "Message-ID",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

/// Signed once more than the mail carries them: a second From, Subject or Reply-To would
/// change what the reader sees, and added List-Unsubscribe headers would change where an
/// unsubscribe goes.
pub const OVERSIGNED_HEADERS: [&str; 5] = [
    "From",
    "Reply-To",
    "Subject",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

/// Below this, an RSA key is refused: RFC 8301 forbids signing with it and verifiers ignore it.
const RSA_MIN_BITS: usize = 1024;
/// Below this, an RSA key gets a warning at start-up (RFC 8301 recommends 2048).
pub const RSA_RECOMMENDED_BITS: usize = 2048;

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_ED25519: &str = "1.3.101.112";

/// A DKIM private key, read from `[mail] dkim_key`.
pub enum DkimKey {
    Rsa(rsa::RsaPrivateKey),
    Ed25519(ed25519_dalek::SigningKey),
}

impl std::fmt::Debug for DkimKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe().as_str())
    }
}

impl DkimKey {
    /// Reads the key file, warning in the log when an RSA key has under 2048 bits and
    /// refusing one under 1024. PKCS#8 (`BEGIN PRIVATE KEY`, what `openssl genpkey` and OpenSSL 3's
    /// `openssl genrsa` write) holding RSA or Ed25519, PKCS#1 (`BEGIN RSA PRIVATE KEY`), or
    /// the base64 of a 32-byte Ed25519 seed on one line. Every error names the key and file.
    pub fn load(path: &str) -> anyhow::Result<DkimKey> {
        let fail = |why: String| anyhow::anyhow!("[mail] dkim_key {path:?}: {why}");
        let text = std::fs::read_to_string(Path::new(path))
            .map_err(|e| fail(format!("cannot read the file ({e})")))?;
        let key = Self::parse(&text).map_err(fail)?;
        match key.rsa_bits() {
            Some(bits) if bits < RSA_MIN_BITS => {
                return Err(fail(format!(
                    "an RSA key of {bits} bits is too short to sign with (RFC 8301: at least {RSA_MIN_BITS}, and {RSA_RECOMMENDED_BITS} recommended); make a new one with `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out dkim.pem`"
                )));
            }
            Some(bits) if bits < RSA_RECOMMENDED_BITS => tracing::warn!(
                key = path,
                bits,
                "[mail] dkim_key is an RSA key of {bits} bits: mailbox providers expect {RSA_RECOMMENDED_BITS} or more (RFC 8301); make one with `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out dkim.pem` and publish it under a new selector (`drip dns`)"
            ),
            _ => {}
        }
        Ok(key)
    }

    fn parse(text: &str) -> Result<DkimKey, String> {
        let text = text.trim();
        if text.contains("-----BEGIN RSA PRIVATE KEY-----") {
            return rsa::RsaPrivateKey::from_pkcs1_pem(text)
                .map(DkimKey::Rsa)
                .map_err(|e| format!("not a readable PKCS#1 RSA key ({e})"));
        }
        if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            return Err("the key is protected by a passphrase, which drip cannot type in; write it out without one: `openssl pkey -in KEY -out dkim.pem`".into());
        }
        if text.contains("-----BEGIN PRIVATE KEY-----") {
            let (_, document) = rsa::pkcs8::SecretDocument::from_pem(text)
                .map_err(|e| format!("not a readable PKCS#8 key ({e})"))?;
            let info = rsa::pkcs8::PrivateKeyInfo::try_from(document.as_bytes())
                .map_err(|e| format!("not a readable PKCS#8 key ({e})"))?;
            return match info.algorithm.oid.to_string().as_str() {
                OID_RSA => rsa::RsaPrivateKey::from_pkcs8_der(document.as_bytes())
                    .map(DkimKey::Rsa)
                    .map_err(|e| format!("not a readable PKCS#8 RSA key ({e})")),
                OID_ED25519 => ed25519_dalek::SigningKey::from_pkcs8_der(document.as_bytes())
                    .map(DkimKey::Ed25519)
                    .map_err(|e| format!("not a readable PKCS#8 Ed25519 key ({e})")),
                other => Err(format!(
                    "a PKCS#8 key of algorithm {} ({other}); DKIM signs with RSA or Ed25519 only",
                    match other {
                        "1.2.840.10045.2.1" => "EC",
                        "1.3.101.113" => "Ed448",
                        "1.2.840.113549.1.1.10" => "RSA-PSS",
                        _ => "unknown",
                    }
                )),
            };
        }
        if text.contains("-----BEGIN") {
            let label = text
                .lines()
                .find(|l| l.starts_with("-----BEGIN"))
                .unwrap_or_default();
            return Err(format!(
                "{label} is not a private key drip reads; use PKCS#8 (BEGIN PRIVATE KEY) or PKCS#1 (BEGIN RSA PRIVATE KEY)"
            ));
        }
        let seed = BASE64.decode(text).map_err(|_| {
            "neither a PEM key (BEGIN PRIVATE KEY, BEGIN RSA PRIVATE KEY) nor the base64 of an Ed25519 seed".to_owned()
        })?;
        let seed: [u8; 32] = seed.try_into().map_err(|bytes: Vec<u8>| {
            format!(
                "base64 of {} bytes; an Ed25519 seed is 32 (or use a PEM key)",
                bytes.len()
            )
        })?;
        Ok(DkimKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(
            &seed,
        )))
    }

    /// RSA's size in bits; None for Ed25519.
    pub fn rsa_bits(&self) -> Option<usize> {
        match self {
            DkimKey::Rsa(key) => Some(key.size() * 8),
            DkimKey::Ed25519(_) => None,
        }
    }

    /// "RSA 2048 bits" or "Ed25519".
    pub fn describe(&self) -> String {
        match self {
            DkimKey::Rsa(key) => format!("RSA {} bits", key.size() * 8),
            DkimKey::Ed25519(_) => "Ed25519".into(),
        }
    }

    /// The `k=` and `p=` of the DNS record: for RSA the base64 of the SubjectPublicKeyInfo
    /// (RFC 6376 §3.6.1), for Ed25519 the base64 of the 32-byte public key (RFC 8463 §4.2).
    pub fn dns_public_key(&self) -> (&'static str, String) {
        match self {
            DkimKey::Rsa(key) => {
                let der = rsa::RsaPublicKey::from(key)
                    .to_public_key_der()
                    .expect("an RSA public key always encodes");
                ("rsa", BASE64.encode(der.as_bytes()))
            }
            DkimKey::Ed25519(key) => ("ed25519", BASE64.encode(key.verifying_key().to_bytes())),
        }
    }

    /// The key in the form lettre reads (PKCS#1 PEM, or the seed in base64).
    fn for_lettre(&self) -> DkimSigningKey {
        let made = match self {
            DkimKey::Rsa(key) => {
                let pem = key
                    .to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
                    .expect("an RSA key always encodes");
                DkimSigningKey::new(&pem, DkimSigningAlgorithm::Rsa)
            }
            DkimKey::Ed25519(key) => DkimSigningKey::new(
                &BASE64.encode(key.to_bytes()),
                DkimSigningAlgorithm::Ed25519,
            ),
        };
        made.expect("lettre reads back a key it was given in its own form")
    }
}

/// The names `h=` lists for a mail whose headers are `present` (each at most once, as
/// lettre writes them): every §5.4.1 header the mail has, then the oversigned ones once more.
pub fn signed_names(present: impl Fn(&str) -> bool) -> Vec<&'static str> {
    SIGNED_HEADERS
        .into_iter()
        .filter(|name| present(name))
        .chain(OVERSIGNED_HEADERS)
        .collect()
}

/// Signs mail with one key and selector, for the domain of each mail's From address (so
/// that DKIM aligns with From for a course that has a sender of its own).
pub struct DkimSigner {
    selector: String,
    key: DkimKey,
    /// lettre takes the domain and the header list with the key; one configuration per
    /// pair (a handful: the sending domains times whether a mail carries Reply-To,
    /// List-Id and List-Unsubscribe).
    configs: Mutex<HashMap<ConfigKey, Arc<DkimConfig>>>,
}

/// A sending domain and the header names `h=` lists.
type ConfigKey = (String, Vec<&'static str>);

impl std::fmt::Debug for DkimSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DkimSigner(s={}, {:?})", self.selector, self.key)
    }
}

impl DkimSigner {
    /// Loads the key (which warns when an RSA key is short: once per process start, as
    /// the mailer is made once).
    pub fn new(key_path: &str, selector: &str) -> anyhow::Result<DkimSigner> {
        let key = DkimKey::load(key_path)?;
        Ok(DkimSigner {
            selector: selector.to_owned(),
            key,
            configs: Mutex::default(),
        })
    }

    /// Adds the DKIM-Signature header, `d=` `domain` (the From address's). The message must
    /// carry every header it will be sent with, Content-Type included (see `Mailer::build`).
    pub fn sign(&self, message: &mut Message, domain: &str) {
        let headers = message.headers();
        let names = signed_names(|name| headers.get_raw(name).is_some());
        let config = {
            let mut configs = self.configs.lock().expect("the DKIM cache lock");
            configs
                .entry((domain.to_ascii_lowercase(), names))
                .or_insert_with_key(|(domain, names)| {
                    Arc::new(DkimConfig::new(
                        self.selector.clone(),
                        domain.clone(),
                        self.key.for_lettre(),
                        names
                            .iter()
                            .map(|n| HeaderName::new_from_ascii_str(n))
                            .collect(),
                        DkimCanonicalization {
                            header: DkimCanonicalizationType::Relaxed,
                            body: DkimCanonicalizationType::Relaxed,
                        },
                    ))
                })
                .clone()
        };
        message.sign(&config);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mail_signs_what_it_carries_and_oversigns_the_risky_ones() {
        let carried = [
            "From",
            "To",
            "Subject",
            "Date",
            "Message-ID",
            "MIME-Version",
        ];
        let names = signed_names(|n| carried.contains(&n));
        assert_eq!(
            names,
            [
                "From",
                "Subject",
                "Date",
                "To",
                "Message-ID",
                "MIME-Version",
                "From",
                "Reply-To",
                "Subject",
                "List-Unsubscribe",
                "List-Unsubscribe-Post"
            ]
        );
    }

    #[test]
    fn the_seed_form_and_bad_files_are_read_or_refused_with_a_reason() {
        let seed = BASE64.encode([7u8; 32]);
        let key = DkimKey::parse(&format!("{seed}\n")).unwrap();
        assert_eq!(key.describe(), "Ed25519");
        assert_eq!(key.dns_public_key().0, "ed25519");
        let err = DkimKey::parse(&BASE64.encode([7u8; 16])).unwrap_err();
        assert!(err.contains("16 bytes"), "{err}");
        let err = DkimKey::parse("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n").unwrap_err();
        assert!(err.contains("passphrase"), "{err}");
        let err = DkimKey::parse("-----BEGIN CERTIFICATE-----\nAAAA\n").unwrap_err();
        assert!(err.contains("BEGIN CERTIFICATE"), "{err}");
        let err = DkimKey::parse("hello, world").unwrap_err();
        assert!(err.contains("neither"), "{err}");
        let err = DkimKey::load("/nonexistent/dkim.pem")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("[mail] dkim_key") && err.contains("/nonexistent/dkim.pem"),
            "{err}"
        );
    }
}
