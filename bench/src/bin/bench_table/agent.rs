//! The agent layer: an `#[agent_cache]` hit inside a session with loop detection on, against
//! `#[async_ttl]` and `#[async_lru]` hits; invalidating a resource that tags 1,000,000 entries,
//! against one that tags nothing; `LoopDetector::record` after 10,000 and after 1,000,000
//! calls, and the detector's heap.

use std::future::Future;
use std::hint::black_box;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use agent_cache::{
    AgentCacheSession, LoopDetector, LoopLimits, OnLoop, agent_cache, agent_invalidator, signature,
};
use cache_core::{async_lru, async_ttl};

use crate::Settings;
use crate::peers::{CpuTimer, key_sets, median, poll_once};
use crate::report::Table;
use bench::alloc::live_bytes;

pub const HIT: &str = "agent layer: hit, 1 thread, one future awaiting every call (ns per hit)";
pub const INVALIDATE: &str = "agent layer: one #[agent_invalidator] call (µs)";
pub const RECORD: &str = "agent layer: LoopDetector::record, distinct calls (ns per call)";
pub const HEAP: &str = "agent layer: LoopDetector heap, distinct calls (bytes)";

pub const HIT_TTL: &str = "#[async_ttl] (ttl 3600 s) [quick_cache, default]";
pub const HIT_LRU: &str = "#[async_lru] [quick_cache, default]";
pub const HIT_AGENT_SESSION: &str =
    "#[agent_cache] (ttl 3600 s) in a session, loop detection on (OnLoop::Warn)";
pub const HIT_AGENT_NO_DETECTION: &str =
    "#[agent_cache] (ttl 3600 s) in a session, loop detection off";
pub const HIT_AGENT_OUTSIDE: &str = "#[agent_cache] (ttl 3600 s) outside any session";
pub const INVALIDATE_TAGGED: &str = "resource tagging 1,000,000 cached entries";
pub const INVALIDATE_NOTHING: &str = "resource tagging nothing";
pub const RECORD_10K: &str = "after 10,000 calls";
pub const RECORD_1M: &str = "after 1,000,000 calls";
pub const HEAP_10K: &str = "after 10,000 calls";
pub const HEAP_100K: &str = "after 100,000 calls";
pub const HEAP_1M: &str = "after 1,000,000 calls";

/// Entries tagged with the invalidated resource.
const TAGGED: u64 = 1_000_000;
/// Calls timed per sample of `LoopDetector::record`.
const RECORDED: usize = 10_000;

/// Times each body ran, by function: a timed call that ran its body was not a hit.
static BODIES: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
const TTL: usize = 0;
const LRU: usize = 1;
const AGENT: usize = 2;
const INVENTORY: usize = 3;

fn bodies(function: usize) -> u64 {
    BODIES[function].load(Ordering::Relaxed)
}

fn ran(function: usize) {
    BODIES[function].fetch_add(1, Ordering::Relaxed);
}

// The same `async fn(u64) -> u64` caching the identity, through each attribute.

#[async_ttl(time_to_live = 3600, maxsize = 20_000)]
async fn ttl_read(id: u64) -> u64 {
    ran(TTL);
    id
}

#[async_lru(maxsize = 20_000)]
async fn lru_read(id: u64) -> u64 {
    ran(LRU);
    id
}

#[agent_cache(resource = "catalog", ttl = 3600, maxsize = 20_000)]
async fn agent_read(id: u64) -> u64 {
    ran(AGENT);
    id
}

// Session scope, so each sample's 1,000,000 entries are dropped when its run ends and the
// next sample fills a fresh cache; the global invalidator below reaches them.
#[agent_cache(resource = "inventory", scope = "session", maxsize = 1_000_000)]
async fn inventory(id: u64) -> u64 {
    ran(INVENTORY);
    id
}

#[agent_invalidator(resource = "inventory")]
async fn restock() {}

#[agent_invalidator(resource = "nothing-cached")]
async fn touch_nothing() {}

pub fn run(settings: &Settings, table: &mut Table) {
    hits(settings, table);
    invalidation(settings, table);
    loop_detector(settings, table);
}

/// A session that detects loops on every call but never stops this benchmark: hits of the
/// same 10,000 keys, round after round, are repeats by design.
fn bench_session() -> AgentCacheSession {
    AgentCacheSession::builder()
        .session_id("bench_table")
        .loop_detection(true)
        .max_tool_repeats(u32::MAX)
        .max_execution_depth(u64::MAX)
        .on_loop(OnLoop::Warn)
        .build()
}

/// Nanoseconds per call of one future that awaits `ops` calls, polled once with a no-op
/// waker: every call is a hit, so it completes on that poll without an executor.
fn time_hits<F: Future>(ops: usize, future: F) -> f64 {
    let timer = CpuTimer::start();
    poll_once(future);
    timer.elapsed().as_nanos() as f64 / ops as f64
}

