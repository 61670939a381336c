//! Invalidation, scopes and metrics of `agent-cache`: parameterised, multiple and hierarchical
//! resources, failing and overlapping mutations, global and session scope across live
//! sessions, 1,000 concurrent sessions, `agent_cache::spawn`, single-flight, `Result` reads,
//! TTL and the invalidation metrics.
//!
//! Every `#[agent_cache]` function has one process-wide cache and global resources are shared
//! by the whole binary, while tests run in parallel: each test has its own tools, its own
//! backend and its own resource names.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use agent_cache::{AgentCacheSession, agent_cache, agent_invalidator};
use futures_util::future::join_all;
use tokio::sync::{Barrier, Notify};
use tokio::time::{Instant, sleep, timeout};

/// A simulated backend: counts every call by operation (`"get_cart:u1"`), and holds a
/// version that writes bump, so that reads show which state they saw.
#[derive(Default)]
struct Backend {
    calls: Mutex<HashMap<String, usize>>,
    version: AtomicU64,
}

impl Backend {
    /// Records a call and returns the state version it saw.
    fn call(&self, operation: impl Into<String>) -> u64 {
        *self
            .calls
            .lock()
            .unwrap()
            .entry(operation.into())
            .or_insert(0) += 1;
        self.version.load(Ordering::SeqCst)
    }

    /// Records a write and returns the new version.
    fn write(&self, operation: impl Into<String>) -> u64 {
        *self
            .calls
            .lock()
            .unwrap()
            .entry(operation.into())
            .or_insert(0) += 1;
        self.version.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn calls(&self, operation: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .get(operation)
            .copied()
            .unwrap_or(0)
    }
}

/// Holds tool bodies until opened.
#[derive(Default)]
struct Gate {
    open: AtomicBool,
    notify: Notify,
}

impl Gate {
    async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            if self.open.load(Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }

    fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }
}

/// Anything that could hang fails the test instead, after this long.
const HANG: Duration = Duration::from_secs(20);

/// Tells at run time, through autoref specialisation, whether a value is `Send`, so that a
/// test can report a non-`Send` future instead of failing to compile.
macro_rules! is_send {
    ($value:expr) => {{
        struct Probe<T>(std::marker::PhantomData<T>);
        // One of the two traits goes unused, whichever the answer is.
        #[allow(dead_code)]
        trait IsSend {
            fn is_send(&self) -> bool {
                true
            }
        }
        impl<T: Send> IsSend for Probe<T> {}
        #[allow(dead_code)]
        trait NotSend {
            fn is_send(&self) -> bool {
                false
            }
        }
        impl<T> NotSend for &Probe<T> {}
        fn probe<T>(_: &T) -> Probe<T> {
            Probe(std::marker::PhantomData)
        }
        let value = $value;
        (&probe(&value)).is_send()
    }};
}

// ---------------------------------------------------------------------------------------------
// Parameterised and multiple resources
// ---------------------------------------------------------------------------------------------

mod param {
    use super::*;

    pub(super) static DB: LazyLock<Backend> = LazyLock::new(Backend::default);

    #[agent_cache(resource = "pcart:{user_id}")]
    pub(super) async fn get_cart(user_id: &str) -> (String, u64) {
        (user_id.to_owned(), DB.call(format!("get_cart:{user_id}")))
    }

    #[agent_invalidator(resource = "pcart:{user_id}")]
    pub(super) async fn add_to_cart(user_id: &str, item: &str) -> Result<(), String> {
        DB.write(format!("add_to_cart:{user_id}:{item}"));
        Ok(())
    }
}

#[tokio::test]
async fn writing_cart_u1_invalidates_only_u1_and_leaves_cart_u2_cached() {
    use param::*;

    let session = AgentCacheSession::builder().loop_detection(false).build();
    session
        .run(async {
            get_cart("u1").await;
            get_cart("u2").await;
            add_to_cart("u1", "laptop").await.unwrap();
            let u1 = get_cart("u1").await;
            let u2 = get_cart("u2").await;
            assert_eq!(u1, ("u1".to_owned(), 1), "u1 re-read after the write");
            assert_eq!(u2, ("u2".to_owned(), 0), "u2 still served from cache");
        })
        .await
        .unwrap();
    assert_eq!(DB.calls("get_cart:u1"), 2);
    assert_eq!(DB.calls("get_cart:u2"), 1);
    let m = session.metrics();
    assert_eq!((m.hits, m.misses, m.invalidations), (1, 3, 1));
}

mod several {
    use super::*;

    pub(super) static DB: LazyLock<Backend> = LazyLock::new(Backend::default);

    #[agent_cache(resource = "sorders:{user_id}")]
    pub(super) async fn get_orders(user_id: &str) -> u64 {
        DB.call(format!("get_orders:{user_id}"))
    }

    #[agent_cache(resource = "sstock")]
    pub(super) async fn get_stock(sku: &str) -> u64 {
        DB.call(format!("get_stock:{sku}"))
    }

    #[agent_cache(resource = "sprofile:{user_id}")]
    pub(super) async fn get_profile(user_id: &str) -> u64 {
        DB.call(format!("get_profile:{user_id}"))
    }

    #[agent_invalidator(resource = ["sorders:{user_id}", "sstock"])]
    pub(super) async fn checkout(user_id: &str) -> Result<u64, String> {
        Ok(DB.write(format!("checkout:{user_id}")))
    }
}

