//! The playground's caches: four functions cached by `#[async_ttl]` and `#[async_lru]`, and a
//! direct `AsyncCache` (built by the [`Playground`](super::playground::Playground)).
//!
//! Attributes are compile-time: a macro cache's `maxsize` and `time_to_live` cannot change
//! while the server runs. So the playground declares each attribute twice, once per
//! `skip_args` choice, and "configure" picks which one the requests reach; the page shows
//! the attributes as written here.
//!
//! Each attribute names its cache in the fleet (`fleet = "dashboard-ttl-skip1"`): with
//! `--redis URL` the dashboard installs its fleet before any of them is first called, so
//! they share their invalidations with every other dashboard on that Redis; without it they
//! are process-local, and their metrics say so (`fleet.link: "not_installed"`).

use cache_core::{CacheMetrics, async_lru, async_ttl};
use serde::Serialize;

use super::backend;
use super::fleet::DIRECT_FLEET_NAME;

/// How many replicas the requests to a macro cache are spread over, round-robin. Each cached
/// fn takes the replica as its first argument, which `skip_args = 1` leaves out of the key.
pub(crate) const REPLICAS: u8 = 4;

/// The kinds of cache a request can target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Target {
    /// A function cached by `#[async_ttl]`.
    Ttl,
    /// A function cached by `#[async_lru]`.
    Lru,
    /// The direct `AsyncCache`, with a single loader or the batch loader.
    Direct,
}

impl Target {
    /// The names requests use, for error messages.
    pub(crate) const NAMES: [&str; 3] = ["ttl", "lru", "direct"];

    /// Every target, in the order of [`NAMES`](Self::NAMES).
    pub(crate) const ALL: [Target; 3] = [Target::Ttl, Target::Lru, Target::Direct];

    /// The target named `name` in a request path.
    pub(crate) fn parse(name: &str) -> Option<Self> {
        Target::ALL.into_iter().find(|target| target.name() == name)
    }

    /// Its name in request paths and metrics.
    pub(crate) fn name(self) -> &'static str {
        Target::NAMES[self as usize]
    }
}

/// One of the four macro-cached functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MacroCache {
    /// `#[async_ttl]`, keyed by `(replica, key)`.
    TtlPerReplica,
    /// `#[async_ttl(skip_args = 1)]`, keyed by `key`.
    TtlShared,
    /// `#[async_lru]`, keyed by `(replica, key)`.
    LruPerReplica,
    /// `#[async_lru(skip_args = 1)]`, keyed by `key`.
    LruShared,
}

/// Every cache of the playground, as named in metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CacheId {
    /// A macro-cached function.
    Macro(MacroCache),
    /// The direct `AsyncCache`.
    Direct,
}

impl CacheId {
    /// Every cache, in the order metrics list them.
    pub(crate) const ALL: [CacheId; 5] = [
        CacheId::Macro(MacroCache::TtlShared),
        CacheId::Macro(MacroCache::TtlPerReplica),
        CacheId::Macro(MacroCache::LruShared),
        CacheId::Macro(MacroCache::LruPerReplica),
        CacheId::Direct,
    ];

    /// A dense index, for per-cache counters.
    pub(crate) fn index(self) -> usize {
        match self {
            CacheId::Macro(cache) => cache as usize,
            CacheId::Direct => 4,
        }
    }

    /// The `cache` label in metrics.
    pub(crate) fn name(self) -> &'static str {
        match self {
            CacheId::Macro(MacroCache::TtlPerReplica) => "ttl_skip0",
            CacheId::Macro(MacroCache::TtlShared) => "ttl_skip1",
            CacheId::Macro(MacroCache::LruPerReplica) => "lru_skip0",
            CacheId::Macro(MacroCache::LruShared) => "lru_skip1",
            CacheId::Direct => "direct",
        }
    }

    /// Its name in the dashboards' fleet, as its attribute (or, for the direct cache, the
    /// playground) declares it: caches of one name share their invalidations across every
    /// dashboard started with the same `--redis URL`.
    pub(crate) fn fleet_name(self) -> &'static str {
        match self {
            CacheId::Macro(MacroCache::TtlPerReplica) => "dashboard-ttl-skip0",
            CacheId::Macro(MacroCache::TtlShared) => "dashboard-ttl-skip1",
            CacheId::Macro(MacroCache::LruPerReplica) => "dashboard-lru-skip0",
            CacheId::Macro(MacroCache::LruShared) => "dashboard-lru-skip1",
            CacheId::Direct => DIRECT_FLEET_NAME,
        }
    }

    /// The kind of cache it is.
    pub(crate) fn target(self) -> Target {
        match self {
            CacheId::Macro(MacroCache::TtlPerReplica | MacroCache::TtlShared) => Target::Ttl,
            CacheId::Macro(MacroCache::LruPerReplica | MacroCache::LruShared) => Target::Lru,
            CacheId::Direct => Target::Direct,
        }
    }
}

