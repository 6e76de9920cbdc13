//! Editing a course's lessons, whoever asks (the admin's editor, the JSON API, a reorder):
//! the phase rule against the course's declared phases, what changed, storing a change as
//! a new revision, and what a schedule change does to the people already planned (worked
//! out by `schedule::impact` and applied in the same transaction as the change).

use std::collections::BTreeMap;

use chrono::Utc;
use serde_json::json;

use crate::curriculum::{LessonContent, check_content};
use crate::db::{self, Db, Tx, courses::CourseRow, lessons::Lesson};
use crate::domain::{Phase, Phases};
use crate::schedule::{Impact, Syllabus, impact};

/// Problems by the field they belong beside (`form` for the whole change).
pub(crate) type FieldErrors = BTreeMap<String, Vec<String>>;

/// The content rules (lint's), each problem filed under its field; body problems name
/// their line of the body.
pub(crate) fn content_errors(content: &LessonContent, errors: &mut FieldErrors) {
    for p in check_content(content) {
        let field = p.field.unwrap_or("body");
        let msg = if field == "body" {
            format!("line {}: {}", p.line, p.message)
        } else {
            p.message
        };
        errors.entry(field.into()).or_default().push(msg);
    }
}

/// A change to one lesson, from the editor or the API.
pub struct Change<'a> {
    pub course: &'a CourseRow,
    /// The course's lessons as they are now.
    pub lessons: &'a [Lesson],
    pub lesson: &'a Lesson,
    /// The revision the change was made from; another saved meanwhile refuses it.
    pub base: i64,
    pub content: LessonContent,
    pub author: &'a str,
    /// The revision's note; by default, which fields changed.
    pub note: Option<String>,
    /// The one asking has seen whom a schedule change reaches (the API always has: its
    /// answer reports how many were moved).
    pub confirmed: bool,
}

/// What [`save`] did.
#[derive(Debug)]
pub enum Saved {
    /// Stored as a new revision; `impact` is who was moved.
    Saved {
        impact: Option<Impact>,
    },
    Unchanged,
    Stale {
        revision: i64,
    },
    Refused(FieldErrors),
    /// The schedule changes for these people: ask before saving.
    NeedsConfirmation(Impact),
}

/// Checks a change (the content rules, the course's phase order, that it renders as a
/// mail) and stores it as a new revision, moving the due times of whoever it reaches in
/// the same transaction. `render` renders the content as the sender would.
pub async fn save(
    db: &Db,
    change: Change<'_>,
    render: impl Fn(&LessonContent) -> anyhow::Result<()>,
    view: impact::View,
) -> anyhow::Result<Saved> {
    let Change {
        course,
        lessons,
        lesson,
        base,
        content,
        author,
        note,
        confirmed,
    } = change;
    let mut errors = FieldErrors::new();
    content_errors(&content, &mut errors);
    if let Some(p) = phase_problem(
        &course.phases,
        lessons,
        Some(lesson.id),
        lesson.position,
        &content.phase,
    ) {
        errors.entry("phase".into()).or_default().push(p);
    }
    if errors.is_empty()
        && let Err(e) = render(&content)
    {
        errors
            .entry("body".into())
            .or_default()
            .push(format!("{e:#}"));
    }
    if !errors.is_empty() {
        return Ok(Saved::Refused(errors));
    }
    let schedule_changed = content.after_days != lesson.content.after_days
        || content.send_window != lesson.content.send_window;
    let impact = if schedule_changed {
        let changed = with_content(lessons, lesson.id, &content);
        let impact = impact_for_lesson(db, course, &changed, lesson.id, view).await?;
        if !confirmed {
            return Ok(Saved::NeedsConfirmation(impact));
        }
        Some(impact)
    } else {
        None
    };
    Ok(
        match revise(db, lesson, base, &content, author, note, impact.as_ref()).await? {
            Stored::Saved => Saved::Saved { impact },
            Stored::Unchanged => Saved::Unchanged,
            Stored::Stale { revision } => Saved::Stale { revision },
        },
    )
}

