//! The window math: when a lesson with a given window and `after_days` falls due, read in
//! the subscriber's time zone.
//!
//! The rule (DESIGN.md, made precise): a lesson with `after_days = N` is due at the first
//! occurrence of its window at or after the start of the local day N days after the previous
//! lesson was sent (for N = 0: at or after that moment). Counting whole local days means a
//! send that runs a few seconds late never pushes the next lesson a day later. `immediate`
//! means N local days after the previous send, at the same wall-clock time.
//!
//! Windows are evaluated on local wall-clock time and only then turned into instants, which
//! is what keeps daylight-saving changes from skipping or doubling a lesson: a window time
//! that does not exist that day (02:30 when clocks jump from 02:00 to 03:00) moves forward
//! by the jump, and one that exists twice (the hour repeated in autumn) is taken once, at its
//! first occurrence. Every function takes `now` or a base time: nothing reads the clock.

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::domain::{SendWindow, WindowKind};

/// The first occurrence of `window` at or after the local wall-clock time `local`.
fn first_at_or_after(window: &SendWindow, local: NaiveDateTime) -> Option<NaiveDateTime> {
    match window.kind() {
        WindowKind::Immediate => Some(local),
        WindowKind::Cron(schedule) => {
            // cron iterates strictly after its start; the wall clock is fed to it as if it
            // were UTC, so no time zone rule can interfere with the search.
            let start = Utc.from_utc_datetime(&(local - Duration::seconds(1)));
            schedule.after(&start).next().map(|dt| dt.naive_utc())
        }
    }
}

/// The instant a local wall-clock time names in `tz`: gaps move forward by the jump, repeated
/// times take their first occurrence.
pub(crate) fn resolve_local(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        LocalResult::None => {
            // Find the jump's size by comparing the offsets either side of the gap.
            let before = tz.offset_from_utc_datetime(&(local - Duration::hours(12)));
            let after = tz.offset_from_utc_datetime(&(local + Duration::hours(12)));
            use chrono::Offset;
            let jump = after.fix().local_minus_utc() - before.fix().local_minus_utc();
            let shifted = local + Duration::seconds(i64::from(jump.max(0)));
            match tz.from_local_datetime(&shifted) {
                LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.with_timezone(&Utc),
                // Not reachable with real tz data; fall back to reading the time as UTC.
                LocalResult::None => Utc.from_utc_datetime(&local),
            }
        }
    }
}

pub(crate) fn local_date(tz: Tz, t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&tz).date_naive()
}

/// When a lesson is due, given when the previous one was sent (or the confirmation time).
pub(crate) fn due_after(
    window: &SendWindow,
    after_days: u32,
    previous: DateTime<Utc>,
    tz: Tz,
) -> DateTime<Utc> {
    let days = Duration::days(i64::from(after_days));
    let base_local = match (window.kind(), after_days) {
        (_, 0) => previous.with_timezone(&tz).naive_local(),
        (WindowKind::Immediate, _) => previous.with_timezone(&tz).naive_local() + days,
        (WindowKind::Cron(_), _) => (local_date(tz, previous) + days).and_time(NaiveTime::MIN),
    };
    let local = first_at_or_after(window, base_local).unwrap_or(base_local);
    let due = resolve_local(tz, local);
    // A window time in a gap can resolve to just before the base instant for after_days = 0;
    // a lesson is never due before the moment it is planned from.
    if after_days == 0 {
        due.max(previous)
    } else {
        due
    }
}

