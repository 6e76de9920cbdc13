//! The second factor's arithmetic: TOTP keys and codes (RFC 6238 with HMAC-SHA1, 6 digits,
//! 30-second steps, one step of clock drift either way, as every authenticator app does it)
//! and one-time recovery codes. Nothing here touches the database; `second_factor` does.
//!
//! The HOTP computation, base32 and the `otpauth://` URI are totp-rs's; which step a code
//! matched is worked out here, because a code must be accepted only once (§5.2) and that
//! needs the step to record.

use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, TOTP};

/// Seconds per step.
pub(crate) const STEP: i64 = 30;
const DIGITS: usize = 6;
/// Steps of drift accepted on either side of now.
const SKEW: i64 = 1;
/// 160 bits, RFC 4226's recommended key length.
const KEY_BYTES: usize = 20;
pub(crate) const ISSUER: &str = "drip";

/// How many recovery codes each enrolment gives.
pub const RECOVERY_CODES: usize = 10;
/// Crockford's base32 alphabet (no i, l, o, u): 5 bits a character.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// 16 characters: 80 random bits, too many to guess even from a copy of the hashes, so a
/// plain SHA-256 keeps them (a slow hash would add nothing but time at each sign-in).
const RECOVERY_CHARS: usize = 16;

/// A fresh random key.
pub(crate) fn new_key() -> Vec<u8> {
    let key: [u8; KEY_BYTES] = rand::random();
    key.to_vec()
}

fn totp(key: &[u8], account: &str) -> anyhow::Result<TOTP> {
    TOTP::new(
        Algorithm::SHA1,
        DIGITS,
        SKEW as u8,
        STEP as u64,
        key.to_vec(),
        Some(ISSUER.to_owned()),
        account.to_owned(),
    )
    .map_err(|e| anyhow::anyhow!("TOTP key for {account:?}: {e:?}"))
}

/// The label an authenticator app shows: `user@host`, where host is the server's (a colon,
/// as in a port, is not allowed in the label).
pub(crate) fn account_label(username: &str, base_url: &str) -> String {
    let host = base_url
        .split("://")
        .nth(1)
        .unwrap_or(base_url)
        .split('/')
        .next()
        .unwrap_or("");
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    };
    // An IPv6 literal cannot be written without colons: the label is the user name alone.
    if host.is_empty() || host.contains(':') {
        username.to_owned()
    } else {
        format!("{username}@{host}")
    }
}

/// `otpauth://totp/drip:LABEL?secret=…&issuer=drip` (SHA-1, 6 digits and 30 s are the
/// format's defaults, so totp-rs leaves them out).
pub(crate) fn otpauth_uri(key: &[u8], account: &str) -> anyhow::Result<String> {
    Ok(totp(key, account)?.get_url())
}

/// The key in base32, as typed into an app that cannot scan.
pub(crate) fn base32(key: &[u8]) -> String {
    totp_rs::Secret::Raw(key.to_vec()).to_encoded().to_string()
}

/// Whether `code` has the shape of a TOTP code (six digits, spaces allowed).
pub(crate) fn looks_like_code(code: &str) -> bool {
    let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    digits.len() == DIGITS && digits.chars().all(|c| c.is_ascii_digit())
}

/// The step whose code `code` is, among now and one step either side; `None` if none.
pub(crate) fn matching_step(key: &[u8], code: &str, now: i64) -> Option<i64> {
    if !looks_like_code(code) {
        return None;
    }
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    // The label plays no part in the code.
    let t = totp(key, "x").ok()?;
    let origin = now.div_euclid(STEP);
    let mut found = None;
    // Every candidate is compared, in constant time, so the answer's timing says nothing.
    for step in (origin - SKEW)..=(origin + SKEW) {
        if step < 0 {
            continue;
        }
        let expected = t.generate((step * STEP) as u64);
        if super::same_secret(&expected, &code) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// Ten new recovery codes, shown as `xxxx-xxxx-xxxx-xxxx`.
pub(crate) fn new_recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let chars: Vec<char> = (0..RECOVERY_CHARS)
                .map(|_| ALPHABET[usize::from(rand::random::<u8>() & 31)] as char)
                .collect();
            chars
                .chunks(4)
                .map(|c| c.iter().collect::<String>())
                .collect::<Vec<_>>()
                .join("-")
        })
        .collect()
}

/// The stored form of a recovery code as typed (any case, with or without dashes and
/// spaces; o/i/l read as 0/1/1), or `None` if it cannot be one.
pub(crate) fn recovery_hash(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_lowercase() {
            'o' => '0',
            'i' | 'l' => '1',
            c => c,
        })
        .collect();
    let ok = code.len() == RECOVERY_CHARS && code.bytes().all(|b| ALPHABET.contains(&b));
    ok.then(|| {
        Sha256::digest(code.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    })
}

