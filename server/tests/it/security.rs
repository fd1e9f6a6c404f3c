//! The server against a hostile network, over real HTTP: forged check-ins, password guessing
//! (sprayed, in parallel, from elsewhere), sessions that end at once, idempotency keys bound to
//! their request, and JSON errors for whatever arrives. The stories that touch the store run on
//! SQLite and PostgreSQL.

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};
use unionpass_core::api::MutationOutcome;
use unionpass_core::ErrorCode;
use unionpass_server::guard::{Guard, Policy};
use uuid::Uuid;

use crate::util::{check_in, push, t0, Holder, TestServer};

/// The status, the code and the `Retry-After` of an error answer; also checks it is JSON.
async fn error_of(resp: reqwest::Response) -> (StatusCode, ErrorCode, Option<u64>) {
    let status = resp.status();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(ctype.starts_with("application/json"), "{status}: {ctype}");
    let body: Value = resp.json().await.expect("a JSON error");
    let code = serde_json::from_value(body["code"].clone()).expect("a stable code");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    (status, code, retry)
}

fn outcome_code(o: &MutationOutcome) -> Option<ErrorCode> {
    match o {
        MutationOutcome::Applied => None,
        MutationOutcome::Rejected { code, .. } => Some(*code),
    }
}

/// A staff token cannot credit points by saying it scanned someone: each check-in carries the
/// scanned passport, which the server verifies again and takes the member from.
async fn a_check_in_is_recorded_only_with_a_proof_of_the_member_scanned(s: TestServer) {
    let staff = s.login("S20001").await;
    let own_event = s
        .store
        .events()
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.union_id.is_some())
        .unwrap();
    let wang = Holder::of(&s, "M10001").await;
    let other_union = Holder::of(&s, "M10008").await;
    let points = |id: i64| {
        let store = s.store.clone();
        async move {
            unionpass_core::points::Ledger::fold(&store.points_entries(id).await.unwrap())
                .unwrap()
                .balance(t0())
                .available
        }
    };
    let before = points(wang.member_id).await;
    let gate = Uuid::new_v4();

    // no proof (an older app): refused, nothing credited
    let (_, mut bare) = check_in(own_event.id, &wang, gate, Uuid::new_v4(), t0());
    bare["args"]["proof"] = Value::Null;
    // a proof with one character changed: forged
    let (_, mut forged) = check_in(own_event.id, &wang, gate, Uuid::new_v4(), t0());
    let text = forged["args"]["proof"].as_str().unwrap().to_string();
    let mid = text.len() / 2;
    let flipped = if &text[mid..mid + 1] == "A" { "B" } else { "A" };
    forged["args"]["proof"] = json!(format!("{}{}{}", &text[..mid], flipped, &text[mid + 1..]));
    // a member of another workplace union, at this union's event
    let (_, foreign) = check_in(own_event.id, &other_union, gate, Uuid::new_v4(), t0());
    // a valid scan now, uploaded for an event of the union that starts in two days
    let tomorrow = s
        .store
        .create_event(
            unionpass_core::checkin::Event {
                id: 0,
                starts_at: t0() + chrono::Duration::days(2),
                ends_at: t0() + chrono::Duration::days(2) + chrono::Duration::hours(3),
                ..own_event.clone()
            },
            t0(),
        )
        .await
        .unwrap();
    let (_, early) = check_in(tomorrow.id, &wang, gate, Uuid::new_v4(), t0());
    // scanned "in the future"
    let (_, ahead) = check_in(
        own_event.id,
        &wang,
        gate,
        Uuid::new_v4(),
        t0() + chrono::Duration::hours(1),
    );
    let r = push(&s, &staff, json!([bare, forged, foreign, early, ahead])).await;
    let codes: Vec<_> = r.results.iter().map(|r| outcome_code(&r.outcome)).collect();
    assert_eq!(
        codes,
        vec![
            Some(ErrorCode::CheckinProofMissing),
            Some(ErrorCode::PassportBadSignature),
            Some(ErrorCode::NotEligible),
            Some(ErrorCode::CheckinOutsideEvent),
            Some(ErrorCode::CheckinOutsideEvent),
        ]
    );
    assert_eq!(points(wang.member_id).await, before, "nothing credited");

    // the member is the one the passport names, whatever the upload says
    let (_, mut lie) = check_in(own_event.id, &wang, gate, Uuid::new_v4(), t0());
    let staff_id = s
        .store
        .member_auth("S20001")
        .await
        .unwrap()
        .unwrap()
        .member_id;
    lie["args"]["member_id"] = json!(staff_id);
    lie["args"]["member_no"] = json!("S20001");
    let r = push(&s, &staff, json!([lie])).await;
    assert_eq!(r.results[0].outcome, MutationOutcome::Applied);
    assert_eq!(
        points(wang.member_id).await,
        before + own_event.points,
        "credited to the scanned member"
    );
    assert_eq!(points(staff_id).await, 0, "not to the one the upload named");

    // a revoked device's passport: refused (revoked before the scan)
    let phone = Holder::of(&s, "M10002").await;
    let phone_device = {
        let page: unionpass_core::api::SyncResponse =
            s.get_json("/v1/sync?cursor=0", Some(&phone.token)).await;
        page.devices.iter().find(|d| d.current).unwrap().id
    };
    let laptop = s.login("M10002").await;
    let revoke = json!([{"id": Uuid::new_v4(), "created_at": t0(), "op": "revoke_device",
                          "args": {"device_id": phone_device}}]);
    assert_eq!(
        push(&s, &laptop, revoke).await.results[0].outcome,
        MutationOutcome::Applied
    );
    let (_, stolen) = check_in(
        own_event.id,
        &phone,
        gate,
        Uuid::new_v4(),
        t0() + chrono::Duration::seconds(30),
    );
    let r = push(&s, &staff, json!([stolen])).await;
    assert_eq!(
        outcome_code(&r.results[0].outcome),
        Some(ErrorCode::PassportRevokedDevice)
    );

    // the accrual is on record: who, which scanner, which member
    let log = s.store.audit_log(10).await.unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["staff"], staff_id);
    assert_eq!(log[0]["member"], wang.member_id);
    assert_eq!(log[0]["scanner"], json!(gate));
    assert_eq!(log[0]["points"], own_event.points);
}

