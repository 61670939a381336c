//! [`DashboardFleet`]: the dashboard's link to the other dashboards on one Redis, and
//! [`FleetSnapshot`], what `/api/metrics` and `/metrics` say about it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cache_redis::{Fleet, FleetError, FleetStatus, Link};
use serde_json::{Value, json};

/// The namespace of the dashboards' fleet: the prefix of every Redis key it writes.
pub const FLEET_NAMESPACE: &str = "dashboard";

/// How long a dashboard serves an entry at most while it cannot hear the fleet.
pub const FLEET_MAX_STALENESS: Duration = Duration::from_secs(1);

/// The fleet name of the direct `AsyncCache` (the macro caches name theirs in their
/// attributes: `dashboard-ttl-skip0`, `-ttl-skip1`, `-lru-skip0`, `-lru-skip1`).
pub const DIRECT_FLEET_NAME: &str = "dashboard-direct";

/// A dashboard's fleet: every dashboard started with the same `--redis URL` shares the
/// invalidations of its caches with the others. Give it to
/// [`router_with`](super::router_with) or [`serve`](super::serve).
#[derive(Clone, Debug)]
pub struct DashboardFleet {
    fleet: Fleet,
    server: String,
}

impl DashboardFleet {
    /// Connects to the Redis (or Valkey) server at `url`, in the namespace
    /// [`FLEET_NAMESPACE`], with [`FLEET_MAX_STALENESS`]. Fails only on a URL that is not a
    /// Redis URL: a server that cannot be reached leaves the fleet degraded and reconnecting
    /// in the background, and the dashboard works as it does without one.
    pub async fn connect(url: &str) -> Result<Self, FleetError> {
        let fleet = Fleet::builder(url)
            .namespace(FLEET_NAMESPACE)
            .max_staleness(FLEET_MAX_STALENESS)
            .connect()
            .await?;
        Ok(DashboardFleet {
            fleet,
            server: redacted(url),
        })
    }

    /// The fleet itself.
    pub fn fleet(&self) -> &Fleet {
        &self.fleet
    }

    /// The server's URL as the page shows it: without credentials or query.
    pub fn server(&self) -> &str {
        &self.server
    }
}

/// `url` without what may hold a password: the user part and the query.
fn redacted(url: &str) -> String {
    let url = url.trim();
    let url = url.split_once('?').map_or(url, |(base, _)| base);
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}{path}"),
        None => url.to_owned(),
    }
}

/// The fleet at the moment of a metrics snapshot.
#[derive(Clone, Debug)]
pub(crate) struct FleetSnapshot {
    pub(crate) namespace: String,
    pub(crate) server: String,
    pub(crate) max_staleness: Duration,
    pub(crate) status: FleetStatus,
}

impl FleetSnapshot {
    pub(crate) fn take(fleet: &DashboardFleet) -> Self {
        FleetSnapshot {
            namespace: fleet.fleet.namespace().to_owned(),
            server: fleet.server.clone(),
            max_staleness: fleet.fleet.max_staleness(),
            status: fleet.fleet.status(),
        }
    }

    /// `"connected"` or `"degraded"`.
    pub(crate) fn link_name(&self) -> &'static str {
        match self.status.link {
            Link::Connected { .. } => "connected",
            Link::Degraded { .. } => "degraded",
        }
    }

    /// The `fleet` object of `/api/metrics`.
    pub(crate) fn to_json(&self) -> Value {
        let status = &self.status;
        let age = status.link.age();
        let reason = match &status.link {
            Link::Connected { .. } => None,
            Link::Degraded { reason, .. } => Some(reason.as_str()),
        };
        let since = SystemTime::now()
            .checked_sub(age)
            .and_then(|since| since.duration_since(UNIX_EPOCH).ok())
            .map(|since| since.as_millis() as u64);
        json!({
            "namespace": self.namespace,
            "server": self.server,
            "max_staleness_ms": self.max_staleness.as_millis() as u64,
            "link": self.link_name(),
            "age_ms": age.as_millis() as u64,
            "since_unix_ms": since,
            "reason": reason,
            "queued": status.queued,
            "issued": status.issued,
            "acknowledged": status.acknowledged,
            "received": status.received,
            "reconnects": status.reconnects,
            "flushes": status.flushes,
            "overflows": status.overflows,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_is_shown_without_credentials() {
        assert_eq!(
            redacted("redis://127.0.0.1:6379/0"),
            "redis://127.0.0.1:6379/0"
        );
        assert_eq!(
            redacted("redis://user:s3cret@cache.internal:6379/2"),
            "redis://***@cache.internal:6379/2"
        );
        assert_eq!(redacted("rediss://:p@w@h:1"), "rediss://***@h:1");
        assert_eq!(
            redacted("redis+unix:///run/redis.sock?pass=s3cret"),
            "redis+unix:///run/redis.sock"
        );
    }
}
