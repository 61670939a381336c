//! The cache playground's endpoints: configuration, calls, clear, warmup, and set, get and
//! delete on the direct cache.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::error::{ApiError, JsonBody};
use crate::dashboard::backend::LATENCY;
use crate::dashboard::caches::{CacheId, MacroCache, REPLICAS, Target};
use crate::dashboard::fleet::DIRECT_FLEET_NAME;
use crate::dashboard::input::Fields;
use crate::dashboard::playground::{CallOptions, Playground, PlaygroundConfig};

/// The longest key a request may use, in bytes.
const MAX_KEY_LEN: usize = 256;
/// The most keys one warmup may load.
const MAX_WARMUP_KEYS: usize = 1_000;

pub(super) fn routes() -> Router<Arc<Playground>> {
    Router::new()
        .route("/api/config", get(config).post(configure))
        .route("/api/caches/{target}/call", post(call))
        .route("/api/caches/{target}/clear", post(clear))
        .route("/api/direct/warmup", post(warmup))
        .route(
            "/api/direct/entries/{key}",
            get(get_entry).put(set_entry).delete(delete_entry),
        )
}

fn target(name: &str) -> Result<Target, ApiError> {
    Target::parse(name).ok_or_else(|| {
        ApiError::not_found(format!(
            "unknown cache kind {name:?}: the kinds are {}",
            Target::NAMES.join(", ")
        ))
    })
}

fn key(key: String) -> Result<String, ApiError> {
    if key.len() > MAX_KEY_LEN {
        return Err(ApiError::bad_request(format!(
            "key must be at most {MAX_KEY_LEN} bytes long, got {} bytes",
            key.len()
        )));
    }
    Ok(key)
}

/// `GET /api/config`: the configuration, what each target is made of, and the fleet the
/// caches are in (`null` without one).
async fn config(State(playground): State<Arc<Playground>>) -> Json<Value> {
    Json(config_json(&playground))
}

fn config_json(playground: &Playground) -> Value {
    let declarations = |target| {
        [0, 1]
            .map(|skip_args| MacroCache::for_target(target, skip_args).map(MacroCache::declaration))
    };
    json!({
        "config": playground.config().to_json(),
        "active": {
            "ttl": playground.active(Target::Ttl).name(),
            "lru": playground.active(Target::Lru).name(),
            "direct": CacheId::Direct.name(),
        },
        "declarations": {
            "ttl": declarations(Target::Ttl),
            "lru": declarations(Target::Lru),
        },
        "replicas": REPLICAS,
        "backend_latency_ms": LATENCY.as_millis(),
        "fleet": playground.fleet().map(|fleet| json!({
            "namespace": fleet.fleet().namespace(),
            "server": fleet.server(),
            "direct": DIRECT_FLEET_NAME,
        })),
    })
}

/// `POST /api/config` with any of `maxsize`, `ttl` (seconds; `0`, `""` or `"never"`: never
/// expire), `skip_args` (0 or 1), `batch_window_ms`, `max_batch_size`: rebuilds the direct
/// cache with them and empties the macro caches.
async fn configure(
    State(playground): State<Arc<Playground>>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let fields = Fields::of(body, &PlaygroundConfig::FIELDS)?;
    let config = playground.config().updated(&fields)?;
    playground.configure(config);
    let mut answer = config_json(&playground);
    answer["status"] = json!("configured");
    Ok(Json(answer))
}

/// `POST /api/caches/{ttl|lru|direct}/call` with `key`, and `use_cache: false` (macro
/// targets: reload through the `refresh` helper) or `batch: true` (direct: use the batch
/// loader).
async fn call(
    State(playground): State<Arc<Playground>>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let target = target(&name)?;
    let fields = Fields::of(body, &["key", "use_cache", "batch"])?;
    let key = fields
        .text("key", MAX_KEY_LEN)?
        .ok_or_else(|| ApiError::bad_request("key is required"))?;
    let options = CallOptions {
        bypass_cache: !fields.flag("use_cache")?.unwrap_or(true),
        batch: fields.flag("batch")?.unwrap_or(false),
    };
    if options.batch && target != Target::Direct {
        return Err(ApiError::bad_request(
            "batch applies to the direct cache only: a macro-cached fn loads one key per call",
        ));
    }
    if options.bypass_cache && target == Target::Direct {
        return Err(ApiError::bad_request(
            "use_cache applies to the macro targets only (it calls their refresh helper)",
        ));
    }
    let outcome = playground.call(target, key.clone(), options).await;
    Ok(Json(json!({
        "target": target,
        "cache": outcome.cache.name(),
        "key": key,
        "value": outcome.value,
        "in_flight": outcome.in_flight,
    })))
}

/// `POST /api/caches/{ttl|lru|direct}/clear`: empties the target's active cache.
async fn clear(
    State(playground): State<Arc<Playground>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let target = target(&name)?;
    let cache = playground.clear(target);
    Ok(Json(json!({
        "status": "cleared",
        "target": target,
        "cache": cache.name(),
    })))
}

/// `POST /api/direct/warmup` with `keys`: preloads them into the direct cache.
async fn warmup(
    State(playground): State<Arc<Playground>>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let fields = Fields::of(body, &["keys"])?;
    let keys = fields
        .text_list("keys", MAX_WARMUP_KEYS, MAX_KEY_LEN)?
        .ok_or_else(|| ApiError::bad_request("keys is required: a list of strings"))?;
    let report = playground.warmup(keys).await;
    Ok(Json(json!({
        "status": "warmed",
        "loaded": report.loaded,
        "skipped": report.skipped,
        "failed": report.failed,
        "metrics": playground.metrics(CacheId::Direct),
    })))
}

/// `GET /api/direct/entries/{key}`: the cached value or `null`, without loading.
async fn get_entry(
    State(playground): State<Arc<Playground>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let key = key(name)?;
    let value = playground.get(&key);
    Ok(Json(
        json!({ "key": key, "hit": value.is_some(), "value": value }),
    ))
}

/// `PUT /api/direct/entries/{key}` with `value` and optionally `ttl` (seconds; `0`, `""` or
/// `"never"`: never expire; absent: the cache's default).
async fn set_entry(
    State(playground): State<Arc<Playground>>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let key = key(name)?;
    let fields = Fields::of(body, &["value", "ttl"])?;
    let value = fields
        .text("value", 4_096)?
        .ok_or_else(|| ApiError::bad_request("value is required"))?;
    let ttl = fields.seconds_or_never("ttl", 86_400.0)?;
    playground.set(key.clone(), value, ttl);
    let ttl = match ttl {
        None => json!("default"),
        Some(ttl) => json!(ttl.map(|ttl| ttl.as_secs_f64())),
    };
    Ok(Json(json!({ "status": "set", "key": key, "ttl": ttl })))
}

/// `DELETE /api/direct/entries/{key}`: invalidates the entry (and any load of it in flight).
async fn delete_entry(
    State(playground): State<Arc<Playground>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let key = key(name)?;
    let held = playground.delete(&key);
    Ok(Json(
        json!({ "status": "deleted", "key": key, "held": held }),
    ))
}
