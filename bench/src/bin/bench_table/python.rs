//! The Python original's column: `bench/python/run.sh` runs the same hit, herd, error-storm
//! and batch workloads on async-cache 2.0.3 in a virtualenv and writes them as JSON.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::hit::SINGLE;
use crate::loads::{BATCH, HERD, STORM};
use crate::report::Table;

pub const PY_LRU: &str = "Python async-cache 2.0.3 @AsyncLRU";
pub const PY_CACHE: &str = "Python async-cache 2.0.3 AsyncCache";

/// The workspace root: the parent of this crate, `bench`.
fn workspace() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Runs the script (or reads `json`, when given) and adds its figures to the table.
pub fn run(json: Option<PathBuf>, table: &mut Table) {
    let path = match json {
        Some(path) => path,
        None => {
            let out = workspace().join("target/bench/python.json");
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/run.sh");
            eprintln!(
                "running {} (creates a virtualenv, installs async-cache==2.0.3)",
                script.display()
            );
            // The script prints the file it wrote; that goes with the progress, not the table.
            let status = Command::new("bash")
                .arg(&script)
                .arg(&out)
                .stdout(std::io::stderr())
                .status();
            match status {
                Ok(status) if status.success() => out,
                outcome => {
                    eprintln!(
                        "the Python workloads did not run ({outcome:?}): its rows are left out"
                    );
                    return missing(table);
                }
            }
        }
    };
    let figures: Value = match std::fs::read_to_string(&path)
        .map_err(|e| e.to_string())
        .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()))
    {
        Ok(figures) => figures,
        Err(error) => {
            eprintln!("cannot read {}: {error}", path.display());
            return missing(table);
        }
    };
    let get = |name: &str| figures[name].as_f64();
    let version = figures["python"].as_str().unwrap_or("?");
    let ms = |ns: Option<f64>| ns.map(|ns| ns / 1e6);
    table.push_noted(
        SINGLE,
        PY_LRU,
        get("hit_async_lru_ns"),
        "ns",
        format!("CPython {version}"),
    );
    table.push_noted(
        SINGLE,
        format!("{PY_CACHE}.get"),
        get("hit_cache_get_ns"),
        "ns",
        "",
    );
    let alone = ms(get("loader_alone_ns"));
    let herd = ms(get("herd_10k_ns"))
        .zip(alone)
        .map(|(herd, alone)| herd - alone);
    table.push_noted(
        HERD,
        format!("{PY_CACHE}.get"),
        herd,
        "ms",
        format!(
            "{} load(s) per herd; its loader alone: {:.2} ms",
            get("herd_10k_loads").unwrap_or(f64::NAN),
            alone.unwrap_or(f64::NAN)
        ),
    );
    table.push_noted(
        STORM,
        format!("{PY_CACHE}.get"),
        ms(get("error_storm_100_ns")),
        "ms",
        format!(
            "{} load(s) per storm",
            get("error_storm_100_loads").unwrap_or(f64::NAN)
        ),
    );
    table.push_noted(
        BATCH,
        format!("{PY_CACHE}.get(batch_loader=...)"),
        ms(get("batch_10k_ns")),
        "ms",
        format!("{} batch calls", get("batch_10k_calls").unwrap_or(f64::NAN)),
    );
}

fn missing(table: &mut Table) {
    table.push_noted(
        SINGLE,
        PY_LRU,
        None,
        "ns",
        "python3 unavailable: run bench/python/run.sh",
    );
}
