//! An email address a mail server would accept, and that cannot smuggle a header.

use std::fmt;

use super::InvalidInput;

/// A syntactically valid `local@domain` address, trimmed, with the domain lowercased.
///
/// Refuses what an MTA would refuse (RFC 5321 lengths, no display name, no spaces, no
/// quoted local parts) and anything that could break out of a header: CR, LF, NUL, other
/// controls, `<`, `>`, `,`, `;`, `"`. Internationalised domains are accepted as Unicode
/// letters; look-alike characters in the local part are refused (ASCII only).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct EmailAddress(String);

const FIELD: &str = "email";

impl EmailAddress {
    pub fn parse(input: &str) -> Result<EmailAddress, InvalidInput> {
        let err = |reason: &'static str, m: &str| Err(InvalidInput::new(FIELD, m).because(reason));
        if input.chars().any(|c| c.is_control()) {
            return err(
                "control",
                "must not contain line breaks or control characters",
            );
        }
        let s = input.trim();
        if s.is_empty() {
            return err("required", "is required");
        }
        if s.len() > 254 {
            return err("too_long", "is longer than 254 characters");
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return err("shape", "must look like name@example.com");
        };
        if local.is_empty() || local.len() > 64 {
            return err(
                "local_length",
                "the part before @ must be 1 to 64 characters",
            );
        }
        let local_ok = local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
        if !local_ok || local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return err(
                "local_characters",
                "the part before @ has characters a mail server will not accept",
            );
        }
        // Full-width forms are look-alikes of ASCII that IDNA folds into it: `ｅxample.com` is
        // `example.com` to a mail server, and would be a second row for the same address here.
        if domain
            .chars()
            .any(|c| ('\u{FF00}'..='\u{FFEF}').contains(&c))
        {
            return err(
                "full_width",
                "the domain has full-width characters; type it in plain letters",
            );
        }
        let domain = domain.to_lowercase();
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 {
            return err("no_dot", "the domain must have a dot, like example.com");
        }
        for label in &labels {
            let ok = !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-');
            if !ok {
                return err("host", "the domain is not a valid host name");
            }
        }
        if labels
            .last()
            .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
        {
            return err("host", "the domain is not a valid host name");
        }
        Ok(EmailAddress(format!("{local}@{domain}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }

    /// The key drip stores and looks addresses up by: the whole address lowercased.
    /// (Local parts are case-sensitive in theory, never in practice; two rows for
    /// Ann@ and ann@ would be the surprise.)
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for EmailAddress {
    type Err = InvalidInput;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EmailAddress::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses() {
        for ok in [
            "ann@example.com",
            "  ann@example.com ",
            "first.last+tag@sub.example.co.uk",
            "o'brien@example.ie",
            "x@xn--bcher-kva.example",
            "ann@bücher.example",
            "a_b-c@example-domain.org",
        ] {
            assert!(EmailAddress::parse(ok).is_ok(), "{ok} should be accepted");
        }
        assert_eq!(
            EmailAddress::parse("Ann@Example.COM").unwrap().as_str(),
            "Ann@example.com"
        );
        assert_eq!(
            EmailAddress::parse("Ann@Example.COM").unwrap().key(),
            "ann@example.com"
        );
    }

    #[test]
    fn refuses_what_an_mta_or_a_header_would_not_take() {
        let long_local = format!("{}@example.com", "a".repeat(65));
        let long_total = format!("a@{}.com", "b".repeat(250));
        for bad in [
            "",
            "   ",
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "ann@@example.com",
            "ann@exa mple.com",
            "ann example@example.com",
            "ann@example.com\r\nBcc: victim@example.net",
            "ann@example.com\nX-Injected: 1",
            "ann\0@example.com",
            "Ann <ann@example.com>",
            "ann@example.com, bob@example.com",
            "ann;bob@example.com",
            "\"ann\"@example.com",
            ".ann@example.com",
            "ann.@example.com",
            "an..n@example.com",
            "ann@-example.com",
            "ann@example-.com",
            "ann@example..com",
            "ann@127.0.0.1",
            "аnn@example.com",  // Cyrillic а: a look-alike in the local part
            "ann@ｅxample.com", // full-width ｅ: folds into ASCII in IDNA
            "ann＠example.com", // full-width @
            "ann@exam<ple.com",
            &long_local,
            &long_total,
        ] {
            let err = EmailAddress::parse(bad);
            assert!(err.is_err(), "{bad:?} should be refused");
            assert_eq!(err.unwrap_err().field, "email");
        }
    }
}