/// What changing the lessons to `lessons` does to the enrollments at positions
/// `[from, to)`, which must be every enrollment whose next lesson changes time.
pub(crate) async fn impact_between(
    db: &Db,
    course: &CourseRow,
    lessons: &[Lesson],
    (from, to): (i64, i64),
    view: impact::View,
) -> anyhow::Result<Impact> {
    let rows = db::stats::waiting_between(db, course.id, from, to).await?;
    let syllabus = Syllabus::new(lessons, &course.send_window, &course.phases);
    let now = Utc::now().timestamp();
    let people: Vec<i64> = rows.iter().map(|r| r.subscriber_id).collect();
    let mut taken: std::collections::HashMap<i64, Vec<chrono::DateTime<Utc>>> = Default::default();
    if !view.limit.is_unlimited() {
        let mut conn = db.pool().acquire().await?;
        // From two days back: further than any local day reaches.
        for (person, at) in
            db::deliveries::lesson_times(&mut conn, &people, now - 2 * 86_400).await?
        {
            if let Some(at) = chrono::DateTime::from_timestamp(at, 0) {
                taken.entry(person).or_default().push(at);
            }
        }
    }
    Ok(impact::compute(
        &syllabus,
        &rows,
        view.limit,
        &taken,
        now,
        view.shown_in,
    ))
}

/// The impact of `lessons` on those whose next lesson is `lesson_id` in it.
pub(crate) async fn impact_for_lesson(
    db: &Db,
    course: &CourseRow,
    lessons: &[Lesson],
    lesson_id: i64,
    view: impact::View,
) -> anyhow::Result<Impact> {
    let Some(reach) = lessons
        .iter()
        .find(|l| l.id == lesson_id)
        .and_then(|l| impact::reach(lessons, l))
    else {
        return Ok(Impact::default());
    };
    impact_between(db, course, lessons, reach, view).await
}

/// Moves the planned due times; a row that changed meanwhile keeps its new plan.
pub(crate) async fn apply_impact(tx: &mut Tx, impact: &Impact, now: i64) -> anyhow::Result<usize> {
    let mut moved = 0;
    for c in &impact.changes {
        if db::stats::reschedule(tx, c.enrollment_id, c.was, c.due, now).await? {
            moved += 1;
        }
    }
    Ok(moved)
}

/// A lesson at `position` in phase `phase`: the phase must be one the course declares, and
/// may not come before its predecessor's or after its successor's in the declared order.
pub(crate) fn phase_problem(
    phases: &Phases,
    lessons: &[Lesson],
    this: Option<i64>,
    position: i64,
    phase: &Phase,
) -> Option<String> {
    if let Err(e) = phases.check(phase) {
        return Some(e.message);
    }
    let others = || lessons.iter().filter(move |l| Some(l.id) != this);
    let before = others()
        .filter(|l| l.position < position)
        .max_by_key(|l| l.position);
    let after = others()
        .filter(|l| l.position > position)
        .min_by_key(|l| l.position);
    if let Some(b) = before.filter(|b| phases.out_of_order(&b.content.phase, phase)) {
        return Some(format!(
            "“{}” before this lesson is in phase {}; {}",
            b.content.title,
            b.content.phase.as_str(),
            phases.order_message()
        ));
    }
    if let Some(a) = after.filter(|a| phases.out_of_order(phase, &a.content.phase)) {
        return Some(format!(
            "“{}” after this lesson is in phase {}; {}",
            a.content.title,
            a.content.phase.as_str(),
            phases.order_message()
        ));
    }
    None
}

/// What differs between two versions of a lesson, by field name.
pub(crate) fn changed_fields(old: &LessonContent, new: &LessonContent) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut check = |name, differs: bool| {
        if differs {
            out.push(name);
        }
    };
    check("title", old.title != new.title);
    check("subject", old.subject != new.subject);
    check("phase", old.phase != new.phase);
    check("after_days", old.after_days != new.after_days);
    check("send_window", old.send_window != new.send_window);
    check("prompt", old.prompt != new.prompt);
    check("wait_for_reply", old.wait_for_reply != new.wait_for_reply);
    check("max_wait_days", old.max_wait_days != new.max_wait_days);
    check("body", old.body != new.body);
    out
}

/// The outcome of [`revise`]: saved as this revision, or refused with a message.
pub enum Stored {
    Saved,
    Unchanged,
    Stale { revision: i64 },
}