/// Idempotency keys are bound to what they were first used for.
async fn a_key_reused_for_something_else_is_refused(s: TestServer) {
    use unionpass_core::campaign::{Campaign, Category};
    let make = |title: &str| Campaign {
        id: 0,
        title_zh: title.into(),
        title_en: title.into(),
        category: Category::Meal,
        face_value_cents: 1000,
        terms_zh: String::new(),
        terms_en: String::new(),
        coupon_valid_from: t0(),
        coupon_valid_until: t0() + chrono::Duration::days(30),
        stock: 10,
        per_member_limit: 1,
        release_at: t0(),
        end_at: t0() + chrono::Duration::hours(1),
        eligible_unions: vec![],
        eligible_union_names: vec![],
        cancelled_at: None,
    };
    let a = s.store.create_campaign(make("A"), t0()).await.unwrap();
    let b = s.store.create_campaign(make("B"), t0()).await.unwrap();
    s.clock.set(t0() + chrono::Duration::seconds(1));
    let token = s.login("M10003").await;
    let key = Uuid::new_v4();
    let grab = |campaign: i64| {
        s.http
            .post(s.at(&format!("/v1/campaigns/{campaign}/grab")))
            .bearer_auth(&token)
            .json(&json!({ "key": key }))
            .send()
    };
    assert_eq!(grab(a.id).await.unwrap().status(), 200);
    let again = grab(a.id).await.unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap()["replayed"], true);
    let (status, code, _) = error_of(grab(b.id).await.unwrap()).await;
    assert_eq!(
        (status, code),
        (StatusCode::CONFLICT, ErrorCode::IdempotencyKeyReused)
    );

    // a change id reused for another change
    let id = Uuid::new_v4();
    let lang = |l: &str| json!([{"id": id, "created_at": t0(), "op": "set_language", "args": {"language": l}}]);
    assert_eq!(
        push(&s, &token, lang("en")).await.results[0].outcome,
        MutationOutcome::Applied
    );
    assert!(push(&s, &token, lang("en")).await.results[0].replayed);
    let r = push(&s, &token, lang("zh-CN")).await;
    assert_eq!(
        outcome_code(&r.results[0].outcome),
        Some(ErrorCode::IdempotencyKeyReused)
    );
    assert!(!r.results[0].replayed);

    // records older than the stated time are forgotten
    let later = t0() + unionpass_server::store::rules::IDEMPOTENCY_TTL + chrono::Duration::days(1);
    assert!(s.store.forget_idempotency(later).await.unwrap() >= 2);
}

