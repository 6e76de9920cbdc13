//! Any string as a signed token: verifying never panics and never accepts a forgery.
#![no_main]

use drip::domain::{Purpose, Signer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let signer = Signer::new("fuzzing secret that is long enough!!");
        if let Ok(id) = signer.verify(Purpose::Reply, text) {
            // The only strings that verify are the ones the signer makes (in any case).
            assert_eq!(signer.sign(Purpose::Reply, id), text.trim().to_ascii_lowercase());
        }
        // An expiring token verifies only as the signer made it: id and expiry unchanged.
        if let Ok(id) = signer.verify_until(Purpose::JournalAccess, text, 0) {
            let expires = text.trim().to_ascii_lowercase();
            let expires = expires.split('-').nth(1).unwrap_or("");
            let expires = i64::from_str_radix(expires, 36).unwrap();
            assert_eq!(
                signer.sign_until(Purpose::JournalAccess, id, expires),
                text.trim().to_ascii_lowercase()
            );
        }
        let _ = drip::domain::EmailAddress::parse(text);
        let _ = drip::domain::Timezone::parse(text);
    }
});
