//! `passport-bench`: how long a scanner takes to verify one passport code (decode + both
//! signatures + validity, step and revocation checks), and to find and read the QR code in one
//! 640×480 grey-scale camera frame. Run by `cargo xtask bench passport` (release build); the last
//! line printed is one JSON object.

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
    println!(
        "{}",
        serde_json::json!({
            "bench": "passport",
            "verify_us": (verify_us * 10.0).round() / 10.0,
            "decode_ms": (decode_ms * 100.0).round() / 100.0,
            "qr_bytes": bytes,
            "qr_chars": text.len(),
            "revoked_entries": 10_000,
        })
    );
}

/// The binary length behind the Base45 text.
fn base45_len(text: &str) -> usize {
    let chars = text.len() - passport::PREFIX.len();
    chars / 3 * 2 + if chars % 3 == 2 { 1 } else { 0 }
}
