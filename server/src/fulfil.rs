//! Fulfilment of held redemptions: the phone carrier, the power company and the catalog's
//! warehouse are outside our control, so they sit behind the [`Provider`] trait.
//!
//! The worker claims held redemptions (a lease, so two server instances never work on the same
//! one at once), asks the provider, then settles or refunds in one transaction with the ledger
//! entry:
//! - done → settle (the points are spent);
//! - refused → refund, with the provider's reason for the member;
//! - no certain answer (a timeout after sending, an unreadable or unsigned answer) → the provider
//!   is asked what became of the order: done, refused or cancelled (not confirmed in time, so
//!   never fulfilled: refund, `provider_timeout`) end it; pending or unknown (it never arrived)
//!   leave it held, and it is tried again once the lease runs out. Nothing is refunded on a
//!   guess, so a top-up that went through is never also refunded.
//! - provider unreachable (the order never left) → left held and tried again. The order id is the
//!   redemption id, so the provider fulfils it at most once.
//!
//! The channel is authenticated both ways (an HMAC over every request and answer, [`channel`])
//! and uses https outside this computer.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use unionpass_core::redeem::{RefundReason, Target};
use uuid::Uuid;

use crate::clock::Clock;
use crate::store::prelude::*;
use crate::store::{Fulfilment, StoreError};

/// What the provider is asked to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// The redemption id: the provider's idempotency key.
    pub id: Uuid,
    pub target: Target,
    pub points: i64,
}

/// What the provider says of an order: the answer to placing it (`done`, `failed`,
/// `cancelled`), and also, asked later, `pending` (still being worked on) or `unknown` (it never
/// arrived).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum OrderState {
    Done {
        reference: String,
    },
    Failed {
        reason: String,
    },
    /// Not confirmed in time, so never fulfilled.
    Cancelled,
    Pending,
    Unknown,
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("the provider did not answer in time")]
    Timeout,
    #[error("the provider cannot be reached: {0}")]
    Unreachable(String),
    #[error("the provider answered something unreadable or unsigned: {0}")]
    BadAnswer(String),
}

#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// Place the order (at most once per id: a repeat answers the first answer).
    async fn fulfil(&self, order: &Order) -> Result<OrderState, ProviderError>;
    /// What became of an order whose placing got no certain answer.
    async fn status(&self, id: Uuid) -> Result<OrderState, ProviderError>;
}

/// The provider channel's authentication. Both sides share a secret; every request and every
/// answer carries `X-UnionPass-Timestamp` (Unix seconds) and `X-UnionPass-Signature`: the
/// HMAC-SHA256, in hex, of `method`, `path`, the timestamp and the body, each on its own line
/// (answers sign `ANSWER` as the method). A message more than five minutes off is refused.
pub mod channel {
    use hmac::{Hmac, Mac};
    use sha2::Sha256;

    pub const TIMESTAMP: &str = "x-unionpass-timestamp";
    pub const SIGNATURE: &str = "x-unionpass-signature";
    /// How far a message's timestamp may be from the receiver's clock, in seconds.
    pub const SKEW: i64 = 300;

    fn mac(secret: &[u8], method: &str, path: &str, ts: i64, body: &[u8]) -> Hmac<Sha256> {
        let mut m = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
        m.update(format!("{method}\n{path}\n{ts}\n").as_bytes());
        m.update(body);
        m
    }

