//! Grab reminders kept in the app's store, against a real server: set with a lead time, kept
//! across restarts, fired once, reported as missed when their time passed while the app was not
//! running, moved with a moved campaign and removed (with a notice) for a cancelled one.

use chrono::{DateTime, Duration, Utc};
use unionpass_client::Client;
use unionpass_core::campaign::{Campaign, Category, Reschedule};
use unionpass_core::reminder::{Action, ReminderState};
use unionpass_core::view::NoticeKind;
use unionpass_core::ErrorCode;
use unionpass_server::testing::{t0, TestServer};

fn now() -> DateTime<Utc> {
    t0() + Duration::minutes(1)
}

/// An instant at the store's precision.
fn ms(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap()
}

fn campaign(title: &str, release_in_minutes: i64) -> Campaign {
    Campaign {
        id: 0,
        title_zh: format!("{title}券"),
        title_en: format!("{title} coupon"),
        category: Category::Meal,
        face_value_cents: 1500,
        terms_zh: String::new(),
        terms_en: String::new(),
        coupon_valid_from: t0(),
        coupon_valid_until: t0() + Duration::days(30),
        stock: 10,
        per_member_limit: 1,
        // not on a millisecond: the store keeps milliseconds, and that must not look like a move
        release_at: t0() + Duration::minutes(release_in_minutes) + Duration::nanoseconds(123_456),
        end_at: t0() + Duration::hours(3),
        eligible_unions: vec![],
        eligible_union_names: vec![],
        cancelled_at: None,
    }
}

#[tokio::test]
async fn reminders_fire_once_move_with_their_campaign_and_are_never_dropped_silently() {
    let server = TestServer::start().await;
    let create = |c| server.store.create_campaign(c, t0());
    let a = create(campaign("早餐", 30)).await.unwrap();
    let b = create(campaign("午餐", 60)).await.unwrap();
    let c = create(campaign("晚餐", 90)).await.unwrap();
    let near = create(campaign("夜宵", 20)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let app = Client::open(dir.path()).unwrap();
    app.login(&server.url, "M10004", "demo1234", "phone", now())
        .await
        .unwrap();

    // set: leads from the fixed list, not already past, campaigns known
    assert_eq!(
        app.set_reminder(a.id, 7, now()).unwrap_err().code(),
        ErrorCode::InvalidInput
    );
    assert_eq!(
        app.set_reminder(near.id, 30, now()).unwrap_err().code(),
        ErrorCode::ReminderTooLate,
        "release in 19 min, lead 30"
    );
    assert_eq!(
        app.set_reminder(9999, 5, now()).unwrap_err().code(),
        ErrorCode::CampaignGone
    );
    let ra = app.set_reminder(a.id, 5, now()).unwrap();
    assert_eq!(ra.due_at, ms(a.release_at) - Duration::minutes(5));
    app.set_reminder(b.id, 1, now()).unwrap();
    app.set_reminder(b.id, 10, now()).unwrap(); // changed its mind: one reminder, lead 10
    app.set_reminder(c.id, 30, now()).unwrap();
    app.set_reminder(near.id, 1, now()).unwrap();
    app.clear_reminder(near.id).unwrap();

    let plan = app.reminder_tick(now()).unwrap();
    assert!(plan.actions.is_empty(), "{plan:?}");
    assert_eq!(plan.wake_at, Some(ra.due_at));
    let cal = app.calendar(now()).unwrap();
    let leads: Vec<Option<i64>> = cal
        .entries
        .iter()
        .map(|e| e.reminder.as_ref().map(|r| r.lead_minutes))
        .collect();
    // by release: near (cleared), a, b, c
    assert_eq!(leads, vec![None, Some(5), Some(10), Some(30)]);

    // kept across a restart of the app
    drop(app);
    let app = Client::open(dir.path()).unwrap();
    assert_eq!(app.reminder_tick(now()).unwrap().wake_at, Some(ra.due_at));

    // the union moves b and cancels c; the app learns it with the next sync
    let b_release = b.release_at + Duration::minutes(45);
    server
        .store
        .reschedule_campaign(
            b.id,
            Reschedule::Move {
                release_at: b_release,
                end_at: b_release + Duration::hours(1),
            },
            t0(),
        )
        .await
        .unwrap();
    server
        .store
        .reschedule_campaign(c.id, Reschedule::Cancel, t0())
        .await
        .unwrap();
    app.sync(now()).await.unwrap();
    let plan = app.reminder_tick(now()).unwrap();
    let b_due = ms(b_release) - Duration::minutes(10);
    assert_eq!(
        plan.actions,
        vec![
            Action::Moved {
                campaign_id: b.id,
                from: ms(b.release_at) - Duration::minutes(10),
                due_at: b_due
            },
            Action::Cancelled { campaign_id: c.id },
        ]
    );
    let reminders = app.reminders().unwrap();
    assert_eq!(
        reminders.iter().map(|r| r.campaign_id).collect::<Vec<_>>(),
        vec![a.id, b.id],
        "the cancelled campaign's reminder is removed"
    );

    // a's time: it fires, once
    let plan = app.reminder_tick(ra.due_at).unwrap();
    assert_eq!(
        plan.actions,
        vec![Action::Fire {
            campaign_id: a.id,
            due_at: ra.due_at
        }]
    );
    assert_eq!(plan.wake_at, Some(b_due));
    assert!(app
        .reminder_tick(ra.due_at + Duration::seconds(1))
        .unwrap()
        .actions
        .is_empty());

    // the app was not running at b's time: the next start reports it missed
    drop(app);
    let app = Client::open(dir.path()).unwrap();
    let later = b_due + Duration::minutes(3);
    let plan = app.reminder_tick(later).unwrap();
    assert_eq!(
        plan.actions,
        vec![Action::Missed {
            campaign_id: b.id,
            due_at: b_due
        }]
    );
    assert_eq!(plan.wake_at, None);
    let states: Vec<ReminderState> = app
        .reminders()
        .unwrap()
        .into_iter()
        .map(|r| r.state)
        .collect();
    assert_eq!(
        states,
        vec![
            ReminderState::Fired { at: ra.due_at },
            ReminderState::Missed { due_at: b_due }
        ]
    );

    // every notice is shown until dismissed, with the campaign's title
    let notices = app.snapshot(later).unwrap().notices;
    let kinds: Vec<(i64, &NoticeKind)> = notices.iter().map(|n| (n.campaign_id, &n.kind)).collect();
    assert_eq!(
        kinds,
        vec![
            (
                b.id,
                &NoticeKind::Moved {
                    release_at: ms(b_release),
                    due_at: b_due
                }
            ),
            (c.id, &NoticeKind::Cancelled),
            (
                b.id,
                &NoticeKind::Missed {
                    due_at: b_due,
                    release_at: ms(b_release)
                }
            ),
        ]
    );
    assert_eq!(notices[1].title_zh, "晚餐券");
    let ids: Vec<i64> = notices.iter().map(|n| n.id).collect();
    app.dismiss_notices(&ids[..2]).unwrap();
    let left = app.snapshot(later).unwrap().notices;
    assert_eq!(left.iter().map(|n| n.id).collect::<Vec<_>>(), vec![ids[2]]);
    // a cancelled campaign takes no new reminder
    assert_eq!(
        app.set_reminder(c.id, 1, now()).unwrap_err().code(),
        ErrorCode::CampaignGone
    );
}