/// The first window occurrence at or after `now`: where a resumed subscriber picks up, with
/// no burst of the lessons they missed while paused.
pub(crate) fn next_window(window: &SendWindow, now: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
    due_after(window, 0, now, tz)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Timelike;

    fn cron(expr: &str) -> SendWindow {
        SendWindow::parse(expr).unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn local(t: DateTime<Utc>, tz: Tz) -> String {
        t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string()
    }

    #[test]
    fn a_day_later_at_the_window_even_when_the_send_ran_late() {
        let tz: Tz = "Europe/Paris".parse().unwrap();
        let sent = utc("2024-03-05T07:00:05Z"); // 08:00:05 in Paris, five seconds late
        let due = due_after(&cron("0 0 8 * * *"), 1, sent, tz);
        assert_eq!(local(due, tz), "2024-03-06 08:00 CET");
    }

    #[test]
    fn after_days_zero_waits_for_the_next_window() {
        let tz: Tz = "America/New_York".parse().unwrap();
        let confirmed = utc("2024-06-01T23:30:00Z"); // 19:30 local
        assert_eq!(
            local(due_after(&cron("0 0 8 * * *"), 0, confirmed, tz), tz),
            "2024-06-02 08:00 EDT"
        );
        assert_eq!(
            due_after(&SendWindow::parse("immediate").unwrap(), 0, confirmed, tz),
            confirmed
        );
    }

    #[test]
    fn immediate_with_days_keeps_the_wall_clock_time() {
        let tz: Tz = "Europe/Paris".parse().unwrap();
        // 30 March 2024 12:00 CET + 1 day is 31 March 12:00 CEST: 23 hours later.
        let sent = utc("2024-03-30T11:00:00Z");
        let due = due_after(&SendWindow::parse("immediate").unwrap(), 1, sent, tz);
        assert_eq!(local(due, tz), "2024-03-31 12:00 CEST");
        assert_eq!(due - sent, Duration::hours(23));
    }

    #[test]
    fn a_window_in_the_spring_gap_moves_forward_not_a_day() {
        let tz: Tz = "Europe/Paris".parse().unwrap();
        // On 31 March 2024 Paris jumps from 02:00 to 03:00; 02:30 does not exist.
        let sent = utc("2024-03-30T01:30:00Z"); // 02:30 CET on the 30th
        let due = due_after(&cron("0 30 2 * * *"), 1, sent, tz);
        assert_eq!(local(due, tz), "2024-03-31 03:30 CEST");
        let after = due_after(&cron("0 30 2 * * *"), 1, due, tz);
        assert_eq!(local(after, tz), "2024-04-01 02:30 CEST");
    }

    #[test]
    fn a_repeated_autumn_hour_is_taken_once() {
        let tz: Tz = "America/New_York".parse().unwrap();
        // On 3 November 2024 New York repeats 01:00-02:00.
        let sent = utc("2024-11-02T05:30:00Z"); // 01:30 EDT on the 2nd
        let due = due_after(&cron("0 30 1 * * *"), 1, sent, tz);
        assert_eq!(due, utc("2024-11-03T05:30:00Z")); // the first 01:30 (EDT)
        let next = due_after(&cron("0 30 1 * * *"), 1, due, tz);
        assert_eq!(local(next, tz), "2024-11-04 01:30 EST");
        // The second 01:30 (EST) is not a new day: after_days = 0 from the first one finds
        // the next day's window, never the same wall-clock time again.
        let same_day = due_after(&cron("0 30 1 * * *"), 0, due + Duration::minutes(1), tz);
        assert_eq!(local(same_day, tz), "2024-11-04 01:30 EST");
    }

    #[test]
    fn every_day_across_both_changes_gets_exactly_one_lesson() {
        for (zone, start) in [
            ("Europe/Paris", "2024-03-20T07:00:00Z"),
            ("Europe/Paris", "2024-10-20T06:00:00Z"),
            ("America/New_York", "2024-03-01T13:00:00Z"),
            ("America/New_York", "2024-10-28T12:00:00Z"),
            ("Pacific/Auckland", "2024-03-30T19:00:00Z"),
            ("Pacific/Auckland", "2024-09-22T20:00:00Z"),
        ] {
            let tz: Tz = zone.parse().unwrap();
            for window in ["0 0 8 * * *", "0 30 2 * * *", "0 30 1 * * *"] {
                let w = cron(window);
                let mut t = due_after(&w, 0, utc(start), tz);
                let mut dates = vec![local_date(tz, t)];
                for _ in 0..20 {
                    t = due_after(&w, 1, t, tz);
                    dates.push(local_date(tz, t));
                }
                for pair in dates.windows(2) {
                    assert_eq!(
                        pair[1] - pair[0],
                        Duration::days(1),
                        "{zone} {window}: {dates:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn auckland_mornings_stay_at_eight() {
        let tz: Tz = "Pacific/Auckland".parse().unwrap();
        // Auckland leaves daylight time on 7 April 2024.
        let mut t = utc("2024-04-04T19:00:00Z"); // 8:00 NZDT on the 5th
        for _ in 0..5 {
            t = due_after(&cron("0 0 8 * * *"), 1, t, tz);
            assert_eq!(t.with_timezone(&tz).hour(), 8);
        }
    }

    #[test]
    fn weekday_windows_skip_the_weekend() {
        let tz: Tz = "UTC".parse().unwrap();
        let friday = utc("2024-06-07T09:00:00Z");
        let due = due_after(&cron("0 0 9 * * Mon-Fri"), 1, friday, tz);
        assert_eq!(due, utc("2024-06-10T09:00:00Z"));
    }

    #[test]
    fn next_window_for_a_resumed_subscriber() {
        let tz: Tz = "UTC".parse().unwrap();
        assert_eq!(
            next_window(&cron("0 0 8 * * *"), utc("2024-06-07T09:00:00Z"), tz),
            utc("2024-06-08T08:00:00Z")
        );
        assert_eq!(
            next_window(&cron("0 0 8 * * *"), utc("2024-06-07T08:00:00Z"), tz),
            utc("2024-06-07T08:00:00Z")
        );
    }
}
