//! What a webhook is made of: the events an endpoint can ask for, the URL it gives (http or
//! https, nothing else), and where a delivery to it stands. Parsed once where the text comes
//! in (the CLI, the admin form, a stored row).

use std::fmt;

use super::InvalidInput;

/// Declares the event types once: variant, the name receivers see (and the CHECK lists).
macro_rules! event_types {
    ($($variant:ident = $text:literal),+ $(,)?) => {
        /// An event a webhook endpoint may subscribe to (DESIGN.md, "Webhooks").
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventType {
            $($variant),+
        }

        impl EventType {
            pub const ALL: &'static [EventType] = &[$(EventType::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(EventType::$variant => $text),+
                }
            }

            /// One name; an unknown one is refused with the list of valid names.
            pub fn parse(text: &str) -> Result<EventType, InvalidInput> {
                match text.trim() {
                    $($text => Ok(EventType::$variant),)+
                    other => Err(InvalidInput::new(
                        "events",
                        format!("{other:?} is not an event; the events are: {}", [$($text),+].join(", ")),
                    )),
                }
            }
        }
    };
}

event_types!(
    SubscriberConfirmed = "subscriber.confirmed",
    EnrollmentStarted = "enrollment.started",
    LessonSent = "lesson.sent",
    ReplyReceived = "reply.received",
    EnrollmentCompleted = "enrollment.completed",
    SubscriberUnsubscribed = "subscriber.unsubscribed",
    DeliveryBounced = "delivery.bounced",
    BroadcastSent = "broadcast.sent",
);

impl EventType {
    /// A comma-separated list (`--events a,b`, the admin form's ticks joined): at least one,
    /// each known, duplicates folded, in the order of [`EventType::ALL`].
    pub fn parse_list(text: &str) -> Result<Vec<EventType>, InvalidInput> {
        let mut out = Vec::new();
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            out.push(EventType::parse(name)?);
        }
        if out.is_empty() {
            return Err(InvalidInput::new(
                "events",
                format!(
                    "name at least one event (comma-separated); the events are: {}",
                    EventType::ALL
                        .iter()
                        .map(|e| e.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl TryFrom<String> for EventType {
    type Error = InvalidInput;

    fn try_from(text: String) -> Result<EventType, InvalidInput> {
        EventType::parse(&text)
    }
}

/// An endpoint's address: an absolute http or https URL with a host, at most 2,000
/// characters, without a fragment (never sent) or credentials (which the admin page would
/// show to every owner and the logs would keep).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(url::Url);

impl WebhookUrl {
    pub fn parse(text: &str) -> Result<WebhookUrl, InvalidInput> {
        let bad = |m: String| InvalidInput::new("url", m);
        let text = text.trim();
        if text.is_empty() {
            return Err(bad(
                "is empty; give the http:// or https:// address that receives the events".into(),
            ));
        }
        if text.chars().count() > 2000 {
            return Err(bad("is longer than 2,000 characters".into()));
        }
        let url = url::Url::parse(text).map_err(|e| {
            bad(format!(
                "{text:?} is not an absolute URL ({e}); it must start with http:// or https://"
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad(format!(
                "{text:?} is a {}: URL; webhooks are posted over http:// or https:// only",
                url.scheme()
            )));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad(format!("{text:?} has no host")));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad(format!(
                "{:?} carries a user name or password; check the Drip-Signature header instead (SECURITY.md)",
                redact(&url)
            )));
        }
        if url.fragment().is_some() {
            return Err(bad(format!(
                "{text:?} has a #fragment, which is never sent; leave it out"
            )));
        }
        Ok(WebhookUrl(url))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn is_https(&self) -> bool {
        self.0.scheme() == "https"
    }

    pub fn host(&self) -> &str {
        self.0.host_str().unwrap_or_default()
    }

    /// The port, the scheme's own when none is written.
    pub fn port(&self) -> u16 {
        self.0
            .port_or_known_default()
            .unwrap_or(if self.is_https() { 443 } else { 80 })
    }

    /// The path and query, as the request line carries them.
    pub fn path_and_query(&self) -> String {
        match self.0.query() {
            Some(q) => format!("{}?{q}", self.0.path()),
            None => self.0.path().to_owned(),
        }
    }

    /// The `Host` header: the host, and the port when it is not the scheme's own.
    pub fn authority(&self) -> String {
        let host = match self.0.host() {
            Some(url::Host::Ipv6(a)) => format!("[{a}]"),
            _ => self.host().to_owned(),
        };
        match self.0.port() {
            Some(p) => format!("{host}:{p}"),
            None => host,
        }
    }
}

fn redact(url: &url::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.to_string()
}

impl fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_name_reads_back_and_an_unknown_one_lists_the_valid_ones() {
        for e in EventType::ALL {
            assert_eq!(EventType::parse(e.as_str()).unwrap(), *e);
            assert_eq!(serde_json::to_value(e).unwrap(), e.as_str());
        }
        let err = EventType::parse_list("lesson.sent, lesson.opened").unwrap_err();
        assert_eq!(err.field, "events");
        assert!(err.message.contains("\"lesson.opened\""), "{}", err.message);
        assert!(
            err.message.contains("subscriber.confirmed") && err.message.contains("broadcast.sent"),
            "{}",
            err.message
        );
        assert_eq!(EventType::parse_list(" , ").unwrap_err().field, "events");
    }

    #[test]
    fn a_list_is_folded_and_ordered() {
        let list = EventType::parse_list("reply.received,lesson.sent,reply.received").unwrap();
        assert_eq!(list, vec![EventType::LessonSent, EventType::ReplyReceived]);
    }

    #[test]
    fn only_http_and_https_urls_with_a_host_are_taken() {
        let ok = WebhookUrl::parse(" https://hooks.example.com:8443/drip?x=1 ").unwrap();
        assert_eq!(ok.host(), "hooks.example.com");
        assert_eq!(ok.port(), 8443);
        assert_eq!(ok.path_and_query(), "/drip?x=1");
        assert_eq!(ok.authority(), "hooks.example.com:8443");
        let plain = WebhookUrl::parse("HTTP://127.0.0.1/in").unwrap();
        assert_eq!((plain.as_str(), plain.port()), ("http://127.0.0.1/in", 80));
        assert_eq!(
            WebhookUrl::parse("http://[::1]:9/").unwrap().authority(),
            "[::1]:9"
        );
        for bad in [
            "",
            "ftp://example.com/",
            "file:///etc/passwd",
            "javascript:alert(1)",
            "mailto:a@example.com",
            "example.com/hook",
            "http://",
            "https://user:pw@example.com/",
            "https://example.com/#frag",
        ] {
            let err = WebhookUrl::parse(bad).unwrap_err();
            assert_eq!(err.field, "url", "{bad}");
            assert!(!err.message.contains("pw@"), "{}", err.message);
        }
        let err = WebhookUrl::parse("ftp://example.com/").unwrap_err();
        assert!(
            err.message.contains("http:// or https://"),
            "{}",
            err.message
        );
    }
}
