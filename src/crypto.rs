//! Encryption at rest for reflections: reply texts and raw messages are sealed with
//! XChaCha20-Poly1305 (an authenticated cipher) under a key from `[security] data_key`, or
//! derived from `secret_key` when that is empty. A copy of the database shows no reply text.
//!
//! Keys can be rotated: data sealed under a previous key (`previous_data_keys`, or a key
//! derived from one of `previous_secret_keys`) still opens, and `drip keys reseal` seals it
//! again under the current one. Sealed data names no key: opening tries each key in turn,
//! and the cipher's authentication tag tells which one is right.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

const MAGIC: &[u8; 3] = b"dr1";
const NONCE: usize = 24;

/// Seals and opens stored reply data.
#[derive(Clone)]
pub struct Vault {
    cipher: XChaCha20Poly1305,
    previous: Vec<XChaCha20Poly1305>,
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
        let cipher = if data_key.is_empty() {
            derive(b"drip data key from secret_key:", secret_key)
        } else {
            derive(b"drip data key:", data_key)
        };
        Vault {
            cipher,
            previous: Vec::new(),
        }
    }

    /// Also opens data sealed under these earlier keys: each previous data key, and the key
    /// each previous secret key gave while `data_key` was empty.
    pub(crate) fn with_previous(mut self, data_keys: &[String], secret_keys: &[String]) -> Vault {
        self.previous = data_keys
            .iter()
            .map(|k| derive(b"drip data key:", k))
            .chain(
                secret_keys
                    .iter()
                    .map(|k| derive(b"drip data key from secret_key:", k)),
            )
            .collect();
        self
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
        self.open_with_key(stored).map(|(plain, _)| plain)
    }

    /// The plain bytes and whether they were sealed under the current key (false: under a
    /// previous one, to be sealed again).
    pub(crate) fn open_with_key(&self, stored: &[u8]) -> anyhow::Result<(Vec<u8>, bool)> {
        let rest = stored
            .strip_prefix(MAGIC.as_slice())
            .ok_or_else(|| anyhow::anyhow!("stored reply is not sealed data"))?;
        anyhow::ensure!(rest.len() > NONCE, "stored reply is truncated");
        let (nonce, sealed) = rest.split_at(NONCE);
        let nonce = XNonce::from_slice(nonce);
        std::iter::once(&self.cipher)
            .chain(&self.previous)
            .enumerate()
            .find_map(|(i, cipher)| cipher.decrypt(nonce, sealed).ok().map(|p| (p, i == 0)))
            .ok_or_else(|| {
                anyhow::anyhow!("stored reply cannot be decrypted: wrong data_key or altered data")
            })
    }
}

fn derive(domain: &[u8], key: &str) -> XChaCha20Poly1305 {
    let mut h = Sha256::new();
    h.update(domain);
    h.update(key.as_bytes());
    XChaCha20Poly1305::new(&h.finalize())
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
    fn data_sealed_under_a_previous_key_opens_and_is_known_as_old() {
        let before = Vault::new("", "the secret key before the change..");
        let from_secret = before.seal(b"sealed with the derived key");
        let old_data = Vault::new("old data key", "s").seal(b"sealed with the old data key");
        let now = Vault::new("new data key", "s").with_previous(
            &["old data key".to_owned()],
            &["the secret key before the change..".to_owned()],
        );
        assert_eq!(
            now.open_with_key(&from_secret).unwrap(),
            (b"sealed with the derived key".to_vec(), false)
        );
        assert_eq!(
            now.open_with_key(&old_data).unwrap(),
            (b"sealed with the old data key".to_vec(), false)
        );
        let fresh = now.seal(b"new");
        assert_eq!(now.open_with_key(&fresh).unwrap(), (b"new".to_vec(), true));
        assert!(Vault::new("old data key", "s").open(&fresh).is_err());
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
