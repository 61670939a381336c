//! Loop detection: the `LoopDetector` on its own (each kind, its bounds, its memory), each
//! `OnLoop` through sessions and the attributes, and legitimate agent work that must not be
//! flagged.
//!
//! Every `#[agent_cache]` function has one process-wide cache and tests run in parallel in this
//! binary, so each test has its own tools, backend counters and resource names.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use agent_cache::{
    AgentCacheSession, LoopDetector, LoopKind, LoopLimits, OnLoop, agent_cache, agent_invalidator,
    signature,
};
use tokio::time::timeout;

// ---------------------------------------------------------------------------------------------
// Allocation accounting, to show the detector's memory stays bounded
// ---------------------------------------------------------------------------------------------

/// The system allocator, counting the bytes each thread has allocated and not yet freed.
/// Tests run on their own threads, so a test reads its own allocations only.
struct CountingAllocator;

thread_local! {
    static NET_BYTES: Cell<isize> = const { Cell::new(0) };
}

fn add_net(bytes: isize) {
    // `try_with`: never fail inside the allocator, even while the thread is being torn down.
    let _ = NET_BYTES.try_with(|net| net.set(net.get() + bytes));
}

fn net_bytes() -> isize {
    NET_BYTES.with(Cell::get)
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            add_net(layout.size() as isize);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded.
        unsafe { System.dealloc(ptr, layout) };
        add_net(-(layout.size() as isize));
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            add_net(layout.size() as isize);
        }
        ptr
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            add_net(new_size as isize - layout.size() as isize);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

// ---------------------------------------------------------------------------------------------
// LoopDetector, without macros
// ---------------------------------------------------------------------------------------------

/// Default limits with some changed.
fn limits(change: impl FnOnce(&mut LoopLimits)) -> LoopLimits {
    let mut limits = LoopLimits::default();
    change(&mut limits);
    limits
}

/// Twelve distinct tool names, for cycles of every period.
const TOOLS: [&str; 12] = [
    "t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8", "t9", "t10", "t11",
];

fn call(tool: &'static str) -> (&'static str, u64) {
    (tool, signature(tool, &()))
}

#[test]
fn detector_flags_a_repeat_on_the_call_past_max_tool_repeats() {
    let mut detector = LoopDetector::new(limits(|l| l.max_tool_repeats = 3));
    let search = signature("search_web", &"async caching");
    let other_query = signature("search_web", &"tokio");
    for _ in 0..3 {
        assert_eq!(detector.record("search_web", search), None);
    }
    // The same tool with other arguments is another call.
    assert_eq!(detector.record("search_web", other_query), None);
    let found = detector
        .record("search_web", search)
        .expect("a fourth identical call");
    assert_eq!(found.kind, LoopKind::Repeat);
    assert_eq!(found.tool, "search_web");
    assert!(found.cycle.is_empty());
    assert!(found.message.contains("search_web"), "{}", found.message);
    assert_eq!(detector.calls(), 5);
}

#[test]
fn detector_flags_depth_on_the_call_past_max_execution_depth() {
    let mut detector = LoopDetector::new(limits(|l| l.max_execution_depth = 5));
    for page in 0..5_u32 {
        assert_eq!(detector.record("list", signature("list", &page)), None);
    }
    let found = detector
        .record("list", signature("list", &5_u32))
        .expect("the sixth call");
    assert_eq!(found.kind, LoopKind::Depth);
    assert_eq!(found.tool, "list");
}

#[test]
fn detector_flags_a_cycle_of_period_two_on_its_second_round() {
    let mut detector = LoopDetector::new(LoopLimits::default());
    let check = signature("check_stock", &"SKU-42");
    let update = signature("update_stock", &("SKU-42", -1));
    assert_eq!(detector.record("check_stock", check), None);
    assert_eq!(detector.record("update_stock", update), None);
    assert_eq!(detector.record("check_stock", check), None);
    let found = detector.record("update_stock", update).expect("A, B, A, B");
    assert_eq!(found.kind, LoopKind::Cycle);
    assert_eq!(found.tool, "update_stock");
    assert_eq!(found.cycle, ["check_stock", "update_stock"]);
    assert_eq!(found.message, "Cycle detected: check_stock -> update_stock");
}

#[test]
fn detector_flags_a_cycle_of_period_three_after_unrelated_calls() {
    let mut detector = LoopDetector::new(LoopLimits::default());
    let (plan, search, summarize) = (call("plan"), call("search"), call("summarize"));
    // Unrelated work first: a cycle need not start the session.
    assert_eq!(detector.record("intro", signature("intro", &1)), None);
    assert_eq!(detector.record("intro", signature("intro", &2)), None);
    for (tool, sig) in [plan, search, summarize, plan, search] {
        assert_eq!(detector.record(tool, sig), None, "{tool}");
    }
    let found = detector
        .record(summarize.0, summarize.1)
        .expect("A, B, C, A, B, C");
    assert_eq!(found.kind, LoopKind::Cycle);
    assert_eq!(found.cycle, ["plan", "search", "summarize"]);
    assert_eq!(found.message, "Cycle detected: plan -> search -> summarize");
}

