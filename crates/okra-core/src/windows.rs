//! Deployment windows (`windows: {timeZone, allow, deny}`): when a rollout may move traffic.
//!
//! Each window is a recurrence (a cron schedule, or an RFC 5545 RRULE) and a `duration`: it is
//! open from each occurrence for that long, in the cell's `timeZone` (IANA; default UTC, so a
//! schedule keeps its wall-clock time across daylight saving changes). A time is open when no
//! `deny` window holds it and, if there are `allow` windows, one of them does. Outside an open
//! time a rollout holds at its current weights before its next weight step; an abort, a
//! rollback and a person's `promote --full` are never held.
//!
//! - cron: five fields (minute hour day-of-month month day-of-week), `*`, lists, ranges, steps
//!   and names (`0 9 * * MON-FRI`), as Kargo's promotion windows and croner read them;
//! - RRULE: the rule's value (`FREQ=WEEKLY;BYDAY=SA,SU;BYHOUR=0;BYMINUTE=0;BYSECOND=0`), which
//!   starts at 2026-01-01T00:00 in the window's time zone, or a whole `DTSTART...\nRRULE:...`
//!   text with a start of its own.
//!
//! Everything here is pure: the caller gives the time.

use std::str::FromStr as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, TimeZone as _, Utc};

use crate::spec::{WindowSpec, Windows as WindowsSpec};

/// How far ahead the next open time is looked for.
pub const HORIZON: Duration = Duration::from_secs(400 * 86_400);
/// At most this many occurrences of one window are read for one question; a window that has
/// more in the horizon (one every minute) is read up to its last, and the answer stops there.
const MAX_OCCURRENCES: usize = 5_000;
/// An RRULE's start when it gives none.
const DEFAULT_DTSTART: &str = "20260101T000000";

/// `[start, end)` in UTC.
type Interval = (DateTime<Utc>, DateTime<Utc>);

/// A recurrence.
#[derive(Debug, Clone)]
enum Rule {
    Cron(Box<croner::Cron>),
    RRule(Box<rrule::RRuleSet>),
}

/// One window: from each occurrence, for `duration`.
#[derive(Debug, Clone)]
struct Window {
    rule: Rule,
    duration: Duration,
}

/// A cell's windows, read.
#[derive(Debug, Clone)]
pub struct Windows {
    zone: chrono_tz::Tz,
    allow: Vec<Window>,
    deny: Vec<Window>,
}

/// A window that does not read: its field (`windows.allow[0].schedule`) and why.
pub type WindowError = (String, String);

fn read_window(
    w: &WindowSpec,
    path: &str,
    zone: chrono_tz::Tz,
    errors: &mut Vec<WindowError>,
) -> Option<Window> {
    let duration = match crate::duration::parse_duration(&w.duration) {
        Ok(d) if d >= Duration::from_secs(1) && d <= Duration::from_secs(366 * 86_400) => Some(d),
        Ok(_) => {
            errors.push((
                format!("{path}.duration"),
                format!("{:?}: between 1s and 366d", w.duration),
            ));
            None
        }
        Err(e) => {
            errors.push((format!("{path}.duration"), e.to_string()));
            None
        }
    };
    let rule = match (&w.schedule, &w.rrule) {
        (Some(cron), None) => match croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Disallowed)
            .build()
            .parse(cron)
        {
            Ok(c) => Some(Rule::Cron(Box::new(c))),
            Err(e) => {
                errors.push((
                    format!("{path}.schedule"),
                    format!(
                        "{cron:?} is not a cron schedule of five fields (minute hour \
                         day-of-month month day-of-week): {e}"
                    ),
                ));
                None
            }
        },
        (None, Some(text)) => {
            let full = if text.contains("RRULE:") {
                text.replace("\\n", "\n")
            } else {
                format!(
                    "DTSTART;TZID={}:{DEFAULT_DTSTART}\nRRULE:{}",
                    zone.name(),
                    text.trim_start_matches("RRULE:")
                )
            };
            match full.parse::<rrule::RRuleSet>() {
                Ok(set) => Some(Rule::RRule(Box::new(set))),
                Err(e) => {
                    errors.push((
                        format!("{path}.rrule"),
                        format!("{text:?} is not an RFC 5545 RRULE: {e}"),
                    ));
                    None
                }
            }
        }
        _ => {
            errors.push((
                path.to_owned(),
                "give exactly one of `schedule` (cron) and `rrule`".into(),
            ));
            None
        }
    };
    Some(Window {
        rule: rule?,
        duration: duration?,
    })
}

