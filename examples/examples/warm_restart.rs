//! A warm restart: a service snapshots its caches when it stops and restores them when it
//! starts, so the first requests after a deploy are hits, and every entry keeps the time it
//! had left to live.
//!
//! `cargo run -p examples --example warm_restart` runs the service twice, as two processes:
//! the first serves requests from a cold cache and writes the snapshot at shutdown, then
//! starts the second, which restores it and serves the same requests without the database.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cache_core::{AsyncCache, async_ttl};

static QUERIES: AtomicUsize = AtomicUsize::new(0);

/// A slow database query, cached for ten minutes; `snapshot = true` adds
/// `user::snapshot` and `user::restore`.
#[async_ttl(time_to_live = 600, maxsize = 10_000, snapshot = true)]
async fn user(id: u64) -> String {
    QUERIES.fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(20)).await; // SELECT name FROM users WHERE id = $1
    format!("user-{id}")
}

fn sessions() -> cache_core::AsyncCacheBuilder<String, u64> {
    AsyncCache::builder().maxsize(1_000)
}

async fn serve(sessions: &AsyncCache<String, u64>) {
    for id in 0..100 {
        user(id).await;
    }
    for name in ["ada", "alan", "grace"] {
        sessions.get_with(name.to_owned(), async { 42 }).await;
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("warm-restart-{}", std::process::id()));
    match std::env::args().nth(1) {
        None => first_run(&dir).await,
        Some(dir) => restarted(Path::new(&dir)).await,
    }
}

async fn first_run(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir)?;
    println!("== process {}: a cold start ==", std::process::id());
    let sessions = sessions().build();
    serve(&sessions).await;
    println!(
        "served 100 users with {} database queries",
        QUERIES.load(Ordering::Relaxed)
    );
    sessions.insert_with_ttl("brief".into(), 1, Some(Duration::from_millis(200)));

    // Shutting down: snapshot every cache.
    let written = user::snapshot(std::fs::File::create(dir.join("users.snapshot"))?)?;
    let sessions_written =
        sessions.snapshot(std::fs::File::create(dir.join("sessions.snapshot"))?)?;
    println!("snapshot: {written} users, {sessions_written} sessions");

    // The deploy takes a moment: the 200 ms session expires meanwhile.
    std::thread::sleep(Duration::from_millis(400));
    let status = Command::new(std::env::current_exe()?).arg(dir).status()?;
    std::fs::remove_dir_all(dir)?;
    assert!(status.success(), "the restarted process failed");
    Ok(())
}

async fn restarted(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    println!(
        "== process {}: restarted from the snapshot ==",
        std::process::id()
    );
    let file = |name: &str| -> std::io::Result<std::fs::File> {
        std::fs::File::open(PathBuf::from(dir).join(name))
    };
    let report = user::restore(file("users.snapshot")?)?;
    println!(
        "restored {} users ({} expired)",
        report.restored, report.expired
    );
    let sessions = sessions()
        .restore(file("sessions.snapshot")?)
        .unwrap_or_else(|error| {
            // A snapshot that cannot be used (another deploy's types) means a cold cache.
            eprintln!("cold sessions cache: {error}");
            sessions().build()
        });
    println!(
        "restored {} sessions (the brief one expired meanwhile)",
        sessions.metrics().size
    );
    serve(&sessions).await;
    println!(
        "served 100 users with {} database queries",
        QUERIES.load(Ordering::Relaxed)
    );
    let left = sessions
        .iter()
        .with_time_left()
        .map(|(_, _, left)| left)
        .collect::<Vec<_>>();
    println!(
        "sessions without a TTL still have none: {}",
        left.iter().all(Option::is_none)
    );
    Ok(())
}
