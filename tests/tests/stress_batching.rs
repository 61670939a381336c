//! DataLoader batching fused with the cache, including across runtimes that come and go.
//!
//! Every test runs on each storage engine (`name::quick_cache`, `name::moka`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use cache_core::{AsyncCache, BatchLoader, Engine};
use futures_util::future::join_all;
use tokio::sync::Notify;
use tokio::time::{sleep, timeout};

const HANG: Duration = Duration::from_secs(20);

/// A batch backend that records every call's keys.
#[derive(Clone, Default)]
struct Backend {
    calls: Arc<Mutex<Vec<Vec<u64>>>>,
}

impl Backend {
    fn loader(
        &self,
        cache: &AsyncCache<u64, u64>,
        delay: Duration,
    ) -> BatchLoader<u64, u64, String> {
        let calls = Arc::clone(&self.calls);
        cache.batch_loader(move |keys: Vec<u64>| {
            calls.lock().unwrap().push(keys.clone());
            async move {
                sleep(delay).await;
                // Odd keys exist, even keys do not; key 999 fails the whole batch.
                if keys.contains(&999) {
                    return Err(String::from("batch failed"));
                }
                Ok(keys
                    .into_iter()
                    .filter(|k| k % 2 == 1)
                    .map(|k| (k, k * 10))
                    .collect())
            }
        })
    }

    fn calls(&self) -> Vec<Vec<u64>> {
        self.calls.lock().unwrap().clone()
    }
}

fn cache(engine: Engine, window_ms: u64, max: usize) -> AsyncCache<u64, u64> {
    AsyncCache::builder()
        .engine(engine)
        .maxsize(10_000)
        .batch_window(Duration::from_millis(window_ms))
        .max_batch_size(max)
        .build()
}

tests::test_on_every_engine!(
    #[tokio::test]
    async fn concurrent_loads_in_one_window_go_out_as_one_call_with_duplicates_sent_once
);
async fn concurrent_loads_in_one_window_go_out_as_one_call_with_duplicates_sent_once(
    engine: Engine,
) {
    let cache = cache(engine, 20, 100);
    let backend = Backend::default();
    let loader = backend.loader(&cache, Duration::ZERO);
    let keys = [1, 3, 5, 3, 1, 7];
    let results = join_all(keys.iter().map(|k| loader.load(*k))).await;
    let values: Vec<_> = results.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(
        values,
        [Some(10), Some(30), Some(50), Some(30), Some(10), Some(70)]
    );
    assert_eq!(backend.calls(), [vec![1, 3, 5, 7]]);
    let m = cache.metrics();
    assert_eq!((m.loads, m.misses, m.size), (1, 6, 4));
}

tests::test_on_every_engine!(
    #[tokio::test]
    async fn a_full_window_goes_out_at_once_and_the_rest_in_the_next_window
);
async fn a_full_window_goes_out_at_once_and_the_rest_in_the_next_window(engine: Engine) {
    let cache = cache(engine, 200, 3);
    let backend = Backend::default();
    let loader = backend.loader(&cache, Duration::ZERO);
    let started = tokio::time::Instant::now();
    let results = join_all((0..7_u64).map(|k| loader.load(2 * k + 1))).await;
    assert!(results.iter().all(Result::is_ok));
    let sizes: Vec<_> = backend.calls().iter().map(Vec::len).collect();
    assert_eq!(sizes, [3, 3, 1]);
    // The last key waited for its window; the two full ones did not.
    assert!(started.elapsed() >= Duration::from_millis(200));
}

