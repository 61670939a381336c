//! How a scenario records its tool calls, and its simulated backend.

use std::fmt::Debug;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use agent_cache::AgentCacheSession;
use parking_lot::Mutex;
use tokio::time::sleep;

use super::{LATENCY, Marker, Report, Step};

pub(super) static BACKEND_CALLS: AtomicU64 = AtomicU64::new(0);
pub(super) static RUNS: AtomicU64 = AtomicU64::new(0);

pub(super) async fn backend<T>(value: T) -> T {
    BACKEND_CALLS.fetch_add(1, Ordering::SeqCst);
    sleep(LATENCY).await;
    value
}

/// Records each call of one session, classified by the session's metrics around it.
pub(super) struct Timeline {
    session: AgentCacheSession,
    steps: Mutex<Vec<Step>>,
}

impl Timeline {
    pub(super) fn new(session: AgentCacheSession) -> Self {
        Timeline {
            session,
            steps: Mutex::new(Vec::new()),
        }
    }

    pub(super) async fn call<T: Debug>(&self, call: String, tool: impl Future<Output = T>) -> T {
        let before = self.session.metrics();
        // Recorded before the call: if the call completes a loop and halts the workflow,
        // this step is the one that did it.
        self.steps.lock().push(Step {
            call,
            marker: Marker::LoopDetected,
            detail: String::new(),
        });
        let output = tool.await;
        let after = self.session.metrics();
        let marker = if after.loop_detections > before.loop_detections {
            Marker::LoopWarned
        } else if after.invalidations > before.invalidations {
            Marker::Invalidation
        } else if after.hits > before.hits {
            Marker::Hit
        } else {
            Marker::Miss
        };
        let detail = format!("{output:?}");
        let marker = if detail.starts_with("Err") && marker != Marker::LoopWarned {
            Marker::Error
        } else {
            marker
        };
        if let Some(step) = self.steps.lock().last_mut() {
            step.marker = marker;
            step.detail = detail;
        }
        output
    }

    pub(super) async fn finish<T>(
        &self,
        title: &'static str,
        backend_before: u64,
        workflow: impl Future<Output = T>,
        summary: impl FnOnce(T) -> String,
    ) -> Report {
        let outcome = self.session.run(workflow).await;
        let mut steps = std::mem::take(&mut *self.steps.lock());
        let outcome = match outcome {
            Ok(output) => Ok(summary(output)),
            Err(error) => {
                if let Some(step) = steps.last_mut() {
                    step.detail = error.to_string();
                }
                Err(error.to_string())
            }
        };
        Report {
            title,
            steps,
            outcome,
            metrics: self.session.metrics(),
            backend_calls: BACKEND_CALLS.load(Ordering::SeqCst) - backend_before,
        }
    }
}

pub(super) fn fresh(id: &str) -> String {
    format!("{id}#{}", RUNS.fetch_add(1, Ordering::Relaxed))
}
