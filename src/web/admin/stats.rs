//! Course statistics: the funnel (signed up, confirmed, each lesson reached, finished,
//! unsubscribed, bounced) and the answer rate per lesson, as server-rendered SVG bar charts
//! and as tables; and the mail relay: what holds the queue now, and the last `smtp check`
//! (a button runs one in this process).

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use serde_json::json;

use super::lessons::course_and_lessons;
use super::page;
use crate::app::App;
use crate::auth::Admin;
use crate::db;
use crate::domain::Area;
use crate::web::WebError;
use crate::web::access::Routes;

pub fn router() -> Routes {
    Routes::new()
        .get("/admin/stats", &[Area::Stats], stats)
        .post("/admin/stats/smtp-check", &[Area::Stats], smtp_check)
}

/// One bar of a chart, laid out: the template only draws.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Bar {
    pub label: String,
    pub value: String,
    pub y: usize,
    pub width: usize,
}

pub(crate) const BAR_AREA: usize = 460;
pub const ROW: usize = 26;

/// Bars scaled so the largest `of` fills the chart.
pub(crate) fn bars(rows: &[(String, f64, String)]) -> Vec<Bar> {
    let max = rows.iter().map(|r| r.1).fold(0.0_f64, f64::max);
    rows.iter()
        .enumerate()
        .map(|(i, (label, v, shown))| Bar {
            label: if label.chars().count() > 38 {
                label.chars().take(37).collect::<String>() + "…"
            } else {
                label.clone()
            },
            value: shown.clone(),
            y: i * ROW,
            width: if max > 0.0 {
                ((v / max) * BAR_AREA as f64).round() as usize
            } else {
                0
            },
        })
        .collect()
}

fn pct(part: i64, whole: i64) -> String {
    if whole > 0 {
        format!("{:.0}%", 100.0 * part as f64 / whole as f64)
    } else {
        "—".into()
    }
}

async fn stats(
    State(app): State<App>,
    Extension(current): Extension<super::CurrentCourse>,
    Extension(admin): Extension<Admin>,
) -> Result<Response, WebError> {
    let (course, lessons) = course_and_lessons(&app, &current).await?;
    let f = db::stats::funnel(&app.db, course.id).await?;
    let counts = db::stats::lesson_counts(&app.db).await?;
    let mut funnel: Vec<(String, i64)> = vec![
        ("Signed up".into(), f.signed_up),
        ("Confirmed".into(), f.confirmed),
    ];
    let mut per_lesson = Vec::new();
    for l in &lessons {
        let (sent, answered) = counts.get(&l.id).copied().unwrap_or((0, 0));
        funnel.push((format!("{}. {}", l.position, l.content.title), sent));
        per_lesson.push(json!({
            "position": l.position, "title": l.content.title, "status": l.status, "sent": sent, "answered": answered,
            "rate": pct(answered, sent), "of_confirmed": pct(sent, f.confirmed),
        }));
    }
    funnel.push(("Finished".into(), f.finished));
    funnel.push(("Unsubscribed".into(), f.unsubscribed));
    funnel.push(("Bounced".into(), f.bounced));
    let funnel_bars = bars(
        &funnel
            .iter()
            .map(|(l, n)| (l.clone(), *n as f64, n.to_string()))
            .collect::<Vec<_>>(),
    );
    let answer_bars = bars(
        &lessons
            .iter()
            .map(|l| {
                let (sent, answered) = counts.get(&l.id).copied().unwrap_or((0, 0));
                let rate = if sent > 0 {
                    answered as f64 / sent as f64
                } else {
                    0.0
                };
                (
                    format!("{}. {}", l.position, l.content.title),
                    rate,
                    pct(answered, sent),
                )
            })
            .collect::<Vec<_>>(),
    );
    // The answer-rate chart is scaled to 100%, not to the best lesson.
    let answer_bars: Vec<Bar> = answer_bars
        .into_iter()
        .zip(lessons.iter())
        .map(|(mut b, l)| {
            let (sent, answered) = counts.get(&l.id).copied().unwrap_or((0, 0));
            b.width = if sent > 0 {
                (BAR_AREA as f64 * answered as f64 / sent as f64).round() as usize
            } else {
                0
            };
            b
        })
        .collect();
    page(
        &app,
        Some(&admin),
        StatusCode::OK,
        "stats",
        json!({
            "nav": "stats", "funnel": f, "funnel_rows": funnel.iter().map(|(l, n)| json!({"label": l, "n": n, "pct": pct(*n, f.signed_up)})).collect::<Vec<_>>(),
            "per_lesson": per_lesson, "funnel_bars": funnel_bars, "answer_bars": answer_bars,
            "funnel_height": funnel.len() * ROW, "answer_height": lessons.len() * ROW, "bar_area": BAR_AREA,
            "relay": relay(&app),
        }),
    )
}

/// The relay as the sender sees it now, and the last check run in this process.
fn relay(app: &App) -> serde_json::Value {
    let smtp = &app.config.smtp;
    json!({
        "server": format!("{}:{}", smtp.host, smtp.port),
        "smtp": app.config.mail.transport == crate::config::Transport::Smtp,
        "problem": app.relay.problem().map(|p| p.message),
        "check": crate::metrics::last_check(),
    })
}

/// Runs `drip smtp check` (without a test message) with this process's settings.
async fn smtp_check(State(app): State<App>) -> Response {
    crate::mailer::check::run(&app.config, None, |_| {}).await;
    super::see_other("/admin/stats#relay")
}
