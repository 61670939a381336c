//! The live dashboard: a local web server and one page to try the caches, fire concurrent
//! load at them, run the agent scenarios, watch the metrics and, with `--redis URL`, see the
//! fleet the dashboard shares its caches with.
//!
//! `cargo run -p examples --example dashboard` serves it on <http://127.0.0.1:5001>
//! (`--port N` or the `PORT` variable to change the port; see [`Args`]). Tests start it
//! in-process:
//!
//! ```no_run
//! # async fn start() -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let address = listener.local_addr()?;
//! tokio::spawn(examples::dashboard::serve(listener, None));
//! // http://{address}/ is the page, http://{address}/api/metrics the metrics.
//! # Ok(())
//! # }
//! ```
//!
//! # A fleet of dashboards
//!
//! `cargo run -p examples --example dashboard -- --redis redis://127.0.0.1:6379` (or
//! `REDIS_URL=...`) joins the fleet of every dashboard on that server: run two on two ports,
//! load a key into one, delete it in the other, and the first one's entry is gone, counted in
//! its `remote_invalidations`. Every cache of the page is a fleet cache: the direct
//! `AsyncCache` is the shared fleet cache [`DIRECT_FLEET_NAME`] (values in Redis too: another
//! dashboard's miss reads them), each macro cache names its own in its attribute
//! (`fleet = "dashboard-ttl-skip1"`), and the agent layer's resource invalidations reach the
//! other dashboards too. In code:
//!
//! ```no_run
//! # async fn start() -> Result<(), Box<dyn std::error::Error>> {
//! use examples::dashboard::{self, DashboardFleet};
//!
//! // Fails only on a bad URL; a Redis that cannot be reached leaves the fleet degraded.
//! let fleet = DashboardFleet::connect("redis://127.0.0.1:6379").await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! tokio::spawn(dashboard::serve(listener, Some(fleet))); // installs the fleet
//! # Ok(())
//! # }
//! ```
//!
//! A Redis that cannot be reached does not stop the dashboard: it starts degraded (its fleet
//! caches flushed, every entry capped at [`FLEET_MAX_STALENESS`], invalidations queued),
//! says so on the page and in the metrics, and connects when Redis comes up. Without
//! `--redis` the caches are process-local: `fleet` is `null` in `/api/metrics`, and a macro
//! cache's own `fleet.link` says `not_installed`.
//!
//! # Endpoints
//!
//! | route | what it does |
//! |---|---|
//! | `GET /` | the page (its CSS and JS under `/assets/`) |
//! | `GET /api/config`, `POST /api/config` | the playground's configuration (and `fleet`: its `namespace`, `server` and the direct cache's fleet name, or `null`); setting it rebuilds the direct cache and empties the macro caches (fleet-wide, with a fleet) |
//! | `POST /api/caches/{ttl,lru,direct}/call` | `{"key", "use_cache"?, "batch"?}`: one lookup through that cache, loading from the 100 ms backend on a miss |
//! | `POST /api/caches/{ttl,lru,direct}/clear` | empties that cache (in every dashboard of the fleet, with one) |
//! | `POST /api/direct/warmup` | `{"keys": [...]}`: preloads keys into the direct cache |
//! | `GET`, `PUT`, `DELETE /api/direct/entries/{key}` | get (no load), set (`{"value", "ttl"?}`) and delete one entry; with a fleet, set and delete reach the other dashboards |
//! | `GET /api/agent` | the scenarios, the tools a script can call, the default limits |
//! | `POST /api/agent/scenarios/{name}` | runs a seed scenario with the limits in the body (`max_tool_repeats`, `max_execution_depth`, `on_loop`) |
//! | `POST /api/agent/script` | `{"script", ...limits}`: runs tool calls typed one a line |
//! | `GET /api/metrics` | every cache, the agent layer and the fleet, as JSON (below) |
//! | `GET /metrics` | the same in the Prometheus text format |
//!
//! Bad input gets a 4xx answer `{"error": "..."}` that says what is allowed.
//!
//! `/api/metrics` is `{"caches", "active", "agent", "fleet"}`:
//!
//! - `caches.<name>`: the cache's `CacheMetrics` (`hits`, `misses`, `size`, ..., and the fleet
//!   fields `fleet` (`{"name", "link"}`, `link` one of `connected`, `degraded`,
//!   `not_installed`; `null` for a cache without a fleet or a macro cache not called yet),
//!   `remote_invalidations`, `fleet_flushes`, `fleet_errors`, and the shared tier's
//!   `l2_hits`, `l2_misses`, `fleet_loads`, `lease_waits`, `decode_errors`, `l2_oversize`,
//!   which only the direct cache, shared, moves), plus `target`, `active`,
//!   `declaration`, `fleet_name` (the name it has or would have in a fleet),
//!   `backend_calls` and `backend_keys`;
//! - `active`: the cache each target reaches under the configuration;
//! - `agent`: `agent_cache::metrics()`, `remote_invalidations` included;
//! - `fleet`: `null` without `--redis`, else `namespace`, `server` (the URL without
//!   credentials), `max_staleness_ms`, `link` (`connected` or `degraded`), `age_ms` (how long
//!   in that state), `since_unix_ms`, `reason` (why degraded, else `null`), and the counters
//!   of `cache_redis::FleetStatus`: `queued`, `issued`, `acknowledged`, `received`,
//!   `reconnects`, `flushes`, `overflows`.
//!
//! `/metrics` has the same numbers: `async_cache_*{cache}` per cache (with
//! `async_cache_remote_invalidations_total`, `async_cache_fleet_flushes_total`,
//! `async_cache_fleet_errors_total`, and the shared tier's `async_cache_l2_hits_total`,
//! `..._l2_misses_total`, `..._fleet_loads_total`, `..._lease_waits_total`,
//! `..._decode_errors_total`, `..._l2_oversize_total`), `agent_cache_*` (with
//! `agent_cache_remote_invalidations_total`), and `cache_redis_fleet_*{namespace}`
//! (`connected` 1 or 0, `link_age_seconds`, `max_staleness_seconds`, `queued`, and the
//! counters `issued`, `acknowledged`, `received`, `reconnects`, `flushes`, `overflows` as
//! `..._total`), without samples when there is no fleet.
//!
//! # The caches
//!
//! - `ttl` and `lru`: `async fn (replica: u8, key: String) -> String` cached by
//!   `#[async_ttl(time_to_live = 30, maxsize = 1024, fleet = "...")]` and
//!   `#[async_lru(maxsize = 64, fleet = "...")]`.
//!   Requests are spread round-robin over 4 replicas; `skip_args = 1` (the default) leaves
//!   the replica out of the key. Attributes are fixed at compile time, so each is declared
//!   with `skip_args = 0` and `= 1`, and the configuration picks one.
//! - `direct`: an `AsyncCache<String, String>` built from the configuration (maxsize, TTL,
//!   batch window, max batch size), loaded by a single loader or by its batch loader.
//!
//! Every backend call counts, per cache, in `/api/metrics` (`backend_calls`), so a herd of
//! 100 same-key requests shows its one load.

