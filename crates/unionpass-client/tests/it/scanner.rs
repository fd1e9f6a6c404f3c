//! Scanner mode: a member device and a staff device, each with its own data dir and keyring
//! entries, against a real server; the scanning itself happens with the server down.

use chrono::{DateTime, Duration, Utc};
use unionpass_client::Client;
use unionpass_core::activity::Activity;
use unionpass_core::i18n::Lang;
use unionpass_core::ErrorCode;
use unionpass_server::testing::{t0, TestServer};

fn now() -> DateTime<Utc> {
    t0() + Duration::minutes(1)
}

/// The live QR as a PNG, the way a screenshot of the member's screen would carry it.
fn png_of(text: &str) -> Vec<u8> {
    let code =
        qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::Q).unwrap();
    let (n, scale, quiet) = (code.width() as u32, 4u32, 4u32);
    let size = (n + 2 * quiet) * scale;
    let colors = code.to_colors();
    let img = image::GrayImage::from_fn(size, size, |x, y| {
        let (mx, my) = (x / scale, y / scale);
        let dark = mx >= quiet
            && my >= quiet
            && mx < n + quiet
            && my < n + quiet
            && colors[((my - quiet) * n + (mx - quiet)) as usize] == qrcode::Color::Dark;
        image::Luma([if dark { 0 } else { 255 }])
    });
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    png
}

struct Devices {
    server: TestServer,
    member: Client,
    staff: Client,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

async fn devices(member_no: &str) -> Devices {
    let server = TestServer::start().await;
    let (md, sd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let member = Client::open(md.path()).unwrap();
    member
        .login(&server.url, member_no, "demo1234", "member phone", now())
        .await
        .unwrap();
    let staff = Client::open(sd.path()).unwrap();
    staff
        .login(&server.url, "S20001", "demo1234", "scanner", now())
        .await
        .unwrap();
    Devices {
        server,
        member,
        staff,
        _dirs: (md, sd),
    }
}

#[tokio::test]
async fn offline_check_in_from_an_image_then_duplicate_stale_and_upload() {
    let mut d = devices("M10001").await;
    let view = d.staff.scanner_view(None, now()).unwrap();
    assert_eq!(view.events.len(), 2);
    assert!(!view.trust_stale);
    let event = view
        .events
        .iter()
        .find(|e| e.union_id.is_some())
        .unwrap()
        .clone();

    // the network is cut: everything below happens offline
    d.server.stop().await;
    let shot = png_of(&d.member.live_passport(now()).unwrap().text);
    let first = d.staff.scan_image(event.id, &shot, now()).unwrap();
    assert!(first.ok, "{first:?}");
    assert_eq!(first.member_no.as_deref(), Some("M10001"));

    let again = d
        .staff
        .scan_image(event.id, &shot, now() + Duration::seconds(5))
        .unwrap();
    assert_eq!(again.code, Some(ErrorCode::AlreadyCheckedIn));
    assert_eq!(again.earlier_at, Some(now()));
    assert_eq!(again.earlier_scanner, None, "it was this scanner");

    let later = now() + Duration::seconds(90);
    let stale = d.staff.scan_image(event.id, &shot, later).unwrap();
    assert_eq!(stale.code, Some(ErrorCode::PassportStale));
    // a fresh code 90 s later is fine as a passport, but the member is already in
    let fresh = d.member.live_passport(later).unwrap().text;
    assert_eq!(
        d.staff.scan_text(event.id, &fresh, later).unwrap().code,
        Some(ErrorCode::AlreadyCheckedIn)
    );
    assert_eq!(
        d.staff
            .scan_image(event.id, b"not a picture", later)
            .unwrap()
            .code,
        Some(ErrorCode::NoQrFound)
    );
    assert_eq!(
        d.staff.scan_text(event.id, "HELLO", later).unwrap().code,
        Some(ErrorCode::PassportBadFormat)
    );

    let view = d.staff.scanner_view(Some(event.id), later).unwrap();
    assert_eq!(view.checked_in, 1);
    assert_eq!(view.checkins.len(), 1);
    assert!(view.checkins[0].ours && !view.checkins[0].uploaded);
    assert_eq!((view.made_here, view.made_here_waiting), (1, 1));
    assert_eq!(d.staff.snapshot(later).unwrap().sync.pending, 1);

    // back online: the check-in is uploaded exactly once and confirmed by the server
    d.server.restart().await;
    d.staff.sync(later).await.unwrap();
    let view = d.staff.scanner_view(Some(event.id), later).unwrap();
    assert!(view.checkins[0].uploaded);
    assert_eq!((view.made_here, view.made_here_waiting), (1, 0));
    assert_eq!(d.staff.snapshot(later).unwrap().sync.pending, 0);
    let token = d.server.login("S20001").await;
    let bundle: unionpass_core::checkin::ScannerBundle =
        d.server.get_json("/v1/scanner", Some(&token)).await;
    assert_eq!(
        bundle
            .checkins
            .iter()
            .filter(|c| c.event_id == event.id)
            .count(),
        1
    );
}

/// A colleague's scanner (S20002, the demo's second staff account of the same union).
/// The scanner's event of its own union (the demo's other one is open to every union).
fn own_union_event(staff: &Client) -> unionpass_core::checkin::Event {
    staff
        .scanner_view(None, now())
        .unwrap()
        .events
        .into_iter()
        .find(|e| e.union_id.is_some())
        .unwrap()
}

async fn colleague(d: &Devices) -> (tempfile::TempDir, Client) {
    let dir = tempfile::tempdir().unwrap();
    let staff = Client::open(dir.path()).unwrap();
    staff
        .login(&d.server.url, "S20002", "demo1234", "scanner 2", now())
        .await
        .unwrap();
    (dir, staff)
}

/// The server ends a scanner's session (the staff member signed out everywhere from another
/// device) while check-ins made at the door still wait here. The device forgets the staff member
/// but holds those check-ins, says so at the sign-in, and uploads them, credited to the same
/// staff member, when they sign in again here. Another staff member signing in instead drops
/// them: the server would credit the wrong person.
#[tokio::test]
async fn check_ins_waiting_when_the_server_ends_the_session_go_up_at_the_same_sign_in() {
    let d = devices("M10001").await;
    let second = Client::open(d._dirs.0.path().join("second").as_path()).unwrap();
    second
        .login(&d.server.url, "M10002", "demo1234", "phone 2", now())
        .await
        .unwrap();
    let event = own_union_event(&d.staff).id;
    let end_sessions_of = |staff_no: &'static str| {
        let url = d.server.url.clone();
        async move {
            let dir = tempfile::tempdir().unwrap();
            let elsewhere = Client::open(dir.path()).unwrap();
            elsewhere
                .login(&url, staff_no, "demo1234", "lost phone's owner", now())
                .await
                .unwrap();
            assert_eq!(elsewhere.sign_out_everywhere().await.unwrap(), 2);
        }
    };
    let sign_in_here = |no: &'static str| {
        d.staff
            .login(&d.server.url, no, "demo1234", "scanner", now())
    };
    let on_server = |c: &Client, member: &str| {
        c.scanner_view(Some(event), now())
            .unwrap()
            .checkins
            .into_iter()
            .find(|r| r.member_no == member)
    };