/// Stores `content` as the next revision of `lesson` (when it is still at `base`), and
/// moves the due times of `impact` in the same transaction.
pub(crate) async fn revise(
    db: &Db,
    lesson: &Lesson,
    base: i64,
    content: &LessonContent,
    author: &str,
    note: Option<String>,
    impact: Option<&Impact>,
) -> anyhow::Result<Stored> {
    let changed = changed_fields(&lesson.content, content);
    if changed.is_empty() {
        return Ok(Stored::Unchanged);
    }
    let now = Utc::now().timestamp();
    let mut tx = db.begin_write().await?;
    let current = db::stats::current_revision(&mut tx, lesson.id).await?;
    if current != base {
        return Ok(Stored::Stale { revision: current });
    }
    let note = note.unwrap_or_else(|| format!("changed {}", changed.join(", ")));
    let revision = current + 1;
    db::lessons::insert_revision(
        &mut tx,
        lesson.id,
        revision,
        content,
        &content.to_source(),
        author,
        &note,
        now,
    )
    .await?;
    if let Some(impact) = impact {
        apply_impact(&mut tx, impact, now).await?;
    }
    db::events::log(
        &mut tx,
        None,
        author,
        "lesson_revised",
        &json!({"lesson": lesson.slug, "revision": revision, "note": note}),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(Stored::Saved)
}

/// The lessons as they would be with `content` in place of `lesson_id`'s.
pub(crate) fn with_content(
    lessons: &[Lesson],
    lesson_id: i64,
    content: &LessonContent,
) -> Vec<Lesson> {
    let mut out = lessons.to_vec();
    if let Some(l) = out.iter_mut().find(|l| l.id == lesson_id) {
        l.content = content.clone();
    }
    out
}

/// A lesson made in the admin UI: it goes at the end of the course, as a draft, so nobody
/// receives it until it is published. Returns its slug, or the problems by field.
pub async fn create(
    db: &Db,
    course: &CourseRow,
    lessons: &[Lesson],
    slug: &str,
    content: Option<LessonContent>,
    mut errors: FieldErrors,
    author: &str,
) -> anyhow::Result<Result<crate::domain::Slug, FieldErrors>> {
    let slug = crate::domain::Slug::parse(slug.trim())
        .map_err(|e| errors.entry("slug".into()).or_default().push(e.message))
        .ok();
    if let Some(s) = &slug
        && lessons.iter().any(|l| l.slug == s.as_str())
    {
        errors
            .entry("slug".into())
            .or_default()
            .push("a lesson with this name exists".into());
    }
    let position = lessons.iter().map(|l| l.position).max().unwrap_or(0) + 1;
    if let Some(c) = &content
        && let Some(p) = phase_problem(&course.phases, lessons, None, position, &c.phase)
    {
        errors.entry("phase".into()).or_default().push(p);
    }
    let (Some(slug), Some(content), true) = (slug, content, errors.is_empty()) else {
        return Ok(Err(errors));
    };
    let now = Utc::now().timestamp();
    let mut tx = db.begin_write().await?;
    let position = db::stats::max_position(&mut tx, course.id).await? + 1;
    let file_name = file_name(position, slug.as_str());
    let new = db::lessons::NewLesson {
        course_id: course.id,
        slug: slug.as_str(),
        position,
        status: crate::domain::LessonStatus::Draft,
        file_name: &file_name,
        content: &content,
        source: &content.to_source(),
        author,
    };
    db::lessons::insert(&mut tx, &new, now).await?;
    db::events::log(
        &mut tx,
        None,
        author,
        "lesson_created",
        &json!({"lesson": slug.as_str()}),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(Ok(slug))
}

/// A lesson's file name: its position, two digits at least, and its slug.
pub fn file_name(position: i64, slug: &str) -> String {
    format!("{position:02}-{slug}.md")
}

/// Why a lesson cannot move.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoveRefused {
    #[error("This lesson is already at that end of the course.")]
    AtTheEnd,
    #[error(
        "“{0}” and “{1}” are in different phases; {2}. Change the lesson's phase in the editor first."
    )]
    OtherPhase(String, String, String),
}