#[test]
fn detector_flags_cycles_of_every_period_up_to_max_cycle_len() {
    let max = LoopLimits::default().max_cycle_len;
    assert!(
        max >= 2 && max <= TOOLS.len() - 2,
        "the test covers the bound"
    );
    for period in 2..=max {
        let mut detector = LoopDetector::new(LoopLimits::default());
        let round = &TOOLS[..period];
        for (i, tool) in round.iter().chain(round).enumerate() {
            let found = detector.record(tool, signature(tool, &()));
            if i + 1 < 2 * period {
                assert_eq!(found, None, "period {period}, call {i}");
            } else {
                let found = found.unwrap_or_else(|| panic!("period {period} not detected"));
                assert_eq!(found.kind, LoopKind::Cycle);
                assert_eq!(found.cycle, round, "period {period}");
            }
        }
    }
}

#[test]
fn detector_does_not_look_for_cycles_longer_than_max_cycle_len() {
    let max = LoopLimits::default().max_cycle_len;
    let round = &TOOLS[..=max]; // one call longer than the bound
    let mut detector = LoopDetector::new(LoopLimits::default());
    for tool in round.iter().chain(round).chain(round) {
        assert_eq!(detector.record(tool, signature(tool, &())), None, "{tool}");
    }

    // Raising the bound finds it on the second round.
    let mut detector = LoopDetector::new(limits(|l| l.max_cycle_len = max + 1));
    let found = round
        .iter()
        .chain(round)
        .find_map(|tool| detector.record(tool, signature(tool, &())))
        .expect("within the raised bound");
    assert_eq!(found.kind, LoopKind::Cycle);
    assert_eq!(found.cycle, round);
    assert_eq!(detector.calls(), 2 * round.len() as u64);
}

#[test]
fn detector_finds_a_longer_cycle_only_once_it_has_repeated_in_full() {
    let mut detector = LoopDetector::new(LoopLimits::default());
    let (a, b, c) = (call("a"), call("b"), call("c"));
    for (tool, sig) in [a, b, a, c, a, b, a, c] {
        // a, b, a, c, a, b, a, c is a cycle of period 4, found on its eighth call only.
        if let Some(found) = detector.record(tool, sig) {
            assert_eq!(detector.calls(), 8, "found early: {found:?}");
            assert_eq!(found.cycle, ["a", "b", "a", "c"]);
            return;
        }
    }
    panic!("the period-4 cycle was not found");
}

#[test]
fn detector_flags_a_retry_storm_after_max_retries_failures_in_a_row() {
    let mut detector = LoopDetector::new(limits(|l| {
        l.max_retries = 3;
        l.max_tool_repeats = 100;
    }));
    let charge = signature("charge_payment", &("ORD-1", "99.99"));
    for _ in 0..3 {
        assert_eq!(detector.record("charge_payment", charge), None);
        detector.record_failure(charge);
    }
    let found = detector
        .record("charge_payment", charge)
        .expect("a fourth try after three failures");
    assert_eq!(found.kind, LoopKind::RetryStorm);
    assert_eq!(found.tool, "charge_payment");
}

#[test]
fn detector_forgets_a_run_of_failures_when_the_call_succeeds() {
    let mut detector = LoopDetector::new(limits(|l| {
        l.max_retries = 3;
        l.max_tool_repeats = 100;
    }));
    let charge = signature("charge", &1);
    for _ in 0..2 {
        assert_eq!(detector.record("charge", charge), None);
        detector.record_failure(charge);
    }
    assert_eq!(detector.record("charge", charge), None);
    detector.record_success(charge);
    for _ in 0..2 {
        assert_eq!(
            detector.record("charge", charge),
            None,
            "the earlier failures were forgotten"
        );
        detector.record_failure(charge);
    }
    assert_eq!(detector.record("charge", charge), None, "two in a row");
    detector.record_failure(charge);
    assert_eq!(
        detector.record("charge", charge).map(|found| found.kind),
        Some(LoopKind::RetryStorm),
        "three in a row"
    );
}

#[test]
fn detector_counts_failures_per_call_not_per_tool() {
    let mut detector = LoopDetector::new(limits(|l| l.max_tool_repeats = 100));
    let first = signature("charge", &1);
    for _ in 0..3 {
        assert_eq!(detector.record("charge", first), None);
        detector.record_failure(first);
    }
    // Another order's charge has not failed.
    assert_eq!(detector.record("charge", signature("charge", &2)), None);
}