    let code = d.member.live_passport(now()).unwrap().text;
    assert!(d.staff.scan_text(event, &code, now()).unwrap().ok);
    // a store from before each waiting change's kind was kept names it too, once migrated
    let (_old, upgraded) = staff_store_before(&d, "0026_outbox_kind");
    let kinds = upgraded.snapshot(now()).unwrap().sync.pending_kinds;
    assert_eq!(
        kinds
            .iter()
            .map(|k| (k.kind.as_str(), k.n))
            .collect::<Vec<_>>(),
        [("check_in", 1)]
    );
    drop(upgraded);
    end_sessions_of("S20001").await;
    assert_eq!(
        d.staff.sync(now()).await.unwrap_err().code(),
        ErrorCode::SessionEnded
    );
    let snap = d.staff.snapshot(now()).unwrap();
    assert!(!snap.logged_in && snap.profile.is_none());
    assert_eq!(
        (snap.signed_out, snap.held),
        (Some(ErrorCode::SessionEnded), 1)
    );
    assert_eq!(
        snap.held_for.as_deref(),
        Some("S20001"),
        "the sign-in fills it in"
    );
    let kinds: Vec<_> = snap
        .sync
        .pending_kinds
        .iter()
        .map(|k| (k.kind.as_str(), k.n))
        .collect();
    assert_eq!(kinds, [("check_in", 1)], "named by kind");
    assert!(d
        .staff
        .scanner_view(Some(event), now())
        .unwrap()
        .checkins
        .is_empty());
    // the same staff member again: the check-in goes up with the first sync, in their name
    let report = sign_in_here("S20001").await.unwrap();
    assert_eq!((report.pushed, report.rejected), (1, 0));
    assert_eq!(d.staff.snapshot(now()).unwrap().held, 0);
    let row = on_server(&d.staff, "M10001").expect("the held check-in reached the server");
    assert!(row.uploaded && row.ours, "{row:?}");
    assert_eq!(row.staff.as_deref(), Some("郑晓梅"));
    let v = d.staff.scanner_view(Some(event), now()).unwrap();
    assert_eq!((v.made_here, v.made_here_waiting), (1, 0));

    // again, but a colleague signs in on this device: the waiting check-in is dropped unsent
    let code = second.live_passport(now()).unwrap().text;
    assert!(d.staff.scan_text(event, &code, now()).unwrap().ok);
    end_sessions_of("S20001").await;
    assert_eq!(
        d.staff.sync(now()).await.unwrap_err().code(),
        ErrorCode::SessionEnded
    );
    assert_eq!(d.staff.snapshot(now()).unwrap().held, 1);
    let report = sign_in_here("S20002").await.unwrap();
    assert_eq!((report.pushed, report.rejected), (0, 0));
    let snap = d.staff.snapshot(now()).unwrap();
    assert_eq!((snap.sync.pending, snap.held, snap.held_for), (0, 0, None));
    assert!(on_server(&d.staff, "M10001").is_some(), "the bundle came");
    assert!(
        on_server(&d.staff, "M10002").is_none(),
        "the other staff member's check-in was not sent"
    );
}

