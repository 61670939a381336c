//! Single-flight loading under real concurrency: herds, error storms, cancelled and panicking
//! leaders.
//!
//! Every test runs on each storage engine (`name::quick_cache`, `name::moka`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cache_core::{AsyncCache, Engine};
use tokio::sync::Notify;
use tokio::time::{sleep, timeout};

/// Any test that would hang fails after this instead.
const HANG: Duration = Duration::from_secs(20);

tests::test_on_every_engine!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ten_thousand_concurrent_misses_on_one_key_run_one_load
);
async fn ten_thousand_concurrent_misses_on_one_key_run_one_load(engine: Engine) {
    let cache = AsyncCache::<u64, String>::builder().engine(engine).build();
    let calls = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..10_000)
        .map(|_| {
            let cache = cache.clone();
            let calls = Arc::clone(&calls);
            tokio::spawn(async move {
                cache
                    .get_with(42, async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        sleep(Duration::from_millis(50)).await;
                        "answer".to_string()
                    })
                    .await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(timeout(HANG, task).await.unwrap().unwrap(), "answer");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let m = cache.metrics();
    assert_eq!(m.loads, 1);
    assert_eq!(m.hits + m.misses, 10_000);
    assert_eq!(m.size, 1);
}

// One thread: an error is not stored, so a caller that had missed but not yet joined the flight
// when the load failed would load again (as it should); on one thread each caller's miss and join
// are one poll, all done before the loader's sleep ends.
tests::test_on_every_engine!(
    #[tokio::test]
    async fn error_storm_of_100_callers_runs_one_load_and_returns_one_shared_error
);
async fn error_storm_of_100_callers_runs_one_load_and_returns_one_shared_error(engine: Engine) {
    let cache = AsyncCache::<u64, u64>::builder().engine(engine).build();
    let calls = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let cache = cache.clone();
            let calls = Arc::clone(&calls);
            tokio::spawn(async move {
                cache
                    .try_get_with(7, async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        sleep(Duration::from_millis(50)).await;
                        Err::<u64, _>(String::from("backend down"))
                    })
                    .await
            })
        })
        .collect();
    let mut errors = Vec::new();
    for task in tasks {
        errors.push(timeout(HANG, task).await.unwrap().unwrap().unwrap_err());
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "one backend call for the storm"
    );
    assert_eq!(errors.len(), 100);
    assert!(
        errors.iter().all(|e| Arc::ptr_eq(e, &errors[0])),
        "one shared error"
    );
    assert_eq!(*errors[0], "backend down");
    assert_eq!(cache.get(&7), None, "errors are never cached");
    let m = cache.metrics();
    assert_eq!((m.loads, m.load_errors, m.size), (1, 1, 0));
    // The next call loads again and can succeed.
    assert_eq!(
        cache.try_get_with(7, async { Ok::<_, String>(70) }).await,
        Ok(70)
    );
}

/// A loader that signals when it starts and finishes only when released.
struct Gate {
    started: Notify,
    release: Notify,
    calls: AtomicUsize,
}

impl Gate {
    fn new() -> Arc<Self> {
        Arc::new(Gate {
            started: Notify::new(),
            release: Notify::new(),
            calls: AtomicUsize::new(0),
        })
    }

    async fn load(self: Arc<Self>, value: u64) -> u64 {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.started.notify_one();
        self.release.notified().await;
        value
    }
}

tests::test_on_every_engine!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropping_the_leader_of_get_with_hands_the_load_to_a_waiter
);
async fn dropping_the_leader_of_get_with_hands_the_load_to_a_waiter(engine: Engine) {
    let cache = AsyncCache::<u64, u64>::builder().engine(engine).build();
    let gate = Gate::new();
    let leader = tokio::spawn({
        let (cache, gate) = (cache.clone(), Arc::clone(&gate));
        async move { cache.get_with(1, gate.load(10)).await }
    });
    gate.started.notified().await;
    let waiters: Vec<_> = (0..10)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get_with(1, async { 20 }).await })
        })
        .collect();
    sleep(Duration::from_millis(50)).await; // let the waiters join the load
    assert_eq!(gate.calls.load(Ordering::SeqCst), 1);
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    for waiter in waiters {
        // One waiter restarted the load with its own loader; all got its value.
        assert_eq!(timeout(HANG, waiter).await.unwrap().unwrap(), 20);
    }
    assert_eq!(cache.metrics().loads, 2);
    assert_eq!(cache.get(&1), Some(20));
}

