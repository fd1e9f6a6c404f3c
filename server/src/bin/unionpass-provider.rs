//! The demo and test fulfilment provider: stands in for the phone carrier, the power company and
//! the catalog warehouse, which are outside our control. Its own process on loopback.
//!
//! - `POST /v1/orders` (an `Order`): answers by its mode. `succeed` fulfils it once and answers a
//!   reference; `fail` refuses it with a reason; `timeout` never answers (and, as the contract
//!   says, does not fulfil an order it did not confirm). An order id seen before gets its first
//!   answer again and is never fulfilled twice.
//! - `PUT /v1/mode` `{"mode": "succeed" | "fail" | "timeout", "reason": "…"}` switches the mode.
//! - `GET /v1/orders`: every order seen, how often, and what was fulfilled (for tests).
//!
//! `unionpass-provider --listen 127.0.0.1:0` prints `listening on <addr>` once it serves.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use unionpass_server::fulfil::{Order, OrderAnswer};
use uuid::Uuid;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Mode {
    #[default]
    Succeed,
    Fail,
    Timeout,
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
    /// The answer it gets (an order that timed out is failed, never fulfilled).
    answer: Option<OrderAnswer>,
}

#[derive(Default)]
struct Provider {
    mode: Mode,
    reason: String,
    orders: HashMap<Uuid, Seen>,
    next_ref: u64,
}

type Shared = Arc<Mutex<Provider>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Provider> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

async fn order(State(s): State<Shared>, Json(order): Json<Order>) -> Json<OrderAnswer> {
    let decided = {
        let mut p = lock(&s);
        let mode = p.mode.clone();
        let reason = p.reason.clone();
        p.next_ref += 1;
        let reference = format!("P{:08}", p.next_ref);
        let seen = p.orders.entry(order.id).or_insert(Seen {
            order,
            times: 0,
            answer: None,
        });
        seen.times += 1;
        match (&seen.answer, mode) {
            (Some(first), _) => Some(first.clone()),
            (None, Mode::Succeed) => {
                seen.answer = Some(OrderAnswer::Done { reference });
                seen.answer.clone()
            }
            (None, Mode::Fail) => {
                seen.answer = Some(OrderAnswer::Failed { reason });
                seen.answer.clone()
            }
            (None, Mode::Timeout) => {
                // never confirmed, so never fulfilled: a later retry is told so
                seen.answer = Some(OrderAnswer::Failed {
                    reason: "订单未及时确认，已取消 / the order timed out and was cancelled".into(),
                });
                None
            }
        }
    };
    match decided {
        Some(a) => Json(a),
        // no answer: hold the connection until the caller gives up
        None => std::future::pending().await,
    }
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
    let state: Shared = Arc::default();
    let app = Router::new()
        .route("/v1/orders", post(order))
        .route("/v1/orders", get(orders))
        .route("/v1/mode", put(set_mode))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
