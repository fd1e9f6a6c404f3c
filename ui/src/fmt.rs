//! How times, money and counts are shown: in the member's zone (Asia/Shanghai until a zone
//! setting exists), yuan with fen only when there are some, thousands separated.

use chrono::{DateTime, Utc};
use unionpass_core::campaign::Category;
use unionpass_core::i18n::Msg;
use unionpass_core::time::{format_clock, format_date, format_minute, Zone};

/// Members see times in their zone; Asia/Shanghai until a zone setting exists.
pub const ZONE: Zone = Zone::AsiaShanghai;

/// The page's clock (the UI is an edge: it reads the time only to choose how to show one).
pub fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(js_sys::Date::now() as i64).unwrap_or_default()
}

/// The page's clock, read every `every` while the calling screen is shown (countdowns).
pub fn ticking(every: std::time::Duration) -> leptos::prelude::RwSignal<DateTime<Utc>> {
    use leptos::prelude::*;
    let tick = RwSignal::new(now());
    let handle = set_interval_with_handle(move || tick.set(now()), every).ok();
    on_cleanup(move || {
        if let Some(h) = handle {
            h.clear();
        }
    });
    tick
}

/// `16:05` for today, `昨天 16:05`, `明天 09:30` or the date otherwise, in the member's zone: a
/// log's or a stamp's time ([`unionpass_core::i18n::moment`]).
pub fn when(t: DateTime<Utc>, lang: unionpass_core::i18n::Lang) -> String {
    unionpass_core::i18n::moment(t, now(), ZONE, lang)
}

/// [`when`] inside a sentence ("checked in at 11:03").
pub fn when_in_sentence(t: DateTime<Utc>, lang: unionpass_core::i18n::Lang) -> String {
    unionpass_core::i18n::moment_in_sentence(t, now(), ZONE, lang)
}

/// `12`, `12.50`, `8.80`: whole yuan without decimals, otherwise with fen.
pub fn yuan(cents: i64) -> String {
    if cents % 100 == 0 {
        format!("{}", cents / 100)
    } else {
        format!("{}.{:02}", cents / 100, (cents % 100).abs())
    }
}

/// `12,345`.
pub fn thousands(n: i64) -> String {
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// "今天 17:00", "明天 09:30" or the date, in the member's zone and language.
pub fn day_time(t: DateTime<Utc>, lang: unionpass_core::i18n::Lang) -> String {
    unionpass_core::i18n::day_time(t, now(), ZONE, lang)
}

/// "今天 14:00 至 18:00", "Tomorrow 09:30 to 12:30": when an activity runs, the end's day said
/// only when it is not the start's.
pub fn activity_time(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    lang: unionpass_core::i18n::Lang,
) -> String {
    use unionpass_core::i18n::{fill, line_start};
    line_start(fill(
        Msg::ActivityTime.text(lang),
        &[
            ("start", &day_time(start, lang)),
            ("end", &end_time(start, end, lang)),
        ],
    ))
}

/// An end after `start`: its clock on the same day, else its day too ("明天 00:00").
pub fn end_time(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    lang: unionpass_core::i18n::Lang,
) -> String {
    if format_date(start, ZONE) == format_date(end, ZONE) {
        format_clock(end, ZONE)
    } else {
        day_time(end, lang)
    }
}

/// "5 分 20 秒": a time left with its units.
pub fn countdown(ms: i64, lang: unionpass_core::i18n::Lang) -> String {
    unionpass_core::i18n::countdown(ms, lang)
}

/// `text` with each date in it (and its time) kept on one line: a narrow screen would break
/// `2027-01-05` after a hyphen otherwise ([`unionpass_core::i18n::date_runs`]).
pub fn unbroken(text: String) -> impl leptos::IntoView {
    use leptos::prelude::*;
    unionpass_core::i18n::date_runs(&text)
        .into_iter()
        .map(|(date, run)| {
            let run = run.to_string();
            if date {
                view! { <span class="nowrap">{run}</span> }.into_any()
            } else {
                run.into_any()
            }
        })
        .collect_view()
}

/// `2026-11-28 16:05` in the member's zone, whatever the day (for records kept long).
pub fn full(t: DateTime<Utc>) -> String {
    format_minute(t, ZONE)
}

pub fn category_msg(c: Category) -> Msg {
    match c {
        Category::Bike => Msg::CatBike,
        Category::Meal => Msg::CatMeal,
        Category::Taxi => Msg::CatTaxi,
        Category::Cleaning => Msg::CatCleaning,
        Category::Laundry => Msg::CatLaundry,
        Category::Cinema => Msg::CatCinema,
        Category::Other => Msg::CatOther,
    }
}
