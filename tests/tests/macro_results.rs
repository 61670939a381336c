//! `Result` returns through `#[async_lru]` and `#[async_ttl]`: `Ok` is cached and `Err` is
//! not; one failing body run answers every caller coalesced on it, each with an error of the
//! function's own type (a clone, `E::from(SharedError)`, or an `io::Error` of the same kind),
//! while a caller alone on its load gets the original error; `result = false` caches errors
//! too; `result = true` recognises an alias.
//!
//! As in `macro_behaviour.rs`, bodies count their runs, and a body caught in flight holds until
//! every caller has missed (each caller counts its miss before it joins the load).

use std::error::Error;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cache_core::{SharedError, async_lru, async_ttl};
use futures_util::future::join_all;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};

/// Any await that could hang fails the test after this instead.
const HANG: Duration = Duration::from_secs(10);

/// How many concurrent callers the coalescing tests start.
const CALLERS: u64 = 100;

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

/// A `Clone` backend error.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Unavailable {
    id: u64,
}

// ---------------------------------------------------------------------------------------------
// Ok is cached, Err is not

static FLAKY_RUNS: AtomicUsize = AtomicUsize::new(0);

#[async_lru]
async fn flaky(id: u64) -> Result<u64, Unavailable> {
    if count(&FLAKY_RUNS) == 1 {
        return Err(Unavailable { id });
    }
    Ok(id * 2)
}

#[tokio::test]
async fn ok_is_cached_and_err_is_not() {
    assert_eq!(flaky(4).await, Err(Unavailable { id: 4 }));
    assert_eq!(flaky::metrics().size, 0, "the error was not stored");
    assert_eq!(flaky(4).await, Ok(8), "the next call ran the body again");
    assert_eq!(flaky(4).await, Ok(8));
    assert_eq!(
        runs(&FLAKY_RUNS),
        2,
        "the Ok value was served from the cache"
    );
    let m = flaky::metrics();
    assert_eq!((m.loads, m.load_errors, m.hits, m.size), (2, 1, 1, 1));
}

// ---------------------------------------------------------------------------------------------
// One failing run answers every coalesced caller
//
// These tests run on one thread. A failed load stores nothing, so a caller that counted its miss
// but had not yet joined the flight when the body failed would lead a second load (as it
// should). On one thread a caller's miss and its join are one poll, so once the body has seen
// every miss, every caller waits on its flight; on two threads the body could see the last miss
// a moment before that caller joins, and CI once caught exactly that.

static CLONE_ERROR_RUNS: AtomicUsize = AtomicUsize::new(0);

#[async_lru]
async fn failing_with_clone(id: u64) -> Result<u64, Unavailable> {
    count(&CLONE_ERROR_RUNS);
    until(|| failing_with_clone::metrics().misses >= CALLERS).await;
    Err(Unavailable { id })
}

#[tokio::test]
async fn clone_error_reaches_every_concurrent_caller_from_one_body_run() {
    let calls = (0..CALLERS)
        .map(|_| tokio::spawn(failing_with_clone(9)))
        .collect();
    for result in join_every(calls).await {
        assert_eq!(result, Err(Unavailable { id: 9 }));
    }
    assert_eq!(runs(&CLONE_ERROR_RUNS), 1);
    let m = failing_with_clone::metrics();
    assert_eq!((m.loads, m.load_errors, m.size), (1, 1, 0));
    // Not cached: the next call runs the body again.
    assert_eq!(failing_with_clone(9).await, Err(Unavailable { id: 9 }));
    assert_eq!(runs(&CLONE_ERROR_RUNS), 2);
}

static BORROWED_ERROR_RUNS: AtomicUsize = AtomicUsize::new(0);

// A borrowed argument: the failing load runs in the calling task (not detached).
#[async_ttl(time_to_live = 60)]
async fn failing_with_borrowed_arg(name: &str) -> Result<String, Unavailable> {
    count(&BORROWED_ERROR_RUNS);
    until(|| failing_with_borrowed_arg::metrics().misses >= CALLERS).await;
    Err(Unavailable {
        id: name.len() as u64,
    })
}

#[tokio::test]
async fn error_of_a_borrowed_args_load_reaches_every_concurrent_caller_from_one_body_run() {
    let calls = (0..CALLERS)
        .map(|_| {
            let name = String::from("abc");
            tokio::spawn(async move { failing_with_borrowed_arg(&name).await })
        })
        .collect();
    for result in join_every(calls).await {
        assert_eq!(result, Err(Unavailable { id: 3 }));
    }
    assert_eq!(runs(&BORROWED_ERROR_RUNS), 1);
    assert_eq!(failing_with_borrowed_arg::metrics().size, 0);
}