fn utc(t: SystemTime) -> DateTime<Utc> {
    DateTime::<Utc>::from(t)
}

fn system(t: DateTime<Utc>) -> SystemTime {
    let secs = t.timestamp();
    match u64::try_from(secs) {
        Ok(s) => {
            UNIX_EPOCH
                + Duration::from_secs(s)
                + Duration::from_nanos(u64::from(t.timestamp_subsec_nanos()))
        }
        Err(_) => UNIX_EPOCH,
    }
}

impl Window {
    /// The occurrences starting in `[from, to)`, oldest first, and whether they were all read
    /// (false: capped at [`MAX_OCCURRENCES`]).
    fn occurrences(
        &self,
        zone: chrono_tz::Tz,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> (Vec<DateTime<Utc>>, bool) {
        let mut out = Vec::new();
        match &self.rule {
            Rule::Cron(cron) => {
                let mut at = from.with_timezone(&zone);
                let mut inclusive = true;
                while let Ok(next) = cron.find_next_occurrence(&at, inclusive) {
                    let next_utc = next.with_timezone(&Utc);
                    if next_utc >= to {
                        return (out, true);
                    }
                    if out.len() >= MAX_OCCURRENCES {
                        return (out, false);
                    }
                    out.push(next_utc);
                    at = next;
                    inclusive = false;
                }
                (out, true)
            }
            Rule::RRule(set) => {
                let tz = rrule::Tz::UTC;
                let (Some(a), Some(b)) = (
                    tz.timestamp_opt(from.timestamp(), 0).single(),
                    tz.timestamp_opt(to.timestamp(), 0).single(),
                ) else {
                    return (out, true);
                };
                let limit =
                    u16::try_from(MAX_OCCURRENCES.min(usize::from(u16::MAX))).unwrap_or(u16::MAX);
                let result = set.as_ref().clone().after(a).before(b).all(limit);
                out.extend(
                    result
                        .dates
                        .into_iter()
                        .map(|d| d.with_timezone(&Utc))
                        .filter(|d| *d >= from && *d < to),
                );
                (out, !result.limited)
            }
        }
    }

    /// The intervals `[start, end)` that touch `[from, to)`, and until when they are all known.
    fn intervals(
        &self,
        zone: chrono_tz::Tz,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> (Vec<Interval>, DateTime<Utc>) {
        let d = chrono::Duration::from_std(self.duration).unwrap_or(chrono::Duration::zero());
        let (starts, complete) = self.occurrences(zone, from - d, to);
        let known = if complete {
            to
        } else {
            starts.last().copied().unwrap_or(to)
        };
        (starts.into_iter().map(|s| (s, s + d)).collect(), known)
    }
}

/// Whether any interval holds `t`.
fn holds(intervals: &[Interval], t: DateTime<Utc>) -> bool {
    intervals.iter().any(|(s, e)| *s <= t && t < *e)
}

/// When a rollout may move traffic, as of a given time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// Now.
    Open,
    /// Not now; from `opens` on (`None`: not within [`HORIZON`]).
    Closed {
        /// The next open time.
        opens: Option<SystemTime>,
    },
}

impl Windows {
    /// Reads a cell's windows; every field that does not read, with its path under `windows`.
    ///
    /// # Errors
    ///
    /// Each window's faults (cron, RRULE, duration, both or neither rule) and an unknown time
    /// zone.
    pub fn read(spec: &WindowsSpec) -> Result<Self, Vec<WindowError>> {
        let mut errors = Vec::new();
        let zone = match chrono_tz::Tz::from_str(&spec.time_zone) {
            Ok(z) => z,
            Err(_) => {
                errors.push((
                    "windows.timeZone".into(),
                    format!(
                        "{:?} is not an IANA time zone (such as UTC, Europe/Paris, America/New_York)",
                        spec.time_zone
                    ),
                ));
                chrono_tz::UTC
            }
        };
        let mut read = |list: &[WindowSpec], name: &str| -> Vec<Window> {
            list.iter()
                .enumerate()
                .filter_map(|(i, w)| {
                    read_window(w, &format!("windows.{name}[{i}]"), zone, &mut errors)
                })
                .collect()
        };
        let allow = read(&spec.allow, "allow");
        let deny = read(&spec.deny, "deny");
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self { zone, allow, deny })
    }

