//! Behaviour of `#[async_lru]` and `#[async_ttl]` beyond the Python port: herds, runtimes,
//! borrowed arguments, methods, the options (`key`, `skip_args`, `time_to_live`, `maxsize`,
//! `detached`) and the helpers (`refresh`, `invalidate`, `clear`) against loads in flight.
//! `Result` returns are in `macro_results.rs`.
//!
//! Every cached function belongs to one test (a cache is per function and tests run in
//! parallel). Bodies count their runs in a static; a body that must be caught in flight either
//! waits on static `Notify`s or holds until every caller has missed (each caller counts its
//! miss before it joins the load), so the tests do not depend on how fast tasks start.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cache_core::{async_lru, async_ttl};
use futures_util::future::join_all;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};

/// Any await that could hang fails the test after this instead.
const HANG: Duration = Duration::from_secs(10);

fn count(runs: &AtomicUsize) -> usize {
    runs.fetch_add(1, Ordering::SeqCst) + 1
}

fn runs(runs: &AtomicUsize) -> usize {
    runs.load(Ordering::SeqCst)
}

/// Waits until `condition` holds, giving up after [`HANG`] (the test's asserts then fail).
async fn until(condition: impl Fn() -> bool) {
    let deadline = Instant::now() + HANG;
    while !condition() && Instant::now() < deadline {
        sleep(Duration::from_millis(2)).await;
    }
}

/// Awaits every task, failing the test if one hangs or panics.
async fn join_every<T>(tasks: Vec<JoinHandle<T>>) -> Vec<T> {
    timeout(HANG, join_all(tasks))
        .await
        .expect("no call hangs")
        .into_iter()
        .map(|joined| joined.expect("no call panics"))
        .collect()
}

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn multi_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

// ---------------------------------------------------------------------------------------------
// Herd

static HERD_RUNS: AtomicUsize = AtomicUsize::new(0);

