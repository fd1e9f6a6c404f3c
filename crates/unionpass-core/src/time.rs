//! Instants are stored and sent in UTC and shown in the member's zone.
//!
//! The platform serves members in Beijing: the default zone is Asia/Shanghai, which has had a fixed
//! offset of UTC+8 with no daylight saving since 1991, so a fixed offset is exact for every instant
//! the app can meet. A member-chosen zone is a later feature; [`Zone`] is where it will go.

use chrono::{DateTime, FixedOffset, Utc};

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

    fn offset(self) -> FixedOffset {
        match self {
            Zone::AsiaShanghai => FixedOffset::east_opt(8 * 3600).expect("valid offset"),
            Zone::Utc => FixedOffset::east_opt(0).expect("valid offset"),
        }
    }
}

/// `2026-11-29 16:05` in the zone.
pub fn format_minute(t: DateTime<Utc>, zone: Zone) -> String {
    t.with_timezone(&zone.offset())
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// `2026-11-29` in the zone.
pub fn format_date(t: DateTime<Utc>, zone: Zone) -> String {
    t.with_timezone(&zone.offset())
        .format("%Y-%m-%d")
        .to_string()
}

/// `16:05` in the zone.
pub fn format_clock(t: DateTime<Utc>, zone: Zone) -> String {
    t.with_timezone(&zone.offset()).format("%H:%M").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

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
