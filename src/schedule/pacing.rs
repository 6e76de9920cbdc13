//! Pacing across courses: at most `[schedule] max_lessons_per_day` lessons on one local day
//! per person, whatever course they come from. A lesson that would break the limit moves to
//! its window on the next day that has room.
//!
//! The scheduler asks [`DailyLimit::place`] when an enrollment falls due, with the times of
//! the person's other lessons around then; `drip simulate` asks it for every lesson it lays
//! out, so the two cannot disagree.

use chrono::{DateTime, Duration, NaiveTime, Utc};
use chrono_tz::Tz;

use super::window::{due_after, local_date, resolve_local};
use crate::domain::{SendWindow, WindowKind};

/// How far ahead a lesson is moved at most: a year of full days is a bug, not a schedule.
const MAX_DAYS_AHEAD: u32 = 366;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DailyLimit {
    per_day: u32,
}

impl DailyLimit {
    /// `per_day = 0`: no limit.
    pub fn new(per_day: u32) -> DailyLimit {
        DailyLimit { per_day }
    }

    pub fn is_unlimited(self) -> bool {
        self.per_day == 0
    }

    /// When a lesson due at `due`, sent in `window`, goes out for a person in `tz` whose
    /// other lessons go (or went) out at `taken`: `due` itself if its local day has room,
    /// else the window's first occurrence on the next local day that has room. An
    /// `immediate` window keeps the wall-clock time of `due` on that day.
    pub fn place(
        self,
        due: DateTime<Utc>,
        window: &SendWindow,
        tz: Tz,
        taken: &[DateTime<Utc>],
    ) -> DateTime<Utc> {
        if self.is_unlimited() {
            return due;
        }
        let mut at = due;
        for _ in 0..MAX_DAYS_AHEAD {
            let day = local_date(tz, at);
            let on_day = taken.iter().filter(|t| local_date(tz, **t) == day).count();
            if on_day < self.per_day as usize {
                return at;
            }
            at = match window.kind() {
                WindowKind::Cron(_) => {
                    let next_day =
                        resolve_local(tz, (day + Duration::days(1)).and_time(NaiveTime::MIN));
                    due_after(window, 0, next_day, tz)
                }
                WindowKind::Immediate => due_after(window, 1, at, tz),
            };
        }
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn cron(expr: &str) -> SendWindow {
        SendWindow::parse(expr).unwrap()
    }

    #[test]
    fn a_day_with_room_keeps_the_due_time() {
        let tz: Tz = "Europe/Paris".parse().unwrap();
        let due = utc("2026-03-02T08:00:00Z");
        let taken = [utc("2026-03-01T08:00:00Z")];
        assert_eq!(
            DailyLimit::new(1).place(due, &cron("0 0 9 * * *"), tz, &taken),
            due
        );
    }

    #[test]
    fn a_full_day_moves_the_lesson_to_its_window_on_the_next_free_day() {
        let tz: Tz = "Europe/Paris".parse().unwrap();
        // 09:00 and 10:00 Paris on 2 March are taken, and 09:00 on the 3rd.
        let taken = [
            utc("2026-03-02T08:00:00Z"),
            utc("2026-03-02T09:00:00Z"),
            utc("2026-03-03T08:00:00Z"),
        ];
        let due = utc("2026-03-02T17:00:00Z");
        let placed = DailyLimit::new(1).place(due, &cron("0 30 7 * * *"), tz, &taken);
        assert_eq!(
            placed,
            utc("2026-03-04T06:30:00Z"),
            "07:30 Paris on the 4th"
        );
        let placed = DailyLimit::new(2).place(due, &cron("0 30 7 * * *"), tz, &taken);
        assert_eq!(
            placed,
            utc("2026-03-03T06:30:00Z"),
            "a limit of two fits the 3rd"
        );
        assert_eq!(
            DailyLimit::new(0).place(due, &cron("0 30 7 * * *"), tz, &taken),
            due
        );
    }

    #[test]
    fn the_day_is_the_subscribers_local_day() {
        // 23:30 in New York on the 2nd is the 3rd in UTC: the lesson at 08:00 New York on
        // the 2nd fills the 2nd, so an evening lesson that day moves, whatever UTC says.
        let tz: Tz = "America/New_York".parse().unwrap();
        let taken = [utc("2026-03-02T13:00:00Z")];
        let due = utc("2026-03-03T04:30:00Z");
        let placed = DailyLimit::new(1).place(due, &cron("0 0 8 * * *"), tz, &taken);
        assert_eq!(
            placed,
            utc("2026-03-03T13:00:00Z"),
            "08:00 New York on the 3rd"
        );
    }

    #[test]
    fn an_immediate_lesson_keeps_its_time_of_day() {
        let tz: Tz = "UTC".parse().unwrap();
        let taken = [utc("2026-03-02T08:00:00Z")];
        let due = utc("2026-03-02T15:20:00Z");
        let placed = DailyLimit::new(1).place(due, &cron("immediate"), tz, &taken);
        assert_eq!(placed, utc("2026-03-03T15:20:00Z"));
    }
}
