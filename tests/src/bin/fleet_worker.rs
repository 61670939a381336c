//! One process of a fleet, for the multi-process tests (`tests/tests/fleet_processes.rs`).
//!
//! `fleet_worker <fleet redis url> <database redis url>` connects and installs a fleet, then
//! answers commands read from stdin, one line each, on stdout. Its caches load from a
//! "database": counters `db:<k>` in a second Redis, which a write increments (so a value is
//! the version it was loaded at, and a stale value is one below the current version).
//!
//! The same data is reachable through six kinds of cache, named in each command:
//!
//! - `direct`: an `AsyncCache<u64, u64>` attached with `.fleet(fleet.cache("direct"))`;
//! - `macro`: an `#[async_ttl(fleet = "macro")]` fn;
//! - `agent`: an `#[agent_cache(resource = "cart:{user}")]` read with its
//!   `#[agent_invalidator]` write;
//! - `direct-shared`, `macro-shared`, `agent-shared`: the same with the values in the fleet's
//!   shared tier too (`.shared()`, `shared = true`).
//!
//! Commands:
//!
//! - `read <cache> <k>`: the value (a hit, or loaded), as `ok <value>`;
//! - `peek <k>`: the `direct` cache's entry without loading, `ok <value>` or `ok none`;
//! - `write <cache> <k>`: increments `db:<k>`, invalidates (and waits for the fleet's
//!   acknowledgement), answers `ok <new version>`;
//! - `status`: `ok connected` or `ok degraded`;
//! - `loads`: how many times this process's loaders ran, `ok <n>`;
//! - `delay <ms>`: every load from now on takes `ms` milliseconds first;
//! - `herd <cache> <k> <callers>`: `callers` concurrent reads of `k`, answered when all are
//!   done, `ok <loads this herd ran here>`;
//! - `stress <cache> reader|writer <keys> <ms> <bound ms>`: reads (or writes) random keys for
//!   `ms` milliseconds; a writer publishes, after each acknowledged invalidation, the version
//!   and the time it was acknowledged (`acked:<k>` in the database); a reader checks each
//!   value it serves against that and answers `ok reads=N stale=S max_stale_us=M`, where S
//!   counts values older than an invalidation acknowledged more than `bound` ms before.

use std::io::BufRead;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use agent_cache::{agent_cache, agent_invalidator};
use cache_core::{AsyncCache, async_ttl};
use cache_redis::Fleet;
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;

static DB: OnceLock<MultiplexedConnection> = OnceLock::new();
static DIRECT: OnceLock<AsyncCache<u64, u64>> = OnceLock::new();
static DIRECT_SHARED: OnceLock<AsyncCache<u64, u64>> = OnceLock::new();
static LOADS: AtomicU64 = AtomicU64::new(0);
static DELAY_MS: AtomicU64 = AtomicU64::new(0);

fn db() -> MultiplexedConnection {
    DB.get().expect("connected in main").clone()
}

async fn load(k: u64) -> u64 {
    LOADS.fetch_add(1, Ordering::SeqCst);
    let delay = DELAY_MS.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    db().get::<_, Option<u64>>(format!("db:{k}"))
        .await
        .expect("the database answers")
        .unwrap_or(0)
}

async fn bump(k: u64) -> u64 {
    db().incr(format!("db:{k}"), 1)
        .await
        .expect("the database answers")
}

#[async_ttl(time_to_live = 600, maxsize = 10_000, fleet = "macro")]
async fn macro_read(k: u64) -> u64 {
    load(k).await
}

#[async_ttl(
    time_to_live = 600,
    maxsize = 10_000,
    fleet = "macro-shared",
    shared = true
)]
async fn macro_shared_read(k: u64) -> u64 {
    load(k).await
}

#[agent_cache(resource = "cart:{user}", maxsize = 10_000)]
async fn agent_read(user: u64) -> u64 {
    load(user).await
}

#[agent_cache(resource = "cart:{user}", maxsize = 10_000, shared = true)]
async fn agent_shared_read(user: u64) -> u64 {
    load(user).await
}

#[agent_invalidator(resource = "cart:{user}")]
async fn agent_write(user: u64) -> Result<u64, String> {
    Ok(bump(user).await)
}

#[derive(Clone, Copy)]
enum Cache {
    Direct,
    Macro,
    Agent,
    DirectShared,
    MacroShared,
    AgentShared,
}

impl Cache {
    fn parse(name: &str) -> Self {
        match name {
            "direct" => Cache::Direct,
            "macro" => Cache::Macro,
            "agent" => Cache::Agent,
            "direct-shared" => Cache::DirectShared,
            "macro-shared" => Cache::MacroShared,
            "agent-shared" => Cache::AgentShared,
            other => panic!("no cache {other:?}"),
        }
    }

    async fn read(self, k: u64) -> u64 {
        match self {
            Cache::Direct => direct().get_with(k, load(k)).await,
            Cache::Macro => macro_read(k).await,
            Cache::Agent => agent_read(k).await,
            Cache::DirectShared => direct_shared().get_with(k, load(k)).await,
            Cache::MacroShared => macro_shared_read(k).await,
            Cache::AgentShared => agent_shared_read(k).await,
        }
    }