#[tokio::test]
async fn a_second_scanner_learns_of_check_ins_through_sync_and_conflicts_are_shown() {
    let d = devices("M10002").await;
    let (_sd2, staff2) = colleague(&d).await;
    let event = d.staff.scanner_view(None, now()).unwrap().events[0].clone();
    let code = d.member.live_passport(now()).unwrap().text;
    // both scan the member before either has synced: the server keeps the first, reports both
    assert!(d.staff.scan_text(event.id, &code, now()).unwrap().ok);
    let t2 = now() + Duration::seconds(3);
    assert!(staff2.scan_text(event.id, &code, t2).unwrap().ok);
    d.staff.sync(now()).await.unwrap();
    staff2.sync(t2).await.unwrap();
    d.staff.sync(t2).await.unwrap();
    for s in [&d.staff, &staff2] {
        let v = s.scanner_view(Some(event.id), t2).unwrap();
        assert_eq!(v.conflicts.len(), 1, "{v:?}");
        assert_eq!(v.checked_in, 1);
        // each scan is named by the staff member the server saw upload it
        let c = &v.conflicts[0];
        assert_eq!(c.first_staff.as_deref(), Some("郑晓梅"), "{c:?}");
        assert_eq!(c.second_staff.as_deref(), Some("韩立新"), "{c:?}");
    }
    // scanner 2's log has scanner 1's check-in (the one kept), with who scanned it; of the
    // two rows, one was made here
    let door = staff2.scanner_view(Some(event.id), t2).unwrap();
    assert_eq!(door.checkins.len(), 2);
    assert_eq!((door.made_here, door.made_here_waiting), (1, 0));
    let kept = door
        .checkins
        .iter()
        .find(|r| !r.ours)
        .expect("scanner 1's check-in");
    assert_eq!(kept.staff.as_deref(), Some("郑晓梅"));
    // a third scan on scanner 2 now names scanner 1's earlier check-in, and who made it
    let t3 = now() + Duration::seconds(10);
    let code = d.member.live_passport(t3).unwrap().text;
    let third = staff2.scan_text(event.id, &code, t3).unwrap();
    assert_eq!(third.code, Some(ErrorCode::AlreadyCheckedIn));
    assert_eq!(third.earlier_at, Some(now()));
    assert!(third.earlier_scanner.is_some());
    assert_eq!(third.earlier_staff.as_deref(), Some("郑晓梅"));
}

#[tokio::test]
async fn a_revoked_device_and_an_ineligible_member_are_refused_offline() {
    let d = devices("M10008").await; // a member of the second union
    let events = d.staff.scanner_view(None, now()).unwrap().events;
    let own = events.iter().find(|e| e.union_id.is_some()).unwrap();
    let open = events.iter().find(|e| e.union_id.is_none()).unwrap();
    let code = d.member.live_passport(now()).unwrap().text;
    assert_eq!(
        d.staff.scan_text(own.id, &code, now()).unwrap().code,
        Some(ErrorCode::NotEligible)
    );

    // the member revokes this phone from another device; the scanner syncs the revocation
    let other_dir = tempfile::tempdir().unwrap();
    let other = Client::open(other_dir.path()).unwrap();
    other
        .login(&d.server.url, "M10008", "demo1234", "laptop", now())
        .await
        .unwrap();
    let snap = other.snapshot(now()).unwrap();
    assert_eq!(snap.devices.len(), 2);
    let phone = snap.devices.iter().find(|x| !x.current).unwrap();
    other.revoke_device(phone.id, now()).unwrap();
    assert_eq!(other.snapshot(now()).unwrap().devices.len(), 1);
    other.sync(now()).await.unwrap();
    d.staff.sync(now()).await.unwrap();
    assert_eq!(
        d.staff.scan_text(open.id, &code, now()).unwrap().code,
        Some(ErrorCode::PassportRevokedDevice)
    );
    // and the revoked phone's session is over: the phone forgets the member, and says why
    assert_eq!(
        d.member.sync(now()).await.unwrap_err().code(),
        ErrorCode::SessionEnded
    );
    let snap = d.member.snapshot(now()).unwrap();
    assert!(!snap.logged_in);
    assert_eq!(snap.signed_out, Some(ErrorCode::SessionEnded));
    assert!(
        d.member.live_passport(now()).is_err(),
        "the passport went with it"
    );
}

#[tokio::test]
async fn the_trust_list_age_warning_follows_the_chosen_limit() {
    let d = devices("M10003").await;
    assert!(!d.staff.scanner_view(None, now()).unwrap().trust_stale);
    let later = now() + Duration::days(8);
    let v = d.staff.scanner_view(None, later).unwrap();
    assert!(v.trust_stale);
    assert_eq!(v.max_age_days, 7);
    d.staff.set_trust_max_age_days(10).unwrap();
    assert!(!d.staff.scanner_view(None, later).unwrap().trust_stale);
    assert!(d.staff.set_trust_max_age_days(0).is_err());
    // a member device has no trust list at all
    assert!(d.member.scanner_view(None, now()).unwrap().trust_stale);
    // a suspended member reaches the scanner's revocation list with its next sync
    let event = d.staff.scanner_view(None, now()).unwrap().events[0].id;
    let code = d.member.live_passport(now()).unwrap().text;
    assert!(d.server.store.suspend_member("M10003", t0()).await.unwrap());
    d.staff.sync(now()).await.unwrap();
    assert_eq!(
        d.staff.scan_text(event, &code, now()).unwrap().code,
        Some(ErrorCode::PassportRevokedMember)
    );
}

