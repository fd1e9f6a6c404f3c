//! Fulfilment of held redemptions: the phone carrier, the power company and the catalog's
//! warehouse are outside our control, so they sit behind the [`Provider`] trait.
//!
//! The worker claims held redemptions (a lease, so two server instances never work on the same
//! one at once), asks the provider, then settles or refunds in one transaction with the ledger
//! entry:
//! - done → settle (the points are spent);
//! - refused → refund, with the provider's reason for the member;
//! - no answer within the timeout → refund (`provider_timeout`). The provider contract says an
//!   order it did not confirm in time is not fulfilled; the demo provider keeps it.
//! - provider unreachable (the order never left) → left held; the lease runs out and it is tried
//!   again. The order id is the redemption id, so the provider fulfils it at most once.

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

/// The provider's answer, as the demo provider sends it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum OrderAnswer {
    Done { reference: String },
    Failed { reason: String },
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("the provider did not answer in time")]
    Timeout,
    #[error("the provider cannot be reached: {0}")]
    Unreachable(String),
    #[error("the provider answered something unreadable: {0}")]
    BadAnswer(String),
}

#[async_trait]
pub trait Provider: Send + Sync + 'static {
    async fn fulfil(&self, order: &Order) -> Result<OrderAnswer, ProviderError>;
}

/// A provider over HTTP (`POST {base}/v1/orders`), as the demo provider process serves it.
pub struct HttpProvider {
    base: String,
    http: reqwest::Client,
    timeout: Duration,
}

impl HttpProvider {
    pub fn new(base: &str, timeout: Duration) -> HttpProvider {
        HttpProvider {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
            timeout,
        }
    }
}

#[async_trait]
impl Provider for HttpProvider {
    async fn fulfil(&self, order: &Order) -> Result<OrderAnswer, ProviderError> {
        let sent = self
            .http
            .post(format!("{}/v1/orders", self.base))
            .json(order)
            .timeout(self.timeout)
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return Err(ProviderError::Timeout),
            Err(e) if e.is_connect() => return Err(ProviderError::Unreachable(e.to_string())),
            // the request may have arrived: treat like no answer
            Err(_) => return Err(ProviderError::Timeout),
        };
        if !resp.status().is_success() {
            return Err(ProviderError::BadAnswer(resp.status().to_string()));
        }
        match resp.json::<OrderAnswer>().await {
            Ok(a) => Ok(a),
            Err(e) if e.is_timeout() => Err(ProviderError::Timeout),
            Err(e) => Err(ProviderError::BadAnswer(e.to_string())),
        }
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
        async move { (order.id, provider.fulfil(&order).await) }
    }))
    .await;
    let mut finished = 0;
    for (id, answer) in answers {
        let how = match answer {
            Ok(OrderAnswer::Done { reference }) => Fulfilment::Settled { reference },
            Ok(OrderAnswer::Failed { reason }) => {
                Fulfilment::Refunded(RefundReason::ProviderFailed { message: reason })
            }
            Err(ProviderError::Timeout) => Fulfilment::Refunded(RefundReason::ProviderTimeout),
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
/// the members' history). Balances never wait for it: expiry follows from the time.
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
                        tracing::error!(error = %e, "expiry sweep failed");
                        break;
                    }
                }
            }
            tokio::time::sleep(every).await;
        }
    })
}
