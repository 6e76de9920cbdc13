//! One webhook POST: a fresh connection (TLS for https, with the same ring-backed rustls
//! as the mail relay's), the body, its `Drip-Signature`, the answer's status, all within
//! one timeout. No redirect is followed (a 3xx is an answer that is not 2xx) and the
//! answer's body is not read.
//!
//! hyper's own client connection over tokio-rustls, rather than a client crate: both are
//! already in the build (axum serves with hyper, lettre talks TLS through tokio-rustls), so
//! posting adds no crate and no second crypto backend. Webhooks are few and each endpoint
//! is posted to rarely, so a connection per request costs nothing worth pooling for.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use hmac::{Hmac, Mac};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use sha2::Sha256;

use crate::domain::WebhookUrl;

/// `Drip-Signature`: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. A
/// receiver recomputes it over the raw body it got and compares in constant time, and may
/// refuse a `t` too far from its own clock (a replayed request).
pub fn signature(secret: &[u8], t: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("t={t},v1={}", super::hex(&mac.finalize().into_bytes()))
}

/// How a POST ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The receiver answered with this status.
    Status(u16),
    /// No answer: refused, unreachable, a TLS failure, or no status within the timeout.
    None(String),
}

/// What every request carries besides the body.
pub(crate) struct Post<'a> {
    pub url: &'a WebhookUrl,
    pub body: &'a str,
    pub signature: &'a str,
    pub event_id: &'a str,
    pub event_type: &'a str,
}

/// Posts `post`, giving up after `timeout` (connecting, TLS, sending and the status line
/// together).
pub(crate) async fn send(post: &Post<'_>, timeout: Duration) -> Answer {
    match tokio::time::timeout(timeout, exchange(post, timeout)).await {
        Ok(Ok(status)) => Answer::Status(status),
        Ok(Err(e)) => Answer::None(format!("{e:#}")),
        Err(_) => Answer::None(format!("no answer within {} s", timeout.as_secs())),
    }
}

async fn exchange(post: &Post<'_>, timeout: Duration) -> anyhow::Result<u16> {
    let url = post.url;
    let host = url.host().trim_start_matches('[').trim_end_matches(']');
    let tcp = tokio::net::TcpStream::connect((host, url.port()))
        .await
        .with_context(|| format!("cannot connect to {}", url.authority()))?;
    tcp.set_nodelay(true)?;
    if url.is_https() {
        let name = ServerName::try_from(host.to_owned())
            .with_context(|| format!("{host:?} is not a name TLS can check"))?;
        let tls = tokio_rustls::TlsConnector::from(client_config()?)
            .connect(name, tcp)
            .await
            .with_context(|| format!("TLS with {}", url.authority()))?;
        request(TokioIo::new(tls), post, timeout).await
    } else {
        request(TokioIo::new(tcp), post, timeout).await
    }
}

async fn request<IO>(io: IO, post: &Post<'_>, timeout: Duration) -> anyhow::Result<u16>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .context("HTTP handshake")?;
    // The connection runs beside the request; it ends when the answer is in and the sender
    // dropped, or at the timeout whatever the receiver does.
    tokio::spawn(async move {
        let _ = tokio::time::timeout(timeout, connection).await;
    });
    let request = hyper::Request::post(post.url.path_and_query())
        .header(header::HOST, post.url.authority())
        .header(header::CONTENT_TYPE, "application/json")
        .header(
            header::USER_AGENT,
            concat!("drip/", env!("CARGO_PKG_VERSION"), " (webhooks)"),
        )
        .header(header::CONNECTION, "close")
        .header("Drip-Signature", post.signature)
        .header("Drip-Event-Id", post.event_id)
        .header("Drip-Event-Type", post.event_type)
        .body(Full::new(Bytes::copy_from_slice(post.body.as_bytes())))
        .context("building the request")?;
    let response = sender
        .send_request(request)
        .await
        .context("sending the request")?;
    Ok(response.status().as_u16())
}

/// The TLS client's configuration, built once: the system's trust store and the built-in
/// web roots (as for the relay), ring as the only crypto backend.
fn client_config() -> anyhow::Result<Arc<rustls::ClientConfig>> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    if let Some(c) = CONFIG.get() {
        return Ok(c.clone());
    }
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let native = rustls_native_certs::load_native_certs();
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    tracing::debug!(added, ignored, "webhooks: CAs from the system's store");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS for webhooks")?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(CONFIG.get_or_init(|| Arc::new(config)).clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_hmac_of_the_time_a_dot_and_the_body() {
        // HMAC-SHA256("key", "1700000000.{}"), computed independently with Python's hmac.
        let sig = signature(b"key", 1_700_000_000, "{}");
        assert_eq!(
            sig,
            "t=1700000000,v1=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
        );
    }
}