/// An activity starting in an hour, its sign-up open since `t0` (`rules`: seats, waitlist,
/// companions).
fn in_an_hour(title: &str, place: &str, rules: (i64, i64, i64)) -> Activity {
    crate::activity(title, place, t0() + Duration::hours(1), t0(), rules)
}

/// Publish `a` on the test server.
async fn publish(d: &Devices, a: Activity) -> Activity {
    d.server.store.create_activity(a, t0()).await.unwrap()
}

/// At the door of an activity that takes sign-ups, offline: a member with a place comes in with
/// their companions shown; one without a sign-up is refused, saying so.
#[tokio::test]
async fn the_door_of_a_sign_up_activity_knows_who_has_a_place_offline() {
    let mut d = devices("M10001").await;
    let a = publish(
        &d,
        Activity {
            title_en: "Family sports day".into(),
            place_en: "Sports centre".into(),
            ..in_an_hour("亲子运动会", "体育中心", (100, 0, 2))
        },
    )
    .await;
    d.member.sign_up(a.id, 2, now()).await.unwrap();
    let od = tempfile::tempdir().unwrap();
    let other = Client::open(od.path()).unwrap();
    other
        .login(&d.server.url, "M10002", "demo1234", "phone", now())
        .await
        .unwrap();
    d.staff.sync(now()).await.unwrap();
    // kept with both titles and places: the event picker reads in the staff member's language
    let event = d.staff.scanner_view(Some(a.id), now()).unwrap().events;
    let event = event.iter().find(|e| e.id == a.id).unwrap();
    assert_eq!(
        (event.title_in(Lang::ZhCn), event.title_in(Lang::En)),
        ("亲子运动会", "Family sports day")
    );
    assert_eq!(
        (event.place_in(Lang::ZhCn), event.place_in(Lang::En)),
        ("体育中心", "Sports centre")
    );

    d.server.stop().await;
    let placed = d
        .staff
        .scan_text(a.id, &d.member.live_passport(now()).unwrap().text, now())
        .unwrap();
    assert!(placed.ok, "{placed:?}");
    assert_eq!(
        (placed.companions, placed.name.as_deref()),
        (Some(2), Some("王芳"))
    );
    let refused = d
        .staff
        .scan_text(a.id, &other.live_passport(now()).unwrap().text, now())
        .unwrap();
    assert_eq!(refused.code, Some(ErrorCode::NotSignedUp));
    assert!(!refused.ok);
    // scanned again: already in, and the card says the two came in with the member
    let again = d
        .staff
        .scan_text(a.id, &d.member.live_passport(now()).unwrap().text, now())
        .unwrap();
    assert_eq!(
        (again.code, again.companions),
        (Some(ErrorCode::AlreadyCheckedIn), Some(2))
    );
    // through the door: one member with two companions; the one refused is not counted
    let door = d.staff.scanner_view(Some(a.id), now()).unwrap();
    assert_eq!((door.checked_in, door.checked_in_companions), (1, 2));
    assert_eq!(door.made_here_waiting, 1);

    // back online: the check-in is uploaded; the member's app learns they came, and their
    // feedback (given offline, pending at first) reaches the server
    d.server.restart().await;
    d.staff.sync(now()).await.unwrap();
    let card = |app: &Client| {
        app.activities(now())
            .unwrap()
            .cards
            .into_iter()
            .find(|c| c.activity.id == a.id)
            .unwrap()
    };
    assert_eq!(
        d.member
            .give_feedback(a.id, 5, "", now())
            .unwrap_err()
            .code(),
        ErrorCode::FeedbackNotAttended,
        "not before the app knows they came"
    );
    d.member.sync(now()).await.unwrap();
    assert!(card(&d.member).attended);
    assert_eq!(
        d.member
            .give_feedback(a.id, 4, "", now())
            .unwrap_err()
            .code(),
        ErrorCode::FeedbackTooEarly,
        "not while the activity is still going on"
    );
    // once it has ended by the server's clock: this phone's clock is five minutes behind, and
    // by it the activity has not ended yet. What a paste brings along that the server would
    // refuse is dropped on the device
    let after = a.ends_at + Duration::minutes(2);
    d.server.clock.set(after);
    let phone = after - Duration::minutes(5);
    d.member.measure_clock(move || phone).await.unwrap();
    d.member
        .give_feedback(a.id, 4, "很热闹\u{202e}\0", phone)
        .unwrap();
    let pending = card(&d.member);
    assert!(pending.feedback_pending);
    assert_eq!(
        pending.feedback.map(|f| (f.rating, f.comment)),
        Some((4, "很热闹".to_string()))
    );
    d.member.sync(after).await.unwrap();
    let kept = card(&d.member);
    assert!(!kept.feedback_pending);
    let rows = d.server.store.feedback(a.id).await.unwrap();
    assert_eq!(
        rows.iter()
            .map(|r| (r.rating, r.comment.as_str()))
            .collect::<Vec<_>>(),
        vec![(4, "很热闹")]
    );
}