/// Swapping a lesson with its neighbour, worked out before it is confirmed.
#[derive(Debug)]
pub(crate) struct Swap {
    pub earlier: Lesson,
    pub later: Lesson,
    /// Whose due time moves.
    pub impact: Impact,
    /// How many are between the two and skip the one moved before them.
    pub skipping: usize,
}

/// Plans moving `lesson` one place `up` (or down). Progress is stored as "position of the
/// last lesson queued", so the enrollments between the two positions are remapped when it
/// is applied: whoever already had the earlier lesson keeps having had it (and skips the
/// one moved before it: a lesson is never sent twice); whoever had neither gets both in the
/// new order.
pub(crate) async fn plan_swap(
    db: &Db,
    course: &CourseRow,
    lessons: &[Lesson],
    lesson: &Lesson,
    up: bool,
    view: impact::View,
) -> anyhow::Result<Result<Swap, MoveRefused>> {
    let i = lessons.iter().position(|l| l.id == lesson.id).unwrap_or(0);
    let j = match (up, i) {
        (true, i) if i > 0 => i - 1,
        (false, i) if i + 1 < lessons.len() => i + 1,
        _ => return Ok(Err(MoveRefused::AtTheEnd)),
    };
    let (earlier, later) = (&lessons[i.min(j)], &lessons[i.max(j)]);
    if earlier.content.phase != later.content.phase {
        return Ok(Err(MoveRefused::OtherPhase(
            lesson.content.title.clone(),
            lessons[j].content.title.clone(),
            course.phases.order_message(),
        )));
    }
    let (a, b) = (earlier.position, later.position);
    let mut reordered = lessons.to_vec();
    for l in reordered.iter_mut() {
        if l.id == earlier.id {
            l.position = b;
        } else if l.id == later.id {
            l.position = a;
        }
    }
    reordered.sort_by_key(|l| l.position);
    let from = lessons
        .iter()
        .filter(|l| l.is_published() && l.position < a)
        .map(|l| l.position)
        .max()
        .unwrap_or(0);
    let impact = impact_between(db, course, &reordered, (from, a), view).await?;
    let skipping = db::stats::waiting_between(db, course.id, a, a + 1)
        .await?
        .len();
    Ok(Ok(Swap {
        earlier: earlier.clone(),
        later: later.clone(),
        impact,
        skipping,
    }))
}

/// Applies a confirmed swap: positions, file names, progress and due times together.
pub(crate) async fn apply_swap(
    db: &Db,
    course: &CourseRow,
    swap: &Swap,
    author: &str,
    moved: &str,
) -> anyhow::Result<()> {
    let (a, b) = (swap.earlier.position, swap.later.position);
    let now = Utc::now().timestamp();
    let mut tx = db.begin_write().await?;
    db::lessons::set_position(
        &mut tx,
        swap.earlier.id,
        b,
        &file_name(b, &swap.earlier.slug),
    )
    .await?;
    db::lessons::set_position(&mut tx, swap.later.id, a, &file_name(a, &swap.later.slug)).await?;
    db::stats::remap_positions(&mut tx, course.id, a, b).await?;
    apply_impact(&mut tx, &swap.impact, now).await?;
    db::events::log(
        &mut tx,
        None,
        author,
        "lesson_moved",
        &json!({"lesson": moved, "to": if moved == swap.earlier.slug { b } else { a }}),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Publishes or unpublishes a lesson. The scheduler steps over drafts, so unpublishing
/// never strands anyone.
pub(crate) async fn set_status(
    db: &Db,
    lesson: &Lesson,
    status: crate::domain::LessonStatus,
    author: &str,
) -> anyhow::Result<()> {
    let now = Utc::now().timestamp();
    let mut tx = db.begin_write().await?;
    db::stats::set_lesson_status(&mut tx, lesson.id, status).await?;
    db::events::log(
        &mut tx,
        None,
        author,
        "lesson_status",
        &json!({"lesson": lesson.slug, "status": status}),
        now,
    )
    .await?;
    if status == crate::domain::LessonStatus::Published {
        // An evergreen course's lesson published late reaches those who had finished.
        crate::subscriptions::release_caught_up(&mut tx, lesson.course_id, Utc::now()).await?;
    }
    tx.commit().await?;
    Ok(())
}
