//! The Prometheus collector (feature `prometheus`) on both engines: a scrape reports each
//! registered cache's counters as they are at that scrape, labelled by cache, and a cache
//! registered after the collector went into the registry is in the next scrape.

use cache_core::prometheus::CacheCollector;
use cache_core::{AsyncCache, Engine, async_lru};
use prometheus_client::registry::Registry;

#[async_lru(maxsize = 10)]
async fn square(x: u64) -> u64 {
    x * x
}

fn scrape(registry: &Registry) -> String {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    text
}

fn value(scrape: &str, series: &str) -> Option<u64> {
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_reads_every_registered_cache_as_it_is_at_that_scrape() {
    let collector = CacheCollector::with_prefix("shop_cache");
    let mut registry = Registry::default();
    registry.register_collector(Box::new(collector.clone()));

    let mut caches = Vec::new();
    for (name, engine) in [("users", Engine::QuickCache), ("orders", Engine::Moka)] {
        let cache: AsyncCache<u64, String> = AsyncCache::builder()
            .max_weight(1_000)
            .weigher(|_key: &u64, value: &String| value.len() as u32)
            .engine(engine)
            .build();
        collector.register(name, &cache);
        caches.push((name, cache));
    }
    collector.register_fn("square", square::metrics);

    let before = scrape(&registry);
    assert_eq!(
        value(&before, "shop_cache_hits_total{cache=\"users\"}"),
        Some(0)
    );
    assert_eq!(
        value(&before, "shop_cache_capacity{cache=\"orders\"}"),
        Some(1_000)
    );

    // Thousands of concurrent calls between two scrapes.
    for (name, cache) in &caches {
        let calls: Vec<_> = (0..2_000_u64)
            .map(|i| {
                let cache = cache.clone();
                tokio::spawn(
                    async move { cache.get_with(i % 100, async move { "x".repeat(20) }).await },
                )
            })
            .collect();
        for call in calls {
            call.await.unwrap();
        }
        let after = scrape(&registry);
        let series = |metric: &str| format!("shop_cache_{metric}{{cache=\"{name}\"}}");
        let m = cache.metrics();
        assert_eq!(value(&after, &series("hits_total")), Some(m.hits), "{name}");
        assert_eq!(
            value(&after, &series("misses_total")),
            Some(m.misses),
            "{name}"
        );
        assert_eq!(
            value(&after, &series("loads_total")),
            Some(m.loads),
            "{name}"
        );
        assert_eq!(m.hits + m.misses, 2_000, "{name}");
        assert_eq!(value(&after, &series("weight")), m.weight, "{name}");
        assert_eq!(value(&after, &series("entries")), Some(m.size), "{name}");
        // 100 values of 20 bytes against a budget of 1,000: about half are evicted.
        assert!(
            value(&after, &series("evictions_total")).unwrap() >= 50,
            "{name}"
        );
        assert!(after.contains("# TYPE shop_cache_hits counter"), "{after}");
        assert!(after.contains("# TYPE shop_cache_entries gauge"), "{after}");
    }

    square(3).await;
    square(3).await;
    let cached_fn = scrape(&registry);
    assert_eq!(
        value(&cached_fn, "shop_cache_hits_total{cache=\"square\"}"),
        Some(1)
    );
    // A cache without a weigher reports no weight; one without a fleet no fleet counters.
    assert!(!cached_fn.contains("shop_cache_weight{cache=\"square\"}"));
    assert!(!cached_fn.contains("l2_hits"));

    let late: AsyncCache<u64, u64> = AsyncCache::new();
    late.insert(1, 1);
    collector.register("late", &late);
    assert_eq!(
        value(&scrape(&registry), "shop_cache_entries{cache=\"late\"}"),
        Some(1)
    );
}