/// The hit rows, each measured in `settings.processes` fresh runners (`--agent-hit-process`),
/// each with its own heap layout and hash seeds: a row moves by up to a third from one process
/// to the next, so each row is the median over the processes of each one's median round.
fn hits(settings: &Settings, table: &mut Table) {
    let processes = settings.processes;
    let runs: Vec<[f64; 5]> = (0..processes).map(|_| hit_process(settings)).collect();
    let row = |i: usize| median(runs.iter().map(|run| run[i]).collect());
    let [ttl, lru, agent, no_detection, outside] = [0, 1, 2, 3, 4].map(row);
    table.push(HIT, HIT_TTL, ttl, "ns");
    table.push(HIT, HIT_LRU, lru, "ns");
    // The ratio of the medians, and the range of each process's own ratio.
    let vs_ttl = |i: usize, ns: f64| {
        let ratios = runs.iter().map(|run| run[i] / run[0]);
        let (low, high) = ratios.fold((f64::INFINITY, 0.0_f64), |(low, high), r| {
            (low.min(r), high.max(r))
        });
        format!(
            "{:.2}x #[async_ttl] (one process: {low:.2}x to {high:.2}x)",
            ns / ttl
        )
    };
    let timed = settings.rounds * settings.ops;
    table.push_noted(
        HIT,
        HIT_AGENT_SESSION,
        Some(agent),
        "ns",
        format!(
            "{}; {timed} calls recorded in each of {processes} processes, 0 loops",
            vs_ttl(2, agent)
        ),
    );
    table.push_noted(
        HIT,
        HIT_AGENT_NO_DETECTION,
        Some(no_detection),
        "ns",
        vs_ttl(3, no_detection),
    );
    table.push_noted(
        HIT,
        HIT_AGENT_OUTSIDE,
        Some(outside),
        "ns",
        vs_ttl(4, outside),
    );
}

/// The five hit rows, measured in a fresh runner process ([`hit_rows`]).
fn hit_process(settings: &Settings) -> [f64; 5] {
    let output = Command::new(std::env::current_exe().expect("the runner's path"))
        .args([
            "--agent-hit-process",
            &settings.rounds.to_string(),
            &settings.ops.to_string(),
        ])
        .stderr(Stdio::inherit())
        .output()
        .expect("the runner starts again");
    assert!(output.status.success(), "the hit process failed");
    let text = String::from_utf8(output.stdout).expect("figures");
    let figures: Vec<f64> = text
        .split_whitespace()
        .map(|figure| figure.parse().expect("a figure"))
        .collect();
    figures.try_into().expect("five figures")
}

/// The hit rows of this process: `rounds` rounds of `ops` calls of each peer, the peers taking
/// turns round by round, printed to stdout as five medians (ns per hit) for [`hit_process`].
/// Asserts that every timed call was a hit and that the session recorded each one.
pub fn hit_rows(rounds: usize, ops: usize) {
    let (inserted, lookups) = key_sets();
    let session = bench_session();
    let no_detection = AgentCacheSession::builder()
        .session_id("bench_table, no loop detection")
        .loop_detection(false)
        .build();
    for &key in &inserted {
        poll_once(ttl_read(key));
        poll_once(lru_read(key));
        poll_once(agent_read(key));
    }
    for &key in &lookups {
        assert_eq!(poll_once(ttl_read(key)), key);
        assert_eq!(poll_once(lru_read(key)), key);
        assert_eq!(poll_once(agent_read(key)), key);
    }
    let before = [TTL, LRU, AGENT].map(bodies);
    let calls = || lookups.iter().cycle().take(ops).copied();
    let agent_calls = || async {
        for key in calls() {
            black_box(agent_read(black_box(key)).await);
        }
    };
    let mut samples: [Vec<f64>; 5] = Default::default();
    // The peers take turns, round by round, so a change in the machine's load falls on all.
    for _ in 0..rounds {
        samples[0].push(time_hits(ops, async {
            for key in calls() {
                black_box(ttl_read(black_box(key)).await);
            }
        }));
        samples[1].push(time_hits(ops, async {
            for key in calls() {
                black_box(lru_read(black_box(key)).await);
            }
        }));
        samples[2].push(time_hits(ops, session.run(agent_calls())));
        samples[3].push(time_hits(ops, no_detection.run(agent_calls())));
        samples[4].push(time_hits(ops, agent_calls()));
    }
    assert_eq!(
        before,
        [TTL, LRU, AGENT].map(bodies),
        "a timed call ran its body: not every call was a hit"
    );
    let m = session.metrics();
    let timed = (rounds * ops) as u64;
    assert_eq!(
        (m.hits, m.misses),
        (timed, 0),
        "every call in the session was a hit"
    );
    assert_eq!(m.tool_calls, timed, "loop detection recorded every call");
    assert_eq!(m.loop_detections, 0, "the session never detected a loop");
    let m = no_detection.metrics();
    assert_eq!((m.hits, m.misses, m.loop_detections), (timed, 0, 0));
    let medians = samples.map(median);
    println!("{}", medians.map(|ns| ns.to_string()).join(" "));
}

