//! Long-running processes: `drip serve` (web + scheduler + sender) and `drip worker`
//! (scheduler + sender). One shutdown signal reaches every task; each finishes what it has
//! in hand (the current batch of sends) before the process exits.

use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use tokio::sync::watch;

use crate::app::App;
use crate::outbox;

/// Resolves on ctrl-c or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// Ticks every `tick_seconds` until `stop` turns true. A failing tick (database down, say)
/// is logged and retried at the next interval: the process never needs a restart by hand.
pub async fn worker_loop(app: App, mut stop: watch::Receiver<bool>) {
    let interval = Duration::from_secs(app.config.schedule.tick_seconds);
    loop {
        match outbox::tick(&app, Utc::now()).await {
            Ok(r) if r.sent + r.enqueued + r.failed + r.retried > 0 => {
                tracing::info!(
                    enqueued = r.enqueued,
                    sent = r.sent,
                    retried = r.retried,
                    failed = r.failed,
                    completed = r.completed,
                    "tick"
                )
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "tick failed; retrying at the next interval")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return;
        }
    }
}

/// `drip worker`: the scheduler and the sender, no web.
pub(crate) async fn run_worker(app: App) -> anyhow::Result<()> {
    app.sync_on_start().await?;
    let (tx, rx) = watch::channel(false);
    let worker = tokio::spawn(worker_loop(app.clone(), rx));
    tracing::info!(id = %app.worker_id, "worker started");
    shutdown_signal().await;
    tracing::info!("shutting down: finishing the sends in hand");
    app.stopping
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = tx.send(true);
    worker.await.context("worker task")?;
    app.db.close().await;
    Ok(())
}

/// `drip serve`: web app, scheduler and sender in one process.
pub(crate) async fn run_serve(app: App) -> anyhow::Result<()> {
    app.sync_on_start().await?;
    let bind = app.config.server.bind.clone();
    let listener = tokio::net::TcpListener::bind(&bind)
        .await
        .with_context(|| format!("server.bind: cannot listen on {bind}"))?;
    // The address bound, which tells the port when `bind` asked for any (port 0).
    let bound = listener.local_addr().context("server.bind")?;
    let (tx, rx) = watch::channel(false);
    let worker = tokio::spawn(worker_loop(app.clone(), rx.clone()));
    let mut web_stop = rx.clone();
    if !app.config.inbound.smtp_bind.is_empty() {
        crate::inbound::listener::spawn(app.clone(), &app.config.inbound.smtp_bind)?;
    }
    let router = crate::web::router(app.clone());
    let web = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = web_stop.changed().await;
        })
        .await
    });
    tracing::info!(url = %app.config.server.base_url, bind = %bound, "drip is serving");
    shutdown_signal().await;
    tracing::info!("shutting down: finishing requests and the sends in hand");
    app.stopping
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = tx.send(true);
    let _ = web.await.context("web task")?;
    worker.await.context("worker task")?;
    app.db.close().await;
    Ok(())
}