/// The door let a member in on its last list, but they had cancelled since: the server refuses
/// the check-in at the upload, and the door's count of people no longer has them or their
/// companions.
#[tokio::test]
async fn a_check_in_the_server_refuses_leaves_the_doors_count() {
    let d = devices("M10001").await;
    let a = publish(&d, in_an_hour("亲子运动会", "体育中心", (100, 0, 2))).await;
    d.member.sign_up(a.id, 2, now()).await.unwrap();
    d.staff.sync(now()).await.unwrap();
    // cancelled after the scanner's last sync: its list still has the place
    d.member.cancel_signup(a.id).await.unwrap();
    let passed = d
        .staff
        .scan_text(a.id, &d.member.live_passport(now()).unwrap().text, now())
        .unwrap();
    assert!(passed.ok, "{passed:?}");
    let door = d.staff.scanner_view(Some(a.id), now()).unwrap();
    assert_eq!((door.checked_in, door.checked_in_companions), (1, 2));

    d.staff.sync(now()).await.unwrap();
    let door = d.staff.scanner_view(Some(a.id), now()).unwrap();
    let refused = door.checkins.iter().find(|c| c.member_no == "M10001");
    assert_eq!(
        refused.and_then(|c| c.refused),
        Some(ErrorCode::NotSignedUp),
        "the log keeps the scan, with the server's reason"
    );
    assert_eq!((door.checked_in, door.checked_in_companions), (0, 0));
    // answered, if with a refusal: nothing of this door waits to go
    assert_eq!((door.made_here, door.made_here_waiting), (1, 0));
}

/// Offline at the door, a member still on the waitlist is refused as such (no place yet).
#[tokio::test]
async fn a_member_still_waiting_is_refused_at_the_door_offline() {
    let mut d = devices("M10001").await;
    let a = publish(&d, in_an_hour("插花课", "工人文化宫", (2, 5, 2))).await;
    let od = tempfile::tempdir().unwrap();
    let first = Client::open(od.path()).unwrap();
    first
        .login(&d.server.url, "M10002", "demo1234", "phone", now())
        .await
        .unwrap();
    // the first takes both places (with a companion); the second waits with two companions
    first.sign_up(a.id, 1, now()).await.unwrap();
    d.member.sign_up(a.id, 2, now()).await.unwrap();
    d.staff.sync(now()).await.unwrap();
    d.server.stop().await;
    let waiting = d
        .staff
        .scan_text(a.id, &d.member.live_passport(now()).unwrap().text, now())
        .unwrap();
    assert_eq!(waiting.code, Some(ErrorCode::StillWaitlisted));
    assert_eq!(waiting.name.as_deref(), Some("王芳"));
    let placed = d
        .staff
        .scan_text(a.id, &first.live_passport(now()).unwrap().text, now())
        .unwrap();
    assert!(placed.ok, "{placed:?}");
    // the door counts the one let in and their companion, not the waiting member's party
    let door = d.staff.scanner_view(Some(a.id), now()).unwrap();
    assert_eq!((door.checked_in, door.checked_in_companions), (1, 1));
}

/// `member_no` signed in on a phone whose data lives in `dir`.
async fn signed_in(d: &Devices, member_no: &str, dir: &tempfile::TempDir) -> Client {
    let app = Client::open(dir.path()).unwrap();
    app.login(&d.server.url, member_no, "demo1234", "phone", now())
        .await
        .unwrap();
    app
}

/// An activity of three places whose scanner's list has the member (M10001) waiting with two
/// companions, promoted since: M10002 took the places with two companions, the scanner synced,
/// then M10002 gave them up.
async fn promoted_after_the_list(d: &Devices) -> Activity {
    let a = publish(d, in_an_hour("插花课", "工人文化宫", (3, 5, 2))).await;
    let fd = tempfile::tempdir().unwrap();
    let first = signed_in(d, "M10002", &fd).await;
    first.sign_up(a.id, 2, now()).await.unwrap();
    d.member.sign_up(a.id, 2, now()).await.unwrap();
    d.staff.sync(now()).await.unwrap();
    first.cancel_signup(a.id).await.unwrap();
    a
}

