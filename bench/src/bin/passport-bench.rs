//! `passport-bench`: how long a scanner takes to verify one passport code (decode + both
//! signatures + validity, step and revocation checks), and to find and read the QR code in one
//! 640×480 grey-scale camera frame; and the scanner app's whole scan at the door of an activity
//! with 10,000 sign-ups and 10,000 check-ins (the client's SQLite store, as the app uses it: the
//! check, the sign-up lookup, the recorded check-in with its outbox entry, and the screen read
//! after it). Run by `cargo xtask bench passport` (release build); the last line printed is one
//! JSON object.

use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::SigningKey;
use unionpass_core::api::Role;
use unionpass_core::passport::{self, Claims, Kid, TrustList};

const W: usize = 640;
const H: usize = 480;

/// A camera-like frame: the code drawn at `module` px per module somewhere in a grey, noisy
/// background.
fn frame(text: &str, module: usize, seed: u64) -> Vec<u8> {
    let code =
        qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::Q).unwrap();
    let n = code.width();
    let colors = code.to_colors();
    let quiet = 4;
    let side = (n + 2 * quiet) * module;
    assert!(side <= H, "the code does not fit the frame");
    let (ox, oy) = ((W - side) / 2 + (seed as usize % 40), (H - side) / 2);
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    let mut px = vec![0u8; W * H];
    for (i, p) in px.iter_mut().enumerate() {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let noise = (state >> 59) as u8; // 0..31
        let (x, y) = (i % W, i / W);
        let inside = x >= ox && y >= oy && x < ox + side && y < oy + side;
        let dark = inside && {
            let (mx, my) = ((x - ox) / module, (y - oy) / module);
            mx >= quiet
                && my >= quiet
                && mx < n + quiet
                && my < n + quiet
                && colors[(my - quiet) * n + (mx - quiet)] == qrcode::Color::Dark
        };
        *p = if dark {
            30 + noise
        } else if inside {
            210 + noise
        } else {
            120 + noise
        };
    }
    px
}

fn main() {
    let mut rng = rand::rngs::OsRng;
    let union = SigningKey::generate(&mut rng);
    let device = SigningKey::generate(&mut rng);
    let now: DateTime<Utc> = Utc::now();
    let claims = Claims {
        kid: Kid::of(&union.verifying_key()),
        member_id: 100_001,
        union_id: 17,
        role: Role::Member,
        valid_from: now - Duration::days(1),
        valid_until: now + Duration::days(29),
        device_key: device.verifying_key().to_bytes(),
        member_no: "M100001".into(),
    };
    let l1 = passport::issue(&claims, &union);
    let mut trust = TrustList {
        keys: vec![union.verifying_key()],
        ..Default::default()
    };
    // a realistic revocation list: a few thousand devices and members
    for i in 0..5000u64 {
        trust.revoked_devices.insert(passport::DeviceKid::of(&{
            let mut k = [0u8; 32];
            k[..8].copy_from_slice(&i.to_be_bytes());
            k
        }));
        trust.revoked_members.insert(1_000_000 + i);
    }
    let text = passport::present(&l1, &device, passport::step_of(now));

    // verify: decode + union signature + device signature + checks
    let rounds = 20_000;
    for _ in 0..1000 {
        passport::decode(&text)
            .unwrap()
            .verify(&trust, now)
            .unwrap();
    }
    let t = Instant::now();
    for _ in 0..rounds {
        let c = passport::decode(&text)
            .unwrap()
            .verify(&trust, now)
            .unwrap();
        std::hint::black_box(c);
    }
    let verify_us = t.elapsed().as_secs_f64() * 1e6 / rounds as f64;

    // decode from a 640x480 frame, the code at 4 px per module (as from a phone held at ~25 cm)
    let frames: Vec<Vec<u8>> = (0..8).map(|s| frame(&text, 4, s)).collect();
    let mut decoded = 0;
    let t = Instant::now();
    let frame_rounds = 80;
    for i in 0..frame_rounds {
        let f = &frames[i % frames.len()];
        if unionpass_client::qr::decode_luma(W, H, f).as_deref() == Some(text.as_str()) {
            decoded += 1;
        }
    }
    let decode_ms = t.elapsed().as_secs_f64() * 1e3 / frame_rounds as f64;
    assert_eq!(decoded, frame_rounds, "every frame decodes");
    let bytes = base45_len(&text);
    let busy = door(&union, &device, now, 10_000);
    let empty = door(&union, &device, now, 0);
    println!(
        "{}",
        serde_json::json!({
            "bench": "passport",
            "verify_us": (verify_us * 10.0).round() / 10.0,
            "decode_ms": (decode_ms * 100.0).round() / 100.0,
            "qr_bytes": bytes,
            "qr_chars": text.len(),
            "revoked_entries": 10_000,
            "door_signups": 10_000,
            "door_scan_ms": busy.mean_ms,
            "door_scan_p99_ms": busy.p99_ms,
            "door_apply_bundle_ms": busy.bundle_ms,
            "door_empty_scan_ms": empty.mean_ms,
            "door_vs_empty": ((busy.mean_ms / empty.mean_ms) * 100.0).round() / 100.0,
        })
    );
}

