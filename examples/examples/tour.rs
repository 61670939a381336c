//! A guided tour of the workspace: `cargo run -p examples --example tour`.
//!
//! Each step prints what the cache did (loads, hits, coalesced callers, invalidations) and the
//! metrics that prove it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cache_core::{AsyncCache, async_lru, async_ttl};
use futures_util::future::join_all;
use tokio::time::sleep;

/// A slow "database" that counts its queries.
#[derive(Default)]
struct Database {
    queries: AtomicU64,
}

impl Database {
    async fn user(&self, id: u64) -> String {
        self.queries.fetch_add(1, Ordering::SeqCst);
        sleep(Duration::from_millis(50)).await;
        format!("user-{id}")
    }

    async fn users(&self, ids: Vec<u64>) -> HashMap<u64, String> {
        self.queries.fetch_add(1, Ordering::SeqCst);
        sleep(Duration::from_millis(50)).await;
        ids.into_iter()
            .map(|id| (id, format!("user-{id}")))
            .collect()
    }

    fn queries(&self) -> u64 {
        self.queries.swap(0, Ordering::SeqCst)
    }
}

/// Counts how often the bodies of the cached functions below really run.
static BODY_RUNS: AtomicU64 = AtomicU64::new(0);

/// A cached function: 100 concurrent calls with one argument run the body once.
#[async_ttl(time_to_live = 60, maxsize = 1_000)]
async fn product_page(sku: &str) -> String {
    BODY_RUNS.fetch_add(1, Ordering::SeqCst);
    sleep(Duration::from_millis(30)).await;
    format!("<h1>{sku}</h1>")
}

#[derive(Clone, Debug)]
struct OutOfStock;

/// A repository whose method caches only `Ok` values, shared by every instance.
struct Inventory;

impl Inventory {
    #[async_lru(maxsize = 100, skip_args = 1)]
    async fn stock(&self, sku: u64) -> Result<u32, OutOfStock> {
        BODY_RUNS.fetch_add(1, Ordering::SeqCst);
        if sku == 0 { Err(OutOfStock) } else { Ok(7) }
    }
}

