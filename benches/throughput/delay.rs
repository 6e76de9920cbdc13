//! A TCP proxy that holds every byte for a fixed time in each direction, as a link to a
//! relay some distance away does: latency without a bandwidth limit. What one side writes
//! is read at once, stamped, and written to the other side when its time has come, so
//! several writes can be on their way at the same moment, in order.

use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Listens on a free port of 127.0.0.1 and forwards each connection to `target`, `delay`
/// late each way. Returns the port; the proxy runs until the runtime ends.
pub async fn start(target: u16, delay: Duration) -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the delay proxy")?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)).await else {
                    return;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(carry(client_read, server_write, delay));
                tokio::spawn(carry(server_read, client_write, delay));
            });
        }
    });
    Ok(port)
}

/// One direction: a reader that stamps what arrives, and a writer that waits out each
/// chunk's delay before passing it on. A closed side closes the other once its bytes are
/// through.
async fn carry(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    let (line, mut arriving) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((at, bytes)) = arriving.recv().await {
            tokio::time::sleep_until(at + delay).await;
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if line.send((Instant::now(), buf[..n].to_vec())).is_err() {
                    break;
                }
            }
        }
    }
    drop(line);
    let _ = writer.await;
}
