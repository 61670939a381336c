//! The eviction listener (`on_evict`) on both engines: every removal is reported once with its
//! cause, outside every lock (the listener may call the cache), and a panicking listener
//! poisons nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cache_core::{AsyncCache, Engine, RemovalCause};

const ENGINES: [Engine; 2] = [Engine::QuickCache, Engine::Moka];

type Log = Arc<Mutex<Vec<(u64, u64, RemovalCause)>>>;

fn logged(engine: Engine, maxsize: u64) -> (AsyncCache<u64, u64>, Log) {
    let log: Log = Arc::default();
    let sink = Arc::clone(&log);
    let cache = AsyncCache::builder()
        .maxsize(maxsize)
        .engine(engine)
        .on_evict(move |key, value, cause| sink.lock().unwrap().push((key, value, cause)))
        .build();
    (cache, log)
}

fn causes(log: &Log, cause: RemovalCause) -> Vec<(u64, u64)> {
    let mut entries: Vec<_> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, _, c)| *c == cause)
        .map(|(k, v, _)| (*k, *v))
        .collect();
    entries.sort_unstable();
    entries
}

#[test]
fn every_cause_is_reported_once_with_its_key_and_value() {
    for engine in ENGINES {
        let (cache, log) = logged(engine, 10);
        cache.insert(1, 10);
        cache.insert(1, 11); // replaced
        for key in 100..110 {
            cache.insert(key, key); // the tenth evicts one entry
        }
        cache.invalidate(&105); // explicit
        cache.insert_with_ttl(200, 2, Some(Duration::from_millis(30)));
        // `metrics` sweeps the expired entry: at once on quick_cache, within moka's timer
        // wheel's first tick (about a second) on moka.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let m = loop {
            std::thread::sleep(Duration::from_millis(100));
            let m = cache.metrics();
            if m.expirations > 0 || std::time::Instant::now() > deadline {
                break m;
            }
        };
        cache.clear(); // explicit, for every entry left

        assert_eq!(
            causes(&log, RemovalCause::Replaced),
            [(1, 10)],
            "{engine:?}"
        );
        assert_eq!(causes(&log, RemovalCause::Size).len(), 1, "{engine:?}");
        assert_eq!(
            causes(&log, RemovalCause::Expired),
            [(200, 2)],
            "{engine:?}"
        );
        let explicit = causes(&log, RemovalCause::Explicit);
        assert!(explicit.contains(&(105, 105)), "{engine:?}: {explicit:?}");
        // The invalidated entry, then the nine live at the clear (the bound of ten, full
        // again with key 200, less key 200 once it expired).
        assert_eq!(explicit.len(), 1 + 9, "{engine:?}: {explicit:?}");
        assert_eq!((m.evictions, m.expirations), (1, 1), "{engine:?}");
        // Every key stored is accounted for exactly once.
        assert_eq!(log.lock().unwrap().len(), 1 + 1 + 1 + 10, "{engine:?}");
    }
}

#[test]
fn the_listener_runs_outside_every_lock_so_it_may_call_the_cache() {
    for engine in ENGINES {
        let (done, finished) = mpsc::channel();
        std::thread::spawn(move || {
            let slot: Arc<Mutex<Option<AsyncCache<u64, u64>>>> = Arc::default();
            let seen = Arc::clone(&slot);
            let cache: AsyncCache<u64, u64> = AsyncCache::builder()
                .maxsize(4)
                .engine(engine)
                .on_evict(move |key, value, _cause| {
                    let cache = seen.lock().unwrap().clone();
                    if let Some(cache) = cache {
                        // Reads and writes of the same cache, from inside the listener.
                        let _ = cache.get(&key);
                        cache.contains_key(&(key + 1));
                        if key < 1_000 {
                            cache.insert(key + 1_000_000, value);
                        }
                    }
                })
                .build();
            *slot.lock().unwrap() = Some(cache.clone());
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            runtime.block_on(async {
                for key in 0..200 {
                    // A load stores its value under the flight registry's lock: the
                    // listener of what it evicts must run after that lock is released.
                    cache.get_with(key, async move { key }).await;
                    cache.insert(key, key);
                    cache.invalidate(&(key / 2));
                }
            });
            cache.clear();
            let _ = cache.metrics();
            *slot.lock().unwrap() = None;
            done.send(()).unwrap();
        });
        finished
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("{engine:?}: a listener calling the cache deadlocked"));
    }
}