tests::test_on_every_engine!(
    #[tokio::test]
    async fn cached_and_loading_keys_are_not_sent_again
);
async fn cached_and_loading_keys_are_not_sent_again(engine: Engine) {
    let cache = cache(engine, 20, 100);
    let backend = Backend::default();
    let loader = backend.loader(&cache, Duration::from_millis(50));
    cache.insert(1, 111);
    // Key 3 is being loaded by a single load when the batch window opens.
    let release = Arc::new(Notify::new());
    let single = tokio::spawn({
        let (cache, release) = (cache.clone(), Arc::clone(&release));
        async move {
            cache
                .get_with(3, async move {
                    release.notified().await;
                    333
                })
                .await
        }
    });
    sleep(Duration::from_millis(20)).await;
    let batch = tokio::spawn({
        let loader = loader.clone();
        async move { join_all([1, 3, 5].map(|k| loader.load(k))).await }
    });
    sleep(Duration::from_millis(100)).await;
    release.notify_one();
    let values: Vec<_> = timeout(HANG, batch)
        .await
        .unwrap()
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(values, [Some(111), Some(333), Some(50)]);
    assert_eq!(single.await.unwrap(), 333);
    assert_eq!(backend.calls(), [vec![5]]);
}

tests::test_on_every_engine!(
    #[tokio::test]
    async fn a_key_missing_from_the_map_loads_as_none_and_is_not_cached
);
async fn a_key_missing_from_the_map_loads_as_none_and_is_not_cached(engine: Engine) {
    let cache = cache(engine, 5, 100);
    let backend = Backend::default();
    let loader = backend.loader(&cache, Duration::ZERO);
    assert_eq!(loader.load(2).await.unwrap(), None);
    assert!(!cache.contains_key(&2));
    assert_eq!(loader.load(2).await.unwrap(), None);
    assert_eq!(backend.calls().len(), 2, "a missing key is asked again");
}

tests::test_on_every_engine!(
    #[tokio::test]
    async fn a_batch_error_reaches_every_key_of_the_batch_and_nothing_is_cached
);
async fn a_batch_error_reaches_every_key_of_the_batch_and_nothing_is_cached(engine: Engine) {
    let cache = cache(engine, 20, 100);
    let backend = Backend::default();
    let loader = backend.loader(&cache, Duration::ZERO);
    let results = join_all([1, 999, 5].map(|k| loader.load(k))).await;
    let errors: Vec<_> = results.into_iter().map(Result::unwrap_err).collect();
    assert!(errors.iter().all(|e| **e == "batch failed"));
    assert!(Arc::ptr_eq(&errors[0], &errors[2]), "one error shared");
    assert_eq!(cache.metrics().size, 0);
    assert_eq!(cache.metrics().load_errors, 1);
}

tests::test_on_every_engine!(
    #[tokio::test]
    async fn a_panicking_batch_function_reaches_every_waiter_as_a_panic
);
async fn a_panicking_batch_function_reaches_every_waiter_as_a_panic(engine: Engine) {
    let cache = cache(engine, 5, 100);
    let loader = cache.batch_loader(|_keys: Vec<u64>| async {
        if true {
            panic!("batch exploded");
        }
        Ok::<HashMap<u64, u64>, String>(HashMap::new())
    });
    let tasks: Vec<_> = (0..5)
        .map(|k| {
            let loader = loader.clone();
            tokio::spawn(async move { loader.load(k).await })
        })
        .collect();
    for task in tasks {
        let payload = timeout(HANG, task).await.unwrap().unwrap_err().into_panic();
        assert!(
            payload
                .downcast_ref::<String>()
                .unwrap()
                .contains("batch exploded")
        );
    }
    // Nothing is poisoned.
    assert_eq!(cache.get_with(1, async { 1 }).await, 1);
}

tests::test_on_every_engine!(
    #[tokio::test]
    async fn invalidate_fences_a_batch_load_in_flight
);
async fn invalidate_fences_a_batch_load_in_flight(engine: Engine) {
    let cache = cache(engine, 5, 100);
    let backend = Backend::default();
    let loader = backend.loader(&cache, Duration::from_millis(100));
    let in_flight = tokio::spawn({
        let loader = loader.clone();
        async move { loader.load(1).await }
    });
    sleep(Duration::from_millis(50)).await; // the batch is out, its call still running
    cache.invalidate(&1);
    assert_eq!(
        timeout(HANG, in_flight).await.unwrap().unwrap().unwrap(),
        Some(10)
    );
    assert!(
        !cache.contains_key(&1),
        "the fenced batch load did not store"
    );
}

