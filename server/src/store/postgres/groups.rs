//! Requests decided in groups, one transaction per group (the races: grants and sign-ups).
//!
//! Each kind of group has one task per instance: it takes every request waiting in its bounded
//! queue (up to [`MAX_GROUP`]), has them judged in one transaction on its own connection, and
//! answers each only after that transaction committed. A full queue answers `busy` (503) at
//! once; a group that fails to commit answers each of its requests with the error; a panic
//! answers its own group (their reply senders drop) and the next group goes on.

use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::Pool;

use crate::store::rules::retrying;
use crate::store::StoreError;

/// Requests judged in one transaction at most.
pub const MAX_GROUP: usize = 256;
/// Requests waiting for a group at most (beyond, `busy`).
const QUEUE: usize = 8192;

type Reply<A> = tokio::sync::oneshot::Sender<Result<A, StoreError>>;

/// How one kind of group is judged.
#[async_trait]
pub(super) trait Judge: Send + Sync + 'static {
    type Job: Send + Sync + 'static;
    type Answer: Send + 'static;
    /// What the group is called in the log.
    const WHAT: &'static str;
    /// Every job's answer, in order, which holds only if this returns `Ok` (the transaction
    /// committed). Run again whole when it fails on a deadlock or a serialization failure.
    async fn judge(
        &self,
        pool: &Pool,
        jobs: &[Self::Job],
    ) -> Result<Vec<Result<Self::Answer, StoreError>>, StoreError>;
    /// Called when no request came for [`Judge::IDLE`] and when the queue closes.
    async fn idle(&self, _pool: &Pool) {}
    /// See [`Judge::idle`].
    const IDLE: std::time::Duration = std::time::Duration::from_secs(1);
}

/// The queue of one kind of group; the task ends (after [`Judge::idle`]) when this is dropped.
pub(super) struct Groups<J: Judge> {
    queue: tokio::sync::mpsc::Sender<(J::Job, Reply<J::Answer>)>,
}

impl<J: Judge> Clone for Groups<J> {
    fn clone(&self) -> Groups<J> {
        Groups {
            queue: self.queue.clone(),
        }
    }
}

impl<J: Judge> Groups<J> {
    /// Start the task, on `pool` (its own: a burst of requests on the store's pool must not keep
    /// the groups waiting for a connection), on a thread of its own with its own runtime, where
    /// the pool's connection lives too. On the server's runtime, each of a group's round trips
    /// waited behind the requests that the last group's answers let in (measured at a sign-up
    /// burst: a `BEGIN` took 2-10 ms, a group 10-25 ms); the thread ends when the queue closes.
    ///
    /// The runtime is made on the thread itself (a runtime dropped in the caller's async context
    /// would panic) and says whether it could be made before `start` returns.
    pub fn start(pool: Pool, judge: Arc<J>) -> Result<Groups<J>, StoreError> {
        let (queue, rx) = tokio::sync::mpsc::channel(QUEUE);
        let (made, runtime_made) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name(format!("{}-groups", J::WHAT))
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => {
                        let _ = made.send(Ok(()));
                        runtime.block_on(run(pool, judge, rx));
                    }
                    Err(e) => {
                        let _ = made.send(Err(e));
                    }
                }
            })
            .map_err(StoreError::Thread)?;
        runtime_made
            .recv()
            .map_err(|_| StoreError::WriterGone)?
            .map_err(StoreError::Thread)?;
        Ok(Groups { queue })
    }

    /// The answer to `job`, once its group committed.
    pub async fn ask(&self, job: J::Job) -> Result<J::Answer, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.queue.try_send((job, reply)).map_err(|e| match e {
            tokio::sync::mpsc::error::TrySendError::Full(_) => StoreError::Busy,
            tokio::sync::mpsc::error::TrySendError::Closed(_) => StoreError::WriterGone,
        })?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }
}

async fn run<J: Judge>(
    pool: Pool,
    judge: Arc<J>,
    mut rx: tokio::sync::mpsc::Receiver<(J::Job, Reply<J::Answer>)>,
) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    loop {
        let got = match tokio::time::timeout(J::IDLE, rx.recv_many(&mut group, MAX_GROUP)).await {
            Ok(got) => got,
            Err(_) => {
                judge.idle(&pool).await;
                continue;
            }
        };
        if got == 0 {
            judge.idle(&pool).await;
            return;
        }
        let (jobs, replies): (Vec<J::Job>, Vec<Reply<J::Answer>>) =
            std::mem::take(&mut group).into_iter().unzip();
        let (pool, judge) = (pool.clone(), judge.clone());
        let done = tokio::spawn(async move {
            match retrying(|| judge.judge(&pool, &jobs)).await {
                Ok(answers) => {
                    for (reply, answer) in replies.into_iter().zip(answers) {
                        let _ = reply.send(answer);
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, size = jobs.len(), what = J::WHAT, "a group failed to commit");
                    let e = Arc::new(e);
                    for reply in replies {
                        let _ = reply.send(Err(StoreError::GroupFailed(e.clone())));
                    }
                }
            }
        })
        .await;
        if let Err(e) = done {
            tracing::error!(error = %e, what = J::WHAT, "a group's task failed");
        }
    }
}
