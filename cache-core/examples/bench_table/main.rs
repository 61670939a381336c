//! `bench_table`: every workload of the benchmark suite against its peers in one run, printed
//! as one markdown table, followed by the targets of issue 5 checked against it.
//!
//! ```text
//! cargo run --release -p cache-core --example bench_table                # the full run
//! cargo run --release -p cache-core --example bench_table -- --quick     # a smoke run
//! cargo run --release -p cache-core --example bench_table -- --python-json FILE
//! ```
//!
//! The Python column comes from `bench/python/run.sh`, which the runner calls itself (it needs
//! `python3` and PyPI); `--python-json FILE` reads a file that script wrote instead, and
//! `--no-python` leaves the column out. Progress goes to stderr, the table to stdout.
//!
//! Rows pending agent-cache (TODO, issue 5): an `#[agent_cache]` hit inside a session, and
//! invalidating a resource that tags 1,000,000 entries.

mod alloc;
mod hit;
mod loads;
mod memory;
mod peers;
mod python;
mod report;
mod zipf;

use std::path::PathBuf;

use report::{Table, Target};

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

/// How much work each workload does.
pub struct Settings {
    /// Timed rounds of each hit workload (the median is reported).
    rounds: usize,
    /// Calls per round of a hit workload, per thread.
    ops: usize,
    /// Timed misses per peer.
    misses: usize,
    /// Herds, storms (twice as many) and batches per peer.
    crowds: usize,
    /// Entries of the memory workload.
    entries: u64,
    /// Requests of the Zipf trace.
    trace: usize,
}

const FULL: Settings = Settings {
    rounds: 7,
    ops: 2_000_000,
    misses: 300_000,
    crowds: 10,
    entries: 1_000_000,
    trace: 2_000_000,
};

const QUICK: Settings = Settings {
    rounds: 3,
    ops: 200_000,
    misses: 30_000,
    crowds: 3,
    entries: 1_000_000,
    trace: 200_000,
};

pub const PENDING_AGENT: &str = "pending agent-cache";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
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

    eprintln!("hit path");
    hit::run(settings, &mut table);
    eprintln!("loads");
    loads::run(settings, &mut table);
    // TODO(issue 5, pending agent-cache): time an `#[agent_cache]` hit inside a session, and
    // invalidating a resource that tags 1,000,000 entries, against `#[async_lru]`.
    table.push_noted(
        "#[agent_cache] hit inside a session (ns per hit)",
        PENDING_AGENT,
        None,
        "ns",
        "TODO: agent-cache is being built",
    );
    table.push_noted(
        "invalidate a resource tagging 1,000,000 entries (ms)",
        PENDING_AGENT,
        None,
        "ms",
        "TODO: agent-cache is being built",
    );
    eprintln!("memory");
    memory::run(settings, &mut table);
    eprintln!("hit ratio");
    zipf::run(settings, &mut table);
    if !args.iter().any(|a| a == "--no-python") {
        eprintln!("python");
        python::run(python_json, &mut table);
    }

    println!("{}", table.markdown());
    println!("{}", report::targets_markdown(&targets(&table)));
}

/// The targets of issue 5, computed from this run's table.
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
    let herd = ratio(
        table.get(loads::HERD, loads::HERD_OURS),
        table.get(loads::HERD, &format!("{}.get", python::PY_CACHE)),
    );
    targets.push(Target {
        name: "herd of 10,000: overhead / Python's overhead <= 0.1",
        figure: herd.map(|r| format!("{r:.4}")),
        holds: herd.map(|r| r <= 0.1),
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
    targets.push(Target {
        name: "`#[agent_cache]` hit, resource invalidation of 1,000,000 entries",
        figure: Some(PENDING_AGENT.to_string()),
        holds: None,
    });
    targets
}
