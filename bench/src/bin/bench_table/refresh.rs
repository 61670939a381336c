//! Refresh-ahead under a steady read load: keys read over and over through several TTLs, with
//! a 50 ms loader, timing every read. Without refresh-ahead, the reads of a key that come
//! after it expired wait for its reload; with it, a reload starts before the expiry and no
//! read waits.

use std::time::{Duration, Instant};

use cache_core::AsyncCache;

use crate::Settings;
use crate::peers::median;
use crate::report::Table;

pub const READ: &str = "reads across expiries, 50 ms loader: 99th percentile read latency (µs)";
pub const WITHOUT: &str = "get_with_detached, TTL 200 ms [quick_cache, default]";
pub const WITH: &str = "get_with_detached, TTL 200 ms, refresh_after 100 ms [quick_cache, default]";

const TTL: Duration = Duration::from_millis(200);
const REFRESH: Duration = Duration::from_millis(100);
const LOADER: Duration = Duration::from_millis(50);
const KEYS: u64 = 100;
const READERS: u64 = 4;

pub fn run(settings: &Settings, table: &mut Table) {
    // Seven TTLs in the full run, three in the quick one.
    let span = TTL * u32::try_from(settings.rounds).unwrap_or(7);
    for (name, refresh) in [(WITHOUT, None), (WITH, Some(REFRESH))] {
        let mut builder = AsyncCache::builder().maxsize(1_000).default_ttl(TTL);
        if let Some(refresh) = refresh {
            builder = builder.refresh_after(refresh);
        }
        let cache: AsyncCache<u64, u64> = builder.build();
        let mut reads = steady_reads(&cache, span);
        reads.sort_by(f64::total_cmp);
        let waited = reads.iter().filter(|&&us| us >= 10_000.0).count();
        let p99 = reads[(reads.len() * 99).div_ceil(100).saturating_sub(1)];
        let m = cache.metrics();
        table.push_noted(
            READ,
            name,
            Some(p99),
            "µs",
            format!(
                "median {:.1} µs, worst {:.0} µs over {} reads in {} ms; {waited} reads took \
                 10 ms or more; {} loads, {} of them refreshes",
                median(reads.clone()),
                reads.last().copied().unwrap_or(0.0),
                reads.len(),
                span.as_millis(),
                m.loads,
                m.refreshes,
            ),
        );
    }
}

/// `READERS` tasks on a two-thread runtime read the `KEYS` keys in turn, one read a
/// millisecond each, for `span` after every key was loaded once. Returns each read's latency
/// in µs.
fn steady_reads(cache: &AsyncCache<u64, u64>, span: Duration) -> Vec<f64> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        // Every key loaded at once, so that all of them are fresh when the reads begin.
        let warm: Vec<_> = (0..KEYS)
            .map(|key| {
                let cache = cache.clone();
                tokio::spawn(async move { cache.get_with_detached(key, load(key)).await })
            })
            .collect();
        for load in warm {
            load.await.expect("a warm-up load");
        }
        let until = Instant::now() + span;
        let readers: Vec<_> = (0..READERS)
            .map(|reader| {
                let cache = cache.clone();
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    let mut key = reader * KEYS / READERS;
                    while Instant::now() < until {
                        let start = Instant::now();
                        std::hint::black_box(cache.get_with_detached(key, load(key)).await);
                        latencies.push(start.elapsed().as_secs_f64() * 1e6);
                        key = (key + 1) % KEYS;
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    latencies
                })
            })
            .collect();
        let mut all = Vec::new();
        for reader in readers {
            all.extend(reader.await.expect("a reader"));
        }
        all
    })
}

async fn load(key: u64) -> u64 {
    tokio::time::sleep(LOADER).await;
    key
}
