//! The real app window: sign in and see the passport; restart offline; switch language.
//! Each test saves a screenshot. Run through `cargo xtask test` (one test at a time).

use anyhow::Context;
use base64::Engine;
use ed25519_dalek::VerifyingKey;
use unionpass_core::api::{KeysResponse, SyncResponse};
use unionpass_core::passport;
use unionpass_core::Lang;
use unionpass_e2e::{decode_qr, device_key_of, files_containing, token_of, App, Server};

async fn sync_as(server: &Server, token: &str) -> SyncResponse {
    reqwest::Client::new()
        .get(format!("{}/v1/sync?cursor=0", server.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A button that looks closed (before a release or an opening) but still hears a tap.
async fn closed(b: &fantoccini::elements::Element) -> anyhow::Result<bool> {
    Ok(b.attr("aria-disabled").await?.as_deref() == Some("true"))
}

/// The text of an element kept in the page but hidden from sight (WebDriver's text is empty).
async fn hidden_text(app: &App, css: &str) -> anyhow::Result<String> {
    let el = app.wait_for(css, 5).await?;
    Ok(el.prop("textContent").await?.unwrap_or_default())
}

/// The window at a phone's width (360 px) or the desktop size, given a moment to lay out.
async fn resize(app: &App, w: u32) -> anyhow::Result<()> {
    app.c
        .set_window_size(w, if w == 360 { 740 } else { 720 })
        .await?;
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    Ok(())
}

/// End every session of the member whose `token` it is, as a sign-out everywhere from another
/// device does, then sync `app`: it is back at the sign-in form.
async fn end_sessions_and_sync(server: &Server, token: &str, app: &App) -> anyhow::Result<()> {
    let ended: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/v1/sessions/end-all", server.url))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    anyhow::ensure!(ended["ended"] == 1, "{ended}");
    app.click("#sync-now").await?;
    app.wait_for("#member-no", 30).await?;
    Ok(())
}

/// The note that a session ended (`note`: its element) says so in its own words; the possible
/// causes wait, folded, under it.
async fn causes_folded(app: &App, note: &str) -> anyhow::Result<()> {
    let said = app.text(&format!("{note} > p")).await?;
    anyhow::ensure!(
        !said.contains("修改了密码"),
        "the note lists the causes: {said}"
    );
    let why = app
        .wait_for(&format!("{note} #session-ended-why"), 5)
        .await?;
    anyhow::ensure!(
        why.prop("open").await?.as_deref() == Some("false"),
        "the causes are shown unasked"
    );
    Ok(())
}

/// What a scanner trusts: the union keys the server publishes.
async fn published_trust(server: &Server) -> anyhow::Result<passport::TrustList> {
    let keys: KeysResponse = reqwest::get(format!("{}/v1/keys", server.url))
        .await?
        .json()
        .await?;
    Ok(passport::TrustList {
        keys: keys
            .keys
            .iter()
            .map(|k| k.verifying_key().expect("a valid published key"))
            .collect::<Vec<VerifyingKey>>(),
        ..Default::default()
    })
}

/// The public half of the device key the app keeps in the keyring for `data`.
fn device_public_key(data: &std::path::Path) -> anyhow::Result<[u8; 32]> {
    let key: [u8; 32] = device_key_of(data)?
        .try_into()
        .map_err(|_| anyhow::anyhow!("a device key of another length"))?;
    Ok(ed25519_dalek::SigningKey::from_bytes(&key)
        .verifying_key()
        .to_bytes())
}

#[tokio::test]
async fn sign_in_shows_the_passport_whose_qr_is_the_signed_credential() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path())?;
    let data = dir.path().join("device");
    let app = App::launch(&data, &server.url, 4444).await?;
    let result = async {
        app.sign_in("M10001", "demo1234").await?;
        app.wait_text("#passport-name", "王芳", 30).await?;
        assert_eq!(app.text("#passport-member-no").await?, "M10001");
        assert_eq!(app.text("#passport-union").await?, "智云科技有限公司工会");
        assert_eq!(app.text("#passport-title").await?, "电子护照");
        app.wait_for("#passport-qr svg", 10).await?;
        app.wait_for("#sync-status", 5).await?;
        let png = app.shot("01-passport").await?;

        // What a standard QR reader sees on screen is a level-2 code over the credential the
        // server issued to this device...
        let token = token_of(&data)?;
        let issued = sync_as(&server, &token)
            .await
            .passport
            .expect("a credential for this device")
            .credential;
        let seen = decode_qr(&png)?;
        assert_eq!(seen.len(), 1, "one QR in the window");
        let shown = passport::decode(&seen[0])?;
        assert_eq!(
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&shown.credential.bytes),
            issued
        );
        // ...and it verifies with the union key the server publishes and the device's own key.
        let trust = published_trust(&server).await?;
        let claims = shown.verify(&trust, chrono_now())?;
        assert_eq!((claims.member_id, claims.member_no.as_str()), (1, "M10001"));
        assert_eq!(
            claims.device_key,
            device_public_key(&data)?,
            "signed by this device's key"
        );
        let device_key = device_key_of(&data)?;

        // The code rotates with the time step, and each one verifies.
        let next = passport::step_start(shown.step + 1) - chrono_now();
        tokio::time::sleep(
            next.to_std().unwrap_or_default() + std::time::Duration::from_millis(1500),
        )
        .await;
        let png = app.shot("01b-passport-rotated").await?;
        let rotated = passport::decode(&decode_qr(&png)?[0])?;
        assert!(
            rotated.step > shown.step,
            "a new code after the step changed"
        );
        rotated.verify(&trust, chrono_now())?;
        assert!(app.text("#passport-countdown").await?.contains("秒后更新"));

        // The token is in the keyring only: not in the SQLite file, the logs, WebKit's data, or
        // anything else under the app's data dir, nor in the server's log.
        assert!(token.len() >= 40);
        assert_eq!(
            files_containing(&data, token.as_bytes()),
            Vec::<std::path::PathBuf>::new()
        );
        assert!(
            data.join("unionpass.sqlite").exists() && !unionpass_e2e::log_files(&data).is_empty()
        );
        assert!(!std::fs::read_to_string(&server.log)?.contains(&token));
        // Nor is the device's private passport key anywhere on disk.
        for encoded in [
            base64::engine::general_purpose::STANDARD.encode(&device_key),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&device_key),
        ] {
            assert_eq!(
                files_containing(&data, encoded.as_bytes()),
                Vec::<std::path::PathBuf>::new()
            );
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    app.close().await;
    result
}

/// The scanner's answer's class: how it is shown (`ok`, `repeat` in amber, `fail`).
async fn result_class(app: &App) -> anyhow::Result<String> {
    Ok(app
        .wait_for("#scan-result", 1)
        .await?
        .attr("class")
        .await?
        .unwrap_or_default())
}

fn chrono_now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

/// Too many wrong passwords: the sign-in screen says how long to wait (the server's
/// `Retry-After`), not only "later"; after the wait the right password gets in. The password
/// change says it too.
#[tokio::test]
async fn too_many_wrong_passwords_say_how_long_to_wait() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path())?;
    let app = App::launch(&dir.path().join("app"), &server.url, 4620).await?;
    let result = async {
        app.sign_in("M10015", "wrong-1").await?;
        app.wait_contains("#login-error", "会员号或密码不正确", 30)
            .await?;
        // four more are free for this number from this address; the one after waits
        for _ in 0..5 {
            app.click("#login-submit").await?;
        }
        let said = app
            .wait_contains("#login-error", "尝试次数过多", 30)
            .await?;
        anyhow::ensure!(
            (said == "尝试次数过多，请 1 秒后再试。" || said == "尝试次数过多，请 2 秒后再试。"),
            "the wait in words: {said}"
        );
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        let password = app.wait_for("#password", 5).await?;
        password.send_keys(&"\u{E003}".repeat(12)).await?;
        password.send_keys("demo1234").await?;
        app.click("#login-submit").await?;
        app.wait_for("#passport-name", 30).await?;

        // the password asked again (to change it) is counted per session: the first wrong one
        // names the current password (no member number was typed), the sixth says the wait
        app.click("#tab-me").await?;
        app.click("#change-password-section summary").await?;
        app.wait_for("#current-password", 10)
            .await?
            .send_keys("wrong-2")
            .await?;
        for field in ["#new-password", "#new-password-again"] {
            app.wait_for(field, 5)
                .await?
                .send_keys("newer-pass-1")
                .await?;
        }
        app.click("#change-password").await?;
        app.wait_text(
            "#password-error",
            "密码不正确，请重新输入你的登录密码。",
            30,
        )
        .await?;
        // four more are free; one spare click, in case one lands while the last is in flight
        for _ in 0..6 {
            app.click("#change-password").await?;
        }
        let said = app
            .wait_contains("#password-error", "尝试次数过多", 30)
            .await?;
        anyhow::ensure!(
            (said == "尝试次数过多，请 1 秒后再试。" || said == "尝试次数过多，请 2 秒后再试。"),
            "the wait in words, changing the password: {said}"
        );
        Ok::<_, anyhow::Error>(())
    }
    .await;
    app.close().await;
    result
}

/// A forgotten password: union staff issue a one-time code (`member reset-password`), the
/// member enters it on the sign-in screen with a new password and is signed in; a wrong code
/// is said to be wrong. Screenshots of the form in both languages at desktop size and 360 px.
#[tokio::test]
async fn a_forgotten_password_is_reset_with_a_code_from_the_union() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path())?;
    let printed = server.admin(&["member", "reset-password", "M10016"])?;
    // "reset code for M10016: 4827 1930 5521", read out by staff as printed
    let code = printed
        .lines()
        .find_map(|l| l.strip_prefix("reset code for M10016: "))
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("no code in {printed:?}"))?;
    anyhow::ensure!(
        code.len() == 14 && code.chars().filter(char::is_ascii_digit).count() == 12,
        "{code:?}"
    );
    let app = App::launch(&dir.path().join("app"), &server.url, 4630).await?;
    let result = async {
        app.click("#forgot-password").await?;
        app.wait_for("#reset-form", 10).await?;
        for (lang, w) in [("zh", 1024), ("zh", 360), ("en", 360), ("en", 1024)] {
            if lang == "en" && w == 360 {
                app.click("#lang-toggle").await?;
                app.wait_text("#reset-submit", "Reset password and sign in", 5)
                    .await?;
            }
            resize(&app, w).await?;
            app.shot(&format!("64-{lang}-{w}-reset-password")).await?;
        }
        app.click("#lang-toggle").await?;
        app.wait_text("#reset-submit", "重设密码并登录", 5).await?;
        resize(&app, 360).await?;

        app.wait_for("#reset-member-no", 5)
            .await?
            .send_keys("M10016")
            .await?;
        // one digit off: said to be wrong, nothing signed in
        let mut digits: Vec<char> = code.chars().collect();
        digits[0] = if digits[0] == '9' { '1' } else { '9' };
        let wrong: String = digits.into_iter().collect();
        app.wait_for("#reset-code", 5)
            .await?
            .send_keys(&wrong)
            .await?;
        for field in ["#reset-new-password", "#reset-new-password-again"] {
            app.wait_for(field, 5)
                .await?
                .send_keys("my-new-pass-7")
                .await?;
        }
        app.click("#reset-submit").await?;
        app.wait_text(
            "#reset-error",
            "重设码不正确、已过期或已经用过。请核对后再试，或向工会重新领取。",
            30,
        )
        .await?;
        app.shot("64b-zh-360-reset-wrong-code").await?;
        // the code as staff read it out, spaces and all: reset and signed in
        let field = app.wait_for("#reset-code", 5).await?;
        field.send_keys(&"\u{E003}".repeat(20)).await?;
        field.send_keys(&code).await?;
        app.click("#reset-submit").await?;
        app.wait_for("#passport-name", 30).await?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    app.close().await;
    result?;

    // the old password no longer signs in; the new one does
    use base64::Engine;
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key();
    let key = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.as_bytes());
    let http = reqwest::Client::new();
    let login = |password: &'static str| {
        http.post(format!("{}/v1/login", server.url))
            .json(
                &serde_json::json!({"member_no": "M10016", "password": password,
                "device_name": "t", "device_key": key}),
            )
            .send()
    };
    assert_eq!(login("demo1234").await?.status(), 401);
    assert_eq!(login("my-new-pass-7").await?.status(), 200);
    Ok(())
}

