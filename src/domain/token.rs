//! Signed tokens: links in mails, reply addresses and Message-IDs all name a row by id,
//! with an HMAC-SHA256 tag so that nobody can forge or alter one.
//!
//! A token reads `<id in base 36>-<first 128 bits of the tag, hex>`: lowercase only, so it
//! survives mail systems that change the case of an address, and short enough for a local
//! part. The purpose is part of the signed message, so a token made to unsubscribe cannot
//! confirm, and a reply token cannot open a journal.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::InvalidInput;

type HmacSha256 = Hmac<Sha256>;

/// What a token may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Single-course releases' confirmation links: a subscriber id (their latest
    /// confirmation is the one meant).
    Confirm,
    /// A confirmation link: the id of the confirmation mail, which names the course.
    ConfirmCourse,
    /// Out of everything: a subscriber id.
    Unsubscribe,
    /// Leave one course: an enrollment id (the one-click link of a lesson mail).
    Leave,
    Preferences,
    Journal,
    /// The reply address of one delivery.
    Reply,
    /// The Message-ID of one delivery, matched again in In-Reply-To.
    MessageId,
    /// A short-lived link to a journal, mailed on request (see `sign_until`).
    JournalAccess,
}

impl Purpose {
    fn tag(self) -> &'static [u8] {
        match self {
            Purpose::Confirm => b"confirm",
            Purpose::ConfirmCourse => b"confirm-course",
            Purpose::Unsubscribe => b"unsubscribe",
            Purpose::Leave => b"leave",
            Purpose::Preferences => b"preferences",
            Purpose::Journal => b"journal",
            Purpose::Reply => b"reply",
            Purpose::MessageId => b"message-id",
            Purpose::JournalAccess => b"journal-access",
        }
    }
}

const TAG_BYTES: usize = 16;

/// Makes and checks tokens with the configured secret. Tokens are signed with the current
/// key; they verify under it or any previous key (so rotating the key does not break the
/// links in mail already sent).
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
    previous: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    pub fn new(secret: &str) -> Signer {
        Signer {
            key: secret.as_bytes().to_vec(),
            previous: Vec::new(),
        }
    }

    /// Also accepts tokens signed with these earlier secrets.
    pub(crate) fn with_previous(mut self, previous: &[String]) -> Signer {
        self.previous = previous.iter().map(|k| k.as_bytes().to_vec()).collect();
        self
    }

    /// The MAC of `purpose:id`, or `purpose:id:expires` for a token that runs out.
    fn mac(&self, key: &[u8], purpose: Purpose, id: i64, expires: Option<i64>) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
        mac.update(purpose.tag());
        mac.update(b":");
        mac.update(id.to_string().as_bytes());
        if let Some(expires) = expires {
            mac.update(b":");
            mac.update(expires.to_string().as_bytes());
        }
        mac
    }

    fn tagged(&self, mut out: String, purpose: Purpose, id: i64, expires: Option<i64>) -> String {
        let tag = self
            .mac(&self.key, purpose, id, expires)
            .finalize()
            .into_bytes();
        out.push('-');
        for b in &tag[..TAG_BYTES] {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }

    pub fn sign(&self, purpose: Purpose, id: i64) -> String {
        self.tagged(to_base36(id), purpose, id, None)
    }

    /// A token that is good until `expires` (Unix seconds): `<id>-<expires>-<tag>`.
    pub fn sign_until(&self, purpose: Purpose, id: i64, expires: i64) -> String {
        let head = format!("{}-{}", to_base36(id), to_base36(expires));
        self.tagged(head, purpose, id, Some(expires))
    }

    /// The id inside `token` if the tag is right for `purpose`; compared in constant time.
    pub fn verify(&self, purpose: Purpose, token: &str) -> Result<i64, InvalidInput> {
        let token = token.trim().to_ascii_lowercase();
        let (id, tag) = token.split_once('-').ok_or_else(bad_token)?;
        let id = from_base36(id)?;
        self.check(purpose, id, None, tag)?;
        Ok(id)
    }

    /// The id inside a token made by [`Signer::sign_until`], if it is intact and `now` is
    /// not past its expiry.
    pub fn verify_until(
        &self,
        purpose: Purpose,
        token: &str,
        now: i64,
    ) -> Result<i64, InvalidInput> {
        let token = token.trim().to_ascii_lowercase();
        let mut parts = token.splitn(3, '-');
        let (Some(id), Some(expires), Some(tag)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad_token());
        };
        let id = from_base36(id)?;
        let expires = from_base36(expires)?;
        self.check(purpose, id, Some(expires), tag)?;
        if now > expires {
            return Err(InvalidInput::new(
                "token",
                "has expired: ask for a new link",
            ));
        }
        Ok(id)
    }

    fn check(
        &self,
        purpose: Purpose,
        id: i64,
        expires: Option<i64>,
        tag: &str,
    ) -> Result<(), InvalidInput> {
        if tag.len() != TAG_BYTES * 2 {
            return Err(bad_token());
        }
        let mut bytes = [0u8; TAG_BYTES];
        for (i, chunk) in tag.as_bytes().chunks(2).enumerate() {
            let hex = std::str::from_utf8(chunk).map_err(|_| bad_token())?;
            bytes[i] = u8::from_str_radix(hex, 16).map_err(|_| bad_token())?;
        }
        std::iter::once(&self.key)
            .chain(&self.previous)
            .any(|key| {
                self.mac(key, purpose, id, expires)
                    .verify_truncated_left(&bytes)
                    .is_ok()
            })
            .then_some(())
            .ok_or_else(bad_token)
    }
}