type Shared = (AsyncCache<u64, u64>, BatchLoader<u64, u64, String>, Backend);

/// One cache, loader and backend per engine, in statics that outlive every runtime.
fn shared(engine: Engine) -> &'static Shared {
    fn make(engine: Engine) -> Shared {
        let cache = cache(engine, 30, 1_000);
        let backend = Backend::default();
        let loader = backend.loader(&cache, Duration::from_millis(10));
        (cache, loader, backend)
    }
    static QUICK_CACHE: LazyLock<Shared> = LazyLock::new(|| make(Engine::QuickCache));
    static MOKA: LazyLock<Shared> = LazyLock::new(|| make(Engine::Moka));
    match engine {
        Engine::Moka => &MOKA,
        _ => &QUICK_CACHE,
    }
}

tests::test_on_every_engine!(
    #[test]
    fn batching_keeps_working_across_runtimes_that_are_created_and_dropped
);
/// The Python original hangs here: its timer task dies with the first event loop.
fn batching_keeps_working_across_runtimes_that_are_created_and_dropped(engine: Engine) {
    let (cache, loader, backend) = shared(engine);
    for round in 0..5_u64 {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let keys: Vec<u64> = (0..20).map(|i| round * 100 + 2 * i + 1).collect();
        let values = runtime.block_on(async {
            timeout(HANG, join_all(keys.iter().map(|k| loader.load(*k))))
                .await
                .expect("a batch hung")
        });
        for (key, value) in keys.iter().zip(values) {
            assert_eq!(value.unwrap(), Some(key * 10));
        }
        drop(runtime);
    }
    assert_eq!(backend.calls().len(), 5, "one batch per round");
    assert_eq!(cache.metrics().size, 100);
}

tests::test_on_every_engine!(
    #[test]
    fn a_runtime_dropped_mid_batch_strands_no_caller_elsewhere
);
/// A runtime shuts down while the batch call it started runs; callers on another runtime that
/// wait on those keys queue them again and get their values.
fn a_runtime_dropped_mid_batch_strands_no_caller_elsewhere(engine: Engine) {
    // Ten keys fill a batch, so the doomed runtime's tenth caller sends it at once.
    let cache = cache(engine, 50, 10);
    let calls = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let loader = cache.batch_loader({
        let (calls, finished) = (Arc::clone(&calls), Arc::clone(&finished));
        move |keys: Vec<u64>| {
            calls.fetch_add(1, Ordering::SeqCst);
            let finished = Arc::clone(&finished);
            async move {
                sleep(Duration::from_millis(100)).await;
                finished.fetch_add(1, Ordering::SeqCst);
                Ok::<_, String>(
                    keys.into_iter()
                        .map(|k| (k, k + 1))
                        .collect::<HashMap<_, _>>(),
                )
            }
        }
    });
    let doomed = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    for key in 0..10 {
        let loader = loader.clone();
        doomed.spawn(async move { loader.load(key).await });
    }
    let survivor = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    std::thread::sleep(Duration::from_millis(20)); // the doomed batch is out
    // Joins the doomed batch for keys 0..5; keys 100..105 open a window of their own.
    let waiting = survivor.spawn({
        let loader = loader.clone();
        async move { join_all((0..5).chain(100..105).map(|k| loader.load(k))).await }
    });
    std::thread::sleep(Duration::from_millis(30));
    drop(doomed); // mid-call: its batch task is dropped
    let values = survivor
        .block_on(async { timeout(HANG, waiting).await })
        .expect("a caller was stranded")
        .unwrap();
    let keys = (0..5).chain(100..105);
    for (key, value) in keys.zip(values) {
        assert_eq!(value.unwrap(), Some(key + 1));
    }
    // The doomed batch never finished; keys 0..5 were queued again by the survivor.
    let (calls, finished) = (
        calls.load(Ordering::SeqCst),
        finished.load(Ordering::SeqCst),
    );
    assert!(calls >= 2, "calls: {calls}");
    assert_eq!(finished, calls - 1, "only the doomed batch was cut short");
}
