//! Time as the seeds express it: microseconds since the Unix epoch, UTC.
//!
//! Calendar arithmetic (adding months, the weekday of a day) is done here with the civil-date
//! algorithms of Howard Hinnant ("chrono-compatible low-level date algorithms"), which are exact
//! for the proleptic Gregorian calendar: a few lines instead of a date-time dependency.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A point in time: microseconds since 1970-01-01T00:00:00Z.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
pub struct Usecs(pub i64);

pub const MINUTE: i64 = 60_000_000;
pub const HOUR: i64 = 60 * MINUTE;
pub const DAY: i64 = 24 * HOUR;
pub const WEEK: i64 = 7 * DAY;

/// The units of schedules and retentions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TimeUnit {
    Minutes,
    Hours,
    Days,
    Weeks,
    Months,
    Years,
}

impl fmt::Display for TimeUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Weekday {
    Sunday,
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
}

impl Weekday {
    pub const ALL: [Weekday; 7] = [
        Self::Sunday,
        Self::Monday,
        Self::Tuesday,
        Self::Wednesday,
        Self::Thursday,
        Self::Friday,
        Self::Saturday,
    ];
}

/// A time of day, UTC (the seeds' `{hour, minute}`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
pub struct TimeOfDay {
    pub hour: u8,
    pub minute: u8,
}

impl TimeOfDay {
    pub const MIDNIGHT: Self = Self { hour: 0, minute: 0 };

    /// `None` unless `hour < 24` and `minute < 60`.
    pub fn new(hour: u8, minute: u8) -> Option<Self> {
        (hour < 24 && minute < 60).then_some(Self { hour, minute })
    }

    /// Minutes since midnight.
    pub fn minutes(self) -> i64 {
        i64::from(self.hour) * 60 + i64::from(self.minute)
    }
}

/// Days since 1970-01-01 of a civil date (month 1..=12, day 1..=31).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date (year, month 1..=12, day 1..=31) of a day since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    let next = if month == 12 {
        days_from_civil(year + 1, 1, 1)
    } else {
        days_from_civil(year, month + 1, 1)
    };
    (next - days_from_civil(year, month, 1)) as u32
}

impl Usecs {
    pub const ZERO: Self = Self(0);
    pub const MAX: Self = Self(i64::MAX);

    /// Days since the epoch (floor) and the microseconds into that day.
    fn split_day(self) -> (i64, i64) {
        (self.0.div_euclid(DAY), self.0.rem_euclid(DAY))
    }

    /// This instant plus `n` units. Months and years keep the time of day and clamp the day of
    /// the month (Jan 31 + 1 month = Feb 28 or 29). Saturates instead of overflowing.
    #[must_use]
    pub fn plus(self, unit: TimeUnit, n: u32) -> Self {
        let n = i64::from(n);
        let fixed = |step: i64| Self(self.0.saturating_add(step.saturating_mul(n)));
        match unit {
            TimeUnit::Minutes => fixed(MINUTE),
            TimeUnit::Hours => fixed(HOUR),
            TimeUnit::Days => fixed(DAY),
            TimeUnit::Weeks => fixed(WEEK),
            TimeUnit::Months => self.plus_months(n),
            TimeUnit::Years => self.plus_months(n.saturating_mul(12)),
        }
    }

    fn plus_months(self, months: i64) -> Self {
        let (days, into_day) = self.split_day();
        let (year, month, day) = civil_from_days(days);
        let Some(index) = (year * 12 + i64::from(month) - 1).checked_add(months) else {
            return Self::MAX;
        };
        if index > 100_000 * 12 {
            return Self::MAX; // beyond any retention anyone means; avoids overflow below
        }
        let (year, month) = (index.div_euclid(12), index.rem_euclid(12) as u32 + 1);
        let day = day.min(days_in_month(year, month));
        Self(days_from_civil(year, month, day) * DAY + into_day)
    }

    /// The weekday of this instant (UTC).
    pub fn weekday(self) -> Weekday {
        // 1970-01-01 was a Thursday.
        Weekday::ALL[(self.split_day().0 + 4).rem_euclid(7) as usize]
    }

