//! `bench_table`: every workload of the benchmark suite against its peers in one run, printed
//! as one markdown table, followed by the targets of issues 5, 4 and 14 checked against it.
//!
//! ```text
//! cargo run --release -p bench                            # the full run
//! cargo run --release -p bench -- --quick                 # a smoke run
//! cargo run --release -p bench -- --only fleet            # one section: hit, expiry,
//!                                                         # refresh, loads, agent, memory,
//!                                                         # zipf, weight, scrape, fleet,
//!                                                         # shared or python
//! cargo run --release -p bench -- --python-json FILE
//! ```
//!
//! The Python column comes from `bench/python/run.sh`, which the runner calls itself (it needs
//! `python3` and PyPI); `--python-json FILE` reads a file that script wrote instead, and
//! `--no-python` leaves the column out (as `--no-fleet` the fleet rows, which need
//! `redis-server`). Progress goes to stderr, the table to stdout.

mod agent;
mod expiry;
mod fleet;
mod hit;
mod loads;
mod memory;
mod peers;
mod python;
mod refresh;
mod report;
mod scrape;
mod shared;
mod weight;
mod zipf;

use std::path::PathBuf;

use report::{Table, Target};

#[global_allocator]
static ALLOCATOR: bench::alloc::Counting = bench::alloc::Counting;

/// How much work each workload does.
pub struct Settings {
    /// Timed rounds of each hit workload (the median is reported).
    rounds: usize,
    /// Calls per round of a hit workload, per thread.
    ops: usize,
    /// Fresh processes the agent layer's hit rows are measured in (the median is reported).
    processes: usize,
    /// Timed misses per peer.
    misses: usize,
    /// Herds, storms (twice as many) and batches per peer.
    crowds: usize,
    /// Entries of the memory workload.
    entries: u64,
    /// Requests of the Zipf trace.
    trace: usize,
    /// Entries of the expiry workload.
    expiries: usize,
}

const FULL: Settings = Settings {
    rounds: 7,
    ops: 2_000_000,
    processes: 5,
    misses: 300_000,
    crowds: 10,
    entries: 1_000_000,
    trace: 2_000_000,
    expiries: 200,
};

const QUICK: Settings = Settings {
    rounds: 3,
    ops: 200_000,
    processes: 3,
    misses: 30_000,
    crowds: 3,
    entries: 1_000_000,
    trace: 200_000,
    expiries: 20,
};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, url, n] = args.as_slice()
        && flag == "--fleet-peer"
    {
        fleet::peer(url, n.parse().expect("a number of keys"));
        return;
    }
    if let [flag, rounds, ops] = args.as_slice()
        && flag == "--agent-hit-process"
    {
        agent::hit_rows(
            rounds.parse().expect("a number of rounds"),
            ops.parse().expect("a number of calls"),
        );
        return;
    }
    if let [flag, url, mode] = args.as_slice()
        && flag == "--shared-herd-peer"
    {
        shared::herd_peer(url, mode);
        return;
    }
    let settings = if args.iter().any(|a| a == "--quick") {
        &QUICK
    } else {
        &FULL
    };
    let python_json = args
        .iter()
        .position(|a| a == "--python-json")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from);
    let mut table = Table::default();
    // `--only SECTION` runs one section (for working on it; the published table is one full
    // run). `--no-fleet` and `--no-python` leave a section out.
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1));
    let wanted = |section: &str| {
        only.is_none_or(|only| only == section) && !args.contains(&format!("--no-{section}"))
    };
    type Section = (&'static str, &'static str, fn(&Settings, &mut Table));
    let sections: [Section; 11] = [
        ("hit", "hit path", hit::run),
        ("expiry", "expiry", expiry::run),
        ("refresh", "refresh-ahead", refresh::run),
        ("loads", "loads", loads::run),
        ("agent", "agent layer", agent::run),
        ("memory", "memory", memory::run),
        ("zipf", "hit ratio", zipf::run),
        ("weight", "weighted bound", weight::run),
        ("scrape", "metrics scrape", scrape::run),
        ("fleet", "fleet (redis-server)", fleet::run),
        ("shared", "fleet shared tier (redis-server)", shared::run),
    ];
    for (section, title, run) in sections {
        if wanted(section) {
            eprintln!("{title}");
            run(settings, &mut table);
        }
    }
    if wanted("python") {
        eprintln!("python");
        python::run(python_json, &mut table);
    }

    println!(
        "`nproc` (`std::thread::available_parallelism`): {}\n",
        nproc()
    );
    println!("{}", table.markdown());
    println!("{}", report::targets_markdown(&targets(&table)));
}