#[tokio::main]
async fn main() {
    let db = Arc::new(Database::default());

    println!("== 1. Thundering herd: 100 concurrent misses on one key ==");
    let users: AsyncCache<u64, String> = AsyncCache::builder().maxsize(1_000).build();
    let started = Instant::now();
    let calls = (0..100).map(|_| users.get_with(1, db.user(1)));
    let results = join_all(calls).await;
    println!(
        "100 callers got {:?} in {:?}; database queries: {}",
        results[0],
        started.elapsed(),
        db.queries()
    );
    let again = users.get_with(1, db.user(1)).await;
    println!(
        "a later call is a hit: {again:?}; database queries: {}",
        db.queries()
    );
    print_metrics("users", &users);

    println!("\n== 2. Errors are shared by the herd and never cached ==");
    let flaky: AsyncCache<u64, String> = AsyncCache::new();
    let calls = (0..100).map(|_| {
        flaky.try_get_with(1, async {
            db.queries.fetch_add(1, Ordering::SeqCst);
            sleep(Duration::from_millis(20)).await;
            Err::<String, _>("connection reset")
        })
    });
    let errors = join_all(calls).await;
    println!(
        "100 callers got {} errors from {} database query; cached: {}",
        errors.iter().filter(|r| r.is_err()).count(),
        db.queries(),
        flaky.contains_key(&1)
    );
    print_metrics("flaky", &flaky);

    println!("\n== 3. Invalidation wins over a load in flight ==");
    let load = tokio::spawn({
        let users = users.clone();
        async move {
            users
                .get_with(2, async {
                    sleep(Duration::from_millis(100)).await;
                    String::from("user-2 (stale: loaded before the write)")
                })
                .await
        }
    });
    sleep(Duration::from_millis(20)).await;
    users.invalidate(&2); // the row changed while it was being read
    let fresh = users
        .get_with(2, async { String::from("user-2 (fresh)") })
        .await;
    println!("a get after invalidate returned: {fresh:?}");
    println!(
        "the fenced load still answered its caller: {:?}",
        load.await.unwrap()
    );
    println!("and the cache holds: {:?}", users.get(&2));

    println!("\n== 4. Per-entry TTL ==");
    users.insert_with_ttl(3, String::from("user-3"), Some(Duration::from_millis(100)));
    println!("right after insert: {:?}", users.get(&3));
    sleep(Duration::from_millis(200)).await;
    println!("after its 100 ms TTL: {:?}", users.get(&3));

    println!("\n== 5. DataLoader batching: 50 concurrent loads, one query ==");
    let batched: AsyncCache<u64, String> = AsyncCache::builder()
        .maxsize(1_000)
        .batch_window(Duration::from_millis(5))
        .build();
    let loader = batched.batch_loader({
        let db = Arc::clone(&db);
        move |ids: Vec<u64>| {
            let db = Arc::clone(&db);
            async move { Ok::<_, std::convert::Infallible>(db.users(ids).await) }
        }
    });
    let loaded = join_all((100..150).map(|id| loader.load(id))).await;
    println!(
        "{} users loaded with {} database query",
        loaded.iter().filter(|r| matches!(r, Ok(Some(_)))).count(),
        db.queries()
    );
    print_metrics("batched", &batched);

    println!("\n== 6. Warmup: preload hot keys, 16 at a time ==");
    batched.clear();
    batched.insert(100, String::from("user-100"));
    let report = batched
        .warmup(100..110, |id| {
            let db = Arc::clone(&db);
            async move {
                if id == 105 {
                    Err("row locked")
                } else {
                    Ok(db.user(id).await)
                }
            }
        })
        .await;
    println!(
        "loaded {}, skipped {:?} (already cached), failed {:?}",
        report.loaded.len(),
        report.skipped,
        report
            .failed
            .iter()
            .map(|(k, e)| (k, **e))
            .collect::<Vec<_>>()
    );
    print_metrics("batched", &batched);

    println!("\n== 7. The macros: #[async_ttl] and #[async_lru] on functions and methods ==");
    let pages = join_all((0..100).map(|_| product_page("SKU-1"))).await;
    println!(
        "100 concurrent product_page(\"SKU-1\") calls -> {:?}, body ran {} time",
        pages[0],
        BODY_RUNS.swap(0, Ordering::SeqCst)
    );
    product_page::invalidate("SKU-1");
    let _ = product_page("SKU-1").await;
    let m = product_page::metrics();
    println!(
        "after product_page::invalidate the body ran again ({}); metrics: hits={} misses={} loads={}",
        BODY_RUNS.swap(0, Ordering::SeqCst),
        m.hits,
        m.misses,
        m.loads
    );
    let (a, b) = (Inventory, Inventory);
    println!(
        "stock(42) on two instances: {:?} {:?}; stock(0): {:?} twice -> {:?}; body runs: {} (errors are not cached)",
        a.stock(42).await,
        b.stock(42).await,
        a.stock(0).await,
        b.stock(0).await,
        BODY_RUNS.swap(0, Ordering::SeqCst)
    );
    println!(
        "Inventory::stock_metrics(): {:?}",
        Inventory::stock_metrics()
    );

    println!("\n== 8. The agent layer: the five scenarios of the seed README ==\n");
    for name in examples::scenarios::NAMES {
        if let Some(report) = examples::scenarios::run(name).await {
            examples::print_report(&report);
            println!();
        }
    }
    println!(
        "agent_cache::metrics() over every session: {:?}",
        agent_cache::metrics()
    );
}

fn print_metrics(name: &str, cache: &AsyncCache<u64, String>) {
    let m = cache.metrics();
    println!(
        "metrics[{name}]: hits={} misses={} hit_rate={:.2} size={} loads={} load_errors={} evictions={}",
        m.hits, m.misses, m.hit_rate, m.size, m.loads, m.load_errors, m.evictions
    );
}
