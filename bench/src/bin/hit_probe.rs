//! Instruction counts of one hit, for `valgrind --tool=callgrind` (deterministic, so not moved
//! by the machine's load, unlike the runner's timings).
//!
//! ```sh
//! cargo build --release -p bench --bin hit_probe
//! for calls in 100000 200000; do
//!   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/hit_probe session $calls 2>&1 | grep Collected
//! done
//! ```
//!
//! The difference of the two counts divided by 100,000 is the instructions of one hit. The
//! reads are `ttl` (`#[async_ttl]`), `outside` (`#[agent_cache]` outside any session),
//! `no-detection` (in a session with loop detection off) and `session` (loop detection on,
//! limits that never trip), each over 1,000 warm keys in turn.

use std::hint::black_box;

use agent_cache::{AgentCacheSession, OnLoop, agent_cache};
use bench::poll_once;
use cache_core::async_ttl;

const KEYS: u64 = 1_000;

#[async_ttl(time_to_live = 3600, maxsize = 20_000)]
async fn ttl_read(id: u64) -> u64 {
    id
}

#[agent_cache(resource = "catalog", ttl = 3600, maxsize = 20_000)]
async fn agent_read(id: u64) -> u64 {
    id
}

fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: hit_probe ttl|outside|no-detection|session CALLS";
    let read = args.next().expect(usage);
    let calls: u64 = args.next().and_then(|n| n.parse().ok()).expect(usage);
    for key in 0..KEYS {
        poll_once(ttl_read(key));
        poll_once(agent_read(key));
    }
    let agent_calls = || async move {
        for call in 0..calls {
            black_box(agent_read(black_box(call % KEYS)).await);
        }
    };
    let session = |detection| {
        AgentCacheSession::builder()
            .loop_detection(detection)
            .max_tool_repeats(u32::MAX)
            .max_execution_depth(u64::MAX)
            .on_loop(OnLoop::Warn)
            .build()
    };
    match read.as_str() {
        "ttl" => poll_once(async {
            for call in 0..calls {
                black_box(ttl_read(black_box(call % KEYS)).await);
            }
        }),
        "outside" => poll_once(agent_calls()),
        "no-detection" => poll_once(session(false).run(agent_calls())).expect("no loop"),
        "session" => poll_once(session(true).run(agent_calls())).expect("no loop"),
        _ => panic!("{usage}"),
    }
}
