//! Bytes per entry: what each peer allocates to hold 1,000,000 `u64 -> u64` entries, counted
//! by this process's global allocator.

use cache_core::{AsyncCache, Engine};
use cached::{Cached, LruCache};

use crate::Settings;
use crate::peers::poll_once;
use crate::report::Table;
use bench::alloc::live_bytes;

pub const MEMORY: &str = "bytes per entry, 1,000,000 entries";
pub const OURS: &str = "AsyncCache [quick_cache, default]";
pub const MOKA: &str = "moka::sync::Cache (TinyLFU)";

/// Allocated bytes per entry of the cache `fill` builds and fills with `entries` entries,
/// measured while it is alive.
fn bytes_per_entry<C>(entries: u64, fill: impl FnOnce(u64) -> C) -> f64 {
    let before = live_bytes();
    let cache = fill(entries);
    let used = live_bytes() - before;
    drop(cache);
    used as f64 / entries as f64
}

pub fn run(settings: &Settings, table: &mut Table) {
    let n = settings.entries;
    for engine in [Engine::QuickCache, Engine::Moka] {
        let bytes = bytes_per_entry(n, |n| {
            let cache: AsyncCache<u64, u64> =
                AsyncCache::builder().maxsize(n).engine(engine).build();
            for key in 0..n {
                cache.insert(key, key);
            }
            assert_eq!(cache.metrics().size, n);
            cache
        });
        let name = match engine {
            Engine::Moka => "AsyncCache [moka]",
            _ => OURS,
        };
        table.push(MEMORY, name, bytes, "B");
    }
    let bytes = bytes_per_entry(n, |n| {
        let cache = quick_cache::sync::Cache::<u64, u64>::new(n as usize);
        for key in 0..n {
            cache.insert(key, key);
        }
        cache
    });
    table.push_noted(
        MEMORY,
        "quick_cache::sync::Cache",
        Some(bytes),
        "B",
        "may hold fewer: its bound is split over shards",
    );
    let bytes = bytes_per_entry(n, |n| {
        let cache: moka::sync::Cache<u64, u64> = moka::sync::Cache::new(n);
        for key in 0..n {
            cache.insert(key, key);
        }
        cache.run_pending_tasks();
        assert_eq!(cache.entry_count(), n);
        cache
    });
    table.push(MEMORY, MOKA, bytes, "B");
    let bytes = bytes_per_entry(n, |n| {
        let cache: moka::future::Cache<u64, u64> = moka::future::Cache::new(n);
        for key in 0..n {
            poll_once(cache.insert(key, key));
        }
        poll_once(cache.run_pending_tasks());
        cache
    });
    table.push(MEMORY, "moka::future::Cache (TinyLFU)", bytes, "B");
    let bytes = bytes_per_entry(n, |n| {
        let mut cache = LruCache::<u64, u64>::builder()
            .max_size(n as usize)
            .build()
            .expect("a valid LruCache size");
        for key in 0..n {
            cache.cache_set(key, key);
        }
        cache
    });
    table.push(MEMORY, "cached LruCache (#[cached])", bytes, "B");
}
