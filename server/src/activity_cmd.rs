//! `unionpass-server activity …`: publish, move, cancel and list activities; who signed up.

use anyhow::Context;
use chrono::{DateTime, FixedOffset, Utc};
use clap::Subcommand;
use unionpass_core::activity::{Activity, ActivityCategory, SignupRules};
use unionpass_server::store::ActivityChange;
use unionpass_server::{Clock, SystemClock};

use crate::StoreArgs;

#[derive(Subcommand)]
pub enum PollCmd {
    /// Publish a needs poll; apps receive it by sync.
    Create {
        #[command(flatten)]
        db: StoreArgs,
        #[arg(long)]
        question_zh: String,
        #[arg(long)]
        question_en: String,
        /// An option as `中文|English` (repeat, 2 to 10)
        #[arg(long = "option", required = true)]
        options: Vec<String>,
        /// When voting ends, RFC 3339
        #[arg(long)]
        closes_at: DateTime<FixedOffset>,
        /// Only members of this workplace union id; default the whole district
        #[arg(long)]
        union: Option<i64>,
    },
    /// List every poll.
    List {
        #[command(flatten)]
        db: StoreArgs,
    },
    /// The votes per option.
    Results {
        #[command(flatten)]
        db: StoreArgs,
        #[arg(long)]
        id: i64,
    },
}

