//! A course's lessons seen by the schedule: which lesson comes next and when it is due.

use std::borrow::Cow;

use chrono::{DateTime, Utc};

use super::window::{due_after, next_window};
use crate::curriculum::LessonContent;
use crate::db::lessons::Lesson;
use crate::domain::{Pace, Phases, SendWindow, Timezone};
use crate::render::LessonVars;

/// The lessons of one course in position order (drafts included: they are stepped over),
/// with the course's window (or the subscriber's own pacing in its place) and phases.
#[derive(Debug, Clone)]
pub struct Syllabus<'a> {
    lessons: &'a [Lesson],
    window: Cow<'a, SendWindow>,
    phases: &'a Phases,
}

/// The next published lesson after `position` in `lessons` (drafts are stepped over): what
/// the scheduler's pass enqueues, which needs no window.
pub fn next_published(lessons: &[Lesson], position: i64) -> Option<&Lesson> {
    lessons
        .iter()
        .filter(|l| l.is_published() && l.position > position)
        .min_by_key(|l| l.position)
}

/// When the lesson after one just sent is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AfterSend {
    /// None: nothing is planned by time (waiting for a reply with no time limit).
    pub due: Option<DateTime<Utc>>,
    /// The next lesson is held until this one is answered (or `due`, if any, passes).
    pub waiting_reply: bool,
}

impl<'a> Syllabus<'a> {
    pub fn new(lessons: &'a [Lesson], window: &'a SendWindow, phases: &'a Phases) -> Self {
        Syllabus {
            lessons,
            window: Cow::Borrowed(window),
            phases,
        }
    }

    /// The syllabus one subscriber follows: their own pacing, when they chose one, in place
    /// of the course's window (a lesson's own window still applies to it).
    pub fn paced(self, pace: Option<Pace>) -> Self {
        match pace {
            Some(p) => Syllabus {
                window: Cow::Owned(p.window()),
                ..self
            },
            None => self,
        }
    }

    pub fn lessons(&self) -> &'a [Lesson] {
        self.lessons
    }

    /// The next published lesson after `position` (drafts are stepped over).
    pub(crate) fn next_after(&self, position: i64) -> Option<&'a Lesson> {
        next_published(self.lessons, position)
    }

    pub fn at(&self, position: i64) -> Option<&'a Lesson> {
        self.lessons.iter().find(|l| l.position == position)
    }

    /// The window `lesson` is sent in: its own, else the subscriber's or the course's.
    pub(crate) fn window_of<'s>(&'s self, lesson: &'s Lesson) -> &'s SendWindow {
        lesson.content.send_window.as_ref().unwrap_or(&self.window)
    }

    /// When `lesson` falls due counting from `previous` (the previous send, or the
    /// confirmation for the first lesson).
    fn due_from(&self, lesson: &'a Lesson, previous: DateTime<Utc>, tz: Timezone) -> DateTime<Utc> {
        due_after(
            self.window_of(lesson),
            lesson.content.after_days,
            previous,
            tz.tz(),
        )
    }

    /// When the first lesson is due for someone confirming at `confirmed`; with no
    /// published lesson, at once (the next pass finds nothing and completes them).
    pub(crate) fn first_due(&self, confirmed: DateTime<Utc>, tz: Timezone) -> DateTime<Utc> {
        self.next_after(0)
            .map_or(confirmed, |l| self.due_from(l, confirmed, tz))
    }

    /// Where someone at `position` picks up at `now` (resumed, re-enrolled, moved by an
    /// admin): the next window of their next lesson, with no burst of what they missed.
    pub(crate) fn resume_due(
        &self,
        position: i64,
        now: DateTime<Utc>,
        tz: Timezone,
    ) -> DateTime<Utc> {
        self.next_after(position)
            .map_or(now, |l| next_window(self.window_of(l), now, tz.tz()))
    }

    /// When the lesson after `sent` is due, sent at `sent_at`, and whether it waits for a
    /// reply. With nothing left, due at once so the next pass completes the enrollment.
    pub(crate) fn after_send(
        &self,
        sent: &Lesson,
        sent_at: DateTime<Utc>,
        tz: Timezone,
    ) -> AfterSend {
        let Some(next) = self.next_after(sent.position) else {
            return AfterSend {
                due: Some(sent_at),
                waiting_reply: false,
            };
        };
        if sent.content.wait_for_reply {
            let due = sent.content.max_wait_days.map(|wait| {
                let days = next.content.after_days.max(wait);
                due_after(self.window_of(next), days, sent_at, tz.tz())
            });
            return AfterSend {
                due,
                waiting_reply: true,
            };
        }
        AfterSend {
            due: Some(self.due_from(next, sent_at, tz)),
            waiting_reply: false,
        }
    }

    /// When the lesson after `answered` is due once the reply it waited for arrived at
    /// `replied_at`: its usual time, or the next window after the reply if that is later.
    pub(crate) fn after_reply(
        &self,
        answered: &Lesson,
        sent_at: DateTime<Utc>,
        replied_at: DateTime<Utc>,
        tz: Timezone,
    ) -> Option<DateTime<Utc>> {
        let next = self.next_after(answered.position)?;
        let usual = self.due_from(next, sent_at, tz);
        let after_reply = next_window(self.window_of(next), replied_at, tz.tz());
        Some(usual.max(after_reply))
    }

    /// The next lesson's due time for someone at `position` whose last lesson went out at
    /// `last_sent` (or who confirmed then), re-read in `tz`; never before `now`.
    pub(crate) fn replan(
        &self,
        position: i64,
        last_sent: DateTime<Utc>,
        now: DateTime<Utc>,
        tz: Timezone,
    ) -> Option<DateTime<Utc>> {
        let next = self.next_after(position)?;
        Some(self.due_from(next, last_sent, tz).max(now))
    }

    /// "Lesson 3 of 18": a published lesson's place among the published ones; a draft
    /// (previewed before publishing) is numbered where it would stand once published.
    pub(crate) fn number_of(&self, lesson_id: i64, position: i64) -> (usize, usize) {
        let published = self.lessons.iter().filter(|l| l.is_published());
        let before = published
            .clone()
            .filter(|l| l.position < position && l.id != lesson_id)
            .count();
        let total = published.clone().count();
        let is_published = published.clone().any(|l| l.id == lesson_id);
        (before + 1, if is_published { total } else { total + 1 })
    }

    /// The variables a lesson mail shows about the lesson itself: the sender's, and the
    /// admin's and the CLI's previews (of the stored content or of an edit not yet saved).
    pub fn lesson_vars(
        &self,
        lesson_id: i64,
        position: i64,
        content: &LessonContent,
    ) -> LessonVars {
        let (number, of) = self.number_of(lesson_id, position);
        let phase = &content.phase;
        LessonVars {
            title: content.title.clone(),
            number,
            of,
            phase: self
                .phases
                .get(phase)
                .map_or_else(|| phase.as_str().to_owned(), |p| p.title.clone()),
        }
    }
}