/// The door's list is older than a promotion: offline, the promoted member is refused as still
/// waiting, and staff, having seen the place on the member's phone, let them in by hand. A member
/// with no place at all is let in by hand too (staff were wrong). Back online, the server judges
/// both by its own list: the first is checked in (so not a no-show), the second is refused and
/// leaves the door's count. Letting in by hand overrides the list alone, for a scan it refused:
/// no companions are counted for it, a code that does not verify stays refused, and a code the
/// list did not just refuse, or one refused more than `LET_IN_WITHIN` ago, must be scanned
/// again.
#[tokio::test]
async fn staff_let_in_by_hand_whom_the_door_list_refused_and_the_server_judges_it() {
    let mut d = devices("M10001").await;
    let a = promoted_after_the_list(&d).await;
    let nd = tempfile::tempdir().unwrap();
    let nobody = signed_in(&d, "M10003", &nd).await;
    d.member.sync(now()).await.unwrap();

    d.server.stop().await;
    let code = d.member.live_passport(now()).unwrap().text;
    let waiting = d.staff.scan_text(a.id, &code, now()).unwrap();
    assert_eq!(waiting.code, Some(ErrorCode::StillWaitlisted));
    assert_eq!(waiting.by_hand_code.as_deref(), Some(code.trim()));
    let at = waiting.at;
    let later = now() + Duration::seconds(40);
    let let_in = d.staff.let_in(a.id, &code, at, later).unwrap();
    assert!(let_in.ok && let_in.by_hand, "{let_in:?}");
    assert_eq!((let_in.at, let_in.companions), (at, None));
    // one person through the door: the list's two companions of a waiting member are not counted
    let door = d.staff.scanner_view(Some(a.id), later).unwrap();
    assert_eq!((door.checked_in, door.checked_in_companions), (1, 0));
    // scanned again: already in
    let again = d.staff.scan_text(a.id, &code, later).unwrap();
    assert_eq!(again.code, Some(ErrorCode::AlreadyCheckedIn));
    assert_eq!(again.by_hand_code, None);
    let none = nobody.live_passport(now()).unwrap().text;
    // a code the list has not refused (nor any scan at that time) cannot be let in
    let stale = |o: unionpass_core::view::ScanOutcome| (o.ok, o.code);
    let unrefused = d.staff.let_in(a.id, &none, now(), later).unwrap();
    assert_eq!(stale(unrefused), (false, Some(ErrorCode::PassportStale)));
    let refused = d.staff.scan_text(a.id, &none, now()).unwrap();
    assert_eq!(refused.code, Some(ErrorCode::NotSignedUp));
    let other_time = d
        .staff
        .let_in(a.id, &none, refused.at - Duration::seconds(30), later)
        .unwrap();
    assert_eq!(stale(other_time), (false, Some(ErrorCode::PassportStale)));
    // a refusal at the door of another event is not this one's
    let elsewhere = d.staff.let_in(a.id + 1, &none, refused.at, later).unwrap();
    assert_eq!(stale(elsewhere), (false, Some(ErrorCode::PassportStale)));
    // not more than LET_IN_WITHIN after the scan (the times passed are the device's, as the
    // scan's was: now())
    let within = unionpass_client::client::LET_IN_WITHIN;
    let too_late = d
        .staff
        .let_in(
            a.id,
            &none,
            refused.at,
            now() + within + Duration::seconds(1),
        )
        .unwrap();
    assert_eq!(stale(too_late), (false, Some(ErrorCode::PassportStale)));
    let refused = d.staff.scan_text(a.id, &none, now()).unwrap();
    assert!(
        d.staff
            .let_in(a.id, &none, refused.at, now() + within)
            .unwrap()
            .by_hand
    );
    // a code that does not verify is no refusal by the list
    let bad = d.staff.scan_text(a.id, "not a passport", now()).unwrap();
    assert_eq!(bad.by_hand_code, None);
    let still = d
        .staff
        .let_in(a.id, "not a passport", bad.at, later)
        .unwrap();
    assert_eq!(stale(still), (false, Some(ErrorCode::PassportStale)));
    let door = d.staff.scanner_view(Some(a.id), later).unwrap();
    assert_eq!((door.checked_in, door.checked_in_by_hand), (2, 2));
    assert!(
        door.checkins.iter().all(|c| c.by_hand),
        "{:?}",
        door.checkins
    );

    d.server.restart().await;
    d.staff.sync(later).await.unwrap();
    let door = d.staff.scanner_view(Some(a.id), later).unwrap();
    let row = |no: &str| door.checkins.iter().find(|c| c.member_no == no).unwrap();
    assert_eq!(
        (row("M10001").refused, row("M10001").uploaded),
        (None, true),
        "the server found the place"
    );
    assert_eq!(row("M10003").refused, Some(ErrorCode::NotSignedUp));
    // the new list has the member's place with two companions; staff counted any at the door.
    // Both let-ins are judged now: none is waiting for the server
    assert_eq!((door.checked_in, door.checked_in_companions), (1, 0));
    assert_eq!(door.checked_in_by_hand, 0);
    // and a repeat scan says none came in with the member (the list's place came later)
    let again = d.staff.scan_text(a.id, &code, later).unwrap();
    assert_eq!(
        (again.code, again.companions),
        (Some(ErrorCode::AlreadyCheckedIn), None)
    );
    d.member.sync(later).await.unwrap();
    let card = d
        .member
        .activities(later)
        .unwrap()
        .cards
        .into_iter()
        .find(|c| c.activity.id == a.id)
        .unwrap();
    assert!(
        card.attended,
        "the member came, whatever the scanner's list said"
    );
}

