//! [`AgentMetrics`]: per session and, through [`metrics`](crate::metrics()), for the process.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use serde::Serialize;

use crate::LoopKind;

/// A snapshot of the agent layer's counters, for one session ([`session.metrics()`]) or for
/// every session and every call outside one ([`agent_cache::metrics()`]).
///
/// [`session.metrics()`]: crate::AgentCacheSession::metrics
/// [`agent_cache::metrics()`]: crate::metrics()
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct AgentMetrics {
    /// Read-tool calls served from the cache.
    pub hits: u64,
    /// Read-tool calls that ran the tool.
    pub misses: u64,
    /// Invalidator calls (one per call, though each invalidates before and after it runs).
    pub invalidations: u64,
    /// Loops detected, whatever `OnLoop` then did.
    pub loop_detections: u64,
    /// `hits / (hits + misses)`, or 0.0 when nothing was counted.
    pub hit_rate: f64,
    /// Tool calls: hits, misses and invalidator calls, plus calls a halted workflow stopped.
    pub tool_calls: u64,
    /// Loop detections by kind.
    pub loop_detections_by_kind: LoopDetectionsByKind,
    /// Invalidator calls by resource, as declared (`cart:{user_id}`).
    pub invalidations_by_resource: BTreeMap<String, u64>,
    /// Global resource invalidations received from the other processes of the installed
    /// fleet (process-wide: always 0 in a session's metrics). Each is counted once applied:
    /// when this count has moved, the results it names are gone.
    pub remote_invalidations: u64,
}

/// Loop detections by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct LoopDetectionsByKind {
    /// Same tool, same arguments, too often.
    pub repeat: u64,
    /// Too many tool calls.
    pub depth: u64,
    /// A cycle of calls, repeated.
    pub cycle: u64,
    /// The same call failing again and again.
    pub retry_storm: u64,
}

/// The live counters behind [`AgentMetrics`].
#[derive(Debug)]
pub(crate) struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    invalidations: AtomicU64,
    /// Calls that neither read nor invalidated: stopped by a loop (rare, hence counted
    /// apart; `tool_calls` is derived, so the hit path counts one event, not two).
    halted: AtomicU64,
    detections: [AtomicU64; 4],
    by_resource: Mutex<BTreeMap<&'static str, u64>>,
    remote_invalidations: AtomicU64,
}

/// The events outside sessions, and those of sessions that are gone (each session adds its
/// counters here when it is dropped; live sessions are summed in by
/// [`metrics`](crate::metrics())). A plain `static`: no lazy initialisation to check.
pub(crate) static GLOBAL: Counters = Counters::new();

/// An event, counted in the session it happened in, or globally outside sessions.
#[derive(Clone, Copy)]
pub(crate) enum Event<'a> {
    Hit,
    Miss,
    /// A call stopped because its workflow halted.
    Halted,
    Invalidation(&'a [&'static str]),
    Detection(LoopKind),
}

impl Default for Counters {
    fn default() -> Self {
        Counters::new()
    }
}

impl Counters {
    pub(crate) const fn new() -> Self {
        Counters {
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
            halted: AtomicU64::new(0),
            detections: [const { AtomicU64::new(0) }; 4],
            by_resource: Mutex::new(BTreeMap::new()),
            remote_invalidations: AtomicU64::new(0),
        }
    }

    /// A resource invalidation that came from another process of the fleet, once applied.
    /// Released, and read with `Acquire`: a caller that sees the count sees what it applied.
    pub(crate) fn count_remote_invalidation(&self) {
        self.remote_invalidations.fetch_add(1, Ordering::Release);
    }

    #[inline]
    pub(crate) fn count(&self, event: Event<'_>) {
        let counter = match event {
            Event::Hit => &self.hits,
            Event::Miss => &self.misses,
            Event::Halted => &self.halted,
            Event::Invalidation(resources) => {
                self.count_resources(resources);
                &self.invalidations
            }
            Event::Detection(kind) => &self.detections[kind as usize],
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Kept out of line: `count` is on every tool call's path, this only on invalidations.
    #[inline(never)]
    fn count_resources(&self, resources: &[&'static str]) {
        let mut by_resource = self.by_resource.lock();
        for resource in resources {
            *by_resource.entry(resource).or_insert(0) += 1;
        }
    }

    /// Adds every counter of `self` to `total`.
    pub(crate) fn add_to(&self, total: &Counters) {
        let pairs = [
            (&self.hits, &total.hits),
            (&self.misses, &total.misses),
            (&self.invalidations, &total.invalidations),
            (&self.halted, &total.halted),
            (&self.remote_invalidations, &total.remote_invalidations),
        ];
        let detections = self.detections.iter().zip(&total.detections);
        for (from, to) in pairs.into_iter().chain(detections) {
            to.fetch_add(from.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        let mut by_resource = total.by_resource.lock();
        for (resource, count) in self.by_resource.lock().iter() {
            *by_resource.entry(resource).or_insert(0) += count;
        }
    }

    /// Adds `hits` counted elsewhere (a run's, under its detector's lock).
    pub(crate) fn add_hits(&self, hits: u64) {
        self.hits.fetch_add(hits, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> AgentMetrics {
        self.snapshot_with_hits(0)
    }

    /// A snapshot, with `more_hits` counted elsewhere added in.
    pub(crate) fn snapshot_with_hits(&self, more_hits: u64) -> AgentMetrics {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let (hits, misses) = (get(&self.hits) + more_hits, get(&self.misses));
        let by_kind = LoopDetectionsByKind {
            repeat: get(&self.detections[LoopKind::Repeat as usize]),
            depth: get(&self.detections[LoopKind::Depth as usize]),
            cycle: get(&self.detections[LoopKind::Cycle as usize]),
            retry_storm: get(&self.detections[LoopKind::RetryStorm as usize]),
        };
        #[allow(clippy::cast_precision_loss)] // a ratio
        let hit_rate = if hits + misses == 0 {
            0.0
        } else {
            hits as f64 / (hits + misses) as f64
        };
        AgentMetrics {
            hits,
            misses,
            invalidations: get(&self.invalidations),
            loop_detections: by_kind.repeat + by_kind.depth + by_kind.cycle + by_kind.retry_storm,
            hit_rate,
            tool_calls: hits + misses + get(&self.invalidations) + get(&self.halted),
            loop_detections_by_kind: by_kind,
            invalidations_by_resource: self
                .by_resource
                .lock()
                .iter()
                .map(|(resource, count)| ((*resource).to_owned(), *count))
                .collect(),
            remote_invalidations: self.remote_invalidations.load(Ordering::Acquire),
        }
    }
}
