//! The store-and-forward forwarder: sends what the terminal owes the host
//! (reversals first, then advices, oldest first) whenever something is owed,
//! and backs off — exponentially, with jitter — while the host does not
//! take it.
//!
//! It shares the terminal with the flows through a mutex, so it never has a
//! request in flight at the same time as a sale.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, Notify, watch};

use super::{StateStore, Terminal};
use crate::link::{Backoff, HostLink};

/// What one round of the forwarder did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Round {
    /// Items the host acknowledged.
    pub delivered: usize,
    /// Items still owed afterwards.
    pub still_owed: usize,
    /// Why the round stopped with something still owed, in words for the
    /// operator (e.g. the host could not be reached, or asked for a new
    /// sign-in); `None` when nothing is owed.
    pub problem: Option<String>,
}

/// Acknowledgements journaled together while draining (see [`Terminal::drain`]).
pub const DRAIN_BATCH: usize = 50;

/// Sends what is owed once; an error of the flows (not signed in, journal
/// trouble) counts as nothing delivered.
pub async fn forward_once<L: HostLink, S: StateStore>(terminal: &Mutex<Terminal<L, S>>) -> Round {
    let mut t = terminal.lock().await;
    let (delivered, problem) = match t.drain(DRAIN_BATCH).await {
        Ok(reports) => (
            reports.iter().filter(|r| r.acknowledged).count(),
            reports
                .iter()
                .rfind(|r| !r.acknowledged)
                .map(|r| r.reason.clone()),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "forwarder could not send");
            (0, Some(e.to_string()))
        }
    };
    let still_owed = t.queue_status().depth;
    Round {
        delivered,
        still_owed,
        problem: problem.filter(|_| still_owed > 0),
    }
}

/// Runs until `stop` turns true: whenever something is owed, sends it; after
/// a round that left something owed, waits `backoff.delay(n)` (n = failed
/// rounds in a row) before the next; when nothing is owed, waits for `wake`
/// (notify it after queueing an offline approval) or `idle_check`.
pub async fn run<L: HostLink, S: StateStore>(
    terminal: Arc<Mutex<Terminal<L, S>>>,
    backoff: Backoff,
    idle_check: Duration,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let mut failures: u32 = 0;
    loop {
        if *stop.borrow() {
            return;
        }
        let round = forward_once(&terminal).await;
        let wait = if round.still_owed == 0 {
            failures = 0;
            idle_check
        } else {
            failures = failures.saturating_add(1);
            backoff.delay(failures)
        };
        tracing::debug!(
            delivered = round.delivered,
            owed = round.still_owed,
            wait_ms = wait.as_millis() as u64,
            "forwarder round"
        );
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = wake.notified() => {}
            r = stop.changed() => if r.is_err() { return },
        }
    }
}
