//! The shared tier (L2, `fleet.cache(..).shared()`) against a real `redis-server`: an L2 hit
//! against a raw redis-rs GET of the same bytes, a herd over four OS processes against
//! `cached`'s `AsyncRedisCache`, a batch of 10,000 keys through the tier against one GET per
//! key, and the value codecs compared (size and time for a realistic struct, and bytes per
//! entry in Redis).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cache_core::AsyncCache;
use cache_core::fleet::{Postcard, ValueCodec};
use cache_redis::Fleet;
use cached::ConcurrentCachedAsync;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use tests::redis_server::RedisServer;

use crate::Settings;
use crate::report::Table;

pub const L2_HIT: &str = "fleet L2: local miss, Redis hit (µs per call)";
pub const L2_OURS: &str = "AsyncCache::get_with, shared fleet cache";
pub const L2_RAW: &str = "redis-rs GET of the same bytes";
pub const HERD: &str = "fleet L2: herd, 4 processes x 2,500 callers, cold key, 50 ms loader";
pub const HERD_OURS: &str = "shared fleet cache: loads";
pub const HERD_CACHED: &str = "cached 4.1 AsyncRedisCache: loads";
pub const BATCH: &str = "fleet L2: 10,000 keys in Redis (ms)";
pub const CODEC: &str = "fleet L2 codecs: a user record";
pub const IN_REDIS: &str = "fleet L2: bytes per entry in Redis (MEMORY USAGE)";

/// A realistic value: a user row with strings, a list, numbers and options.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
    email: String,
    roles: Vec<String>,
    created_at_ms: u64,
    last_login_ms: Option<u64>,
    active: bool,
    balance_cents: i64,
    locale: String,
}

fn user(id: u64) -> User {
    User {
        id,
        name: format!("User Number {id}"),
        email: format!("user{id}@example.com"),
        roles: vec!["customer".into(), "newsletter".into()],
        created_at_ms: 1_700_000_000_000 + id,
        last_login_ms: Some(1_764_000_000_000 + id * 7),
        active: !id.is_multiple_of(3),
        balance_cents: 12_345 - id as i64,
        locale: "en-GB".into(),
    }
}

/// JSON, for the comparison.
struct Json;

impl ValueCodec for Json {
    fn encode<V: Serialize>(value: &V) -> Option<Vec<u8>> {
        serde_json::to_vec(value).ok()
    }

    fn decode<V: serde::de::DeserializeOwned>(bytes: &[u8]) -> Option<V> {
        serde_json::from_slice(bytes).ok()
    }
}

pub fn run(settings: &Settings, table: &mut Table) {
    codecs(settings, table);
    if !RedisServer::is_installed() {
        table.push_noted(
            L2_HIT,
            L2_OURS,
            None,
            "µs",
            "redis-server not found: `cargo xtask setup` installs it",
        );
        return;
    }
    let redis = RedisServer::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let fleet = connect(&redis.url()).await;
        l2_hit(settings, table, &redis, &fleet).await;
        batch(table, &redis, &fleet).await;
        in_redis(table, &redis, &fleet).await;
    });
    herd(table, &redis);
}

async fn connect(url: &str) -> Fleet {
    Fleet::builder(url)
        .namespace("bench")
        .connect()
        .await
        .expect("a valid URL")
}

