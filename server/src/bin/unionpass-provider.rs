//! The demo and test fulfilment provider: stands in for the phone carrier, the power company and
//! the catalog warehouse, which are outside our control. Its own process on loopback.
//!
//! Every request must be signed with the shared secret (`UNIONPASS_PROVIDER_SECRET`, see
//! `unionpass_server::fulfil::channel`); unsigned ones are answered 401 and do nothing. Every
//! answer is signed too.
//!
//! - `POST /v1/orders` (an `Order`): answers by its mode. `succeed` fulfils it once and answers a
//!   reference; `fail` refuses it with a reason; `timeout` never answers (and, as the contract
//!   says, cancels an order it did not confirm: it is never fulfilled); `slow` fulfils it but
//!   answers only after 5 s. An order id seen before gets its first answer again and is never
//!   fulfilled twice.
//! - `GET /v1/orders/{id}`: what became of an order: done, failed, cancelled, or unknown.
//! - `PUT /v1/mode` `{"mode": "succeed" | "fail" | "timeout", "reason": "…"}` switches the mode.
//! - `GET /v1/orders`: every order seen, how often, and what was fulfilled (for tests).
//!
//! `unionpass-provider --listen 127.0.0.1:0` prints `listening on <addr>` once it serves.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use unionpass_server::fulfil::{channel, Order, OrderState};
use uuid::Uuid;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Mode {
    #[default]
    Succeed,
    Fail,
    Timeout,
    /// Fulfils the order, then answers only after 5 s (a carrier that did top up, late).
    Slow,
}

#[derive(Clone, Debug, Deserialize)]
struct SetMode {
    mode: Mode,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
struct Seen {
    order: Order,
    times: u32,
    /// What became of it.
    answer: OrderState,
}

struct Provider {
    secret: Vec<u8>,
    mode: Mode,
    reason: String,
    orders: HashMap<Uuid, Seen>,
    next_ref: u64,
}

type Shared = Arc<Mutex<Provider>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Provider> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Refuse unsigned requests; sign every answer.
async fn signed(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let secret = lock(&s).secret.clone();
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1024 * 1024).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let path = parts.uri.path().to_string();
    let header = |h: &HeaderMap, name: &str| {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    if !channel::verify(
        &secret,
        parts.method.as_str(),
        &path,
        header(&parts.headers, channel::TIMESTAMP).as_deref(),
        header(&parts.headers, channel::SIGNATURE).as_deref(),
        &bytes,
        now(),
    ) {
        return (StatusCode::UNAUTHORIZED, "unsigned").into_response();
    }
    let resp = next
        .run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await;
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1024 * 1024).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let ts = now();
    let sig = channel::sign(&secret, "ANSWER", &path, ts, &bytes);
    parts
        .headers
        .insert(channel::TIMESTAMP, HeaderValue::from(ts));
    if let Ok(v) = HeaderValue::from_str(&sig) {
        parts.headers.insert(channel::SIGNATURE, v);
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

async fn order(State(s): State<Shared>, body: Bytes) -> Response {
    let Ok(order) = serde_json::from_slice::<Order>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let decided = {
        let mut p = lock(&s);
        let mode = p.mode.clone();
        let reason = p.reason.clone();
        p.next_ref += 1;
        let reference = format!("P{:08}", p.next_ref);
        let first = !p.orders.contains_key(&order.id);
        let hold = first && mode == Mode::Timeout;
        let slow = first && mode == Mode::Slow;
        let seen = p.orders.entry(order.id).or_insert(Seen {
            order,
            times: 0,
            answer: OrderState::Pending,
        });
        seen.times += 1;
        if first {
            seen.answer = match mode {
                Mode::Succeed | Mode::Slow => OrderState::Done { reference },
                Mode::Fail => OrderState::Failed { reason },
                // never confirmed, so never fulfilled
                Mode::Timeout => OrderState::Cancelled,
            };
        }
        if hold {
            None
        } else {
            Some((seen.answer.clone(), slow))
        }
    };
    match decided {
        Some((a, true)) => {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            Json(a).into_response()
        }
        Some((a, false)) => Json(a).into_response(),
        // no answer: hold the connection until the caller gives up
        None => std::future::pending().await,
    }
}

async fn status(State(s): State<Shared>, Path(id): Path<Uuid>) -> Json<OrderState> {
    Json(
        lock(&s)
            .orders
            .get(&id)
            .map(|o| o.answer.clone())
            .unwrap_or(OrderState::Unknown),
    )
}

async fn set_mode(State(s): State<Shared>, Json(m): Json<SetMode>) -> Json<Mode> {
    let mut p = lock(&s);
    p.mode = m.mode;
    p.reason = m
        .reason
        .unwrap_or_else(|| "号码状态异常，充值失败 / the number cannot be topped up".into());
    Json(p.mode.clone())
}

async fn orders(State(s): State<Shared>) -> Json<Vec<Seen>> {
    Json(lock(&s).orders.values().cloned().collect())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut listen: SocketAddr = "127.0.0.1:8090".parse()?;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--listen" => {
                listen = args
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--listen needs an address"))?
                    .parse()?
            }
            other => anyhow::bail!("unknown argument {other:?} (usage: --listen ADDR)"),
        }
    }
    let secret = std::env::var("UNIONPASS_PROVIDER_SECRET").map_err(|_| {
        anyhow::anyhow!("set UNIONPASS_PROVIDER_SECRET (the channel's shared secret)")
    })?;
    anyhow::ensure!(
        secret.len() >= 16,
        "the shared secret needs at least 16 bytes"
    );
    let state: Shared = Arc::new(Mutex::new(Provider {
        secret: secret.into_bytes(),
        mode: Mode::default(),
        reason: String::new(),
        orders: HashMap::new(),
        next_ref: 0,
    }));
    let app = Router::new()
        .route("/v1/orders", post(order).get(orders))
        .route("/v1/orders/{id}", get(status))
        .route("/v1/mode", put(set_mode))
        .layer(axum::middleware::from_fn_with_state(state.clone(), signed))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
