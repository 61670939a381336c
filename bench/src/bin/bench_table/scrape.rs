//! What reading a cache's metrics costs the hits around it: a scrape (`metrics()`, which a
//! Prometheus collector or the dashboard calls every few seconds) of a cache of entries with a
//! TTL, while another thread hits the cache back to back and times every hit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cache_core::{AsyncCache, Engine};

use crate::Settings;
use crate::report::Table;

pub const STALL: &str = "hits during metrics() of 1,000,000 TTL entries: longest hit (µs)";
pub const SCRAPE: &str = "metrics() of 1,000,000 TTL entries, a tenth expired (ms)";
pub const OURS: &str = "AsyncCache [quick_cache, default]";
pub const OURS_MOKA: &str = "AsyncCache [moka]";

pub fn run(settings: &Settings, table: &mut Table) {
    let entries = settings.entries;
    let scrapes = 5;
    for (engine, name) in [(Engine::QuickCache, OURS), (Engine::Moka, OURS_MOKA)] {
        let cache: AsyncCache<u64, u64> = AsyncCache::builder()
            .maxsize(entries * 2)
            .default_ttl(Duration::from_secs(3_600))
            .engine(engine)
            .build();
        for key in 0..entries {
            cache.insert(key, key);
        }
        let scrape_times = std::sync::Mutex::new(Vec::new());
        let scraping = AtomicBool::new(false);
        let done = AtomicBool::new(false);
        let (longest, hits, longest_between, hits_between) = std::thread::scope(|s| {
            let reader = s.spawn(|| {
                let (mut longest, mut hits, mut key) = (Duration::ZERO, 0_u64, 0_u64);
                // The same, between scrapes: what the machine alone costs a hit.
                let (mut longest_between, mut hits_between) = (Duration::ZERO, 0_u64);
                while !done.load(Ordering::Relaxed) {
                    let during = scraping.load(Ordering::Relaxed);
                    let start = Instant::now();
                    std::hint::black_box(cache.get(&(key % entries)));
                    let took = start.elapsed();
                    if during || scraping.load(Ordering::Relaxed) {
                        longest = longest.max(took);
                        hits += 1;
                    } else {
                        longest_between = longest_between.max(took);
                        hits_between += 1;
                    }
                    key = key.wrapping_add(7_919);
                    if (key % entries).is_multiple_of(10) {
                        key += 1; // a live entry: hits, not misses that remove their entry
                    }
                }
                (longest, hits, longest_between, hits_between)
            });
            for _ in 0..scrapes {
                // A tenth of the entries expired since the last scrape, for it to sweep.
                for key in (0..entries).step_by(10) {
                    cache.insert_with_ttl(key, key, Some(Duration::from_nanos(1)));
                }
                std::thread::sleep(Duration::from_millis(20));
                scraping.store(true, Ordering::Relaxed);
                let start = Instant::now();
                std::hint::black_box(cache.metrics());
                scrape_times.lock().unwrap().push(start.elapsed());
                scraping.store(false, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
            done.store(true, Ordering::Relaxed);
            reader.join().expect("the reader does not panic")
        });
        let mut times = scrape_times.into_inner().unwrap();
        times.sort();
        let median = times[times.len() / 2];
        table.push_noted(
            STALL,
            name,
            Some(longest.as_secs_f64() * 1e6),
            "µs",
            format!(
                "{hits} hits timed during {scrapes} scrapes; between them, the longest of \
                 {hits_between} hits took {:.0} µs (the machine's own hiccups)",
                longest_between.as_secs_f64() * 1e6
            ),
        );
        table.push_noted(
            SCRAPE,
            name,
            Some(median.as_secs_f64() * 1e3),
            "ms",
            format!("median of {scrapes}"),
        );
    }
}