/// The original error inside the `io::Error`s below.
#[derive(Debug)]
struct Refused {
    port: u16,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connection to port {} refused", self.port)
    }
}

impl Error for Refused {}

fn refused(port: u16) -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionRefused, Refused { port })
}

static IO_RUNS: AtomicUsize = AtomicUsize::new(0);

#[async_lru]
async fn failing_with_io(port: u16) -> io::Result<String> {
    count(&IO_RUNS);
    until(|| failing_with_io::metrics().misses >= CALLERS).await;
    Err(refused(port))
}

#[tokio::test]
async fn io_error_reaches_every_concurrent_caller_with_its_kind_from_one_body_run() {
    let calls = (0..CALLERS)
        .map(|_| tokio::spawn(failing_with_io(5432)))
        .collect();
    let mut shared = 0;
    for result in join_every(calls).await {
        let error = result.expect_err("the load failed");
        assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
        assert_eq!(error.to_string(), "connection to port 5432 refused");
        let inner = error.get_ref().expect("a custom io::Error");
        if let Some(coalesced) = inner.downcast_ref::<SharedError>() {
            shared += 1;
            let original = coalesced
                .downcast_ref::<io::Error>()
                .expect("the shared original is the io::Error");
            assert_eq!(original.kind(), io::ErrorKind::ConnectionRefused);
        } else {
            assert!(inner.downcast_ref::<Refused>().is_some(), "{inner:?}");
        }
    }
    // One load's error has one owner at most: every other caller got a shared copy.
    assert!(shared >= CALLERS - 1, "{shared} shared errors");
    assert_eq!(runs(&IO_RUNS), 1);
    assert_eq!(failing_with_io::metrics().size, 0);
}

static LONE_IO_RUNS: AtomicUsize = AtomicUsize::new(0);

#[async_lru]
async fn failing_alone_with_io(port: u16) -> io::Result<String> {
    count(&LONE_IO_RUNS);
    Err(refused(port))
}

#[tokio::test]
async fn caller_alone_on_its_load_gets_the_original_error() {
    let error = failing_alone_with_io(80)
        .await
        .expect_err("the load failed");
    assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
    let inner = error.get_ref().expect("a custom io::Error");
    assert!(
        inner.downcast_ref::<Refused>().is_some(),
        "expected the original `Refused`, got {inner:?}"
    );
    assert_eq!(runs(&LONE_IO_RUNS), 1);
}

/// Not `Clone`: callers coalesced on a failed load get the `Shared` variant.
#[derive(Debug)]
enum DbError {
    Timeout { after_ms: u64 },
    Shared(SharedError),
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::Timeout { after_ms } => write!(f, "timed out after {after_ms} ms"),
            DbError::Shared(shared) => fmt::Display::fmt(shared, f),
        }
    }
}

impl Error for DbError {}

impl From<SharedError> for DbError {
    fn from(shared: SharedError) -> Self {
        DbError::Shared(shared)
    }
}

static FROM_SHARED_RUNS: AtomicUsize = AtomicUsize::new(0);

#[async_lru]
async fn failing_with_from_shared(id: u64) -> Result<u64, DbError> {
    count(&FROM_SHARED_RUNS);
    until(|| failing_with_from_shared::metrics().misses >= CALLERS).await;
    Err(DbError::Timeout { after_ms: id })
}

#[tokio::test]
async fn error_with_from_shared_error_reaches_every_caller_displaying_as_the_original() {
    let calls = (0..CALLERS)
        .map(|_| tokio::spawn(failing_with_from_shared(250)))
        .collect();
    let mut shared = 0;
    for result in join_every(calls).await {
        let error = result.expect_err("the load failed");
        assert_eq!(error.to_string(), "timed out after 250 ms");
        match error {
            DbError::Shared(coalesced) => {
                shared += 1;
                assert!(matches!(
                    coalesced.downcast_ref::<DbError>(),
                    Some(DbError::Timeout { after_ms: 250 })
                ));
            }
            DbError::Timeout { after_ms } => assert_eq!(after_ms, 250),
        }
    }
    assert!(shared >= CALLERS - 1, "{shared} shared errors");
    assert_eq!(runs(&FROM_SHARED_RUNS), 1);
}

/// A boxed error: `Box<dyn Error + Send + Sync>` is not itself an `Error`, but it converts from
/// `SharedError`, so coalesced callers get a boxed `SharedError`.
type BoxError = Box<dyn Error + Send + Sync>;

