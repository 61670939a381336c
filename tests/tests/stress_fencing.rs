//! Invalidation wins over loads in flight: `invalidate`, `clear` and `insert` fence them.
//!
//! Every test runs on each storage engine (`name::quick_cache`, `name::moka`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use cache_core::{AsyncCache, Engine};
use tokio::sync::Notify;
use tokio::time::{sleep, timeout};

const HANG: Duration = Duration::from_secs(20);

/// Starts a load of key 1 that returns `value` once `release` is notified, and waits until it
/// has started.
async fn start_blocked_load(
    cache: &AsyncCache<u64, u64>,
    value: u64,
    release: &Arc<Notify>,
) -> tokio::task::JoinHandle<u64> {
    let started = Arc::new(Notify::new());
    let task = tokio::spawn({
        let (cache, started, release) = (cache.clone(), Arc::clone(&started), Arc::clone(release));
        async move {
            cache
                .get_with(1, async move {
                    started.notify_one();
                    release.notified().await;
                    value
                })
                .await
        }
    });
    started.notified().await;
    task
}

tests::test_on_every_engine!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn invalidate_during_a_load_keeps_its_value_out_of_the_cache_and_out_of_later_gets
);
async fn invalidate_during_a_load_keeps_its_value_out_of_the_cache_and_out_of_later_gets(
    engine: Engine,
) {
    let cache = AsyncCache::<u64, u64>::builder().engine(engine).build();
    let release = Arc::new(Notify::new());
    let old = start_blocked_load(&cache, 1, &release).await;
    let old_waiter = tokio::spawn({
        let cache = cache.clone();
        async move {
            cache
                .get_with(1, async { unreachable!("joins the old load") })
                .await
        }
    });
    sleep(Duration::from_millis(30)).await;

    cache.invalidate(&1);
    // A get that starts after invalidate returned does not join the old load.
    let fresh = timeout(HANG, cache.get_with(1, async { 2 })).await;
    assert_eq!(
        fresh,
        Ok(2),
        "a get after invalidate joined the fenced load"
    );

    release.notify_one();
    // Callers already waiting on the old load still get its value...
    assert_eq!(timeout(HANG, old).await.unwrap().unwrap(), 1);
    assert_eq!(timeout(HANG, old_waiter).await.unwrap().unwrap(), 1);
    // ...but it never reaches the cache.
    assert_eq!(cache.get(&1), Some(2));
    assert_eq!(cache.metrics().loads, 2);
}

tests::test_on_every_engine!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn clear_during_a_load_keeps_its_value_out_of_the_cache
);
async fn clear_during_a_load_keeps_its_value_out_of_the_cache(engine: Engine) {
    let cache = AsyncCache::<u64, u64>::builder().engine(engine).build();
    let release = Arc::new(Notify::new());
    let old = start_blocked_load(&cache, 1, &release).await;

    cache.clear();
    release.notify_one();
    assert_eq!(timeout(HANG, old).await.unwrap().unwrap(), 1);
    assert_eq!(cache.get(&1), None, "the fenced load did not store");
    assert_eq!(cache.get_with(1, async { 3 }).await, 3);
    assert_eq!(cache.get(&1), Some(3));
}

tests::test_on_every_engine!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_load_started_after_clear_is_not_joined_to_one_started_before
);
async fn a_load_started_after_clear_is_not_joined_to_one_started_before(engine: Engine) {
    let cache = AsyncCache::<u64, u64>::builder().engine(engine).build();
    let release_old = Arc::new(Notify::new());
    let old = start_blocked_load(&cache, 1, &release_old).await;
    cache.clear();
    let release_new = Arc::new(Notify::new());
    let new = start_blocked_load(&cache, 2, &release_new).await;
    // The new load settles first and is stored; the old one settles later and must not
    // overwrite it.
    release_new.notify_one();
    assert_eq!(timeout(HANG, new).await.unwrap().unwrap(), 2);
    release_old.notify_one();
    assert_eq!(timeout(HANG, old).await.unwrap().unwrap(), 1);
    assert_eq!(cache.get(&1), Some(2));
}

