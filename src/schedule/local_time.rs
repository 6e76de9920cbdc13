//! When a broadcast sent "at HH:MM local time" reaches each reader: the same wall-clock time
//! on every reader's own clock, with the window math's daylight-saving rule (a time that does
//! not exist that day moves forward by the jump; a repeated one is taken once).

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;

use super::window::{local_date, resolve_local};

/// The earliest time zone there is (UTC+14): a dated local send starts there.
pub const EARLIEST: Tz = Tz::Etc__GMTMinus14;

/// `time` on `date` on the clock of `tz`.
pub fn on_date(date: NaiveDate, time: NaiveTime, tz: Tz) -> DateTime<Utc> {
    resolve_local(tz, date.and_time(time))
}

/// The first `time` on the clock of `tz` at or after `after`.
pub fn next(time: NaiveTime, tz: Tz, after: DateTime<Utc>) -> DateTime<Utc> {
    let today = local_date(tz, after);
    let at = on_date(today, time, tz);
    if at >= after {
        at
    } else {
        on_date(today + Duration::days(1), time, tz)
    }
}

/// The same wall-clock time as `t` on the clock of `tz`, `days` later.
pub fn shifted(t: DateTime<Utc>, tz: Tz, days: i64) -> DateTime<Utc> {
    resolve_local(
        tz,
        t.with_timezone(&tz).naive_local() + Duration::days(days),
    )
}

/// The local day of `t` in `tz`, as the instants it starts and ends at.
pub fn day_bounds(t: DateTime<Utc>, tz: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
    let day = local_date(tz, t);
    let start = resolve_local(tz, day.and_time(NaiveTime::MIN));
    let end = resolve_local(tz, (day + Duration::days(1)).and_time(NaiveTime::MIN));
    (start, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_same_hour_on_every_clock() {
        let nine = NaiveTime::from_hms_opt(9, 0, 0).unwrap();
        let date = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        assert_eq!(
            on_date(date, nine, chrono_tz::Asia::Tokyo),
            utc("2026-12-07T00:00:00Z")
        );
        assert_eq!(
            on_date(date, nine, chrono_tz::Europe::Paris),
            utc("2026-12-07T08:00:00Z")
        );
        assert_eq!(
            on_date(date, nine, chrono_tz::America::New_York),
            utc("2026-12-07T14:00:00Z")
        );
        // The earliest zone's 09:00 comes before everyone else's.
        assert_eq!(on_date(date, nine, EARLIEST), utc("2026-12-06T19:00:00Z"));
    }

    #[test]
    fn next_is_today_if_still_ahead_else_tomorrow() {
        let nine = NaiveTime::from_hms_opt(9, 0, 0).unwrap();
        let paris = chrono_tz::Europe::Paris;
        assert_eq!(
            next(nine, paris, utc("2026-12-07T07:00:00Z")),
            utc("2026-12-07T08:00:00Z")
        );
        assert_eq!(
            next(nine, paris, utc("2026-12-07T08:00:00Z")),
            utc("2026-12-07T08:00:00Z")
        );
        assert_eq!(
            next(nine, paris, utc("2026-12-07T09:00:00Z")),
            utc("2026-12-08T08:00:00Z")
        );
    }

    #[test]
    fn a_time_in_the_spring_gap_moves_forward_by_the_jump() {
        let half_two = NaiveTime::from_hms_opt(2, 30, 0).unwrap();
        let date = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap();
        // 02:30 does not exist in Paris that day; 03:30 CEST is 01:30 UTC.
        assert_eq!(
            on_date(date, half_two, chrono_tz::Europe::Paris),
            utc("2026-03-29T01:30:00Z")
        );
        let (start, end) = day_bounds(utc("2026-03-29T12:00:00Z"), chrono_tz::Europe::Paris);
        assert_eq!(end - start, Duration::hours(23));
    }
}