/// The scanner synced between the list's refusal and the tap on 放行并记录: its new list has the
/// place, so the member comes in as by any scan, not by hand, with their companions.
#[tokio::test]
async fn a_let_in_after_the_list_caught_up_is_an_ordinary_check_in() {
    let d = devices("M10001").await;
    let a = promoted_after_the_list(&d).await;
    let code = d.member.live_passport(now()).unwrap().text;
    let waiting = d.staff.scan_text(a.id, &code, now()).unwrap();
    assert_eq!(waiting.code, Some(ErrorCode::StillWaitlisted));

    d.staff.sync(now()).await.unwrap();
    let came = d.staff.let_in(a.id, &code, waiting.at, now()).unwrap();
    assert!(came.ok && !came.by_hand, "{came:?}");
    assert_eq!(came.companions, Some(2));
    let door = d.staff.scanner_view(Some(a.id), now()).unwrap();
    assert_eq!((door.checked_in, door.checked_in_companions), (1, 2));
    assert!(!door.checkins[0].by_hand);
}

/// Clocks that lie: the member's phone and the staff scanner each run fast or slow (45 s and
/// 2 minutes, both directions). Each app measured its offset from the server when it was
/// online, so the code the phone shows is the one for the server's time step, and the scanner
/// judges it by the server's time too: accepted. Before the phone measured, its 2-minute error
/// made its code stale at the same scanner.
#[tokio::test]
async fn codes_from_a_phone_whose_clock_is_off_pass_a_scanner_whose_clock_is_off_too() {
    for (phone, scanner) in [(120, -45), (-120, 45), (45, 120), (-45, -120)] {
        let d = devices("M10001").await;
        let event = own_union_event(&d.staff);
        let phone_at = |t: DateTime<Utc>| t + Duration::seconds(phone);
        let scanner_at = |t: DateTime<Utc>| t + Duration::seconds(scanner);
        if phone.abs() == 120 {
            // not measured yet: the phone's own clock picks a step the scanner refuses
            let code = d.member.live_passport(phone_at(now())).unwrap().text;
            let refused = d.staff.scan_text(event.id, &code, now()).unwrap();
            assert_eq!(
                refused.code,
                Some(ErrorCode::PassportStale),
                "{phone}: {refused:?}"
            );
        }
        // the test server's clock stands at t0: each device reads its own skewed clock then
        d.member
            .measure_clock(move || phone_at(t0()))
            .await
            .unwrap();
        d.staff
            .measure_clock(move || scanner_at(t0()))
            .await
            .unwrap();
        let live = d.member.live_passport(phone_at(now())).unwrap();
        // the countdown runs on the phone's clock: the step ends within 30 s of the phone's now
        let left = live.step_ends_at - phone_at(now());
        assert!(
            left > Duration::zero() && left <= Duration::seconds(30),
            "{phone}: {left}"
        );
        let out = d
            .staff
            .scan_text(event.id, &live.text, scanner_at(now()))
            .unwrap();
        assert!(out.ok, "phone {phone:+} s, scanner {scanner:+} s: {out:?}");
        assert_eq!(out.member_no.as_deref(), Some("M10001"));
    }
}

/// Copy `from` into `into`, adding what passes to `total`.
async fn pipe(
    mut from: impl tokio::io::AsyncRead + Unpin,
    mut into: impl tokio::io::AsyncWrite + Unpin,
    total: std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 || into.write_all(&buf[..n]).await.is_err() {
            break;
        }
        total.fetch_add(n as u64, std::sync::atomic::Ordering::SeqCst);
    }
    let _ = into.shutdown().await;
}

/// A loopback proxy in front of `to` that counts every byte it carries, both ways.
async fn counting_proxy(
    to: std::net::SocketAddr,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let total = count.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(to).await else {
                continue;
            };
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::spawn(pipe(cr, sw, total.clone()));
            tokio::spawn(pipe(sr, cw, total.clone()));
        }
    });
    (addr, count)
}