tests::test_on_every_engine!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn insert_during_a_load_is_not_overwritten_by_it
);
async fn insert_during_a_load_is_not_overwritten_by_it(engine: Engine) {
    let cache = AsyncCache::<u64, u64>::builder().engine(engine).build();
    let release = Arc::new(Notify::new());
    let old = start_blocked_load(&cache, 1, &release).await;
    cache.insert(1, 50);
    release.notify_one();
    assert_eq!(timeout(HANG, old).await.unwrap().unwrap(), 1);
    assert_eq!(cache.get(&1), Some(50));
}

tests::test_on_every_engine!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_after_invalidate_are_never_stale_under_contention
);
/// Readers and a writer race on one key against a backend that versions every write. A read
/// that starts after an invalidation has returned must see that write or a later one.
async fn reads_after_invalidate_are_never_stale_under_contention(engine: Engine) {
    let cache = AsyncCache::<u64, u64>::builder().engine(engine).build();
    let backend = Arc::new(AtomicU64::new(0));
    // The newest version whose invalidation has returned.
    let published = Arc::new(AtomicU64::new(0));
    let stale = Arc::new(AtomicUsize::new(0));
    let reads = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));

    let readers: Vec<_> = (0..8)
        .map(|_| {
            let (cache, backend, published, stale, reads, stop) = (
                cache.clone(),
                Arc::clone(&backend),
                Arc::clone(&published),
                Arc::clone(&stale),
                Arc::clone(&reads),
                Arc::clone(&stop),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let floor = published.load(Ordering::SeqCst);
                    let backend = Arc::clone(&backend);
                    let seen = cache
                        .get_with(1, async move {
                            let version = backend.load(Ordering::SeqCst);
                            // Widen the window between reading the backend and storing.
                            tokio::task::yield_now().await;
                            version
                        })
                        .await;
                    if seen < floor {
                        stale.fetch_add(1, Ordering::SeqCst);
                    }
                    reads.fetch_add(1, Ordering::SeqCst);
                    // A hit never suspends; let the writer and the timer run.
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();

    let mut writes = 0;
    while writes < 2_000 || reads.load(Ordering::SeqCst) < 20_000 {
        let version = backend.fetch_add(1, Ordering::SeqCst) + 1;
        cache.invalidate(&1);
        published.store(version, Ordering::SeqCst);
        writes += 1;
        tokio::task::yield_now().await;
    }
    stop.store(true, Ordering::SeqCst);
    for reader in readers {
        timeout(HANG, reader).await.unwrap().unwrap();
    }
    assert_eq!(stale.load(Ordering::SeqCst), 0, "stale reads");
}

tests::test_on_every_engine!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_after_clear_from_plain_threads_are_never_stale
);
/// The same race with `clear` called from plain OS threads.
async fn reads_after_clear_from_plain_threads_are_never_stale(engine: Engine) {
    let cache = AsyncCache::<u64, u64>::builder()
        .maxsize(64)
        .engine(engine)
        .build();
    let backend = Arc::new(AtomicU64::new(0));
    let published = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));

    let writer = std::thread::spawn({
        let (cache, backend, published, stop) = (
            cache.clone(),
            Arc::clone(&backend),
            Arc::clone(&published),
            Arc::clone(&stop),
        );
        move || {
            for _ in 0..2_000 {
                let version = backend.fetch_add(1, Ordering::SeqCst) + 1;
                cache.clear();
                published.store(version, Ordering::SeqCst);
                std::thread::yield_now();
            }
            stop.store(true, Ordering::SeqCst);
        }
    });

    let mut gets = 0_u64;
    let mut stale = 0_u64;
    while !stop.load(Ordering::SeqCst) {
        let batch: Vec<_> = (0..32_u64)
            .map(|key| {
                let (cache, backend) = (cache.clone(), Arc::clone(&backend));
                let floor = published.load(Ordering::SeqCst);
                tokio::spawn(async move {
                    let seen = cache
                        .get_with(key % 4, async move {
                            let version = backend.load(Ordering::SeqCst);
                            tokio::task::yield_now().await;
                            version
                        })
                        .await;
                    seen < floor
                })
            })
            .collect();
        for task in batch {
            gets += 1;
            stale += u64::from(timeout(HANG, task).await.unwrap().unwrap());
        }
    }
    writer.join().unwrap();
    assert!(gets >= 32);
    assert_eq!(stale, 0, "stale reads out of {gets}");
}
