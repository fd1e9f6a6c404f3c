//! The union server over real HTTP on 127.0.0.1 port 0, on a real SQLite file.

use crate::util::{sync_answer, t0, LogCapture, TestServer};
use ed25519_dalek::VerifyingKey;
use reqwest::StatusCode;
use serde_json::{json, Value};
use unionpass_core::api::{KeysResponse, MutationOutcome, PushResponse, SyncResponse};
use unionpass_core::passport;
use unionpass_core::{ErrorCode, Lang};

async fn sync(s: &TestServer, token: &str, cursor: i64) -> SyncResponse {
    let resp = s
        .http
        .get(s.at(&format!("/v1/sync?cursor={cursor}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

async fn push(s: &TestServer, token: &str, body: &Value) -> PushResponse {
    let resp = s
        .http
        .post(s.at("/v1/sync/push"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

fn set_language(id: &str, lang: &str) -> Value {
    json!({"mutations": [{"id": id, "created_at": "2026-11-29T08:00:00Z", "op": "set_language", "args": {"language": lang}}]})
}

async fn error_of(resp: reqwest::Response) -> (StatusCode, ErrorCode) {
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    (
        status,
        serde_json::from_value(body["code"].clone()).unwrap(),
    )
}

async fn login_then_sync_gives_profile_and_a_passport_that_verifies_with_published_keys(
    s: TestServer,
) {
    let token = s.login("M10001").await;
    let page = sync(&s, &token, 0).await;
    assert_eq!(page.profile.member_no, "M10001");
    assert_eq!(page.profile.name, "王芳");
    assert_eq!(page.profile.union.name, "智云科技有限公司工会");
    assert_eq!(page.server_time, t0());

    let keys: KeysResponse = s.get_json("/v1/keys", None).await;
    let vks: Vec<VerifyingKey> = keys
        .keys
        .iter()
        .map(|k| k.verifying_key().expect("a valid published key"))
        .collect();
    let issued = page
        .passport
        .clone()
        .expect("an enrolled device gets a credential");
    let cred = passport::Credential::parse(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            &issued.credential,
        )
        .unwrap(),
    )
    .unwrap();
    cred.verify_union(&vks).unwrap();
    let claims = cred.claims;
    assert_eq!(claims.member_id as i64, page.profile.member_id);
    assert_eq!(claims.union_id as i64, page.profile.union.id);
    assert_eq!(claims.kid.to_hex(), issued.kid);
    assert_eq!(claims.member_no, "M10001");

    // The same credential comes back until renewal is due.
    assert_eq!(
        sync(&s, &token, page.cursor).await.passport,
        Some(issued.clone())
    );
    s.clock.set(t0() + chrono::Duration::days(24));
    let renewed = sync(&s, &token, page.cursor).await.passport.unwrap();
    assert_ne!(renewed.credential, issued.credential);
    assert!(renewed.valid_until > issued.valid_until);
}

async fn wrong_password_unknown_member_and_rate_limit_have_stable_codes(s: TestServer) {
    let login = |no: &str, pw: &str| {
        s.http
            .post(s.at("/v1/login"))
            .json(&json!({"member_no": no, "password": pw, "device_name": "t",
                          "device_key": crate::util::device_key()}))
            .send()
    };
    assert_eq!(
        error_of(login("M10002", "wrong").await.unwrap()).await,
        (StatusCode::UNAUTHORIZED, ErrorCode::InvalidCredentials)
    );
    assert_eq!(
        error_of(login("NOPE", "demo1234").await.unwrap()).await,
        (StatusCode::UNAUTHORIZED, ErrorCode::InvalidCredentials)
    );
    assert_eq!(
        error_of(login("", "").await.unwrap()).await.1,
        ErrorCode::InvalidInput
    );
    let bad = s
        .http
        .post(s.at("/v1/login"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(bad).await,
        (StatusCode::BAD_REQUEST, ErrorCode::BadRequest)
    );
    for _ in 0..10 {
        login("M10003", "wrong").await.unwrap();
    }
    // past the free failures, the next attempt waits, even with the right password
    assert_eq!(
        error_of(login("M10003", "demo1234").await.unwrap()).await,
        (StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited)
    );
    assert_eq!(
        error_of(s.http.get(s.at("/v1/nowhere")).send().await.unwrap())
            .await
            .1,
        ErrorCode::NotFound
    );
}

async fn sessions_are_required_expire_and_end_at_logout(s: TestServer) {
    let no_token = s.http.get(s.at("/v1/sync")).send().await.unwrap();
    assert_eq!(
        error_of(no_token).await,
        (StatusCode::UNAUTHORIZED, ErrorCode::Unauthenticated)
    );
    let forged = s
        .http
        .get(s.at("/v1/sync"))
        .bearer_auth("forged")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(forged).await.1, ErrorCode::Unauthenticated);

    let token = s.login("M10004").await;
    sync(&s, &token, 0).await;
    let out = s
        .http
        .post(s.at("/v1/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 200);
    let after = s
        .http
        .get(s.at("/v1/sync"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(after).await.1, ErrorCode::SessionEnded);

    let token = s.login("M10004").await;
    s.clock.set(t0() + unionpass_server::auth::SESSION_IDLE);
    let expired = s
        .http
        .get(s.at("/v1/sync"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(expired).await.1, ErrorCode::SessionEnded);
}

async fn a_token_reaches_only_its_own_members_data(s: TestServer) {
    let a = s.login("M10005").await;
    let b = s.login("M10014").await;
    let id = "6f0c1a52-5d1e-4f7e-9d55-3a0f9b7c0001";
    assert_eq!(
        push(&s, &b, &set_language(id, "en")).await.results[0].outcome,
        MutationOutcome::Applied
    );

    let page_a = sync(&s, &a, 0).await;
    assert_eq!(
        page_a.profile.member_no, "M10005",
        "a query parameter cannot pick another member"
    );
    assert!(
        page_a.changes.is_empty(),
        "A sees none of B's changes: {:?}",
        page_a.changes
    );
    assert_eq!(page_a.profile.language, None);
    let with_param = s
        .http
        .get(s.at("/v1/sync?cursor=0&member_id=14"))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap();
    let page: SyncResponse = with_param.json().await.unwrap();
    assert_eq!(page.profile.member_no, "M10005");

    // A replaying B's mutation id changes nothing of A's or B's.
    let r = push(&s, &a, &set_language(id, "zh-CN")).await;
    assert!(matches!(
        r.results[0].outcome,
        MutationOutcome::Rejected {
            code: ErrorCode::Forbidden,
            ..
        }
    ));
    assert_eq!(sync(&s, &b, 0).await.profile.language, Some(Lang::En));
    assert_eq!(sync(&s, &a, 0).await.profile.language, None);
}

async fn pushed_mutations_apply_exactly_once_and_replays_return_the_first_answer(s: TestServer) {
    let token = s.login("M10006").await;
    let id = "6f0c1a52-5d1e-4f7e-9d55-3a0f9b7c0002";
    let first = push(&s, &token, &set_language(id, "en")).await;
    assert_eq!(first.results[0].outcome, MutationOutcome::Applied);
    assert!(!first.results[0].replayed);
    // The same change again is a replay: its first answer, nothing new applied.
    let again = push(&s, &token, &set_language(id, "en")).await;
    assert_eq!(again.results[0].outcome, MutationOutcome::Applied);
    assert!(again.results[0].replayed);
    // The same id with other content is refused: the id is bound to what it first carried.
    let other = push(&s, &token, &set_language(id, "zh-CN")).await;
    assert!(
        matches!(
            other.results[0].outcome,
            MutationOutcome::Rejected {
                code: ErrorCode::IdempotencyKeyReused,
                ..
            }
        ),
        "{:?}",
        other.results[0]
    );

    let page = sync(&s, &token, 0).await;
    assert_eq!(page.profile.language, Some(Lang::En));
    assert_eq!(
        page.changes.len(),
        1,
        "one change for one mutation: {:?}",
        page.changes
    );
    // Nothing new after the cursor.
    assert!(sync(&s, &token, page.cursor).await.changes.is_empty());

    // a push with a change that has no id is refused whole, and none of it is applied: a
    // refusal of the request never hides a change it made
    let first_of_two = json!({"id": "6f0c1a52-5d1e-4f7e-9d55-3a0f9b7c0004", "created_at": "2026-11-29T08:00:00Z", "op": "set_language", "args": {"language": "zh-CN"}});
    for second in [
        json!({"created_at": "2026-11-29T08:00:00Z", "op": "set_language", "args": {"language": "en"}}),
        json!(1),
    ] {
        let resp = s
            .http
            .post(s.at("/v1/sync/push"))
            .bearer_auth(&token)
            .json(&json!({ "mutations": [first_of_two, second] }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_of(resp).await,
            (StatusCode::BAD_REQUEST, ErrorCode::BadRequest)
        );
        assert_eq!(sync(&s, &token, 0).await.profile.language, Some(Lang::En));
    }
    // sent again alone, it is new (not a replay of a change made by the refused push)
    let alone = push(&s, &token, &json!({ "mutations": [first_of_two] })).await;
    assert_eq!(alone.results[0].outcome, MutationOutcome::Applied);
    assert!(!alone.results[0].replayed);
    assert_eq!(sync(&s, &token, 0).await.profile.language, Some(Lang::ZhCn));

    let unknown = json!({"mutations": [{"id": "6f0c1a52-5d1e-4f7e-9d55-3a0f9b7c0003", "created_at": "2026-11-29T08:00:00Z", "op": "launch_rocket", "args": {}}]});
    // a change of a kind this server does not know is refused alone, not the whole push
    let r = push(&s, &token, &unknown).await;
    assert!(matches!(
        r.results[0].outcome,
        MutationOutcome::Rejected {
            code: ErrorCode::UnsupportedMutation,
            ..
        }
    ));
}

/// However often a member signs in, they hold at most `MAX_DEVICES` devices: one more revokes
/// the device enrolled longest ago, whose session ends; the others go on.
async fn signing_in_again_and_again_keeps_at_most_ten_devices(s: TestServer) {
    let max = unionpass_server::store::rules::MAX_DEVICES;
    let mut tokens = Vec::new();
    // a minute apart: ten sign-ins at once are all the guard lets through without a wait
    for i in 0..max + 2 {
        s.clock.set(t0() + chrono::Duration::minutes(i as i64));
        tokens.push(s.login("M10004").await);
    }
    for (i, token) in tokens.iter().enumerate() {
        let resp = sync_answer(&s, token).await;
        if i < 2 {
            assert_eq!(
                error_of(resp).await,
                (StatusCode::UNAUTHORIZED, ErrorCode::SessionEnded),
                "sign-in {i}"
            );
        } else {
            assert_eq!(resp.status(), 200, "sign-in {i}");
        }
    }
    let page = sync(&s, tokens.last().unwrap(), 0).await;
    assert_eq!(page.devices.len(), max, "{:?}", page.devices);
}

async fn time_endpoint_and_no_token_in_the_logs(s: TestServer) {
    let logs = LogCapture::install();
    let t: Value = s.get_json("/v1/time", None).await;
    assert_eq!(t["now"], "2026-11-29T08:00:00Z");
    let token = s.login("M10007").await;
    sync(&s, &token, 0).await;
    s.http
        .post(s.at("/v1/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let text = logs.text();
    assert!(text.contains("signed in"), "the capture works: {text}");
    assert!(
        !text.contains(&token),
        "the session token leaked into the logs"
    );
    assert!(
        !text.contains(unionpass_server::seed::DEMO_PASSWORD),
        "a password leaked into the logs"
    );
}

on_every_backend!(
    login_then_sync_gives_profile_and_a_passport_that_verifies_with_published_keys,
    wrong_password_unknown_member_and_rate_limit_have_stable_codes,
    sessions_are_required_expire_and_end_at_logout,
    a_token_reaches_only_its_own_members_data,
    pushed_mutations_apply_exactly_once_and_replays_return_the_first_answer,
    signing_in_again_and_again_keeps_at_most_ten_devices,
    time_endpoint_and_no_token_in_the_logs,
);

/// A server serving app versions 0.5.0 and up, 0.6.1 the newest.
fn serving_050_to_061(
    downloads: std::collections::BTreeMap<String, String>,
) -> unionpass_core::api::VersionInfo {
    unionpass_core::api::VersionInfo {
        min_supported: "0.5.0".into(),
        latest: "0.6.1".into(),
        downloads,
    }
}

/// Apps older than the oldest served are answered `client_too_old` (426) everywhere but the
/// version, time and health endpoints; newer apps and other clients are served.
#[tokio::test]
async fn apps_older_than_the_oldest_served_are_told_to_update() {
    use unionpass_core::api::VersionInfo;
    let s = TestServer::start()
        .await
        .tweaked(|st| {
            st.with_versions(serving_050_to_061(
                [(
                    "android".to_string(),
                    "https://example.org/up.apk".to_string(),
                )]
                .into(),
            ))
        })
        .await;
    let get = |path: &str, ua: &str| {
        s.http
            .get(format!("{}{path}", s.url))
            .header(reqwest::header::USER_AGENT, ua)
            .send()
    };
    let old = get("/v1/keys", "UnionPass/0.4.9").await.unwrap();
    assert_eq!(old.status(), StatusCode::UPGRADE_REQUIRED);
    let body: Value = old.json().await.unwrap();
    assert_eq!(body["code"], "client_too_old");
    assert!(body["message"].as_str().unwrap().contains("0.5.0"));
    let login = s
        .http
        .post(format!("{}/v1/login", s.url))
        .header(reqwest::header::USER_AGENT, "UnionPass/0.1.0")
        .json(&json!({"member_no": "M10001", "password": "demo1234", "device_name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::UPGRADE_REQUIRED);
    for open in ["/v1/version", "/v1/time", "/v1/health"] {
        assert_eq!(
            get(open, "UnionPass/0.4.9").await.unwrap().status(),
            StatusCode::OK,
            "{open}"
        );
    }
    let info: VersionInfo = get("/v1/version", "UnionPass/0.4.9")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (info.min_supported.as_str(), info.latest.as_str()),
        ("0.5.0", "0.6.1")
    );
    assert_eq!(info.downloads["android"], "https://example.org/up.apk");
    for served in ["UnionPass/0.5.0", "UnionPass/1.0.0", "curl/8.0"] {
        assert_eq!(
            get("/v1/keys", served).await.unwrap().status(),
            StatusCode::OK,
            "{served}"
        );
    }
}

/// The app's updater asks `/v1/update/{target}/{arch}/{bundle}/{current}`: an older app gets
/// the newest version's package for its own platform and package kind with its signature (also
/// below the oldest served), anything else 204; a malformed ask is a clear 400.
#[tokio::test]
async fn the_updater_gets_the_newest_signed_package_for_its_own_kind() {
    use unionpass_core::api::{UpdatePackage, UpdateRelease};
    let s = TestServer::start()
        .await
        .tweaked(|st| {
            // the packages first: the versions set after keep them
            st.with_update_packages(
                [(
                    "linux-x86_64-deb".to_string(),
                    UpdatePackage {
                        url: "https://example.org/UnionPass_0.6.1_amd64.deb".into(),
                        signature: "dW50cnVzdGVk".into(),
                    },
                )]
                .into(),
            )
            .with_versions(serving_050_to_061(Default::default()))
        })
        .await;
    let ask = |path: String| {
        let (http, url) = (s.http.clone(), s.url.clone());
        async move {
            http.get(format!("{url}/v1/update/{path}"))
                // as the updater asks: not as a UnionPass app, and never refused as too old
                .header(reqwest::header::USER_AGENT, "tauri-plugin-updater/2")
                .send()
                .await
                .unwrap()
        }
    };
    for current in ["0.6.0", "0.4.0"] {
        let r = ask(format!("linux/x86_64/deb/{current}")).await;
        assert_eq!(r.status(), StatusCode::OK, "{current}");
        let release: UpdateRelease = r.json().await.unwrap();
        assert_eq!(
            release,
            UpdateRelease {
                version: "0.6.1".into(),
                url: "https://example.org/UnionPass_0.6.1_amd64.deb".into(),
                signature: "dW50cnVzdGVk".into(),
            }
        );
    }
    // a UnionPass app too old for everything else still reaches its update
    let old_app = s
        .http
        .get(format!("{}/v1/update/linux/x86_64/deb/0.4.0", s.url))
        .header(reqwest::header::USER_AGENT, "UnionPass/0.4.0")
        .send()
        .await
        .unwrap();
    assert_eq!(old_app.status(), StatusCode::OK);
    for nothing in [
        "linux/x86_64/deb/0.6.1",
        "linux/x86_64/deb/0.7.0",
        "linux/x86_64/rpm/0.6.0",
        "linux/x86_64/unknown/0.6.0",
        "darwin/aarch64/app/0.6.0",
    ] {
        let r = ask(nothing.to_string()).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT, "{nothing}");
        assert!(r.bytes().await.unwrap().is_empty(), "{nothing}");
    }
    let long = "x".repeat(33);
    for bad in [
        "linux/x86_64/deb/latest".to_string(),
        format!("linux/{long}/deb/0.6.0"),
    ] {
        let r = ask(bad.clone()).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], "bad_request", "{bad}");
    }
}

/// Long answers (a sync page) travel gzip-compressed when the app accepts it; short ones (a
/// grab's answer) as they are: compressing them costs the server more than it saves.
#[tokio::test]
async fn long_answers_are_compressed_and_short_ones_are_not() {
    let s = TestServer::start().await;
    for _ in 0..5 {
        s.store
            .create_campaign(crate::grab::campaign(5, 1), t0())
            .await
            .unwrap();
    }
    let token = s.login("M10001").await;
    // a client that leaves the bytes as they came (the test's own decompresses and hides it)
    let raw = reqwest::Client::builder().no_gzip().build().unwrap();
    let encoding = |r: &reqwest::Response| {
        r.headers()
            .get("content-encoding")
            .map(|v| v.to_str().unwrap().to_string())
    };
    let page = raw
        .get(s.at("/v1/sync?cursor=0"))
        .bearer_auth(&token)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(
        encoding(&page).as_deref(),
        Some("gzip"),
        "{:?}",
        page.headers()
    );
    let short = raw
        .post(s.at("/v1/campaigns/1/grab"))
        .bearer_auth(&token)
        .header("accept-encoding", "gzip")
        .json(&json!({ "key": uuid::Uuid::new_v4() }))
        .send()
        .await
        .unwrap();
    assert_eq!(encoding(&short), None, "{:?}", short.headers());
    let body = short.bytes().await.unwrap();
    assert!(
        body.len() < usize::from(unionpass_server::http::COMPRESS_ABOVE),
        "{} bytes",
        body.len()
    );
    serde_json::from_slice::<Value>(&body).expect("plain JSON");
}