    /// Minutes since midnight (UTC).
    pub fn minute_of_day(self) -> i64 {
        self.split_day().1 / MINUTE
    }

    /// The start (midnight UTC) of this instant's day.
    #[must_use]
    pub fn start_of_day(self) -> Self {
        Self(self.split_day().0 * DAY)
    }

    /// The index of the calendar period of `n` units holding this instant, counted from the
    /// epoch: two instants share a period exactly when their indexes are equal. Weeks start on
    /// Sunday; months and years are calendar months and years.
    pub fn period(self, unit: TimeUnit, n: u32) -> i64 {
        let n = i64::from(n.max(1));
        let (days, _) = self.split_day();
        let count = match unit {
            TimeUnit::Minutes => self.0.div_euclid(MINUTE),
            TimeUnit::Hours => self.0.div_euclid(HOUR),
            TimeUnit::Days => days,
            // Day 3 after the epoch (1970-01-04) was a Sunday.
            TimeUnit::Weeks => (days - 3).div_euclid(7),
            TimeUnit::Months => {
                let (y, m, _) = civil_from_days(days);
                y * 12 + i64::from(m) - 1
            }
            TimeUnit::Years => civil_from_days(days).0,
        };
        count.div_euclid(n)
    }

    /// The instant `date`-`time`, UTC (for tests and the CLI): `None` for an invalid date.
    pub fn from_civil(year: i64, month: u32, day: u32, time: TimeOfDay) -> Option<Self> {
        ((1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month))
            .then(|| Self(days_from_civil(year, month, day) * DAY + time.minutes() * MINUTE))
    }
}

impl std::str::FromStr for Usecs {
    type Err = String;

    /// What [`Display`](fmt::Display) writes (`2026-11-23T07:45:00Z`), shorter forms of it
    /// (`2026-11-23`, `2026-11-23 07:45`), or a number of microseconds since the epoch.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("not a time: {s:?} (use 2026-11-23T07:45:00Z or microseconds)");
        if let Ok(us) = s.parse::<i64>() {
            return Ok(Self(us));
        }
        let s_trim = s.trim().trim_end_matches('Z');
        let (date, time) = s_trim.split_once(['T', ' ']).unwrap_or((s_trim, "00:00"));
        let num = |part: Option<&str>| part.and_then(|p| p.parse::<u32>().ok()).ok_or_else(bad);
        let mut d = date.splitn(3, '-');
        let (year, month, day) = (num(d.next())?, num(d.next())?, num(d.next())?);
        let mut t = time.splitn(3, ':');
        let (hour, minute) = (num(t.next())?, num(t.next())?);
        let second = t.next().map_or(Ok(0), |p| num(Some(p)))?;
        if second >= 60 {
            return Err(bad());
        }
        let tod = u8::try_from(hour)
            .ok()
            .zip(u8::try_from(minute).ok())
            .and_then(|(h, m)| TimeOfDay::new(h, m))
            .ok_or_else(bad)?;
        let midnight = Self::from_civil(i64::from(year), month, day, tod).ok_or_else(bad)?;
        Ok(Self(midnight.0 + i64::from(second) * 1_000_000))
    }
}

impl fmt::Display for Usecs {
    /// ISO 8601, UTC, to the second.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (days, into_day) = self.split_day();
        let (y, m, d) = civil_from_days(days);
        let secs = into_day / 1_000_000;
        write!(f, "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i64, m: u32, d: u32, h: u8, min: u8) -> Usecs {
        Usecs::from_civil(y, m, d, TimeOfDay::new(h, min).expect("time")).expect("date")
    }

    #[test]
    fn civil_dates_round_trip_across_eras() {
        for days in (-800_000..800_000).step_by(97) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(at(1970, 1, 1, 0, 0), Usecs::ZERO);
        assert_eq!(at(2000, 3, 1, 0, 0).to_string(), "2000-03-01T00:00:00Z");
    }