#[async_lru]
async fn herd_owned(id: u64) -> String {
    count(&HERD_RUNS);
    until(|| herd_owned::metrics().misses >= 1000).await;
    format!("value-{id}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_calls_run_the_body_once_and_all_get_its_value() {
    let calls = (0..1000).map(|_| tokio::spawn(herd_owned(7))).collect();
    for value in join_every(calls).await {
        assert_eq!(value, "value-7");
    }
    assert_eq!(runs(&HERD_RUNS), 1);
    let m = herd_owned::metrics();
    assert_eq!((m.misses, m.hits, m.loads, m.size), (1000, 0, 1, 1));
}

static HERD_BORROWED_RUNS: AtomicUsize = AtomicUsize::new(0);

// A borrowed argument: the load runs in the calling task (not detached).
#[async_lru]
async fn herd_borrowed(name: &str) -> String {
    count(&HERD_BORROWED_RUNS);
    until(|| herd_borrowed::metrics().misses >= 1000).await;
    format!("value-{name}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_calls_with_a_borrowed_argument_run_the_body_once() {
    let calls = (0..1000)
        .map(|_| {
            let name = String::from("seven");
            tokio::spawn(async move { herd_borrowed(&name).await })
        })
        .collect();
    for value in join_every(calls).await {
        assert_eq!(value, "value-seven");
    }
    assert_eq!(runs(&HERD_BORROWED_RUNS), 1);
    let m = herd_borrowed::metrics();
    assert_eq!((m.misses, m.hits, m.loads, m.size), (1000, 0, 1, 1));
}

// ---------------------------------------------------------------------------------------------
// Runtimes

static RUNTIMES_RUNS: AtomicUsize = AtomicUsize::new(0);

#[async_lru]
async fn across_runtimes(id: u64) -> u64 {
    count(&RUNTIMES_RUNS);
    id * 10
}

static RUNTIMES_BORROWED_RUNS: AtomicUsize = AtomicUsize::new(0);

#[async_lru]
async fn across_runtimes_borrowed(name: &str) -> usize {
    count(&RUNTIMES_BORROWED_RUNS);
    name.len()
}

#[test]
fn cache_survives_runtimes_created_and_dropped_in_turn_and_keeps_serving_hits() {
    for round in 0..6 {
        let runtime = if round % 2 == 0 {
            current_thread_runtime()
        } else {
            multi_thread_runtime()
        };
        let (owned, borrowed) = runtime.block_on(async {
            (
                across_runtimes(5).await,
                across_runtimes_borrowed("five").await,
            )
        });
        drop(runtime);
        assert_eq!((owned, borrowed), (50, 4));
    }
    assert_eq!(runs(&RUNTIMES_RUNS), 1);
    assert_eq!(runs(&RUNTIMES_BORROWED_RUNS), 1);
    let (m, b) = (
        across_runtimes::metrics(),
        across_runtimes_borrowed::metrics(),
    );
    assert_eq!((m.misses, m.hits, m.size), (1, 5, 1));
    assert_eq!((b.misses, b.hits, b.size), (1, 5, 1));
}

static DROPPED_RUNTIME_RUNS: AtomicUsize = AtomicUsize::new(0);
static DROPPED_RUNTIME_STARTED: Notify = Notify::const_new();

#[async_lru]
async fn load_outliving_its_runtime(id: u64) -> usize {
    let run = count(&DROPPED_RUNTIME_RUNS);
    if run == 1 {
        DROPPED_RUNTIME_STARTED.notify_one();
        std::future::pending::<()>().await;
    }
    usize::try_from(id).expect("a small id") + run
}

#[test]
fn runtime_dropped_mid_load_leaves_no_load_for_the_next_runtime_to_wait_on() {
    let first = current_thread_runtime();
    first.block_on(async {
        drop(tokio::spawn(load_outliving_its_runtime(1)));
        timeout(HANG, DROPPED_RUNTIME_STARTED.notified())
            .await
            .expect("the first load starts");
    });
    // Drops the caller and its detached load, which never finished.
    drop(first);
    let second = current_thread_runtime();
    let value = second
        .block_on(async { timeout(HANG, load_outliving_its_runtime(1)).await })
        .expect("the abandoned load is not waited on");
    assert_eq!(value, 3);
    assert_eq!(runs(&DROPPED_RUNTIME_RUNS), 2);
    assert_eq!(second.block_on(load_outliving_its_runtime(1)), 3, "cached");
}

static TWO_RUNTIMES_RUNS: AtomicUsize = AtomicUsize::new(0);

#[async_lru]
async fn shared_by_two_runtimes(id: u64) -> u64 {
    count(&TWO_RUNTIMES_RUNS);
    until(|| shared_by_two_runtimes::metrics().misses >= 2).await;
    id + 1
}

#[test]
fn calls_from_two_runtimes_at_once_share_one_load() {
    let threads: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(|| {
                current_thread_runtime()
                    .block_on(async { timeout(HANG, shared_by_two_runtimes(41)).await })
            })
        })
        .collect();
    for thread in threads {
        assert_eq!(thread.join().expect("no thread panics"), Ok(42));
    }
    assert_eq!(runs(&TWO_RUNTIMES_RUNS), 1);
    assert_eq!(shared_by_two_runtimes::metrics().loads, 1);
}

// ---------------------------------------------------------------------------------------------
// Borrowed arguments are keyed by their owned form

static STR_RUNS: AtomicUsize = AtomicUsize::new(0);

#[async_lru]
async fn by_str(text: &str) -> usize {
    count(&STR_RUNS);
    text.len()
}

#[tokio::test]
async fn str_argument_from_a_string_and_from_a_literal_share_one_entry() {
    let owned = String::from("hello");
    assert_eq!(by_str(&owned).await, 5);
    assert_eq!(by_str("hello").await, 5);
    assert_eq!(by_str(&owned[..]).await, 5);
    assert_eq!(runs(&STR_RUNS), 1);
    assert_eq!(by_str("world!").await, 6);
    assert_eq!(runs(&STR_RUNS), 2);
    by_str::invalidate("hello");
    assert_eq!(by_str(&owned).await, 5);
    assert_eq!(runs(&STR_RUNS), 3);
}

static BYTES_RUNS: AtomicUsize = AtomicUsize::new(0);

#[async_lru]
async fn by_bytes(bytes: &[u8]) -> u32 {
    count(&BYTES_RUNS);
    bytes.iter().map(|&b| u32::from(b)).sum()
}