/// The binary length behind the Base45 text.
fn base45_len(text: &str) -> usize {
    let chars = text.len() - passport::PREFIX.len();
    chars / 3 * 2 + if chars % 3 == 2 { 1 } else { 0 }
}

struct Door {
    mean_ms: f64,
    p99_ms: f64,
    bundle_ms: f64,
}

/// The scanner's store holding one activity with `signups` sign-ups (a quarter with companions,
/// a tenth waiting) and as many check-ins already synced, then 400 members scanned at its door:
/// 300 with a place (checked in), 100 without one (refused). Times each scan and the screen read
/// that follows it.
fn door(union: &SigningKey, device: &SigningKey, now: DateTime<Utc>, signups: i64) -> Door {
    use base64::Engine;
    use unionpass_core::checkin::{CheckIn, DoorEntry, Event, Person, ScannerBundle};
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let path = std::env::temp_dir().join(format!("door-bench-{}.sqlite", uuid::Uuid::new_v4()));
    let mut store = unionpass_client::store::Store::open(&path).expect("the scanner's store");
    let event = Event {
        id: 7,
        title: "职工运动会".into(),
        title_en: None,
        place_en: None,
        place: "区体育中心".into(),
        starts_at: now - Duration::hours(1),
        ends_at: now + Duration::hours(5),
        capacity: signups.max(1000),
        union_id: None,
        points: 10,
    };
    // members 1..=signups hold the seats; the scanned ones come after them
    let first_scanned = 1_000_000i64;
    let mut entries: Vec<DoorEntry> = (1..=signups)
        .map(|m| DoorEntry {
            event_id: event.id,
            member_id: m,
            companions: if m % 4 == 0 { 1 } else { 0 },
            waitlisted: m % 10 == 0,
        })
        .collect();
    entries.extend((0..300).map(|i| DoorEntry {
        event_id: event.id,
        member_id: first_scanned + i,
        companions: i % 3,
        waitlisted: false,
    }));
    let bundle = ScannerBundle {
        generated_at: now,
        keys: vec![unionpass_core::api::UnionKey {
            kid: Kid::of(&union.verifying_key()).to_hex(),
            alg: "Ed25519".into(),
            public_key: b64.encode(union.verifying_key().as_bytes()),
            created_at: now - Duration::days(30),
        }],
        revoked_devices: vec![],
        revoked_members: (2_000_000..2_005_000).collect(),
        events: vec![event.clone()],
        checkins: (1..=signups)
            .filter(|m| m % 10 != 0)
            .map(|m| CheckIn {
                event_id: event.id,
                member_id: m,
                member_no: format!("M{m}"),
                scanned_at: now - Duration::minutes(30),
                scanner: uuid::Uuid::from_u128(m as u128 % 7),
                nonce: uuid::Uuid::from_u128(m as u128),
                proof: None,
                staff: None,
            })
            .collect(),
        conflicts: vec![],
        unions: (1..=590)
            .map(|id| unionpass_core::checkin::UnionName {
                id,
                name: format!("第{id}工会"),
            })
            .collect(),
        roster: (1..=signups.max(1))
            .map(|m| Person {
                member_id: m,
                name: format!("会员{m}"),
            })
            .collect(),
        signup_events: vec![event.id],
        signups: entries,
        digests: Default::default(),
        unchanged: vec![],
    };
    let t = Instant::now();
    store
        .apply_bundle(&bundle, now)
        .expect("the bundle applies");
    let bundle_ms = t.elapsed().as_secs_f64() * 1e3;
    let scanner = uuid::Uuid::new_v4();
    let mut times = Vec::new();
    for i in 0..400i64 {
        let member_id = first_scanned + i;
        let claims = Claims {
            kid: Kid::of(&union.verifying_key()),
            member_id: member_id as u64,
            union_id: 17,
            role: Role::Member,
            valid_from: now - Duration::days(1),
            valid_until: now + Duration::days(29),
            device_key: device.verifying_key().to_bytes(),
            member_no: format!("M{member_id}"),
        };
        let code = passport::present(
            &passport::issue(&claims, union),
            device,
            passport::step_of(now),
        );
        let t = Instant::now();
        let outcome = store.scan(event.id, &code, scanner, now).expect("a scan");
        let view = store.scanner_view(Some(event.id), now).expect("the screen");
        times.push(t.elapsed().as_secs_f64() * 1e3);
        // the first 300 hold a place; the rest never signed up
        assert_eq!(outcome.ok, i < 300, "{outcome:?}");
        std::hint::black_box(view);
    }
    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let mean_ms = times.iter().sum::<f64>() / times.len() as f64;
    times.sort_by(f64::total_cmp);
    let p99_ms = times[times.len() * 99 / 100];
    let round = |x: f64| (x * 100.0).round() / 100.0;
    Door {
        mean_ms: round(mean_ms),
        p99_ms: round(p99_ms),
        bundle_ms: round(bundle_ms),
    }
}