/// The CPUs this process may run on: the thread rows go up to it.
pub fn nproc() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// The targets of issues 5, 4 (the agent layer) and 14 (hits at scale), computed from this
/// run's table.
fn targets(table: &Table) -> Vec<Target> {
    let ratio = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a / b);
    let lru = table.get(hit::SINGLE, hit::LRU);
    let mut targets = Vec::new();

    let vs_cached = ratio(lru, table.get(hit::SINGLE, hit::CACHED_FN));
    targets.push(Target {
        name: "`#[async_lru]` hit (default engine) / `#[cached]` hit <= 1.0",
        figure: vs_cached.map(|r| format!("{r:.2}")),
        holds: vs_cached.map(|r| r <= 1.0),
    });
    let vs_python = ratio(table.get(hit::SINGLE, python::PY_LRU), lru);
    targets.push(Target {
        name: "Python `@AsyncLRU` hit / `#[async_lru]` hit >= 100",
        figure: vs_python.map(|r| format!("{r:.0}")),
        holds: vs_python.map(|r| r >= 100.0),
    });
    let vs_quick = ratio(
        table.get(hit::SINGLE, hit::OURS_GET),
        table.get(hit::SINGLE, hit::QUICK_CACHE),
    );
    targets.push(Target {
        name: "`AsyncCache::get` hit / raw quick_cache `get` <= 3",
        figure: vs_quick.map(|r| format!("{r:.2}")),
        holds: vs_quick.map(|r| r <= 3.0),
    });
    let ttl_vs_lru = ratio(
        table.get(agent::HIT, agent::HIT_TTL),
        table.get(agent::HIT, agent::HIT_LRU),
    );
    targets.push(Target {
        name: "`#[async_ttl]` hit / `#[async_lru]` hit <= 1.3",
        figure: ttl_vs_lru.map(|r| format!("{r:.2}")),
        holds: ttl_vs_lru.map(|r| r <= 1.3),
    });
    let two = hit::threads_workload(2);
    let two_threads = ratio(
        table.get(&two, hit::OURS_GET),
        table.get(&two, hit::QUICK_CACHE),
    );
    targets.push(Target {
        name: "two threads on one bounded cache: `AsyncCache::get` / raw quick_cache (M hits/s) >= 0.8",
        figure: two_threads.map(|r| format!("{r:.2}")),
        holds: two_threads.map(|r| r >= 0.8),
    });
    let refreshed = table.get(refresh::READ, refresh::WITH);
    targets.push(Target {
        name: "refresh-ahead, steady reads across expiries with a 50 ms loader: p99 read stays a hit (< 1 ms)",
        figure: refreshed.map(|p99| format!("{p99:.0} µs")),
        holds: refreshed.map(|p99| p99 < 1_000.0),
    });
    let late = table.get(expiry::LATE, expiry::OURS);
    targets.push(Target {
        name: "entries with a TTL served at most one tick (1 ms) + 1 ms past their expiry (99th percentile), never before",
        figure: late.map(|l| format!("{l:.0} µs")),
        holds: late.map(|l| l <= 2_000.0),
    });
    let herd = ratio(
        table.get(loads::HERD, loads::HERD_OURS),
        table.get(loads::HERD, &format!("{}.get", python::PY_CACHE)),
    );
    targets.push(Target {
        name: "herd of 10,000 (spawned tasks): overhead / Python's overhead <= 0.1",
        figure: herd.map(|r| format!("{r:.4}")),
        holds: herd.map(|r| r <= 0.1),
    });
    // Not the target's row: Python's herd is 10,000 tasks too (`create_task`). Shown so the
    // cache's own overhead can be read without tokio's cost of spawning 10,000 tasks.
    let joined = ratio(
        table.get(loads::HERD_JOINED, loads::HERD_OURS),
        table.get(loads::HERD, &format!("{}.get", python::PY_CACHE)),
    );
    targets.push(Target {
        name: "(for information) herd of 10,000 joined in one task: overhead / Python's",
        figure: joined.map(|r| format!("{r:.4}")),
        holds: None,
    });
    let ours = table.get(memory::MEMORY, memory::OURS);
    let moka = table.get(memory::MEMORY, memory::MOKA);
    targets.push(Target {
        name: "bytes per entry <= moka's + 32",
        figure: ours
            .zip(moka)
            .map(|(o, m)| format!("{o:.1} B vs {m:.1} + 32 B")),
        holds: ours.zip(moka).map(|(o, m)| o <= m + 32.0),
    });
    for capacity in zipf::CAPACITIES {
        let ours = table.get(zipf::ZIPF, &zipf::ours_name(capacity));
        let moka = table.get(zipf::ZIPF, &zipf::moka_name(capacity));
        targets.push(Target {
            name: match capacity {
                100 => "Zipf hit ratio >= moka's (TinyLFU) - 1 pp, capacity 100",
                1_000 => "Zipf hit ratio >= moka's (TinyLFU) - 1 pp, capacity 1,000",
                _ => "Zipf hit ratio >= moka's (TinyLFU) - 1 pp, capacity 10,000",
            },
            figure: ours.zip(moka).map(|(o, m)| format!("{o:.2}% vs {m:.2}%")),
            holds: ours.zip(moka).map(|(o, m)| o >= m - 1.0),
        });
    }
    let agent_hit = ratio(
        table.get(agent::HIT, agent::HIT_AGENT_SESSION),
        table.get(agent::HIT, agent::HIT_TTL),
    );
    targets.push(Target {
        name: "`#[agent_cache]` hit in a session, loop detection on / `#[async_ttl]` hit <= 1.5",
        figure: agent_hit.map(|r| format!("{r:.2}")),
        holds: agent_hit.map(|r| r <= 1.5),
    });
    let invalidate = table.get(agent::INVALIDATE, agent::INVALIDATE_TAGGED);
    let nothing = table.get(agent::INVALIDATE, agent::INVALIDATE_NOTHING);
    targets.push(Target {
        name: "invalidating a resource tagging 1,000,000 entries < 10 µs",
        figure: invalidate
            .zip(nothing)
            .map(|(i, n)| format!("{i:.2} µs (tagging nothing: {n:.2} µs)")),
        holds: invalidate.map(|i| i < 10.0),
    });
    let short = table.get(agent::RECORD, agent::RECORD_10K);
    let long = table.get(agent::RECORD, agent::RECORD_1M);
    targets.push(Target {
        name: "LoopDetector::record constant: after 1,000,000 calls / after 10,000 <= 1.25",
        figure: long
            .zip(short)
            .map(|(l, s)| format!("{:.2} ({l:.1} ns vs {s:.1} ns)", l / s)),
        holds: long.zip(short).map(|(l, s)| l / s <= 1.25),
    });
    // Bounded: no growth over the last 900,000 calls (the detector's map settles at its size
    // for 4,096 remembered calls within the first 100,000).
    let heap_short = table.get(agent::HEAP, agent::HEAP_100K);
    let heap_long = table.get(agent::HEAP, agent::HEAP_1M);
    targets.push(Target {
        name: "LoopDetector heap bounded: after 1,000,000 calls <= after 100,000",
        figure: heap_long
            .zip(heap_short)
            .map(|(l, s)| format!("{l:.0} B vs {s:.0} B")),
        holds: heap_long.zip(heap_short).map(|(l, s)| l <= s),
    });
    let fleet_hit = ratio(
        table.get(fleet::HIT, fleet::HIT_FLEET),
        table.get(fleet::HIT, fleet::HIT_LOCAL),
    );
    targets.push(Target {
        name: "fleet cache L1 hit / the same cache without a fleet <= 1.05",
        figure: fleet_hit.map(|r| format!("{r:.3}")),
        holds: fleet_hit.map(|r| r <= 1.05),
    });
    let p99 = table.get(fleet::PROPAGATION, fleet::P99);
    targets.push(Target {
        name: "fleet propagation p99 (A invalidates until B stops serving) < 2 ms",
        figure: p99.map(|p| format!("{p:.0} µs")),
        holds: p99.map(|p| p < 2_000.0),
    });
    let l2 = ratio(
        table.get(shared::L2_HIT, shared::L2_OURS),
        table.get(shared::L2_HIT, shared::L2_RAW),
    );
    targets.push(Target {
        name: "fleet L2 hit (local miss, Redis hit) / raw redis-rs GET of the same bytes <= 1.2",
        figure: l2.map(|r| format!("{r:.2}")),
        holds: l2.map(|r| r <= 1.2),
    });
    let herd = table.get(shared::HERD, shared::HERD_OURS);
    targets.push(Target {
        name: "fleet herd, 4 processes x 2,500 callers: one load",
        figure: herd.map(|loads| {
            format!(
                "{loads:.0} (cached's AsyncRedisCache: {:.0})",
                table
                    .get(shared::HERD, shared::HERD_CACHED)
                    .unwrap_or(f64::NAN)
            )
        }),
        holds: herd.map(|loads| loads == 1.0),
    });
    targets
}