/// Encoded size, and encode and decode time, of the user record in each codec.
fn codecs(settings: &Settings, table: &mut Table) {
    let value = user(42);
    let rounds = settings.ops / 20;
    let time = |f: &dyn Fn()| {
        let start = Instant::now();
        for _ in 0..rounds {
            f();
        }
        start.elapsed().as_nanos() as f64 / rounds as f64
    };
    type Codec = (&'static str, fn(&User) -> Vec<u8>, fn(&[u8]) -> User);
    let codecs: [Codec; 4] = [
        (
            "postcard (the default)",
            |v| Postcard::encode(v).expect("encodes"),
            |b| Postcard::decode(b).expect("decodes"),
        ),
        (
            "MessagePack (rmp-serde)",
            |v| rmp_serde::to_vec(v).expect("encodes"),
            |b| rmp_serde::from_slice(b).expect("decodes"),
        ),
        (
            "bitcode (serde)",
            |v| bitcode::serialize(v).expect("encodes"),
            |b| bitcode::deserialize(b).expect("decodes"),
        ),
        (
            "JSON (serde_json)",
            |v| serde_json::to_vec(v).expect("encodes"),
            |b| serde_json::from_slice(b).expect("decodes"),
        ),
    ];
    for (name, encode, decode) in codecs {
        let bytes = encode(&value);
        assert_eq!(decode(&bytes), value, "{name} round-trips");
        let encode_ns = time(&|| drop(std::hint::black_box(encode(std::hint::black_box(&value)))));
        let decode_ns = time(&|| drop(std::hint::black_box(decode(std::hint::black_box(&bytes)))));
        table.push_noted(
            CODEC,
            name,
            Some(bytes.len() as f64),
            "B",
            format!("encode {encode_ns:.0} ns, decode {decode_ns:.0} ns"),
        );
    }
}

/// Sequential L2 hits (every local lookup misses: the cache keeps nothing locally) against
/// sequential GETs of the same value keys on a connection of this runtime.
async fn l2_hit(settings: &Settings, table: &mut Table, redis: &RedisServer, fleet: &Fleet) {
    const KEYS: u64 = 1_000;
    let cache: AsyncCache<u64, User> = AsyncCache::builder()
        .maxsize(0)
        .fleet(fleet.cache("hit").shared())
        .build();
    for k in 0..KEYS {
        cache.get_with(k, async move { user(k) }).await;
    }
    let mut raw = raw(redis).await;
    let value_keys = value_keys("hit", KEYS);
    stored(&mut raw, &value_keys).await;
    let calls = (settings.ops / 200).max(2_000);
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..settings.rounds {
        let start = Instant::now();
        for i in 0..calls {
            let k = i as u64 % KEYS;
            let value = cache.get_with(k, async { unreachable!("an L2 hit") }).await;
            std::hint::black_box(value);
        }
        ours.push(start.elapsed().as_secs_f64() * 1e6 / calls as f64);
        let start = Instant::now();
        for i in 0..calls {
            let bytes: Vec<u8> = raw.get(&value_keys[i % KEYS as usize]).await.expect("GET");
            std::hint::black_box(bytes);
        }
        theirs.push(start.elapsed().as_secs_f64() * 1e6 / calls as f64);
    }
    let m = cache.metrics();
    assert_eq!(m.loads, KEYS, "every timed call an L2 hit");
    let note = format!(
        "{calls} calls a round, loopback; ours: MGET (epoch, value) + PTTL in one round trip, decoded"
    );
    table.push_noted(
        L2_HIT,
        L2_OURS,
        Some(crate::peers::median(ours)),
        "µs",
        note.clone(),
    );
    table.push_noted(
        L2_HIT,
        L2_RAW,
        Some(crate::peers::median(theirs)),
        "µs",
        note,
    );
}

/// 10,000 keys in Redis, read through a batch loader (one request per window of up to
/// 10,000 keys) against one GET per key, sequential and concurrent.
async fn batch(table: &mut Table, redis: &RedisServer, fleet: &Fleet) {
    const KEYS: u64 = 10_000;
    let writer: AsyncCache<u64, User> = AsyncCache::builder()
        .maxsize(0)
        .fleet(fleet.cache("batch").shared())
        .build();
    for k in 0..KEYS {
        writer.get_with(k, async move { user(k) }).await;
    }
    let mut raw = raw(redis).await;
    let value_keys = value_keys("batch", KEYS);
    stored(&mut raw, &value_keys).await;
    let reader: AsyncCache<u64, User> = AsyncCache::builder()
        .maxsize(20_000)
        .max_batch_size(10_000)
        .batch_window(Duration::from_millis(1))
        .fleet(fleet.cache("batch").shared())
        .build();
    let loader = reader.batch_loader(|keys: Vec<u64>| async move {
        Ok::<_, String>(
            keys.into_iter()
                .map(|k| (k, user(k)))
                .collect::<HashMap<_, _>>(),
        )
    });
    let start = Instant::now();
    let found = futures_util::future::join_all((0..KEYS).map(|k| loader.load(k))).await;
    let ours = start.elapsed().as_secs_f64() * 1e3;
    assert!(found.iter().all(|v| matches!(v, Ok(Some(_)))));
    assert_eq!(reader.metrics().l2_hits, KEYS, "all from Redis");
    assert_eq!(reader.metrics().loads, 0, "the batch function never ran");

    let start = Instant::now();
    for key in &value_keys {
        let bytes: Vec<u8> = raw.get(key).await.expect("GET");
        std::hint::black_box(bytes);
    }
    let sequential = start.elapsed().as_secs_f64() * 1e3;
    let start = Instant::now();
    let gets = value_keys.iter().map(|key| {
        let mut raw = raw.clone();
        async move { raw.get::<_, Vec<u8>>(key).await.expect("GET") }
    });
    std::hint::black_box(futures_util::future::join_all(gets).await);
    let concurrent = start.elapsed().as_secs_f64() * 1e3;
    table.push_noted(
        BATCH,
        "BatchLoader on a shared fleet cache",
        Some(ours),
        "ms",
        "one request per window, values decoded",
    );
    table.push_noted(
        BATCH,
        "redis-rs: one GET per key, in turn",
        Some(sequential),
        "ms",
        "",
    );
    table.push_noted(
        BATCH,
        "redis-rs: one GET per key, all at once (pipelined)",
        Some(concurrent),
        "ms",
        "",
    );
}

/// What one entry takes in Redis with postcard and with JSON values.
async fn in_redis(table: &mut Table, redis: &RedisServer, fleet: &Fleet) {
    const KEYS: u64 = 1_000;
    let postcard: AsyncCache<u64, User> = AsyncCache::builder()
        .maxsize(0)
        .fleet(fleet.cache("postcard").shared())
        .build();
    let json: AsyncCache<u64, User> = AsyncCache::builder()
        .maxsize(0)
        .fleet(fleet.cache("json").shared().codec::<Json>())
        .build();
    for k in 0..KEYS {
        postcard.get_with(k, async move { user(k) }).await;
        json.get_with(k, async move { user(k) }).await;
    }
    let mut raw = raw(redis).await;
    for (name, label) in [("postcard", "postcard (the default)"), ("json", "JSON")] {
        let keys = value_keys(name, KEYS);
        stored(&mut raw, &keys).await;
        let (mut memory, mut record) = (0u64, 0u64);
        for key in &keys {
            let usage: Option<u64> = redis::cmd("MEMORY")
                .arg("USAGE")
                .arg(key)
                .query_async(&mut raw)
                .await
                .expect("MEMORY USAGE");
            memory += usage.unwrap_or(0);
            record += raw.strlen::<_, u64>(key).await.expect("STRLEN");
        }
        table.push_noted(
            IN_REDIS,
            label,
            Some(memory as f64 / KEYS as f64),
            "B",
            format!(
                "value on the wire {:.0} B (with its epoch|schema| header)",
                record as f64 / KEYS as f64
            ),
        );
    }
}

/// A connection of this runtime, as a user of redis-rs would make.
async fn raw(redis: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url())
        .expect("a URL")
        .get_multiplexed_async_connection()
        .await
        .expect("connects")
}