    /// Writes `k` and returns once the fleet acknowledged the invalidation.
    async fn write(self, fleet: &Fleet, k: u64) -> u64 {
        match self {
            Cache::Direct => {
                let version = bump(k).await;
                direct().invalidate(&k);
                fleet.flush().await;
                version
            }
            Cache::Macro => {
                let version = bump(k).await;
                macro_read::invalidate(k);
                fleet.flush().await;
                version
            }
            Cache::DirectShared => {
                let version = bump(k).await;
                direct_shared().invalidate(&k);
                fleet.flush().await;
                version
            }
            Cache::MacroShared => {
                let version = bump(k).await;
                macro_shared_read::invalidate(k);
                fleet.flush().await;
                version
            }
            // The invalidator itself returns after the acknowledgement.
            Cache::Agent | Cache::AgentShared => agent_write(k).await.expect("the write succeeds"),
        }
    }
}

fn direct_shared() -> &'static AsyncCache<u64, u64> {
    DIRECT_SHARED.get().expect("built in main")
}

/// `callers` concurrent reads of `k`; the loads this process ran meanwhile.
async fn herd(cache: Cache, k: u64, callers: u64) -> String {
    let before = LOADS.load(Ordering::SeqCst);
    let reads: Vec<_> = (0..callers)
        .map(|_| tokio::spawn(async move { cache.read(k).await }))
        .collect();
    for read in reads {
        read.await.expect("a read never panics");
    }
    format!("ok {}", LOADS.load(Ordering::SeqCst) - before)
}

fn direct() -> &'static AsyncCache<u64, u64> {
    DIRECT.get().expect("built in main")
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// A small xorshift, so that workers pick keys independently.
struct Keys(u64);

impl Keys {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

async fn stress(fleet: &Fleet, cache: Cache, role: &str, keys: u64, ms: u64, bound: u64) -> String {
    let until = Instant::now() + Duration::from_millis(ms);
    let mut pick = Keys(u64::from(std::process::id()) | 1);
    let mut db = db();
    let (mut ops, mut stale, mut max_stale) = (0u64, 0u64, 0u64);
    while Instant::now() < until {
        let k = pick.next(keys);
        if role == "writer" {
            let version = cache.write(fleet, k).await;
            let _: () = db
                .set(format!("acked:{k}"), format!("{version}:{}", now_us()))
                .await
                .expect("the database answers");
            tokio::time::sleep(Duration::from_micros(500)).await;
        } else {
            let acked: Option<String> = db.get(format!("acked:{k}")).await.expect("db");
            let value = cache.read(k).await;
            if let Some((version, at)) = acked.as_deref().and_then(|a| a.split_once(':')) {
                let (version, at): (u64, u64) = (version.parse().unwrap(), at.parse().unwrap());
                if value < version {
                    let past = now_us().saturating_sub(at);
                    max_stale = max_stale.max(past);
                    if past > bound * 1000 {
                        stale += 1;
                    }
                }
            }
        }
        ops += 1;
    }
    if role == "writer" {
        format!("ok writes={ops}")
    } else {
        format!("ok reads={ops} stale={stale} max_stale_us={max_stale}")
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (fleet_url, db_url) = (
        args.next().expect("fleet url"),
        args.next().expect("db url"),
    );
    let fleet = Fleet::builder(fleet_url)
        .namespace("workers")
        .max_staleness(Duration::from_millis(500))
        .connect()
        .await
        .expect("a valid URL");
    fleet.install();
    let db = redis::Client::open(db_url)
        .expect("a valid database URL")
        .get_multiplexed_async_connection()
        .await
        .expect("the database is up");
    let _ = DB.set(db);
    let _ = DIRECT.set(
        AsyncCache::builder()
            .maxsize(10_000)
            .fleet(fleet.cache("direct"))
            .build(),
    );
    let _ = DIRECT_SHARED.set(
        AsyncCache::builder()
            .maxsize(10_000)
            .default_ttl(Duration::from_secs(600))
            .fleet(
                fleet
                    .cache("direct-shared")
                    .shared()
                    .lease(Duration::from_secs(1)),
            )
            .build(),
    );
    println!("ready");
    let mut lines = std::io::stdin().lock().lines();
    while let Some(Ok(line)) = lines.next() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let number = |i: usize| words[i].parse::<u64>().expect("a number");
        let reply = match words.as_slice() {
            ["read", cache, _] => format!("ok {}", Cache::parse(cache).read(number(2)).await),
            ["peek", _] => match direct().get(&number(1)) {
                Some(value) => format!("ok {value}"),
                None => "ok none".into(),
            },
            ["write", cache, _] => {
                format!("ok {}", Cache::parse(cache).write(&fleet, number(2)).await)
            }
            ["status"] => match fleet.status().is_connected() {
                true => "ok connected".into(),
                false => "ok degraded".into(),
            },
            ["loads"] => format!("ok {}", LOADS.load(Ordering::SeqCst)),
            ["delay", _] => {
                DELAY_MS.store(number(1), Ordering::SeqCst);
                format!("ok {}", number(1))
            }
            ["herd", cache, _, _] => herd(Cache::parse(cache), number(2), number(3)).await,
            ["stress", cache, role, ..] if words.len() == 6 => {
                stress(
                    &fleet,
                    Cache::parse(cache),
                    role,
                    number(3),
                    number(4),
                    number(5),
                )
                .await
            }
            _ => format!("error: unknown command {line:?}"),
        };
        println!("{reply}");
    }
}