    #[test]
    fn months_clamp_to_the_end_of_the_month() {
        assert_eq!(at(2024, 1, 31, 10, 5).plus(TimeUnit::Months, 1), at(2024, 2, 29, 10, 5));
        assert_eq!(at(2023, 1, 31, 10, 5).plus(TimeUnit::Months, 1), at(2023, 2, 28, 10, 5));
        assert_eq!(at(2024, 2, 29, 0, 0).plus(TimeUnit::Years, 1), at(2025, 2, 28, 0, 0));
        assert_eq!(at(2024, 11, 15, 0, 0).plus(TimeUnit::Months, 3), at(2025, 2, 15, 0, 0));
        assert_eq!(at(2024, 1, 1, 0, 0).plus(TimeUnit::Weeks, 2), at(2024, 1, 15, 0, 0));
        assert_eq!(Usecs::MAX.plus(TimeUnit::Days, 5), Usecs::MAX);
        assert_eq!(at(2024, 1, 1, 0, 0).plus(TimeUnit::Years, u32::MAX), Usecs::MAX);
    }

    #[test]
    fn weekdays_and_periods() {
        assert_eq!(at(2026, 11, 23, 12, 0).weekday(), Weekday::Monday);
        assert_eq!(at(1970, 1, 4, 0, 0).weekday(), Weekday::Sunday);
        // Saturday and the next Sunday are in different weeks; Sunday to Saturday share one.
        let sat = at(2026, 11, 21, 23, 59);
        let sun = at(2026, 11, 22, 0, 0);
        assert_ne!(sat.period(TimeUnit::Weeks, 1), sun.period(TimeUnit::Weeks, 1));
        assert_eq!(
            sun.period(TimeUnit::Weeks, 1),
            at(2026, 11, 28, 23, 0).period(TimeUnit::Weeks, 1)
        );
        assert_eq!(at(2026, 1, 1, 0, 0).period(TimeUnit::Years, 1), 2026);
        assert_ne!(
            at(2026, 1, 31, 0, 0).period(TimeUnit::Months, 1),
            at(2026, 2, 1, 0, 0).period(TimeUnit::Months, 1)
        );
        assert_eq!(at(2026, 11, 23, 7, 45).minute_of_day(), 7 * 60 + 45);
    }

    #[test]
    fn times_parse_as_they_are_displayed() {
        let t = at(2026, 11, 23, 7, 45);
        assert_eq!(t.to_string().parse::<Usecs>(), Ok(t));
        assert_eq!("2026-11-23 07:45".parse::<Usecs>(), Ok(t));
        assert_eq!("2026-11-23".parse::<Usecs>(), Ok(at(2026, 11, 23, 0, 0)));
        assert_eq!("2026-11-23T07:45:09Z".parse::<Usecs>(), Ok(Usecs(t.0 + 9_000_000)));
        assert_eq!(t.0.to_string().parse::<Usecs>(), Ok(t));
        for bad in ["", "2026-13-01", "2026-11-23T24:00", "2026-11-23T07:45:60", "yesterday"] {
            assert!(bad.parse::<Usecs>().is_err(), "{bad:?}");
        }
    }
}

/// A reading of real elapsed time: how long since an origin (the machine's boot), and which
/// origin. Two readings of the same origin measure the real time between them, whatever the
/// wall clock did in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealTime {
    /// Which origin (the kernel's boot id): readings of different origins cannot be compared.
    pub origin: u128,
    /// Real time since the origin, suspended time included.
    pub elapsed: Usecs,
}

/// The trusted clock's durable state (persisted by the engine at every observation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockState {
    /// The latest wall-clock time seen: records and schedules use it, and it never goes back.
    pub high_water: Usecs,
    /// The time retention, DataLock and grace periods are judged by: it never goes back, and
    /// it never runs ahead of the real time that has been seen to pass (see
    /// `coldkeep_retention::TrustedClock`).
    pub retention: Usecs,
    /// The wall clock at the last observation.
    pub last_wall: Usecs,
    /// Real time at the last observation that had a reading of it.
    pub last_real: Option<RealTime>,
}

impl ClockState {
    /// The state of a clock that has seen only `t` (a new repository, or one whose clock
    /// recorded nothing but a high-water mark).
    pub fn starting_at(t: Usecs) -> Self {
        Self { high_water: t, retention: t, last_wall: t, last_real: None }
    }
}
