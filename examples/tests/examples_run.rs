//! Every example runs to completion as its own process (`cargo run -p examples --example X`,
//! as a user would run it) and prints the events it is about.

use std::path::Path;
use std::process::Command;

/// Runs an example and returns what it printed; fails with its output if it fails.
fn run_example(name: &str) -> String {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let output = Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--package", "examples", "--example", name])
        .current_dir(workspace)
        .output()
        .unwrap_or_else(|error| panic!("cannot run cargo: {error}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "example {name} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[track_caller]
fn assert_prints(name: &str, output: &str, lines: &[&str]) {
    for line in lines {
        assert!(
            output.contains(line),
            "example {name} should print {line:?}; it printed:\n{output}"
        );
    }
}

#[test]
fn the_tour_shows_every_guarantee_and_the_agent_layer() {
    let output = run_example("tour");
    assert_prints(
        "tour",
        &output,
        &[
            "== 1. Thundering herd: 100 concurrent misses on one key ==",
            "database queries: 1\n",
            "a later call is a hit: \"user-1\"; database queries: 0",
            "100 callers got 100 errors from 1 database query; cached: false",
            "a get after invalidate returned: \"user-2 (fresh)\"",
            "and the cache holds: Some(\"user-2 (fresh)\")",
            "after its 100 ms TTL: None",
            "50 users loaded with 1 database query",
            "loaded 8, skipped [100] (already cached), failed [(105, \"row locked\")]",
            "100 concurrent product_page(\"SKU-1\") calls -> \"<h1>SKU-1</h1>\", body ran 1 time",
            "body runs: 3 (errors are not cached)",
            "== 8. The agent layer: the five scenarios of the seed README ==",
            "Cycle detected: check_stock -> update_stock",
            "Retry storm detected: charge_payment",
            "agent_cache::metrics() over every session",
        ],
    );
}

#[test]
fn the_ecommerce_scenario_refetches_the_cart_after_each_mutation() {
    let output = run_example("scenario_ecommerce");
    assert_prints(
        "scenario_ecommerce",
        &output,
        &[
            "== E-commerce shopping agent ==",
            "3. [HIT         ] get_cart(",
            "4. [INVALIDATION] add_to_cart(",
            "5. [MISS        ] get_cart(",
            "outcome: checked out 1 item(s), total $999.00",
            "hits=1 misses=3 invalidations=2 loop_detections=0",
        ],
    );
}

#[test]
fn the_support_scenario_keeps_sessions_apart() {
    let output = run_example("scenario_support");
    assert_prints(
        "scenario_support",
        &output,
        &[
            "2. [HIT         ] [A] get_ticket(",
            "3. [INVALIDATION] [A] update_ticket(",
            "5. [MISS        ] [B] get_ticket(",
            "agent B fetched fresh",
        ],
    );
}

#[test]
fn the_research_scenario_stops_a_search_loop() {
    let output = run_example("scenario_research");
    assert_prints(
        "scenario_research",
        &output,
        &[
            "3. [HIT         ] search_web(",
            "5. [LOOP HALTED ] search_web(",
            "halted: Repeated call detected: search_web called 4 times with the same arguments (max_tool_repeats = 3)",
            "loop_detections=1",
        ],
    );
}

#[test]
fn the_inventory_scenario_stops_an_oscillation() {
    let output = run_example("scenario_inventory");
    assert_prints(
        "scenario_inventory",
        &output,
        &[
            "2. [INVALIDATION] update_stock(",
            "4. [LOOP HALTED ] update_stock(",
            "halted: Cycle detected: check_stock -> update_stock",
            "loop_detections=1",
        ],
    );
}

#[test]
fn the_payment_scenario_stops_a_retry_storm() {
    let output = run_example("scenario_payment");
    assert_prints(
        "scenario_payment",
        &output,
        &[
            "3. [ERROR       ] charge_payment(",
            "4. [LOOP HALTED ] charge_payment(",
            "halted: Retry storm detected: charge_payment failed 3 times in a row",
            "backend calls: 3",
        ],
    );
}

#[test]
fn warm_restart_serves_the_second_process_from_the_first_ones_snapshot() {
    let output = run_example("warm_restart");
    assert_prints(
        "warm_restart",
        &output,
        &[
            "a cold start ==\nserved 100 users with 100 database queries",
            "snapshot: 100 users, 4 sessions",
            "restarted from the snapshot ==\nrestored 100 users (0 expired)",
            "restored 3 sessions (the brief one expired meanwhile)",
            "restored 3 sessions (the brief one expired meanwhile)\nserved 100 users with 0 database queries",
        ],
    );
}
