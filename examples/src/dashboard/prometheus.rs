//! The Prometheus text exposition format (version 0.0.4) of a [`MetricsSnapshot`]: one
//! family per counter, each sample labelled with its `cache` (or, for the agent layer, the
//! loop `kind` or the invalidated `resource`; for the fleet, its `namespace`).

use std::fmt::Write;

use super::fleet::FleetSnapshot;
use super::metrics::{CacheSnapshot, MetricsSnapshot};

/// The `Content-Type` of the exposition.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One family of per-cache samples.
struct CacheFamily {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    /// The cache's sample; `None` leaves the cache out (an unbounded cache has no capacity).
    value: fn(&CacheSnapshot) -> Option<f64>,
}

const CACHE_FAMILIES: [CacheFamily; 20] = [
    family(
        "async_cache_hits_total",
        "counter",
        "Lookups served from the cache (reset by clear).",
        |c| Some(c.metrics.hits as f64),
    ),
    family(
        "async_cache_misses_total",
        "counter",
        "Lookups that found no live value, each caller of a shared load included (reset by clear).",
        |c| Some(c.metrics.misses as f64),
    ),
    family(
        "async_cache_loads_total",
        "counter",
        "Loader executions: one per coalesced load, one per batch call.",
        |c| Some(c.metrics.loads as f64),
    ),
    family(
        "async_cache_load_errors_total",
        "counter",
        "Loads that returned an error or panicked.",
        |c| Some(c.metrics.load_errors as f64),
    ),
    family(
        "async_cache_evictions_total",
        "counter",
        "Entries removed to respect the size bound.",
        |c| Some(c.metrics.evictions as f64),
    ),
    family(
        "async_cache_expirations_total",
        "counter",
        "Entries removed because their time to live passed.",
        |c| Some(c.metrics.expirations as f64),
    ),
    family("async_cache_size", "gauge", "Entries held.", |c| {
        Some(c.metrics.size as f64)
    }),
    family(
        "async_cache_capacity",
        "gauge",
        "The size bound, for bounded caches.",
        |c| c.metrics.capacity.map(|n| n as f64),
    ),
    family(
        "async_cache_hit_rate",
        "gauge",
        "hits / (hits + misses) since the last clear; 0 before any lookup.",
        |c| Some(c.metrics.hit_rate),
    ),
    family(
        "async_cache_remote_invalidations_total",
        "counter",
        "Invalidations and clears received from the other processes of the fleet and applied.",
        |c| Some(c.metrics.remote_invalidations as f64),
    ),
    family(
        "async_cache_fleet_flushes_total",
        "counter",
        "Times the cache was emptied because the process stopped or started hearing its fleet.",
        |c| Some(c.metrics.fleet_flushes as f64),
    ),
    family(
        "async_cache_fleet_errors_total",
        "counter",
        "Fleet messages the cache could not apply or encode (each replaced by a coarser, never stale, action).",
        |c| Some(c.metrics.fleet_errors as f64),
    ),
    family(
        "async_cache_l2_hits_total",
        "counter",
        "Shared fleet cache: local misses answered by the fleet's shared tier (Redis).",
        |c| Some(c.metrics.l2_hits as f64),
    ),
    family(
        "async_cache_l2_misses_total",
        "counter",
        "Shared fleet cache: local misses the shared tier had no value for.",
        |c| Some(c.metrics.l2_misses as f64),
    ),
    family(
        "async_cache_fleet_loads_total",
        "counter",
        "Shared fleet cache: loads this process ran for the whole fleet, holding its lease.",
        |c| Some(c.metrics.fleet_loads as f64),
    ),
    family(
        "async_cache_lease_waits_total",
        "counter",
        "Shared fleet cache: times a call waited for another process's load of its key.",
        |c| Some(c.metrics.lease_waits as f64),
    ),
    family(
        "async_cache_decode_errors_total",
        "counter",
        "Shared fleet cache: values in the shared tier that did not decode (misses, overwritten).",
        |c| Some(c.metrics.decode_errors as f64),
    ),
    family(
        "async_cache_l2_oversize_total",
        "counter",
        "Shared fleet cache: values too large for the shared tier, kept in this process only.",
        |c| Some(c.metrics.l2_oversize as f64),
    ),
    family(
        "dashboard_backend_calls_total",
        "counter",
        "Calls that reached the simulated 100 ms backend through the cache.",
        |c| Some(c.backend.calls as f64),
    ),
    family(
        "dashboard_backend_keys_total",
        "counter",
        "Keys fetched by those backend calls (a batch call fetches many).",
        |c| Some(c.backend.keys as f64),
    ),
];

const fn family(
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    value: fn(&CacheSnapshot) -> Option<f64>,
) -> CacheFamily {
    CacheFamily {
        name,
        kind,
        help,
        value,
    }
}

