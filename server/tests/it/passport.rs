//! Two-level passports, device enrolment and revocation, the scanner bundle and check-in upload,
//! over real HTTP, on SQLite and on PostgreSQL.

use crate::util::{check_in, push, sync_answer, synced, t0, Holder, TestServer};
use base64::Engine;
use ed25519_dalek::VerifyingKey;
use reqwest::StatusCode;
use serde_json::{json, Value};
use unionpass_core::api::SyncResponse;
use unionpass_core::checkin::ScannerBundle;
use unionpass_core::passport::{self, TrustList};
use unionpass_core::ErrorCode;
use uuid::Uuid;

async fn bundle(s: &TestServer, token: &str) -> ScannerBundle {
    let resp = s
        .http
        .get(s.at("/v1/scanner"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

fn trust(b: &ScannerBundle) -> TrustList {
    TrustList {
        keys: b.keys.iter().filter_map(|k| k.verifying_key()).collect(),
        revoked_devices: b
            .revoked_devices
            .iter()
            .filter_map(|d| passport::DeviceKid::from_hex(&d.device_kid))
            .collect(),
        revoked_members: b.revoked_members.iter().map(|m| *m as u64).collect(),
    }
}

fn l1(page: &SyncResponse) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&page.passport.as_ref().expect("a credential").credential)
        .unwrap()
}

async fn an_enrolled_device_presents_a_passport_a_scanner_verifies_offline(s: TestServer) {
    let (member, device) = s.login_device("M10001").await;
    let page = synced(&s, &member).await;
    let staff = s.login("S20001").await;
    let b = bundle(&s, &staff).await;
    let text = passport::present(&l1(&page), &device, passport::step_of(t0()));
    let claims = passport::decode(&text)
        .unwrap()
        .verify(&trust(&b), t0())
        .unwrap();
    assert_eq!(claims.member_id as i64, page.profile.member_id);
    assert_eq!(claims.device_key, device.verifying_key().to_bytes());
    // the member's device list names this device as the current one
    assert_eq!(page.devices.len(), 1);
    assert!(page.devices[0].current);
    assert_eq!(
        page.devices[0].device_kid,
        claims.device_kid().to_hex(),
        "the listed device is the one bound into the credential"
    );
}

async fn a_revoked_device_loses_its_session_and_lands_on_the_revocation_list(s: TestServer) {
    let (phone, phone_key) = s.login_device("M10002").await;
    let phone_page = synced(&s, &phone).await;
    let laptop = s.login("M10002").await;
    let page = synced(&s, &laptop).await;
    assert_eq!(page.devices.len(), 2);
    let phone_id = page.devices.iter().find(|d| !d.current).unwrap().id;

    let id = Uuid::new_v4();
    let revoke = json!([{"id": id, "created_at": "2026-11-29T08:00:00Z", "op": "revoke_device", "args": {"device_id": phone_id}}]);
    let r = push(&s, &laptop, revoke.clone()).await;
    assert_eq!(
        r.results[0].outcome,
        unionpass_core::api::MutationOutcome::Applied
    );
    assert!(push(&s, &laptop, revoke).await.results[0].replayed);
    // the phone's session ended at once (the cache is evicted too)
    assert_eq!(
        sync_answer(&s, &phone).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(synced(&s, &laptop).await.devices.len(), 1);

    let staff = s.login("S20001").await;
    let b = bundle(&s, &staff).await;
    let text = passport::present(&l1(&phone_page), &phone_key, passport::step_of(t0()));
    assert_eq!(
        passport::decode(&text).unwrap().verify(&trust(&b), t0()),
        Err(passport::PassportError::RevokedDevice)
    );
    // someone else's device cannot be revoked
    let other = s.login("M10003").await;
    let r = push(
        &s,
        &other,
        json!([{"id": Uuid::new_v4(), "created_at": "2026-11-29T08:00:00Z", "op": "revoke_device", "args": {"device_id": page.devices[0].id}}]),
    )
    .await;
    assert!(matches!(
        r.results[0].outcome,
        unionpass_core::api::MutationOutcome::Rejected {
            code: ErrorCode::NotFound,
            ..
        }
    ));
    assert_eq!(sync_answer(&s, &laptop).await.status(), StatusCode::OK);
}

async fn logout_revokes_the_device_and_a_bad_device_key_is_refused(s: TestServer) {
    let (token, key) = s.login_device("M10004").await;
    synced(&s, &token).await;
    s.http
        .post(s.at("/v1/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let staff = s.login("S20001").await;
    let b = bundle(&s, &staff).await;
    let kid = passport::DeviceKid::of(&key.verifying_key().to_bytes()).to_hex();
    assert!(b.revoked_devices.iter().any(|d| d.device_kid == kid));
    assert!(b.revoked_devices.iter().all(|d| d.until > t0()));

    let resp = s
        .http
        .post(s.at("/v1/login"))
        .json(&json!({"member_no": "M10004", "password": "demo1234", "device_name": "t", "device_key": "not-a-key"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "invalid_input");
    // an old client without a device key is refused: every session belongs to a device that a
    // revocation reaches
    let resp = s
        .http
        .post(s.at("/v1/login"))
        .json(&json!({"member_no": "M10004", "password": "demo1234", "device_name": "old"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "invalid_input");
    assert!(body.get("token").is_none());
}

async fn scanners_are_staff_only_and_see_their_unions_events(s: TestServer) {
    let member = s.login("M10001").await;
    let resp = s
        .http
        .get(s.at("/v1/scanner"))
        .bearer_auth(&member)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    let staff = s.login("S20001").await;
    let b = bundle(&s, &staff).await;
    assert_eq!(b.generated_at, t0());
    assert!(!b.keys.is_empty());
    // the demo seed has one event of the staff's union and one for the whole district
    assert_eq!(b.events.len(), 2, "{:?}", b.events);
    let own = b.events.iter().find(|e| e.union_id.is_some()).unwrap();
    let district = b.events.iter().find(|e| e.union_id.is_none()).unwrap();
    // a plain event's English title and place, as it was created (the seed gives both)
    assert_eq!(
        (own.title.as_str(), own.title_en.as_deref()),
        (
            "智云科技职工趣味运动会",
            Some("Zhiyun Tech workers' fun sports day")
        )
    );
    assert_eq!(
        own.place_en.as_deref(),
        Some("Science City Sports Centre, Hall 2")
    );
    // names for the door: every union's, and the staff member's own union's members only
    let names: Vec<&str> = b.unions.iter().map(|u| u.name.as_str()).collect();
    assert!(
        names.contains(&"智云科技有限公司工会") && names.contains(&"北辰生物医药股份有限公司工会"),
        "{names:?}"
    );
    let m1 = synced(&s, &member).await.profile;
    assert!(b
        .roster
        .iter()
        .any(|p| p.member_id == m1.member_id && p.name == "王芳"));
    let outsider = synced(&s, &s.login("M10020").await).await.profile;
    assert_ne!(outsider.union.id, m1.union.id, "M10020 is of another union");
    assert!(b.roster.iter().all(|p| p.member_id != outsider.member_id));
    assert!(
        !b.roster.is_empty() && b.roster.len() < 21,
        "{}",
        b.roster.len()
    );
    // an event of another union is not listed, and uploads to it are refused
    let other_union = s
        .store
        .ensure_union("星河互联网络技术有限公司工会")
        .await
        .unwrap();
    let foreign = s
        .store
        .create_event(
            unionpass_core::checkin::Event {
                union_id: Some(other_union),
                id: 0,
                ..own.clone()
            },
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(bundle(&s, &staff).await.events.len(), 2);
    // an ended event stays listed for two days after its end, so a door sees all of yesterday's
    // whatever the hour (it says when one ended); older ones are gone
    for (title, ended) in [("两天内结束", 47), ("两天前结束", 49)] {
        let ends_at = t0() - chrono::Duration::hours(ended);
        s.store
            .create_event(
                unionpass_core::checkin::Event {
                    id: 0,
                    title: title.into(),
                    starts_at: ends_at - chrono::Duration::hours(2),
                    ends_at,
                    ..own.clone()
                },
                ends_at - chrono::Duration::days(3),
            )
            .await
            .unwrap();
    }
    let titles: Vec<String> = bundle(&s, &staff)
        .await
        .events
        .into_iter()
        .map(|e| e.title)
        .collect();
    assert_eq!(titles.len(), 3, "{titles:?}");
    assert_eq!(titles[0], "两天内结束", "{titles:?}");
    let holder = Holder::of(&s, "M10001").await;
    let (_, m) = check_in(
        foreign.id,
        &holder,
        Uuid::from_u128(1),
        Uuid::new_v4(),
        t0(),
    );
    let r = push(&s, &staff, json!([m])).await;
    assert!(matches!(
        r.results[0].outcome,
        unionpass_core::api::MutationOutcome::Rejected {
            code: ErrorCode::Forbidden,
            ..
        }
    ));
    // members cannot upload check-ins
    let (_, m) = check_in(
        district.id,
        &holder,
        Uuid::from_u128(1),
        Uuid::new_v4(),
        district.starts_at,
    );
    let r = push(&s, &member, json!([m])).await;
    assert!(matches!(
        r.results[0].outcome,
        unionpass_core::api::MutationOutcome::Rejected {
            code: ErrorCode::Forbidden,
            ..
        }
    ));
}

async fn the_first_check_in_wins_and_a_second_scanner_is_reported_as_a_conflict(s: TestServer) {
    let staff = s.login("S20001").await;
    // a colleague of the same union (the demo's second staff account)
    let colleague = s.login("S20002").await;
    let event = bundle(&s, &staff).await.events[0].clone();
    let holder = Holder::of(&s, "M10001").await;
    let at = t0() + chrono::Duration::seconds(1);
    let (id_a, a) = check_in(event.id, &holder, Uuid::from_u128(1), Uuid::new_v4(), at);
    let (_, b) = check_in(
        event.id,
        &holder,
        Uuid::from_u128(2),
        Uuid::new_v4(),
        at + chrono::Duration::seconds(4),
    );
    assert_eq!(
        push(&s, &staff, json!([a.clone()])).await.results[0].id,
        id_a
    );
    // the same upload again (a retry) changes nothing
    assert!(push(&s, &staff, json!([a.clone()])).await.results[0].replayed);
    // the second scanner is a colleague's, who says it was scanned by someone else: the
    // server names whoever uploaded it, from the session
    let mut b = b;
    b["args"]["staff"] = json!("冒名者");
    let r = push(&s, &colleague, json!([b])).await;
    assert_eq!(
        r.results[0].outcome,
        unionpass_core::api::MutationOutcome::Applied
    );

    let bundle = bundle(&s, &staff).await;
    let ours: Vec<_> = bundle
        .checkins
        .iter()
        .filter(|c| c.event_id == event.id)
        .collect();
    assert_eq!(ours.len(), 1);
    assert_eq!(
        ours[0].scanner,
        Uuid::from_u128(1),
        "the first check-in is kept"
    );
    assert_eq!(ours[0].staff.as_deref(), Some("郑晓梅"), "who scanned it");
    assert_eq!(bundle.conflicts.len(), 1);
    assert_eq!(bundle.conflicts[0].first.scanner, Uuid::from_u128(1));
    assert_eq!(bundle.conflicts[0].second.scanner, Uuid::from_u128(2));
    assert_eq!(bundle.conflicts[0].first.staff.as_deref(), Some("郑晓梅"));
    assert_eq!(bundle.conflicts[0].second.staff.as_deref(), Some("韩立新"));
    // the colleague's scanner gets the same names
    let theirs = self::bundle(&s, &colleague).await;
    assert_eq!(theirs.conflicts[0].second.staff.as_deref(), Some("韩立新"));

    // the same scan (same nonce) under a new mutation id is not a conflict with itself
    let mut again = a;
    again["id"] = json!(Uuid::new_v4());
    push(&s, &staff, json!([again])).await;
    assert_eq!(conflict_count(&s, &staff).await, 1);
}

/// A scan proves the member was at one door: the same showing of their passport (its device and
/// time step) uploaded for another event on at that moment, by any staff member, is refused and
/// earns nothing; the next showing checks them in there.
async fn one_scanned_code_checks_in_at_one_event_only(s: TestServer) {
    let staff = s.login("S20001").await;
    let colleague = s.login("S20002").await;
    let own = bundle(&s, &staff)
        .await
        .events
        .into_iter()
        .find(|e| e.union_id.is_some())
        .unwrap();
    let mut events = Vec::new();
    for title in ["一号厅", "二号厅"] {
        let e = s
            .store
            .create_event(
                unionpass_core::checkin::Event {
                    id: 0,
                    title: title.into(),
                    starts_at: t0() - chrono::Duration::hours(1),
                    ends_at: t0() + chrono::Duration::hours(2),
                    points: 100,
                    ..own.clone()
                },
                t0() - chrono::Duration::days(1),
            )
            .await
            .unwrap();
        events.push(e.id);
    }
    let holder = Holder::of(&s, "M10001").await;
    let points = |p: &SyncResponse| {
        p.changes
            .iter()
            .filter(|c| matches!(c.kind, unionpass_core::api::ChangeKind::PointsEntry(_)))
            .count()
    };
    let member = s.login("M10001").await;
    let before = points(&synced(&s, &member).await);
    let at = t0() + chrono::Duration::seconds(1);
    let (_, first) = check_in(events[0], &holder, Uuid::from_u128(1), Uuid::new_v4(), at);
    let r = push(&s, &staff, json!([first.clone()])).await;
    assert_eq!(
        r.results[0].outcome,
        unionpass_core::api::MutationOutcome::Applied
    );
    // the same code, as scanned (its text with a space before it, and a new nonce), uploaded
    // for the other hall by a colleague: refused, on the server's word
    let mut replay = first.clone();
    replay["id"] = json!(Uuid::new_v4());
    replay["args"]["event_id"] = json!(events[1]);
    replay["args"]["nonce"] = json!(Uuid::new_v4());
    replay["args"]["scanner"] = json!(Uuid::from_u128(2));
    let proof = replay["args"]["proof"].as_str().unwrap().to_string();
    replay["args"]["proof"] = json!(format!(" {proof}"));
    let r = push(&s, &colleague, json!([replay])).await;
    assert!(
        matches!(
            r.results[0].outcome,
            unionpass_core::api::MutationOutcome::Rejected {
                code: ErrorCode::CheckinProofReused,
                ..
            }
        ),
        "{:?}",
        r.results[0]
    );
    // the first door's event once, the other's not at all, and one accrual
    let kept = bundle(&s, &staff).await.checkins;
    assert_eq!(kept.iter().filter(|c| c.event_id == events[0]).count(), 1);
    assert_eq!(kept.iter().filter(|c| c.event_id == events[1]).count(), 0);
    assert_eq!(points(&synced(&s, &member).await), before + 1);
    // the same code at the same door again is still the door's own business (a repeat)
    let mut repeat = first;
    repeat["id"] = json!(Uuid::new_v4());
    repeat["args"]["nonce"] = json!(Uuid::new_v4());
    let r = push(&s, &colleague, json!([repeat])).await;
    assert_eq!(
        r.results[0].outcome,
        unionpass_core::api::MutationOutcome::Applied
    );
    // the member shows the live code at the other hall a minute later: checked in there
    let later = at + chrono::Duration::seconds(60);
    let (_, next) = check_in(
        events[1],
        &holder,
        Uuid::from_u128(2),
        Uuid::new_v4(),
        later,
    );
    let r = push(&s, &colleague, json!([next])).await;
    assert_eq!(
        r.results[0].outcome,
        unionpass_core::api::MutationOutcome::Applied
    );
    let kept = bundle(&s, &staff).await.checkins;
    assert_eq!(kept.iter().filter(|c| c.event_id == events[1]).count(), 1);
    assert_eq!(points(&synced(&s, &member).await), before + 2);
}

async fn conflict_count(s: &TestServer, token: &str) -> usize {
    bundle(s, token).await.conflicts.len()
}

async fn a_suspended_member_cannot_sign_in_and_is_revoked_for_scanners(s: TestServer) {
    let (token, key) = s.login_device("M10005").await;
    let page = synced(&s, &token).await;
    assert!(s.store.suspend_member("M10005", t0()).await.unwrap());
    assert!(!s.store.suspend_member("NOPE", t0()).await.unwrap());
    let resp = s
        .http
        .post(s.at("/v1/login"))
        .json(
            &json!({"member_no": "M10005", "password": "demo1234", "device_name": "t",
            "device_key": crate::util::device_key()}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let staff = s.login("S20001").await;
    let b = bundle(&s, &staff).await;
    assert!(b.revoked_members.contains(&page.profile.member_id));
    let text = passport::present(&l1(&page), &key, passport::step_of(t0()));
    let vks: Vec<VerifyingKey> = b.keys.iter().filter_map(|k| k.verifying_key()).collect();
    assert!(!vks.is_empty());
    assert_eq!(
        passport::decode(&text).unwrap().verify(&trust(&b), t0()),
        Err(passport::PassportError::RevokedMember)
    );
}

async fn after_a_key_rotation_new_credentials_use_the_new_key_and_old_ones_still_verify(
    mut s: TestServer,
) {
    let (token, key) = s.login_device("M10006").await;
    let old = synced(&s, &token).await;
    let later = t0() + chrono::Duration::days(1);
    s.clock.set(later);
    let new_key =
        unionpass_server::keys::UnionKeys::create(&s.dir.path().join("keys"), later).unwrap();
    s.restart().await;

    let staff = s.login("S20001").await;
    let b = bundle(&s, &staff).await;
    assert_eq!(b.keys.len(), 2, "both keys are published");
    // the credential signed by the old key still verifies
    let text = passport::present(&l1(&old), &key, passport::step_of(later));
    passport::decode(&text)
        .unwrap()
        .verify(&trust(&b), later)
        .unwrap();
    // and the next sync brings one signed by the new key
    let new = synced(&s, &token).await;
    let new_kid = new.passport.as_ref().unwrap().kid.clone();
    assert_eq!(new_kid, new_key.kid.to_hex());
    assert_ne!(new_kid, old.passport.unwrap().kid);
    let text = passport::present(&l1(&new), &key, passport::step_of(later));
    let claims = passport::decode(&text)
        .unwrap()
        .verify(&trust(&b), later)
        .unwrap();
    assert_eq!(claims.kid, new_key.kid);
}

/// The server sends each change's data as the log stored it (not parsed and written again):
/// what it sends must be what the typed change would have been, field for field, for a member's
/// own change and for everyone's.
async fn a_sync_page_sends_each_change_as_its_typed_form(s: TestServer) {
    use unionpass_core::api::ChangeKind;
    let token = s.login("M10001").await;
    let me = synced(&s, &token).await.profile.member_id;
    s.store
        .accrue_points(me, 120, t0() + chrono::Duration::days(365), "test", t0())
        .await
        .unwrap();
    s.store
        .create_campaign(crate::grab::campaign(5, 1), t0())
        .await
        .unwrap();
    let raw: Value = sync_answer(&s, &token).await.json().await.unwrap();
    let page: SyncResponse = serde_json::from_value(raw.clone()).unwrap();
    let kinds: Vec<&ChangeKind> = page.changes.iter().map(|c| &c.kind).collect();
    assert!(
        kinds.iter().any(|k| matches!(k, ChangeKind::Campaign(_))),
        "{kinds:?}"
    );
    assert!(
        kinds
            .iter()
            .any(|k| matches!(k, ChangeKind::PointsEntry(_))),
        "{kinds:?}"
    );
    assert!(
        !kinds.iter().any(|k| matches!(k, ChangeKind::Unknown)),
        "{kinds:?}"
    );
    assert_eq!(raw["changes"], serde_json::to_value(&page.changes).unwrap());
}

on_every_backend!(
    a_sync_page_sends_each_change_as_its_typed_form,
    after_a_key_rotation_new_credentials_use_the_new_key_and_old_ones_still_verify,
    an_enrolled_device_presents_a_passport_a_scanner_verifies_offline,
    a_revoked_device_loses_its_session_and_lands_on_the_revocation_list,
    logout_revokes_the_device_and_a_bad_device_key_is_refused,
    scanners_are_staff_only_and_see_their_unions_events,
    the_first_check_in_wins_and_a_second_scanner_is_reported_as_a_conflict,
    one_scanned_code_checks_in_at_one_event_only,
    a_suspended_member_cannot_sign_in_and_is_revoked_for_scanners,
);