/// Reads `0..TAGGED` through `inventory`, each a miss that caches an entry tagged `inventory`,
/// and returns the seconds it took. Called inside a session's run.
fn fill() -> f64 {
    let before = bodies(INVENTORY);
    let start = Instant::now();
    for id in 0..TAGGED {
        poll_once(inventory(id));
    }
    let seconds = start.elapsed().as_secs_f64();
    assert_eq!(
        bodies(INVENTORY) - before,
        TAGGED,
        "every read of the fill missed"
    );
    seconds
}

/// Whether a read of `id` through `inventory` is a hit.
fn is_hit(id: u64) -> bool {
    let before = bodies(INVENTORY);
    assert_eq!(poll_once(inventory(id)), id);
    bodies(INVENTORY) == before
}

/// Microseconds one call of `invalidator` takes, timed alone.
fn time_one<F: Future>(invalidator: impl FnOnce() -> F) -> f64 {
    let start = Instant::now();
    poll_once(invalidator());
    start.elapsed().as_secs_f64() * 1e6
}

fn invalidation(settings: &Settings, table: &mut Table) {
    // Loop detection off: the fill is 1,000,000 calls, and the timed calls should cost what
    // an invalidation costs, not a detector's record as well.
    let session = AgentCacheSession::builder()
        .session_id("bench_table invalidation")
        .loop_detection(false)
        .build();
    let (mut tagged, mut nothing, mut fills) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..settings.rounds {
        // Each sample is the first invalidation after 1,000,000 fresh tagged reads, in a run
        // of its own: the entries of the previous sample went with its run.
        let (fill, none, all) = poll_once(session.run(async {
            let fill = fill();
            let probes = [0, 7, TAGGED / 2, TAGGED - 1];
            assert!(probes.iter().all(|&id| is_hit(id)), "the fill is cached");
            // An untimed call first, so neither timed call pays for code and data the fill
            // pushed out of the CPU's caches.
            poll_once(touch_nothing());
            let none = time_one(touch_nothing);
            assert!(
                probes.iter().all(|&id| is_hit(id)),
                "invalidating another resource left the entries alone"
            );
            let all = time_one(restock);
            for id in probes {
                assert!(!is_hit(id), "after the invalidation every entry is stale");
            }
            (fill, none, all)
        }))
        .expect("loop detection is off");
        fills.push(fill);
        nothing.push(none);
        tagged.push(all);
    }
    table.push_noted(
        INVALIDATE,
        INVALIDATE_TAGGED,
        Some(median(tagged)),
        "µs",
        format!(
            "global invalidator, empty mutation (it invalidates before and after it), called \
             right after 1,000,000 session-scoped reads tagged with it ({:.2} s a fill)",
            median(fills)
        ),
    );
    table.push_noted(
        INVALIDATE,
        INVALIDATE_NOTHING,
        Some(median(nothing)),
        "µs",
        "the same call on a resource no entry carries",
    );
}

fn loop_detector(settings: &Settings, table: &mut Table) {
    let mut limits = LoopLimits::default();
    limits.max_tool_repeats = u32::MAX;
    limits.max_execution_depth = u64::MAX;
    let count = TAGGED as usize + RECORDED;
    let signatures: Vec<u64> = (0..count as u64).map(|i| signature("read", &i)).collect();
    let record = |detector: &mut LoopDetector, calls: &[u64]| {
        for &call in calls {
            assert!(detector.record("read", black_box(call)).is_none());
        }
    };
    let timed = |detector: &mut LoopDetector, calls: &[u64]| {
        let timer = CpuTimer::start();
        record(detector, calls);
        timer.elapsed().as_nanos() as f64 / calls.len() as f64
    };
    let (mut short, mut long) = (Vec::new(), Vec::new());
    let mut heap = [0; 4];
    let hundred_k = 100_000;
    for _ in 0..settings.rounds {
        let before = live_bytes();
        let mut detector = LoopDetector::new(limits);
        heap[0] = live_bytes() - before;
        record(&mut detector, &signatures[..RECORDED]);
        heap[1] = live_bytes() - before;
        short.push(timed(&mut detector, &signatures[RECORDED..2 * RECORDED]));
        record(&mut detector, &signatures[2 * RECORDED..hundred_k]);
        heap[2] = live_bytes() - before;
        record(&mut detector, &signatures[hundred_k..TAGGED as usize]);
        heap[3] = live_bytes() - before;
        long.push(timed(&mut detector, &signatures[TAGGED as usize..]));
        assert_eq!(detector.calls(), count as u64);
    }
    let note = format!("{RECORDED} calls timed, each a call not seen before");
    table.push_noted(RECORD, RECORD_10K, Some(median(short)), "ns", note.clone());
    table.push_noted(RECORD, RECORD_1M, Some(median(long)), "ns", note);
    table.push_noted(
        HEAP,
        HEAP_10K,
        Some(heap[1] as f64),
        "B",
        format!("{} B when new", heap[0]),
    );
    table.push(HEAP, HEAP_100K, heap[2] as f64, "B");
    table.push(HEAP, HEAP_1M, heap[3] as f64, "B");
}