#[tokio::test]
async fn byte_slice_argument_is_keyed_by_its_contents() {
    let vec = vec![1_u8, 2, 3];
    assert_eq!(by_bytes(&vec).await, 6);
    assert_eq!(by_bytes(&[1, 2, 3]).await, 6);
    assert_eq!(by_bytes(b"\x01\x02\x03").await, 6);
    assert_eq!(runs(&BYTES_RUNS), 1);
    assert_eq!(by_bytes(&vec[..2]).await, 3);
    assert_eq!(runs(&BYTES_RUNS), 2);
    by_bytes::invalidate(&[1, 2, 3]);
    assert_eq!(by_bytes(&vec).await, 6);
    assert_eq!(runs(&BYTES_RUNS), 3);
}

static PATH_RUNS: AtomicUsize = AtomicUsize::new(0);

#[async_lru]
async fn by_path(path: &Path) -> String {
    count(&PATH_RUNS);
    path.display().to_string()
}

#[tokio::test]
async fn path_argument_from_a_path_buf_and_from_a_str_share_one_entry() {
    let buf = PathBuf::from("/srv/data/a.txt");
    assert_eq!(by_path(&buf).await, "/srv/data/a.txt");
    assert_eq!(
        by_path(Path::new("/srv/data/a.txt")).await,
        "/srv/data/a.txt"
    );
    assert_eq!(runs(&PATH_RUNS), 1);
    assert_eq!(
        by_path(Path::new("/srv/data/b.txt")).await,
        "/srv/data/b.txt"
    );
    assert_eq!(runs(&PATH_RUNS), 2);
    by_path::invalidate(Path::new("/srv/data/a.txt"));
    assert_eq!(by_path(&buf).await, "/srv/data/a.txt");
    assert_eq!(runs(&PATH_RUNS), 3);
}

static MIXED_RUNS: AtomicUsize = AtomicUsize::new(0);

#[async_lru]
async fn by_id_and_name(id: u64, name: &str) -> String {
    count(&MIXED_RUNS);
    format!("{id}-{name}")
}

#[tokio::test]
async fn owned_and_borrowed_arguments_together_form_the_key() {
    let name = String::from("ada");
    assert_eq!(by_id_and_name(1, &name).await, "1-ada");
    assert_eq!(by_id_and_name(1, "ada").await, "1-ada");
    assert_eq!(runs(&MIXED_RUNS), 1);
    assert_eq!(by_id_and_name(2, "ada").await, "2-ada");
    assert_eq!(by_id_and_name(1, "bob").await, "1-bob");
    assert_eq!(runs(&MIXED_RUNS), 3);
    by_id_and_name::invalidate(1, "ada");
    assert_eq!(by_id_and_name(1, &name).await, "1-ada");
    assert_eq!(by_id_and_name(2, &name).await, "2-ada");
    assert_eq!(runs(&MIXED_RUNS), 4, "only (1, \"ada\") was invalidated");
}

// ---------------------------------------------------------------------------------------------
// Methods

/// Not `Hash`, not `Clone`: only usable as a skipped receiver.
struct Client {
    base: String,
}

static CLIENT_RUNS: AtomicUsize = AtomicUsize::new(0);

impl Client {
    #[async_ttl(time_to_live = 60, skip_args = 1)]
    async fn fetch(&self, id: u64) -> String {
        count(&CLIENT_RUNS);
        format!("{}/{id}", self.base)
    }
}

