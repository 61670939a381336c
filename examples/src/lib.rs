//! Runnable examples of the workspace (`examples/examples/`), the agent scenarios they share,
//! the live [`dashboard`] and the [`mcp`] server.
#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]

pub mod dashboard;
pub mod mcp;
pub mod scenarios;

use scenarios::{Marker, Report};

/// Prints a scenario's narrative: each call with what the cache or the loop detector did,
/// the outcome and the session's metrics.
pub fn print_report(report: &Report) {
    println!("== {} ==", report.title);
    for (n, step) in report.steps.iter().enumerate() {
        let marker = match step.marker {
            Marker::Hit => "HIT         ",
            Marker::Miss => "MISS        ",
            Marker::Invalidation => "INVALIDATION",
            Marker::LoopDetected => "LOOP HALTED ",
            Marker::LoopWarned => "LOOP WARNED ",
            Marker::Error => "ERROR       ",
        };
        println!(
            "  {:>2}. [{marker}] {} -> {}",
            n + 1,
            step.call,
            step.detail
        );
    }
    match &report.outcome {
        Ok(summary) => println!("  outcome: {summary}"),
        Err(error) => println!("  outcome: halted: {error}"),
    }
    let m = &report.metrics;
    println!(
        "  session metrics: hits={} misses={} invalidations={} loop_detections={} hit_rate={:.2}; backend calls: {}",
        m.hits, m.misses, m.invalidations, m.loop_detections, m.hit_rate, report.backend_calls
    );
}