tests::test_on_every_engine!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropping_the_caller_of_get_with_detached_neither_strands_nor_restarts_the_load
);
async fn dropping_the_caller_of_get_with_detached_neither_strands_nor_restarts_the_load(
    engine: Engine,
) {
    let cache = AsyncCache::<u64, u64>::builder().engine(engine).build();
    let gate = Gate::new();
    let first = tokio::spawn({
        let (cache, gate) = (cache.clone(), Arc::clone(&gate));
        async move { cache.get_with_detached(1, gate.load(10)).await }
    });
    gate.started.notified().await;
    let waiter = tokio::spawn({
        let cache = cache.clone();
        async move { cache.get_with_detached(1, async { 20 }).await }
    });
    sleep(Duration::from_millis(50)).await;
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    gate.release.notify_one();
    assert_eq!(timeout(HANG, waiter).await.unwrap().unwrap(), 10);
    assert_eq!(gate.calls.load(Ordering::SeqCst), 1, "not restarted");
    assert_eq!(cache.metrics().loads, 1);
}

tests::test_on_every_engine!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_detached_load_is_cached_even_when_every_caller_is_gone
);
async fn a_detached_load_is_cached_even_when_every_caller_is_gone(engine: Engine) {
    let cache = AsyncCache::<u64, u64>::builder().engine(engine).build();
    let gate = Gate::new();
    let only = tokio::spawn({
        let (cache, gate) = (cache.clone(), Arc::clone(&gate));
        async move { cache.get_with_detached(1, gate.load(10)).await }
    });
    gate.started.notified().await;
    only.abort();
    let _ = only.await;
    gate.release.notify_one();
    timeout(HANG, async {
        while !cache.contains_key(&1) {
            sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(cache.get(&1), Some(10));
}

tests::test_on_every_engine!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_loader_never_strands_waiters_or_poisons_the_cache
);
async fn a_panicking_loader_never_strands_waiters_or_poisons_the_cache(engine: Engine) {
    let cache = AsyncCache::<u64, u64>::builder().engine(engine).build();
    let started = Arc::new(Notify::new());
    let leader = tokio::spawn({
        let (cache, started) = (cache.clone(), Arc::clone(&started));
        async move {
            cache
                .get_with(1, async move {
                    started.notify_one();
                    sleep(Duration::from_millis(100)).await;
                    panic!("loader exploded");
                })
                .await
        }
    });
    started.notified().await;
    let waiters: Vec<_> = (0..20)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get_with(1, async { 99 }).await })
        })
        .collect();
    let leader = timeout(HANG, leader).await.unwrap().unwrap_err();
    let message = leader.into_panic();
    assert_eq!(message.downcast_ref::<&str>(), Some(&"loader exploded"));
    for waiter in waiters {
        // Waiters of the panicked load panic too (none hangs); a waiter that arrived after
        // the panic settled loads afresh.
        match timeout(HANG, waiter).await.unwrap() {
            Ok(value) => assert_eq!(value, 99),
            Err(error) => {
                let payload = error.into_panic();
                let text = payload.downcast_ref::<String>().unwrap();
                assert!(text.contains("loader exploded"), "{text}");
            }
        }
    }
    // Nothing is poisoned: the cache loads and serves as before.
    assert_eq!(cache.get_with(1, async { 5 }).await, 5);
    assert_eq!(cache.get(&1), Some(5));
    assert!(cache.metrics().load_errors >= 1);
}

tests::test_on_every_engine!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_detached_loader_reaches_every_waiter_as_a_panic
);
async fn a_panicking_detached_loader_reaches_every_waiter_as_a_panic(engine: Engine) {
    let cache = AsyncCache::<u64, u64>::builder().engine(engine).build();
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move {
                cache
                    .get_with_detached(1, async {
                        sleep(Duration::from_millis(50)).await;
                        panic!("detached loader exploded")
                    })
                    .await
            })
        })
        .collect();
    for task in tasks {
        let error = timeout(HANG, task).await.unwrap().unwrap_err();
        let payload = error.into_panic();
        assert!(
            payload
                .downcast_ref::<String>()
                .unwrap()
                .contains("detached loader exploded")
        );
    }
    let m = cache.metrics();
    assert_eq!((m.loads, m.load_errors, m.size), (1, 1, 0));
}

tests::test_on_every_engine!(
    #[tokio::test]
    async fn callers_with_different_error_types_each_get_a_value_or_their_own_error
);
async fn callers_with_different_error_types_each_get_a_value_or_their_own_error(engine: Engine) {
    let cache = AsyncCache::<u64, u64>::builder().engine(engine).build();
    let gate = Gate::new();
    let failing = tokio::spawn({
        let (cache, gate) = (cache.clone(), Arc::clone(&gate));
        async move {
            cache
                .try_get_with(1, async move {
                    gate.load(0).await;
                    Err::<u64, _>(std::io::Error::other("io failed"))
                })
                .await
        }
    });
    gate.started.notified().await;
    // An infallible caller cannot receive an io::Error: it loads again itself.
    let infallible = tokio::spawn({
        let cache = cache.clone();
        async move { cache.get_with(1, async { 3 }).await }
    });
    sleep(Duration::from_millis(20)).await;
    gate.release.notify_one();
    assert!(failing.await.unwrap().is_err());
    assert_eq!(timeout(HANG, infallible).await.unwrap().unwrap(), 3);
    assert_eq!(cache.metrics().loads, 2);
}