#[test]
fn detector_memory_and_cost_per_call_stay_bounded_over_a_million_distinct_calls() {
    const CALLS: u64 = 1_000_000;
    const SAMPLE: u64 = 100_000;
    let mut detector = LoopDetector::new(limits(|l| l.max_execution_depth = u64::MAX));

    // Warm up: fill whatever the detector remembers, then measure from there.
    let started = Instant::now();
    for i in 0..SAMPLE {
        assert_eq!(detector.record("read", signature("read", &i)), None);
    }
    let first_sample = started.elapsed();
    let warm = net_bytes();

    for i in SAMPLE..CALLS - SAMPLE {
        assert_eq!(detector.record("read", signature("read", &i)), None);
    }
    let started = Instant::now();
    for i in CALLS - SAMPLE..CALLS {
        assert_eq!(detector.record("read", signature("read", &i)), None);
    }
    let last_sample = started.elapsed();
    let grown = net_bytes() - warm;

    // 900,000 more distinct calls: remembering even 8 bytes of each would be 7 MB.
    assert!(
        grown < 1 << 20,
        "the detector grew by {grown} bytes over 900,000 calls"
    );
    assert!(
        last_sample < first_sample * 10 + Duration::from_millis(100),
        "cost per call grew: first {SAMPLE} calls {first_sample:?}, last {SAMPLE} {last_sample:?}"
    );
    assert_eq!(detector.calls(), CALLS);

    // It still detects: a repeat...
    let stuck = signature("read", &"stuck");
    let repeat = (0..=LoopLimits::default().max_tool_repeats)
        .find_map(|_| detector.record("read", stuck))
        .expect("still detects repeats");
    assert_eq!(repeat.kind, LoopKind::Repeat);
    // ...and a cycle.
    let (a, b) = (call("ping"), call("pong"));
    let cycle = [a, b, a, b]
        .into_iter()
        .find_map(|(tool, sig)| detector.record(tool, sig))
        .expect("still detects cycles");
    assert_eq!(cycle.cycle, ["ping", "pong"]);
}

/// The detector's rules written plainly, with none of its shortcuts (no ring, no period
/// counters, no bucket filter, no hot path): what every call of the real one must decide.
/// Exact for signatures whose low 12 bits differ (the real repeat counts are a direct-mapped
/// table of 4,096 slots, picked by those bits) and fewer than 4,096 failing calls.
struct ModelDetector {
    limits: LoopLimits,
    calls: Vec<(&'static str, u64)>,
    /// Per signature: its count, and the low 32 bits of the version of its last read.
    repeats: HashMap<u64, (u32, u32)>,
    failures: HashMap<u64, u32>,
}

impl ModelDetector {
    fn new(mut limits: LoopLimits) -> Self {
        limits.max_cycle_len = limits.max_cycle_len.clamp(2, 32);
        ModelDetector {
            limits,
            calls: Vec::new(),
            repeats: HashMap::new(),
            failures: HashMap::new(),
        }
    }