    pub fn sign(secret: &[u8], method: &str, path: &str, ts: i64, body: &[u8]) -> String {
        mac(secret, method, path, ts, body)
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Whether a message was signed with `secret` within [`SKEW`] of `now` (constant-time).
    pub fn verify(
        secret: &[u8],
        method: &str,
        path: &str,
        ts: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> bool {
        let (Some(ts), Some(sig)) = (ts.and_then(|t| t.parse::<i64>().ok()), signature) else {
            return false;
        };
        if (now - ts).abs() > SKEW || sig.len() != 64 {
            return false;
        }
        let Ok(raw) = (0..32)
            .map(|i| u8::from_str_radix(&sig[2 * i..2 * i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
        else {
            return false;
        };
        mac(secret, method, path, ts, body)
            .verify_slice(&raw)
            .is_ok()
    }
}

/// A provider over HTTP (`POST {base}/v1/orders`, `GET {base}/v1/orders/{id}`), as the demo
/// provider process serves it: `https`, or `http` to this computer only; every message signed
/// ([`channel`]).
pub struct HttpProvider {
    base: String,
    secret: Vec<u8>,
    http: reqwest::Client,
    timeout: Duration,
}

/// Why a provider address is refused.
#[derive(Debug, thiserror::Error)]
pub enum ProviderSetupError {
    #[error("the provider address is not an http(s) URL")]
    BadUrl,
    #[error("the provider must be reached over https (http only on this computer)")]
    Insecure,
    #[error("the provider channel needs a shared secret of at least 16 bytes")]
    NoSecret,
}

impl HttpProvider {
    pub fn new(
        base: &str,
        secret: &[u8],
        timeout: Duration,
    ) -> Result<HttpProvider, ProviderSetupError> {
        let url = reqwest::Url::parse(base).map_err(|_| ProviderSetupError::BadUrl)?;
        let host = url.host_str().ok_or(ProviderSetupError::BadUrl)?;
        let local = host.eq_ignore_ascii_case("localhost")
            || host
                .trim_matches(|c| c == '[' || c == ']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|a| a.is_loopback());
        match url.scheme() {
            "https" => {}
            "http" if local => {}
            "http" => return Err(ProviderSetupError::Insecure),
            _ => return Err(ProviderSetupError::BadUrl),
        }
        if secret.len() < 16 {
            return Err(ProviderSetupError::NoSecret);
        }
        Ok(HttpProvider {
            base: base.trim_end_matches('/').to_string(),
            secret: secret.to_vec(),
            http: reqwest::Client::new(),
            timeout,
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<OrderState, ProviderError> {
        let now = chrono::Utc::now().timestamp();
        let sig = channel::sign(&self.secret, method.as_str(), path, now, &body);
        let sent = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(channel::TIMESTAMP, now)
            .header(channel::SIGNATURE, sig)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .timeout(self.timeout)
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return Err(ProviderError::Timeout),
            Err(e) if e.is_connect() => return Err(ProviderError::Unreachable(e.to_string())),
            // the request may have arrived: an uncertain outcome
            Err(e) => {
                tracing::warn!(error = %e, "provider request failed after sending");
                return Err(ProviderError::Timeout);
            }
        };
        let status = resp.status();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (ts, sig) = (header(channel::TIMESTAMP), header(channel::SIGNATURE));
        let bytes = match resp.bytes().await {
            Ok(b) => b,
            Err(e) if e.is_timeout() => return Err(ProviderError::Timeout),
            Err(e) => return Err(ProviderError::BadAnswer(e.to_string())),
        };
        if !status.is_success() {
            return Err(ProviderError::BadAnswer(status.to_string()));
        }
        let now = chrono::Utc::now().timestamp();
        if !channel::verify(
            &self.secret,
            "ANSWER",
            path,
            ts.as_deref(),
            sig.as_deref(),
            &bytes,
            now,
        ) {
            return Err(ProviderError::BadAnswer("the answer is not signed".into()));
        }
        serde_json::from_slice(&bytes).map_err(|e| ProviderError::BadAnswer(e.to_string()))
    }
}

#[async_trait]
impl Provider for HttpProvider {
    async fn fulfil(&self, order: &Order) -> Result<OrderState, ProviderError> {
        let body = serde_json::to_vec(order).expect("an order serializes");
        self.call(reqwest::Method::POST, "/v1/orders", body).await
    }

    async fn status(&self, id: Uuid) -> Result<OrderState, ProviderError> {
        self.call(
            reqwest::Method::GET,
            &format!("/v1/orders/{id}"),
            Vec::new(),
        )
        .await
    }
}

/// How a redemption ends given what the provider says; `None`: not known yet (leave it held and
/// try again later).
fn outcome(state: OrderState) -> Option<Fulfilment> {
    match state {
        OrderState::Done { reference } => Some(Fulfilment::Settled { reference }),
        OrderState::Failed { reason } => Some(Fulfilment::Refunded(RefundReason::ProviderFailed {
            message: reason,
        })),
        OrderState::Cancelled => Some(Fulfilment::Refunded(RefundReason::ProviderTimeout)),
        OrderState::Pending | OrderState::Unknown => None,
    }
}

/// How long a claimed redemption is left to one worker.
pub const LEASE: chrono::Duration = chrono::Duration::seconds(60);

/// Work on what is held now; answers how many redemptions were settled or refunded.
pub async fn tick(
    store: &Arc<dyn Store>,
    provider: &Arc<dyn Provider>,
    clock: &Arc<dyn Clock>,
) -> Result<usize, StoreError> {
    let claimed = store.claim_redemptions(clock.now(), LEASE, 32).await?;
    let answers = futures_util::future::join_all(claimed.iter().map(|c| {
        let order = Order {
            id: c.redemption.id,
            target: c.redemption.target.clone(),
            points: c.redemption.points,
        };
        let provider = provider.clone();
        async move {
            let answer = match provider.fulfil(&order).await {
                // the order may have arrived: ask what became of it rather than guess
                Err(ProviderError::Timeout | ProviderError::BadAnswer(_)) => {
                    provider.status(order.id).await
                }
                other => other,
            };
            (order.id, answer)
        }
    }))
    .await;
    let mut finished = 0;
    for (id, answer) in answers {
        let how = match answer.map(outcome) {
            Ok(Some(how)) => how,
            Ok(None) => {
                tracing::info!(%id, "redemption still in progress at the provider; asked again later");
                continue;
            }
            Err(e) => {
                tracing::warn!(%id, error = %e, "redemption left held; tried again later");
                continue;
            }
        };
        if store
            .finish_redemption(id, how.clone(), clock.now())
            .await?
        {
            tracing::info!(%id, ?how, "redemption finished");
            finished += 1;
        }
    }
    Ok(finished)
}

/// The worker: a tick every `every`, for as long as the server runs.
pub fn spawn(
    store: Arc<dyn Store>,
    provider: Arc<dyn Provider>,
    clock: Arc<dyn Clock>,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(e) = tick(&store, &provider, &clock).await {
                tracing::error!(error = %e, "fulfilment tick failed");
            }
            tokio::time::sleep(every).await;
        }
    })
}

/// The expiry sweep: every `every`, write down the points that expired (expiration entries, for
/// the members' history; balances never wait for it: expiry follows from the time), and forget
/// idempotency records older than `store::rules::IDEMPOTENCY_TTL`.
pub fn spawn_expiry(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            loop {
                match store.record_expirations(clock.now(), 100).await {
                    Ok(0) => break,
                    Ok(n) => tracing::info!(entries = n, "expired points written down"),
                    Err(e) => {
                        tracing::error!(error = %crate::error::chain(&e), "expiry sweep failed");
                        break;
                    }
                }
            }
            let before = clock.now() - crate::store::rules::IDEMPOTENCY_TTL;
            match store.forget_idempotency(before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(records = n, "old idempotency records forgotten"),
                Err(e) => {
                    tracing::error!(error = %crate::error::chain(&e), "forgetting idempotency records failed")
                }
            }
            tokio::time::sleep(every).await;
        }
    })
}
