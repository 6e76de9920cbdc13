//! Moving a subscriber within a course: an admin's choice of their next lesson.

use serde_json::json;

use crate::app::App;
use crate::db;
use crate::domain::{DeliveryStatus, EnrollmentStatus, SubscriberStatus};

/// Why a move was refused, in words for the admin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoveRefused {
    #[error("Choose a lesson to move to.")]
    NoSuchLesson,
    #[error("“{0}” is a draft; publish it first.")]
    Draft(String),
    #[error("This subscriber is {0}; only active or paused subscribers can be moved.")]
    NotEnrolled(SubscriberStatus),
    #[error("This subscriber is not enrolled yet (they have not confirmed).")]
    NotConfirmed,
    #[error(
        "They already received “{0}”. A lesson is never sent to anyone twice, so they cannot be moved back before it; move them to a later lesson."
    )]
    AlreadyReceived(String),
}

/// Moves a subscriber so that `slug` is their next lesson, due now (or when they resume).
///
/// A lesson is never sent twice to one person (the outbox's UNIQUE (enrollment, lesson) is
/// what makes a crash-safe resend impossible to double), so a move back before a lesson they
/// already received is refused. Mails not sent yet for the target and later lessons (queued
/// or failed) are withdrawn, so those lessons can go out again.
pub async fn move_to_lesson(
    app: &App,
    course: &db::courses::CourseRow,
    s: &db::subscribers::SubscriberRow,
    slug: &str,
    actor: &str,
    now: i64,
) -> anyhow::Result<Result<(), MoveRefused>> {
    let lessons = db::lessons::list(&app.db, course.id).await?;
    let Some(target) = lessons.iter().find(|l| l.slug == slug) else {
        return Ok(Err(MoveRefused::NoSuchLesson));
    };
    if !target.is_published() {
        return Ok(Err(MoveRefused::Draft(target.content.title.clone())));
    }
    if !s.status.is_enrolled() {
        return Ok(Err(MoveRefused::NotEnrolled(s.status)));
    }
    let mut tx = app.db.begin_write().await?;
    let Some(e) = db::enrollments::for_subscriber_in(&mut tx, s.id)
        .await?
        .into_iter()
        .find(|e| e.course_id == course.id)
    else {
        return Ok(Err(MoveRefused::NotConfirmed));
    };
    let deliveries = db::stats::enrollment_deliveries(&mut tx, e.id).await?;
    if let Some(d) = deliveries.iter().find(|d| {
        d.position >= target.position
            && matches!(d.status, DeliveryStatus::Sent | DeliveryStatus::Bounced)
    }) {
        let title = lessons
            .iter()
            .find(|l| l.id == d.lesson_id)
            .map(|l| l.content.title.clone())
            .unwrap_or_else(|| d.slug.clone());
        return Ok(Err(MoveRefused::AlreadyReceived(title)));
    }
    let mut withdrawn = Vec::new();
    for d in &deliveries {
        if d.status == DeliveryStatus::Queued
            || (d.status == DeliveryStatus::Failed && d.position >= target.position)
        {
            db::stats::delete_delivery(&mut tx, d.id).await?;
            withdrawn.push(d.slug.clone());
        }
    }
    let (status, due) = if e.status == EnrollmentStatus::Paused {
        (EnrollmentStatus::Paused, None)
    } else {
        (EnrollmentStatus::Active, Some(now))
    };
    let position = target.position - 1;
    db::enrollments::set_status(&mut tx, e.id, status, position, due, now).await?;
    db::events::log(
        &mut tx,
        Some(s.id),
        actor,
        "moved",
        &json!({"from": e.position, "to": target.slug, "withdrawn": withdrawn}),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(Ok(()))
}