/// A staff laptop at a 10,000-person event syncs again with nothing new: the whole sync (push,
/// pull, scanner bundle, requests and answers) is under 2 KB, because each part of the bundle it
/// already holds is left out by its validator. One more check-in at the door, and only that part
/// travels again; revocations arrive at the next sync all the same.
#[tokio::test]
async fn a_scanner_with_nothing_new_transfers_under_2_kb_and_then_only_what_changed() {
    use std::sync::atomic::Ordering;
    let server = TestServer::start().await;
    let (proxy, bytes) = counting_proxy(server.addr).await;
    let dir = tempfile::tempdir().unwrap();
    let staff = Client::open(dir.path()).unwrap();
    staff
        .login(
            &format!("http://{proxy}"),
            "S20001",
            "demo1234",
            "door laptop",
            now(),
        )
        .await
        .unwrap();
    let event = own_union_event(&staff);
    assert_eq!(
        server
            .store
            .bench_checkins(event.id, 5_000_000, 10_000, now())
            .await
            .unwrap(),
        10_000
    );
    let before = bytes.load(Ordering::SeqCst);
    staff.sync(now()).await.unwrap();
    let full = bytes.load(Ordering::SeqCst) - before;
    assert_eq!(
        staff
            .scanner_view(Some(event.id), now())
            .unwrap()
            .checked_in,
        10_000
    );

    // nothing new
    let before = bytes.load(Ordering::SeqCst);
    staff.sync(now()).await.unwrap();
    let again = bytes.load(Ordering::SeqCst) - before;
    assert!(
        again < 2048,
        "a sync with nothing new moved {again} bytes (the first: {full})"
    );
    assert_eq!(
        staff
            .scanner_view(Some(event.id), now())
            .unwrap()
            .checked_in,
        10_000,
        "what was held is kept"
    );

    // one more at the door: the check-ins travel again, the rest (names, keys) does not
    server
        .store
        .bench_checkins(event.id, 6_000_000, 1, now())
        .await
        .unwrap();
    let before = bytes.load(Ordering::SeqCst);
    staff.sync(now()).await.unwrap();
    let changed = bytes.load(Ordering::SeqCst) - before;
    assert_eq!(
        staff
            .scanner_view(Some(event.id), now())
            .unwrap()
            .checked_in,
        10_001
    );
    // (the full first answer plus one check-in's row: about the same, not twice it)
    assert!(
        changed > again && changed < full + full / 10,
        "{again} < {changed} < {full} + 10 %"
    );

    // a member suspended: the revocation reaches the scanner at the next sync, and the sync
    // after that is small again
    let md = tempfile::tempdir().unwrap();
    let member = Client::open(md.path()).unwrap();
    member
        .login(&server.url, "M10002", "demo1234", "phone", now())
        .await
        .unwrap();
    let code = member.live_passport(now()).unwrap().text;
    assert!(server.store.suspend_member("M10002", now()).await.unwrap());
    staff.sync(now()).await.unwrap();
    let before = bytes.load(Ordering::SeqCst);
    staff.sync(now()).await.unwrap();
    let again = bytes.load(Ordering::SeqCst) - before;
    assert!(again < 2048, "{again}");
    let scan = staff.scan_text(event.id, &code, now()).unwrap();
    assert_eq!(
        scan.code,
        Some(ErrorCode::PassportRevokedMember),
        "{scan:?}"
    );
}

/// The staff device's store as the release before migration `name` kept it (its rows, digests
/// and all), opened by this version, which migrates it; the directory holds it.
fn staff_store_before(d: &Devices, name: &str) -> (tempfile::TempDir, Client) {
    let src = d._dirs.1.path().join(unionpass_client::client::DB_FILE);
    let old = tempfile::tempdir().unwrap();
    let migrations = unionpass_client::store::MIGRATIONS;
    let version = migrations.iter().position(|m| m.name == name).unwrap();
    unionpass_sqlite::older_copy(
        &src,
        &old.path().join(unionpass_client::client::DB_FILE),
        migrations,
        version,
    )
    .unwrap();
    let client = Client::open(old.path()).unwrap();
    (old, client)
}

/// A staff device whose server learned English places before the app did: its store, from
/// before client schema 0021, holds the events without their English place and the digest of
/// the bundle that had it. Migrated, it fetches the events whole at the next sync instead of being
/// told they are unchanged, and the picker reads the English place.
#[tokio::test]
async fn a_scanner_store_from_before_english_places_fetches_its_events_whole() {
    let d = devices("M10001").await;
    let a = publish(
        &d,
        Activity {
            place_en: "Sports centre".into(),
            ..in_an_hour("亲子运动会", "体育中心", (100, 0, 0))
        },
    )
    .await;
    d.staff.sync(now()).await.unwrap();
    let place = |c: &Client| {
        c.scanner_view(Some(a.id), now())
            .unwrap()
            .events
            .iter()
            .find(|e| e.id == a.id)
            .map(|e| e.place_in(Lang::En).to_string())
    };
    assert_eq!(place(&d.staff).as_deref(), Some("Sports centre"));

    // the same store as the release before 0021 kept it (no English place), digests and all
    let (_old, upgraded) = staff_store_before(&d, "0021_event_place_en");
    upgraded.sync(now()).await.unwrap();
    assert_eq!(place(&upgraded).as_deref(), Some("Sports centre"));
}

/// A staff device whose server learned to name who scanned before the app did: its store, from
/// before client schema 0024, holds another scanner's check-ins without the name and the digest
/// of the bundle that had it. Migrated, it fetches the check-ins whole at the next sync instead of
/// being told they are unchanged, and its log names who scanned.
#[tokio::test]
async fn a_scanner_store_from_before_staff_names_fetches_its_check_ins_whole() {
    let d = devices("M10003").await;
    let (_sd2, staff2) = colleague(&d).await;
    let event = d.staff.scanner_view(None, now()).unwrap().events[0].clone();
    let code = d.member.live_passport(now()).unwrap().text;
    assert!(staff2.scan_text(event.id, &code, now()).unwrap().ok);
    staff2.sync(now()).await.unwrap();
    d.staff.sync(now()).await.unwrap();
    let named = |c: &Client| {
        c.scanner_view(Some(event.id), now())
            .unwrap()
            .checkins
            .iter()
            .find(|r| r.member_no == "M10003")
            .map(|r| r.staff.clone())
    };
    assert_eq!(named(&d.staff), Some(Some("韩立新".to_string())));

    // the same store as the release before 0024 kept it (no names), digests and all
    let (_old, upgraded) = staff_store_before(&d, "0024_checkin_staff");
    upgraded.sync(now()).await.unwrap();
    assert_eq!(named(&upgraded), Some(Some("韩立新".to_string())));
}
