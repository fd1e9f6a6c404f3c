//! Sync: push the outbox, then pull changes page by page.
//!
//! As in atuin, the decisions are pure functions ([`push_batches`], [`outbox_actions`]) over plain
//! data, and [`run`] only does the IO they describe. Pushing first means a change made on this
//! device is on the server before the pull can bring back an older value of the same thing.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use unionpass_core::api::{Mutation, MutationOutcome, PushRequest, PushResponse};
use unionpass_core::ErrorCode;
use uuid::Uuid;

use crate::api::Api;
use crate::error::{ClientError, Result};
use crate::secrets::Sensitive;
use crate::store::{OutboxEntry, Store};

/// The most mutations sent in one push request.
pub const PUSH_BATCH: usize = 100;
/// The most pull pages in one sync (a safety stop against a server that always says `more`).
pub const MAX_PAGES: usize = 1000;

/// Split the pending outbox, oldest first, into push requests.
pub fn push_batches(pending: &[OutboxEntry]) -> Vec<PushRequest> {
    pending
        .chunks(PUSH_BATCH)
        .map(|chunk| PushRequest {
            mutations: chunk.iter().map(|e| e.mutation.clone()).collect(),
        })
        .collect()
}

/// What to do with one sent outbox entry after the server answered.
#[derive(Clone, Debug, PartialEq)]
pub enum OutboxAction {
    /// Applied (now or before): remove it.
    Remove(Uuid),
    /// Refused for good: keep it, marked, so the member sees why.
    Reject {
        id: Uuid,
        code: ErrorCode,
        message: String,
    },
    /// The answer did not mention it: leave it pending and send it again next time.
    Keep(Uuid),
}

/// Match the server's answer to what was sent.
pub fn outbox_actions(sent: &[Mutation], resp: &PushResponse) -> Vec<OutboxAction> {
    sent.iter()
        .map(|m| match resp.results.iter().find(|r| r.id == m.id) {
            Some(r) => match &r.outcome {
                MutationOutcome::Applied => OutboxAction::Remove(m.id),
                MutationOutcome::Rejected { code, message } => OutboxAction::Reject {
                    id: m.id,
                    code: *code,
                    message: message.clone(),
                },
            },
            None => OutboxAction::Keep(m.id),
        })
        .collect()
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub pushed: usize,
    pub rejected: usize,
    pub pulled: usize,
}

fn lock(store: &Mutex<Store>) -> std::sync::MutexGuard<'_, Store> {
    // a panic while holding the lock cannot leave SQLite half-written (transactions roll back)
    store.lock().unwrap_or_else(|p| p.into_inner())
}

/// Push the outbox, oldest first, in batches: applied changes leave it, refused ones are kept
/// to be shown. The first part of a sync; on its own before a sign-out.
pub async fn push(
    store: &Mutex<Store>,
    api: &Api,
    token: &Sensitive<String>,
) -> Result<SyncReport> {
    let mut report = SyncReport::default();
    let pending = lock(store).pending()?;
    for batch in push_batches(&pending) {
        let ids: Vec<Uuid> = batch.mutations.iter().map(|m| m.id).collect();
        lock(store).mark_attempted(&ids)?;
        let resp = api.push(token, &batch).await?;
        let s = lock(store);
        for action in outbox_actions(&batch.mutations, &resp) {
            match action {
                OutboxAction::Remove(id) => {
                    s.remove_applied(id)?;
                    report.pushed += 1;
                }
                OutboxAction::Reject { id, code, message } => {
                    s.mark_rejected(id, code, &message)?;
                    report.rejected += 1;
                }
                OutboxAction::Keep(_) => {}
            }
        }
    }
    Ok(report)
}

/// One full sync. The store lock is never held across a network call.
pub async fn run(
    store: &Mutex<Store>,
    api: &Api,
    token: &Sensitive<String>,
    now: DateTime<Utc>,
) -> Result<SyncReport> {
    let mut report = push(store, api, token).await?;
    for _ in 0..MAX_PAGES {
        let cursor = lock(store).cursor()?;
        let page = api.sync(token, cursor).await?;
        if page.cursor < cursor {
            return Err(ClientError::BadResponse(format!(
                "the server moved the sync cursor back from {cursor} to {}",
                page.cursor
            )));
        }
        report.pulled += lock(store).apply_sync(&page, now)?;
        if !page.more {
            break;
        }
    }
    // A staff device is a scanner: refresh its trust list, events and check-ins.
    let staff = lock(store)
        .profile()?
        .is_some_and(|p| p.role == unionpass_core::api::Role::Staff);
    if staff {
        let have = lock(store).bundle_digests()?;
        let bundle = api.scanner(token, &have).await?;
        lock(store).apply_bundle(&bundle, now)?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use unionpass_core::api::{MutationOp, MutationResult};
    use unionpass_core::Lang;

    fn m(n: u128) -> Mutation {
        Mutation {
            id: Uuid::from_u128(n),
            created_at: "2026-11-29T08:00:00Z".parse().unwrap(),
            op: MutationOp::SetLanguage { language: Lang::En },
        }
    }

    #[test]
    fn batches_keep_order_and_size() {
        let pending: Vec<OutboxEntry> = (0..250)
            .map(|n| OutboxEntry {
                mutation: m(n),
                attempts: 0,
            })
            .collect();
        let batches = push_batches(&pending);
        assert_eq!(
            batches
                .iter()
                .map(|b| b.mutations.len())
                .collect::<Vec<_>>(),
            vec![100, 100, 50]
        );
        assert_eq!(batches[1].mutations[0].id, Uuid::from_u128(100));
        assert!(push_batches(&[]).is_empty());
    }

    #[test]
    fn actions_follow_the_answer_by_id_not_position() {
        let sent = vec![m(1), m(2), m(3)];
        let resp = PushResponse {
            results: vec![
                MutationResult {
                    id: Uuid::from_u128(2),
                    outcome: MutationOutcome::Rejected {
                        code: ErrorCode::Forbidden,
                        message: "no".into(),
                    },
                    replayed: false,
                },
                MutationResult {
                    id: Uuid::from_u128(1),
                    outcome: MutationOutcome::Applied,
                    replayed: true,
                },
            ],
        };
        assert_eq!(
            outbox_actions(&sent, &resp),
            vec![
                OutboxAction::Remove(Uuid::from_u128(1)),
                OutboxAction::Reject {
                    id: Uuid::from_u128(2),
                    code: ErrorCode::Forbidden,
                    message: "no".into()
                },
                OutboxAction::Keep(Uuid::from_u128(3)),
            ]
        );
    }
}