pub async fn run_poll(action: PollCmd) -> anyhow::Result<()> {
    use unionpass_core::activity::{Poll, PollOption};
    let now = SystemClock.now();
    match action {
        PollCmd::Create {
            db,
            question_zh,
            question_en,
            options,
            closes_at,
            union,
        } => {
            let options = options
                .iter()
                .map(|o| {
                    let (zh, en) = o.split_once('|').unwrap_or((o, o));
                    PollOption {
                        zh: zh.trim().into(),
                        en: en.trim().into(),
                    }
                })
                .collect();
            let poll = Poll {
                id: 0,
                question_zh,
                question_en,
                options,
                union_id: union,
                closes_at: utc(closes_at),
            };
            poll.check().map_err(|_| {
                anyhow::anyhow!(
                    "a poll needs a question and 2 to {} options",
                    unionpass_core::activity::MAX_POLL_OPTIONS
                )
            })?;
            anyhow::ensure!(poll.closes_at > now, "the poll must close in the future");
            let p = db.open().await?.create_poll(poll, now).await?;
            println!("{}", serde_json::to_string(&p)?);
        }
        PollCmd::List { db } => {
            for p in db.open().await?.polls().await? {
                println!(
                    "{:>5}  closes {}  {} options  {}",
                    p.id,
                    p.closes_at.to_rfc3339(),
                    p.options.len(),
                    p.question_zh
                );
            }
        }
        PollCmd::Results { db, id } => {
            let store = db.open().await?;
            let poll = store
                .polls()
                .await?
                .into_iter()
                .find(|p| p.id == id)
                .with_context(|| format!("no poll {id}"))?;
            let r = store
                .poll_results(id, 0)
                .await?
                .with_context(|| format!("no poll {id}"))?;
            println!("{}", poll.question_zh);
            for (o, n) in poll.options.iter().zip(r.counts) {
                println!("  {n:>6}  {}", o.zh);
            }
        }
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum ActivityCmd {
    /// Publish an activity (its check-in event is created with it); apps receive it by sync.
    Create(Box<CreateArgs>),
    /// Move an activity; signed-up members see the new time at their next sync.
    Move {
        #[command(flatten)]
        db: StoreArgs,
        #[arg(long)]
        id: i64,
        #[arg(long)]
        starts_at: DateTime<FixedOffset>,
        #[arg(long)]
        ends_at: DateTime<FixedOffset>,
    },
    /// Cancel an activity; members see it cancelled at their next sync.
    Cancel {
        #[command(flatten)]
        db: StoreArgs,
        #[arg(long)]
        id: i64,
    },
    /// List every activity.
    List {
        #[command(flatten)]
        db: StoreArgs,
    },
    /// What members said after an activity: the average, the spread of ratings, the comments.
    Feedback {
        #[command(flatten)]
        db: StoreArgs,
        #[arg(long)]
        id: i64,
    },
    /// The sign-up bench's audit, as one JSON line: seats beyond capacity, members signed up
    /// twice, acknowledged sign-ups the database does not have, waitlist places told that differ
    /// from the order recorded, promotions out of order.
    Audit {
        #[command(flatten)]
        db: StoreArgs,
        #[arg(long)]
        id: i64,
        /// Acknowledged sign-ups, one per line: `key state [position]`.
        #[arg(long)]
        acked: std::path::PathBuf,
    },
    /// Who signed up for an activity, in the order received: companions, state, checked in.
    Signups {
        #[command(flatten)]
        db: StoreArgs,
        #[arg(long)]
        id: i64,
        /// Comma-separated values with a header row, for a spreadsheet
        #[arg(long)]
        csv: bool,
    },
}

#[derive(clap::Args)]
pub struct CreateArgs {
    #[command(flatten)]
    db: StoreArgs,
    #[arg(long)]
    title_zh: String,
    #[arg(long)]
    title_en: String,
    #[arg(long, default_value = "")]
    description_zh: String,
    #[arg(long, default_value = "")]
    description_en: String,
    /// sports, culture, training, family, volunteering, health or other
    #[arg(long)]
    category: String,
    /// Where, in Chinese
    #[arg(long)]
    place: String,
    /// Where, in English (members reading in English see the Chinese place without it)
    #[arg(long, default_value = "")]
    place_en: String,
    /// Start, RFC 3339 (e.g. 2026-12-12T09:00:00+08:00)
    #[arg(long)]
    starts_at: DateTime<FixedOffset>,
    #[arg(long)]
    ends_at: DateTime<FixedOffset>,
    /// Only members of this workplace union id; default the whole district
    #[arg(long)]
    union: Option<i64>,
    /// Points for checking in
    #[arg(long, default_value_t = 0)]
    points: i64,
    /// Seats (companions included); without it the activity takes walk-ins, no sign-up
    #[arg(long)]
    seats: Option<i64>,
    /// When sign-up opens, RFC 3339 (default: now)
    #[arg(long)]
    signup_opens_at: Option<DateTime<FixedOffset>>,
    /// When sign-up closes (default: the start)
    #[arg(long)]
    signup_closes_at: Option<DateTime<FixedOffset>>,
    /// Sign-ups kept waiting once the seats are taken
    #[arg(long, default_value_t = 0)]
    waitlist: i64,
    /// Companions (家属) a member may bring, each taking a seat
    #[arg(long, default_value_t = 0)]
    companions: i64,
    /// Last moment to cancel (default: a day before the start, or sign-up's close if later)
    #[arg(long)]
    cancel_until: Option<DateTime<FixedOffset>>,
    /// Popular: closed to members under a no-show ban
    #[arg(long)]
    popular: bool,
}

fn utc(t: DateTime<FixedOffset>) -> DateTime<Utc> {
    t.with_timezone(&Utc)
}

/// The sign-up bench's audit of the rows the database holds against what was acknowledged.
fn audit(
    seats: i64,
    rows: &[unionpass_server::store::SignupRow],
    acked: &str,
) -> serde_json::Value {
    use std::collections::{HashMap, HashSet};
    use unionpass_core::activity::SignupState;
    let held: i64 = rows
        .iter()
        .filter(|r| r.state.has_seats())
        .map(|r| 1 + r.companions)
        .sum();
    let mut live_per_member: HashMap<&str, usize> = HashMap::new();
    for r in rows.iter().filter(|r| r.state.is_active()) {
        *live_per_member.entry(r.member_no.as_str()).or_default() += 1;
    }
    let double = live_per_member.values().filter(|n| **n > 1).count();
    // the waitlist in the order recorded: every row that waited (still waiting, or promoted)
    let waited: Vec<&unionpass_server::store::SignupRow> = rows
        .iter()
        .filter(|r| matches!(r.state, SignupState::Waitlisted | SignupState::Promoted))
        .collect();
    let rank: HashMap<uuid::Uuid, i64> = waited
        .iter()
        .enumerate()
        .map(|(i, r)| (r.key, i as i64 + 1))
        .collect();
    let keys: HashSet<uuid::Uuid> = rows.iter().map(|r| r.key).collect();
    let (mut lost, mut out_of_order, mut n_acked) = (0, 0, 0);
    for line in acked.lines().filter(|l| !l.trim().is_empty()) {
        let mut parts = line.split_whitespace();
        let Some(key) = parts.next().and_then(|k| k.parse::<uuid::Uuid>().ok()) else {
            continue;
        };
        n_acked += 1;
        if !keys.contains(&key) {
            lost += 1;
            continue;
        }
        let state = parts.next().unwrap_or("");
        let position = parts.next().and_then(|p| p.parse::<i64>().ok());
        if state == "waitlisted" && rank.get(&key).copied() != position {
            out_of_order += 1;
        }
    }
    // strictly in order: no promoted sign-up came after one still waiting
    let first_waiting = rows
        .iter()
        .filter(|r| r.state == SignupState::Waitlisted)
        .map(|r| r.seq)
        .min();
    let promotions_out_of_order = rows
        .iter()
        .filter(|r| r.state == SignupState::Promoted && first_waiting.is_some_and(|w| r.seq > w))
        .count();
    // freed seats left unused while someone at the head of the waitlist would fit
    let waiting: Vec<(i64, i64)> = rows
        .iter()
        .filter(|r| r.state == SignupState::Waitlisted)
        .map(|r| (r.seq, r.companions))
        .collect();
    let unpromoted = unionpass_core::activity::promotions(&waiting, (seats - held).max(0)).len();
    let count = |s: SignupState| rows.iter().filter(|r| r.state == s).count();
    serde_json::json!({
        "seats": seats,
        "seats_held": held,
        "over_capacity": (held - seats).max(0),
        "double_signups": double,
        "acked": n_acked,
        "lost_acks": lost,
        "waitlist_out_of_order": out_of_order,
        "promotions_out_of_order": promotions_out_of_order,
        "unpromoted": unpromoted,
        "confirmed": count(SignupState::Confirmed),
        "waitlisted": count(SignupState::Waitlisted),
        "promoted": count(SignupState::Promoted),
        "cancelled": count(SignupState::Cancelled),
    })
}

/// The average rating and how many gave each of 1 to 5 stars.
fn summary(rows: &[unionpass_server::store::FeedbackRow]) -> (f64, [usize; 5]) {
    let mut spread = [0usize; 5];
    for r in rows {
        if (1..=5).contains(&r.rating) {
            spread[(r.rating - 1) as usize] += 1;
        }
    }
    let average = if rows.is_empty() {
        0.0
    } else {
        rows.iter().map(|r| r.rating as f64).sum::<f64>() / rows.len() as f64
    };
    (average, spread)
}

/// A CSV field: quoted when it holds a comma, a quote or a line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub async fn run(action: ActivityCmd) -> anyhow::Result<()> {
    let now = SystemClock.now();
    match action {
        ActivityCmd::Create(args) => {
            let CreateArgs {
                db,
                title_zh,
                title_en,
                description_zh,
                description_en,
                category,
                place,
                place_en,
                starts_at,
                ends_at,
                union,
                points,
                seats,
                signup_opens_at,
                signup_closes_at,
                waitlist,
                companions,
                cancel_until,
                popular,
            } = *args;
            let category = ActivityCategory::parse(&category).with_context(|| {
                format!("unknown category {category:?}: sports, culture, training, family, volunteering, health, other")
            })?;
            let (starts_at, ends_at) = (utc(starts_at), utc(ends_at));
            let signup = seats.map(|seats| {
                let closes_at = signup_closes_at.map(utc).unwrap_or(starts_at);
                SignupRules {
                    opens_at: signup_opens_at.map(utc).unwrap_or(now),
                    closes_at,
                    seats,
                    waitlist,
                    max_companions: companions,
                    cancel_until: cancel_until.map(utc).unwrap_or_else(|| {
                        (starts_at - chrono::Duration::days(1)).max(closes_at.min(starts_at))
                    }),
                    popular,
                }
            });
            let store = db.open().await?;
            if let Some(u) = union {
                store
                    .union_name(u)
                    .await?
                    .with_context(|| format!("there is no workplace union with id {u}"))?;
            }
            let a = Activity {
                id: 0,
                title_zh,
                title_en,
                description_zh,
                description_en,
                category,
                place,
                place_en,
                starts_at,
                ends_at,
                union_id: union,
                points,
                signup,
                cancelled_at: None,
            };
            a.check().map_err(|_| {
                anyhow::anyhow!(
                    "these times or numbers do not hold together: the activity must end after it \
                     starts; sign-up must open before it closes, and close (and cancelling end) by \
                     the start; seats at least 1; companions 0 to {}",
                    unionpass_core::activity::MAX_COMPANIONS
                )
            })?;
            let a = store.create_activity(a, now).await?;
            println!("{}", serde_json::to_string(&a)?);
        }
        ActivityCmd::Move {
            db,
            id,
            starts_at,
            ends_at,
        } => {
            anyhow::ensure!(ends_at > starts_at, "the activity must end after it starts");
            let a = db
                .open()
                .await?
                .change_activity(
                    id,
                    ActivityChange::Move {
                        starts_at: utc(starts_at),
                        ends_at: utc(ends_at),
                    },
                    now,
                )
                .await?;
            println!("{}", serde_json::to_string(&a)?);
        }
        ActivityCmd::Cancel { db, id } => {
            let a = db
                .open()
                .await?
                .change_activity(id, ActivityChange::Cancel, now)
                .await?;
            println!("{}", serde_json::to_string(&a)?);
        }
        ActivityCmd::List { db } => {
            for live in db.open().await?.activities().await? {
                let a = live.activity;
                let signup = match &a.signup {
                    Some(r) => format!(
                        "seats {}/{} waitlist {}/{} companions {} opens {}{}",
                        live.seats_taken,
                        r.seats,
                        live.waiting,
                        r.waitlist,
                        r.max_companions,
                        r.opens_at.to_rfc3339(),
                        if r.popular { " popular" } else { "" }
                    ),
                    None => "walk-in".into(),
                };
                println!(
                    "{:>5}  {:<12} {}  {}  {}{}  {}",
                    a.id,
                    a.category.as_str(),
                    a.starts_at.to_rfc3339(),
                    signup,
                    a.title_zh,
                    if a.cancelled_at.is_some() {
                        " (cancelled)"
                    } else {
                        ""
                    },
                    a.place
                );
            }
        }
        ActivityCmd::Audit { db, id, acked } => {
            let store = db.open().await?;
            let seats = store
                .activities()
                .await?
                .into_iter()
                .find(|l| l.activity.id == id)
                .and_then(|l| l.activity.signup.map(|r| r.seats))
                .with_context(|| format!("activity {id} takes no sign-ups"))?;
            let rows = store.signups(id).await?;
            let acked = std::fs::read_to_string(&acked)?;
            println!("{}", audit(seats, &rows, &acked));
        }
        ActivityCmd::Feedback { db, id } => {
            let rows = db.open().await?.feedback(id).await?;
            let (average, spread) = summary(&rows);
            println!(
                "{} ratings, average {:.2}; 1★ {} · 2★ {} · 3★ {} · 4★ {} · 5★ {}",
                rows.len(),
                average,
                spread[0],
                spread[1],
                spread[2],
                spread[3],
                spread[4]
            );
            for r in rows.iter().filter(|r| !r.comment.trim().is_empty()) {
                println!(
                    "  {}★ {}  {}  {}",
                    r.rating,
                    r.member_no,
                    r.at.to_rfc3339(),
                    // on one line, and nothing in it that a terminal would act on (comments
                    // stored before the rule refused such characters)
                    r.comment
                        .chars()
                        .map(|ch| match ch {
                            '\n' | '\t' => ' ',
                            ch if unionpass_core::activity::hidden_control(ch) => '\u{fffd}',
                            ch => ch,
                        })
                        .collect::<String>()
                );
            }
        }
        ActivityCmd::Signups { db, id, csv } => {
            let rows = db.open().await?.signups(id).await?;
            if csv {
                println!("seq,member_no,name,companions,state,checked_in,signed_up_at");
                for r in rows {
                    println!(
                        "{},{},{},{},{},{},{}",
                        r.seq,
                        csv_field(&r.member_no),
                        csv_field(&r.name),
                        r.companions,
                        r.state.as_str(),
                        r.checked_in,
                        r.created_at.to_rfc3339()
                    );
                }
            } else {
                for r in rows {
                    println!(
                        "{:>6}  {:<8} {:<10} +{}  {:<10} {}  {}",
                        r.seq,
                        r.member_no,
                        r.name,
                        r.companions,
                        r.state.as_str(),
                        if r.checked_in { "checked in" } else { "-" },
                        r.created_at.to_rfc3339()
                    );
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use unionpass_core::activity::SignupState;
    use unionpass_server::store::SignupRow;

    fn row(seq: i64, no: &str, companions: i64, state: SignupState) -> SignupRow {
        SignupRow {
            seq,
            member_no: no.into(),
            name: String::new(),
            companions,
            state,
            checked_in: false,
            created_at: chrono::DateTime::default(),
            key: uuid::Uuid::from_u128(seq as u128),
        }
    }

    #[test]
    fn the_audit_finds_each_kind_of_wrong() {
        use SignupState::*;
        let good = [
            row(1, "a", 1, Confirmed),
            row(2, "b", 0, Promoted),
            row(3, "c", 0, Waitlisted),
            row(4, "d", 0, Cancelled),
        ];
        let k = |n: u128| uuid::Uuid::from_u128(n);
        let acked = format!(
            "{} confirmed\n{} waitlisted 1\n{} waitlisted 2\n",
            k(1),
            k(2),
            k(3)
        );
        let a = audit(3, &good, &acked);
        assert_eq!(
            (
                a["over_capacity"].as_i64(),
                a["lost_acks"].as_i64(),
                a["waitlist_out_of_order"].as_i64(),
                a["promotions_out_of_order"].as_i64(),
                a["double_signups"].as_i64()
            ),
            (Some(0), Some(0), Some(0), Some(0), Some(0))
        );
        // too many seats, a lost acknowledgement, a wrong place, a promotion out of order, a
        // member twice
        let bad = [
            row(1, "a", 2, Confirmed),
            row(2, "b", 0, Waitlisted),
            row(3, "c", 0, Promoted),
            row(4, "a", 0, Waitlisted),
        ];
        let acked = format!(
            "{} confirmed\n{} waitlisted 2\n{} confirmed\n",
            k(1),
            k(2),
            k(99)
        );
        let a = audit(3, &bad, &acked);
        assert_eq!(a["over_capacity"], 1);
        assert_eq!(a["lost_acks"], 1);
        assert_eq!(a["waitlist_out_of_order"], 1);
        assert_eq!(a["promotions_out_of_order"], 1);
        assert_eq!(a["double_signups"], 1);
        // a free seat and someone waiting who fits: a promotion that did not happen
        let stuck = [row(1, "a", 0, Confirmed), row(2, "b", 0, Waitlisted)];
        assert_eq!(audit(2, &stuck, "")["unpromoted"], 1);
        assert_eq!(audit(1, &stuck, "")["unpromoted"], 0);
    }
}
