//! Long-running processes: `drip serve` (web + scheduler + sender + webhooks) and `drip
//! worker` (scheduler + sender + webhooks). Webhooks are posted by a task of their own, so
//! an endpoint that hangs can never hold up the mail. One shutdown signal, [`App::shutdown`], reaches every task; each
//! finishes what it has in hand (the current requests, the current batch of sends) before
//! the process exits. A task that ends on its own before that (a panic, a web server that
//! gave up) stops the others and the process, with an error: a half-running drip that no
//! longer sends, or no longer answers, is worse than one that is restarted.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use futures::future::select_all;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

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

/// Ticks every `tick_seconds` until [`App::shutdown`] is cancelled. A failing tick
/// (database down, say) is logged and retried at the next interval: the process never
/// needs a restart by hand.
pub async fn worker_loop(app: App) {
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
            _ = app.shutdown.cancelled() => {}
        }
        if app.is_stopping() {
            return;
        }
    }
}

/// The web app on `listener` until [`App::shutdown`] is cancelled, then until the requests
/// in flight are answered.
pub async fn web(app: App, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    let stop = app.shutdown.clone();
    let router = crate::web::router(app);
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(stop.cancelled_owned())
    .await
    .context("web server")
}

/// `drip worker`: the scheduler and the sender, no web.
pub(crate) async fn run_worker(app: App) -> anyhow::Result<()> {
    app.sync_on_start().await?;
    let worker = spawn_worker(&app);
    let webhooks = spawn_webhooks(&app);
    tracing::info!(id = %app.worker_id, "worker started");
    let result = supervise(&app.shutdown, shutdown_signal(), vec![worker, webhooks]).await;
    app.db.close().await;
    result
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
    if !app.config.inbound.smtp_bind.is_empty() {
        // mailin runs its own threads, which cannot be stopped from here: the listener
        // watches `app.shutdown` itself and turns new mail away once it is cancelled.
        crate::inbound::listener::spawn(app.clone(), &app.config.inbound.smtp_bind)?;
    }
    let web = Task {
        name: "web server",
        handle: tokio::spawn(web(app.clone(), listener)),
    };
    let worker = spawn_worker(&app);
    let webhooks = spawn_webhooks(&app);
    tracing::info!(url = %app.config.server.base_url, bind = %bound, "drip is serving");
    let result = supervise(
        &app.shutdown,
        shutdown_signal(),
        vec![web, worker, webhooks],
    )
    .await;
    app.db.close().await;
    result
}

/// A task of a long-running process, named for the logs.
struct Task {
    name: &'static str,
    handle: JoinHandle<anyhow::Result<()>>,
}

fn spawn_worker(app: &App) -> Task {
    let app = app.clone();
    Task {
        name: "scheduler and sender",
        handle: tokio::spawn(async move {
            worker_loop(app).await;
            Ok(())
        }),
    }
}

/// The webhook sender, beside the mail's scheduler and sender rather than in its tick.
fn spawn_webhooks(app: &App) -> Task {
    let app = app.clone();
    Task {
        name: "webhook sender",
        handle: tokio::spawn(async move {
            crate::webhooks::send_loop(app).await;
            Ok(())
        }),
    }
}

/// Runs `tasks` (at least one) until `signal` fires or `shutdown` is cancelled, then
/// cancels `shutdown` and waits for every task to finish. A task that ends first, with an
/// error, a panic or `Ok` (none is meant to return while drip runs), is logged as an error,
/// the others are stopped the same way, and its failure is the result: `drip` exits non-zero.
async fn supervise(
    shutdown: &CancellationToken,
    signal: impl Future<Output = ()>,
    tasks: Vec<Task>,
) -> anyhow::Result<()> {
    let mut running = select_all(
        tasks
            .into_iter()
            .map(|t| Box::pin(async move { (t.name, t.handle.await) })),
    );
    let ended = tokio::select! {
        () = signal => None,
        () = shutdown.cancelled() => None,
        (ended, _, rest) = &mut running => Some((ended, rest)),
    };
    shutdown.cancel();
    let (mut failure, rest) = match ended {
        None => {
            tracing::info!("shutting down: finishing requests and the sends in hand");
            (None, running.into_inner())
        }
        Some(((name, result), rest)) => {
            let error = match result {
                Ok(Ok(())) => anyhow::anyhow!("the {name} stopped on its own"),
                Ok(Err(e)) => e.context(format!("the {name} failed")),
                Err(e) => anyhow::anyhow!("the {name} panicked: {e}"),
            };
            tracing::error!(error = %format!("{error:#}"), "a task ended early; shutting down the others");
            (Some(error), rest)
        }
    };
    for task in rest {
        let error = match task.await {
            (_, Ok(Ok(()))) => continue,
            (name, Ok(Err(e))) => e.context(format!("the {name} failed while stopping")),
            (name, Err(e)) => anyhow::anyhow!("the {name} panicked while stopping: {e}"),
        };
        tracing::error!(error = %format!("{error:#}"), "a task failed while stopping");
        failure.get_or_insert(error);
    }
    failure.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(
        name: &'static str,
        f: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    ) -> Task {
        Task {
            name,
            handle: tokio::spawn(f),
        }
    }

    /// A task that runs until told to stop, as the web server and the tick loop do.
    fn until_stopped(
        name: &'static str,
        shutdown: &CancellationToken,
    ) -> (Task, tokio::sync::oneshot::Receiver<()>) {
        let (stopped, seen) = tokio::sync::oneshot::channel();
        let stop = shutdown.clone();
        let t = task(name, async move {
            stop.cancelled().await;
            let _ = stopped.send(());
            Ok(())
        });
        (t, seen)
    }

    #[tokio::test]
    async fn the_signal_stops_every_task_and_the_result_is_ok() {
        let shutdown = CancellationToken::new();
        let (a, a_stopped) = until_stopped("web server", &shutdown);
        let (b, b_stopped) = until_stopped("scheduler and sender", &shutdown);
        let result = supervise(&shutdown, std::future::ready(()), vec![a, b]).await;
        assert!(result.is_ok(), "{result:?}");
        assert!(shutdown.is_cancelled());
        a_stopped.await.expect("the first task saw the shutdown");
        b_stopped.await.expect("the second task saw the shutdown");
    }

    #[tokio::test]
    async fn a_task_that_fails_early_stops_the_others_and_is_the_error() {
        let shutdown = CancellationToken::new();
        let (web, web_stopped) = until_stopped("web server", &shutdown);
        let worker = task("scheduler and sender", async {
            Err(anyhow::anyhow!("database gone"))
        });
        let result = supervise(&shutdown, std::future::pending(), vec![web, worker]).await;
        let error = format!("{:#}", result.unwrap_err());
        assert_eq!(error, "the scheduler and sender failed: database gone");
        assert!(shutdown.is_cancelled());
        web_stopped.await.expect("the web server was told to stop");
    }

    #[tokio::test]
    async fn a_task_that_panics_or_returns_early_is_an_error_too() {
        let shutdown = CancellationToken::new();
        let panics = task("web server", async { panic!("boom") });
        let (worker, worker_stopped) = until_stopped("scheduler and sender", &shutdown);
        let error = supervise(&shutdown, std::future::pending(), vec![panics, worker])
            .await
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("the web server panicked"), "{error}");
        worker_stopped.await.expect("the worker was told to stop");

        let shutdown = CancellationToken::new();
        let returns = task("scheduler and sender", async { Ok(()) });
        let error = supervise(&shutdown, std::future::pending(), vec![returns])
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(error, "the scheduler and sender stopped on its own");
    }
}
