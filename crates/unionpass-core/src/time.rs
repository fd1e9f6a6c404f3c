//! Instants are stored and sent in UTC and shown in the member's zone.
//!
//! The platform serves members in Beijing: the default zone is Asia/Shanghai, which has had a fixed
//! offset of UTC+8 with no daylight saving since 1991, so a fixed offset is exact for every instant
//! the app can meet. A member-chosen zone is a later feature; [`Zone`] is where it will go.

use chrono::{DateTime, Datelike, FixedOffset, Timelike, Utc};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Zone {
    AsiaShanghai,
    Utc,
}

impl Zone {
    pub fn iana_name(self) -> &'static str {
        match self {
            Zone::AsiaShanghai => "Asia/Shanghai",
            Zone::Utc => "UTC",
        }
    }

    pub fn from_iana(name: &str) -> Option<Zone> {
        match name {
            "Asia/Shanghai" | "Asia/Chongqing" | "PRC" => Some(Zone::AsiaShanghai),
            "UTC" | "Etc/UTC" => Some(Zone::Utc),
            _ => None,
        }
    }

    pub fn offset(self) -> FixedOffset {
        match self {
            Zone::AsiaShanghai => FixedOffset::east_opt(8 * 3600).expect("valid offset"),
            Zone::Utc => FixedOffset::east_opt(0).expect("valid offset"),
        }
    }
}

/// A calendar month in some zone (for monthly caps, expiry schedules, history charts).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct YearMonth {
    pub year: i32,
    /// 1…12
    pub month: u32,
}

impl YearMonth {
    /// The month `t` falls in, in `zone`.
    pub fn of(t: DateTime<Utc>, zone: Zone) -> YearMonth {
        use chrono::Datelike;
        let local = t.with_timezone(&zone.offset());
        YearMonth {
            year: local.year(),
            month: local.month(),
        }
    }

    /// The month after this one.
    pub fn next(self) -> YearMonth {
        if self.month == 12 {
            YearMonth {
                year: self.year + 1,
                month: 1,
            }
        } else {
            YearMonth {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// The month before this one.
    pub fn prev(self) -> YearMonth {
        if self.month == 1 {
            YearMonth {
                year: self.year - 1,
                month: 12,
            }
        } else {
            YearMonth {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    /// The first instant of the month in `zone` (local midnight on the 1st), in UTC.
    pub fn start(self, zone: Zone) -> DateTime<Utc> {
        use chrono::TimeZone;
        zone.offset()
            .with_ymd_and_hms(self.year, self.month, 1, 0, 0, 0)
            .single()
            .expect("a fixed offset has one local midnight")
            .with_timezone(&Utc)
    }

    /// `2026-12`
    pub fn label(self) -> String {
        format!("{:04}-{:02}", self.year, self.month)
    }
}

// The three formats below are written out rather than given to chrono's `format`: its
// format-string parser and printer are about 15 KB of the wasm UI, for three fixed shapes.

/// `2026-11-29 16:05` in the zone.
pub fn format_minute(t: DateTime<Utc>, zone: Zone) -> String {
    format!("{} {}", format_date(t, zone), format_clock(t, zone))
}

/// `2026-11-29 14:00–16:00` in the zone, or `2026-11-29 14:00–2026-11-30 10:00` across days.
pub fn format_span(start: DateTime<Utc>, end: DateTime<Utc>, zone: Zone) -> String {
    let end = if format_date(start, zone) == format_date(end, zone) {
        format_clock(end, zone)
    } else {
        format_minute(end, zone)
    };
    format!("{}–{end}", format_minute(start, zone))
}

/// `2026-11-29` in the zone.
pub fn format_date(t: DateTime<Utc>, zone: Zone) -> String {
    let local = t.with_timezone(&zone.offset());
    format!(
        "{:04}-{:02}-{:02}",
        local.year(),
        local.month(),
        local.day()
    )
}

/// `16:05` in the zone.
pub fn format_clock(t: DateTime<Utc>, zone: Zone) -> String {
    let local = t.with_timezone(&zone.offset());
    format!("{:02}:{:02}", local.hour(), local.minute())
}

/// An instant written as serde writes a `DateTime<Utc>` (RFC 3339 in UTC with `Z`, the fraction
/// in as many digits as it needs: none, 3, 6 or 9), built in one piece: chrono's own `Serialize`
/// feeds it through the serializer's formatter piece by piece, about three times the cost. For
/// `#[serde(serialize_with = "crate::time::rfc3339")]` on the fields of answers a burst writes by
/// the thousand (a sign-up's answer and its logged change carry four); reading is chrono's.
pub fn rfc3339<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_writes_what_chrono_writes() {
        let base: DateTime<Utc> = "2026-12-05T10:00:00Z".parse().unwrap();
        for nanos in [
            0,
            1,
            125_000_000,
            120_000_000,
            123_456_000,
            123_456_789,
            999_999_999,
        ] {
            let t = base + chrono::Duration::nanoseconds(nanos);
            let mut ours = serde_json::Serializer::new(Vec::new());
            rfc3339(&t, &mut ours).unwrap();
            let ours = String::from_utf8(ours.into_inner()).unwrap();
            assert_eq!(ours, serde_json::to_string(&t).unwrap(), "{nanos} ns");
            assert_eq!(serde_json::from_str::<DateTime<Utc>>(&ours).unwrap(), t);
        }
    }

    #[test]
    fn shanghai_is_utc_plus_eight_across_midnight() {
        let t: DateTime<Utc> = "2026-11-29T16:30:00Z".parse().unwrap();
        assert_eq!(format_minute(t, Zone::AsiaShanghai), "2026-11-30 00:30");
        assert_eq!(format_date(t, Zone::AsiaShanghai), "2026-11-30");
        assert_eq!(format_clock(t, Zone::Utc), "16:30");
        // No DST: the same offset in July.
        let s: DateTime<Utc> = "2026-07-01T00:00:00Z".parse().unwrap();
        assert_eq!(format_clock(s, Zone::AsiaShanghai), "08:00");
    }

    #[test]
    fn zone_names_round_trip() {
        assert_eq!(Zone::from_iana("Asia/Shanghai"), Some(Zone::AsiaShanghai));
        assert_eq!(Zone::from_iana(Zone::Utc.iana_name()), Some(Zone::Utc));
        assert_eq!(Zone::from_iana("Mars/Olympus"), None);
    }
}