#[tokio::test]
async fn restarted_with_the_server_down_the_passport_shows_from_the_store_offline(
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut server = Server::start(dir.path())?;
    let data = dir.path().join("device");
    let app = App::launch(&data, &server.url, 4454).await?;
    let first = async {
        app.sign_in("M10014", "demo1234").await?;
        app.wait_text("#passport-name", "朱建国", 30).await?;
        app.wait_for("#passport-qr svg", 10).await?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    app.close().await;
    first?;

    server.stop();
    let app = App::launch(&data, &server.url, 4464).await?;
    let second = async {
        app.wait_text("#passport-name", "朱建国", 15).await?;
        app.wait_for("#passport-qr svg", 5).await?;
        app.wait_for("#offline-badge", 20).await?;
        assert_eq!(app.text("#offline-badge").await?, "离线");
        // offline, the status does not claim "synced": it says when it last was
        // (read as the page's text: WebDriver's rendered text of this squeezable span is unreliable)
        let mut status = String::new();
        for _ in 0..50 {
            status = app
                .c
                .execute(
                    "const e = document.getElementById('sync-status'); return e ? e.textContent : '';",
                    vec![],
                )
                .await?
                .as_str()
                .unwrap_or_default()
                .to_string();
            if status.contains("上次同步") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        anyhow::ensure!(status.contains("上次同步"), "sync status offline: {status:?}");
        anyhow::ensure!(!status.contains("已同步"), "{status:?}");
        app.shot("02-offline-restart").await?;

        Ok::<_, anyhow::Error>(())
    }
    .await;
    app.close().await;
    second
}

#[tokio::test]
async fn switching_to_english_relabels_the_screen_and_syncs_the_choice() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path())?;
    let data = dir.path().join("device");
    let app = App::launch(&data, &server.url, 4474).await?;
    let result = async {
        app.sign_in("M10008", "demo1234").await?;
        app.wait_text("#passport-name", "黄晓东", 30).await?;
        app.wait_text("#passport-title", "电子护照", 5).await?;
        app.click("#lang-toggle").await?;
        app.wait_text("#passport-title", "Electronic passport", 10)
            .await?;
        app.wait_text("#tab-passport .tab-label", "Passport", 5)
            .await?;
        app.wait_text("#tab-me .tab-label", "Me", 5).await?;
        app.shot("03-english").await?;
        // The choice went through the outbox to the server.
        let token = token_of(&data)?;
        let mut language = None;
        for _ in 0..50 {
            language = sync_as(&server, &token).await.profile.language;
            if language.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        assert_eq!(language, Some(Lang::En));

        // "start at login" writes the desktop's autostart entry (window hidden, in the tray),
        // and switching it off removes it
        let autostart_dir = data.join("home/.config/autostart");
        let entries = || -> Vec<String> {
            std::fs::read_dir(&autostart_dir)
                .map(|d| {
                    d.flatten()
                        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                        .collect()
                })
                .unwrap_or_default()
        };
        app.click("#tab-me").await?;
        app.wait_contains(".me", "Start at login", 10).await?;
        // the member number with its label, as the passport says it
        app.wait_text("#me-member-no .joined-part", "Member number M10008", 5)
            .await?;
        // then the union, as a part of its own (its name is the union's, in Chinese)
        let parts = app
            .c
            .execute(
                "return [...document.querySelectorAll('#me-member-no .joined-part')]
                   .map(p => p.textContent.replace(/^\\s*·\\s*/, '').trim())",
                vec![],
            )
            .await?;
        assert_eq!(
            parts,
            serde_json::json!(["Member number M10008", "星河互联网络技术有限公司工会"])
        );
        let toggle = app.wait_for("#autostart", 5).await?;
        assert!(entries().is_empty());
        toggle.click().await?;
        app.wait_until("#autostart", 5, "checked", |_| !entries().is_empty())
            .await?;
        let entry = entries().remove(0);
        assert!(
            entry.contains("unionpass-app --hidden"),
            "autostart entry: {entry}"
        );
        toggle.click().await?;
        app.wait_until("#autostart", 5, "unchecked", |_| entries().is_empty())
            .await?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    app.close().await;
    result
}

#[tokio::test]
async fn a_staff_scanner_offline_checks_in_from_a_screenshot_and_refuses_replays(
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut server = Server::start(dir.path())?;

    // the member's device shows the live code; a screenshot of it is what gets passed around
    let member = App::launch(&dir.path().join("member"), &server.url, 4484).await?;
    let shot = async {
        member.sign_in("M10001", "demo1234").await?;
        member.wait_text("#passport-name", "王芳", 30).await?;
        member.wait_for("#passport-qr svg", 10).await?;
        let png = member.shot("04-member-live-qr").await?;
        assert_eq!(decode_qr(&png)?.len(), 1);
        Ok::<_, anyhow::Error>(png)
    }
    .await;
    member.close().await;
    let screenshot = dir.path().join("screenshot.png");
    std::fs::write(&screenshot, shot?)?;

    let staff_dir = dir.path().join("staff");
    let staff = App::launch(&staff_dir, &server.url, 4494).await?;
    let result = async {
        staff.sign_in("S20001", "demo1234").await?;
        staff.wait_text("#passport-name", "郑晓梅", 30).await?;
        staff.click("#tab-activities").await?;
        staff.click("#part-scanner").await?;
        staff.wait_for("#scanner-event", 15).await?;
        staff
            .wait_contains("#checkin-count", "已入场 0 人 · 名额 200", 10)
            .await?;
        assert_eq!(staff.text("#trust-age").await?, "验证数据刚刚更新");

        // choosing an event hands the focus back to the scan input, where a scan gun types
        let focused = || async {
            let id = staff
                .c
                .execute(
                    "return document.activeElement && document.activeElement.id",
                    vec![],
                )
                .await?;
            Ok::<_, anyhow::Error>(id)
        };
        let select = staff.wait_for("#scanner-event", 5).await?;
        select.clone().select_by_index(1).await?;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        assert_eq!(focused().await?, serde_json::json!("scan-input"));
        staff
            .wait_for("#scanner-event", 5)
            .await?
            .select_by_index(0)
            .await?;
        staff
            .wait_contains("#checkin-count", "已入场 0 人 · 名额 200", 10)
            .await?;
        assert_eq!(focused().await?, serde_json::json!("scan-input"));

        // the network is cut: the check happens on the scanner alone
        server.stop();
        staff.choose_file("#scan-file", &screenshot).await?;
        staff.wait_contains("#scan-result", "签到成功", 20).await?;
        assert!(staff.text("#scan-result-text").await?.contains("M10001"));
        // the name and union, large, to match the person standing there
        assert_eq!(staff.text("#scan-result-name").await?, "王芳");
        assert_eq!(
            staff.text("#scan-result-union").await?,
            "智云科技有限公司工会"
        );
        staff
            .wait_contains("#checkin-count", "已入场 1 人 · 名额 200", 10)
            .await?;
        staff.wait_contains("#checkin-log", "待同步", 10).await?;
        // what of this door is not with the server yet, said before staff leave it
        staff
            .wait_contains("#checkin-upload", "有 1 条待上传", 10)
            .await?;
        staff.shot("05-scanner-checked-in").await?;

        // the same screenshot again: already checked in, by this scanner
        staff.choose_file("#scan-file", &screenshot).await?;
        staff
            .wait_contains("#scan-result-text", "可直接放行", 20)
            .await?;
        assert!(staff.text("#scan-result-text").await?.contains("本机"));
        // shown as a repeat (amber), not as a failure
        staff
            .wait_text("#scan-result strong", "已签到过", 5)
            .await?;
        let class = result_class(&staff).await?;
        anyhow::ensure!(class.contains("repeat"), "{class}");
        assert_eq!(staff.text("#scan-result-name").await?, "王芳");
        assert_eq!(
            staff.text("#scan-result-union").await?,
            "智云科技有限公司工会"
        );
        staff.shot("05b-scanner-repeat").await?;

        // the camera's path: a grey frame (one byte per pixel) crosses as the raw IPC body,
        // its request in a header; the same code is a repeat here too
        let grey = image::load_from_memory(&std::fs::read(&screenshot)?)?.to_luma8();
        let event_id: i64 = staff
            .c
            .execute(
                "return document.getElementById('scanner-event').value",
                vec![],
            )
            .await?
            .as_str()
            .context("no event chosen")?
            .parse()?;
        let req = unionpass_core::ipc::ScanFrame {
            event_id,
            width: grey.width() as usize,
            height: grey.height() as usize,
        };
        let invoke = |body: &str| {
            format!(
                "const [b64, req, done] = arguments;
                 const bin = atob(b64);
                 const bytes = new Uint8Array(bin.length);
                 for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
                 window.__TAURI__.core.invoke('scan_frame', {body},
                     {{ headers: {{ '{}': req }} }})
                   .then(r => done({{ answer: r }}), e => done({{ refused: e }}));",
                unionpass_core::ipc::RAW_REQ_HEADER
            )
        };
        let args = vec![
            serde_json::json!(base64::engine::general_purpose::STANDARD.encode(grey.as_raw())),
            serde_json::json!(serde_json::to_string(&req)?),
        ];
        let framed = staff
            .c
            .execute_async(&invoke("bytes"), args.clone())
            .await?;
        let answer = &framed["answer"];
        assert_eq!(answer["member_no"], "M10001", "{framed}");
        assert_eq!(answer["ok"], false, "{framed}");
        assert_eq!(answer["code"], "already_checked_in", "{framed}");
        // the same request as JSON is not taken
        let json = staff
            .c
            .execute_async(&invoke("{ req: { ...JSON.parse(req), luma: b64 } }"), args)
            .await?;
        assert_eq!(json["refused"]["code"], "bad_request", "{json}");

        // 90 s later the screenshot is stale
        tokio::time::sleep(std::time::Duration::from_secs(90)).await;
        staff.choose_file("#scan-file", &screenshot).await?;
        staff
            .wait_contains("#scan-result-text", "二维码已过时", 20)
            .await?;
        staff.shot("06-scanner-stale-screenshot").await?;
        staff
            .wait_contains("#checkin-count", "已入场 1 人 · 名额 200", 5)
            .await?;

        // back online, but the server has ended this door's session meanwhile (the staff
        // member signed out everywhere from a lost phone): the scanner forgets the staff member
        // and keeps the check-in made offline for their next sign-in here, and says so
        server.restart()?;
        end_sessions_and_sync(&server, &token_of(&staff_dir)?, &staff).await?;
        // one note says both why and what is kept, for whom; not a second one saying the data
        // was cleared
        let note = staff
            .wait_contains("#held-changes", "本机还有 1 项更改没有上传", 5)
            .await?;
        anyhow::ensure!(
            note.starts_with("你的登录已结束")
                && note.contains("（签到 1 条）")
                && note.contains("用 S20001 重新登录"),
            "the held changes' note: {note}"
        );
        staff.wait_gone("#signed-out", 1).await?;
        staff.shot("06a-held-changes-zh-1024").await?;
        // the possible causes are one tap away, folded under the note
        causes_folded(&staff, "#held-changes").await?;
        staff.click("#session-ended-why summary").await?;
        let why = staff.wait_for("#session-ended-why", 5).await?;
        anyhow::ensure!(why.prop("open").await?.as_deref() == Some("true"));
        staff
            .wait_contains("#session-ended-why", "修改了密码", 5)
            .await?;
        staff.shot("06a-held-changes-why-zh-1024").await?;
        staff.click("#session-ended-why summary").await?;
        staff.click("#lang-toggle").await?;
        staff
            .wait_contains(
                "#held-changes",
                "1 check-in made on this device has not been uploaded yet",
                5,
            )
            .await?;
        resize(&staff, 360).await?;
        staff.shot("06a-held-changes-en-360").await?;
        staff.click("#lang-toggle").await?;
        staff.wait_contains("#held-changes", "本机还有", 5).await?;
        resize(&staff, 1024).await?;
        // the same staff member signs in again, their number already filled in: the check-in
        // goes up, and is still this door's
        let filled = staff
            .c
            .execute("return document.getElementById('member-no').value", vec![])
            .await?;
        assert_eq!(filled, serde_json::json!("S20001"));
        staff
            .wait_for("#password", 5)
            .await?
            .send_keys("demo1234")
            .await?;
        staff.click("#login-submit").await?;
        staff.wait_text("#passport-name", "郑晓梅", 30).await?;
        staff.click("#tab-activities").await?;
        staff.click("#part-scanner").await?;
        staff.wait_contains("#checkin-log", "已上传", 30).await?;
        staff
            .wait_contains("#checkin-upload", "1 条签到已全部上传", 10)
            .await?;
        let token = token_of(&staff_dir)?;
        let bundle: unionpass_core::checkin::ScannerBundle = reqwest::Client::new()
            .get(format!("{}/v1/scanner", server.url))
            .bearer_auth(&token)
            .send()
            .await?
            .json()
            .await?;
        assert_eq!(bundle.checkins.len(), 1);
        assert_eq!(bundle.checkins[0].member_no, "M10001");
        // named by the session that uploaded it
        assert_eq!(bundle.checkins[0].staff.as_deref(), Some("郑晓梅"));

        // the scanner in English, at desktop size and on a 360 px phone
        staff.click("#lang-toggle").await?;
        staff.wait_text("#lang-toggle", "简体中文", 5).await?;
        staff
            .wait_contains(
                "#checkin-upload",
                "The 1 check-in made here has been uploaded",
                5,
            )
            .await?;
        // the stale screenshot once more: refused, and why, in English
        staff.choose_file("#scan-file", &screenshot).await?;
        staff
            .wait_contains("#scan-result strong", "Check-in refused", 20)
            .await?;
        staff
            .wait_contains("#scan-result-text", "The code is out of date", 5)
            .await?;
        staff.shot("06b-scanner-en").await?;
        staff.c.set_window_size(360, 740).await?;
        staff.shot("06c-scanner-en-360").await?;
        staff.click("#lang-toggle").await?;
        staff.wait_text("#lang-toggle", "English", 5).await?;
        staff.shot("06d-scanner-zh-360").await?;

        // the session ended again, with nothing held this time: a two-line note that the data
        // was cleared and to sign in again, its possible causes folded under it
        resize(&staff, 1024).await?;
        end_sessions_and_sync(&server, &token, &staff).await?;
        let note = staff
            .wait_contains("#signed-out", "你的登录已结束", 5)
            .await?;
        anyhow::ensure!(
            note.starts_with("你的登录已结束，本机的会员数据已清除，请重新登录。"),
            "the signed-out note: {note}"
        );
        staff.wait_gone("#held-changes", 1).await?;
        causes_folded(&staff, "#signed-out").await?;
        staff.shot("06e-signed-out-zh-1024").await?;
        resize(&staff, 360).await?;
        staff.shot("06e-signed-out-zh-360").await?;
        staff.click("#lang-toggle").await?;
        staff
            .wait_contains("#signed-out", "Your session has ended", 5)
            .await?;
        staff.click("#session-ended-why summary").await?;
        let why = staff.wait_for("#session-ended-why", 5).await?;
        anyhow::ensure!(why.prop("open").await?.as_deref() == Some("true"));
        staff
            .wait_contains("#session-ended-why", "Possible causes", 5)
            .await?;
        staff.shot("06e-signed-out-why-en-360").await?;
        resize(&staff, 1024).await?;
        staff.shot("06e-signed-out-why-en-1024").await?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    staff.close().await;
    result
}

#[tokio::test]
async fn a_grabbed_coupon_shows_in_the_wallet_and_is_used_offline() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut server = Server::start(dir.path())?;
    let now = chrono_now();
    let campaign_id = server.create_campaign(
        "工会午餐券",
        "Union lunch voucher",
        "meal",
        15,
        10,
        now - chrono::Duration::minutes(1),
        now + chrono::Duration::hours(1),
        &[
            "--terms-zh",
            "限工作日午餐使用",
            "--terms-en",
            "Weekday lunches only",
            "--valid-days",
            "2",
        ],
    )?;
    let data = dir.path().join("device");
    let app = App::launch(&data, &server.url, 4504).await?;
    let result = async {
        app.sign_in("M10005", "demo1234").await?;
        app.wait_text("#passport-name", "陈静", 30).await?;
        // grab with this device's session over HTTP (the button itself is tested in the reminder story)
        let token = token_of(&data)?;
        let answer: serde_json::Value = reqwest::Client::new()
            .post(format!("{}/v1/campaigns/{}/grab", server.url, campaign_id))
            .bearer_auth(&token)
            .json(&serde_json::json!({ "key": uuid::Uuid::new_v4() }))
            .send()
            .await?
            .json()
            .await?;
        assert_eq!(answer["result"], "granted", "{answer}");
        let code = answer["coupon"]["code"].as_str().unwrap().to_string();

        app.click("#sync-now").await?;
        app.click("#tab-wallet").await?;
        app.wait_contains("#wallet-list", "工会午餐券", 20).await?;
        app.wait_contains("#wallet-expiring", "工会午餐券", 5)
            .await?;
        app.wait_contains("#wallet-count", "共 1 张", 5).await?;
        // "expiring soon" names it and how long it has left; the coupon itself is shown once,
        // in the list
        app.wait_contains("#wallet-expiring .expiring-left", "还剩", 5)
            .await?;
        let rows = app
            .c
            .find_all(fantoccini::Locator::Css(".coupon-row"))
            .await?
            .len();
        anyhow::ensure!(rows == 1, "the coupon is shown {rows} times");
        // the row says how long it is left, in days, not as a date range
        app.wait_contains("#wallet-list .coupon-when", "还剩", 5)
            .await?;
        // every category chip counts what the other filters let through
        app.wait_text("#cat-meal .chip-count", "1", 5).await?;
        app.wait_text("#cat-taxi .chip-count", "0", 5).await?;
        app.shot("07-wallet").await?;

        // filtering keeps the filters where they are (nothing moves under the cursor), and an
        // empty result offers a way out
        let top = |css: &'static str| {
            let app = &app;
            async move {
                let v = app
                    .c
                    .execute(
                        &format!(
                            "return document.querySelector('{css}').getBoundingClientRect().top"
                        ),
                        vec![],
                    )
                    .await?;
                v.as_f64().context("a position")
            }
        };
        let before = top("#cat-meal").await?;
        app.click("#cat-meal").await?;
        app.wait_contains("#wallet-list", "工会午餐券", 10).await?;
        let after = top("#cat-meal").await?;
        anyhow::ensure!(
            (before - after).abs() < 1.0,
            "the chips moved from {before} to {after}"
        );
        app.wait_contains("#wallet-expiring", "工会午餐券", 5)
            .await?;
        app.click("#cat-taxi").await?;
        app.wait_contains("#wallet-empty", "清除筛选", 10).await?;
        anyhow::ensure!(
            (top("#cat-meal").await? - before).abs() < 1.0,
            "the chips moved"
        );
        app.click("#wallet-clear").await?;
        app.wait_contains("#wallet-list", "工会午餐券", 10).await?;
        app.wait_contains("#wallet-count", "共 1 张", 5).await?;
        // a tap on its line under "expiring soon" opens it
        app.click("#wallet-expiring .expiring-item").await?;
        app.wait_text("#coupon-code", &code, 10).await?;
        let png = app.shot("08-coupon-detail").await?;
        assert_eq!(
            decode_qr(&png)?,
            vec![code.clone()],
            "the usage QR carries the code"
        );

        // the code can be copied (or is selected for copying by hand where the clipboard is shut)
        app.click("#coupon-copy").await?;
        let copied = app.wait_contains("#coupon-copy", "复制", 5).await?;
        anyhow::ensure!(copied == "已复制" || copied.contains("已选中"), "{copied}");

        // at the merchant with no network: used at once, synced later. Marking is irreversible:
        // the confirmation says so, and both its buttons are in view
        server.stop();
        app.click("#coupon-use").await?;
        app.wait_contains("#coupon-confirm", "无法撤销", 5).await?;
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        let in_view = app
            .c
            .execute(
                "const b = document.getElementById('coupon-use-cancel').getBoundingClientRect();
                 const y = document.getElementById('coupon-use-confirm').getBoundingClientRect();
                 return b.bottom <= window.innerHeight && y.bottom <= window.innerHeight && b.top >= 0",
                vec![],
            )
            .await?;
        anyhow::ensure!(in_view == serde_json::json!(true), "the confirmation's buttons are not both in view");
        app.shot("08b-coupon-confirm").await?;
        app.click("#coupon-use-confirm").await?;
        app.wait_text("#coupon-status", "已使用（待同步）", 10)
            .await?;
        // signing out now would clear the use from the device before it was uploaded: the
        // confirmation says so, with the way to upload it first, and its button says "anyway"
        app.click("#tab-me").await?;
        app.click("#logout").await?;
        app.wait_contains("#logout-waiting", "1 项更改没有上传到工会服务器（用券 1 次）", 5)
            .await?;
        app.wait_text("#logout-sync", "立即同步", 5).await?;
        app.wait_text("#logout-confirm", "仍然退出", 5).await?;
        app.center("#logout-confirm").await?;
        app.shot("08d-logout-waiting").await?;
        app.click("#logout-cancel").await?;
        app.click("#tab-wallet").await?;
        app.click("#wallet-list .coupon-row .coupon").await?;
        app.wait_text("#coupon-status", "已使用（待同步）", 10)
            .await?;
        // back online: the page itself drops "待同步" once the server has it
        server.restart()?;
        app.click("#sync-now").await?;
        app.wait_text("#coupon-status", "已使用", 30).await?;
        // when it was used is said once
        let page = app.text("main").await?;
        assert_eq!(page.matches("使用于").count(), 1, "{page}");
        // with its day, as a stamp on a coupon kept for weeks reads ("使用于 04:34" did not say
        // which day); "昨天" only when midnight in Shanghai fell between the use and now
        let page = page.replace('\u{a0}', " ");
        anyhow::ensure!(
            page.contains("使用于 今天 ") || page.contains("使用于 昨天 "),
            "the used stamp says its day: {page}"
        );
        // used, it no longer looks usable: its value greyed, its code not offered to copy
        spent_look(&app).await?;
        // the coupon page in both languages, at desktop size and on a phone
        for (lang, w) in [("zh", 360), ("en", 360), ("en", 1024)] {
            if lang == "en" && w == 360 {
                app.click("#lang-toggle").await?;
                app.wait_text("#lang-toggle", "简体中文", 5).await?;
                app.wait_text("#coupon-status", "Used", 10).await?;
            }
            resize(&app, w).await?;
            app.shot(&format!("08c-{lang}-{w}-coupon")).await?;
        }
        app.click("#lang-toggle").await?;
        app.wait_text("#lang-toggle", "English", 5).await?;
        app.click("#coupon-back").await?;
        app.click("#status-used").await?;
        app.wait_contains("#wallet-list", "已使用", 20).await?;
        for _ in 0..100 {
            if !app.text("#wallet-list").await?.contains("待同步") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            app.click("#status-used").await?;
        }
        assert!(!app.text("#wallet-list").await?.contains("待同步"));
        // a change made offline again (the language, which the server keeps for the member):
        // signing out offers to upload it first; uploaded, it warns of nothing, and clears the
        // device
        server.stop();
        app.click("#tab-me").await?;
        app.click("#lang-en").await?;
        app.wait_text("#lang-toggle", "简体中文", 5).await?;
        app.click("#lang-zh-CN").await?;
        app.wait_text("#lang-toggle", "English", 5).await?;
        app.click("#logout").await?;
        app.wait_contains("#logout-waiting", "项更改没有上传到工会服务器（语言设置）", 10)
            .await?;
        server.restart()?;
        app.click("#logout-sync").await?;
        app.wait_gone("#logout-waiting", 30).await?;
        app.wait_text("#logout-confirm", "退出登录", 5).await?;
        app.click("#logout-confirm").await?;
        app.wait_for("#member-no", 20).await?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    app.close().await;
    result
}

/// The union withdraws a coupon while the phone is offline; the member marks it used at the
/// merchant anyway. Back online, the server refuses the use: the app does not quietly turn the
/// coupon back, it says which change was refused and why, counts it in the status bar until read,
/// and shows the coupon as withdrawn.
#[tokio::test]
async fn an_offline_coupon_use_the_server_refuses_is_shown_until_read() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut server = Server::start(dir.path())?;
    let now = chrono_now();
    let campaign_id = server.create_campaign(
        "家政保洁券",
        "Home cleaning coupon",
        "cleaning",
        30,
        10,
        now - chrono::Duration::minutes(1),
        now + chrono::Duration::hours(1),
        &["--valid-days", "5"],
    )?;
    let data = dir.path().join("device");
    let app = App::launch(&data, &server.url, 4590).await?;
    let result = async {
        app.sign_in("M10006", "demo1234").await?;
        app.wait_for("#passport-name", 30).await?;
        let token = token_of(&data)?;
        let answer: serde_json::Value = reqwest::Client::new()
            .post(format!("{}/v1/campaigns/{}/grab", server.url, campaign_id))
            .bearer_auth(&token)
            .json(&serde_json::json!({ "key": uuid::Uuid::new_v4() }))
            .send()
            .await?
            .json()
            .await?;
        assert_eq!(answer["result"], "granted", "{answer}");
        let code = answer["coupon"]["code"]
            .as_str()
            .context("a code")?
            .to_string();
        app.click("#sync-now").await?;
        app.click("#tab-wallet").await?;
        app.wait_contains("#wallet-list", "家政保洁券", 20).await?;
        app.click(".coupon-row .coupon").await?;
        app.wait_text("#coupon-code", &code, 10).await?;

        // no network; meanwhile the union withdraws the coupon (by its usage code)
        server.stop();
        let voided: serde_json::Value = serde_json::from_str(
            server
                .admin(&["campaign", "void-coupon", "--code", &code])?
                .trim(),
        )?;
        assert_eq!(voided["coupon_id"], answer["coupon"]["id"], "{voided}");
        app.click("#coupon-use").await?;
        app.click("#coupon-use-confirm").await?;
        app.wait_text("#coupon-status", "已使用（待同步）", 10)
            .await?;
        anyhow::ensure!(
            app.c
                .find_all(fantoccini::Locator::Css("#rejected-badge"))
                .await?
                .is_empty(),
            "nothing was refused yet"
        );

        // back online: refused, and said so
        server.restart()?;
        app.click("#sync-now").await?;
        app.wait_text("#rejected-badge", "1 项未成功", 30).await?;
        let notice = app
            .wait_contains("#rejections", "「家政保洁券」没有记为已使用", 10)
            .await?;
        anyhow::ensure!(
            notice.contains("工会已作废这张券") && notice.contains("联系所在工会"),
            "the notice says why and what to do: {notice:?}"
        );
        // the coupon is not quietly usable again: it is withdrawn, with no way to mark it
        app.wait_text("#coupon-status", "已作废", 10).await?;
        app.wait_contains("#coupon-detail .coupon-when", "工会已于", 5)
            .await?;
        anyhow::ensure!(
            app.c
                .find_all(fantoccini::Locator::Css("#coupon-use"))
                .await?
                .is_empty(),
            "a withdrawn coupon offers no 'mark as used'"
        );
        spent_look(&app).await?;
        unionpass_e2e::tour::judge(&app, "rejection-zh-1024", "#rejections").await?;
        app.shot("09-rejection-zh").await?;
        // the status bar's count leads to the notice
        app.c
            .execute(
                "document.getElementById('content').scrollTop = 10000",
                vec![],
            )
            .await?;
        app.click("#rejected-badge").await?;
        let focused = app
            .c
            .execute(
                "return document.activeElement && document.activeElement.id",
                vec![],
            )
            .await?;
        assert_eq!(focused, serde_json::json!("rejections"));
        // on the wallet already, the notice offers no button to go there; from another tab it
        // does, and it leads there
        anyhow::ensure!(
            app.c
                .find_all(fantoccini::Locator::Css("#rejections-go-wallet"))
                .await?
                .is_empty(),
            "a button to the wallet, on the wallet"
        );
        app.click("#tab-passport").await?;
        app.click("#rejections-go-wallet").await?;
        app.wait_contains("#wallet-list", "家政保洁券", 10).await?;
        app.c
            .execute(
                "[...document.querySelectorAll('#wallet-list .coupon-row .coupon')]
                   .find(e => e.textContent.includes('家政保洁券')).click()",
                vec![],
            )
            .await?;
        app.wait_text("#coupon-code", &code, 10).await?;
        app.wait_gone("#rejections-go-wallet", 5).await?;
        // in English, on a phone
        app.click("#lang-toggle").await?;
        app.wait_text("#rejected-badge", "1 failed", 10).await?;
        app.wait_contains(
            "#rejections",
            "\"Home cleaning coupon\" was not marked as used",
            10,
        )
        .await?;
        unionpass_e2e::tour::size(&app, 360, 740).await?;
        unionpass_e2e::tour::judge(&app, "rejection-en-360", "#rejections").await?;
        app.shot("09-rejection-en-360").await?;
        app.click("#lang-toggle").await?;
        app.wait_text("#rejected-badge", "1 项未成功", 10).await?;
        // read: the notice and the count go, and stay gone after the next sync
        app.click("#rejections-seen").await?;
        let mut gone = false;
        for _ in 0..100 {
            if app
                .c
                .find_all(fantoccini::Locator::Css("#rejections, #rejected-badge"))
                .await?
                .is_empty()
            {
                gone = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        anyhow::ensure!(gone, "the notice and the count stayed after 知道了");
        app.click("#sync-now").await?;
        // the button is disabled while the sync runs: wait for its end, not a fixed time
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let mut done = false;
        for _ in 0..100 {
            if app
                .c
                .find(fantoccini::Locator::Css("#sync-now"))
                .await?
                .is_enabled()
                .await?
            {
                done = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        anyhow::ensure!(done, "the sync did not end");
        let status = app
            .c
            .execute(
                "return document.getElementById('sync-status').textContent",
                vec![],
            )
            .await?;
        let status = status.as_str().unwrap_or_default().to_string();
        anyhow::ensure!(
            status.contains("已同步"),
            "the sync after 知道了 did not work: {status:?}"
        );
        anyhow::ensure!(
            app.c
                .find_all(fantoccini::Locator::Css("#rejections, #rejected-badge"))
                .await?
                .is_empty(),
            "a read refusal came back"
        );
        app.wait_text("#coupon-status", "已作废", 5).await?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    app.close().await;
    result
}

/// Each grab card says what is true for this member before any tap: sold out, already held (and
/// the button goes to the wallet), for another union, cancelled (gone), face value with fen,
/// countdowns with units.
#[tokio::test]
async fn grab_cards_tell_the_truth_before_the_tap() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path())?;
    let now = chrono_now();
    let (open_at, end) = (
        now - chrono::Duration::minutes(1),
        now + chrono::Duration::hours(2),
    );
    let one = server.create_campaign(
        "电影票",
        "Cinema ticket",
        "cinema",
        30,
        1,
        open_at,
        end,
        &[],
    )?;
    let mine = server.create_campaign(
        "洗衣券",
        "Laundry coupon",
        "laundry",
        10,
        5,
        open_at,
        end,
        &[],
    )?;
    let other = server.create_campaign(
        "外单位专享券",
        "Other union's coupon",
        "meal",
        20,
        5,
        open_at,
        end,
        // the demo's second union (星河), not this member's
        &["--unions", "2"],
    )?;
    let later = now + chrono::Duration::minutes(30);
    let (release, ends) = (
        later.to_rfc3339(),
        (later + chrono::Duration::hours(1)).to_rfc3339(),
    );
    let created: serde_json::Value = serde_json::from_str(
        server
            .admin(&[
                "campaign",
                "create",
                "--title-zh",
                "早餐券",
                "--title-en",
                "Breakfast coupon",
                "--category",
                "meal",
                "--face-value",
                "12.50",
                "--stock",
                "50",
                "--release-at",
                &release,
                "--end-at",
                &ends,
            ])?
            .trim(),
    )?;
    let cheap = created["id"].as_i64().context("campaign id")?;
    let gone = server.create_campaign(
        "已取消券",
        "Withdrawn coupon",
        "taxi",
        8,
        50,
        later,
        later + chrono::Duration::hours(1),
        &[],
    )?;
    server.admin(&["campaign", "cancel", "--id", &gone.to_string()])?;
    let taxi =
        server.create_campaign("打车券", "Taxi coupon", "taxi", 10, 10, open_at, end, &[])?;

    // another member takes the only cinema ticket; this member already holds a laundry coupon
    let tokens = dir.path().join("tokens");
    server.admin(&[
        "bench-seed",
        "--members",
        "0",
        "--also",
        "M10006",
        "--also",
        "M10005",
        "--tokens-out",
        tokens.to_str().context("utf-8 path")?,
    ])?;
    let tokens = std::fs::read_to_string(&tokens)?;
    let tokens: Vec<&str> = tokens.lines().collect();
    let http = reqwest::Client::new();
    for (token, id) in [(tokens[0], one), (tokens[1], mine)] {
        let answer: serde_json::Value = http
            .post(format!("{}/v1/campaigns/{id}/grab", server.url))
            .bearer_auth(token)
            .json(&serde_json::json!({ "key": uuid::Uuid::new_v4() }))
            .send()
            .await?
            .json()
            .await?;
        anyhow::ensure!(answer["result"] == "granted", "{answer}");
    }

    let data = dir.path().join("device");
    let app = App::launch(&data, &server.url, 4518).await?;
    let result = async {
        app.sign_in("M10005", "demo1234").await?;
        app.wait_text("#passport-name", "陈静", 30).await?;
        app.click("#tab-activities").await?;
        app.click("#part-grab").await?;
        app.wait_for(&format!("#campaign-{one}"), 20).await?;
        let button = |id: i64| format!("#grab-{id}");
        app.wait_text(&button(one), "已抢光", 10).await?;
        assert!(!app.wait_for(&button(one), 1).await?.is_enabled().await?);
        app.wait_text(&button(other), "仅限星河互联网络技术有限公司工会", 5)
            .await?;
        assert!(!app.wait_for(&button(other), 1).await?.is_enabled().await?);
        app.wait_text(&button(mine), "已领取 · 查看卡券", 5).await?;
        app.wait_text(&format!("#face-{cheap}"), "面值 12.50 元", 5)
            .await?;
        app.wait_contains(&format!("#countdown-{cheap}"), "分", 5)
            .await?;
        // the release day said in words, in Shanghai's day
        let shanghai = chrono::FixedOffset::east_opt(8 * 3600).context("offset")?;
        let day = if later.with_timezone(&shanghai).date_naive()
            == now.with_timezone(&shanghai).date_naive()
        {
            "今天"
        } else {
            "明天"
        };
        app.wait_contains(&format!("#campaign-times-{cheap}"), day, 5)
            .await?;
        anyhow::ensure!(
            app.c
                .find(fantoccini::Locator::Css(&format!("#campaign-{gone}")))
                .await
                .is_err(),
            "a cancelled campaign is still in the calendar"
        );
        app.shot("20-grab-card-states").await?;

        // the server hangs: the tap is answered within 5 s, and the same request, sent again by
        // itself under its key, is granted once the server wakes up, once
        server.pause()?;
        let tapped = std::time::Instant::now();
        app.click(&button(taxi)).await?;
        let said = app
            .wait_contains(&format!("#grab-answer-{taxi}"), "服务器没有及时回应", 6)
            .await;
        let waited = tapped.elapsed();
        server.resume()?;
        said?;
        anyhow::ensure!(
            waited < std::time::Duration::from_secs(5),
            "the hanging server was told after {waited:?}"
        );
        app.wait_contains(&format!("#grab-answer-{taxi}"), "抢到了", 40)
            .await?;
        app.wait_text(&button(taxi), "已领取 · 查看卡券", 10)
            .await?;

        // the held card's button opens the wallet
        app.click(&button(mine)).await?;
        app.wait_contains("#wallet-list", "洗衣券", 10).await?;
        app.wait_text("#cat-taxi .chip-count", "1", 10).await?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    app.close().await;
    result
}

/// Open the grab calendar and set "1 min before" on campaign `id`.
async fn set_reminder(app: &App, id: i64) -> anyhow::Result<()> {
    app.click("#tab-activities").await?;
    app.click("#part-grab").await?;
    app.wait_contains(&format!("#campaign-{id}"), "共享单车骑行券", 20)
        .await?;
    app.wait_for(&format!("#remind-{id}-1"), 5)
        .await?
        .click()
        .await?;
    app.wait_contains(
        &format!("#reminder-state-{id}"),
        "已设提醒：开抢前 1 分钟",
        5,
    )
    .await
    .map(|_| ())
}

/// Reminders, end to end: a member sets "1 min before" for a campaign releasing in 2 min and
/// closes the window; the notification arrives within 1 s of its time (recorded on the test's
/// session bus); clicking it opens the campaign, whose grab button opens at release and grants
/// once, even after a double tap. A second member's app, stopped before its reminder came due,
/// shows the reminder as missed at its next start.
#[tokio::test]
async fn a_reminder_fires_with_the_window_closed_and_the_grab_at_release_grants_once(
) -> anyhow::Result<()> {
    use std::time::Duration;
    use unionpass_e2e::desktop::{self, Notifications};
    let mut notes = Notifications::start().await?;
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path())?;
    // two launches, two sign-ins and a window close before the reminder is due: 57 s for them (a
    // CI run's setup went past the 27 s that 90 s left)
    let release = chrono_now() + chrono::Duration::seconds(120);
    let due = release - chrono::Duration::minutes(1);
    let id = server.create_campaign(
        "共享单车骑行券",
        "Bike ride coupon",
        "bike",
        5,
        3,
        release,
        release + chrono::Duration::hours(1),
        &[],
    )?;
    let member_dir = dir.path().join("member");
    let away_dir = dir.path().join("away");
    let app = App::launch(&member_dir, &server.url, 4514).await?;
    let away = match App::launch(&away_dir, &server.url, 4516).await {
        Ok(a) => a,
        Err(e) => {
            app.close().await;
            return Err(e);
        }
    };
    // the second member sets the same reminder, then their app stops before it is due
    let away_result = async {
        away.sign_in("M10005", "demo1234").await?;
        away.wait_text("#passport-name", "陈静", 30).await?;
        set_reminder(&away, id).await
    }
    .await;
    away.close().await;
    if let Err(e) = away_result {
        app.close().await;
        return Err(e);
    }

    let result = async {
        app.sign_in("M10006", "demo1234").await?;
        app.wait_text("#passport-name", "杨磊", 30).await?;
        set_reminder(&app, id).await?;
        app.wait_contains(&format!("#countdown-{id}"), "距开抢", 5)
            .await?;
        app.wait_contains("#clock-offset", "倒计时已按服务器时间校准", 15)
            .await?;
        let button = app.wait_for(&format!("#grab-{id}"), 5).await?;
        anyhow::ensure!(
            closed(&button).await?,
            "the grab button was open before release"
        );
        // a tap before the release is answered, not dropped: nothing is sent
        button.click().await?;
        let answer = app
            .wait_contains(&format!("#grab-answer-{id}"), "还没开抢", 5)
            .await?;
        // the countdown beside it says how long; the answer does not say it again
        anyhow::ensure!(
            !answer.chars().any(|ch| ch.is_ascii_digit()),
            "the early tap's answer repeats the countdown: {answer}"
        );
        // two minutes before the release, "5 minutes before" is past: not offered
        app.wait_gone(&format!("#remind-{id}-5"), 5).await?;
        app.shot("10-grab-calendar-countdown").await?;
        anyhow::ensure!(
            app.c
                .find(fantoccini::Locator::Css("#notices"))
                .await
                .is_err(),
            "a reminder just set raised a notice"
        );
        anyhow::ensure!(
            chrono_now() < due - chrono::Duration::seconds(3),
            "set up too slowly: {} s before the reminder",
            (due - chrono_now()).num_seconds()
        );

        // the title bar's close hides the window; the app keeps running in the tray
        let pid = app.pid().context("the app's process")?;
        // frames keep coming, as for WebDriver's own close (`App::keep_painting`)
        app.keep_painting().await?;
        desktop::close_until_hidden(pid, "reminder").await?;
        anyhow::ensure!(app.pid() == Some(pid), "closing the window ended the app");

        // the reminder arrives on time, with sound, and only once
        let note = notes
            .next(Duration::from_secs(75))
            .await
            .context("no notification arrived")?;
        let off = (note.received - due).num_milliseconds();
        anyhow::ensure!(off.abs() <= 1000, "notification {off} ms from its time");
        anyhow::ensure!(
            note.summary == "共享单车骑行券 即将开抢"
                && note.body.contains("还有 1 分钟")
                && note.sound.as_deref() == Some("alarm-clock-elapsed"),
            "the notification: {note:?}"
        );
        anyhow::ensure!(
            note.actions.iter().any(|a| a == "default"),
            "not clickable: {note:?}"
        );
        anyhow::ensure!(
            desktop::visible_windows(pid)? == 0,
            "the window showed with the notification"
        );

        // a click on it shows the window on that campaign
        notes.click(note.id).await?;
        desktop::wait_windows(pid, true, 10, "the click did not open the window").await?;
        app.wait_for(&format!("#campaign-{id}.focus"), 10).await?;
        app.wait_contains(&format!("#reminder-state-{id}"), "已提醒", 5)
            .await?;

        // the button opens at release (by the server's clock) and one tap gets the coupon
        let button = app.wait_for(&format!("#grab-{id}"), 5).await?;
        let deadline = std::time::Instant::now() + Duration::from_secs(70);
        while closed(&button).await? || !button.is_enabled().await? {
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "the button never opened"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let opened_late = chrono_now() - release;
        anyhow::ensure!(
            opened_late < chrono::Duration::milliseconds(1500),
            "opened {opened_late} after release"
        );
        let tapped = std::time::Instant::now();
        button.click().await?;
        let _ = button.click().await; // a double tap
        app.wait_contains(&format!("#grab-answer-{id}"), "抢到了", 15)
            .await?;
        // the button now goes to the wallet: a tap on it within a second of the grab's is the
        // rest of the double tap and leaves the answer in view (it used to open the wallet). The
        // rule's edges are `view::rest_of_double_tap`'s test; here, the card rebuilt by the
        // answer still knows the grab tap.
        app.wait_text(&format!("#grab-{id}"), "已领取 · 查看卡券", 10)
            .await?;
        app.c
            .execute(
                "document.getElementById(arguments[0]).click()",
                vec![serde_json::json!(format!("grab-{id}"))],
            )
            .await?;
        // (the test's clock started before the grab tap: under a second here is under one there)
        if tapped.elapsed() < Duration::from_millis(1000) {
            tokio::time::sleep(Duration::from_millis(300)).await;
            app.wait_contains(&format!("#grab-answer-{id}"), "抢到了", 1)
                .await
                .context("a double tap's second tap left the answer")?;
        } else {
            eprintln!(
                "the grab was answered {:?} after the tap: the double tap's rest was not checked",
                tapped.elapsed()
            );
        }
        // the stock left comes with the sync that follows the grab
        app.wait_contains(&format!("#stock-{id}"), "剩余 2 / 3 张", 20)
            .await?;
        app.shot("11-grab-granted").await?;
        // the answer stands on the button's line (it was under it), and the reminder's mark is
        // gone from a card that has its answer
        let layout = app
            .c
            .execute(
                "const a = document.getElementById('grab-answer-' + arguments[0]).getBoundingClientRect();
                 const b = document.getElementById('grab-' + arguments[0]).getBoundingClientRect();
                 const mid = a.top + a.height / 2;
                 return [mid >= b.top && mid <= b.bottom,
                         document.getElementById('campaign-' + arguments[0]).classList.contains('focus')]",
                vec![serde_json::json!(id)],
            )
            .await?;
        anyhow::ensure!(
            layout == serde_json::json!([true, false]),
            "the granted card: [answer on the button's line, still marked]: {layout}"
        );
        let stats: serde_json::Value = serde_json::from_str(
            server
                .admin(&["campaign", "stats", "--id", &id.to_string()])?
                .trim(),
        )?;
        anyhow::ensure!(
            (stats["granted"].as_i64(), stats["double_grants"].as_i64()) == (Some(1), Some(0)),
            "granted once: {stats}"
        );
        app.click("#tab-wallet").await?;
        app.wait_contains("#wallet-list", "共享单车骑行券", 10)
            .await?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    app.close().await;
    result?;

    // the second member's app starts again after the reminder's time: it says it was missed,
    // and fires nothing
    while chrono_now() < due + chrono::Duration::seconds(65) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let away = App::launch(&away_dir, &server.url, 4516).await?;
    let result = async {
        away.wait_contains("#notices", "错过的提醒", 30).await?;
        away.wait_contains("#notices", "共享单车骑行券", 1).await?;
        away.shot("12-missed-reminder-notice").await?;
        away.click("#notices-dismiss").await?;
        let gone_by = std::time::Instant::now() + Duration::from_secs(5);
        while away
            .c
            .find(fantoccini::Locator::Css("#notices"))
            .await
            .is_ok()
        {
            anyhow::ensure!(std::time::Instant::now() < gone_by, "the notice stayed");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if let Some(extra) = notes.next(Duration::from_secs(1)).await {
            anyhow::bail!("a missed reminder fired late: {extra:?}");
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    away.close().await;
    result
}

/// Points, end to end: the balance, what expires and the chart from the store; a phone top-up
/// made offline is queued, then held and settled once the server is back; an electricity bill
/// the provider refuses is refunded, with its reason, and the points are back.
#[tokio::test]
async fn a_top_up_made_offline_settles_and_a_refused_bill_is_refunded() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut server = Server::start(dir.path())?;
    // a campaign an hour ahead, so the narrow calendar below has a card with its reminder row
    let release = chrono_now() + chrono::Duration::hours(1);
    server.create_campaign(
        "家政保洁服务券",
        "Home cleaning coupon",
        "cleaning",
        50,
        200,
        release,
        release + chrono::Duration::hours(2),
        &[],
    )?;
    // besides the demo points (4,000 of them lapse in 30 days), 500 granted today that lapse in
    // 10 days: accrued last, they are the first to be spent
    server.admin(&[
        "points", "grant", "--member", "M10007", "--points", "500", "--days", "10",
    ])?;
    // and 10,000 lapsing in a year, for a redemption large enough to ask for the password
    server.admin(&[
        "points", "grant", "--member", "M10007", "--points", "10000", "--days", "365",
    ])?;
    let data = dir.path().join("device");
    let app = App::launch(&data, &server.url, 4524).await?;
    let expiring_first = |text: String, n: &str| {
        anyhow::ensure!(text.starts_with(&format!("{n} 积分有效期至")), "{text}");
        Ok(())
    };
    let result = async {
        app.sign_in("M10007", "demo1234").await?;
        app.wait_text("#passport-name", "赵敏", 30).await?;
        app.click("#tab-points").await?;
        app.wait_text("#points-available", "20,000", 15).await?;
        expiring_first(
            app.wait_contains("#points-expiring-soon", "积分", 5)
                .await?,
            "500",
        )?;
        app.wait_for("#points-chart rect.bar-earned", 5).await?;

        // expiry lines name the day; the chart's values can be read without hovering
        app.wait_contains("#points-expiry", "积分有效期至 20", 5)
            .await?;
        app.click("#points-chart-values summary").await?;
        // this month: the two grants, and the demo's 2,500 of five days ago if that was this month
        let shanghai = chrono::FixedOffset::east_opt(8 * 3600).context("offset")?;
        let month = |t: chrono::DateTime<chrono::Utc>| {
            t.with_timezone(&shanghai).format("%Y-%m").to_string()
        };
        let now = chrono_now();
        let earned = if month(now - chrono::Duration::days(5)) == month(now) {
            "13,000"
        } else {
            "10,500"
        };
        app.wait_contains(
            "#points-chart-values",
            &format!("{}：获得 {earned}", month(now)),
            5,
        )
        .await?;

        // a number is judged once it is complete, not while it is typed
        let mobile = app.wait_for("#redeem-mobile", 5).await?;
        mobile.send_keys("1380013800").await?;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert_eq!(
            app.text("#redeem-field-error").await?,
            "",
            "judged at the 10th digit"
        );
        mobile.send_keys("01").await?;
        app.wait_contains("#redeem-field-error", "11 位手机号", 5)
            .await?;
        mobile.send_keys("\u{E003}").await?; // backspace: 11 digits again
        app.wait_text("#redeem-field-error", "", 5).await?;
        // the amounts say their price; the month's cap is in plain view
        app.wait_contains("#amount-3000", "3,000 积分", 5).await?;
        app.wait_contains("#redeem-cap", "本月还可兑 100 元", 5)
            .await?;

        // offline: confirmed first, then queued, its points set aside
        server.stop();
        app.click("#amount-3000").await?;
        app.wait_text("#redeem-price", "需 3,000 积分", 5).await?;
        app.click("#redeem-submit").await?;
        app.wait_contains("#redeem-confirm-what", "话费 30 元 · 13800138000", 5)
            .await?;
        app.wait_contains(
            "#redeem-confirm-cost",
            "将使用 3,000 积分，兑换后可用 17,000 积分",
            5,
        )
        .await?;
        // as every confirmation in the app: back first, the final step last
        let order = app
            .c
            .execute(
                "return document.getElementById('redeem-back')
                    .compareDocumentPosition(document.getElementById('redeem-go'))
                    & Node.DOCUMENT_POSITION_FOLLOWING",
                vec![],
            )
            .await?;
        anyhow::ensure!(
            order.as_i64() == Some(4),
            "the final step comes last: {order}"
        );
        app.shot("12b-points-confirm").await?;
        // the other amounts stay as they were: greyed says out of reach, and only that; taking
        // another one goes back to the form, with its own price
        assert!(app.wait_for("#amount-2000", 5).await?.is_enabled().await?);
        app.click("#amount-2000").await?;
        app.wait_gone("#redeem-confirm", 5).await?;
        app.wait_text("#redeem-price", "需 2,000 积分", 5).await?;
        app.click("#amount-3000").await?;
        app.wait_text("#redeem-price", "需 3,000 积分", 5).await?;
        app.click("#redeem-submit").await?;
        app.wait_contains("#redeem-confirm-what", "话费 30 元 · 13800138000", 5)
            .await?;
        app.click("#redeem-go").await?;
        app.wait_contains("#redeem-done", "联网后会自动提交", 10)
            .await?;
        app.wait_contains("#redemptions", "已排队，等待联网提交", 10)
            .await?;
        app.wait_contains("#redemptions", "3,000 积分", 5).await?;
        app.wait_text("#points-available", "17,000", 5).await?;
        app.wait_contains("#points-detail", "等待联网提交 3,000", 5)
            .await?;
        app.c
            .execute(
                "document.getElementById('redemptions').scrollIntoView()",
                vec![],
            )
            .await?;
        app.shot("13-points-queued-offline").await?;

        // back online: sent, held, fulfilled by the provider, settled; the note follows it
        server.restart()?;
        app.wait_contains("#redemptions", "已完成", 60).await?;
        app.wait_contains("#redeem-done", "兑换成功：话费 30 元", 10)
            .await?;
        // nothing set aside any more: the total, equal to the big number, is not repeated
        app.wait_text("#points-detail", "", 10).await?;
        app.wait_text("#points-available", "17,000", 5).await?;
        // under each bar its month, as a month ("12月"): this month's is the last
        let this_month = {
            use chrono::Datelike;
            (chrono_now() + chrono::Duration::hours(8)).month()
        };
        app.wait_text(
            "#points-chart g:last-of-type .chart-label",
            &format!("{this_month}月"),
            5,
        )
        .await?;
        // the chart gives what went under its bar (this month, the last), as what came over its own
        app.wait_contains(
            "#points-chart g:last-of-type .chart-value-spent",
            "-3,000",
            10,
        )
        .await?;
        // under its bar, not over it, and inside the chart
        let place = app
            .c
            .execute(
                "const g = document.querySelector('#points-chart g:last-of-type');
                 const label = g.querySelector('.chart-value-spent').getBoundingClientRect();
                 const bar = g.querySelector('rect.bar-spent').getBoundingClientRect();
                 const chart = document.getElementById('points-chart').getBoundingClientRect();
                 return [label.top - bar.bottom, chart.bottom - label.bottom, bar.height]",
                vec![],
            )
            .await?;
        let place: Vec<f64> = serde_json::from_value(place)?;
        anyhow::ensure!(
            place[2] > 0.0 && place[0] >= -1.0 && place[1] >= -1.0,
            "the spent label against its bar and the chart (gap under the bar, room left, bar height): {place:?}"
        );
        // 30 of the month's 100 yuan used: the 100 yuan amount is out of reach, and says so
        app.wait_contains("#redeem-cap", "本月还可兑 70 元", 10)
            .await?;
        assert!(!app.wait_for("#amount-10000", 5).await?.is_enabled().await?);
        // the top-up took the 500 lapsing in 10 days first, then 2,500 of the 4,000: what lapses
        // next is the 1,500 left of those (oldest-first would have left the 500 to lapse)
        expiring_first(
            app.wait_contains("#points-expiring-soon", "1,500", 10)
                .await?,
            "1,500",
        )?;

        // a 10,000-point electricity bill asks for the password; Enter submits; a wrong one is
        // said as such; the provider refuses the bill: refunded, in the app's words, points back
        server
            .provider_mode("fail", Some("ERR_4041 户号不存在 / account not found"))
            .await?;
        app.click("#redeem-kind-power").await?;
        let account = app.wait_for("#redeem-account", 5).await?;
        account.send_keys("0123456789").await?;
        app.click("#amount-10000").await?;
        app.wait_text("#redeem-price", "需 10,000 积分", 5).await?;
        account.send_keys("\u{E007}").await?; // Enter: on to the confirmation
        let password = app.wait_for("#redeem-password", 5).await?;
        password.send_keys("wrong-password\u{E007}").await?;
        app.wait_contains("#redeem-error", "密码不正确，请重新输入你的登录密码", 15)
            .await?;
        let error = app.text("#redeem-error").await?;
        anyhow::ensure!(!error.contains("会员号"), "{error}");
        app.wait_for("#redeem-password", 5)
            .await?
            .send_keys("demo1234\u{E007}")
            .await?;
        app.wait_contains(
            "#redeem-done",
            "兑换未成功，10,000 积分已退回：电力公司没有完成缴费",
            60,
        )
        .await?;
        let page = app.text("#redeem").await? + &app.text("#redemptions").await?;
        anyhow::ensure!(
            !page.contains("ERR_4041") && !page.contains("account not found"),
            "the provider's own words reached the screen: {page}"
        );
        app.wait_text("#points-available", "17,000", 10).await?;
        app.c
            .execute(
                "document.getElementById('redemptions').scrollIntoView()",
                vec![],
            )
            .await?;
        app.shot("14-points-refunded").await?;

        Ok::<_, anyhow::Error>(())
    }
    .await;
    app.close().await;
    result
}

/// Activities, end to end: the list arrives by sync with seats "as of" when they were counted;
/// the sign-up button opens at the opening instant by the server's clock (a tap before it is
/// answered, not dropped); one tap signs up with a companion; a full activity shows its
/// waitlist; a cancel, confirmed first, gives the seats to the waitlist's head, who hears it by
/// sync; and the app's member, waiting in another activity, is moved up when a place frees and
/// is told by a native notification. Screens in both languages at desktop size and 360 px.
#[tokio::test]
async fn a_member_signs_up_at_the_opening_and_a_cancel_promotes_the_waitlist() -> anyhow::Result<()>
{
    use unionpass_e2e::desktop::Notifications;
    let mut notes = Notifications::start().await?;
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path())?;
    let now = chrono_now();
    // far enough ahead that the sign-in and the steps before it are done on a slow machine
    let opens = now + chrono::Duration::seconds(90);
    let starts = now + chrono::Duration::days(2);
    let created: serde_json::Value = serde_json::from_str(
        server
            .admin(&[
                "activity",
                "create",
                "--title-zh",
                "亲子手工日",
                "--title-en",
                "Family craft day",
                "--description-zh",
                "带孩子一起做花灯",
                "--description-en",
                "Make lanterns with the children",
                "--category",
                "family",
                "--place",
                "职工之家 3 楼",
                "--starts-at",
                &starts.to_rfc3339(),
                "--ends-at",
                &(starts + chrono::Duration::hours(3)).to_rfc3339(),
                "--seats",
                "2",
                "--waitlist",
                "2",
                "--companions",
                "2",
                "--signup-opens-at",
                &opens.to_rfc3339(),
            ])?
            .trim(),
    )?;
    let id = created["id"].as_i64().context("activity id")?;
    server.admin(&[
        "activity",
        "create",
        "--title-zh",
        "健步走",
        "--title-en",
        "Staff walk",
        "--category",
        "health",
        "--place",
        "滨江绿道",
        "--starts-at",
        &(starts + chrono::Duration::days(1)).to_rfc3339(),
        "--ends-at",
        &(starts + chrono::Duration::days(1) + chrono::Duration::hours(2)).to_rfc3339(),
    ])?;
    // one place, one waitlist place, already taken by another member
    let small: serde_json::Value = serde_json::from_str(
        server
            .admin(&[
                "activity",
                "create",
                "--title-zh",
                "插花课",
                "--title-en",
                "Flower arranging",
                "--category",
                "culture",
                "--place",
                "工人文化宫",
                "--starts-at",
                &(starts + chrono::Duration::hours(5)).to_rfc3339(),
                "--ends-at",
                &(starts + chrono::Duration::hours(7)).to_rfc3339(),
                "--seats",
                "1",
                "--waitlist",
                "1",
            ])?
            .trim(),
    )?;
    let small = small["id"].as_i64().context("activity id")?;
    let tokens = dir.path().join("tokens");
    server.admin(&[
        "bench-seed",
        "--members",
        "0",
        "--also",
        "M10002",
        "--also",
        "S20001",
        "--tokens-out",
        tokens.to_str().context("utf-8 path")?,
    ])?;
    let tokens = std::fs::read_to_string(&tokens)?;
    let mut lines = tokens.lines();
    let other = lines.next().context("a token")?.trim().to_string();
    let staff = lines.next().context("the staff token")?.trim().to_string();
    // a walk-in going on now: the member comes, staff check them in, then they say how it was
    let walk: serde_json::Value = serde_json::from_str(
        server
            .admin(&[
                "activity",
                "create",
                "--title-zh",
                "午间健步走",
                "--title-en",
                "Lunchtime walk",
                "--category",
                "health",
                "--place",
                "园区中心湖",
                "--place-en",
                "Central Lake, Science Park",
                "--starts-at",
                &(now - chrono::Duration::minutes(30)).to_rfc3339(),
                "--ends-at",
                &(now + chrono::Duration::hours(2)).to_rfc3339(),
            ])?
            .trim(),
    )?;
    let walk = walk["id"].as_i64().context("activity id")?;
    let poll: serde_json::Value = serde_json::from_str(
        server
            .admin(&[
                "poll",
                "create",
                "--question-zh",
                "下个月想参加什么活动？",
                "--question-en",
                "What should we organise next month?",
                "--option",
                "羽毛球|Badminton",
                "--option",
                "读书会|Book club",
                "--option",
                "亲子游|Family trip",
                "--closes-at",
                &(now + chrono::Duration::days(7)).to_rfc3339(),
            ])?
            .trim(),
    )?;
    let poll = poll["id"].as_i64().context("poll id")?;
    let http = reqwest::Client::new();
    let taken: serde_json::Value = http
        .post(format!("{}/v1/activities/{small}/signup", server.url))
        .bearer_auth(&other)
        .json(&serde_json::json!({ "key": uuid::Uuid::new_v4() }))
        .send()
        .await?
        .json()
        .await?;
    anyhow::ensure!(taken["signup"]["state"] == "confirmed", "{taken}");

    let data = dir.path().join("device");
    let app = App::launch(&data, &server.url, 4530).await?;
    let result = async {
        app.sign_in("M10001", "demo1234").await?;
        app.wait_text("#passport-name", "王芳", 30).await?;
        app.click("#tab-activities").await?;
        app.wait_contains(&format!("#activity-{id}"), "亲子手工日", 20)
            .await?;
        app.wait_contains("#activities", "无需报名", 5).await?;
        // the date filter, in Shanghai's days: today has the lunchtime walk and not the craft
        // day two days on; the next seven days have both
        app.click("#act-date-today").await?;
        app.wait_gone(&format!("#activity-{id}"), 5).await?;
        app.wait_for(&format!("#activity-{walk}"), 5).await?;
        app.click("#act-date-week").await?;
        app.wait_for(&format!("#activity-{id}"), 5).await?;
        app.wait_for(&format!("#activity-{walk}"), 5).await?;
        app.click("#act-date-any").await?;

        // the needs poll, folded to its question above the activities: where the member
        // stands, and a tap opens it; results only after voting; one vote, then the counts
        app.wait_contains(&format!("#poll-state-{poll}"), "你还没有投票", 10)
            .await?;
        app.wait_gone(&format!("#poll-{poll}-1"), 5).await?;
        app.click(&format!("#poll-open-{poll}")).await?;
        app.wait_contains(&format!("#poll-{poll}"), "投票后可以看到大家的选择", 10)
            .await?;
        app.click(&format!("#poll-{poll}-1")).await?;
        app.click(&format!("#poll-vote-{poll}")).await?;
        app.wait_contains(&format!("#poll-{poll}-1"), "1 票", 20)
            .await?;
        // still open after the answer re-drew it, and the head says the vote is in
        app.wait_contains(&format!("#poll-state-{poll}"), "你已投票", 5)
            .await?;
        app.wait_contains(&format!("#poll-{poll}-1"), "你的选择", 5)
            .await?;
        app.wait_contains(&format!("#poll-{poll}-0"), "0 票", 5)
            .await?;
        app.shot("39b-activities-poll").await?;
        app.wait_contains(&format!("#activity-seats-{id}"), "剩余 2 / 2 个名额", 10)
            .await?;
        app.wait_contains(&format!("#activity-window-{id}"), "距开始报名", 5)
            .await?;
        let button = app.wait_for(&format!("#signup-{id}"), 5).await?;
        assert!(closed(&button).await?, "closed before the opening");
        // a tap before the opening is answered; nothing is sent
        button.click().await?;
        let answer = app
            .wait_contains(&format!("#activity-answer-{id}"), "还没开始报名", 5)
            .await?;
        anyhow::ensure!(
            !answer.chars().any(|ch| ch.is_ascii_digit()),
            "the early tap's answer repeats the countdown: {answer}"
        );
        app.shot("39-activities-list").await?;
        // three people for two places: the app says so before anything is sent, and the note
        // goes when the party fits again
        app.click(&format!("#companions-more-{id}")).await?;
        app.click(&format!("#companions-more-{id}")).await?;
        app.wait_text(&format!("#companions-{id}"), "2", 5).await?;
        app.wait_contains(
            &format!("#activity-party-{id}"),
            "不够 3 人同去：这样报名会排入候补",
            5,
        )
        .await?;
        app.click(&format!("#companions-less-{id}")).await?;
        app.wait_text(&format!("#companions-{id}"), "1", 5).await?;
        app.wait_gone(&format!("#activity-party-{id}"), 5).await?;
        app.shot("40-activities-before-opening").await?;

        // the button opens at the opening (by the server's clock); one tap signs up
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(100);
        anyhow::ensure!(
            chrono_now() < opens,
            "the steps before the opening took too long"
        );
        while closed(&button).await? || !button.is_enabled().await? {
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "the button never opened"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let late = chrono_now() - opens;
        anyhow::ensure!(
            late < chrono::Duration::milliseconds(1500)
                && late > chrono::Duration::milliseconds(-300),
            "opened {late} from the opening"
        );
        // where the card stands on the screen as the member taps, and after the answer: the
        // card is rebuilt with its new state, and must not move under the member's thumb
        let card_top = || {
            app.c.execute(
                "return document.getElementById(arguments[0]).getBoundingClientRect().top",
                vec![serde_json::json!(format!("activity-{id}"))],
            )
        };
        app.center(&format!("#activity-{id}")).await?;
        let before = card_top().await?.as_f64().context("the card's place")?;
        button.click().await?;
        app.wait_contains(
            &format!("#activity-status-{id}"),
            "已报名 · 携带家属 1 人",
            10,
        )
        .await?;
        let after = card_top().await?.as_f64().context("the card's place")?;
        anyhow::ensure!(
            (after - before).abs() < 40.0,
            "the card moved from {before} to {after} px after the sign-up"
        );

        // both seats are taken: the other member waits, first in line
        let answer: serde_json::Value = reqwest::Client::new()
            .post(format!("{}/v1/activities/{id}/signup", server.url))
            .bearer_auth(&other)
            .json(&serde_json::json!({ "key": uuid::Uuid::new_v4(), "companions": 0 }))
            .send()
            .await?
            .json()
            .await?;
        anyhow::ensure!(
            answer["signup"]["state"] == "waitlisted" && answer["signup"]["position"] == 1,
            "{answer}"
        );
        // opening the list again counts the seats again: the app's own count of the waitlist's
        // room (as its sign-up's answer left it) takes the other member's place off
        let waitlist_left = || async {
            let v = app
                .c
                .execute_async(
                    "const done = arguments[arguments.length - 1];
                     window.__TAURI__.core.invoke('activities', { req: {} })
                       .then(v => done(v.cards.find(c => c.activity.id === arguments[0]).waitlist_left),
                             e => done('refused: ' + JSON.stringify(e)));",
                    vec![serde_json::json!(id)],
                )
                .await?;
            v.as_i64().with_context(|| format!("the waitlist's room: {v}"))
        };
        let room = waitlist_left().await?;
        anyhow::ensure!(room > 0, "the waitlist's room before: {room}");
        app.click("#part-grab").await?;
        app.click("#part-signups").await?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while waitlist_left().await? != room - 1 {
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "the list opened again did not count the waitlist again (room {room})"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        // the member's own places are kept, so the waitlist's room is not theirs to worry about
        let seats = app
            .wait_contains(&format!("#activity-seats-{id}"), "名额已满", 10)
            .await?;
        anyhow::ensure!(!seats.contains("候补"), "a seat holder's count: {seats}");
        // the card itself, wherever switching parts left the page
        app.center(&format!("#activity-{id}")).await?;
        app.shot("41-activities-signed-up").await?;

        // cancelling asks first, then gives the seats to the waitlist's head
        app.click(&format!("#cancel-signup-{id}")).await?;
        app.wait_contains(&format!("#cancel-confirm-{id}"), "让给候补", 5)
            .await?;
        app.click(&format!("#cancel-signup-yes-{id}")).await?;
        app.wait_contains(&format!("#activity-status-{id}"), "已取消报名", 10)
            .await?;
        let synced: serde_json::Value = reqwest::Client::new()
            .get(format!("{}/v1/sync?cursor=0", server.url))
            .bearer_auth(&other)
            .send()
            .await?
            .json()
            .await?;
        let states: Vec<&str> = synced["changes"]
            .as_array()
            .context("changes")?
            .iter()
            .filter(|c| c["kind"] == "signup" && c["data"]["activity_id"] == id)
            .filter_map(|c| c["data"]["state"].as_str())
            .collect();
        assert_eq!(states, vec!["waitlisted", "promoted"]);

        // the app's member waits for the one-place activity; the other member lets it go: the
        // next sync moves the app's member up, and a native notification says so
        // full as last counted: the button says where the sign-up goes
        app.wait_contains(&format!("#signup-{small}"), "报名候补", 5)
            .await?;
        app.click(&format!("#signup-{small}")).await?;
        app.wait_contains(&format!("#activity-status-{small}"), "候补第 1 位", 10)
            .await?;
        let freed = http
            .post(format!("{}/v1/activities/{small}/cancel", server.url))
            .bearer_auth(&other)
            .send()
            .await?;
        anyhow::ensure!(freed.status() == 200, "{}", freed.status());
        app.click("#sync-now").await?;
        let note = notes
            .next(std::time::Duration::from_secs(30))
            .await
            .context("no notification of the promotion")?;
        assert_eq!(note.summary, "候补成功：插花课");
        assert!(note.body.contains("工人文化宫"), "{}", note.body);
        app.wait_contains(
            &format!("#activity-status-{small}"),
            "已由候补转为正式报名",
            10,
        )
        .await?;
        // the union moves it an hour later: the member with the place is told natively at the
        // next sync, and the card says it was moved, from when
        server.admin(&[
            "activity",
            "move",
            "--id",
            &small.to_string(),
            "--starts-at",
            &(starts + chrono::Duration::hours(6)).to_rfc3339(),
            "--ends-at",
            &(starts + chrono::Duration::hours(8)).to_rfc3339(),
        ])?;
        app.click("#sync-now").await?;
        let note = notes
            .next(std::time::Duration::from_secs(30))
            .await
            .context("no notification of the move")?;
        assert_eq!(note.summary, "活动改期：插花课");
        assert!(note.body.contains("工人文化宫"), "{}", note.body);
        let moved = app
            .wait_contains(&format!("#activity-change-{small}"), "时间有调整", 10)
            .await?;
        // the old time in the card's own words ("… 至 …"), not in another style
        anyhow::ensure!(moved.contains(" 至 "), "the moved note: {moved}");
        app.shot("42b-activity-moved").await?;

        // the walk-in, before the member goes, goes into the member's calendar as an .ics file
        app.click(&format!("#ics-{walk}")).await?;
        let note_css = format!("#ics-note-{walk}");
        let note = app.wait_contains(&note_css, ".ics", 10).await?;
        // the note names the file and its folder; the whole path is on hover
        let path = app
            .c
            .find(fantoccini::Locator::Css(&note_css))
            .await?
            .attr("title")
            .await?
            .context("the file's path on hover")?;
        let file = std::path::Path::new(&path);
        let name = file.file_name().context("a file")?.to_string_lossy();
        // this window's HOME has no Downloads folder: the home folder, by that name
        anyhow::ensure!(
            note.contains(&format!("已保存到主文件夹：{name}")) && !note.contains(&path),
            "the note names the file and its folder, not the whole path: {note}"
        );
        let ics = std::fs::read_to_string(&path).with_context(|| path.clone())?;
        anyhow::ensure!(
            ics.contains("SUMMARY:午间健步走")
                && ics.contains(&format!("UID:activity-{walk}@unionpass")),
            "{ics}"
        );
        let _ = std::fs::remove_file(&path);
        // at the walk-in: staff scan the member's live code; the member's app learns they came
        // and offers feedback, which is kept and sent
        app.click("#tab-passport").await?;
        app.wait_for("#passport-qr svg", 10).await?;
        let code = decode_qr(&app.shot("43-passport-at-the-walk").await?)?
            .into_iter()
            .next()
            .context("the live code")?;
        let scanned_at = chrono_now();
        let pushed: serde_json::Value = http
            .post(format!("{}/v1/sync/push", server.url))
            .bearer_auth(&staff)
            .json(&serde_json::json!({ "mutations": [{
                "id": uuid::Uuid::new_v4(),
                "created_at": scanned_at,
                "op": "check_in",
                "args": {
                    "event_id": walk, "member_id": 1, "member_no": "M10001",
                    "scanned_at": scanned_at, "scanner": uuid::Uuid::new_v4(),
                    "nonce": uuid::Uuid::new_v4(), "proof": code,
                },
            }]}))
            .send()
            .await?
            .json()
            .await?;
        anyhow::ensure!(
            pushed["results"][0]["outcome"]["status"] == "applied",
            "{pushed}"
        );
        app.click("#tab-activities").await?;
        app.click("#sync-now").await?;
        // the app learns they came, but the walk is still going on: feedback opens at its end
        app.wait_contains(&format!("#feedback-later-{walk}"), "活动结束后", 20)
            .await?;
        // there already: no calendar entry to add
        app.wait_gone(&format!("#ics-{walk}"), 5).await?;
        app.center(&format!("#feedback-later-{walk}")).await?;
        app.shot("44a-activity-feedback-later").await?;
        // the union ends it early: at the next sync the member can say how it was
        server.admin(&[
            "activity",
            "move",
            "--id",
            &walk.to_string(),
            "--starts-at",
            &(now - chrono::Duration::minutes(30)).to_rfc3339(),
            "--ends-at",
            &chrono_now().to_rfc3339(),
        ])?;
        app.click("#sync-now").await?;
        app.wait_for(&format!("#feedback-{walk}"), 20).await?;
        app.wait_gone(&format!("#feedback-later-{walk}"), 5).await?;
        app.click(&format!("#star-{walk}-4")).await?;
        app.wait_for(&format!("#feedback-comment-{walk}"), 5)
            .await?
            .send_keys("路线很舒服")
            .await?;
        app.click(&format!("#feedback-send-{walk}")).await?;
        app.wait_contains(&format!("#feedback-note-{walk}"), "你的评价：4 星", 30)
            .await?;
        app.shot("44-activity-feedback").await?;

        // 我的活动: the flower class ahead (moved up from the waitlist), the walk attended; the
        // craft day they cancelled is not theirs
        app.click("#act-mine").await?;
        app.wait_contains("#mine-upcoming", "插花课", 10).await?;
        app.wait_contains("#mine-attended", "午间健步走", 5).await?;
        app.wait_contains(&format!("#activity-status-{walk}"), "已签到参加", 5)
            .await?;
        // in green, as a place is, though the walk took no sign-up
        app.wait_for(&format!("#activity-status-{walk}.ok"), 1)
            .await?;
        app.wait_gone(&format!("#activity-{id}"), 1).await?;
        app.c
            .execute(
                "document.getElementById('mine-upcoming-heading').scrollIntoView({block: 'start'})",
                vec![],
            )
            .await?;
        app.shot("44b-my-activities").await?;
        app.click("#act-mine").await?;

        // the screen in both languages, at desktop size and on a phone
        for (lang, w) in [("zh", 1024), ("zh", 360), ("en", 360), ("en", 1024)] {
            if lang == "en" && w == 360 {
                app.click("#lang-toggle").await?;
                app.wait_text("#lang-toggle", "简体中文", 5).await?;
            }
            resize(&app, w).await?;
            let widths = app
                .c
                .execute(
                    "return [document.documentElement.scrollWidth, window.innerWidth]",
                    vec![],
                )
                .await?;
            anyhow::ensure!(
                widths[0].as_i64() <= widths[1].as_i64(),
                "{lang} {w}: {widths}"
            );
            app.shot(&format!("42-{lang}-{w}-activities")).await?;
        }
        app.wait_contains(&format!("#activity-{id}"), "Family craft day", 5)
            .await?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    app.close().await;
    result
}

/// At the door of an activity that takes sign-ups, with the network gone: the staff app lets in
/// a member who signed up with two companions (and shows "+2"), refuses one who did not sign up
/// and one still on the waitlist, each with its reason, and uploads the check-in when back online.
#[tokio::test]
async fn at_the_door_the_offline_scanner_admits_sign_ups_with_companions_and_refuses_the_rest(
) -> anyhow::Result<()> {
    use unionpass_e2e::Phone;
    let dir = tempfile::tempdir()?;
    let mut server = Server::start(dir.path())?;
    let now = chrono_now();
    let starts = now + chrono::Duration::hours(1);
    // it ends the next morning in Shanghai, at whatever hour the test runs: "to tomorrow 02:00",
    // the longest line of when and where, on two rows above the answer whose fit at 360 px the
    // test measures
    let ends = {
        let zone = chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8");
        let day = starts.with_timezone(&zone).date_naive() + chrono::Duration::days(1);
        day.and_hms_opt(2, 0, 0)
            .and_then(|t| t.and_local_timezone(zone).single())
            .expect("Shanghai's next morning")
            .with_timezone(&chrono::Utc)
    };
    let created: serde_json::Value = serde_json::from_str(
        server
            .admin(&[
                "activity",
                "create",
                "--title-zh",
                "亲子运动会",
                "--title-en",
                "Family sports day",
                "--category",
                "family",
                "--place",
                "区体育中心",
                "--place-en",
                "District Sports Centre",
                "--starts-at",
                &starts.to_rfc3339(),
                "--ends-at",
                &ends.to_rfc3339(),
                "--seats",
                "3",
                "--waitlist",
                "2",
                "--companions",
                "2",
            ])?
            .trim(),
    )?;
    let id = created["id"].as_i64().context("activity id")?;
    let http = reqwest::Client::new();
    let sign_up = |phone: &Phone, companions: i64| {
        let req = http
            .post(format!("{}/v1/activities/{id}/signup", server.url))
            .bearer_auth(&phone.token)
            .json(&serde_json::json!({ "key": uuid::Uuid::new_v4(), "companions": companions }));
        async move {
            let v: serde_json::Value = req.send().await?.error_for_status()?.json().await?;
            Ok::<_, anyhow::Error>(
                v["signup"]["state"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        }
    };
    // 王芳 (M10001) takes all three seats with two companions; M10003 waits; M10002 never signs up
    let wang = Phone::sign_in(&server.url, "M10001").await?;
    let waiting = Phone::sign_in(&server.url, "M10003").await?;
    let unsigned = Phone::sign_in(&server.url, "M10002").await?;
    assert_eq!(sign_up(&wang, 2).await?, "confirmed");
    assert_eq!(sign_up(&waiting, 0).await?, "waitlisted");

    let staff_dir = dir.path().join("staff");
    let staff = App::launch(&staff_dir, &server.url, 4540).await?;
    let result = async {
        staff.sign_in("S20001", "demo1234").await?;
        staff.wait_text("#passport-name", "郑晓梅", 30).await?;
        staff.click("#tab-activities").await?;
        staff.click("#part-scanner").await?;
        staff
            .wait_for("#scanner-event", 15)
            .await?
            .select_by_value(&id.to_string())
            .await?;
        staff.wait_contains("#checkin-count", "已入场 0 人 · 名额 3", 10).await?;
        staff
            .wait_contains("#checkin-log-empty", "还没有人签到", 5)
            .await?;

        // the network is cut: every answer below comes from the scanner's own copy
        server.stop();
        let staff = &staff;
        let scan = |code: String| async move {
            let input = staff.wait_for("#scan-input", 5).await?;
            // a scan gun types the text and Enter (WebDriver's U+E007)
            input.send_keys(&format!("{code}\u{E007}")).await?;
            Ok::<_, anyhow::Error>(())
        };
        scan(wang.code_at(chrono_now())).await?;
        staff.wait_contains("#scan-result", "签到成功", 20).await?;
        assert_eq!(staff.text("#scan-result-name").await?, "王芳");
        assert_eq!(staff.text("#scan-result-companions").await?, "+2 位家属");
        // the places are people: the member and both companions are in
        staff
            .wait_text("#checkin-count", "已入场 3 人 · 名额 3", 10)
            .await?;
        staff
            .wait_text("#checkin-count-detail", "含家属 2 人", 5)
            .await?;
        staff.wait_gone("#checkin-log-empty", 5).await?;
        staff.shot("45-door-signed-up-with-companions").await?;

        // refused, each with its reason, its stable code, shown as a failure; nobody counted
        for (phone, reason, code, shot) in [
            (
                &unsigned,
                "没有报名这个活动",
                "not_signed_up",
                "46-door-not-signed-up",
            ),
            (
                &waiting,
                "仍在候补",
                "still_waitlisted",
                "47-door-still-waitlisted",
            ),
        ] {
            scan(phone.code_at(chrono_now())).await?;
            let said = staff.wait_contains("#scan-result-text", reason, 20).await?;
            // the member number with its label, as on a pass
            anyhow::ensure!(said.starts_with("会员号 M1000"), "the refusal: {said}");
            assert_eq!(hidden_text(staff, "#scan-result-code").await?, code);
            let class = result_class(staff).await?;
            anyhow::ensure!(class.contains("fail"), "{code} shown as {class}");
            // offline: how old the list is, and what to do if the phone says otherwise
            let age = staff
                .wait_contains("#scan-result-list-age", "放行并记录", 5)
                .await?;
            // an old list: sync and scan again; one just updated does not send staff to sync
            // at once, it says the member has no place on it
            anyhow::ensure!(
                age.starts_with("报名名单")
                    && ((age.contains("更新于") && age.contains("请联网同步后再扫"))
                        || (age.contains("刚刚更新") && age.contains("名单上没有此会员的名额"))),
                "the list's age is said: {age}"
            );
            staff
                .wait_text("#checkin-count", "已入场 3 人 · 名额 3", 5)
                .await?;
            staff
                .wait_text("#checkin-count-detail", "含家属 2 人", 5)
                .await?;
            staff.shot(shot).await?;
        }

        // in English, at desktop size and on a 360 px phone
        staff.click("#lang-toggle").await?;
        staff.wait_text("#lang-toggle", "简体中文", 5).await?;
        staff
            .wait_contains("#scan-result-text", "still on the waitlist", 5)
            .await?;
        // the activity by its English title and place
        let option = hidden_text(staff, &format!("#scanner-event option[value='{id}']")).await?;
        anyhow::ensure!(
            option.starts_with("Family sports day · ")
                && option.ends_with(" · District Sports Centre"),
            "the event picker in English: {option}"
        );
        // and, under the picker, when and where in full (a phone's picker cuts its line)
        let place = staff
            .wait_contains("#scanner-event-where", "District Sports Centre", 5)
            .await?;
        anyhow::ensure!(
            place.contains(" to ") && place.ends_with(" · District Sports Centre"),
            "the chosen event's time and place: {place}"
        );
        staff.shot("47b-door-en-1024").await?;
        resize(staff, 360).await?;
        // the door's first answer on a phone (a tall kind: name, union, companions, why) shows
        // on the first screen, above the tab bar, with nothing scrolled: the part's heading and
        // the picker's label are for screen readers there, and the scan gun's hint, shown until
        // then, goes
        staff.click("#part-grab").await?;
        staff.click("#part-scanner").await?;
        staff.wait_for("#scan-input", 10).await?;
        let hint = staff
            .c
            .execute(
                "document.getElementById('content').scrollTop = 0;
                 return document.getElementById('scan-hint').getClientRects().length",
                vec![],
            )
            .await?;
        anyhow::ensure!(hint == serde_json::json!(1), "the hint before an answer: {hint}");
        scan(wang.code_at(chrono_now())).await?;
        staff
            .wait_contains("#scan-result", "Already checked in", 20)
            .await?;
        // when, as a sentence says it: "at 14:03" today; "yesterday 23:59" only when the first
        // scan (minutes ago, in this test) may have been before midnight in Shanghai
        let said = staff.text("#scan-result-text").await?;
        let shanghai = chrono_now() + chrono::Duration::hours(8);
        let surely_today = {
            use chrono::Timelike;
            shanghai.hour() > 0 || shanghai.minute() >= 20
        };
        anyhow::ensure!(
            said.contains("Already checked in at ")
                || (!surely_today && said.contains("Already checked in yesterday ")),
            "the repeat's time in English: {said}"
        );
        staff
            .wait_contains("#scan-result-companions", "+2", 5)
            .await?;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        // the camera (a phone's way to scan) first in the card, the answer right under it,
        // whole between the top bar and the tab bar; the scan gun's input under the answer
        let place = staff
            .c
            .execute(
                "const rows = document.createRange();
                 rows.selectNodeContents(document.getElementById('scanner-event-where'));
                 const box = id => document.getElementById(id).getBoundingClientRect();
                 return [document.getElementById('content').scrollTop,
                         box('scan-camera').bottom,
                         box('scan-result').top,
                         box('scan-result').bottom,
                         document.querySelector('.tabs').getBoundingClientRect().top,
                         document.getElementById('scan-hint').getClientRects().length,
                         rows.getClientRects().length,
                         box('scan-input').top,
                         box('content').top]",
                vec![],
            )
            .await?;
        let at = |i: usize| place[i].as_f64().unwrap_or(f64::NAN);
        anyhow::ensure!(
            at(0) < 1.0
                && at(8) <= at(1)
                && at(1) <= at(2)
                && at(3) <= at(4)
                && at(5) == 0.0
                && at(6) >= 2.0
                && at(7) >= at(3),
            "the first answer at 360 px, under a when-and-where line of two rows [scrolled, the \
             camera's bottom, the answer's top and bottom, the tab bar's top, hint boxes, the \
             line's rows, the input's top, the page's top]: {place}"
        );
        staff.shot("47c-door-en-360").await?;
        // the sync line is whole on the phone, on two lines if need be ("2 changes wa…" before)
        let cut = staff
            .c
            .execute(
                "const e = document.getElementById('sync-status');
                 return [e.textContent, e.scrollHeight > e.clientHeight + 1
                         || e.scrollWidth > e.clientWidth + 1]",
                vec![],
            )
            .await?;
        anyhow::ensure!(
            cut[0].as_str().is_some_and(|t| t.contains("waiting"))
                && cut[1] == serde_json::json!(false),
            "the sync line, with its changes waiting, is cut: {cut}"
        );
        staff.click("#lang-toggle").await?;
        staff.wait_text("#lang-toggle", "English", 5).await?;
        staff.shot("47d-door-zh-360").await?;
        // the sync line counts every change waiting (the language choice made offline too); the
        // door's lines add up to it: this door's one check-in, and the other change named
        // (its text read as a screen reader would: on a phone the line is clamped to two; a
        // retry in the background says "同步中…" for a moment)
        let mut header = String::new();
        for _ in 0..50 {
            header = hidden_text(staff, "#sync-status").await?;
            if header == "2 项更改待同步" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(header, "2 项更改待同步");
        staff
            .wait_contains("#checkin-upload", "本机在本场的签到有 1 条待上传", 5)
            .await?;
        staff
            .wait_text(
                "#checkin-upload-others",
                "本机另有 1 项其他更改待同步（语言设置），已计入顶部的数字。",
                5,
            )
            .await?;

        // staff let the waiting member in by hand over the list (as if the phone had shown a
        // place): counted and marked so at the door, judged by the server's list at the upload
        scan(waiting.code_at(chrono_now())).await?;
        staff
            .wait_contains("#scan-result-text", "仍在候补", 20)
            .await?;
        // the door is full: said before the tap, not only by the red count after it
        staff
            .wait_text(
                "#scan-let-in-full",
                "名额已满（已入场 3 人 · 名额 3）：放行后将超出名额。",
                5,
            )
            .await?;
        staff.center("#scan-let-in").await?;
        staff.shot("47d2-door-full-before-let-in-zh-360").await?;
        staff.click("#scan-let-in").await?;
        staff
            .wait_contains("#scan-result-by-hand", "已手动放行", 10)
            .await?;
        staff
            .wait_contains("#scan-result", "已手动放行（待核对）", 1)
            .await?;
        let class = result_class(staff).await?;
        anyhow::ensure!(class.contains("repeat"), "let in by hand shown as {class}");
        staff
            .wait_text("#checkin-count", "已入场 4 人 · 名额 3", 10)
            .await?;
        staff
            .wait_text(
                "#checkin-count-detail",
                "超出名额 1 人 · 含家属 2 人 · 手动放行待核对 1 人",
                5,
            )
            .await?;
        anyhow::ensure!(
            staff
                .c
                .execute(
                    "return document.getElementById('checkin-count').classList.contains('over')",
                    vec![],
                )
                .await?
                == serde_json::json!(true),
            "a count over the places is marked"
        );
        staff
            .wait_contains("#checkin-log .checkin-by-hand", "手动放行", 5)
            .await?;
        // on the phone the detail line breaks between its parts, never inside one ("手动 /
        // 放行"): each part's characters lie on one line
        let split = staff
            .c
            .execute(
                "const e = document.getElementById('checkin-count-detail');
                 const w = document.createTreeWalker(e, NodeFilter.SHOW_TEXT);
                 const lines = new Set(); const split = [];
                 for (let n = w.nextNode(); n; n = w.nextNode()) {
                   let at = 0;
                   for (const part of n.data.split(' · ')) {
                     const r = document.createRange();
                     r.setStart(n, at); r.setEnd(n, at + part.length);
                     const tops = new Set([...r.getClientRects()].map(x => Math.round(x.top)));
                     tops.forEach(t => lines.add(t));
                     if (tops.size > 1) split.push(part);
                     at += part.length + 3;
                   }
                 }
                 return [split, lines.size, e.getBoundingClientRect().width];",
                vec![],
            )
            .await?;
        anyhow::ensure!(
            split[0] == serde_json::json!([]),
            "the count's detail broken inside a part at 360 px: {split}"
        );
        // the row's marks (手动放行, 待同步) stay together on a phone: one did wrap alone
        let marks = staff
            .c
            .execute(
                "const b = [...document.querySelectorAll('#checkin-log li')[0]
                              .querySelectorAll('.checkin-marks .badge')];
                 return [b.length, new Set(b.map(x => Math.round(x.getBoundingClientRect().top))).size]",
                vec![],
            )
            .await?;
        anyhow::ensure!(
            marks == serde_json::json!([2, 1]),
            "the let-in row's marks [count, lines]: {marks}"
        );
        staff.shot("47e-door-let-in-by-hand-zh-360").await?;
        staff.click("#lang-toggle").await?;
        staff
            .wait_contains("#scan-result-by-hand", "Let in by hand", 5)
            .await?;
        resize(staff, 1024).await?;
        staff.shot("47f-door-let-in-by-hand-en-1024").await?;
        staff.click("#lang-toggle").await?;
        staff.wait_text("#lang-toggle", "English", 5).await?;

        // back online: the check-ins reach the server, which checks the sign-ups again: 王芳's
        // place holds; the waiting member has none, and the door's count is back to 3
        server.restart()?;
        staff.click("#sync-now").await?;
        staff.wait_contains("#checkin-log", "已上传", 30).await?;
        staff
            .wait_contains("#checkin-log .checkin-refused", "仍在候补", 30)
            .await?;
        staff
            .wait_text("#checkin-count", "已入场 3 人 · 名额 3", 10)
            .await?;
        staff
            .wait_text("#checkin-count-detail", "含家属 2 人", 5)
            .await?;
        let rows = server.admin(&["activity", "signups", "--id", &id.to_string(), "--csv"])?;
        let wang_row = rows
            .lines()
            .find(|l| l.contains("M10001"))
            .context("王芳's row")?;
        anyhow::ensure!(
            wang_row.contains(",2,") && wang_row.contains("true"),
            "{rows}"
        );
        Ok::<_, anyhow::Error>(())
    }
    .await;
    staff.close().await;
    result
}

/// One app per data directory: a second launch while the first is hidden in the tray shows the
/// first one's window and exits, leaving exactly one process.
#[tokio::test]
async fn a_second_launch_shows_the_running_app_and_exits() -> anyhow::Result<()> {
    use std::time::Duration;
    use unionpass_e2e::desktop;
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path())?;
    let data = dir.path().join("app");
    let app = App::launch(&data, &server.url, 4560).await?;
    let result = async {
        app.wait_for("#member-no", 30).await?;
        let pid = app.pid().context("the app's process")?;
        // the page can be ready before the window is on screen (a slow, loaded machine): a
        // person closes a window they can see, and a close handled before the window is first
        // shown would be undone by that showing
        desktop::wait_windows(pid, true, 15, "the window never showed").await?;
        // frames keep coming, as for WebDriver's own close (`App::keep_painting`)
        app.keep_painting().await?;
        desktop::close_until_hidden(pid, "second launch").await?;

        // the member opens the app again, as from the desktop's menu
        let mut second = std::process::Command::new(unionpass_e2e::app_bin())
            .env("UNIONPASS_DATA_DIR", &data)
            .env("UNIONPASS_SERVER", &server.url)
            .env("XDG_DATA_HOME", data.join("xdg"))
            .env("HOME", data.join("home"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        let exited_by = std::time::Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = second.try_wait()? {
                break status;
            }
            if std::time::Instant::now() > exited_by {
                let _ = second.kill();
                anyhow::bail!("the second launch kept running beside the first");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(status.success(), "the second launch ended with {status}");
        desktop::wait_windows(pid, true, 10, "the first app's window was not shown").await?;
        assert_eq!(
            desktop::app_pids(&data),
            vec![pid],
            "exactly one app process"
        );
        // and it still works: its window answers
        app.wait_for("#member-no", 5).await?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    app.close().await;
    result
}

/// Root's `apt-get`/`dpkg` (through `sudo -n` when not root), failing with its output.
fn as_root(args: &[&str]) -> anyhow::Result<String> {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    let mut c = if root {
        let mut c = std::process::Command::new(args[0]);
        c.args(&args[1..]);
        c
    } else {
        let mut c = std::process::Command::new("sudo");
        c.arg("-n").args(args);
        c
    };
    let out = c.env("DEBIAN_FRONTEND", "noninteractive").output()?;
    anyhow::ensure!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Files under the system's folders whose names mention the app (what a package could leave).
fn system_files_named_unionpass() -> Vec<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            let name = e.file_name().to_string_lossy().to_lowercase();
            if name.contains("unionpass") || name.contains("cn.unionpass") {
                out.push(path.clone());
            }
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&path, out);
            }
        }
    }
    let mut out = Vec::new();
    for dir in [
        "/usr/bin",
        "/usr/lib",
        "/usr/share",
        "/usr/local",
        "/etc",
        "/opt",
        "/var/lib/dpkg/info",
    ] {
        walk(std::path::Path::new(dir), &mut out);
    }
    out
}

/// Serve `bytes` over HTTP on loopback (as a union's download site would); answers the package's
/// URL and how many requests came.
async fn serve_package(
    bytes: Vec<u8>,
    fail_first: usize,
) -> anyhow::Result<(String, std::sync::Arc<std::sync::atomic::AtomicUsize>)> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!(
        "http://{}/UnionPass_99.0.0_amd64.deb",
        listener.local_addr()?
    );
    let hits = std::sync::Arc::new(AtomicUsize::new(0));
    let (counted, bytes) = (hits.clone(), std::sync::Arc::new(bytes));
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let (counted, bytes) = (counted.clone(), bytes.clone());
            tokio::spawn(async move {
                let (mut seen, mut buf) = (Vec::new(), [0u8; 4096]);
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                // the first `fail_first` requests: a server error instead of the package
                if counted.fetch_add(1, Ordering::SeqCst) < fail_first {
                    let _ = sock
                        .write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        .await;
                    let _ = sock.shutdown().await;
                    return;
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    bytes.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(&bytes).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    Ok((url, hits))
}

/// A minisign signature of `file` for version `version`, made with a key pair made here (not
/// the union's release key), by the Tauri CLI the bundle step uses; answers the `.sig` file.
fn sign_with_a_foreign_key(
    dir: &std::path::Path,
    file: &std::path::Path,
    version: &str,
) -> anyhow::Result<std::path::PathBuf> {
    let cli =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../node_modules/.bin/tauri");
    let key = dir.join("foreign.key");
    let run = |args: &[&std::ffi::OsStr]| -> anyhow::Result<()> {
        let out = std::process::Command::new(&cli).args(args).output()?;
        anyhow::ensure!(
            out.status.success(),
            "tauri signer {:?}: {}",
            args,
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    };
    run(&[
        "signer".as_ref(),
        "generate".as_ref(),
        "--ci".as_ref(),
        "-p".as_ref(),
        "".as_ref(),
        "-w".as_ref(),
        key.as_os_str(),
    ])?;
    run(&[
        "signer".as_ref(),
        "sign".as_ref(),
        "-f".as_ref(),
        key.as_os_str(),
        "-p".as_ref(),
        "".as_ref(),
        "--app-version".as_ref(),
        version.as_ref(),
        file.as_os_str(),
    ])?;
    let mut sig = file.as_os_str().to_owned();
    sig.push(".sig");
    Ok(sig.into())
}

/// The package members install: `apt-get install ./UnionPass….deb` (made by the Tauri bundler
/// from this build, `cargo xtask test` passes it as `UNIONPASS_DEB`), then the **installed**
/// program signs in and shows the passport; its 我的 offers the newer version the server names
/// and installs it through the updater, which downloads the package and refuses it because it
/// is not signed with the union's release key (saying so, by code); removing the package leaves
/// nothing of it outside the member's data.
#[tokio::test]
async fn the_installed_package_signs_in_and_leaves_nothing_behind() -> anyhow::Result<()> {
    let deb = std::env::var_os("UNIONPASS_DEB")
        .map(std::path::PathBuf::from)
        .context("UNIONPASS_DEB is not set: run through `cargo xtask test`")?;
    let field = |name: &str| -> anyhow::Result<String> {
        let out = std::process::Command::new("dpkg-deb")
            .args(["-f"])
            .arg(&deb)
            .arg(name)
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let package = field("Package")?;
    assert_eq!(
        field("Version")?,
        env!("CARGO_PKG_VERSION"),
        "the version from Cargo"
    );
    assert!(
        field("Depends")?.contains("libwebkit2gtk-4.1-0"),
        "its libraries"
    );
    let before = system_files_named_unionpass();
    assert_eq!(
        before,
        Vec::<std::path::PathBuf>::new(),
        "installed before the test"
    );

    as_root(&[
        "apt-get",
        "install",
        "-y",
        "-qq",
        &deb.display().to_string(),
    ])?;
    let result = async {
        let files = as_root(&["dpkg", "-L", &package])?;
        for want in [
            "/usr/bin/unionpass-app",
            "/usr/share/applications/UnionPass.desktop",
            "/usr/share/icons/hicolor/32x32/apps/unionpass-app.png",
            "/usr/share/icons/hicolor/256x256/apps/unionpass-app.png",
        ] {
            anyhow::ensure!(
                files.lines().any(|l| l == want),
                "{want} not in the package:\n{files}"
            );
        }
        let entry = std::fs::read_to_string("/usr/share/applications/UnionPass.desktop")?;
        assert!(
            entry.contains("Exec=unionpass-app") && entry.contains("Name[zh_CN]=工会通"),
            "{entry}"
        );

        let dir = tempfile::tempdir()?;
        // a "newer version": this package again, signed with someone else's key
        let newer = dir.path().join("UnionPass_99.0.0_amd64.deb");
        std::fs::copy(&deb, &newer)?;
        let sig = sign_with_a_foreign_key(dir.path(), &newer, "99.0.0")?;
        // its first download answered by a server error
        let (package_url, downloads) = serve_package(std::fs::read(&newer)?, 1).await?;
        let kind = format!("linux-{}-deb", std::env::consts::ARCH);
        let server = Server::start_serving(
            dir.path(),
            &[
                "--client-latest-version",
                "99.0.0",
                "--client-update",
                &format!("{kind}={package_url}"),
                "--client-update-signature",
                &format!("{kind}={}", sig.display()),
            ],
        )?;
        let data = dir.path().join("member");
        // the installed program, on this member's data
        let installed = |port: u16| {
            App::launch_program(
                std::path::Path::new("/usr/bin/unionpass-app"),
                &data,
                &server.url,
                port,
            )
        };
        let app = installed(4570).await?;
        let run = async {
            app.sign_in("M10001", "demo1234").await?;
            app.wait_text("#passport-name", "王芳", 30).await?;
            app.wait_for("#passport-qr svg", 10).await?;
            app.shot("60-installed-package-passport").await?;

            app.click("#tab-me").await?;
            app.wait_contains("#update-available", "99.0.0", 30).await?;
            // a copy that can install the new version itself does not send the member to ask
            // the union for an installer; once the install failed, it does
            app.wait_for("#update-install", 10).await?;
            assert!(
                app.c
                    .find_all(fantoccini::Locator::Css("#update-ask"))
                    .await?
                    .is_empty(),
                "no 'ask your union' next to a working install button"
            );
            // the download fails: said as such, nothing installed, and the button offers to try
            // again (the server may answer next time)
            app.click("#update-install").await?;
            app.wait_for("#update-result[data-code='update_download_failed']", 90)
                .await?;
            app.wait_text("#update-install", "重试安装", 10).await?;
            assert_eq!(downloads.load(std::sync::atomic::Ordering::SeqCst), 1);
            app.shot("61a-installed-package-download-failed").await?;
            // tried again: downloaded, and refused for its signature
            install_refused_unsigned(&app, &downloads, 2).await?;
            // the answer sends the member nowhere the card does not (no "address below")
            let said = app.text("#update-result").await?;
            assert!(
                !said.contains("下面") && !said.contains("地址"),
                "the refusal gives no second instruction: {said}"
            );
            app.shot("61-installed-package-update-refused").await?;
            // the same card as a member reads it on a phone, and in English (the answer stays
            // through the re-render a language change makes)
            let refused = "#update-result[data-code='update_signature_invalid']";
            let look = |name: &'static str| {
                let app = &app;
                async move {
                    unionpass_e2e::tour::judge(app, name, refused).await?;
                    app.center("#update-result").await?;
                    app.shot(name).await?;
                    Ok::<_, anyhow::Error>(())
                }
            };
            unionpass_e2e::tour::size(&app, 360, 740).await?;
            look("61b-installed-package-update-refused-zh-360").await?;
            app.click("#lang-toggle").await?;
            let said = app
                .wait_contains(refused, "not signed by the union", 10)
                .await?;
            anyhow::ensure!(
                !said.contains("address") && !said.contains("below"),
                "the refusal gives no second instruction: {said}"
            );
            app.wait_gone("#update-install", 10).await?;
            app.wait_contains("#update-ask", "Ask your union", 10)
                .await?;
            look("61c-installed-package-update-refused-en-360").await?;
            unionpass_e2e::tour::size(&app, 1024, 720).await?;
            look("61d-installed-package-update-refused-en").await?;
            Ok::<_, anyhow::Error>(())
        }
        .await;
        app.close().await;
        run?;

        // the same copy finds its store written by a newer version: the screen that says so
        // offers the install, from the default server (the store, which names the member's, is
        // unreadable), and the answer comes back to it
        {
            let db = rusqlite::Connection::open(data.join(unionpass_client::client::DB_FILE))?;
            db.execute_batch("PRAGMA user_version = 999;")?;
        }
        let app = installed(4571).await?;
        let way_out = async {
            app.wait_contains("#fatal-error", "更新版本", 30).await?;
            // the newer-store screen asked the server and downloaded the package again
            install_refused_unsigned(&app, &downloads, 3).await?;
            // and does not say this copy keeps working: it cannot open the store
            let said = app.text("#update-result").await?;
            anyhow::ensure!(
                !said.contains("继续使用"),
                "the refusal on the newer-store screen: {said}"
            );
            app.shot("62-installed-package-newer-store-way-out").await?;
            Ok::<_, anyhow::Error>(())
        }
        .await;
        app.close().await;
        way_out?;

        // a union that announces a version but offers no package for this kind of install: the
        // install says so, is not offered again, and the card says whom to ask for the installer
        let bare_dir = tempfile::tempdir()?;
        let bare = Server::start_serving(bare_dir.path(), &["--client-latest-version", "99.0.0"])?;
        let app = App::launch_program(
            std::path::Path::new("/usr/bin/unionpass-app"),
            &bare_dir.path().join("member"),
            &bare.url,
            4572,
        )
        .await?;
        let no_package = async {
            app.sign_in("M10001", "demo1234").await?;
            app.wait_text("#passport-name", "王芳", 30).await?;
            app.click("#tab-me").await?;
            app.wait_contains("#update-available", "99.0.0", 30).await?;
            app.wait_gone("#update-ask", 5).await?;
            app.click("#update-install").await?;
            let said = app
                .wait_contains("#update-result", "没有为这种安装方式提供更新包", 60)
                .await?;
            anyhow::ensure!(said.contains("手动安装"), "{said}");
            app.wait_gone("#update-install", 5).await?;
            app.wait_for("#update-ask", 5).await?;
            app.center("#update-result").await?;
            app.shot("63-installed-package-no-package").await?;
            Ok::<_, anyhow::Error>(())
        }
        .await;
        app.close().await;
        no_package
    }
    .await;
    let removed = as_root(&["apt-get", "purge", "-y", "-qq", &package]);
    result?;
    removed?;
    assert_eq!(
        system_files_named_unionpass(),
        Vec::<std::path::PathBuf>::new(),
        "left behind by the package"
    );
    Ok(())
}

/// One stop of the tour: how to get there from anywhere, and what shows once it has arrived.
struct Stop {
    name: &'static str,
    go: &'static [&'static str],
    ready: &'static str,
}

const MEMBER_TOUR: &[Stop] = &[
    Stop {
        name: "passport",
        go: &["#tab-passport"],
        ready: "#passport-qr svg",
    },
    Stop {
        name: "activities",
        go: &["#tab-activities", "#part-signups"],
        ready: "#activities .activity",
    },
    Stop {
        name: "grab",
        go: &["#tab-activities", "#part-grab"],
        ready: "#campaigns .campaign",
    },
    Stop {
        name: "wallet",
        go: &["#tab-wallet"],
        ready: "#wallet-list .coupon-row",
    },
    Stop {
        name: "coupon",
        go: &["#tab-wallet", "#wallet-list .coupon-row button.coupon"],
        ready: "#coupon-code",
    },
    Stop {
        name: "points",
        go: &["#tab-points"],
        ready: "#points-available",
    },
    Stop {
        name: "me",
        go: &["#tab-me"],
        ready: "#devices .device",
    },
];

const STAFF_TOUR: &[Stop] = &[Stop {
    name: "scanner",
    go: &["#tab-activities", "#part-scanner"],
    ready: "#scanner-event option",
}];

/// Walk `stops` in both languages, at desktop size and on a 360 px phone: each screen opens at
/// its top with its content, passes [`tour::judge`] (no raw error, nothing off the side,
/// no serious or critical axe-core violation), keeps its bars in place while the content
/// scrolls, and (at desktop size, in Chinese) is walked with the Tab key. Saves every screen.
async fn tour(app: &App, who: &str, stops: &[Stop]) -> anyhow::Result<()> {
    use unionpass_e2e::tour;
    let mut problems = Vec::new();
    for lang in ["zh", "en"] {
        if lang == "en" {
            app.click("#lang-toggle").await?;
            app.wait_text("#lang-toggle", "简体中文", 5).await?;
        } else {
            app.wait_text("#lang-toggle", "English", 5).await?;
        }
        for (w, h) in [(1024, 720), (360, 740)] {
            tour::size(app, w, h).await?;
            for stop in stops {
                let name = format!("{who} {lang} {w}px {}", stop.name);
                for step in stop.go {
                    app.click(step).await?;
                }
                app.wait_for(stop.ready, 20)
                    .await
                    .with_context(|| format!("{name}: no content"))?;
                // the screen before was left scrolled to its end: this one opens at its top
                let top = app
                    .c
                    .execute(
                        "return document.getElementById('content').scrollTop",
                        vec![],
                    )
                    .await?;
                anyhow::ensure!(
                    top.as_f64() == Some(0.0),
                    "{name}: opened at {top}, not its top"
                );
                // every screen is judged before failing, so one run lists every problem
                if let Err(e) = tour::judge(app, &name, stop.ready).await {
                    problems.push(format!("{e:#}"));
                }
                if lang == "zh" && w == 1024 {
                    if let Err(e) = tour::keyboard(app, &name).await {
                        problems.push(format!("{e:#}"));
                    }
                    // the screenshot shows the screen as it opens, not where the walk ended
                    app.c
                        .execute(
                            "document.activeElement && document.activeElement.blur();
                             document.getElementById('content').scrollTop = 0;",
                            vec![],
                        )
                        .await?;
                }
                app.shot(&format!("50-{who}-{lang}-{w}-{}", stop.name))
                    .await?;
                if matches!(stop.name, "grab" | "wallet" | "me") {
                    // these screens have lines of parts, so judge's separator check had some
                    // to check (none would pass it unseen)
                    let seps = app
                        .c
                        .execute(
                            "return document.querySelectorAll('.joined .joined-sep').length",
                            vec![],
                        )
                        .await?;
                    anyhow::ensure!(
                        seps.as_u64().is_some_and(|n| n > 0),
                        "{name}: no line of parts for the separator check: {seps}"
                    );
                }
                if stop.name == "grab" {
                    // the open canteen coupon, with nothing to say yet, keeps no blank line for
                    // an answer: one would take the place of "抢券进行中"
                    let blank = app
                        .c
                        .execute(
                            "const card = [...document.querySelectorAll('#campaigns .campaign')]
                               .find(e => /职工食堂午餐券|Workers' canteen lunch/.test(e.textContent));
                             return card ? card.querySelectorAll('.grab-answer').length : -1",
                            vec![],
                        )
                        .await?;
                    anyhow::ensure!(
                        blank == serde_json::json!(0),
                        "{name}: the open card's answer line: {blank}"
                    );
                }
                if stop.name == "grab" || stop.name == "activities" {
                    // every card's title starts at the same place, whatever its category's word
                    let lefts = app
                        .c
                        .execute(
                            "return [...document.querySelectorAll('.campaign-head .coupon-title')]
                               .filter(e => e.getBoundingClientRect().width > 0)
                               .map(e => Math.round(e.getBoundingClientRect().left))",
                            vec![],
                        )
                        .await?;
                    let lefts: Vec<i64> = serde_json::from_value(lefts)?;
                    anyhow::ensure!(
                        lefts.len() > 1 && lefts.iter().all(|l| (l - lefts[0]).abs() <= 1),
                        "{name}: card titles start at different places: {lefts:?}"
                    );
                }
                if stop.name == "wallet" {
                    // a coupon's name has most of its row, on a phone too: the status is not a
                    // third column beside it (at 360 px in English it had a third of the row,
                    // and "Weekday lunch subsidy" broke over two lines)
                    let share = app
                        .c
                        .execute(
                            "return [...document.querySelectorAll('#wallet-list .coupon')]
                               .map(b => b.querySelector('.coupon-main').getBoundingClientRect().width
                                         / b.getBoundingClientRect().width)",
                            vec![],
                        )
                        .await?;
                    let share: Vec<f64> = serde_json::from_value(share)?;
                    anyhow::ensure!(
                        !share.is_empty() && share.iter().all(|s| *s >= 0.55),
                        "{name}: the coupons' names have too little of their rows: {share:?}"
                    );
                }
                if stop.name == "points" {
                    // what to redeem: the three kinds on one line, each label whole (in English
                    // at 360 px "Catalog" was left alone on a second line)
                    let kinds = app
                        .c
                        .execute(
                            "return [...document.querySelectorAll('#redeem .kinds > .choice')]
                               .map(b => [b.getBoundingClientRect().top,
                                          b.scrollWidth > b.clientWidth + 1])",
                            vec![],
                        )
                        .await?;
                    let kinds: Vec<(f64, bool)> = serde_json::from_value(kinds)?;
                    anyhow::ensure!(
                        kinds.len() == 3
                            && kinds
                                .iter()
                                .all(|(top, cut)| (top - kinds[0].0).abs() <= 1.0 && !cut),
                        "{name}: the redeem kinds [top, cut]: {kinds:?}"
                    );
                }
                if who == "member" && stop.name == "activities" {
                    // three groups of filter chips (what, whose, when), each on one line: on a
                    // wide screen no chip is left alone on a second line ("Other" was, at 1024 px
                    // in English); on a phone the rows scroll sideways
                    let lines = app
                        .c
                        .execute(
                            "return [...document.querySelectorAll(
                                 '#content .chips:not(.chip-groups), #content .chip-group')]
                               .map(row => new Set([...row.children]
                                 .map(c => Math.round(c.getBoundingClientRect().top))).size)",
                            vec![],
                        )
                        .await?;
                    let lines: Vec<usize> = serde_json::from_value(lines)?;
                    // (whose holds 我的活动 and the group of choices after it)
                    anyhow::ensure!(
                        lines.len() == 4 && lines.iter().all(|n| *n == 1),
                        "{name}: filter rows on more than one line: {lines:?}"
                    );
                    if w < 720 {
                        // when and whose share a line, so the list starts two rows down
                        let tops = app
                            .c
                            .execute(
                                "return ['#act-date-any', '#act-scope-all'].map(css =>
                                   Math.round(document.querySelector(css).getBoundingClientRect().top))",
                                vec![],
                            )
                            .await?;
                        let tops: Vec<i64> = serde_json::from_value(tops)?;
                        anyhow::ensure!(
                            tops[0] == tops[1],
                            "{name}: the date and scope chips on two lines: {tops:?}"
                        );
                    }
                    // 我的活动 is in sight without scrolling a row sideways (nor under the fade at
                    // its right end on a phone)
                    let seen = app
                        .c
                        .execute(
                            "const mine = document.querySelector('#act-mine');
                             const r = mine.getBoundingClientRect();
                             const row = mine.closest('.chips').getBoundingClientRect();
                             const fade = innerWidth < 720 ? 44 : 0;
                             return r.left >= Math.max(0, row.left) - 1
                               && r.right <= Math.min(innerWidth, row.right) - fade + 1",
                            vec![],
                        )
                        .await?;
                    anyhow::ensure!(
                        seen == serde_json::json!(true),
                        "{name}: 我的活动 is scrolled out of sight"
                    );
                }
                if who == "member" && stop.name == "activities" {
                    // the list: what is coming up first; the week's ended ones after it, under
                    // their own heading
                    let art = if lang == "zh" {
                        "职工书画展导览"
                    } else {
                        "Workers' art show"
                    };
                    app.wait_contains("#activities-ended", art, 10)
                        .await
                        .with_context(|| format!("{name}: ended"))?;
                    anyhow::ensure!(
                        !app.text("#activities").await?.contains(art),
                        "{name}: an ended activity among those coming up"
                    );
                    // the place at the art show went unused: said so, not "已报名" in green
                    let ended = app.text("#activities-ended").await?;
                    let missed = if lang == "zh" {
                        "报了名未签到"
                    } else {
                        "Signed up, not checked in"
                    };
                    anyhow::ensure!(
                        ended.contains(missed) && !ended.contains("已报名"),
                        "{name}: the missed art show's status: {ended}"
                    );
                    // and what a place not used means: the no-show rule, and what to do instead
                    let rule = if lang == "zh" { "爽约" } else { "no-show" };
                    anyhow::ensure!(
                        ended.contains(rule),
                        "{name}: the missed art show does not say it counts as a no-show: {ended}"
                    );
                    // the full family day, where M10001 has no place: the waitlist's room is
                    // said (a member holding a place reads only that it is full)
                    let family = app
                        .c
                        .execute(
                            "const card = [...document.querySelectorAll('#activities .activity')]
                               .find(e => /亲子手工日|Family craft day/.test(e.textContent));
                             return card ? card.querySelector('[id^=activity-seats-]').textContent : ''",
                            vec![],
                        )
                        .await?;
                    let room = if lang == "zh" {
                        "候补名额还剩"
                    } else {
                        "waitlist place"
                    };
                    anyhow::ensure!(
                        family.as_str().is_some_and(|t| t.contains(room)),
                        "{name}: the full family day's places: {family}"
                    );
                    // 我的活动 on the demo: the talk coming up, yesterday's training attended,
                    // the art show missed
                    app.click("#act-mine").await?;
                    let said = app
                        .c
                        .execute(
                            "return document.querySelector('#act-mine').getAttribute('aria-pressed')",
                            vec![],
                        )
                        .await?;
                    anyhow::ensure!(
                        said == serde_json::json!("true"),
                        "{name}: 我的活动 on, but said {said}"
                    );
                    for (group, title) in [
                        (
                            "#mine-upcoming",
                            ["职工心理健康讲座", "Workers' mental health talk"],
                        ),
                        ("#mine-attended", ["安全生产与急救培训", "Workplace safety"]),
                        ("#mine-attended", ["已签到参加", "Checked in"]),
                        ("#mine-missed", ["职工书画展导览", "Workers' art show"]),
                    ] {
                        let title = if lang == "zh" { title[0] } else { title[1] };
                        app.wait_contains(group, title, 10)
                            .await
                            .with_context(|| format!("{name}: {group}"))?;
                    }
                    if let Err(e) = tour::judge(app, &format!("{name} mine"), "#mine-missed").await
                    {
                        problems.push(format!("{e:#}"));
                    }
                    app.c
                        .execute(
                            "document.getElementById('mine-upcoming-heading').scrollIntoView({block: 'start'})",
                            vec![],
                        )
                        .await?;
                    app.shot(&format!("50-{who}-{lang}-{w}-activities-mine"))
                        .await?;
                    app.click("#act-mine").await?;
                    // further down the same screen: the demo's open needs poll, and yesterday's
                    // training waiting for the member's feedback
                    for (part, css) in [("poll", "#polls"), ("feedback", "form.feedback")] {
                        app.wait_for(css, 10)
                            .await
                            .with_context(|| format!("{name}: no {part}"))?;
                        if part == "poll" {
                            // unfolded, its options shown (it stays so while the tab is open)
                            app.c
                                .execute(
                                    "const h = document.querySelector('.poll-head');
                                     if (h.getAttribute('aria-expanded') !== 'true') h.click();",
                                    vec![],
                                )
                                .await?;
                            app.wait_for("#polls .poll-option", 5)
                                .await
                                .with_context(|| format!("{name}: the poll does not unfold"))?;
                            if let Err(e) =
                                tour::judge(app, &format!("{name} poll"), "#polls .poll-option")
                                    .await
                            {
                                problems.push(format!("{e:#}"));
                            }
                        }
                        app.c
                            .execute(
                                "const e = document.querySelector(arguments[0]);
                                 (e.closest('li') || e).scrollIntoView({block: 'start'})",
                                vec![serde_json::json!(css)],
                            )
                            .await?;
                        app.shot(&format!("50-{who}-{lang}-{w}-activities-{part}"))
                            .await?;
                    }
                }
                if stop.name == "passport" {
                    // the live code's countdown is above the fold: at 1024×720, and on a phone
                    // above the bottom tabs (the name first, the details below the code)
                    let fits = app
                        .c
                        .execute(
                            "const tabs = document.querySelector('.tabs').getBoundingClientRect();
                             const limit = window.innerWidth < 720 ? tabs.top : window.innerHeight;
                             return document.getElementById('passport-countdown')
                                .getBoundingClientRect().bottom <= limit",
                            vec![],
                        )
                        .await?;
                    anyhow::ensure!(
                        fits == serde_json::json!(true),
                        "{name}: countdown below the fold"
                    );
                    // on a phone, whose it is (number and union) in one line above the code,
                    // the details below it
                    if w == 360 {
                        let brief = app.text("#passport-brief").await?;
                        let no = app.text("#passport-member-no").await?;
                        let union = app.text("#passport-union").await?;
                        anyhow::ensure!(
                            !no.is_empty() && brief == format!("{no} · {union}"),
                            "{name}: the line above the code says {brief:?}"
                        );
                        let above = app
                            .c
                            .execute(
                                "const box = id => document.getElementById(id).getBoundingClientRect();
                                 return box('passport-brief').bottom <= box('passport-qr').top",
                                vec![],
                            )
                            .await?;
                        anyhow::ensure!(
                            above == serde_json::json!(true),
                            "{name}: the line is not above the code"
                        );
                    }
                    if who == "member" {
                        passport_today(app, lang).await.context(name.clone())?;
                    }
                }
                let layout = app
                    .c
                    .execute(
                        "const c = document.getElementById('content');
                         c.scrollTop = c.scrollHeight;
                         const tabs = document.querySelector('.tabs').getBoundingClientRect();
                         return [c.getBoundingClientRect().bottom, tabs.top,
                                 document.querySelector('.topbar').getBoundingClientRect().top,
                                 tabs.bottom, window.innerHeight];",
                        vec![],
                    )
                    .await?;
                let n = |i: usize| layout[i].as_f64().unwrap_or(f64::NAN);
                if w < 720 {
                    anyhow::ensure!(
                        n(0) <= n(1) + 0.5,
                        "{name}: content under the tab bar: {layout}"
                    );
                    anyhow::ensure!(
                        (n(3) - n(4)).abs() < 1.0,
                        "{name}: the tab bar left the bottom: {layout}"
                    );
                }
                anyhow::ensure!(n(2) == 0.0, "{name}: the top bar scrolled away: {layout}");
                if stop.name == "coupon" {
                    app.click("#coupon-back").await?;
                }
            }
        }
    }
    anyhow::ensure!(problems.is_empty(), "{}", problems.join("\n\n"));
    Ok(())
}

/// The tour of a fresh demo, as a member and as staff: every screen (the member's tabs, a
/// coupon's page from a full wallet, the staff scanner) in zh-CN and en at 1024×720 and
/// 360×740, judged by [`tour`].
#[tokio::test]
async fn the_demo_tour_every_screen_reads_right_fits_and_is_accessible() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start_demo(dir.path())?;
    let app = App::launch(&dir.path().join("member"), &server.url, 4570).await?;
    let result = async {
        // the sign-in screen first, in both languages and at both sizes
        use unionpass_e2e::tour;
        for lang in ["zh", "en"] {
            for (w, h) in [(1024, 720), (360, 740)] {
                tour::size(&app, w, h).await?;
                let name = format!("sign-in {lang} {w}px");
                tour::judge(&app, &name, "#member-no").await?;
                if lang == "zh" && w == 1024 {
                    tour::keyboard(&app, &name).await?;
                }
                app.shot(&format!("50-signin-{lang}-{w}")).await?;
            }
            app.click("#lang-toggle").await?;
        }
        app.wait_text("#lang-toggle", "English", 5).await?;
        app.sign_in("M10001", "demo1234").await?;
        tour(&app, "member", MEMBER_TOUR).await
    }
    .await;
    app.close().await;
    result?;
    let staff = App::launch(&dir.path().join("staff"), &server.url, 4580).await?;
    let result = async {
        staff.sign_in("S20001", "demo1234").await?;
        tour(&staff, "staff", STAFF_TOUR).await?;
        // the door opens on an event not over (it opened on yesterday's training, the first by
        // its start); chosen, the training says it ended
        let training = |t: &str| t.contains("安全生产") || t.contains("Workplace safety");
        let picked = staff
            .c
            .execute(
                "const s = document.getElementById('scanner-event');
                 return s.options[s.selectedIndex].text",
                vec![],
            )
            .await?;
        anyhow::ensure!(
            !training(picked.as_str().unwrap_or_default()),
            "the door opened on an ended event: {picked}"
        );
        anyhow::ensure!(
            staff
                .c
                .find(fantoccini::Locator::Css("#scanner-event-ended"))
                .await
                .is_err(),
            "an event on now or next said it ended"
        );
        staff
            .c
            .execute(
                "const s = document.getElementById('scanner-event');
                 const o = [...s.options].find(o => o.text.includes('安全生产') || o.text.includes('Workplace safety'));
                 s.value = o.value;
                 s.dispatchEvent(new Event('change', { bubbles: true }));",
                vec![],
            )
            .await?;
        let said = staff
            .wait_until("#scanner-event-ended", 10, "the event's end", |t| {
                t.contains("昨天") || t.contains("yesterday")
            })
            .await?;
        anyhow::ensure!(said.contains("17:00"), "the training's end: {said}");
        // the demo's check-in there came from a colleague's scanner: the log names them as the
        // one who scanned (a name alone under the member's read as a companion's)
        staff
            .wait_until("#checkin-log .checkin-device", 10, "who scanned", |t| {
                t == "韩立新 扫码" || t == "scanned by 韩立新"
            })
            .await?;
        staff.shot("50b-staff-ended-event").await?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    staff.close().await;
    result
}

/// The demo member's passport names today's activity (the talk the seed gives M10001 a place
/// at, two or three hours on) with its title and place in the language on screen. Until 21:00 in
/// Shanghai the talk is still today (it starts by 23:59); later it may start after midnight, and
/// the line is then checked only if shown.
async fn passport_today(app: &App, lang: &str) -> anyhow::Result<()> {
    use chrono::Timelike;
    let hour = (chrono::Utc::now() + chrono::Duration::hours(8)).hour();
    if hour < 21 {
        app.wait_for("#passport-today", 10).await.with_context(|| {
            format!("no activity today on the passport at {hour}:xx in Shanghai")
        })?;
    }
    let shown = app
        .c
        .find_all(fantoccini::Locator::Css("#passport-today"))
        .await?;
    if let Some(line) = shown.first() {
        let line = line.text().await?;
        let (title, place) = if lang == "en" {
            (
                "Workers' mental health talk",
                "Workers' Service Centre, lecture hall 301",
            )
        } else {
            ("职工心理健康讲座", "职工服务中心 301 报告厅")
        };
        anyhow::ensure!(
            line.contains(title) && line.contains(place),
            "today's activity on the passport reads {line:?}"
        );
    }
    Ok(())
}

/// The status bar's sync text, as the page holds it (WebDriver's rendered text of this
/// squeezable span is unreliable).
async fn sync_status(app: &App) -> anyhow::Result<String> {
    Ok(app
        .c
        .execute(
            "return document.getElementById('sync-status').textContent",
            vec![],
        )
        .await?
        .as_str()
        .unwrap_or_default()
        .to_string())
}

/// Press "sync now" once it can be pressed, and wait for that sync to end (the button is
/// disabled while it runs).
async fn sync_and_wait(app: &App) -> anyhow::Result<()> {
    let enabled = |app: &App| {
        let c = app.c.clone();
        async move {
            c.find(fantoccini::Locator::Css("#sync-now"))
                .await?
                .is_enabled()
                .await
        }
    };
    let mut ready = false;
    for _ in 0..300 {
        if enabled(app).await? {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    anyhow::ensure!(ready, "a sync ran for 30 s: the button never came back");
    app.click("#sync-now").await?;
    // the press shows at once (the button is disabled while the sync runs); then wait for its end
    for _ in 0..20 {
        if !enabled(app).await? {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    for _ in 0..600 {
        if enabled(app).await? {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    anyhow::bail!("the sync did not end in a minute")
}

/// Press 安装新版本 on a copy whose server offers a package without the union's signature: the
/// refusal is answered, the package was downloaded (`times` in all) and checked, whom
/// to ask is said, and no button invites a second download of the same package.
async fn install_refused_unsigned(
    app: &App,
    downloads: &std::sync::atomic::AtomicUsize,
    times: usize,
) -> anyhow::Result<()> {
    app.click("#update-install").await?;
    app.wait_for("#update-result[data-code='update_signature_invalid']", 90)
        .await?;
    app.wait_for("#update-ask", 10).await?;
    app.wait_gone("#update-install", 10).await?;
    assert_eq!(
        downloads.load(std::sync::atomic::Ordering::SeqCst),
        times,
        "the package was downloaded and its signature checked"
    );
    Ok(())
}

#[tokio::test]
async fn a_store_written_by_a_newer_app_is_named_plainly_and_left_untouched() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("device");
    std::fs::create_dir_all(&data)?;
    let db = data.join(unionpass_client::client::DB_FILE);
    {
        let conn = rusqlite::Connection::open(&db)?;
        // a rollback journal, not WAL: switching it to WAL would be a write too
        conn.execute_batch(
            "PRAGMA journal_mode = DELETE;
             CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             INSERT INTO meta VALUES ('written_by', 'a later UnionPass');
             PRAGMA user_version = 999;",
        )?;
    }
    let before = std::fs::read(&db)?;
    // no server is needed to find out
    let app = App::launch(&data, "http://127.0.0.1:9", 4600).await?;
    let seen = async {
        let text = app.wait_contains("#fatal-error", "更新版本", 30).await?;
        anyhow::ensure!(text.contains("更新到最新版本"), "{text}");
        // not a dead end: the data is said to be kept, this copy's version is given, and (a copy
        // run from the build cannot replace itself) whom to ask for the new one
        app.wait_contains("#fatal-kept", "仍完整保存在本机", 10)
            .await?;
        app.wait_contains(
            "#app-version",
            &format!("当前版本 {}", unionpass_client::client::APP_VERSION),
            10,
        )
        .await?;
        app.wait_contains("#update-ask", "索取安装包", 10).await?;
        anyhow::ensure!(
            app.c
                .find_all(fantoccini::Locator::Css("#update-install"))
                .await?
                .is_empty(),
            "no install button on a copy that cannot replace itself"
        );
        // this store keeps no passport: none is made up
        anyhow::ensure!(
            app.c
                .find_all(fantoccini::Locator::Css("#kept-passport, #passport-qr"))
                .await?
                .is_empty(),
            "a passport shown from a store that has none"
        );
        unionpass_e2e::tour::judge(&app, "newer-store", "#fatal-error").await?;
        app.shot("10-newer-store").await?;
        unionpass_e2e::tour::size(&app, 360, 740).await?;
        unionpass_e2e::tour::judge(&app, "newer-store-360", "#fatal-error").await?;
        app.shot("10-newer-store-360").await?;
        // the member's language is in the store this app cannot read: the switch is here, for
        // this session (and writes nothing: checked below)
        app.click("#lang-toggle").await?;
        app.wait_contains("#fatal-error", "written by a newer version", 10)
            .await?;
        app.wait_contains("#fatal-kept", "still on this device", 10)
            .await?;
        app.wait_contains("#lang-toggle", "中文", 10).await?;
        unionpass_e2e::tour::judge(&app, "newer-store-en-360", "#fatal-error").await?;
        app.shot("10-newer-store-en-360").await?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    app.close().await;
    seen?;
    newer_store_untouched(&db, &before)
}

/// The newer app's store (`user_version` 999) as it was `before` the app ran on it: not a byte
/// written, no log or journal left beside it.
fn newer_store_untouched(db: &std::path::Path, before: &[u8]) -> anyhow::Result<()> {
    anyhow::ensure!(
        std::fs::read(db)? == before,
        "the newer app's store was written to"
    );
    for left in ["-wal", "-journal"] {
        let mut name = db.as_os_str().to_owned();
        name.push(left);
        anyhow::ensure!(
            !std::path::Path::new(&name).exists(),
            "the app left {left} beside the newer store"
        );
    }
    let v: u32 =
        rusqlite::Connection::open(db)?.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    anyhow::ensure!(v == 999, "user_version {v}");
    Ok(())
}

#[tokio::test]
async fn a_store_written_by_a_newer_app_still_shows_the_passport_for_the_door() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path())?;
    let data = dir.path().join("device");
    let app = App::launch(&data, &server.url, 4640).await?;
    let signed_in = async {
        app.sign_in("M10001", "demo1234").await?;
        app.wait_for("#passport-qr svg", 30).await?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    app.close().await;
    signed_in?;
    let trust = published_trust(&server).await?;
    let public = device_public_key(&data)?;
    // a newer version of the app took the store over, then this one came back
    let db = data.join(unionpass_client::client::DB_FILE);
    rusqlite::Connection::open(&db)?.pragma_update(None, "user_version", 999)?;
    let before = std::fs::read(&db)?;
    let app = App::launch(&data, &server.url, 4640).await?;
    let seen = async {
        app.wait_contains("#fatal-error", "更新版本", 30).await?;
        app.wait_for("#kept-passport #passport-qr svg", 15).await?;
        app.wait_text("#passport-name", "王芳", 5).await?;
        anyhow::ensure!(app.text("#passport-member-no").await? == "M10001");
        app.wait_contains("#kept-passport", "仍可在活动入口出示", 5)
            .await?;
        // the way to update is still there, below it
        app.wait_contains("#fatal-kept", "仍完整保存在本机", 5)
            .await?;
        app.wait_for("#update-way-out", 5).await?;
        let mut steps = Vec::new();
        for (name, w) in [
            ("zh-1024", 1024),
            ("zh-360", 360),
            ("en-360", 360),
            ("en-1024", 1024),
        ] {
            if name == "en-360" {
                app.click("#lang-toggle").await?;
                app.wait_contains("#kept-passport", "at the door", 10)
                    .await?;
                app.wait_contains("#passport-countdown", "Refreshes in", 5)
                    .await?;
            }
            resize(&app, w).await?;
            unionpass_e2e::tour::judge(
                &app,
                &format!("newer-store-passport-{name}"),
                "#passport-qr svg",
            )
            .await?;
            let png = app
                .shot(&format!("10d-{name}-newer-store-passport"))
                .await?;
            // what the scanner at the door reads: a live code for this member, signed by this
            // device's key, that the union's trust list accepts
            let codes = decode_qr(&png)?;
            anyhow::ensure!(codes.len() == 1, "{} QR codes in the window", codes.len());
            let shown = passport::decode(&codes[0])?;
            let claims = shown.verify(&trust, chrono_now())?;
            anyhow::ensure!(claims.member_no == "M10001" && claims.device_key == public);
            steps.push(shown.step);
        }
        // the code moves on with the time step, as on the passport screen
        let next = passport::step_start(steps[0] + 1) - chrono_now();
        tokio::time::sleep(
            next.to_std().unwrap_or_default() + std::time::Duration::from_millis(1500),
        )
        .await;
        let png = app.shot("10d-en-1024-newer-store-passport-rotated").await?;
        let rotated = passport::decode(&decode_qr(&png)?[0])?;
        anyhow::ensure!(
            rotated.step > steps[0],
            "no fresh code after the step changed"
        );
        rotated.verify(&trust, chrono_now())?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    app.close().await;
    seen?;
    newer_store_untouched(&db, &before)
}

/// A tmpfs mounted for one test, unmounted (lazily, whatever still holds it) when dropped.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: &std::path::Path, size: &str) -> anyhow::Result<Tmpfs> {
        std::fs::create_dir_all(at)?;
        as_root(&[
            "mount",
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size}"),
            "tmpfs",
            &at.to_string_lossy(),
        ])
        .context(
            "a full disk is a small tmpfs: mounting needs root (as `cargo xtask test` runs)",
        )?;
        Ok(Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if let Err(e) = as_root(&["umount", "-l", &self.0.to_string_lossy()]) {
            eprintln!(
                "the test's tmpfs at {} was not unmounted: {e}",
                self.0.display()
            );
        }
    }
}

/// Fill the file system holding `path` with a file at `path`, leaving `spare` bytes free.
fn fill_leaving(path: &std::path::Path, spare: u64) -> anyhow::Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(path)?;
    let chunk = vec![0xA5u8; 1 << 20];
    let mut written = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
            Err(e) => return Err(e.into()),
        }
    }
    f.set_len(written.saturating_sub(spare))?;
    f.sync_all()?;
    Ok(())
}

#[tokio::test]
async fn a_full_disk_during_a_sync_is_said_plainly_and_the_next_sync_completes(
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path())?;
    let data = dir.path().join("device");
    let _disk = Tmpfs::mount(&data, "64m")?;
    let app = App::launch(&data, &server.url, 4610).await?;
    let filler = data.join("filler");
    let run = async {
        app.sign_in("M10015", "demo1234").await?;
        app.wait_text("#passport-name", "胡雪", 30).await?;
        // two years of history wait on the server: several MB to write, with 1 MB left
        server.admin(&[
            "bench-seed",
            "--members",
            "0",
            "--tokens-out",
            "/dev/null",
            "--history-coupons",
            "2000",
            "--history-entries",
            "10000",
            "--history-for",
            "M10015",
        ])?;
        fill_leaving(&filler, 1 << 20)?;
        sync_and_wait(&app).await?;
        let text = app
            .wait_contains("#sync-problem", "存储空间已满", 20)
            .await?;
        anyhow::ensure!(text.contains("清理空间"), "{text}");
        // and the status does not claim "synced"
        let status = sync_status(&app).await?;
        anyhow::ensure!(status.contains("上次同步"), "{status}");
        app.shot("11-disk-full").await?;
        // in English, on a phone
        app.click("#lang-toggle").await?;
        app.wait_contains("#sync-problem", "Storage is full", 10)
            .await?;
        unionpass_e2e::tour::size(&app, 360, 740).await?;
        unionpass_e2e::tour::judge(&app, "disk-full-en-360", "#sync-problem").await?;
        app.shot("11-disk-full-en-360").await?;
        app.click("#lang-toggle").await?;
        app.wait_contains("#sync-problem", "存储空间已满", 10)
            .await?;
        // the store is whole while the disk is full
        {
            let conn = rusqlite::Connection::open_with_flags(
                data.join(unionpass_client::client::DB_FILE),
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )?;
            let ok: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
            anyhow::ensure!(ok == "ok", "integrity while full: {ok}");
        }
        // space freed: the next sync completes and the notice goes
        std::fs::remove_file(&filler)?;
        sync_and_wait(&app).await?;
        app.wait_gone("#sync-problem", 10)
            .await
            .context("the notice stayed after a sync that worked")?;
        let status = sync_status(&app).await?;
        anyhow::ensure!(status.contains("已同步"), "{status}");
        Ok::<_, anyhow::Error>(())
    }
    .await;
    app.close().await;
    run?;
    let store =
        unionpass_client::store::Store::open(&data.join(unionpass_client::client::DB_FILE))?;
    assert_eq!(store.integrity_check()?, "ok");
    let held = store.held()?;
    anyhow::ensure!(
        held.coupons >= 2000 && held.points_entries >= 10_000 && held.outbox == 0,
        "after the disk was freed the sync did not bring everything: {held:?}"
    );
    Ok(())
}

/// A server whose clock is two minutes ahead of the device's: the app measures the offset and
/// counts down, reminds and opens the grab button by the server's time. Were it to use its own
/// clock, the reminder would come two minutes late and the button open two minutes after the
/// coupons were gone.
#[tokio::test]
async fn with_the_server_clock_two_minutes_ahead_the_reminder_and_the_grab_button_follow_it(
) -> anyhow::Result<()> {
    use std::time::Duration;
    use unionpass_e2e::desktop::Notifications;
    const AHEAD: i64 = 120;
    let mut notes = Notifications::start().await?;
    let dir = tempfile::tempdir()?;
    let server = Server::start_with_clock_offset(dir.path(), AHEAD)?;
    let offset = chrono::Duration::seconds(AHEAD);
    let app = App::launch(&dir.path().join("member"), &server.url, 4620).await?;
    let result = async {
        app.sign_in("M10009", "demo1234").await?;
        app.wait_text("#passport-name", "周婷", 30).await?;
        // in the server's time: released 90 s from now, the reminder 1 minute before
        let release = chrono_now() + offset + chrono::Duration::seconds(90);
        let id = server.create_campaign(
            "共享单车骑行券",
            "Bike ride coupon",
            "bike",
            5,
            3,
            release,
            release + chrono::Duration::hours(1),
            &[],
        )?;
        // ... which is, on this device's clock
        let due_here = release - chrono::Duration::minutes(1) - offset;
        let release_here = release - offset;
        sync_and_wait(&app).await?;
        set_reminder(&app, id).await?;
        app.wait_contains("#clock-offset", "倒计时已按服务器时间校准", 15)
            .await?;
        app.wait_contains(&format!("#countdown-{id}"), "距开抢", 5)
            .await?;
        anyhow::ensure!(
            chrono_now() < due_here - chrono::Duration::seconds(3),
            "set up too slowly"
        );
        let button = app.wait_for(&format!("#grab-{id}"), 5).await?;
        anyhow::ensure!(closed(&button).await?, "closed before release");
        app.shot("12-server-clock-ahead").await?;

        let note = notes
            .next(Duration::from_secs(90))
            .await
            .context("no notification arrived")?;
        let off = (note.received - due_here).num_milliseconds();
        anyhow::ensure!(
            off.abs() <= 1500,
            "the reminder came {off} ms from its time by the server's clock"
        );
        anyhow::ensure!(
            note.summary == "共享单车骑行券 即将开抢",
            "{}",
            note.summary
        );

        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        while closed(&button).await? || !button.is_enabled().await? {
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "the button never opened"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let opened = (chrono_now() - release_here).num_milliseconds();
        anyhow::ensure!(
            (-1000..=1500).contains(&opened),
            "the button opened {opened} ms from the release by the server's clock"
        );
        button.click().await?;
        app.wait_contains(&format!("#grab-answer-{id}"), "抢到了", 15)
            .await?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    app.close().await;
    result
}

/// The coupon page of a coupon no longer usable: its value in the muted colour, not the red of
/// a usable one, and no copy button for its code.
async fn spent_look(app: &App) -> anyhow::Result<()> {
    let look = app
        .c
        .execute(
            "const v = document.querySelector('#coupon-detail .coupon-value');
             return [v.classList.contains('dim'), getComputedStyle(v).color,
                     document.getElementById('coupon-copy') === null]",
            vec![],
        )
        .await?;
    anyhow::ensure!(
        look[0] == serde_json::json!(true)
            && look[1] != serde_json::json!("rgb(200, 55, 45)")
            && look[2] == serde_json::json!(true),
        "a spent coupon's page [value dimmed, its colour, no copy button]: {look}"
    );
    Ok(())
}