/// Suspension, revocation, sign-out everywhere, a changed password and expiry end a session on
/// the very next request (no cache window).
async fn an_ended_session_stops_on_the_next_request(s: TestServer) {
    let ended = |token: String| {
        let s = &s;
        async move {
            let resp = sync_with(s, &token).await;
            resp.status() == StatusCode::UNAUTHORIZED
                && error_of(resp).await.1 == ErrorCode::SessionEnded
        }
    };
    // suspension
    let token = s.login("M10004").await;
    assert!(!ended(token.clone()).await);
    assert!(s.store.suspend_member("M10004", t0()).await.unwrap());
    assert!(ended(token).await, "suspended: refused at once");

    // sign out everywhere ends every session, this one too, and revokes their devices
    let phone = s.login("M10005").await;
    let laptop = s.login("M10005").await;
    let resp = s
        .http
        .post(s.at("/v1/sessions/end-all"))
        .bearer_auth(&laptop)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.json::<Value>().await.unwrap()["ended"], 2);
    assert!(ended(phone).await && ended(laptop).await);

    // a changed password ends the other sessions, not this one
    let thief = s.login("M10006").await;
    let owner = s.login("M10006").await;
    let change = |current: &str, new: &str| {
        s.http
            .post(s.at("/v1/password"))
            .bearer_auth(&owner)
            .json(&json!({"current_password": current, "new_password": new}))
            .send()
    };
    let (status, code, _) = error_of(change("wrong one", "a new secret").await.unwrap()).await;
    assert_eq!(
        (status, code),
        (StatusCode::UNAUTHORIZED, ErrorCode::InvalidCredentials)
    );
    let (_, code, _) = error_of(change("demo1234", "short").await.unwrap()).await;
    assert_eq!(code, ErrorCode::WeakPassword);
    let resp = change("demo1234", "a new secret").await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["ended"], 1);
    assert!(ended(thief).await);
    assert!(!ended(owner.clone()).await);
    // the new password signs in; the old one no longer does
    let login = |password: &str| {
        s.http
            .post(s.at("/v1/login"))
            .json(
                &json!({"member_no": "M10006", "password": password, "device_name": "t",
                          "device_key": crate::util::device_key()}),
            )
            .send()
    };
    assert_eq!(login("a new secret").await.unwrap().status(), 200);
    assert_eq!(login("demo1234").await.unwrap().status(), 401);

    // idle expiry: used within the idle time, a session lives on; unused, it ends
    let idle = unionpass_server::auth::SESSION_IDLE;
    s.clock.set(t0() + idle - chrono::Duration::seconds(1));
    assert!(!ended(owner.clone()).await, "used just in time: renewed");
    s.clock.set(t0() + idle + idle - chrono::Duration::days(2));
    assert!(!ended(owner.clone()).await, "renewed by the last use");
    s.clock.set(t0() + idle * 3);
    assert!(ended(owner).await, "unused for longer than the idle time");
}

