//! [`MetricsSnapshot`]: every playground cache, the agent layer and the fleet at one moment,
//! as the JSON of `/api/metrics` (the Prometheus text of `/metrics` is rendered from the same
//! snapshot).

use agent_cache::AgentMetrics;
use cache_core::CacheMetrics;
use serde_json::{Value, json};

use super::backend::{self, BackendStats};
use super::caches::{CacheId, MacroCache, Target};
use super::fleet::FleetSnapshot;
use super::playground::Playground;

/// One cache at the moment of the snapshot.
#[derive(Clone, Debug)]
pub(crate) struct CacheSnapshot {
    pub(crate) id: CacheId,
    /// Whether requests to its target reach it under the current configuration.
    pub(crate) active: bool,
    pub(crate) metrics: CacheMetrics,
    pub(crate) backend: BackendStats,
}

/// Every cache of the playground, the agent layer's process-wide metrics and the fleet.
#[derive(Clone, Debug)]
pub(crate) struct MetricsSnapshot {
    pub(crate) caches: Vec<CacheSnapshot>,
    pub(crate) agent: AgentMetrics,
    /// `None` for a dashboard started without `--redis`.
    pub(crate) fleet: Option<FleetSnapshot>,
}

impl MetricsSnapshot {
    /// Reads every counter now.
    pub(crate) fn take(playground: &Playground) -> Self {
        let active = Target::ALL.map(|target| playground.active(target));
        let caches = CacheId::ALL
            .into_iter()
            .map(|id| CacheSnapshot {
                id,
                active: active.contains(&id),
                metrics: playground.metrics(id),
                backend: backend::stats(id),
            })
            .collect();
        MetricsSnapshot {
            caches,
            agent: agent_cache::metrics(),
            fleet: playground.fleet().map(FleetSnapshot::take),
        }
    }

    /// The `/api/metrics` document: `caches` by name (each cache's `CacheMetrics` fields plus
    /// its target, whether it is active, its declaration, its fleet name and its backend
    /// calls), `active` (the cache each target reaches), `agent` (`agent_cache::metrics()`)
    /// and `fleet` (the fleet's status, `null` without one).
    pub(crate) fn to_json(&self) -> Value {
        let caches: serde_json::Map<String, Value> = self
            .caches
            .iter()
            .map(|cache| (cache.id.name().to_owned(), cache_json(cache)))
            .collect();
        let active: serde_json::Map<String, Value> = self
            .caches
            .iter()
            .filter(|cache| cache.active)
            .map(|cache| (cache.id.target().name().to_owned(), json!(cache.id.name())))
            .collect();
        json!({
            "caches": caches,
            "active": active,
            "agent": self.agent,
            "fleet": self.fleet.as_ref().map(FleetSnapshot::to_json),
        })
    }
}

fn cache_json(cache: &CacheSnapshot) -> Value {
    let mut object = json!(cache.metrics);
    let declaration = match cache.id {
        CacheId::Macro(cache) => MacroCache::declaration(cache),
        CacheId::Direct => "AsyncCache<String, String> (configured on the page)",
    };
    if let Value::Object(fields) = &mut object {
        fields.insert("target".into(), json!(cache.id.target()));
        fields.insert("active".into(), json!(cache.active));
        fields.insert("declaration".into(), json!(declaration));
        fields.insert("fleet_name".into(), json!(cache.id.fleet_name()));
        fields.insert("backend_calls".into(), json!(cache.backend.calls));
        fields.insert("backend_keys".into(), json!(cache.backend.keys));
    }
    object
}