/// The Redis keys of the values of `u64` keys `0..n` in the shared cache `cache`.
fn value_keys(cache: &str, n: u64) -> Vec<Vec<u8>> {
    (0..n)
        .map(|k| {
            let key = postcard::to_allocvec(&k).expect("a u64 encodes");
            [format!("bench:d:{cache}\0").as_bytes(), &key].concat()
        })
        .collect()
}

/// Until every one of `keys` is in Redis (stores run on their own).
async fn stored(raw: &mut redis::aio::MultiplexedConnection, keys: &[Vec<u8>]) {
    for key in keys {
        while !raw.exists::<_, bool>(key).await.expect("EXISTS") {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// Four processes (this runner, started with `--shared-herd-peer`), each with 2,500
/// concurrent callers of one cold key whose loader takes 50 ms: through a shared fleet cache,
/// then through `cached`'s `AsyncRedisCache` (no herd protection: every caller that misses
/// loads).
fn herd(table: &mut Table, redis: &RedisServer) {
    for (mode, row) in [("ours", HERD_OURS), ("cached", HERD_CACHED)] {
        let mut peers: Vec<_> = (0..4)
            .map(|_| {
                let mut peer = Command::new(std::env::current_exe().expect("the runner"))
                    .args(["--shared-herd-peer", &redis.url(), mode])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("a peer starts");
                let stdin = peer.stdin.take().expect("piped");
                let lines = BufReader::new(peer.stdout.take().expect("piped")).lines();
                (peer, stdin, lines)
            })
            .collect();
        for (_, _, lines) in &mut peers {
            assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("ready"));
        }
        let start = Instant::now();
        for (_, stdin, _) in &mut peers {
            let _ = writeln!(stdin, "go");
        }
        let loads: u64 = peers
            .iter_mut()
            .map(|(_, _, lines)| {
                let line = lines.next().and_then(Result::ok).unwrap_or_default();
                line.parse::<u64>().expect("the peer's loads")
            })
            .sum();
        let elapsed = start.elapsed().as_secs_f64() * 1e3;
        for (mut peer, _, _) in peers {
            let _ = peer.wait();
        }
        table.push_noted(
            HERD,
            row,
            Some(loads as f64),
            "loads",
            format!("{elapsed:.0} ms for all 10,000 callers"),
        );
    }
}

/// One process of [`herd`].
pub fn herd_peer(url: &str, mode: &str) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let loads = Arc::new(AtomicU64::new(0));
    let load = {
        let loads = Arc::clone(&loads);
        move || {
            let loads = Arc::clone(&loads);
            async move {
                loads.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
                user(1)
            }
        }
    };
    runtime.block_on(async {
        let go = || {
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
        };
        let tasks: Vec<tokio::task::JoinHandle<()>> = if mode == "ours" {
            let fleet = connect(url).await;
            let cache: AsyncCache<u64, User> = AsyncCache::builder()
                .fleet(fleet.cache("herd").shared())
                .build();
            println!("ready");
            go();
            let tasks = (0..2_500)
                .map(|_| {
                    let (cache, load) = (cache.clone(), load.clone());
                    tokio::spawn(async move { drop(cache.get_with(1, load()).await) })
                })
                .collect();
            std::mem::forget(fleet);
            tasks
        } else {
            let cache = Arc::new(
                cached::AsyncRedisCache::<u64, User>::builder("cached-herd:")
                    .ttl(Duration::from_secs(60))
                    .connection_string(url)
                    .build()
                    .await
                    .expect("cached's Redis cache connects"),
            );
            println!("ready");
            go();
            (0..2_500)
                .map(|_| {
                    let (cache, load) = (Arc::clone(&cache), load.clone());
                    tokio::spawn(async move {
                        if cache.async_cache_get(&1).await.expect("GET").is_none() {
                            let value = load().await;
                            let _ = cache.async_cache_set(1, value).await;
                        }
                    })
                })
                .collect()
        };
        for task in tasks {
            task.await.expect("a caller finishes");
        }
    });
    println!("{}", loads.load(Ordering::SeqCst));
}
