//! [`FleetStatus`]: what a fleet is doing, for operators and tests.

use std::time::{Duration, Instant};

/// A snapshot of one fleet's link to Redis, from [`Fleet::status`](crate::Fleet::status).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FleetStatus {
    /// Whether this process hears the fleet, and since when.
    pub link: Link,
    /// Invalidations issued and not yet acknowledged by Redis (queued while degraded).
    pub queued: usize,
    /// Invalidations issued by this process since the fleet was built.
    pub issued: u64,
    /// Of those, how many Redis has acknowledged (every one numbered up to this).
    pub acknowledged: u64,
    /// Invalidation messages received from the other processes.
    pub received: u64,
    /// Times the link came back after being lost.
    pub reconnects: u64,
    /// Times every fleet cache of this process was flushed (on losing or regaining the link,
    /// and on a flush of the whole Redis database).
    pub flushes: u64,
    /// Times the queue of undelivered invalidations overflowed into a clear of one cache.
    pub overflows: u64,
    /// Writes to the shared tier that nobody waits for (a loaded value's store, a batch's, a
    /// lease's release) that failed, or that Redis did not answer within `connect_timeout`
    /// and were given up. The value stays cached locally either way.
    pub shared_write_errors: u64,
}

/// Whether a process hears its fleet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Link {
    /// Tracking is on: invalidations flow both ways.
    Connected {
        /// When the link came up.
        since: Instant,
    },
    /// Redis cannot be reached or does not answer: every fleet cache was flushed, entries
    /// stored now live at most `max_staleness`, invalidations wait in the queue.
    Degraded {
        /// When the link was lost (or, before the first connection, when the fleet started).
        since: Instant,
        /// Why: the last connection or command error.
        reason: String,
    },
}

impl Link {
    /// Whether invalidations flow.
    pub fn is_connected(&self) -> bool {
        matches!(self, Link::Connected { .. })
    }

    /// How long the link has been in this state.
    pub fn age(&self) -> Duration {
        match self {
            Link::Connected { since } | Link::Degraded { since, .. } => since.elapsed(),
        }
    }
}

impl FleetStatus {
    /// Whether invalidations flow.
    pub fn is_connected(&self) -> bool {
        self.link.is_connected()
    }
}