    fn record(
        &mut self,
        tool: &'static str,
        signature: u64,
        version: Option<u64>,
    ) -> Option<(LoopKind, &'static str, Vec<&'static str>, String)> {
        let limits = self.limits;
        self.calls.push((tool, signature));
        let version = version.map(|version| version as u32);
        let repeats = match self.repeats.get_mut(&signature) {
            // A read whose version moved is progress: its count stays.
            Some((count, last)) if version.is_some_and(|version| version != *last) => {
                *last = version.unwrap();
                *count
            }
            Some((count, _)) => {
                *count = count.saturating_add(1);
                *count
            }
            None => {
                self.repeats.insert(signature, (1, version.unwrap_or(0)));
                1
            }
        };
        let n = self.calls.len();
        if n as u64 > limits.max_execution_depth {
            let message = format!(
                "Execution depth exceeded: {tool} is tool call {n} (max_execution_depth = {})",
                limits.max_execution_depth
            );
            return Some((LoopKind::Depth, tool, Vec::new(), message));
        }
        let failures = self.failures.get(&signature).copied().unwrap_or(0);
        if failures >= limits.max_retries {
            let message = format!(
                "Retry storm detected: {tool} failed {failures} times in a row with the same \
                 arguments (max_retries = {})",
                limits.max_retries
            );
            return Some((LoopKind::RetryStorm, tool, Vec::new(), message));
        }
        if repeats > limits.max_tool_repeats {
            let message = format!(
                "Repeated call detected: {tool} called {repeats} times with the same arguments \
                 (max_tool_repeats = {})",
                limits.max_tool_repeats
            );
            return Some((LoopKind::Repeat, tool, Vec::new(), message));
        }
        // A cycle: the shortest period p whose last p calls equal the p before them, unless
        // the run of identical calls ending here is p long or more (that is a repeat).
        let sig = |back: usize| self.calls[n - 1 - back].1;
        let identical = 1
            + (1..n)
                .take_while(|&back| sig(back) == sig(back - 1))
                .count();
        let period = (2..=limits.max_cycle_len).find(|&period| {
            2 * period <= n
                && (0..period).all(|back| sig(back) == sig(back + period))
                && identical < period
        })?;
        let cycle: Vec<&'static str> = self.calls[n - period..].iter().map(|c| c.0).collect();
        let message = format!("Cycle detected: {}", cycle.join(" -> "));
        Some((LoopKind::Cycle, tool, cycle, message))
    }
}

/// splitmix64, for reproducible random sequences.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[test]
fn detector_decides_every_call_as_the_plain_model_of_its_rules_over_random_sequences() {
    const TOOLS: [&str; 6] = ["read", "list", "search", "check", "update", "fetch"];
    let mut state = 0x0010_07DE_7EC7;
    let mut detections = HashMap::<LoopKind, usize>::new();
    for case in 0..150 {
        let limits = limits(|l| {
            l.max_tool_repeats = (next(&mut state) % 9) as u32;
            l.max_execution_depth = match next(&mut state) % 3 {
                0 => 20 + next(&mut state) % 400,
                _ => u64::MAX,
            };
            l.max_retries = (next(&mut state) % 5) as u32; // 0 included: every call is a storm
            l.max_cycle_len = 1 + (next(&mut state) % 34) as usize; // clamped to 2..=32
        });
        let mut detector = LoopDetector::new(limits);
        let mut model = ModelDetector::new(limits);
        // Distinct low 12 bits (their repeat slots), every other bit from one of a few values:
        // calls often agree on whatever bits the detector picks its buckets by, unequal.
        let distinct = 2 + (next(&mut state) % 40) as usize;
        let highs: Vec<u64> = (0..1 + next(&mut state) % 4)
            .map(|_| next(&mut state) & !0xFFF)
            .collect();
        let calls: Vec<(&'static str, u64)> = (0..distinct)
            .map(|i| {
                let high = highs[(next(&mut state) % highs.len() as u64) as usize];
                (TOOLS[i % TOOLS.len()], high | i as u64)
            })
            .collect();
        let mut plan: Vec<usize> = Vec::new();
        for step in 0..1_500 {
            if plan.is_empty() {
                // One call, or a pattern of up to 12 calls two or three times over.
                let len = if next(&mut state).is_multiple_of(3) {
                    1
                } else {
                    1 + next(&mut state) % 12
                };
                let pattern: Vec<usize> = (0..len)
                    .map(|_| (next(&mut state) as usize) % distinct)
                    .collect();
                for _ in 0..1 + next(&mut state) % 3 {
                    plan.extend(pattern.iter().rev());
                }
            }
            let (tool, signature) = calls[plan.pop().unwrap()];
            let found = match next(&mut state) % 10 {
                0 => {
                    detector.record_failure(signature);
                    *model.failures.entry(signature).or_insert(0) += 1;
                    continue;
                }
                1 => {
                    detector.record_success(signature);
                    model.failures.remove(&signature);
                    continue;
                }
                2..=4 => (
                    detector.record(tool, signature),
                    model.record(tool, signature, None),
                ),
                _ => {
                    let version = next(&mut state) % 3;
                    (
                        detector.record_read(tool, signature, version),
                        model.record(tool, signature, Some(version)),
                    )
                }
            };
            let (real, expected) = found;
            let real = real.map(|d| (d.kind, d.tool, d.cycle, d.message));
            assert_eq!(
                real, expected,
                "case {case}, step {step}, limits {limits:?}"
            );
            if let Some((kind, ..)) = real {
                *detections.entry(kind).or_default() += 1;
            }
        }
    }
    // The sequences reach every rule, so agreeing is not agreeing on `None` alone.
    for kind in [
        LoopKind::Repeat,
        LoopKind::Depth,
        LoopKind::Cycle,
        LoopKind::RetryStorm,
    ] {
        assert!(
            detections.get(&kind).copied().unwrap_or(0) > 50,
            "{detections:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// OnLoop through sessions and the attributes
// ---------------------------------------------------------------------------------------------

/// Counts calls of the simulated backend by operation.
#[derive(Default)]
struct Backend {
    calls: Mutex<HashMap<String, usize>>,
}

impl Backend {
    fn call(&self, operation: impl Into<String>) {
        *self
            .calls
            .lock()
            .unwrap()
            .entry(operation.into())
            .or_insert(0) += 1;
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

/// Sets its flag when dropped: shows the workflow future was dropped.
struct DropFlag<'a>(&'a AtomicBool);

impl Drop for DropFlag<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

const HANG: Duration = Duration::from_secs(20);

mod raise {
    use super::*;

    pub(super) static DB: LazyLock<Backend> = LazyLock::new(Backend::default);

    #[agent_cache(resource = "raise_doc")]
    pub(super) async fn get_doc(id: u64) -> u64 {
        DB.call(format!("get_doc:{id}"));
        id
    }
}

#[tokio::test]
async fn raise_halts_the_workflow_at_the_looping_call_and_nothing_after_it_runs() {
    use raise::*;

    let session = AgentCacheSession::builder()
        .session_id("raise")
        .max_tool_repeats(2)
        .on_loop(OnLoop::Raise)
        .build();
    let dropped = AtomicBool::new(false);
    let reached = AtomicUsize::new(0);
    let outcome = session
        .run(async {
            let _guard = DropFlag(&dropped);
            get_doc(1).await;
            reached.store(1, Ordering::SeqCst);
            get_doc(1).await;
            reached.store(2, Ordering::SeqCst);
            get_doc(1).await; // the third identical call: halted here
            reached.store(3, Ordering::SeqCst);
            get_doc(2).await;
            reached.store(4, Ordering::SeqCst);
            "finished"
        })
        .await;
    let error = outcome.expect_err("halted");
    assert_eq!(error.kind(), LoopKind::Repeat);
    assert_eq!(error.tool(), "get_doc");
    assert_eq!(error.session_id(), "raise");
    assert!(
        error.to_string().contains("raise"),
        "Display names the session"
    );
    assert_eq!(
        reached.load(Ordering::SeqCst),
        2,
        "nothing after the looping call ran"
    );
    assert!(
        dropped.load(Ordering::SeqCst),
        "the workflow was dropped by the time run returned"
    );
    assert_eq!(DB.calls("get_doc:1"), 1);
    assert_eq!(DB.calls("get_doc:2"), 0);
    let m = session.metrics();
    assert_eq!(m.loop_detections, 1);
    assert_eq!(m.loop_detections_by_kind.repeat, 1);
}

mod raise_spawned {
    use super::*;

    pub(super) static DB: LazyLock<Backend> = LazyLock::new(Backend::default);

    #[agent_cache(resource = "raise_spawned_doc")]
    pub(super) async fn get_doc(id: u64) -> u64 {
        DB.call(format!("get_doc:{id}"));
        id
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raise_in_a_spawned_task_halts_the_whole_run_and_aborts_its_other_tasks() {
    use raise_spawned::*;

    let session = AgentCacheSession::builder()
        .max_tool_repeats(3)
        .on_loop(OnLoop::Raise)
        .build();
    let bystander_dropped = Arc::new(AtomicBool::new(false));
    let bystander_finished = Arc::new(AtomicBool::new(false));
    let outcome = timeout(
        HANG,
        session.run(async {
            // A task of the run that would outlive the halt.
            agent_cache::spawn({
                let (dropped, finished) = (
                    Arc::clone(&bystander_dropped),
                    Arc::clone(&bystander_finished),
                );
                async move {
                    struct Guard(Arc<AtomicBool>);
                    impl Drop for Guard {
                        fn drop(&mut self) {
                            self.0.store(true, Ordering::SeqCst);
                        }
                    }
                    let _guard = Guard(dropped);
                    tokio::time::sleep(Duration::from_secs(3_600)).await;
                    finished.store(true, Ordering::SeqCst);
                }
            });
            // The task that loops.
            let looping = agent_cache::spawn(async {
                loop {
                    get_doc(7).await;
                }
            });
            let _ = looping.await;
            unreachable!("the run halts before the looping task could end");
        }),
    )
    .await
    .expect("the run halted instead of hanging");
    assert_eq!(outcome.expect_err("halted").kind(), LoopKind::Repeat);
    assert_eq!(DB.calls("get_doc:7"), 1);
    // The bystander task was aborted: its future is dropped (soon) and never finishes.
    let deadline = Instant::now() + HANG;
    while !bystander_dropped.load(Ordering::SeqCst) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        bystander_dropped.load(Ordering::SeqCst),
        "the other task was aborted"
    );
    assert!(!bystander_finished.load(Ordering::SeqCst));
}

mod warn {
    use super::*;

    pub(super) static DB: LazyLock<Backend> = LazyLock::new(Backend::default);

    #[agent_cache(resource = "warn_doc")]
    pub(super) async fn get_doc(id: u64) -> u64 {
        DB.call(format!("get_doc:{id}"));
        id
    }

    #[agent_invalidator(resource = "warn_counter")]
    pub(super) async fn bump(id: u64) -> Result<(), String> {
        DB.call(format!("bump:{id}"));
        Ok(())
    }
}

#[tokio::test]
async fn warn_lets_every_call_run_and_counts_every_detection() {
    use warn::*;

    let session = AgentCacheSession::builder()
        .max_tool_repeats(2)
        .on_loop(OnLoop::Warn)
        .build();
    let finished = session
        .run(async {
            for _ in 0..5 {
                assert_eq!(get_doc(1).await, 1);
            }
            for _ in 0..5 {
                bump(1).await.unwrap();
            }
            "finished"
        })
        .await
        .expect("Warn never halts");
    assert_eq!(finished, "finished");
    assert_eq!(
        DB.calls("get_doc:1"),
        1,
        "reads were still served from cache"
    );
    assert_eq!(
        DB.calls("bump:1"),
        5,
        "every mutation ran, the flagged ones included"
    );
    let m = session.metrics();
    assert_eq!(m.loop_detections, 6, "calls 3, 4 and 5 of each tool");
    assert_eq!(m.loop_detections_by_kind.repeat, 6);
    assert_eq!((m.hits, m.misses, m.invalidations), (4, 1, 5));
    assert_eq!(m.tool_calls, 10);
}

mod short_circuit_hit {
    use super::*;

    pub(super) static DB: LazyLock<Backend> = LazyLock::new(Backend::default);

    #[agent_cache(resource = "sc_hit_doc")]
    pub(super) async fn get_doc(id: u64) -> String {
        DB.call(format!("get_doc:{id}"));
        format!("doc {id}")
    }
}

#[tokio::test]
async fn short_circuit_returns_the_cached_value_without_running_the_tool_and_continues() {
    use short_circuit_hit::*;

    let session = AgentCacheSession::builder()
        .max_tool_repeats(2)
        .on_loop(OnLoop::ShortCircuit)
        .build();
    let after = AtomicBool::new(false);
    let docs = session
        .run(async {
            let mut docs = Vec::new();
            for _ in 0..4 {
                docs.push(get_doc(1).await);
            }
            after.store(true, Ordering::SeqCst);
            docs
        })
        .await
        .expect("a cached value was there to return");
    assert_eq!(docs, vec!["doc 1".to_owned(); 4]);
    assert!(after.load(Ordering::SeqCst), "the workflow went on");
    assert_eq!(DB.calls("get_doc:1"), 1);
    let m = session.metrics();
    assert_eq!(m.loop_detections, 2);
    assert_eq!((m.hits, m.misses), (3, 1));
}

mod short_circuit_none {
    use super::*;

    pub(super) static DB: LazyLock<Backend> = LazyLock::new(Backend::default);

    /// Entries live 0.2 s: a test lets one expire by waiting well past that.
    #[agent_cache(resource = "sc_none_doc", ttl = 0.2)]
    pub(super) async fn get_doc(id: u64) -> String {
        DB.call(format!("get_doc:{id}"));
        format!("doc {id}")
    }

    #[agent_invalidator(resource = "sc_none_other")]
    pub(super) async fn touch(id: u64) -> Result<(), String> {
        DB.call(format!("touch:{id}"));
        Ok(())
    }
}

#[tokio::test]
async fn short_circuit_halts_a_read_whose_entry_is_gone_without_running_it() {
    use short_circuit_none::*;

    let session = AgentCacheSession::builder()
        .max_tool_repeats(2)
        .on_loop(OnLoop::ShortCircuit)
        .build();
    let after = AtomicBool::new(false);
    let error = session
        .run(async {
            get_doc(1).await;
            get_doc(1).await;
            // The entry expires. Nothing invalidated it, so the next read is no progress.
            tokio::time::sleep(Duration::from_millis(600)).await;
            get_doc(1).await; // flagged, and nothing cached to return
            after.store(true, Ordering::SeqCst);
        })
        .await
        .expect_err("nothing to short-circuit with");
    assert_eq!(error.kind(), LoopKind::Repeat);
    assert_eq!(error.tool(), "get_doc");
    assert!(!after.load(Ordering::SeqCst));
    assert_eq!(DB.calls("get_doc:1"), 1, "the flagged read did not run");
    assert_eq!(session.metrics().loop_detections, 1);
}

#[tokio::test]
async fn short_circuit_halts_a_looping_invalidator_since_it_has_no_cached_value() {
    use short_circuit_none::*;

    let session = AgentCacheSession::builder()
        .max_tool_repeats(2)
        .on_loop(OnLoop::ShortCircuit)
        .build();
    let completed = AtomicUsize::new(0);
    let error = session
        .run(async {
            for _ in 0..5 {
                touch(9).await.unwrap();
                completed.fetch_add(1, Ordering::SeqCst);
            }
        })
        .await
        .expect_err("an invalidator has nothing to short-circuit with");
    assert_eq!(error.kind(), LoopKind::Repeat);
    assert_eq!(error.tool(), "touch");
    assert_eq!(completed.load(Ordering::SeqCst), 2);
    assert_eq!(DB.calls("touch:9"), 2, "the third mutation did not run");
}

mod hits_count {
    use super::*;

    pub(super) static DB: LazyLock<Backend> = LazyLock::new(Backend::default);

    #[agent_cache(resource = "hits_count_doc")]
    pub(super) async fn get_doc(id: u64) -> u64 {
        DB.call(format!("get_doc:{id}"));
        id
    }
}

#[tokio::test]
async fn cache_hits_count_as_calls_for_loop_detection() {
    use hits_count::*;

    let session = AgentCacheSession::builder()
        .max_tool_repeats(3)
        .on_loop(OnLoop::Raise)
        .build();
    let error = session
        .run(async {
            for _ in 0..10 {
                get_doc(5).await;
            }
        })
        .await
        .expect_err("the fourth call is flagged although it would be a hit");
    assert_eq!(error.kind(), LoopKind::Repeat);
    assert_eq!(DB.calls("get_doc:5"), 1, "only the first call executed");
    let m = session.metrics();
    assert_eq!((m.hits, m.misses), (2, 1));
    assert_eq!(
        m.tool_calls, 4,
        "the hits and the flagged call were recorded"
    );
}

mod depth {
    use super::*;

    #[agent_cache(resource = "depth_item")]
    pub(super) async fn get_item(id: u64) -> u64 {
        id
    }
}

#[tokio::test]
async fn a_session_halts_the_call_past_max_execution_depth() {
    use depth::*;

    let session = AgentCacheSession::builder().max_execution_depth(5).build();
    let done = AtomicUsize::new(0);
    let error = session
        .run(async {
            for id in 0..10 {
                get_item(id).await;
                done.fetch_add(1, Ordering::SeqCst);
            }
        })
        .await
        .expect_err("more than 5 calls");
    assert_eq!(error.kind(), LoopKind::Depth);
    assert_eq!(done.load(Ordering::SeqCst), 5);
    assert_eq!(session.metrics().loop_detections_by_kind.depth, 1);
}

mod cycle3 {
    use super::*;

    #[agent_cache(resource = "cycle3_plan")]
    pub(super) async fn plan(goal: &str) -> String {
        format!("plan for {goal}")
    }

    #[agent_cache(resource = "cycle3_search")]
    pub(super) async fn search(query: &str) -> String {
        format!("results for {query}")
    }

    #[agent_invalidator(resource = "cycle3_plan")]
    pub(super) async fn revise(goal: &str) -> Result<(), String> {
        let _ = goal;
        Ok(())
    }
}

#[tokio::test]
async fn a_session_halts_a_cycle_of_three_tools_naming_them_in_order() {
    use cycle3::*;

    let session = AgentCacheSession::builder().session_id("planner").build();
    let rounds = AtomicUsize::new(0);
    let error = session
        .run(async {
            loop {
                plan("report").await;
                search("report").await;
                revise("report").await.unwrap();
                rounds.fetch_add(1, Ordering::SeqCst);
            }
        })
        .await
        .expect_err("plan, search, revise, plan, search, revise");
    assert_eq!(error.kind(), LoopKind::Cycle);
    assert_eq!(error.cycle(), ["plan", "search", "revise"]);
    assert_eq!(error.message(), "Cycle detected: plan -> search -> revise");
    assert_eq!(error.tool(), "revise");
    assert_eq!(rounds.load(Ordering::SeqCst), 1);
    assert_eq!(session.metrics().loop_detections_by_kind.cycle, 1);
}

#[derive(Clone, Debug, PartialEq)]
struct Unavailable;

mod failing_read {
    use super::*;

    pub(super) static DB: LazyLock<Backend> = LazyLock::new(Backend::default);

    #[agent_cache(resource = "failing_read_quote")]
    pub(super) async fn get_quote(symbol: &str) -> Result<u64, Unavailable> {
        DB.call(format!("get_quote:{symbol}"));
        Err(Unavailable)
    }
}

#[tokio::test]
async fn a_read_tool_failing_max_retries_times_is_a_retry_storm() {
    use failing_read::*;

    let session = AgentCacheSession::builder()
        .max_retries(2)
        .max_tool_repeats(10)
        .build();
    let error = session
        .run(async {
            for _ in 0..10 {
                assert_eq!(get_quote("ACME").await, Err(Unavailable));
            }
        })
        .await
        .expect_err("the third try after two failures");
    assert_eq!(error.kind(), LoopKind::RetryStorm);
    assert_eq!(error.tool(), "get_quote");
    assert_eq!(DB.calls("get_quote:ACME"), 2);
    assert_eq!(session.metrics().loop_detections_by_kind.retry_storm, 1);
}

mod skipped {
    use super::*;

    pub(super) static DB: LazyLock<Backend> = LazyLock::new(Backend::default);

    /// The trace id is left out of the key and of the loop signature.
    #[agent_cache(resource = "skipped_page", skip_args = 1)]
    pub(super) async fn fetch_page(trace_id: u64, url: &str) -> String {
        DB.call(format!("fetch_page:{url}"));
        format!("{url} (first fetched by trace {trace_id})")
    }
}

#[tokio::test]
async fn skipped_arguments_do_not_tell_calls_apart_for_loop_detection() {
    use skipped::*;

    let session = AgentCacheSession::builder().max_tool_repeats(3).build();
    let error = session
        .run(async {
            for trace_id in 0..10 {
                fetch_page(trace_id, "https://example.org").await;
            }
        })
        .await
        .expect_err("the same page four times, whatever the trace id");
    assert_eq!(error.kind(), LoopKind::Repeat);
    assert_eq!(DB.calls("fetch_page:https://example.org"), 1);
}

mod detection_off {
    use super::*;

    pub(super) static DB: LazyLock<Backend> = LazyLock::new(Backend::default);

    #[agent_invalidator(resource = "detection_off_counter")]
    pub(super) async fn bump(id: u64) -> Result<(), String> {
        DB.call(format!("bump:{id}"));
        Ok(())
    }
}

#[tokio::test]
async fn with_loop_detection_off_nothing_is_flagged() {
    use detection_off::*;

    let session = AgentCacheSession::builder()
        .loop_detection(false)
        .max_tool_repeats(1)
        .max_execution_depth(1)
        .build();
    session
        .run(async {
            for _ in 0..100 {
                bump(1).await.unwrap();
            }
        })
        .await
        .expect("detection is off");
    assert_eq!(DB.calls("bump:1"), 100);
    assert_eq!(session.metrics().loop_detections, 0);
}

mod fresh_detector {
    use super::*;

    #[agent_cache(resource = "fresh_detector_doc")]
    pub(super) async fn get_doc(id: u64) -> u64 {
        id
    }
}

#[tokio::test]
async fn each_run_of_a_session_starts_a_fresh_detector() {
    use fresh_detector::*;

    let session = AgentCacheSession::builder()
        .max_tool_repeats(3)
        .max_execution_depth(3)
        .build();
    for run in 0..3 {
        session
            .run(async {
                for _ in 0..3 {
                    get_doc(1).await;
                }
            })
            .await
            .unwrap_or_else(|error| panic!("run {run}: {error}"));
    }
    assert_eq!(session.metrics().loop_detections, 0);
    assert_eq!(session.metrics().tool_calls, 9);
}

// ---------------------------------------------------------------------------------------------
// Legitimate agent work that must not be flagged
// ---------------------------------------------------------------------------------------------

mod many_items {
    use super::*;

    pub(super) static DB: LazyLock<Backend> = LazyLock::new(Backend::default);

    #[agent_cache(resource = "many_items_product")]
    pub(super) async fn get_product(id: u64) -> u64 {
        DB.call("get_product");
        id
    }
}

#[tokio::test]
async fn reading_many_different_items_is_not_a_loop() {
    use many_items::*;

    // Up to the default depth, with default limits...
    let session = AgentCacheSession::builder().on_loop(OnLoop::Raise).build();
    session
        .run(async {
            for id in 0..50 {
                assert_eq!(get_product(id).await, id);
            }
        })
        .await
        .expect("50 different reads with the default limits");
    assert_eq!(session.metrics().loop_detections, 0);

    // ...and a catalogue crawl of 1,000 items with the depth raised.
    let session = AgentCacheSession::builder()
        .max_execution_depth(10_000)
        .on_loop(OnLoop::Raise)
        .build();
    session
        .run(async {
            for id in 1_000..2_000 {
                assert_eq!(get_product(id).await, id);
            }
        })
        .await
        .expect("1,000 different reads");
    assert_eq!(session.metrics().loop_detections, 0);
    assert_eq!(DB.calls("get_product"), 1_050);
}

mod read_modify_read {
    use super::*;

    #[agent_cache(resource = "rmr_cart:{user_id}")]
    pub(super) async fn get_cart(user_id: &str) -> usize {
        user_id.len()
    }

    #[agent_invalidator(resource = "rmr_cart:{user_id}")]
    pub(super) async fn add_to_cart(user_id: &str, product_id: &str) -> Result<(), String> {
        let _ = (user_id, product_id);
        Ok(())
    }
}

#[tokio::test]
async fn read_modify_read_with_different_arguments_is_not_a_loop() {
    use read_modify_read::*;

    let session = AgentCacheSession::builder().on_loop(OnLoop::Raise).build();
    session
        .run(async {
            for user in ["u1", "u2"] {
                get_cart(user).await;
                for product in ["laptop", "mouse", "dock", "cable"] {
                    add_to_cart(user, product).await.unwrap();
                    get_cart(user).await;
                }
            }
        })
        .await
        .expect("reading the cart after each different change is legitimate");
    let m = session.metrics();
    assert_eq!(m.loop_detections, 0);
    assert_eq!(m.tool_calls, 18);
}

mod paging {
    use super::*;

    #[agent_cache(resource = "paging_orders")]
    pub(super) async fn list_orders(customer: &str, page: u32, per_page: u32) -> Vec<u32> {
        let _ = customer;
        (page * per_page..(page + 1) * per_page).collect()
    }
}

#[tokio::test]
async fn paging_through_results_is_not_a_loop() {
    use paging::*;

    let session = AgentCacheSession::builder().on_loop(OnLoop::Raise).build();
    let all = session
        .run(async {
            let mut all = Vec::new();
            for page in 0..45 {
                all.extend(list_orders("c-1", page, 20).await);
            }
            all
        })
        .await
        .expect("45 pages");
    assert_eq!(all.len(), 900);
    assert_eq!(session.metrics().loop_detections, 0);
}

mod polling {
    use super::*;

    #[agent_cache(resource = "polling_job")]
    pub(super) async fn job_status(job_id: &str, since: u64) -> String {
        format!("{job_id}: running at {since}")
    }

    #[agent_invalidator(resource = "polling_log")]
    pub(super) async fn log_progress(job_id: &str, at: u64) -> Result<(), String> {
        let _ = (job_id, at);
        Ok(())
    }
}

#[tokio::test]
async fn polling_with_changing_arguments_is_not_a_loop() {
    use polling::*;

    let session = AgentCacheSession::builder().on_loop(OnLoop::Raise).build();
    session
        .run(async {
            // Poll and log alternately: the same two tools, but never the same calls.
            for since in 0..24 {
                job_status("job-9", since * 1_000).await;
                log_progress("job-9", since * 1_000).await.unwrap();
            }
        })
        .await
        .expect("polling with a moving cursor");
    assert_eq!(session.metrics().loop_detections, 0);
}

mod amounts {
    use super::*;

    pub(super) static DB: LazyLock<Backend> = LazyLock::new(Backend::default);

    #[agent_invalidator(resource = "amounts_payment")]
    pub(super) async fn charge(order_id: &str, amount: f64) -> Result<(), String> {
        DB.call(format!("charge:{order_id}"));
        let _ = amount;
        Ok(())
    }
}

#[tokio::test]
async fn invalidator_calls_with_different_float_amounts_are_different_calls() {
    use amounts::*;

    let session = AgentCacheSession::builder()
        .max_tool_repeats(1)
        .on_loop(OnLoop::Raise)
        .build();
    session
        .run(async {
            for cents in 1..=20 {
                charge("ORD-1", f64::from(cents) / 100.0).await.unwrap();
            }
        })
        .await
        .expect("each amount is a different call");
    assert_eq!(DB.calls("charge:ORD-1"), 20);
    assert_eq!(session.metrics().loop_detections, 0);
}

mod two_agents {
    use super::*;

    #[agent_cache(resource = "two_agents_doc", scope = "session")]
    pub(super) async fn get_doc(id: u64) -> u64 {
        id
    }
}

#[tokio::test]
async fn the_same_calls_in_different_sessions_do_not_add_up() {
    use two_agents::*;

    let sessions: Vec<_> = (0..5)
        .map(|_| AgentCacheSession::builder().max_tool_repeats(3).build())
        .collect();
    let runs = sessions.iter().map(|session| {
        session.run(async {
            for _ in 0..3 {
                get_doc(1).await;
                tokio::task::yield_now().await;
            }
        })
    });
    for outcome in futures_util::future::join_all(runs).await {
        outcome.expect("3 calls per session, each within its own limit");
    }
    for session in &sessions {
        assert_eq!(session.metrics().loop_detections, 0);
    }
}