#[tokio::test]
async fn method_with_skipped_self_shares_one_cache_across_instances() {
    let a = Client { base: "a".into() };
    let b = Client { base: "b".into() };
    assert_eq!(a.fetch(1).await, "a/1");
    assert_eq!(b.fetch(1).await, "a/1", "b is served a's entry");
    assert_eq!(runs(&CLIENT_RUNS), 1);
    assert_eq!(b.fetch(2).await, "b/2");
    assert_eq!(runs(&CLIENT_RUNS), 2);
    assert_eq!(Client::fetch_metrics().hits, 1);

    Client::fetch_invalidate(1);
    assert_eq!(b.fetch(1).await, "b/1");
    assert_eq!(runs(&CLIENT_RUNS), 3);
    assert_eq!(a.fetch_refresh(1).await, "a/1");
    assert_eq!(b.fetch(1).await, "a/1", "refresh stored a's value");
    assert_eq!(runs(&CLIENT_RUNS), 4);

    Client::fetch_clear();
    assert_eq!(Client::fetch_metrics().size, 0);
    assert_eq!(a.fetch(2).await, "a/2");
    assert_eq!(runs(&CLIENT_RUNS), 5);
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Tenant {
    id: u32,
}

static QUOTA_RUNS: AtomicUsize = AtomicUsize::new(0);
static LABEL_RUNS: AtomicUsize = AtomicUsize::new(0);

impl Tenant {
    #[async_lru]
    async fn quota(&self, resource: &str) -> String {
        count(&QUOTA_RUNS);
        format!("{}:{resource}", self.id)
    }

    #[async_lru]
    async fn into_label(self) -> String {
        count(&LABEL_RUNS);
        format!("tenant-{}", self.id)
    }
}

#[tokio::test]
async fn method_keyed_by_self_shares_between_equal_instances_only() {
    let (one, same_one, two) = (Tenant { id: 1 }, Tenant { id: 1 }, Tenant { id: 2 });
    assert_eq!(one.quota("cpu").await, "1:cpu");
    assert_eq!(same_one.quota("cpu").await, "1:cpu");
    assert_eq!(runs(&QUOTA_RUNS), 1, "equal instances share an entry");
    assert_eq!(two.quota("cpu").await, "2:cpu");
    assert_eq!(runs(&QUOTA_RUNS), 2, "a different instance has its own");
    assert_eq!(one.quota("mem").await, "1:mem");
    assert_eq!(runs(&QUOTA_RUNS), 3);

    // The instance is part of what `invalidate` takes.
    Tenant::quota_invalidate(&same_one, "cpu");
    assert_eq!(one.quota("cpu").await, "1:cpu");
    assert_eq!(runs(&QUOTA_RUNS), 4);
    assert_eq!(two.quota("cpu").await, "2:cpu");
    assert_eq!(runs(&QUOTA_RUNS), 4, "tenant 2's entry survived");

    // A changed instance is a different key (as a mutated Python object is).
    let mut changed = one.clone();
    changed.id = 3;
    assert_eq!(changed.quota("cpu").await, "3:cpu");
    assert_eq!(runs(&QUOTA_RUNS), 5);
}

#[tokio::test]
async fn method_taking_self_by_value_is_keyed_by_that_value() {
    assert_eq!(Tenant { id: 7 }.into_label().await, "tenant-7");
    assert_eq!(Tenant { id: 7 }.into_label().await, "tenant-7");
    assert_eq!(runs(&LABEL_RUNS), 1);
    assert_eq!(Tenant { id: 8 }.into_label().await, "tenant-8");
    assert_eq!(runs(&LABEL_RUNS), 2);
    assert_eq!(Tenant::into_label_metrics().hits, 1);
}

// ---------------------------------------------------------------------------------------------
// Options

static KEY_RUNS: AtomicUsize = AtomicUsize::new(0);

#[async_lru(key = name.trim().to_lowercase())]
async fn greeting(name: &str, attempt: u32) -> String {
    count(&KEY_RUNS);
    format!("hello {} (attempt {attempt})", name.trim())
}

#[tokio::test]
async fn key_option_keys_each_call_by_its_expression_alone() {
    assert_eq!(greeting("Ada", 1).await, "hello Ada (attempt 1)");
    // Same key, other `attempt`: the first call's value.
    assert_eq!(greeting("  ada ", 2).await, "hello Ada (attempt 1)");
    assert_eq!(runs(&KEY_RUNS), 1);
    assert_eq!(greeting("Bob", 1).await, "hello Bob (attempt 1)");
    assert_eq!(runs(&KEY_RUNS), 2);
    // `invalidate` takes the parameters and keys them with the same expression.
    greeting::invalidate("ADA", 99);
    assert_eq!(greeting("ada", 3).await, "hello ada (attempt 3)");
    assert_eq!(runs(&KEY_RUNS), 3);
    assert_eq!(greeting::metrics().size, 2);
}

/// A handle that cannot be keyed (no `Hash`): it must be skipped.
struct Db {
    name: &'static str,
}

static SKIP_RUNS: AtomicUsize = AtomicUsize::new(0);

#[async_lru(skip_args = 1)]
async fn user_name(db: &Db, id: u64) -> String {
    count(&SKIP_RUNS);
    format!("{}:{id}", db.name)
}

#[tokio::test]
async fn skip_args_leaves_the_first_arguments_out_of_the_key_and_out_of_invalidate() {
    let (primary, replica) = (Db { name: "primary" }, Db { name: "replica" });
    assert_eq!(user_name(&primary, 1).await, "primary:1");
    assert_eq!(user_name(&replica, 1).await, "primary:1");
    assert_eq!(runs(&SKIP_RUNS), 1);
    assert_eq!(user_name(&replica, 2).await, "replica:2");
    assert_eq!(runs(&SKIP_RUNS), 2);
    user_name::invalidate(1);
    assert_eq!(user_name(&replica, 1).await, "replica:1");
    assert_eq!(runs(&SKIP_RUNS), 3);
    // `refresh` takes every parameter, the skipped ones included.
    assert_eq!(user_name::refresh(&primary, 1).await, "primary:1");
    assert_eq!(user_name(&replica, 1).await, "primary:1");
    assert_eq!(runs(&SKIP_RUNS), 4);
}

static SKIP_ALL_RUNS: AtomicUsize = AtomicUsize::new(0);

#[async_lru(skip_args = 2)]
async fn settings(db: &Db, region: &str) -> String {
    count(&SKIP_ALL_RUNS);
    format!("{}@{region}", db.name)
}

#[tokio::test]
async fn skipping_every_argument_makes_every_call_share_one_entry() {
    let db = Db { name: "main" };
    assert_eq!(settings(&db, "eu").await, "main@eu");
    assert_eq!(settings(&Db { name: "other" }, "us").await, "main@eu");
    assert_eq!(runs(&SKIP_ALL_RUNS), 1);
    settings::invalidate();
    assert_eq!(settings(&db, "us").await, "main@us");
    assert_eq!(runs(&SKIP_ALL_RUNS), 2);
    assert_eq!(settings::metrics().size, 1);
}

static FLOAT_TTL_RUNS: AtomicUsize = AtomicUsize::new(0);

#[async_ttl(time_to_live = 0.4)]
async fn float_ttl(id: u64) -> usize {
    let run = count(&FLOAT_TTL_RUNS);
    usize::try_from(id).expect("a small id") * 100 + run
}

#[tokio::test]
async fn float_time_to_live_keeps_an_entry_for_that_fraction_of_a_second() {
    assert_eq!(float_ttl(1).await, 101);
    assert_eq!(
        float_ttl(1).await,
        101,
        "a hit within 0.4 s: not rounded to 0"
    );
    assert_eq!(runs(&FLOAT_TTL_RUNS), 1);
    sleep(Duration::from_millis(900)).await;
    assert_eq!(
        float_ttl(1).await,
        102,
        "expired after 0.9 s: not rounded up to 1 s"
    );
    assert_eq!(runs(&FLOAT_TTL_RUNS), 2);
}

static LRU_ORDER_RUNS: AtomicUsize = AtomicUsize::new(0);

#[async_lru(maxsize = 2)]
async fn lru_bounded(id: u64) -> u64 {
    count(&LRU_ORDER_RUNS);
    id
}

#[tokio::test]
async fn maxsize_evicts_the_least_recently_used_call() {
    lru_bounded(1).await;
    lru_bounded(2).await;
    lru_bounded(1).await; // a hit: 1 is now the most recent
    assert_eq!(runs(&LRU_ORDER_RUNS), 2);
    lru_bounded(3).await; // evicts 2
    lru_bounded(1).await;
    assert_eq!(runs(&LRU_ORDER_RUNS), 3, "1 survived");
    lru_bounded(2).await;
    assert_eq!(runs(&LRU_ORDER_RUNS), 4, "2 was evicted");
    let m = lru_bounded::metrics();
    assert_eq!((m.size, m.evictions), (2, 2));
}

static MAXSIZE_ZERO_RUNS: AtomicUsize = AtomicUsize::new(0);

#[async_lru(maxsize = 0)]
async fn never_stored(id: u64) -> u64 {
    count(&MAXSIZE_ZERO_RUNS);
    until(|| never_stored::metrics().misses >= 100).await;
    id * 2
}

// One thread: nothing is stored, so a caller that counted its miss but had not yet joined the
// flight when the body returned would load again; on one thread a miss and its join are one poll.
#[tokio::test]
async fn maxsize_zero_stores_nothing_but_still_coalesces_concurrent_calls() {
    let calls = (0..100).map(|_| tokio::spawn(never_stored(4))).collect();
    for value in join_every(calls).await {
        assert_eq!(value, 8);
    }
    assert_eq!(
        runs(&MAXSIZE_ZERO_RUNS),
        1,
        "100 concurrent calls, one body run"
    );
    for _ in 0..3 {
        assert_eq!(never_stored(4).await, 8);
    }
    assert_eq!(runs(&MAXSIZE_ZERO_RUNS), 4, "nothing was stored");
    let m = never_stored::metrics();
    assert_eq!((m.size, m.hits), (0, 0));
}

// ---------------------------------------------------------------------------------------------
// Detached loads (every argument owned) and cancellation

static DETACHED_RUNS: AtomicUsize = AtomicUsize::new(0);
static DETACHED_STARTED: Notify = Notify::const_new();
static DETACHED_RELEASE: Notify = Notify::const_new();

#[async_lru]
async fn detached_load(id: u64) -> u64 {
    count(&DETACHED_RUNS);
    DETACHED_STARTED.notify_one();
    DETACHED_RELEASE.notified().await;
    id * 10
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_first_caller_neither_restarts_nor_strands_an_owned_args_load() {
    let first = tokio::spawn(detached_load(1));
    timeout(HANG, DETACHED_STARTED.notified())
        .await
        .expect("the load starts");
    let waiter = tokio::spawn(detached_load(1));
    until(|| detached_load::metrics().misses >= 2).await;
    first.abort();
    assert!(first.await.expect_err("aborted").is_cancelled());
    DETACHED_RELEASE.notify_one();
    let value = timeout(HANG, waiter)
        .await
        .expect("the waiter is not stranded");
    assert_eq!(value.expect("no panic"), 10);
    assert_eq!(runs(&DETACHED_RUNS), 1, "the body was not restarted");
    assert_eq!(detached_load(1).await, 10);
    let m = detached_load::metrics();
    assert_eq!((m.loads, m.hits), (1, 1));
}

static ORPHAN_RUNS: AtomicUsize = AtomicUsize::new(0);
static ORPHAN_STARTED: Notify = Notify::const_new();
static ORPHAN_RELEASE: Notify = Notify::const_new();

#[async_lru]
async fn orphaned_load(id: u64) -> u64 {
    count(&ORPHAN_RUNS);
    ORPHAN_STARTED.notify_one();
    ORPHAN_RELEASE.notified().await;
    id * 10
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owned_args_load_is_cached_even_when_its_only_caller_is_dropped() {
    let only = tokio::spawn(orphaned_load(2));
    timeout(HANG, ORPHAN_STARTED.notified())
        .await
        .expect("the load starts");
    only.abort();
    assert!(only.await.expect_err("aborted").is_cancelled());
    ORPHAN_RELEASE.notify_one();
    until(|| orphaned_load::metrics().size == 1).await;
    assert_eq!(orphaned_load(2).await, 20);
    assert_eq!(runs(&ORPHAN_RUNS), 1);
    assert_eq!(orphaned_load::metrics().hits, 1);
}

static INLINE_RUNS: AtomicUsize = AtomicUsize::new(0);
static INLINE_STARTED: Notify = Notify::const_new();

#[async_lru(detached = false)]
async fn inline_load(id: u64) -> u64 {
    let run = count(&INLINE_RUNS);
    if run == 1 {
        INLINE_STARTED.notify_one();
        std::future::pending::<()>().await;
    }
    id * 10
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_detached_false_a_waiter_reruns_the_body_when_the_first_caller_is_dropped() {
    let first = tokio::spawn(inline_load(3));
    timeout(HANG, INLINE_STARTED.notified())
        .await
        .expect("the load starts");
    let waiter = tokio::spawn(inline_load(3));
    until(|| inline_load::metrics().misses >= 2).await;
    first.abort();
    assert!(first.await.expect_err("aborted").is_cancelled());
    let value = timeout(HANG, waiter)
        .await
        .expect("the waiter is not stranded");
    assert_eq!(value.expect("no panic"), 30);
    assert_eq!(
        runs(&INLINE_RUNS),
        2,
        "the load belonged to the dropped caller"
    );
    assert_eq!(inline_load(3).await, 30);
}

// ---------------------------------------------------------------------------------------------
// Helpers against the cache and against loads in flight

static REFRESH_RUNS: AtomicUsize = AtomicUsize::new(0);

#[async_ttl(time_to_live = 60)]
async fn refreshed(id: u64) -> String {
    let run = count(&REFRESH_RUNS);
    format!("{id}-run{run}")
}

#[tokio::test]
async fn refresh_reruns_the_body_and_stores_the_fresh_value() {
    assert_eq!(refreshed(1).await, "1-run1");
    assert_eq!(refreshed(2).await, "2-run2");
    assert_eq!(refreshed(1).await, "1-run1");
    assert_eq!(refreshed::refresh(1).await, "1-run3");
    assert_eq!(refreshed(1).await, "1-run3", "the fresh value is served");
    assert_eq!(refreshed(2).await, "2-run2", "other entries are untouched");
    assert_eq!(runs(&REFRESH_RUNS), 3);
    let m = refreshed::metrics();
    assert_eq!((m.loads, m.size), (3, 2));
}

static FENCE_RUNS: AtomicUsize = AtomicUsize::new(0);
static FENCE_STARTED: Notify = Notify::const_new();
static FENCE_RELEASE: Notify = Notify::const_new();

#[async_lru]
async fn fenced_by_invalidate(id: u64) -> usize {
    let run = count(&FENCE_RUNS);
    if run == 1 {
        FENCE_STARTED.notify_one();
        FENCE_RELEASE.notified().await;
    }
    usize::try_from(id).expect("a small id") * 100 + run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidate_during_a_load_makes_later_calls_load_afresh_and_keeps_the_old_value_out() {
    let first = tokio::spawn(fenced_by_invalidate(1));
    timeout(HANG, FENCE_STARTED.notified())
        .await
        .expect("the load starts");
    fenced_by_invalidate::invalidate(1);
    // Joining the load in flight would wait on it forever: it is held until released below.
    let second = timeout(HANG, fenced_by_invalidate(1))
        .await
        .expect("a call after invalidate does not join the fenced load");
    assert_eq!(second, 102);
    FENCE_RELEASE.notify_one();
    let first = timeout(HANG, first)
        .await
        .expect("the first caller is answered");
    assert_eq!(
        first.expect("no panic"),
        101,
        "its caller still gets its value"
    );
    assert_eq!(
        fenced_by_invalidate(1).await,
        102,
        "the fenced load did not overwrite the fresh value"
    );
    assert_eq!(runs(&FENCE_RUNS), 2);
}

static CLEAR_FENCE_RUNS: AtomicUsize = AtomicUsize::new(0);
static CLEAR_FENCE_STARTED: Notify = Notify::const_new();
static CLEAR_FENCE_RELEASE: Notify = Notify::const_new();

#[async_lru]
async fn fenced_by_clear(id: u64) -> usize {
    let run = count(&CLEAR_FENCE_RUNS);
    if run == 1 {
        CLEAR_FENCE_STARTED.notify_one();
        CLEAR_FENCE_RELEASE.notified().await;
    }
    usize::try_from(id).expect("a small id") * 100 + run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_during_a_load_makes_later_calls_load_afresh_and_keeps_the_old_value_out() {
    let first = tokio::spawn(fenced_by_clear(1));
    timeout(HANG, CLEAR_FENCE_STARTED.notified())
        .await
        .expect("the load starts");
    fenced_by_clear::clear();
    let second = timeout(HANG, fenced_by_clear(1))
        .await
        .expect("a call after clear does not join the fenced load");
    assert_eq!(second, 102);
    CLEAR_FENCE_RELEASE.notify_one();
    let first = timeout(HANG, first)
        .await
        .expect("the first caller is answered");
    assert_eq!(first.expect("no panic"), 101);
    assert_eq!(fenced_by_clear(1).await, 102);
    assert_eq!(runs(&CLEAR_FENCE_RUNS), 2);
    assert_eq!(fenced_by_clear::metrics().size, 1);
}
