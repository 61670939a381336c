//! Freshness beyond a fixed TTL, on both engines: refresh-ahead, stale-on-error, time-to-idle,
//! `optionally_get_with` and `expire_after` (issue 13). Real tokio runtimes and real time,
//! with margins of several times the durations involved; where an order matters, a gate the
//! test opens decides it instead of a sleep.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cache_core::{AsyncCache, Engine};
use tokio::sync::Semaphore;
use tokio::time::{sleep, timeout};

const ENGINES: [Engine; 2] = [Engine::QuickCache, Engine::Moka];

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A loader that counts its runs and waits for `gate` before returning `value`.
fn gated(
    gate: &Arc<Semaphore>,
    runs: &Arc<AtomicU64>,
    value: u64,
) -> impl Future<Output = u64> + Send + 'static {
    let (gate, runs) = (Arc::clone(gate), Arc::clone(runs));
    async move {
        runs.fetch_add(1, Ordering::SeqCst);
        // Each run takes a permit for good, so `available_permits` tells when it passed.
        gate.acquire()
            .await
            .expect("the gate is never closed")
            .forget();
        value
    }
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..1_000 {
        if done() {
            return;
        }
        sleep(ms(5)).await;
    }
    panic!("timed out waiting for {what}");
}

fn refreshing(engine: Engine, ttl: Duration, after: Duration) -> AsyncCache<u64, u64> {
    AsyncCache::builder()
        .engine(engine)
        .maxsize(1_000)
        .default_ttl(ttl)
        .refresh_after(after)
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_ahead_answers_every_reader_at_once_and_reloads_once() {
    for engine in ENGINES {
        let cache = refreshing(engine, Duration::from_secs(60), ms(50));
        assert_eq!(cache.get_with_detached(1, async { 0 }).await, 0);
        sleep(ms(150)).await;

        // The reload cannot finish until the gate opens, which happens only after every reader
        // returned: a reader that waited for it would time the test out.
        let gate = Arc::new(Semaphore::new(0));
        let runs = Arc::new(AtomicU64::new(0));
        let readers: Vec<_> = (0..2_000)
            .map(|_| {
                let cache = cache.clone();
                let loader = gated(&gate, &runs, 1);
                tokio::spawn(async move { cache.get_with_detached(1, loader).await })
            })
            .collect();
        for reader in readers {
            let value = timeout(Duration::from_secs(10), reader)
                .await
                .expect("a reader waited for the refresh")
                .unwrap();
            assert_eq!(value, 0, "{engine:?}");
        }
        gate.add_permits(1);
        until("the refreshed value", || cache.get(&1) == Some(1)).await;
        let m = cache.metrics();
        assert_eq!(runs.load(Ordering::SeqCst), 1, "{engine:?}: one reload");
        assert_eq!((m.refreshes, m.loads, m.misses), (1, 2, 1), "{engine:?}");
        assert!(m.hits > 2_000, "{engine:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidation_during_a_refresh_discards_the_reloaded_value() {
    for engine in ENGINES {
        let cache = refreshing(engine, Duration::from_secs(60), ms(30));
        cache.get_with_detached(1, async { 0 }).await;
        sleep(ms(100)).await;
        let (gate, runs) = (Arc::new(Semaphore::new(0)), Arc::new(AtomicU64::new(0)));
        assert_eq!(cache.get_with_detached(1, gated(&gate, &runs, 1)).await, 0);
        until("the reload to start", || runs.load(Ordering::SeqCst) == 1).await;

        cache.invalidate(&1);
        // A call after the invalidation loads for itself: it does not join the fenced reload.
        assert_eq!(cache.get_with_detached(1, async { 2 }).await, 2);
        gate.add_permits(1);
        until("the reload to end", || gate.available_permits() == 0).await;
        sleep(ms(50)).await;
        assert_eq!(
            cache.get(&1),
            Some(2),
            "{engine:?}: the fenced reload stored"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_refresh_keeps_the_old_value_until_its_ttl() {
    for engine in ENGINES {
        let cache = refreshing(engine, ms(600), ms(50));
        cache.get_with_detached(1, async { 0 }).await;
        sleep(ms(100)).await;
        let failing = async { Err::<u64, _>("backend down") };
        assert_eq!(cache.try_get_with_detached(1, failing).await, Ok(0));
        until("the failed reload", || cache.metrics().refresh_errors == 1).await;
        assert_eq!(
            cache.get(&1),
            Some(0),
            "{engine:?}: the failure dropped the value"
        );
        // A later hit tries again (and fails again).
        let failing = async { Err::<u64, _>("still down") };
        assert_eq!(cache.try_get_with_detached(1, failing).await, Ok(0));
        until("the second reload", || cache.metrics().refresh_errors == 2).await;
        sleep(ms(800)).await;
        assert_eq!(cache.get(&1), None, "{engine:?}: served past its TTL");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miss_during_a_refresh_waits_on_it_instead_of_loading() {
    for engine in ENGINES {
        let cache = refreshing(engine, ms(300), ms(50));
        cache.get_with_detached(1, async { 0 }).await;
        sleep(ms(100)).await;
        let (gate, runs) = (Arc::new(Semaphore::new(0)), Arc::new(AtomicU64::new(0)));
        assert_eq!(cache.get_with_detached(1, gated(&gate, &runs, 1)).await, 0);
        sleep(ms(400)).await; // the old value expired; the reload still runs
        let others = Arc::new(AtomicU64::new(0));
        let waiters: Vec<_> = (0..1_000)
            .map(|_| {
                let (cache, others) = (cache.clone(), Arc::clone(&others));
                tokio::spawn(async move {
                    cache
                        .get_with_detached(1, async move {
                            others.fetch_add(1, Ordering::SeqCst);
                            9
                        })
                        .await
                })
            })
            .collect();
        sleep(ms(50)).await;
        gate.add_permits(1);
        for waiter in waiters {
            assert_eq!(waiter.await.unwrap(), 1, "{engine:?}");
        }
        assert_eq!(
            others.load(Ordering::SeqCst),
            0,
            "{engine:?}: a miss loaded"
        );
        assert_eq!(runs.load(Ordering::SeqCst), 1, "{engine:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_ahead_is_not_started_by_get_or_a_borrowing_loader() {
    for engine in ENGINES {
        let cache = refreshing(engine, Duration::from_secs(60), ms(30));
        cache.insert(1, 0);
        sleep(ms(100)).await;
        assert_eq!(cache.get(&1), Some(0));
        assert_eq!(cache.get_with(1, async { 1 }).await, 0);
        sleep(ms(50)).await;
        assert_eq!(cache.metrics().refreshes, 0, "{engine:?}");
        assert_eq!(cache.get(&1), Some(0), "{engine:?}");
    }
}

fn stale(engine: Engine, ttl: Duration, max: Duration) -> AsyncCache<u64, u64> {
    AsyncCache::builder()
        .engine(engine)
        .default_ttl(ttl)
        .stale_on_error(max)
        .build()
}

// One thread: the outcome is not stored, so a caller that had missed but not yet joined the
// flight when the load ended would load again (as it should); on one thread each caller's miss
// and join are one poll, all done before the gate opens.
#[tokio::test]
async fn a_failed_load_is_answered_with_the_expired_value_for_every_waiter() {
    for engine in ENGINES {
        let cache = stale(engine, ms(50), Duration::from_secs(30));
        cache.insert(1, 10);
        sleep(ms(150)).await;
        assert_eq!(cache.get(&1), None, "{engine:?}: get served a stale value");
        let gate = Arc::new(Semaphore::new(0));
        let callers: Vec<_> = (0..1_000)
            .map(|_| {
                let (cache, gate) = (cache.clone(), Arc::clone(&gate));
                tokio::spawn(async move {
                    cache
                        .try_get_with(1, async move {
                            drop(gate.acquire().await);
                            Err::<u64, _>("backend down")
                        })
                        .await
                })
            })
            .collect();
        sleep(ms(50)).await;
        gate.add_permits(1_000);
        for caller in callers {
            assert_eq!(caller.await.unwrap(), Ok(10), "{engine:?}");
        }
        let m = cache.metrics();
        assert_eq!(
            (m.loads, m.load_errors, m.stale_served),
            (1, 1, 1),
            "{engine:?}"
        );
        // The stale value was not stored again: a working loader replaces it.
        assert_eq!(cache.get(&1), None);
        assert_eq!(
            cache.try_get_with(1, async { Ok::<_, &str>(11) }).await,
            Ok(11)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_stale_value_past_its_window_or_after_an_invalidation_or_clear() {
    for engine in ENGINES {
        let failing = || async { Err::<u64, _>("down") };
        let cache = stale(engine, ms(30), ms(100));
        cache.insert(1, 10);
        sleep(ms(400)).await;
        assert!(
            cache.try_get_with(1, failing()).await.is_err(),
            "{engine:?}: past the window"
        );

        let cache = stale(engine, ms(30), Duration::from_secs(30));
        for key in [1, 2, 3] {
            cache.insert(key, key);
        }
        sleep(ms(100)).await;
        cache.invalidate(&1);
        assert!(
            cache.try_get_with(1, failing()).await.is_err(),
            "{engine:?}: invalidated"
        );
        assert_eq!(cache.try_get_with(2, failing()).await, Ok(2), "{engine:?}");
        cache.clear();
        assert!(
            cache.try_get_with(3, failing()).await.is_err(),
            "{engine:?}: cleared"
        );
        assert_eq!(cache.metrics().stale_served, 1, "{engine:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_to_idle_expires_an_unread_entry_and_reads_keep_one_alive() {
    for engine in ENGINES {
        let cache: AsyncCache<u64, u64> = AsyncCache::builder()
            .engine(engine)
            .time_to_idle(ms(200))
            .build();
        cache.insert(1, 1);
        cache.insert(2, 2);
        for _ in 0..10 {
            sleep(ms(50)).await;
            assert_eq!(cache.get(&1), Some(1), "{engine:?}: a read entry idled out");
            assert!(cache.contains_key(&1));
        }
        // 500 ms without a read of 2 (contains_key does not count).
        assert_eq!(cache.get(&2), None, "{engine:?}: an idle entry was served");
        sleep(ms(600)).await;
        assert_eq!(cache.get(&1), None, "{engine:?}");
        assert!(cache.metrics().expirations >= 1, "{engine:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_ttl_and_an_idle_timeout_the_earlier_expiry_wins() {
    for engine in ENGINES {
        let cache: AsyncCache<u64, u64> = AsyncCache::builder()
            .engine(engine)
            .default_ttl(ms(300))
            .time_to_idle(Duration::from_secs(30))
            .build();
        cache.insert(1, 1);
        sleep(ms(100)).await;
        assert_eq!(cache.get(&1), Some(1));
        sleep(ms(400)).await; // read 400 ms ago but the TTL passed
        assert_eq!(cache.get(&1), None, "{engine:?}: lived past its TTL");

        let cache: AsyncCache<u64, u64> = AsyncCache::builder()
            .engine(engine)
            .default_ttl(Duration::from_secs(30))
            .time_to_idle(ms(100))
            .build();
        assert_eq!(cache.get_with(1, async { 1 }).await, 1);
        sleep(ms(400)).await;
        assert_eq!(
            cache.get(&1),
            None,
            "{engine:?}: lived past its idle timeout"
        );
    }
}

// One thread, as `a_failed_load_is_answered_with_the_expired_value_for_every_waiter`: a
// `None` is not stored either.
#[tokio::test]
async fn optionally_get_with_shares_a_none_with_its_waiters_and_caches_nothing() {
    for engine in ENGINES {
        let cache: AsyncCache<u64, u64> = AsyncCache::builder().engine(engine).build();
        let (gate, runs) = (Arc::new(Semaphore::new(0)), Arc::new(AtomicU64::new(0)));
        let callers: Vec<_> = (0..1_000)
            .map(|_| {
                let (cache, gate, runs) = (cache.clone(), Arc::clone(&gate), Arc::clone(&runs));
                tokio::spawn(async move {
                    cache
                        .optionally_get_with(1, async move {
                            runs.fetch_add(1, Ordering::SeqCst);
                            drop(gate.acquire().await);
                            None
                        })
                        .await
                })
            })
            .collect();
        sleep(ms(50)).await;
        gate.add_permits(1);
        for caller in callers {
            assert_eq!(caller.await.unwrap(), None, "{engine:?}");
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1, "{engine:?}: one load");
        let m = cache.metrics();
        assert_eq!((m.loads, m.load_errors, m.size), (1, 0, 0), "{engine:?}");
        assert_eq!(
            cache.optionally_get_with(1, async { Some(5) }).await,
            Some(5)
        );
        assert_eq!(cache.get(&1), Some(5), "{engine:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expire_after_gives_each_loaded_or_inserted_value_its_own_ttl() {
    for engine in ENGINES {
        // Even values live 100 ms, odd ones forever.
        let cache: AsyncCache<u64, u64> = AsyncCache::builder()
            .engine(engine)
            .default_ttl(ms(100))
            .expire_after(|_key, value| (value % 2 == 0).then(|| ms(100)))
            .build();
        assert_eq!(cache.get_with(1, async { 2 }).await, 2);
        assert_eq!(cache.get_with(2, async { 3 }).await, 3);
        cache.insert(3, 4);
        cache.insert(4, 5);
        cache.insert_with_ttl(5, 7, Some(ms(100))); // its own TTL wins
        sleep(ms(400)).await;
        let live: Vec<u64> = (1..=5).filter(|key| cache.get(key).is_some()).collect();
        assert_eq!(live, [2, 4], "{engine:?}");
    }
}

static VERSIONS: AtomicU64 = AtomicU64::new(0);

#[cache_core::async_ttl(time_to_live = 60, refresh_after = 0.05)]
async fn versioned(key: u64) -> u64 {
    key * 1_000 + VERSIONS.fetch_add(1, Ordering::SeqCst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_refresh_after_attribute_reloads_an_old_entry_in_the_background() {
    assert_eq!(versioned(1).await, 1_000);
    assert_eq!(versioned(1).await, 1_000);
    sleep(ms(150)).await;
    assert_eq!(
        versioned(1).await,
        1_000,
        "an old entry is still served at once"
    );
    until("the reload", || versioned::metrics().refreshes == 1).await;
    until("the reloaded value", || {
        VERSIONS.load(Ordering::SeqCst) == 2
    })
    .await;
    sleep(ms(20)).await;
    assert_eq!(versioned(1).await, 1_001);
    assert_eq!(versioned::metrics().loads, 2);
}

static FAIL: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[cache_core::async_ttl(time_to_live = 0.05, stale_on_error = 60)]
async fn quote(symbol: u64) -> Result<u64, String> {
    if FAIL.load(Ordering::SeqCst) {
        Err("exchange down".into())
    } else {
        Ok(symbol + 1)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stale_on_error_attribute_answers_a_failure_with_the_expired_value() {
    assert_eq!(quote(7).await, Ok(8));
    sleep(ms(150)).await;
    FAIL.store(true, Ordering::SeqCst);
    assert_eq!(
        quote(7).await,
        Ok(8),
        "the expired value answers the failure"
    );
    assert_eq!(
        quote(9).await,
        Err("exchange down".into()),
        "no value to fall back on"
    );
    quote::invalidate(7);
    assert_eq!(
        quote(7).await,
        Err("exchange down".into()),
        "invalidated: no stale value"
    );
    assert_eq!(quote::metrics().stale_served, 1);
}