/// A first sync with `token`: what the server answers a session.
async fn sync_with(s: &TestServer, token: &str) -> reqwest::Response {
    s.http
        .get(s.at("/v1/sync"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// Every answer is JSON with a stable code and the right status.
async fn errors_are_json_everywhere(s: TestServer) {
    let token = s.login("M10007").await;
    // 20 KiB of JSON whitespace, signed in
    let big = |url| {
        s.http
            .post(url)
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(vec![b' '; 20 * 1024])
    };
    let cases = [
        (
            s.http.get(s.at("/v1/login")).send().await.unwrap(),
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::MethodNotAllowed,
        ),
        (
            s.http
                .post(s.at("/v1/campaigns/abc/grab"))
                .bearer_auth(&token)
                .json(&json!({"key": Uuid::new_v4()}))
                .send()
                .await
                .unwrap(),
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
        ),
        (
            s.http
                .post(s.at("/v1/sync/push"))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(vec![b' '; 3 * 1024 * 1024])
                .send()
                .await
                .unwrap(),
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
        ),
        // a push of 20 KiB is read (and refused for what it says, not its size), while every
        // other body is held to 16 KiB (below)
        (
            big(s.at("/v1/sync/push")).send().await.unwrap(),
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
        ),
        (
            s.http.get(s.at("/v2/nothing")).send().await.unwrap(),
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
        ),
        (
            s.http
                .get(s.at("/v1/sync?cursor=minus"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap(),
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
        ),
        (
            s.http
                .post(s.at("/v1/login"))
                .header("content-type", "application/json")
                .body("{not json")
                .send()
                .await
                .unwrap(),
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
        ),
    ];
    for (resp, status, code) in cases {
        let (got_status, got_code, _) = error_of(resp).await;
        assert_eq!((got_status, got_code), (status, code));
    }
    for url in [
        "/v1/campaigns/1/grab",
        "/v1/activities/1/signup",
        "/v1/login",
    ] {
        let (status, code, _) = error_of(big(s.at(url)).send().await.unwrap()).await;
        let too_large = (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::PayloadTooLarge);
        assert_eq!((status, code), too_large, "{url}");
    }
    // a change of an unknown kind is refused alone; the others in the push are applied
    let r = push(
        &s,
        &token,
        json!([
            {"id": Uuid::new_v4(), "created_at": t0(), "op": "teleport", "args": {"to": "moon"}},
            {"id": Uuid::new_v4(), "created_at": t0(), "op": "set_language", "args": {"language": 7}},
            {"id": Uuid::new_v4(), "created_at": t0(), "op": "feedback", "args": {"activity_id": 1, "rating": "5"}},
            {"id": Uuid::new_v4(), "created_at": t0(), "op": "vote", "args": {"poll_id": 1}},
            {"id": Uuid::new_v4(), "created_at": t0(), "op": "set_language", "args": {"language": "en"}},
        ]),
    )
    .await;
    let codes: Vec<_> = r.results.iter().map(|r| outcome_code(&r.outcome)).collect();
    // a known kind sent wrong is a mistake to mend, not a change this server does not know
    assert_eq!(
        codes,
        vec![
            Some(ErrorCode::UnsupportedMutation),
            Some(ErrorCode::BadRequest),
            Some(ErrorCode::BadRequest),
            Some(ErrorCode::BadRequest),
            None
        ]
    );
    // a body is read the same whatever spelling of JSON's media type it comes with (the plain
    // one has a shorter path in `Body`): parsed when well-formed, refused with the same answer,
    // word for word, when not; without a media type it is refused
    let send = |ctype: Option<&'static str>, body: String| {
        let mut req = s.http.post(s.at("/v1/login")).body(body);
        if let Some(c) = ctype {
            req = req.header("content-type", c);
        }
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status();
            let body: Value = resp.json().await.unwrap();
            (status, body["code"].clone(), body["message"].clone())
        }
    };
    let login = |member_no: Value| {
        json!({"member_no": member_no, "password": "wrong", "device_name": "t",
               "device_key": crate::util::device_key()})
        .to_string()
    };
    let spellings = [
        "application/json",
        "Application/JSON",
        "application/json; charset=utf-8",
    ];
    for ctype in spellings {
        let (status, code, _) = send(Some(ctype), login(json!("M10005"))).await;
        assert_eq!(
            (status, code),
            (StatusCode::UNAUTHORIZED, json!("invalid_credentials")),
            "{ctype}: parsed and judged"
        );
    }
    let mut refusals = Vec::new();
    for ctype in spellings {
        refusals.push(send(Some(ctype), login(json!(7))).await);
        refusals.push(send(Some(ctype), "{\"member_no\": ".to_string()).await);
    }
    assert_eq!(refusals[0].0, StatusCode::BAD_REQUEST);
    assert_eq!(refusals[0].1, json!("bad_request"));
    assert!(
        refusals[0].2.as_str().unwrap().contains("member_no"),
        "the answer names the field: {:?}",
        refusals[0].2
    );
    for (i, r) in refusals.iter().enumerate() {
        assert_eq!(r, &refusals[i % 2], "{}", spellings[i / 2]);
    }
    assert_ne!(refusals[0], refusals[1]);
    let (status, code, _) = send(None, login(json!("M10005"))).await;
    assert_eq!(
        (status, code),
        (StatusCode::BAD_REQUEST, json!("bad_request"))
    );
    // a panicking handler is answered 500 as JSON, and the server keeps serving
    let (status, code, _) =
        error_of(s.http.get(s.at("/v1/testing/panic")).send().await.unwrap()).await;
    assert_eq!(
        (status, code),
        (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal)
    );
    assert_eq!(
        s.http
            .get(s.at("/v1/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // each answer carries a request id
    let resp = s.http.get(s.at("/v1/time")).send().await.unwrap();
    assert!(resp.headers().contains_key("x-request-id"));
}

/// A login from `addr` (through the trusted proxy on 127.0.0.1).
async fn login_from(
    s: &TestServer,
    addr: &str,
    member_no: &str,
    password: &str,
) -> reqwest::Response {
    s.http
        .post(s.at("/v1/login"))
        .header("x-forwarded-for", addr)
        .json(
            &json!({"member_no": member_no, "password": password, "device_name": "t",
                      "device_key": crate::util::device_key()}),
        )
        .send()
        .await
        .unwrap()
}

/// A server that believes the proxy on 127.0.0.1, with small limits (fewer hashes to wait for).
async fn guarded(s: TestServer) -> TestServer {
    s.tweaked(|state| {
        state
            .with_trusted_proxies(vec!["127.0.0.1/32".parse().unwrap()])
            .with_guard(Guard::new(
                Policy {
                    free_per_pair: 3,
                    free_per_member: 6,
                    free_per_address: 8,
                    in_flight_per_address: 3,
                    ..Policy::default()
                },
                2,
            ))
    })
    .await
}

/// Guesses are counted before they are checked: 40 at once for one member get at most the
/// allowed checks; the rest are told when to come back.
async fn parallel_guesses_are_counted_before_they_are_checked(s: TestServer) {
    let s = guarded(s).await;
    let answers = join_all((0..40).map(|_| login_from(&s, "203.0.113.9", "M10009", "guess"))).await;
    let mut checked = 0;
    let mut limited = 0;
    for resp in answers {
        let (status, code, retry) = error_of(resp).await;
        match code {
            ErrorCode::InvalidCredentials => checked += 1,
            ErrorCode::RateLimited => {
                assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
                assert!(retry.is_some_and(|r| r >= 1), "Retry-After");
                limited += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(checked <= 3, "{checked} passwords checked");
    assert_eq!(checked + limited, 40);
    // the owner, elsewhere, is not locked out
    assert_eq!(
        login_from(&s, "198.51.100.4", "M10009", "demo1234")
            .await
            .status(),
        200
    );
}

/// One wrong password tried across many member numbers from one address is slowed down there,
/// and only there.
async fn password_spraying_from_one_address_is_limited(s: TestServer) {
    let s = guarded(s).await;
    let mut checked = 0;
    for n in 0..20 {
        let resp = login_from(&s, "203.0.113.50", &format!("M1{:04}", n + 1), "spring2026").await;
        match error_of(resp).await.1 {
            ErrorCode::InvalidCredentials => checked += 1,
            ErrorCode::RateLimited => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(checked, 8, "the address's free failures, then delays");
    // another address signs in as usual
    assert_eq!(
        login_from(&s, "198.51.100.77", "M10010", "demo1234")
            .await
            .status(),
        200
    );
}

/// Ten wrong passwords from an attacker, and a stolen session guessing at `/v1/reauth`, do not
/// keep the owner out.
async fn an_attacker_cannot_lock_the_owner_out(s: TestServer) {
    let s = guarded(s).await;
    for _ in 0..10 {
        login_from(&s, "203.0.113.66", "M10011", "nope").await;
    }
    // the member-wide delay is short; the owner's own address has no failures
    let resp = login_from(&s, "198.51.100.11", "M10011", "demo1234").await;
    let status = resp.status();
    if status != 200 {
        let (_, code, retry) = error_of(resp).await;
        assert_eq!(code, ErrorCode::RateLimited);
        assert!(retry.unwrap() <= 60, "at most a minute: {retry:?}");
    }
    // a stolen session guessing the password again slows down that session only
    let stolen = s.login("M10012").await;
    for _ in 0..10 {
        s.http
            .post(s.at("/v1/reauth"))
            .bearer_auth(&stolen)
            .header("x-forwarded-for", "203.0.113.67")
            .json(&json!({"password": "nope", "redemption_id": Uuid::new_v4()}))
            .send()
            .await
            .unwrap();
    }
    assert_eq!(
        login_from(&s, "198.51.100.12", "M10012", "demo1234")
            .await
            .status(),
        200
    );
}

/// Whoever holds a member's password cannot keep the server hashing it: past ten sign-ins in the
/// window, from any addresses, the next waits (2 s, then doubling); other members sign in as usual.
async fn one_password_cannot_keep_the_hashers_busy(s: TestServer) {
    let s = guarded(s).await;
    for i in 0..10 {
        let resp = login_from(&s, &format!("203.0.113.{}", 100 + i), "M10013", "demo1234").await;
        assert_eq!(resp.status(), 200, "sign-in {}", i + 1);
    }
    let (status, code, retry) =
        error_of(login_from(&s, "198.51.100.13", "M10013", "demo1234").await).await;
    assert_eq!(
        (status, code),
        (StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited)
    );
    assert_eq!(retry, Some(2));
    assert_eq!(
        login_from(&s, "198.51.100.14", "M10014", "demo1234")
            .await
            .status(),
        200
    );
    s.clock.set(t0() + chrono::Duration::seconds(2));
    assert_eq!(
        login_from(&s, "198.51.100.13", "M10013", "demo1234")
            .await
            .status(),
        200,
        "after the wait"
    );
    let (_, code, retry) =
        error_of(login_from(&s, "198.51.100.13", "M10013", "demo1234").await).await;
    assert_eq!(
        (code, retry),
        (ErrorCode::RateLimited, Some(4)),
        "twice as long"
    );
}

/// A client that hangs up while its password is being checked leaves no attempt in progress:
/// otherwise two such requests, with any password, would hold a member's attempts in progress at
/// the limit and refuse the owner's sign-in for as long as the server runs. Each counts as a
/// failure instead (its hash still runs): hanging up on every guess is slowed like guessing.
async fn hanging_up_mid_check_cannot_lock_the_owner_out(s: TestServer) {
    use tokio::io::AsyncWriteExt;
    let addr = s.url.trim_start_matches("http://").to_string();
    let body = json!({"member_no": "M10012", "password": "a guess", "device_name": "t",
                      "device_key": crate::util::device_key()})
    .to_string();
    let request = format!(
        "POST /v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let hang_up = |times: usize, member_no: &str| {
        let request = request.replace("M10012", member_no);
        let addr = addr.clone();
        async move {
            for _ in 0..times {
                let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
                c.write_all(request.as_bytes()).await.unwrap();
                // the request is whole and its check has begun (a hash takes far longer in a
                // test build)
                tokio::time::sleep(std::time::Duration::from_millis(30)).await;
                drop(c);
            }
            // the server sees each connection close
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    };
    hang_up(4, "M10012").await;
    // the cancelled checks may still hold the hashers for a moment (busy, told to come back);
    // the owner is let in once they are done, not refused for good
    let mut last = None;
    let mut let_in = false;
    for _ in 0..100 {
        let resp = login_from(&s, "127.0.0.1", "M10012", "demo1234").await;
        if resp.status() == StatusCode::OK {
            let_in = true;
            break;
        }
        last = Some(error_of(resp).await);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(let_in, "the owner is still refused after 20 s: {last:?}");

    // five hung-up guesses at another member: the sixth attempt from there waits, as after five
    // wrong passwords
    hang_up(5, "M10011").await;
    let (status, code, retry) =
        error_of(login_from(&s, "127.0.0.1", "M10011", "demo1234").await).await;
    assert_eq!(
        (status, code, retry),
        (
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            Some(2)
        )
    );
}

/// Every session belongs to an enrolled device; oversized fields are refused before hashing.
async fn a_login_needs_a_device_key_and_sane_lengths(s: TestServer) {
    let resp = s
        .http
        .post(s.at("/v1/login"))
        .json(&json!({"member_no": "M10013", "password": "demo1234", "device_name": "t"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(resp).await.1, ErrorCode::InvalidInput);
    for (no, pw) in [
        ("M".repeat(33), "demo1234".to_string()),
        ("M10013".into(), "x".repeat(129)),
    ] {
        let resp = login_from(&s, "192.0.2.1", &no, &pw).await;
        assert_eq!(error_of(resp).await.1, ErrorCode::InvalidInput);
    }
}

/// Without a trusted proxy, `X-Forwarded-For` is ignored: an attacker cannot pick the address
/// the limits count against.
async fn forwarded_addresses_count_only_from_a_trusted_proxy(s: TestServer) {
    let s = s
        .tweaked(|state| {
            state.with_guard(Guard::new(
                Policy {
                    free_per_address: 2,
                    ..Policy::default()
                },
                2,
            ))
        })
        .await;
    let mut codes = Vec::new();
    for i in 0..4 {
        // a different forged address each time: all still count against 127.0.0.1
        let resp = login_from(
            &s,
            &format!("203.0.113.{i}"),
            &format!("M1{:04}", i + 1),
            "x",
        )
        .await;
        codes.push(error_of(resp).await.1);
    }
    assert_eq!(
        codes,
        vec![
            ErrorCode::InvalidCredentials,
            ErrorCode::InvalidCredentials,
            ErrorCode::RateLimited,
            ErrorCode::RateLimited
        ]
    );
}

/// The grab and sign-up judge their requests with sessions kept in memory (so a burst is not a
/// database read each), and what they give is given only where it is written: a session ended
/// behind the server's back (the admin command suspends the member, here through the store) is
/// still in memory, and gets neither a coupon nor a seat.
async fn a_session_ended_elsewhere_wins_no_coupon_and_no_seat(s: TestServer) {
    let token = s.login("M10007").await;
    let c = s
        .store
        .create_campaign(crate::grab::campaign(5, 1), t0())
        .await
        .unwrap();
    let a = s
        .store
        .create_activity(crate::activities::activity(10, 0, 0), t0())
        .await
        .unwrap();
    // before the release: judged, nothing given; the session is now in memory
    let early = crate::grab::grab(&s, &token, c.id, Uuid::new_v4()).await;
    assert!(
        matches!(
            early.map(|r| r.outcome),
            Ok(unionpass_core::campaign::GrabOutcome::NotStarted { .. })
        ),
        "judged before the release"
    );
    assert!(s.store.suspend_member("M10007", t0()).await.unwrap());
    // still judged from memory: a refusal gives nothing away (every other route refuses the
    // session at once, `an_ended_session_stops_on_the_next_request`)
    let again = crate::grab::grab(&s, &token, c.id, Uuid::new_v4()).await;
    assert!(
        matches!(
            again.map(|r| r.outcome),
            Ok(unionpass_core::campaign::GrabOutcome::NotStarted { .. })
        ),
        "judged from memory"
    );

    s.clock
        .set(c.release_at.max(a.signup.as_ref().unwrap().opens_at));
    // the race's answer is refused where the coupon or the seat would be written
    for path in [
        format!("/v1/campaigns/{}/grab", c.id),
        format!("/v1/activities/{}/signup", a.id),
    ] {
        let resp = s
            .http
            .post(s.at(&path))
            .bearer_auth(&token)
            .json(&json!({ "key": Uuid::new_v4() }))
            .send()
            .await
            .unwrap();
        let (status, code, _) = error_of(resp).await;
        assert_eq!(
            (status, code),
            (StatusCode::UNAUTHORIZED, ErrorCode::SessionEnded),
            "{path}"
        );
    }
    // nothing was written for them: the stock is whole, the activity empty
    assert_eq!(s.store.audit(c.id).await.unwrap().granted, 0);
    assert!(s.store.signups(a.id).await.unwrap().is_empty());
    // another member's session still wins
    let other = s.login("M10008").await;
    let won = crate::grab::grab(&s, &other, c.id, Uuid::new_v4())
        .await
        .unwrap();
    assert!(matches!(
        won.outcome,
        unionpass_core::campaign::GrabOutcome::Granted { .. }
    ));
}

/// A member who forgot their password gets a one-time code from union staff: with it, a new
/// password is set and every session ends. A wrong, malformed, expired, used or suspended
/// member's code sets nothing, nor one issued before the member changed their password
/// themselves; the same reset sent again is answered as done; a new code replaces the last.
async fn a_forgotten_password_is_reset_once_with_a_code_from_staff(s: TestServer) {
    use chrono::Duration;
    use unionpass_core::api::reset_code_shown;
    use unionpass_server::auth::{hash_password, new_reset_code};
    let phone = s.login("M10009").await;
    let laptop = s.login("M10009").await;
    let live = |token: String| {
        let s = &s;
        async move { sync_with(s, &token).await.status() == StatusCode::OK }
    };
    let reset = |member_no: &str, code: &str, new: &str| {
        s.http
            .post(s.at("/v1/password/reset"))
            .json(&json!({"member_no": member_no, "code": code, "new_password": new}))
            .send()
    };
    let refused = |resp: reqwest::Response| async move { error_of(resp).await.1 };
    let signs_in = |password: &'static str| {
        let s = &s;
        async move {
            login_from(s, "127.0.0.1", "M10009", password)
                .await
                .status()
                == 200
        }
    };
    let issue = |member_no: &'static str, code: String, until: chrono::DateTime<chrono::Utc>| {
        let s = &s;
        async move {
            s.store
                .issue_password_reset(member_no, &hash_password(&code), t0(), until)
                .await
                .unwrap()
        }
    };

    let token_of = |member_no: &'static str, password: &'static str| {
        let s = &s;
        async move {
            login_from(s, "127.0.0.1", member_no, password)
                .await
                .json::<Value>()
                .await
                .unwrap()["token"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    // the member changes their own password, knowing the current one
    let change_own = |member_no: &'static str, current: &'static str, new: &'static str| {
        let s = &s;
        async move {
            let token = token_of(member_no, current).await;
            let resp = s
                .http
                .post(s.at("/v1/password"))
                .bearer_auth(&token)
                .json(&json!({"current_password": current, "new_password": new}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
        }
    };

    // no code issued yet: refused as a wrong one
    let code = new_reset_code();
    assert_eq!(
        refused(reset("M10009", &code, "a new secret").await.unwrap()).await,
        ErrorCode::InvalidCredentials
    );
    assert!(issue("M10009", code.clone(), t0() + Duration::hours(24))
        .await
        .is_some());
    assert!(issue("M99999", code.clone(), t0() + Duration::hours(24))
        .await
        .is_none());
    // a digit off, too short, a weak new password: refused, nothing changed
    let off = format!("{}{}", (code.as_bytes()[0] - b'0' + 1) % 10, &code[1..]);
    assert_eq!(
        refused(reset("M10009", &off, "a new secret").await.unwrap()).await,
        ErrorCode::InvalidCredentials
    );
    assert_eq!(
        refused(reset("M10009", &code[..11], "a new secret").await.unwrap()).await,
        ErrorCode::InvalidInput
    );
    assert_eq!(
        refused(reset("M10009", &code, "short").await.unwrap()).await,
        ErrorCode::WeakPassword
    );
    assert_eq!(
        refused(reset("M10010", &code, "a new secret").await.unwrap()).await,
        ErrorCode::InvalidCredentials,
        "another member's number with this code"
    );
    assert!(live(phone.clone()).await && signs_in("demo1234").await);
    // the member's own guesses before they went to the union: sign-in from here now waits
    for _ in 0..6 {
        login_from(&s, "127.0.0.1", "M10009", "is it this one").await;
    }
    assert!(!signs_in("demo1234").await, "slowed down");

    // the right code, as staff read it out (in groups), sent twice at once (a double tap, a
    // retry): set once, and every session ends; the copy is answered as done
    let (one, two) = tokio::join!(
        reset("M10009", &reset_code_shown(&code), "a new secret"),
        reset("M10009", &code, "a new secret")
    );
    let mut ended = Vec::new();
    for resp in [one.unwrap(), two.unwrap()] {
        assert_eq!(resp.status(), 200);
        ended.push(
            resp.json::<Value>().await.unwrap()["ended"]
                .as_u64()
                .unwrap(),
        );
    }
    ended.sort();
    assert_eq!(ended, [0, 3]);
    assert!(!live(phone).await && !live(laptop).await);
    // the guesses before the reset do not make the new password wait
    assert!(signs_in("a new secret").await && !signs_in("demo1234").await);

    // sent again (its answer lost): done, and nothing more ends
    let again = token_of("M10009", "a new secret").await;
    let resp = reset("M10009", &code, "a new secret").await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["ended"], 0);
    assert!(live(again).await);
    // the used code with another password: refused (the code works once)
    assert_eq!(
        refused(reset("M10009", &code, "someone else's").await.unwrap()).await,
        ErrorCode::InvalidCredentials
    );
    assert!(signs_in("a new secret").await && !signs_in("someone else's").await);
    // the password changed since: the used code no longer answers for any password
    change_own("M10009", "a new secret", "changed later").await;
    assert_eq!(
        refused(reset("M10009", &code, "changed later").await.unwrap()).await,
        ErrorCode::InvalidCredentials,
        "a used code is no test of a later password"
    );

    // a new code replaces the last; it expires
    let (first, second) = (new_reset_code(), new_reset_code());
    issue("M10009", first.clone(), t0() + Duration::hours(1)).await;
    issue("M10009", second.clone(), t0() + Duration::hours(1)).await;
    assert_eq!(
        refused(reset("M10009", &first, "third secret").await.unwrap()).await,
        ErrorCode::InvalidCredentials,
        "replaced"
    );
    s.clock.set(t0() + Duration::hours(1));
    assert_eq!(
        refused(reset("M10009", &second, "third secret").await.unwrap()).await,
        ErrorCode::InvalidCredentials,
        "expired"
    );
    // a suspended member's code sets nothing
    let third = new_reset_code();
    issue("M10009", third.clone(), t0() + Duration::hours(24)).await;
    assert!(s
        .store
        .suspend_member("M10009", t0() + Duration::hours(1))
        .await
        .unwrap());
    assert_eq!(
        refused(reset("M10009", &third, "third secret").await.unwrap()).await,
        ErrorCode::InvalidCredentials,
        "suspended"
    );
    let kept = s.store.member_auth("M10009").await.unwrap().unwrap();
    assert!(unionpass_server::auth::verify_password(
        "changed later",
        &kept.password_hash
    ));

    // a member who changes their password themselves voids a code not yet used: a slip found
    // later takes nothing over
    let slip = new_reset_code();
    issue("M10010", slip.clone(), t0() + Duration::hours(24)).await;
    change_own("M10010", "demo1234", "remembered it").await;
    assert_eq!(
        refused(reset("M10010", &slip, "taken over").await.unwrap()).await,
        ErrorCode::InvalidCredentials,
        "void after the member's own change"
    );
}

on_every_backend!(
    a_session_ended_elsewhere_wins_no_coupon_and_no_seat,
    a_check_in_is_recorded_only_with_a_proof_of_the_member_scanned,
    a_key_reused_for_something_else_is_refused,
    an_ended_session_stops_on_the_next_request,
    a_forgotten_password_is_reset_once_with_a_code_from_staff,
);

/// `s` again with at most `max` connections, `per_address` from one address, and headers due
/// within 800 ms.
async fn limited(s: TestServer, max: usize, per_address: usize) -> TestServer {
    s.tweaked(move |state| {
        state.with_conn_limits(unionpass_server::listen::ConnLimits {
            max,
            per_address,
            header_read_timeout: std::time::Duration::from_millis(800),
        })
    })
    .await
}

/// `n` connections to `addr`, each with a request's headers begun and never finished.
async fn half_sent(addr: &str, n: usize) -> Vec<tokio::net::TcpStream> {
    use tokio::io::AsyncWriteExt;
    let mut held = Vec::new();
    for _ in 0..n {
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        held.push(c);
    }
    held
}

/// Clients that hold connections open cannot take the server down: a connection that does not
/// finish its headers in time is closed, one address holds at most its share (the rest are
/// closed at once), and past the total the next connection waits for a place instead of
/// failing; an honest request is answered throughout.
async fn held_connections_are_bounded_and_time_out(s: TestServer) {
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = limited(s, 6, 4).await;
    let addr = s.url.trim_start_matches("http://").to_string();
    let health = || async {
        let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
        c.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        tokio::time::timeout(Duration::from_secs(5), c.read_to_string(&mut answer))
            .await
            .expect("answered in time")
            .unwrap();
        answer
    };
    // half a request's headers, never finished: closed after the timeout, not kept
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let began = Instant::now();
    let mut rest = Vec::new();
    // closed (an end of stream, or a reset), with no answer to a request never finished
    let _ = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut rest))
        .await
        .expect("the half-sent request's connection is closed");
    let took = began.elapsed();
    assert!(
        took >= Duration::from_millis(600) && took < Duration::from_secs(4),
        "closed after {took:?}"
    );
    // from one address (all of a test's are 127.0.0.1): four held, the fifth closed at once
    let held = half_sent(&addr, 4).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut fifth = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let _ = fifth
        .write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut got = Vec::new();
    let n = tokio::time::timeout(Duration::from_millis(500), fifth.read_to_end(&mut got))
        .await
        .expect("closed at once, not left waiting")
        .unwrap_or(0);
    assert_eq!(
        n,
        0,
        "no answer over the address's limit: {:?}",
        String::from_utf8_lossy(&got)
    );
    // once the held ones time out, the address is served again
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let answer = health().await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(held);

    // past the total, a connection waits for a place (it is not refused or dropped)
    let s = limited(s, 2, 10).await;
    let addr = s.url.trim_start_matches("http://").to_string();
    let held = half_sent(&addr, 2).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let began = Instant::now();
    // answered once a place is free
    let answer = health().await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let waited = began.elapsed();
    assert!(
        waited >= Duration::from_millis(500),
        "answered after {waited:?}, before the held connections timed out"
    );
    drop(held);
}

mod sqlite_only {
    use super::*;

    #[tokio::test]
    async fn held_connections() {
        held_connections_are_bounded_and_time_out(TestServer::start().await).await
    }

    #[tokio::test]
    async fn errors() {
        errors_are_json_everywhere(TestServer::start().await).await
    }

    #[tokio::test]
    async fn parallel_guesses() {
        parallel_guesses_are_counted_before_they_are_checked(TestServer::start().await).await
    }

    #[tokio::test]
    async fn spraying() {
        password_spraying_from_one_address_is_limited(TestServer::start().await).await
    }

    #[tokio::test]
    async fn no_lock_out() {
        an_attacker_cannot_lock_the_owner_out(TestServer::start().await).await
    }

    #[tokio::test]
    async fn one_password() {
        one_password_cannot_keep_the_hashers_busy(TestServer::start().await).await
    }

    #[tokio::test]
    async fn hanging_up() {
        hanging_up_mid_check_cannot_lock_the_owner_out(TestServer::start().await).await
    }

    #[tokio::test]
    async fn login_shape() {
        a_login_needs_a_device_key_and_sane_lengths(TestServer::start().await).await
    }

    #[tokio::test]
    async fn forwarded() {
        forwarded_addresses_count_only_from_a_trusted_proxy(TestServer::start().await).await
    }
}