#[test]
fn a_panicking_listener_poisons_nothing_and_later_removals_are_still_delivered() {
    for engine in ENGINES {
        let delivered = Arc::new(AtomicU64::new(0));
        let count = Arc::clone(&delivered);
        let cache: AsyncCache<u64, u64> = AsyncCache::builder()
            .maxsize(10)
            .engine(engine)
            .on_evict(move |key, _value, _cause| {
                count.fetch_add(1, Ordering::Relaxed);
                assert!(key % 2 == 1, "the listener fails on even keys");
            })
            .build();
        for key in 0..1_000 {
            cache.insert(key, key);
        }
        for key in 0..1_000 {
            cache.invalidate(&key);
        }
        // 990 evicted, 10 invalidated: every one delivered, half of them panicking.
        assert_eq!(delivered.load(Ordering::Relaxed), 1_000, "{engine:?}");
        cache.insert(7, 70);
        assert_eq!(cache.get(&7), Some(70), "{engine:?}");
        assert_eq!(cache.metrics().size, 1, "{engine:?}");
    }
}

#[test]
fn thousands_of_concurrent_loads_report_exactly_the_entries_the_bound_evicted() {
    for engine in ENGINES {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .build()
            .unwrap();
        let (cache, log) = logged(engine, 500);
        runtime.block_on(async {
            let tasks: Vec<_> = (0..5_000_u64)
                .map(|key| {
                    let cache = cache.clone();
                    tokio::spawn(async move {
                        // Two callers per key: one load each.
                        let (a, b) = tokio::join!(
                            cache.get_with(key, async move {
                                tokio::task::yield_now().await;
                                key * 2
                            }),
                            cache.get_with(key, async move { key * 2 })
                        );
                        assert_eq!((a, b), (key * 2, key * 2));
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
        });
        let m = cache.metrics();
        let size_evicted = causes(&log, RemovalCause::Size);
        assert_eq!(m.loads, 5_000, "{engine:?}");
        assert_eq!(m.size, 500, "{engine:?}");
        assert_eq!(size_evicted.len(), 4_500, "{engine:?}");
        assert_eq!(m.evictions, 4_500, "{engine:?}");
        // Each evicted entry is reported with its own value, and no key twice.
        assert!(size_evicted.iter().all(|(k, v)| *v == k * 2), "{engine:?}");
        let mut keys: Vec<_> = size_evicted.iter().map(|(k, _)| *k).collect();
        keys.dedup();
        assert_eq!(keys.len(), 4_500, "{engine:?}");
    }
}

// The quick_cache engine keeps caches bounded under 34 entries in a strict-LRU table of its
// own: its evictions reach the listener as the other engines' do, the least recently used
// entry first.
#[test]
fn a_small_cache_reports_its_least_recently_used_entry_as_evicted() {
    for engine in ENGINES {
        for maxsize in [1, 3, 33] {
            let (cache, log) = logged(engine, maxsize);
            for key in 0..maxsize {
                cache.insert(key, key);
            }
            // Read every entry but the second one (or the only one): it is the least recent.
            let victim = maxsize.min(2) - 1;
            for key in (0..maxsize).filter(|key| *key != victim) {
                assert_eq!(cache.get(&key), Some(key));
            }
            cache.insert(1_000, 1_000);
            cache.insert(1_000, 1_001);
            assert_eq!(
                causes(&log, RemovalCause::Size),
                [(victim, victim)],
                "{engine:?}, maxsize {maxsize}"
            );
            assert_eq!(
                causes(&log, RemovalCause::Replaced),
                [(1_000, 1_000)],
                "{engine:?}, maxsize {maxsize}"
            );
            cache.invalidate(&1_000);
            assert_eq!(
                causes(&log, RemovalCause::Explicit),
                [(1_000, 1_001)],
                "{engine:?}, maxsize {maxsize}"
            );
        }
    }
}