/// Renders `snapshot` in the text exposition format.
pub(crate) fn render(snapshot: &MetricsSnapshot) -> String {
    let mut out = String::new();
    for family in &CACHE_FAMILIES {
        let samples = snapshot.caches.iter().filter_map(|cache| {
            let value = (family.value)(cache)?;
            Some((vec![("cache", cache.id.name())], value))
        });
        write_family(&mut out, family.name, family.kind, family.help, samples);
    }

    let agent = &snapshot.agent;
    let scalars = [
        (
            "agent_cache_hits_total",
            "counter",
            "Agent read-tool calls served from the cache.",
            agent.hits as f64,
        ),
        (
            "agent_cache_misses_total",
            "counter",
            "Agent read-tool calls that ran the tool.",
            agent.misses as f64,
        ),
        (
            "agent_cache_invalidations_total",
            "counter",
            "Agent invalidator calls.",
            agent.invalidations as f64,
        ),
        (
            "agent_cache_tool_calls_total",
            "counter",
            "Agent tool calls recorded by loop detection, hits included.",
            agent.tool_calls as f64,
        ),
        (
            "agent_cache_remote_invalidations_total",
            "counter",
            "Agent resource invalidations received from the other processes of the fleet.",
            agent.remote_invalidations as f64,
        ),
        (
            "agent_cache_hit_rate",
            "gauge",
            "Agent hits / (hits + misses); 0 before any read.",
            agent.hit_rate,
        ),
    ];
    for (name, kind, help, value) in scalars {
        write_family(&mut out, name, kind, help, [(Vec::new(), value)]);
    }
    let by_kind = agent.loop_detections_by_kind;
    let detections = [
        ("repeat", by_kind.repeat),
        ("depth", by_kind.depth),
        ("cycle", by_kind.cycle),
        ("retry_storm", by_kind.retry_storm),
    ]
    .map(|(kind, count)| (vec![("kind", kind)], count as f64));
    write_family(
        &mut out,
        "agent_cache_loop_detections_total",
        "counter",
        "Runaway loops detected in agent sessions, by kind.",
        detections,
    );
    let by_resource = agent
        .invalidations_by_resource
        .iter()
        .map(|(resource, count)| (vec![("resource", resource.as_str())], *count as f64));
    write_family(
        &mut out,
        "agent_cache_resource_invalidations_total",
        "counter",
        "Agent invalidator calls by declared resource (a call with two resources counts in both).",
        by_resource,
    );
    write_fleet(&mut out, snapshot.fleet.as_ref());
    out
}

/// The fleet's families, labelled with its `namespace`; without a fleet, each family is
/// there with no sample (no fleet is not a degraded one).
fn write_fleet(out: &mut String, fleet: Option<&FleetSnapshot>) {
    type Sample = fn(&FleetSnapshot) -> f64;
    let families: [(&str, &str, &str, Sample); 10] = [
        (
            "cache_redis_fleet_connected",
            "gauge",
            "1 while the process hears its fleet, 0 while degraded (caches flushed, entries capped at max_staleness, invalidations queued).",
            |f| f64::from(u8::from(f.status.is_connected())),
        ),
        (
            "cache_redis_fleet_link_age_seconds",
            "gauge",
            "How long the link has been connected, or degraded.",
            |f| f.status.link.age().as_secs_f64(),
        ),
        (
            "cache_redis_fleet_max_staleness_seconds",
            "gauge",
            "The longest an entry is served while the process cannot hear the fleet.",
            |f| f.max_staleness.as_secs_f64(),
        ),
        (
            "cache_redis_fleet_queued",
            "gauge",
            "Invalidations issued and not yet acknowledged by Redis (queued while degraded).",
            |f| f.status.queued as f64,
        ),
        (
            "cache_redis_fleet_issued_total",
            "counter",
            "Invalidations this process issued to the fleet.",
            |f| f.status.issued as f64,
        ),
        (
            "cache_redis_fleet_acknowledged_total",
            "counter",
            "Of those, how many Redis acknowledged.",
            |f| f.status.acknowledged as f64,
        ),
        (
            "cache_redis_fleet_received_total",
            "counter",
            "Invalidation messages received from the other processes.",
            |f| f.status.received as f64,
        ),
        (
            "cache_redis_fleet_reconnects_total",
            "counter",
            "Times the link came back after being lost.",
            |f| f.status.reconnects as f64,
        ),
        (
            "cache_redis_fleet_flushes_total",
            "counter",
            "Times every fleet cache of the process was flushed (link lost or regained, Redis flushed).",
            |f| f.status.flushes as f64,
        ),
        (
            "cache_redis_fleet_overflows_total",
            "counter",
            "Times the queue of undelivered invalidations overflowed into a clear of one cache.",
            |f| f.status.overflows as f64,
        ),
    ];
    for (name, kind, help, value) in families {
        let samples = fleet.map(|f| (vec![("namespace", f.namespace.as_str())], value(f)));
        write_family(out, name, kind, help, samples);
    }
}

fn write_family<'a>(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    samples: impl IntoIterator<Item = (Vec<(&'a str, &'a str)>, f64)>,
) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        out.push_str(name);
        if !labels.is_empty() {
            let labels: Vec<String> = labels
                .iter()
                .map(|(label, value)| format!("{label}=\"{}\"", escape_label(value)))
                .collect();
            let _ = write!(out, "{{{}}}", labels.join(","));
        }
        let _ = writeln!(out, " {}", format_value(value));
    }
}

fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        value.to_string()
    }
}

fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_and_help_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(escape_help("x\\y\nz \"q\""), "x\\\\y\\nz \"q\"");
        assert_eq!(format_value(3.0), "3");
        assert_eq!(format_value(0.25), "0.25");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
    }

    #[test]
    fn a_family_is_help_then_type_then_samples() {
        let mut out = String::new();
        write_family(
            &mut out,
            "x_total",
            "counter",
            "Xs.",
            [(vec![("cache", "a")], 1.0), (vec![("cache", "b")], 2.5)],
        );
        assert_eq!(
            out,
            "# HELP x_total Xs.\n# TYPE x_total counter\nx_total{cache=\"a\"} 1\nx_total{cache=\"b\"} 2.5\n"
        );
    }
}