#[tokio::test]
async fn an_invalidator_with_several_resources_invalidates_each_of_them_and_nothing_else() {
    use several::*;

    let session = AgentCacheSession::builder().loop_detection(false).build();
    session
        .run(async {
            get_orders("u1").await;
            get_orders("u2").await;
            get_stock("SKU-1").await;
            get_profile("u1").await;
            checkout("u1").await.unwrap();
            assert_eq!(get_orders("u1").await, 1, "orders of u1 re-read");
            assert_eq!(get_stock("SKU-1").await, 1, "stock re-read");
            assert_eq!(get_orders("u2").await, 0, "orders of u2 untouched");
            assert_eq!(get_profile("u1").await, 0, "profile untouched");
        })
        .await
        .unwrap();
    assert_eq!(DB.calls("get_orders:u1"), 2);
    assert_eq!(DB.calls("get_stock:SKU-1"), 2);
    assert_eq!(DB.calls("get_orders:u2"), 1);
    assert_eq!(DB.calls("get_profile:u1"), 1);
    let m = session.metrics();
    assert_eq!(
        m.invalidations, 1,
        "one call, one invalidation, however many resources"
    );
    assert_eq!(
        m.invalidations_by_resource.get("sorders:{user_id}"),
        Some(&1)
    );
    assert_eq!(m.invalidations_by_resource.get("sstock"), Some(&1));
}

// ---------------------------------------------------------------------------------------------
// Failing and overlapping mutations
// ---------------------------------------------------------------------------------------------

/// Deliberately neither `Clone` nor `PartialEq`: the invalidator must hand it back as is.
#[derive(Debug)]
struct DbError {
    code: u16,
    detail: String,
}

mod failing {
    use super::*;

    pub(super) static DB: LazyLock<Backend> = LazyLock::new(Backend::default);

    #[agent_cache(resource = "faccount:{id}")]
    pub(super) async fn get_balance(id: u64) -> u64 {
        DB.call(format!("get_balance:{id}"))
    }

    /// Writes part of the change, then fails: the reads must not keep the old state.
    #[agent_invalidator(resource = "faccount:{id}")]
    pub(super) async fn transfer(id: u64, amount: i64) -> Result<(), DbError> {
        DB.write(format!("transfer:{id}"));
        Err(DbError {
            code: 409,
            detail: format!("transfer of {amount} from {id} half applied"),
        })
    }
}

#[tokio::test]
async fn a_failing_mutation_still_invalidates_and_returns_its_error_unchanged() {
    use failing::*;

    let session = AgentCacheSession::builder().loop_detection(false).build();
    session
        .run(async {
            assert_eq!(get_balance(7).await, 0);
            let error = transfer(7, -25).await.expect_err("the mutation fails");
            assert_eq!(error.code, 409);
            assert_eq!(error.detail, "transfer of -25 from 7 half applied");
            assert_eq!(
                get_balance(7).await,
                1,
                "the read after the failed mutation sees the partial write"
            );
        })
        .await
        .unwrap();
    assert_eq!(DB.calls("get_balance:7"), 2);
    assert_eq!(DB.calls("transfer:7"), 1);
    assert_eq!(session.metrics().invalidations, 1);
}

mod overlap_before {
    use super::*;

    pub(super) static DB: LazyLock<Backend> = LazyLock::new(Backend::default);
    pub(super) static STARTED: LazyLock<Notify> = LazyLock::new(Notify::new);
    pub(super) static RELEASE: LazyLock<Gate> = LazyLock::new(Gate::default);

    /// Reads the state, then is held until released, as a slow API would be.
    #[agent_cache(resource = "oreport")]
    pub(super) async fn slow_report(id: u64) -> u64 {
        let seen = DB.call(format!("slow_report:{id}"));
        STARTED.notify_one();
        RELEASE.wait().await;
        seen
    }