fn bad_token() -> InvalidInput {
    InvalidInput::new("token", "is not valid (it may be truncated or altered)")
}

/// A positive number in its one base-36 spelling (no leading zeros, no sign).
fn from_base36(s: &str) -> Result<i64, InvalidInput> {
    if s.is_empty() || s.len() > 13 {
        return Err(bad_token());
    }
    let n = i64::from_str_radix(s, 36).map_err(|_| bad_token())?;
    if n <= 0 || to_base36(n) != s {
        return Err(bad_token());
    }
    Ok(n)
}

fn to_base36(mut n: i64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    if n <= 0 {
        return "0".into();
    }
    let mut out = Vec::new();
    while n > 0 {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
    }
    out.reverse();
    String::from_utf8(out).expect("ascii")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> Signer {
        Signer::new("a test secret that is long enough!!")
    }

    #[test]
    fn a_token_verifies_for_its_purpose() {
        let s = signer();
        for id in [1, 35, 36, 1_000_000, i64::MAX] {
            let t = s.sign(Purpose::Unsubscribe, id);
            assert_eq!(s.verify(Purpose::Unsubscribe, &t).unwrap(), id);
            // Mail systems may change the case of the address the token travels in.
            assert_eq!(
                s.verify(Purpose::Unsubscribe, &t.to_uppercase()).unwrap(),
                id
            );
        }
    }

    #[test]
    fn a_token_from_another_purpose_or_secret_is_refused() {
        let s = signer();
        let t = s.sign(Purpose::Reply, 42);
        assert!(s.verify(Purpose::Journal, &t).is_err());
        assert!(s.verify(Purpose::Confirm, &t).is_err());
        assert!(
            Signer::new("another secret")
                .verify(Purpose::Reply, &t)
                .is_err()
        );
    }

    #[test]
    fn forged_truncated_or_altered_tokens_are_refused() {
        let s = signer();
        let t = s.sign(Purpose::Confirm, 42);
        let (id, tag) = t.split_once('-').unwrap();
        let other_id = format!("{}-{tag}", to_base36(43));
        let flipped = format!(
            "{id}-{}{}",
            if tag.starts_with('0') { "1" } else { "0" },
            &tag[1..]
        );
        let padded = format!("0{t}");
        for bad in [
            "",
            "-",
            id,
            &t[..t.len() - 1],
            &format!("{t}0"),
            &other_id,
            &flipped,
            &padded,
            &format!("{id}-{}", "z".repeat(32)),
            "0-00000000000000000000000000000000",
            &format!("{}-{tag}", "1".repeat(20)),
            &t.replace('-', "."),
        ] {
            let err = s.verify(Purpose::Confirm, bad).unwrap_err();
            assert_eq!(err.field, "token", "{bad:?}");
        }
    }

    #[test]
    fn an_expiring_token_works_until_its_time_and_cannot_be_stretched() {
        let s = signer();
        let t = s.sign_until(Purpose::JournalAccess, 42, 1_000);
        assert_eq!(s.verify_until(Purpose::JournalAccess, &t, 999).unwrap(), 42);
        assert_eq!(
            s.verify_until(Purpose::JournalAccess, &t, 1_000).unwrap(),
            42
        );
        let late = s
            .verify_until(Purpose::JournalAccess, &t, 1_001)
            .unwrap_err();
        assert!(late.message.contains("expired"), "{late:?}");
        // A later expiry spliced in breaks the tag; nor is it a token of another kind.
        let (id, rest) = t.split_once('-').unwrap();
        let tag = rest.split_once('-').unwrap().1;
        let stretched = format!("{id}-{}-{tag}", to_base36(9_999));
        assert!(
            s.verify_until(Purpose::JournalAccess, &stretched, 999)
                .is_err()
        );
        assert!(s.verify_until(Purpose::Journal, &t, 999).is_err());
        assert!(s.verify(Purpose::JournalAccess, &t).is_err());
        let forever = s.sign(Purpose::JournalAccess, 42);
        assert!(s.verify_until(Purpose::JournalAccess, &forever, 0).is_err());
    }

    #[test]
    fn a_token_of_a_previous_secret_still_verifies_and_new_ones_use_the_current() {
        let old = Signer::new("the secret before the rotation!!!");
        let token = old.sign(Purpose::Unsubscribe, 7);
        let expiring = old.sign_until(Purpose::JournalAccess, 7, 100);
        let rotated = Signer::new("the secret after the rotation!!!!")
            .with_previous(&["the secret before the rotation!!!".to_owned()]);
        assert_eq!(rotated.verify(Purpose::Unsubscribe, &token).unwrap(), 7);
        assert_eq!(
            rotated
                .verify_until(Purpose::JournalAccess, &expiring, 50)
                .unwrap(),
            7
        );
        assert!(rotated.verify(Purpose::Confirm, &token).is_err());
        let fresh = rotated.sign(Purpose::Unsubscribe, 7);
        assert_ne!(fresh, token);
        assert!(old.verify(Purpose::Unsubscribe, &fresh).is_err());
        // Once the old secret is dropped, its tokens stop working.
        assert!(
            Signer::new("the secret after the rotation!!!!")
                .verify(Purpose::Unsubscribe, &token)
                .is_err()
        );
    }

    #[test]
    fn tokens_are_lowercase_and_fit_in_a_local_part() {
        let t = signer().sign(Purpose::Reply, 123_456_789);
        assert!(
            t.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
        assert!(t.len() < 64 - "reply+".len());
    }
}
