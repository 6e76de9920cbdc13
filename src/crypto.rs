//! Encryption at rest for reflections: reply texts and raw messages are sealed with
//! XChaCha20-Poly1305 (an authenticated cipher) under a key from `[security] data_key`, or
//! derived from `secret_key` when that is empty. A copy of the database shows no reply text.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

const MAGIC: &[u8; 3] = b"dr1";
const NONCE: usize = 24;

/// Seals and opens stored reply data.
#[derive(Clone)]
pub struct Vault {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault(..)")
    }
}

impl Vault {
    /// `data_key` if set, else a key derived from `secret_key` (domain-separated, so the
    /// token key and the data key are never the same bytes).
    pub fn new(data_key: &str, secret_key: &str) -> Vault {
        let mut h = Sha256::new();
        if data_key.is_empty() {
            h.update(b"drip data key from secret_key:");
            h.update(secret_key.as_bytes());
        } else {
            h.update(b"drip data key:");
            h.update(data_key.as_bytes());
        }
        let key = h.finalize();
        Vault {
            cipher: XChaCha20Poly1305::new(&key),
        }
    }

    pub fn seal(&self, plain: &[u8]) -> Vec<u8> {
        let nonce: [u8; NONCE] = rand::random();
        let sealed = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), plain)
            .expect("encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(MAGIC.len() + NONCE + sealed.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// The plain bytes, or an error when the data was altered or sealed with another key.
    pub fn open(&self, stored: &[u8]) -> anyhow::Result<Vec<u8>> {
        let rest = stored
            .strip_prefix(MAGIC.as_slice())
            .ok_or_else(|| anyhow::anyhow!("stored reply is not sealed data"))?;
        anyhow::ensure!(rest.len() > NONCE, "stored reply is truncated");
        let (nonce, sealed) = rest.split_at(NONCE);
        self.cipher
            .decrypt(XNonce::from_slice(nonce), sealed)
            .map_err(|_| {
                anyhow::anyhow!("stored reply cannot be decrypted: wrong data_key or altered data")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens() {
        let v = Vault::new("", "a secret key that is long enough....");
        let sealed = v.seal("I have not told them about the loan.".as_bytes());
        assert!(!sealed.windows(4).any(|w| w == b"loan"));
        assert_eq!(
            v.open(&sealed).unwrap(),
            "I have not told them about the loan.".as_bytes()
        );
    }

    #[test]
    fn refuses_altered_data_or_another_key() {
        let v = Vault::new("k1", "s");
        let mut sealed = v.seal(b"text");
        assert!(Vault::new("k2", "s").open(&sealed).is_err());
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(v.open(&sealed).is_err());
        assert!(v.open(b"plain").is_err());
        assert!(v.open(b"dr1short").is_err());
    }
}