    /// Whether traffic may move at `t`, and if not, from when.
    pub fn gate(&self, t: SystemTime) -> Gate {
        let now = utc(t);
        // Open now? One small range answers it.
        let near = now + chrono::Duration::seconds(1);
        if self.open_at(now, now, near) {
            return Gate::Open;
        }
        // The next boundary that opens it: longer and longer looks ahead, as far as the
        // windows' occurrences could all be read.
        for days in [2_i64, 16, 400] {
            let to = now + chrono::Duration::days(days);
            let (opens, known) = self.next_open(now, to);
            if let Some(opens) = opens {
                return Gate::Closed {
                    opens: Some(system(opens)),
                };
            }
            if known < to {
                break;
            }
        }
        Gate::Closed { opens: None }
    }

    fn open_at(&self, t: DateTime<Utc>, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
        let held = |ws: &[Window]| {
            ws.iter()
                .any(|w| holds(&w.intervals(self.zone, from, to).0, t))
        };
        (self.allow.is_empty() || held(&self.allow)) && !held(&self.deny)
    }

    /// The first open time in `(now, to)`, among the windows' boundaries, and until when the
    /// windows were all read (`to`, or earlier for a window with more than
    /// [`MAX_OCCURRENCES`]).
    fn next_open(
        &self,
        now: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> (Option<DateTime<Utc>>, DateTime<Utc>) {
        let mut known = to;
        let mut read = |ws: &[Window]| -> Vec<Vec<Interval>> {
            ws.iter()
                .map(|w| {
                    let (iv, k) = w.intervals(self.zone, now, to);
                    known = known.min(k);
                    iv
                })
                .collect()
        };
        let allow = read(&self.allow);
        let deny = read(&self.deny);
        let mut boundaries: Vec<DateTime<Utc>> = allow
            .iter()
            .flatten()
            .map(|(s, _)| *s)
            .chain(deny.iter().flatten().map(|(_, e)| *e))
            .filter(|b| *b > now && *b < known)
            .collect();
        boundaries.sort();
        boundaries.dedup();
        let open = boundaries.into_iter().find(|b| {
            (allow.is_empty() || allow.iter().any(|iv| holds(iv, *b)))
                && !deny.iter().any(|iv| holds(iv, *b))
        });
        (open, known)
    }
}

/// Reads the windows and tells whether traffic may move at `now`.
///
/// # Errors
///
/// The windows do not read ([`Windows::read`]).
pub fn gate(spec: &WindowsSpec, now: SystemTime) -> Result<Gate, Vec<WindowError>> {
    Ok(Windows::read(spec)?.gate(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> SystemTime {
        humantime::parse_rfc3339(rfc3339).expect("a time")
    }

    fn spec(zone: &str, allow: &[(&str, &str)], deny: &[(&str, &str)]) -> WindowsSpec {
        let w = |(rule, d): &(&str, &str)| WindowSpec {
            schedule: (!rule.contains('=')).then(|| (*rule).to_owned()),
            rrule: rule.contains('=').then(|| (*rule).to_owned()),
            duration: (*d).to_owned(),
        };
        WindowsSpec {
            time_zone: zone.to_owned(),
            allow: allow.iter().map(w).collect(),
            deny: deny.iter().map(w).collect(),
        }
    }

    fn opens(g: Gate) -> Option<String> {
        match g {
            Gate::Open => None,
            Gate::Closed { opens } => {
                Some(opens.map_or("never".into(), |t| humantime::format_rfc3339(t).to_string()))
            }
        }
    }

    #[test]
    fn business_hours_in_a_time_zone() {
        // 09:00-17:00 Paris, Monday to Friday; 2026-12-07 is a Monday, Paris is UTC+1.
        let w = Windows::read(&spec("Europe/Paris", &[("0 9 * * MON-FRI", "8h")], &[])).unwrap();
        assert_eq!(w.gate(at("2026-12-07T08:30:00Z")), Gate::Open);
        assert_eq!(
            opens(w.gate(at("2026-12-07T16:30:00Z"))).as_deref(),
            Some("2026-12-08T08:00:00Z")
        );
        // Friday evening: Monday morning.
        assert_eq!(
            opens(w.gate(at("2026-12-11T18:00:00Z"))).as_deref(),
            Some("2026-12-14T08:00:00Z")
        );
    }

    #[test]
    fn a_freeze_denies_inside_the_allowed_hours_and_opens_after_it() {
        let w = Windows::read(&spec(
            "UTC",
            &[("0 9 * * *", "8h")],
            &[(
                "FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=24;BYHOUR=0;BYMINUTE=0;BYSECOND=0",
                "72h",
            )],
        ))
        .unwrap();
        assert_eq!(
            opens(w.gate(at("2026-12-25T10:00:00Z"))).as_deref(),
            Some("2026-12-27T09:00:00Z")
        );
        assert_eq!(w.gate(at("2026-12-28T10:00:00Z")), Gate::Open);
    }

    #[test]
    fn a_deny_window_that_ends_opens_at_its_end() {
        let w = Windows::read(&spec(
            "UTC",
            &[],
            &[("DTSTART:20261206T150000Z\nRRULE:FREQ=DAILY;COUNT=1", "20s")],
        ))
        .unwrap();
        assert_eq!(
            opens(w.gate(at("2026-12-06T15:00:05Z"))).as_deref(),
            Some("2026-12-06T15:00:20Z")
        );
        assert_eq!(w.gate(at("2026-12-06T15:00:20Z")), Gate::Open);
    }

    #[test]
    fn windows_that_never_open_say_so() {
        let w = Windows::read(&spec("UTC", &[], &[("0 * * * *", "1h")])).unwrap();
        assert_eq!(
            opens(w.gate(at("2026-12-06T15:00:00Z"))).as_deref(),
            Some("never")
        );
        // February 30th never comes.
        let w = Windows::read(&spec("UTC", &[("0 0 30 2 *", "1h")], &[])).unwrap();
        assert_eq!(
            opens(w.gate(at("2026-12-06T15:00:00Z"))).as_deref(),
            Some("never")
        );
    }

    #[test]
    fn every_fault_is_named_by_its_field() {
        let mut s = spec(
            "Mars/Olympus",
            &[("61 * * * *", "8h")],
            &[("FREQ=SOMETIMES", "x")],
        );
        s.allow.push(WindowSpec {
            schedule: Some("0 9 * * *".into()),
            rrule: Some("FREQ=DAILY".into()),
            duration: "1h".into(),
        });
        let errors = Windows::read(&s).unwrap_err();
        let paths: Vec<&str> = errors.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "windows.timeZone",
                "windows.allow[0].schedule",
                "windows.allow[1]",
                "windows.deny[0].duration",
                "windows.deny[0].rrule"
            ]
        );
    }
}