/// The original error inside the boxes below.
#[derive(Debug)]
struct Backend {
    code: u16,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "backend answered {}", self.code)
    }
}

impl Error for Backend {}

static BOXED_RUNS: AtomicUsize = AtomicUsize::new(0);

#[async_lru]
async fn failing_boxed(code: u16) -> Result<u64, BoxError> {
    count(&BOXED_RUNS);
    until(|| failing_boxed::metrics().misses >= CALLERS).await;
    Err(Box::new(Backend { code }))
}

#[tokio::test]
async fn boxed_error_reaches_every_concurrent_caller_displaying_as_the_original() {
    let calls = (0..CALLERS)
        .map(|_| tokio::spawn(failing_boxed(503)))
        .collect();
    let mut shared = 0;
    for result in join_every(calls).await {
        let error = result.expect_err("the load failed");
        assert_eq!(error.to_string(), "backend answered 503");
        if let Some(coalesced) = error.downcast_ref::<SharedError>() {
            shared += 1;
            let original = coalesced
                .downcast_ref::<BoxError>()
                .expect("the shared original is the box");
            assert!(original.downcast_ref::<Backend>().is_some(), "{original:?}");
        } else {
            assert!(error.downcast_ref::<Backend>().is_some(), "{error:?}");
        }
    }
    assert!(shared >= CALLERS - 1, "{shared} shared errors");
    assert_eq!(runs(&BOXED_RUNS), 1);
    assert_eq!(failing_boxed::metrics().size, 0);
}

static LONE_BOXED_RUNS: AtomicUsize = AtomicUsize::new(0);

#[async_lru]
async fn failing_boxed_alone(code: u16) -> Result<u64, BoxError> {
    count(&LONE_BOXED_RUNS);
    Err(Box::new(Backend { code }))
}

#[tokio::test]
async fn boxed_error_of_a_caller_alone_on_its_load_is_the_original_box() {
    let error = failing_boxed_alone(500).await.expect_err("the load failed");
    assert!(
        error.downcast_ref::<Backend>().is_some(),
        "expected the original `Backend`, got {error:?}"
    );
    assert_eq!(runs(&LONE_BOXED_RUNS), 1);
}

// ---------------------------------------------------------------------------------------------
// `result = false` and `result = true`

static CACHED_ERR_RUNS: AtomicUsize = AtomicUsize::new(0);

#[async_lru(result = false)]
async fn err_cached_as_a_value(id: u64) -> Result<u64, String> {
    count(&CACHED_ERR_RUNS);
    Err(format!("no row {id}"))
}

#[tokio::test]
async fn result_false_caches_an_err_like_any_value() {
    assert_eq!(err_cached_as_a_value(1).await, Err("no row 1".to_string()));
    assert_eq!(err_cached_as_a_value(1).await, Err("no row 1".to_string()));
    assert_eq!(runs(&CACHED_ERR_RUNS), 1, "the second call was a hit");
    let m = err_cached_as_a_value::metrics();
    assert_eq!((m.hits, m.size, m.load_errors), (1, 1, 0));
}

/// An alias whose name does not end in `Result`: the macro cannot see that it is one.
type Fallible<T> = Result<T, Unavailable>;

static ALIAS_DEFAULT_RUNS: AtomicUsize = AtomicUsize::new(0);

#[async_lru]
async fn alias_without_option(id: u64) -> Fallible<u64> {
    count(&ALIAS_DEFAULT_RUNS);
    Err(Unavailable { id })
}

static ALIAS_RESULT_RUNS: AtomicUsize = AtomicUsize::new(0);

#[async_lru(result = true)]
async fn alias_with_result_true(id: u64) -> Fallible<u64> {
    count(&ALIAS_RESULT_RUNS);
    Err(Unavailable { id })
}

#[tokio::test]
async fn result_true_makes_an_alias_cache_only_ok() {
    assert_eq!(alias_with_result_true(2).await, Err(Unavailable { id: 2 }));
    assert_eq!(alias_with_result_true(2).await, Err(Unavailable { id: 2 }));
    assert_eq!(runs(&ALIAS_RESULT_RUNS), 2, "the error was not cached");
    assert_eq!(alias_with_result_true::metrics().load_errors, 2);

    // Without the option the alias is an opaque value, errors included.
    assert_eq!(alias_without_option(2).await, Err(Unavailable { id: 2 }));
    assert_eq!(alias_without_option(2).await, Err(Unavailable { id: 2 }));
    assert_eq!(runs(&ALIAS_DEFAULT_RUNS), 1);
}
