//! How exact expiry is under back-to-back hits: entries with a short TTL, each read in a tight
//! loop from just before it expires until a read misses, timing every read.

use std::time::{Duration, Instant};

use cache_core::{AsyncCache, Engine};

use crate::Settings;
use crate::peers::median;
use crate::report::Table;

pub const LATE: &str =
    "expiry under back-to-back hits: served past expiry, 99th percentile of entries (µs)";
pub const OURS: &str = "AsyncCache::get, TTL 5 ms [quick_cache, default]";
pub const OURS_MOKA: &str = "AsyncCache::get, TTL 5 ms [moka]";

const TTL: Duration = Duration::from_millis(5);

pub fn run(settings: &Settings, table: &mut Table) {
    for (engine, name) in [(Engine::QuickCache, OURS), (Engine::Moka, OURS_MOKA)] {
        let cache: AsyncCache<u64, u64> = AsyncCache::builder()
            .maxsize(1_000)
            .default_ttl(TTL)
            .engine(engine)
            .build();
        let mut late = Vec::new();
        let mut reads = 0_u64;
        for key in 0..settings.expiries as u64 {
            let (lateness, count) = one_entry(&cache, key, name);
            late.push(lateness.as_secs_f64() * 1e6);
            reads += count;
        }
        late.sort_by(f64::total_cmp);
        let worst = late.last().copied().unwrap_or(0.0);
        let p99 = late[(late.len() * 99).div_ceil(100).saturating_sub(1)];
        table.push_noted(
            LATE,
            name,
            Some(p99),
            "µs",
            format!(
                "median {:.0} µs, worst {worst:.0} µs over {} entries ({reads} reads); none \
                 was a miss before its expiry (checked on every read)",
                median(late),
                settings.expiries
            ),
        );
    }
}

/// Stores `key` and reads it until a read misses. Returns how long after its expiry it was
/// still served (at least: the start of the last read that hit, after the latest instant its
/// expiry can be), and the reads made. Panics if a read missed before its expiry.
fn one_entry(cache: &AsyncCache<u64, u64>, key: u64, name: &str) -> (Duration, u64) {
    let stored_from = Instant::now();
    cache.insert(key, key);
    let stored_by = Instant::now();
    // The entry expires at its insert's instant plus TTL: between these two.
    let (earliest, latest) = (stored_from + TTL, stored_by + TTL);
    let mut last_hit = stored_by;
    let mut reads = 0;
    loop {
        let start = Instant::now();
        let hit = cache.get(&key).is_some();
        let end = Instant::now();
        reads += 1;
        if hit {
            last_hit = start;
            continue;
        }
        assert!(
            end >= earliest,
            "{name}: a read that ended {:?} before the entry's earliest expiry missed",
            earliest - end
        );
        return (last_hit.saturating_duration_since(latest), reads);
    }
}