    #[agent_invalidator(resource = "oreport")]
    pub(super) async fn update_report(id: u64) -> Result<u64, String> {
        Ok(DB.write(format!("update_report:{id}")))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_read_that_started_before_a_write_and_finished_after_it_is_not_kept() {
    use overlap_before::*;

    // The slow read starts and reads version 0.
    let slow = tokio::spawn(slow_report(1));
    timeout(HANG, STARTED.notified())
        .await
        .expect("the read started");
    // The write runs to completion while the read is still in flight.
    assert_eq!(update_report(1).await, Ok(1));
    RELEASE.open();
    let stale = timeout(HANG, slow).await.unwrap().unwrap();
    assert_eq!(
        stale, 0,
        "the overlapping read returns what it read to its caller"
    );

    // ...but it was not kept: the next read loads again and sees the write.
    let fresh = timeout(HANG, slow_report(1)).await.unwrap();
    assert_eq!(fresh, 1, "the value read before the write was not served");
    assert_eq!(DB.calls("slow_report:1"), 2);
    // And that fresh value is kept.
    assert_eq!(timeout(HANG, slow_report(1)).await.unwrap(), 1);
    assert_eq!(DB.calls("slow_report:1"), 2);
}

mod overlap_during {
    use super::*;

    pub(super) static DB: LazyLock<Backend> = LazyLock::new(Backend::default);
    pub(super) static MUTATING: LazyLock<Notify> = LazyLock::new(Notify::new);
    pub(super) static COMMIT: LazyLock<Gate> = LazyLock::new(Gate::default);

    #[agent_cache(resource = "dreport")]
    pub(super) async fn get_report(id: u64) -> u64 {
        DB.call(format!("get_report:{id}"))
    }

    /// A mutation that takes a while to commit; reads in the meantime see the old state.
    #[agent_invalidator(resource = "dreport")]
    pub(super) async fn rewrite_report(id: u64) -> Result<u64, String> {
        MUTATING.notify_one();
        COMMIT.wait().await;
        Ok(DB.write(format!("rewrite_report:{id}")))
    }
}

#[tokio::test]
async fn a_read_that_ran_during_a_mutation_is_not_kept_after_it_returns() {
    use overlap_during::*;

    let writer = async {
        rewrite_report(1).await.unwrap();
    };
    let reader = async {
        MUTATING.notified().await;
        // The mutation has invalidated once and is running: this read loads the old state
        // and completes before the mutation does.
        let during = get_report(1).await;
        COMMIT.open();
        during
    };
    let ((), during) = timeout(HANG, async { tokio::join!(writer, reader) })
        .await
        .unwrap();
    assert_eq!(during, 0);
    assert_eq!(
        get_report(1).await,
        1,
        "the read made during the mutation was invalidated when it returned"
    );
    assert_eq!(DB.calls("get_report:1"), 2);
}

mod cancelled {
    use super::*;

    pub(super) static DB: LazyLock<Backend> = LazyLock::new(Backend::default);
    pub(super) static SENT: LazyLock<Notify> = LazyLock::new(Notify::new);

    #[agent_cache(resource = "cnorder")]
    pub(super) async fn get_order(id: u64) -> u64 {
        DB.call(format!("get_order:{id}"))
    }

    /// Sends the request, then waits for an answer that never comes in time.
    #[agent_invalidator(resource = "cnorder")]
    pub(super) async fn cancel_order(id: u64) -> Result<(), String> {
        let _ = id;
        SENT.notify_one();
        std::future::pending::<()>().await;
        Ok(())
    }
}

/// A mutation dropped before it returns (a caller's timeout, a `select!`, a halted run) still
/// runs its second invalidation.
#[tokio::test]
async fn a_read_made_during_a_mutation_that_is_then_cancelled_is_not_kept() {
    use cancelled::*;

    assert_eq!(get_order(1).await, 0);
    let during = tokio::select! {
        _ = cancel_order(1) => unreachable!("the mutation never answers"),
        during = async {
            SENT.notified().await;
            get_order(1).await // after the first invalidation: loads and caches
        } => during,
    };
    // The select dropped the mutation (as a timeout would); the server applied it anyway.
    assert_eq!(during, 0);
    DB.write("cancel_order:1");
    assert_eq!(
        get_order(1).await,
        1,
        "the read made while the cancelled mutation ran was served from cache"
    );
}

// ---------------------------------------------------------------------------------------------
// Hierarchical resources
// ---------------------------------------------------------------------------------------------

mod hier_parent {
    use super::*;

    pub(super) static DB: LazyLock<Backend> = LazyLock::new(Backend::default);

    #[agent_cache(resource = "hpcart")]
    pub(super) async fn all_carts() -> u64 {
        DB.call("all_carts")
    }

    #[agent_cache(resource = "hpcart:{user_id}")]
    pub(super) async fn get_cart(user_id: &str) -> u64 {
        DB.call(format!("get_cart:{user_id}"))
    }

    #[agent_cache(resource = "hpcart:{user_id}:items")]
    pub(super) async fn get_items(user_id: &str) -> u64 {
        DB.call(format!("get_items:{user_id}"))
    }

    #[agent_cache(resource = "hpcartography")]
    pub(super) async fn get_map() -> u64 {
        DB.call("get_map")
    }

    #[agent_invalidator(resource = "hpcart")]
    pub(super) async fn reprice_all_carts() -> Result<u64, String> {
        Ok(DB.write("reprice_all_carts"))
    }
}

#[tokio::test]
async fn invalidating_a_parent_resource_reaches_every_child_and_grandchild() {
    use hier_parent::*;

    let session = AgentCacheSession::builder().loop_detection(false).build();
    session
        .run(async {
            let before = (
                all_carts().await,
                get_cart("u1").await,
                get_cart("u2").await,
                get_items("u1").await,
                get_map().await,
            );
            assert_eq!(before, (0, 0, 0, 0, 0));
            reprice_all_carts().await.unwrap();
            let after = (
                all_carts().await,
                get_cart("u1").await,
                get_cart("u2").await,
                get_items("u1").await,
                get_map().await,
            );
            assert_eq!(
                after,
                (1, 1, 1, 1, 0),
                "cart, cart:u1, cart:u2 and cart:u1:items re-read; a resource that merely \
                 starts with the same letters is not a child"
            );
        })
        .await
        .unwrap();
    for operation in ["all_carts", "get_cart:u1", "get_cart:u2", "get_items:u1"] {
        assert_eq!(DB.calls(operation), 2, "{operation}");
    }
    assert_eq!(DB.calls("get_map"), 1);
}

mod hier_child {
    use super::*;

    pub(super) static DB: LazyLock<Backend> = LazyLock::new(Backend::default);

    #[agent_cache(resource = "hccart")]
    pub(super) async fn all_carts() -> u64 {
        DB.call("all_carts")
    }

    #[agent_cache(resource = "hccart:{user_id}")]
    pub(super) async fn get_cart(user_id: &str) -> u64 {
        DB.call(format!("get_cart:{user_id}"))
    }

    #[agent_cache(resource = "hccart:{user_id}:items")]
    pub(super) async fn get_items(user_id: &str) -> u64 {
        DB.call(format!("get_items:{user_id}"))
    }

    #[agent_invalidator(resource = "hccart:{user_id}")]
    pub(super) async fn update_cart(user_id: &str) -> Result<u64, String> {
        Ok(DB.write(format!("update_cart:{user_id}")))
    }
}

#[tokio::test]
async fn invalidating_cart_u1_reaches_reads_of_cart_and_cart_u1_items_but_not_cart_u2() {
    use hier_child::*;

    let session = AgentCacheSession::builder().loop_detection(false).build();
    session
        .run(async {
            let before = (
                all_carts().await,
                get_cart("u1").await,
                get_cart("u2").await,
                get_items("u1").await,
                get_items("u2").await,
            );
            assert_eq!(before, (0, 0, 0, 0, 0));
            update_cart("u1").await.unwrap();
            let after = (
                all_carts().await,
                get_cart("u1").await,
                get_cart("u2").await,
                get_items("u1").await,
                get_items("u2").await,
            );
            assert_eq!(
                after,
                (1, 1, 0, 1, 0),
                "the ancestor `cart` (it covers u1), `cart:u1` and `cart:u1:items` are re-read; \
                 u2's entries are kept"
            );
        })
        .await
        .unwrap();
    assert_eq!(DB.calls("all_carts"), 2);
    assert_eq!(DB.calls("get_cart:u1"), 2);
    assert_eq!(DB.calls("get_items:u1"), 2);
    assert_eq!(DB.calls("get_cart:u2"), 1);
    assert_eq!(DB.calls("get_items:u2"), 1);
}

// ---------------------------------------------------------------------------------------------
// Scopes across live sessions
// ---------------------------------------------------------------------------------------------

mod global_inside {
    use super::*;

    pub(super) static DB: LazyLock<Backend> = LazyLock::new(Backend::default);

    #[agent_cache(resource = "gidoc", scope = "session")]
    pub(super) async fn get_doc(id: &str) -> u64 {
        DB.call(format!("get_doc:{id}"))
    }

    #[agent_invalidator(resource = "gidoc", scope = "global")]
    pub(super) async fn publish_doc(id: &str) -> Result<u64, String> {
        Ok(DB.write(format!("publish_doc:{id}")))
    }
}

#[tokio::test]
async fn a_global_invalidation_inside_a_session_reaches_session_entries_of_other_live_sessions() {
    use global_inside::*;

    let barrier = Barrier::new(2);
    let writer = AgentCacheSession::builder().session_id("writer").build();
    let reader = AgentCacheSession::builder().session_id("reader").build();
    let run_writer = writer.run(async {
        let before = get_doc("D-1").await;
        barrier.wait().await; // 1: both sessions live
        barrier.wait().await; // 2: the reader has cached D-1
        publish_doc("D-1").await.unwrap();
        barrier.wait().await; // 3: published
        (before, get_doc("D-1").await)
    });
    let run_reader = reader.run(async {
        barrier.wait().await; // 1
        let first = get_doc("D-1").await;
        let cached = get_doc("D-1").await;
        barrier.wait().await; // 2
        barrier.wait().await; // 3
        (first, cached, get_doc("D-1").await)
    });
    let (w, r) = timeout(HANG, async { tokio::join!(run_writer, run_reader) })
        .await
        .unwrap();
    assert_eq!(w.unwrap(), (0, 1));
    assert_eq!(
        r.unwrap(),
        (0, 0, 1),
        "the reader's session entry was invalidated by the writer's global invalidation"
    );
    assert_eq!(DB.calls("get_doc:D-1"), 4);
    let m = reader.metrics();
    assert_eq!((m.hits, m.misses, m.invalidations), (1, 2, 0));
}

mod global_outside {
    use super::*;

    pub(super) static DB: LazyLock<Backend> = LazyLock::new(Backend::default);

    #[agent_cache(resource = "godoc", scope = "session")]
    pub(super) async fn get_doc(id: &str) -> u64 {
        DB.call(format!("get_doc:{id}"))
    }

    #[agent_invalidator(resource = "godoc", scope = "global")]
    pub(super) async fn publish_doc(id: &str) -> Result<u64, String> {
        Ok(DB.write(format!("publish_doc:{id}")))
    }
}

#[tokio::test]
async fn a_global_invalidation_outside_any_session_reaches_entries_of_a_live_session() {
    use global_outside::*;

    let barrier = Barrier::new(2);
    let session = AgentCacheSession::new();
    let run = session.run(async {
        let first = get_doc("D-1").await;
        barrier.wait().await; // 1: cached
        barrier.wait().await; // 2: published from outside
        (first, get_doc("D-1").await)
    });
    let outside = async {
        barrier.wait().await; // 1
        publish_doc("D-1").await.unwrap(); // no session here
        barrier.wait().await; // 2
    };
    let (seen, ()) = timeout(HANG, async { tokio::join!(run, outside) })
        .await
        .unwrap();
    assert_eq!(seen.unwrap(), (0, 1));
    assert_eq!(DB.calls("get_doc:D-1"), 2);
    assert_eq!(
        session.metrics().invalidations,
        0,
        "an invalidation outside the session is not counted in it"
    );
}

mod session_only {
    use super::*;

    pub(super) static DB: LazyLock<Backend> = LazyLock::new(Backend::default);

    #[agent_cache(resource = "sonote", scope = "session")]
    pub(super) async fn get_note(id: &str) -> u64 {
        DB.call(format!("get_note:{id}"))
    }

    #[agent_cache(resource = "sonote", scope = "global")]
    pub(super) async fn get_shared_note(id: &str) -> u64 {
        DB.call(format!("get_shared_note:{id}"))
    }

    #[agent_invalidator(resource = "sonote", scope = "session")]
    pub(super) async fn edit_note(id: &str) -> Result<u64, String> {
        Ok(DB.write(format!("edit_note:{id}")))
    }
}

#[tokio::test]
async fn a_session_invalidation_reaches_only_its_own_sessions_entries() {
    use session_only::*;

    let barrier = Barrier::new(2);
    let editor = AgentCacheSession::builder().session_id("editor").build();
    let other = AgentCacheSession::builder().session_id("other").build();
    let run_editor = editor.run(async {
        let before = (get_note("N-1").await, get_shared_note("N-1").await);
        barrier.wait().await; // 1: both sessions cached N-1
        edit_note("N-1").await.unwrap();
        barrier.wait().await; // 2: edited
        (before, get_note("N-1").await, get_shared_note("N-1").await)
    });
    let run_other = other.run(async {
        let before = get_note("N-1").await;
        barrier.wait().await; // 1
        barrier.wait().await; // 2
        (before, get_note("N-1").await)
    });
    let (e, o) = timeout(HANG, async { tokio::join!(run_editor, run_other) })
        .await
        .unwrap();
    assert_eq!(
        e.unwrap(),
        ((0, 0), 1, 0),
        "the editor's session entry is re-read; the global entry is not reached"
    );
    assert_eq!(
        o.unwrap(),
        (0, 0),
        "the other session's entry is not reached"
    );
    assert_eq!(DB.calls("get_note:N-1"), 3);
    assert_eq!(DB.calls("get_shared_note:N-1"), 1);
    let m = other.metrics();
    assert_eq!((m.hits, m.misses), (1, 1));
}

mod thousand {
    use super::*;

    pub(super) static DB: LazyLock<Backend> = LazyLock::new(Backend::default);

    /// Keyed by `account` only (`skip_args = 1`): every session asks for the same keys, but
    /// the backend answers each session with its own data.
    #[agent_cache(resource = "tbalance", scope = "session", skip_args = 1)]
    pub(super) async fn get_balance(session: &str, account: &str) -> String {
        DB.call("get_balance");
        tokio::task::yield_now().await;
        format!("{session}/{account}")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn a_thousand_concurrent_sessions_never_see_each_others_entries() {
    use thousand::*;

    const SESSIONS: usize = 1_000;
    let all_live = Arc::new(Barrier::new(SESSIONS));
    let tasks = (0..SESSIONS).map(|i| {
        let all_live = Arc::clone(&all_live);
        tokio::spawn(async move {
            let me = format!("session-{i}");
            let session = AgentCacheSession::builder()
                .session_id(&me)
                .loop_detection(false)
                .build();
            let seen = session
                .run(async {
                    let mut seen = vec![
                        get_balance(&me, "checking").await,
                        get_balance(&me, "savings").await,
                    ];
                    // Every session holds its entries for the same keys at this point.
                    all_live.wait().await;
                    seen.push(get_balance(&me, "savings").await);
                    seen.push(get_balance(&me, "checking").await);
                    seen
                })
                .await
                .unwrap();
            (me, seen, session.metrics())
        })
    });
    let results = timeout(Duration::from_secs(60), join_all(tasks))
        .await
        .expect("1,000 sessions finish");
    for result in results {
        let (me, seen, metrics) = result.expect("a session task panicked");
        assert_eq!(
            seen,
            [
                format!("{me}/checking"),
                format!("{me}/savings"),
                format!("{me}/savings"),
                format!("{me}/checking"),
            ],
            "{me} saw another session's entry"
        );
        assert_eq!((metrics.hits, metrics.misses), (2, 2), "{me}");
    }
    assert_eq!(
        DB.calls("get_balance"),
        2 * SESSIONS,
        "one load per session per key"
    );
}

mod interleaved {
    use super::*;

    pub(super) static DB: LazyLock<Backend> = LazyLock::new(Backend::default);

    #[agent_cache(resource = "iaccount", scope = "session", skip_args = 1)]
    pub(super) async fn get_account(session: &str, account: &str) -> String {
        let n = DB.call(format!("get_account:{session}"));
        tokio::task::yield_now().await;
        format!("{session}/{account}/{n}")
    }

    #[agent_invalidator(resource = "iaccount", scope = "session", skip_args = 1)]
    pub(super) async fn touch_account(session: &str, account: &str) -> Result<(), String> {
        let _ = (session, account);
        Ok(())
    }
}

#[tokio::test]
async fn a_thousand_interleaved_sessions_invalidating_their_own_entries_leave_the_others_cached() {
    use interleaved::*;

    const SESSIONS: usize = 1_000;
    let all_cached = Barrier::new(SESSIONS);
    let all_touched = Barrier::new(SESSIONS);
    let runs = (0..SESSIONS).map(|i| {
        let (all_cached, all_touched) = (&all_cached, &all_touched);
        async move {
            let me = format!("s{i}");
            let session = AgentCacheSession::builder().loop_detection(false).build();
            let seen = session
                .run(async {
                    let first = get_account(&me, "acct").await;
                    all_cached.wait().await;
                    // Even sessions invalidate their own entries; odd ones do not.
                    if i % 2 == 0 {
                        touch_account(&me, "acct").await.unwrap();
                    }
                    all_touched.wait().await;
                    (first, get_account(&me, "acct").await)
                })
                .await
                .unwrap();
            (i, me, seen, session.metrics())
        }
    });
    let results = timeout(Duration::from_secs(60), join_all(runs))
        .await
        .expect("1,000 sessions finish");
    for (i, me, (first, second), metrics) in results {
        assert!(
            first.starts_with(&format!("{me}/acct/")),
            "{me} saw {first}"
        );
        assert!(
            second.starts_with(&format!("{me}/acct/")),
            "{me} saw {second}"
        );
        let expected_loads = if i % 2 == 0 { 2 } else { 1 };
        assert_eq!(
            DB.calls(&format!("get_account:{me}")),
            expected_loads,
            "{me}: only its own invalidation reaches its entries"
        );
        assert_eq!(metrics.misses, expected_loads as u64, "{me}");
    }
}

mod outside {
    use super::*;

    pub(super) static DB: LazyLock<Backend> = LazyLock::new(Backend::default);

    #[agent_cache(resource = "outicket", scope = "session")]
    pub(super) async fn get_ticket(id: u64) -> u64 {
        DB.call(format!("get_ticket:{id}"))
    }
}

#[tokio::test]
async fn a_session_scoped_tool_outside_a_session_runs_uncached_every_time() {
    use outside::*;

    for _ in 0..3 {
        assert_eq!(get_ticket(1).await, 0);
    }
    assert_eq!(DB.calls("get_ticket:1"), 3);
}

mod run_scoped {
    use super::*;

    pub(super) static DB: LazyLock<Backend> = LazyLock::new(Backend::default);

    #[agent_cache(resource = "rsticket", scope = "session")]
    pub(super) async fn get_ticket(id: u64) -> u64 {
        DB.call(format!("get_ticket:{id}"))
    }
}

#[tokio::test]
async fn session_entries_are_dropped_when_run_returns() {
    use run_scoped::*;

    let session = AgentCacheSession::new();
    session
        .run(async {
            get_ticket(1).await;
            get_ticket(1).await;
        })
        .await
        .unwrap();
    assert_eq!(DB.calls("get_ticket:1"), 1);
    // The same session, run again: its entries of the first run are gone.
    session.run(get_ticket(1)).await.unwrap();
    assert_eq!(DB.calls("get_ticket:1"), 2);
    // A new session starts fresh too.
    AgentCacheSession::new().run(get_ticket(1)).await.unwrap();
    assert_eq!(DB.calls("get_ticket:1"), 3);
    let m = session.metrics();
    assert_eq!((m.hits, m.misses), (1, 2));
}

mod spawning {
    use super::*;

    pub(super) static DB: LazyLock<Backend> = LazyLock::new(Backend::default);

    #[agent_cache(resource = "spticket", scope = "session")]
    pub(super) async fn get_ticket(id: u64) -> u64 {
        DB.call(format!("get_ticket:{id}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_cache_spawn_carries_the_session_into_the_task_and_tokio_spawn_does_not() {
    use spawning::*;

    let session = AgentCacheSession::new();
    session
        .run(async {
            get_ticket(1).await; // cached in the session
            agent_cache::spawn(get_ticket(1)).await.unwrap(); // a hit in the same session
            assert_eq!(
                DB.calls("get_ticket:1"),
                1,
                "the spawned task saw the session cache"
            );

            tokio::spawn(get_ticket(1)).await.unwrap(); // outside the session: uncached
            tokio::spawn(get_ticket(1)).await.unwrap();
            assert_eq!(
                DB.calls("get_ticket:1"),
                3,
                "a plain tokio task has no session"
            );
        })
        .await
        .unwrap();
    let m = session.metrics();
    assert_eq!(
        (m.hits, m.misses, m.tool_calls),
        (1, 1, 2),
        "the tokio::spawn calls were not made in the session"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_spawned_with_agent_cache_spawn_is_aborted_when_the_run_ends() {
    let finished = Arc::new(AtomicBool::new(false));
    let session = AgentCacheSession::new();
    let spawned = Mutex::new(None);
    session
        .run(async {
            let finished = Arc::clone(&finished);
            let task = agent_cache::spawn(async move {
                sleep(Duration::from_millis(300)).await;
                finished.store(true, Ordering::SeqCst);
            });
            *spawned.lock().unwrap() = Some(task);
        })
        .await
        .unwrap();
    let task = spawned.into_inner().unwrap().expect("spawned");
    let joined = timeout(HANG, task).await.expect("the task ended");
    assert!(
        joined.expect_err("aborted").is_cancelled(),
        "the task was aborted"
    );
    sleep(Duration::from_millis(600)).await;
    assert!(!finished.load(Ordering::SeqCst));
}

// ---------------------------------------------------------------------------------------------
// Single flight, Result reads and TTL
// ---------------------------------------------------------------------------------------------

mod herd {
    use super::*;

    pub(super) static DB: LazyLock<Backend> = LazyLock::new(Backend::default);
    pub(super) static RELEASE: LazyLock<Gate> = LazyLock::new(Gate::default);

    #[agent_cache(resource = "hproduct")]
    pub(super) async fn get_product(id: u64) -> u64 {
        DB.call(format!("get_product:{id}"));
        RELEASE.wait().await;
        id * 10
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_calls_of_one_read_tool_run_the_backend_once() {
    use herd::*;

    let session = AgentCacheSession::builder().loop_detection(false).build();
    let values = session
        .run(async {
            let tasks: Vec<_> = (0..100)
                .map(|_| agent_cache::spawn(get_product(4)))
                .collect();
            // Hold the load until every caller has missed (each counts its miss before it
            // joins the load), so that all 100 surely overlap; give up after 10 s.
            let deadline = Instant::now() + Duration::from_secs(10);
            while session.metrics().misses < 100 && Instant::now() < deadline {
                sleep(Duration::from_millis(5)).await;
            }
            RELEASE.open();
            join_all(tasks).await
        })
        .await
        .unwrap();
    assert_eq!(values.len(), 100);
    assert!(values.into_iter().all(|value| value.unwrap() == 40));
    assert_eq!(
        DB.calls("get_product:4"),
        1,
        "one backend call for 100 callers"
    );
    assert_eq!(session.metrics().misses, 100);
}

#[derive(Clone, Debug, PartialEq)]
struct RateError(String);

mod result_read {
    use super::*;

    pub(super) static DB: LazyLock<Backend> = LazyLock::new(Backend::default);

    /// Fails on the first call only.
    #[agent_cache(resource = "rrate")]
    pub(super) async fn get_rate(currency: &str) -> Result<u64, RateError> {
        let calls = DB.calls("get_rate");
        DB.call("get_rate");
        if calls == 0 {
            Err(RateError(format!("{currency} unavailable")))
        } else {
            Ok(110)
        }
    }
}

#[tokio::test]
async fn a_result_read_caches_ok_values_only() {
    use result_read::*;

    let session = AgentCacheSession::builder().loop_detection(false).build();
    session
        .run(async {
            assert_eq!(
                get_rate("EUR").await,
                Err(RateError("EUR unavailable".into())),
                "the error comes back as the tool returned it"
            );
            assert_eq!(get_rate("EUR").await, Ok(110), "the error was not cached");
            assert_eq!(get_rate("EUR").await, Ok(110));
        })
        .await
        .unwrap();
    assert_eq!(DB.calls("get_rate"), 2, "the Ok value was cached");
    let m = session.metrics();
    assert_eq!((m.hits, m.misses), (1, 2));
}

mod ttl {
    use super::*;

    pub(super) static DB: LazyLock<Backend> = LazyLock::new(Backend::default);

    #[agent_cache(resource = "tquote", ttl = 2)]
    pub(super) async fn get_quote(symbol: &str) -> u64 {
        DB.call(format!("get_quote:{symbol}"))
    }
}

#[tokio::test]
async fn entries_expire_after_their_ttl() {
    use ttl::*;

    get_quote("ACME").await;
    get_quote("ACME").await;
    assert_eq!(
        DB.calls("get_quote:ACME"),
        1,
        "a hit well within the 2 s ttl"
    );
    sleep(Duration::from_millis(3_500)).await;
    get_quote("ACME").await;
    assert_eq!(
        DB.calls("get_quote:ACME"),
        2,
        "expired after 2 s, loaded again"
    );
    get_quote("ACME").await;
    assert_eq!(DB.calls("get_quote:ACME"), 2, "and the new value is cached");
}

// ---------------------------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------------------------

mod counted {
    use super::*;

    pub(super) static DB: LazyLock<Backend> = LazyLock::new(Backend::default);

    #[agent_invalidator(resource = "mcname:{user_id}")]
    pub(super) async fn set_name(user_id: &str, name: &str) -> Result<(), String> {
        DB.write(format!("set_name:{user_id}:{name}"));
        Ok(())
    }

    #[agent_invalidator(resource = ["mcorders:{user_id}", "mcaudit"])]
    pub(super) async fn place_order(user_id: &str) -> Result<(), String> {
        DB.write(format!("place_order:{user_id}"));
        Ok(())
    }
}

#[tokio::test]
async fn invalidations_count_once_per_call_keyed_by_the_declared_resource_template() {
    use counted::*;

    let session = AgentCacheSession::builder().loop_detection(false).build();
    session
        .run(async {
            set_name("u1", "Ada").await.unwrap();
            set_name("u2", "Grace").await.unwrap();
            place_order("u1").await.unwrap();
        })
        .await
        .unwrap();
    // Called outside the session: counted globally only.
    set_name("u3", "Alan").await.unwrap();

    let m = session.metrics();
    assert_eq!(
        m.invalidations, 3,
        "one per call, though each invalidates before and after"
    );
    let by_resource: Vec<(&str, u64)> = m
        .invalidations_by_resource
        .iter()
        .map(|(resource, count)| (resource.as_str(), *count))
        .collect();
    assert_eq!(
        by_resource,
        [
            ("mcaudit", 1),
            ("mcname:{user_id}", 2),
            ("mcorders:{user_id}", 1)
        ],
        "keyed by the template as declared, not by each user's instance"
    );
    // These templates are this test's own, so their global counts are exact.
    let global = agent_cache::metrics();
    assert_eq!(
        global.invalidations_by_resource.get("mcname:{user_id}"),
        Some(&3)
    );
    assert_eq!(global.invalidations_by_resource.get("mcaudit"), Some(&1));
    assert!(global.invalidations >= 4);
}

mod rated {
    use super::*;

    pub(super) static DB: LazyLock<Backend> = LazyLock::new(Backend::default);

    #[agent_cache(resource = "hrfaq")]
    pub(super) async fn get_faq(id: u64) -> u64 {
        DB.call(format!("get_faq:{id}"))
    }
}

#[tokio::test]
async fn hit_rate_is_hits_over_hits_and_misses_and_metrics_serialize() {
    use rated::*;

    let idle = AgentCacheSession::new();
    idle.run(async {}).await.unwrap();
    assert_eq!(
        idle.metrics().hit_rate,
        0.0,
        "nothing counted: 0.0, not NaN"
    );

    let session = AgentCacheSession::builder().max_tool_repeats(10).build();
    session
        .run(async {
            for _ in 0..4 {
                get_faq(1).await;
            }
        })
        .await
        .unwrap();
    let m = session.metrics();
    assert_eq!((m.hits, m.misses), (3, 1));
    assert!((m.hit_rate - 0.75).abs() < 1e-9, "hit_rate {}", m.hit_rate);

    let json = serde_json::to_value(&m).unwrap();
    assert_eq!(json["hits"], 3);
    assert_eq!(json["misses"], 1);
    assert_eq!(json["invalidations"], 0);
    assert_eq!(json["loop_detections"], 0);
    assert_eq!(json["hit_rate"], 0.75);
}

// ---------------------------------------------------------------------------------------------
// Futures that can be spawned
// ---------------------------------------------------------------------------------------------

mod sendable {
    use super::*;

    #[agent_cache(resource = "sdcart:{user_id}")]
    pub(super) async fn get_cart(user_id: &str) -> u64 {
        user_id.len() as u64
    }

    #[agent_invalidator(resource = "sdcart:{user_id}")]
    pub(super) async fn add_to_cart(user_id: &str, amount: f64) -> Result<(), String> {
        let _ = (user_id, amount);
        Ok(())
    }

    #[agent_invalidator(resource = "sdcart")]
    pub(super) async fn clear_carts() -> Result<(), String> {
        Ok(())
    }
}

#[test]
fn a_read_tool_future_is_send() {
    assert!(is_send!(sendable::get_cart("u1")));
}

#[test]
fn an_invalidator_future_is_send_so_it_can_be_spawned() {
    assert!(
        is_send!(sendable::add_to_cart("u1", 9.99)),
        "add_to_cart(..) is not Send"
    );
    assert!(
        is_send!(sendable::clear_carts()),
        "clear_carts() is not Send"
    );
    let session = AgentCacheSession::new();
    assert!(
        is_send!(session.run(async {
            sendable::get_cart("u1").await;
            sendable::add_to_cart("u1", 9.99).await
        })),
        "a session run that calls an invalidator is not Send"
    );
}

mod global_aggregate {
    use super::*;

    #[agent_cache(resource = "gaggregate", scope = "session")]
    pub(super) async fn read(id: u64) -> u64 {
        id
    }
}

/// `agent_cache::metrics()` sums every live session and keeps a dropped session's counts.
/// (Other tests only add to the global counters, so the deltas are lower bounds.)
#[tokio::test]
async fn global_metrics_count_live_sessions_and_keep_dropped_ones() {
    let before = agent_cache::metrics();
    let session = AgentCacheSession::new();
    session
        .run(async {
            global_aggregate::read(1).await;
            global_aggregate::read(1).await;
            global_aggregate::read(1).await;
        })
        .await
        .unwrap();
    let live = agent_cache::metrics();
    assert!(live.hits >= before.hits + 2, "live: {live:?}");
    assert!(live.misses > before.misses);
    drop(session);
    let gone = agent_cache::metrics();
    assert!(gone.hits >= before.hits + 2, "after the drop: {gone:?}");
    assert!(gone.tool_calls >= before.tool_calls + 3);
}

// ---------------------------------------------------------------------------------------------

mod counted_once {
    use super::*;

    #[agent_cache(resource = "counted")]
    pub(super) async fn read(id: u64) -> u64 {
        id
    }
}

/// A run that detects loops counts its hits under the detector's lock, apart from the
/// session's counters: each hit still counts exactly once in the session's metrics while the
/// run goes on (read from another task), after it, with runs of one session at once, and
/// in the global aggregate once the session is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hit_counts_once_during_the_run_after_it_and_across_parallel_runs() {
    use counted_once::read;
    let before = agent_cache::metrics();
    let session = AgentCacheSession::builder()
        .max_tool_repeats(u32::MAX)
        .max_execution_depth(u64::MAX)
        .build();
    let (started, finish) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let run = tokio::spawn({
        let (session, started, finish) = (session.clone(), started.clone(), finish.clone());
        async move {
            session
                .run(async {
                    read(1).await; // the miss that loads it
                    for _ in 0..100 {
                        read(1).await;
                    }
                    started.notify_one();
                    finish.notified().await;
                })
                .await
                .unwrap();
        }
    });
    timeout(HANG, started.notified()).await.unwrap();
    let during = session.metrics();
    assert_eq!((during.hits, during.misses), (100, 1), "during the run");
    finish.notify_one();
    timeout(HANG, run).await.unwrap().unwrap();
    let after = session.metrics();
    assert_eq!((after.hits, after.misses, after.tool_calls), (100, 1, 101));

    // Two runs of the session at once, each on its own task.
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let session = session.clone();
            tokio::spawn(async move {
                session
                    .run(async {
                        for _ in 0..1_000 {
                            read(1).await;
                        }
                    })
                    .await
                    .unwrap()
            })
        })
        .collect();
    for run in runs {
        timeout(HANG, run).await.unwrap().unwrap();
    }
    assert_eq!(session.metrics().hits, 2_100, "both runs' hits, once each");
    let live = agent_cache::metrics();
    assert!(live.hits >= before.hits + 2_100, "live session: {live:?}");
    drop(session);
    let gone = agent_cache::metrics();
    assert!(gone.hits >= before.hits + 2_100, "after the drop: {gone:?}");
}

// ---------------------------------------------------------------------------------------------

mod engines {
    use super::*;

    pub(super) static DB: LazyLock<Backend> = LazyLock::new(Backend::default);

    #[agent_cache(resource = "eprice:{sku}", engine = "moka", maxsize = 2)]
    pub(super) async fn price_on_moka(sku: &str) -> u64 {
        DB.call(format!("moka:{sku}"))
    }

    #[agent_cache(resource = "eprice:{sku}", scope = "session", engine = "quick_cache")]
    pub(super) async fn price_in_session(sku: &str) -> u64 {
        DB.call(format!("quick_cache:{sku}"))
    }

    #[agent_invalidator(resource = "eprice:{sku}")]
    pub(super) async fn reprice(sku: &str) {
        DB.write(format!("reprice:{sku}"));
    }
}

#[tokio::test]
async fn reads_on_either_engine_hit_are_invalidated_and_keep_their_bound() {
    use engines::*;

    let session = AgentCacheSession::builder().loop_detection(false).build();
    session
        .run(async {
            assert_eq!(price_on_moka("a").await, 0);
            assert_eq!(price_on_moka("a").await, 0);
            assert_eq!(price_in_session("a").await, 0);
            assert_eq!(price_in_session("a").await, 0);
            reprice("a").await;
            assert_eq!(price_on_moka("a").await, 1, "re-read after the write");
            assert_eq!(price_in_session("a").await, 1, "re-read after the write");
            // A bound of 2: two more keys push `a` out of the moka-backed cache.
            price_on_moka("b").await;
            price_on_moka("c").await;
            assert_eq!(price_on_moka("a").await, 1);
        })
        .await
        .unwrap();
    assert_eq!(
        DB.calls("moka:a"),
        3,
        "loaded, reloaded after the write, after eviction"
    );
    assert_eq!(
        DB.calls("quick_cache:a"),
        2,
        "loaded, reloaded after the write"
    );
    let m = session.metrics();
    assert_eq!((m.hits, m.misses, m.invalidations), (2, 7, 1));
}

#[tokio::test]
async fn a_session_invalidation_of_one_users_path_reaches_that_users_entry_only() {
    static RUNS: AtomicU64 = AtomicU64::new(0);

    // Its hit takes the path's version without resolving the path; the miss after the
    // invalidation resolves it again.
    #[agent_cache(resource = "sicart:{user}", scope = "session")]
    async fn cart_total(user: u64) -> u64 {
        RUNS.fetch_add(1, Ordering::Relaxed);
        user + 100
    }

    #[agent_invalidator(resource = "sicart:{user}", scope = "session")]
    async fn add_to_cart(user: u64) {
        let _ = user;
    }

    let session = AgentCacheSession::new();
    session
        .run(async {
            let runs = || RUNS.load(Ordering::Relaxed);
            assert_eq!((cart_total(7).await, cart_total(7).await), (107, 107));
            assert_eq!(runs(), 1, "the second call hit");
            add_to_cart(7).await;
            assert_eq!(cart_total(7).await, 107);
            assert_eq!(runs(), 2, "invalidated: it ran again");
            assert_eq!(cart_total(7).await, 107);
            assert_eq!(cart_total(8).await, 108);
            add_to_cart(7).await;
            assert_eq!(cart_total(8).await, 108);
            assert_eq!(runs(), 3, "user 7's second read hit; user 8's entry stayed");
        })
        .await
        .expect("no loop");
}
