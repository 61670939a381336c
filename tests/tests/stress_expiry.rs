//! Expiry under hits that come hard: entries read back to back from several threads (so the
//! coarse clock's thread keeps time, and the readers refresh it themselves) never expire
//! before their TTL, and stop being served soon after it; and a cache with entries that
//! expire serves any number of runtimes, as a `static`.
//!
//! Every test runs on each storage engine (`name::quick_cache`, `name::moka`).

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use cache_core::{AsyncCache, Engine};

/// The TTL of the entries read back to back.
const TTL: Duration = Duration::from_millis(20);

/// How long after its expiry an entry may still be served here: the clock's documented tick
/// (1 ms) with room for a loaded test machine. A clock that stopped moving under dense reads
/// would serve the entries for the whole test instead.
const LATE: Duration = Duration::from_millis(250);

tests::test_on_every_engine!(#[test] fn entries_read_back_to_back_never_expire_early_and_go_soon_after);
fn entries_read_back_to_back_never_expire_early_and_go_soon_after(engine: Engine) {
    let cache: AsyncCache<u64, u64> = AsyncCache::builder()
        .maxsize(1_000)
        .default_ttl(TTL)
        .engine(engine)
        .build();
    for key in 0..20 {
        let stored_from = Instant::now();
        cache.insert(key, key);
        let stored_by = Instant::now();
        // Its expiry: the insert's instant plus the TTL, so between these two.
        let (earliest, latest) = (stored_from + TTL, stored_by + TTL);
        let served_until = std::thread::scope(|s| {
            let readers: Vec<_> = (0..3)
                .map(|_| {
                    let cache = &cache;
                    s.spawn(move || {
                        let mut last_hit = stored_by;
                        loop {
                            let start = Instant::now();
                            let hit = cache.get(&key) == Some(key);
                            let end = Instant::now();
                            if hit {
                                last_hit = start;
                                assert!(
                                    start < latest + LATE,
                                    "{engine:?}: served {:?} after its expiry",
                                    start - latest
                                );
                                continue;
                            }
                            assert!(
                                end >= earliest,
                                "{engine:?}: a read ending {:?} before its expiry missed",
                                earliest - end
                            );
                            return last_hit;
                        }
                    })
                })
                .collect();
            readers
                .into_iter()
                .map(|reader| reader.join().unwrap())
                .max()
                .unwrap()
        });
        assert!(served_until >= stored_by, "{engine:?}: never served");
        assert_eq!(cache.get(&key), None, "{engine:?}: once gone, gone");
    }
}

static SHARED: LazyLock<AsyncCache<u64, u64>> = LazyLock::new(|| {
    AsyncCache::builder()
        .maxsize(100)
        .default_ttl(Duration::from_millis(500))
        .build()
});

#[test]
fn a_static_cache_with_a_ttl_serves_runtimes_that_come_and_go() {
    for round in 0..3 {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            let stored = Instant::now();
            assert_eq!(SHARED.get_with(1, async move { round }).await, round);
            // Hits hard enough to start the clock's thread, which outlives the runtime.
            while stored.elapsed() < Duration::from_millis(50) {
                assert_eq!(SHARED.get(&1), Some(round), "within its TTL");
            }
            tokio::time::sleep(Duration::from_millis(600)).await;
            assert_eq!(SHARED.get(&1), None, "expired after its TTL");
        });
    }
}