/// The URI as a QR code, an SVG image for the enrolment page (no script, no request).
pub(crate) fn qr_svg(uri: &str) -> String {
    use qrcodegen::{QrCode, QrCodeEcc};
    let Ok(qr) = QrCode::encode_text(uri, QrCodeEcc::Medium) else {
        return String::new();
    };
    let border = 4;
    let size = qr.size() + 2 * border;
    let mut path = String::new();
    for y in 0..qr.size() {
        for x in 0..qr.size() {
            if qr.get_module(x, y) {
                path.push_str(&format!("M{},{}h1v1h-1z", x + border, y + border));
            }
        }
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" width=\"220\" height=\"220\" role=\"img\" aria-label=\"QR code of the key\" shape-rendering=\"crispEdges\"><rect width=\"100%\" height=\"100%\" fill=\"#fff\"/><path d=\"{path}\" fill=\"#000\"/></svg>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B's SHA-1 key, "12345678901234567890" in ASCII.
    const RFC_KEY: &[u8] = b"12345678901234567890";

    #[test]
    fn codes_match_rfc_6238_appendix_b() {
        // The RFC lists 8 digits; the 6-digit code is their last six.
        for (time, eight) in [
            (59, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
        ] {
            let six = &eight[2..];
            assert_eq!(
                matching_step(RFC_KEY, six, time),
                Some(time / STEP),
                "T={time}"
            );
        }
    }

    #[test]
    fn one_step_of_drift_either_way_and_no_more() {
        let now = 1_800_000_015;
        let t = totp(RFC_KEY, "x").unwrap();
        let code_at = |s: i64| t.generate((s * STEP) as u64);
        let step = now / STEP;
        assert_eq!(
            matching_step(RFC_KEY, &code_at(step - 1), now),
            Some(step - 1)
        );
        assert_eq!(
            matching_step(RFC_KEY, &code_at(step + 1), now),
            Some(step + 1)
        );
        assert_eq!(matching_step(RFC_KEY, &code_at(step - 2), now), None);
        assert_eq!(matching_step(RFC_KEY, &code_at(step + 2), now), None);
        let spaced = format!("{} {}", &code_at(step)[..3], &code_at(step)[3..]);
        assert_eq!(matching_step(RFC_KEY, &spaced, now), Some(step));
        assert_eq!(matching_step(RFC_KEY, "12345", now), None);
        assert_eq!(matching_step(RFC_KEY, "abcdef", now), None);
    }

    #[test]
    fn the_uri_names_drip_and_reads_back_with_the_same_key() {
        let key = new_key();
        assert_eq!(key.len(), 20);
        let label = account_label("ann", "https://drip.example.org:8443/x");
        assert_eq!(label, "ann@drip.example.org");
        let uri = otpauth_uri(&key, &label).unwrap();
        assert!(
            uri.starts_with("otpauth://totp/drip:ann%40drip.example.org?"),
            "{uri}"
        );
        assert!(uri.contains(&format!("secret={}", base32(&key))), "{uri}");
        let back = TOTP::from_url(&uri).unwrap();
        assert_eq!(back.secret, key);
        assert_eq!((back.digits, back.step, back.skew), (6, 30, 1));
        assert_eq!(account_label("ann", "http://[::1]:8080"), "ann");
        assert_eq!(
            account_label("ann", "http://127.0.0.1:8080"),
            "ann@127.0.0.1"
        );
    }

    #[test]
    fn recovery_codes_are_ten_distinct_and_read_back_loosely() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), 10);
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 10);
        for c in &codes {
            assert_eq!(c.len(), 19, "{c}");
            let hash = recovery_hash(c).unwrap();
            assert_eq!(
                recovery_hash(&c.to_uppercase().replace('-', " ")),
                Some(hash)
            );
        }
        assert_eq!(
            recovery_hash("0000-1111-aaaa-bbbb"),
            recovery_hash("oooo-ilil-AAAA-bbbb")
        );
        assert_eq!(recovery_hash("123456"), None);
        assert_eq!(recovery_hash("uuuu-uuuu-uuuu-uuuu"), None);
    }

    #[test]
    fn the_qr_code_is_an_svg_with_modules() {
        let svg = qr_svg("otpauth://totp/drip:ann?secret=ABC");
        assert!(svg.starts_with("<svg") && svg.contains("h1v1h-1z"), "{svg}");
    }
}
