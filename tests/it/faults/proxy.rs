//! A TCP proxy that does damage on demand, put between drip and a real server (the test
//! SMTP server, PostgreSQL): refuse service, answer slowly, cut a connection in the middle
//! of a mail, or sever every open connection at once (what a server restart looks like
//! from the client). It counts the connections it is asked for.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Pass everything through.
    Up,
    /// Accept each connection and close it at once, before any greeting: the server is down
    /// (a refused connection could not be counted).
    Down,
    /// Hold each chunk the server sends for this long: a server that takes seconds to
    /// answer every command.
    Slow(Duration),
    /// Pass the client's bytes until this many of a mail's content (after its `DATA`
    /// command) have gone through, then cut both sides. Once; then `Up`.
    CutMidData(usize),
}

struct State {
    upstream: SocketAddr,
    mode: Mutex<Mode>,
    connections: AtomicUsize,
    cuts: AtomicUsize,
    live: Mutex<Vec<JoinHandle<()>>>,
}

#[derive(Clone)]
pub struct FaultProxy {
    pub addr: SocketAddr,
    state: Arc<State>,
}

impl FaultProxy {
    /// Listens on a free port of 127.0.0.1 and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr, mode: Mode) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            upstream,
            mode: Mutex::new(mode),
            connections: AtomicUsize::new(0),
            cuts: AtomicUsize::new(0),
            live: Mutex::new(Vec::new()),
        });
        let accept_state = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let state = accept_state.clone();
                state.connections.fetch_add(1, Ordering::SeqCst);
                let mode = *state.mode.lock().unwrap();
                if mode == Mode::Down {
                    drop(client);
                    continue;
                }
                let task = tokio::spawn(relay(client, state.clone(), mode));
                let mut live = state.live.lock().unwrap();
                live.retain(|t| !t.is_finished());
                live.push(task);
            }
        });
        FaultProxy { addr, state }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    /// Connections asked for so far (served or refused).
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Connections cut in the middle of a mail.
    pub fn cuts(&self) -> usize {
        self.state.cuts.load(Ordering::SeqCst)
    }

    /// Closes every open connection, both sides, at once.
    pub fn sever_all(&self) {
        for task in self.state.live.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

async fn relay(client: TcpStream, state: Arc<State>, mode: Mode) {
    let Ok(server) = TcpStream::connect(state.upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let to_server = async {
        let mut buf = vec![0u8; 16 * 1024];
        // The last bytes of the command stream, to see `DATA` go by.
        let mut tail: Vec<u8> = Vec::new();
        let mut after_data: Option<usize> = None;
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let chunk = &buf[..n];
            if let Mode::CutMidData(limit) = mode
                && state.cuts.load(Ordering::SeqCst) == 0
            {
                match after_data {
                    Some(sent) if sent + chunk.len() >= limit => {
                        let _ = server_write.write_all(&chunk[..limit - sent]).await;
                        state.cuts.fetch_add(1, Ordering::SeqCst);
                        *state.mode.lock().unwrap() = Mode::Up;
                        return;
                    }
                    Some(sent) => after_data = Some(sent + chunk.len()),
                    None => {
                        tail.extend_from_slice(chunk);
                        if tail.len() > 64 {
                            tail.drain(..tail.len() - 64);
                        }
                        if tail.ends_with(b"DATA\r\n") {
                            after_data = Some(0);
                        }
                    }
                }
            }
            if server_write.write_all(chunk).await.is_err() {
                return;
            }
        }
    };
    let to_client = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if let Mode::Slow(delay) = mode {
                tokio::time::sleep(delay).await;
            }
            if client_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    // Whichever side ends first ends the connection; dropping the halves closes both.
    tokio::select! {
        _ = to_server => {}
        _ = to_client => {}
    }
}
