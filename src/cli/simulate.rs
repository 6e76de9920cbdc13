//! `drip simulate`: the schedule a subscriber confirming now would get in one course,
//! computed with the same functions the scheduler and sender use, the daily limit
//! (`[schedule] max_lessons_per_day`) included.

use std::process::ExitCode;

use chrono::{DateTime, Duration, Utc};

use crate::app::App;
use crate::db::{self, courses::CourseRow};
use crate::domain::Timezone;
use crate::schedule::{DailyLimit, Syllabus};

pub async fn run(
    app: &App,
    course: &CourseRow,
    days: u32,
    timezone: Option<String>,
    now: Option<DateTime<Utc>>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let tz = match timezone {
        Some(name) => Timezone::parse(&name)?,
        None => app.config.default_timezone(),
    };
    let confirmed = now.unwrap_or_else(Utc::now);
    let lessons = db::lessons::list(&app.db, course.id).await?;
    let syllabus = Syllabus::new(&lessons, &course.send_window, &course.phases);
    let limit = DailyLimit::new(app.config.schedule.max_lessons_per_day);
    let horizon = confirmed + Duration::days(i64::from(days));
    let mut rows = Vec::new();
    let mut sent = Vec::new();
    let mut due = Some(syllabus.first_due(confirmed, tz));
    let mut position = 0;
    while let (Some(due_at), Some(lesson)) = (due, syllabus.next_after(position)) {
        // The scheduler plans a lesson when it falls due, and holds it to another day when
        // that day already has the person's lessons.
        let at = limit.place(due_at, syllabus.window_of(lesson), tz.tz(), &sent);
        if at > horizon {
            break;
        }
        sent.push(at);
        rows.push((lesson, at));
        // Assume the subscriber never answers: a lesson that waits for a reply holds the
        // next one for its max_wait_days (the longest the schedule can stretch).
        due = syllabus.after_send(lesson, at, tz).due;
        position = lesson.position;
        if syllabus.next_after(position).is_none() {
            break;
        }
    }
    if json {
        let out: Vec<_> = rows
            .iter()
            .enumerate()
            .map(|(i, (l, at))| {
                serde_json::json!({
                    "number": i + 1, "slug": l.slug, "phase": l.content.phase, "subject": l.content.subject,
                    "due_at": at.to_rfc3339(), "local": at.with_timezone(&tz.tz()).to_rfc3339(),
                    "wait_for_reply": l.content.wait_for_reply,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{}: a subscriber in {} confirming at {}:",
        course.slug,
        tz,
        confirmed
            .with_timezone(&tz.tz())
            .format("%a %Y-%m-%d %H:%M %Z")
    );
    for (i, (l, at)) in rows.iter().enumerate() {
        let local = at.with_timezone(&tz.tz());
        let day =
            (local.date_naive() - confirmed.with_timezone(&tz.tz()).date_naive()).num_days() + 1;
        let wait = if l.content.wait_for_reply {
            format!(
                "  (holds the next lesson until answered, at most {} days)",
                l.content
                    .max_wait_days
                    .map(|d| d.to_string())
                    .unwrap_or("∞".into())
            )
        } else {
            String::new()
        };
        println!(
            "{:>3}. day {:>3}  {}  {:<15} {}{wait}",
            i + 1,
            day,
            local.format("%a %Y-%m-%d %H:%M %Z"),
            l.content.phase.as_str(),
            l.content.subject
        );
    }
    if rows.len() < lessons.iter().filter(|l| l.is_published()).count() {
        println!("(later lessons fall after the {days} days shown; use --days)");
    }
    Ok(ExitCode::SUCCESS)
}