impl MacroCache {
    /// The cache a macro target uses for a `skip_args` choice (0 or 1).
    pub(crate) fn for_target(target: Target, skip_args: u8) -> Option<Self> {
        match (target, skip_args) {
            (Target::Ttl, 0) => Some(MacroCache::TtlPerReplica),
            (Target::Ttl, _) => Some(MacroCache::TtlShared),
            (Target::Lru, 0) => Some(MacroCache::LruPerReplica),
            (Target::Lru, _) => Some(MacroCache::LruShared),
            (Target::Direct, _) => None,
        }
    }

    /// The function as declared below, for the page.
    pub(crate) fn declaration(self) -> &'static str {
        match self {
            MacroCache::TtlPerReplica => {
                "#[async_ttl(time_to_live = 30, maxsize = 1024, fleet = \"dashboard-ttl-skip0\")]\nasync fn ttl_per_replica(replica: u8, key: String) -> String"
            }
            MacroCache::TtlShared => {
                "#[async_ttl(time_to_live = 30, maxsize = 1024, skip_args = 1, fleet = \"dashboard-ttl-skip1\")]\nasync fn ttl_shared(replica: u8, key: String) -> String"
            }
            MacroCache::LruPerReplica => {
                "#[async_lru(maxsize = 64, fleet = \"dashboard-lru-skip0\")]\nasync fn lru_per_replica(replica: u8, key: String) -> String"
            }
            MacroCache::LruShared => {
                "#[async_lru(maxsize = 64, skip_args = 1, fleet = \"dashboard-lru-skip1\")]\nasync fn lru_shared(replica: u8, key: String) -> String"
            }
        }
    }

    /// Calls the function, or its `refresh` helper when `use_cache` is false (a reload that
    /// bypasses the cache and stores the fresh value).
    pub(crate) async fn call(self, replica: u8, key: String, use_cache: bool) -> String {
        match (self, use_cache) {
            (MacroCache::TtlPerReplica, true) => ttl_per_replica(replica, key).await,
            (MacroCache::TtlPerReplica, false) => ttl_per_replica::refresh(replica, key).await,
            (MacroCache::TtlShared, true) => ttl_shared(replica, key).await,
            (MacroCache::TtlShared, false) => ttl_shared::refresh(replica, key).await,
            (MacroCache::LruPerReplica, true) => lru_per_replica(replica, key).await,
            (MacroCache::LruPerReplica, false) => lru_per_replica::refresh(replica, key).await,
            (MacroCache::LruShared, true) => lru_shared(replica, key).await,
            (MacroCache::LruShared, false) => lru_shared::refresh(replica, key).await,
        }
    }

    /// The function's cache metrics.
    pub(crate) fn metrics(self) -> CacheMetrics {
        match self {
            MacroCache::TtlPerReplica => ttl_per_replica::metrics(),
            MacroCache::TtlShared => ttl_shared::metrics(),
            MacroCache::LruPerReplica => lru_per_replica::metrics(),
            MacroCache::LruShared => lru_shared::metrics(),
        }
    }

    /// Empties the function's cache (and resets its hit and miss counters).
    pub(crate) fn clear(self) {
        match self {
            MacroCache::TtlPerReplica => ttl_per_replica::clear(),
            MacroCache::TtlShared => ttl_shared::clear(),
            MacroCache::LruPerReplica => lru_per_replica::clear(),
            MacroCache::LruShared => lru_shared::clear(),
        }
    }
}

/// What a macro-cached function returns: the backend's value, and the replica whose call
/// loaded it (with `skip_args = 1`, every replica is served the first one's load).
async fn fetch(cache: MacroCache, replica: u8, key: &str) -> String {
    let value = backend::load(CacheId::Macro(cache), key).await;
    format!("{value} (replica {replica})")
}

#[async_ttl(time_to_live = 30, maxsize = 1024, fleet = "dashboard-ttl-skip0")]
async fn ttl_per_replica(replica: u8, key: String) -> String {
    fetch(MacroCache::TtlPerReplica, replica, &key).await
}

#[async_ttl(
    time_to_live = 30,
    maxsize = 1024,
    skip_args = 1,
    fleet = "dashboard-ttl-skip1"
)]
async fn ttl_shared(replica: u8, key: String) -> String {
    fetch(MacroCache::TtlShared, replica, &key).await
}

#[async_lru(maxsize = 64, fleet = "dashboard-lru-skip0")]
async fn lru_per_replica(replica: u8, key: String) -> String {
    fetch(MacroCache::LruPerReplica, replica, &key).await
}

#[async_lru(maxsize = 64, skip_args = 1, fleet = "dashboard-lru-skip1")]
async fn lru_shared(replica: u8, key: String) -> String {
    fetch(MacroCache::LruShared, replica, &key).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_macro_cache_is_shown_with_the_fleet_name_it_is_declared_with() {
        for id in CacheId::ALL {
            if let CacheId::Macro(cache) = id {
                let declared = format!("fleet = \"{}\")]", id.fleet_name());
                assert!(
                    cache.declaration().contains(&declared),
                    "{}: {}",
                    id.name(),
                    cache.declaration()
                );
            }
        }
    }
}