mod api;
mod args;
mod backend;
mod caches;
mod fleet;
mod input;
mod metrics;
mod page;
mod playground;
mod prometheus;

use std::io;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;

pub use self::args::{Args, ArgsError, USAGE};
pub use self::fleet::{DIRECT_FLEET_NAME, DashboardFleet, FLEET_MAX_STALENESS, FLEET_NAMESPACE};
use self::playground::Playground;

/// The port the dashboard listens on unless told otherwise (the Python demo's).
pub const DEFAULT_PORT: u16 = 5001;

/// The dashboard's routes, over a fresh playground and no fleet. The macro caches and the
/// agent layer are process-wide, so two routers in one process share them.
pub fn router() -> Router {
    router_with(None)
}

/// The dashboard's routes, over a fresh playground whose caches belong to `fleet`.
///
/// With a fleet, this installs it as the process's fleet (`Fleet::install`) before anything
/// else, so the macro caches, built on their first call, and the agent layer join it. A macro
/// cache already called in this process keeps what it was built with.
pub fn router_with(fleet: Option<DashboardFleet>) -> Router {
    if let Some(fleet) = &fleet {
        fleet.fleet().install();
    }
    api::router(Arc::new(Playground::new(fleet)))
}

/// Serves the dashboard on `listener` until the process ends: [`router_with`] `fleet`.
pub async fn serve(listener: TcpListener, fleet: Option<DashboardFleet>) -> io::Result<()> {
    axum::serve(listener, router_with(fleet)).await
}
