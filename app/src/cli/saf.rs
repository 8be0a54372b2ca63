//! `tillctl saf`: the store-and-forward queue.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Subcommand;
use serde_json::json;
use till_pay::engine::forwarder;
use till_pay::link::Backoff;

use super::txn::{HostArgs, TerminalArgs, runtime};
use super::{Done, Failure};

#[derive(Subcommand)]
pub(crate) enum SafCommand {
    /// Queue depth, oldest item, offline approvals not yet with the host, rejected items.
    Status {
        #[command(flatten)]
        terminal: TerminalArgs,
    },
    /// Send what is owed, retrying with backoff until the queue is empty or --max-wait passes.
    Forward {
        #[command(flatten)]
        host: HostArgs,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 60.0)]
        max_wait: f64,
    },
}

pub(crate) fn run(cmd: SafCommand) -> Result<Done, Failure> {
    match cmd {
        SafCommand::Status { terminal } => {
            let (_, j) = terminal.open_journal()?;
            let q = j
                .queue_status()
                .map_err(|e| Failure::new("journal", e.to_string()))?;
            let rejected = j
                .search(&till_pay::journal::Query {
                    status: Some("advice_rejected".into()),
                    ..Default::default()
                })
                .map_err(|e| Failure::new("journal", e.to_string()))?;
            Ok(Done::Json(
                json!({"queue": q, "rejected": rejected.iter().map(super::journal::shown).collect::<Vec<_>>()}),
            ))
        }
        SafCommand::Forward { host, max_wait } => {
            let terminal = host.open(|_| Ok(()))?;
            let terminal = Arc::new(tokio::sync::Mutex::new(terminal));
            let backoff = Backoff::default();
            let deadline = Instant::now() + Duration::from_secs_f64(max_wait.max(0.0));
            runtime()?.block_on(async move {
                let mut delivered = 0;
                let mut rounds = 0u32;
                loop {
                    let round = forwarder::forward_once(&terminal).await;
                    delivered += round.delivered;
                    rounds += 1;
                    if round.still_owed == 0 || Instant::now() >= deadline {
                        let queue = terminal.lock().await.queue_status();
                        let mut v =
                            json!({"delivered": delivered, "rounds": rounds, "queue": queue});
                        if queue.depth > 0 {
                            // Why it is still owed, and what to do.
                            v["problem"] = json!(round.problem.unwrap_or_else(|| {
                                "the host did not acknowledge what is owed".into()
                            }));
                        }
                        return Ok(if queue.depth == 0 {
                            Done::Json(v)
                        } else {
                            Done::Declined(v)
                        });
                    }
                    let wait = backoff
                        .delay(rounds)
                        .min(deadline.saturating_duration_since(Instant::now()));
                    tokio::time::sleep(wait).await;
                }
            })
        }
    }
}
