//! The live dashboard: `cargo run -p examples --example dashboard`, then open
//! <http://127.0.0.1:5001> (`--port N` or `PORT=N` to change the port; `--redis URL` or
//! `REDIS_URL=URL` to join the fleet of every dashboard on that Redis).

use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::time::Duration;

use cache_redis::Link;
use examples::dashboard::{self, Args, ArgsError, DashboardFleet, USAGE};

#[tokio::main]
async fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1), |name| std::env::var(name).ok()) {
        Ok(args) => args,
        Err(ArgsError::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    // Before listening: a bad URL is a mistake on the command line, refused at once.
    let fleet = match &args.redis {
        None => None,
        Some(url) => match DashboardFleet::connect(url).await {
            Ok(fleet) => Some(fleet),
            Err(error) => {
                eprintln!(
                    "--redis {url:?}: {error} (a Redis URL looks like redis://127.0.0.1:6379/0)\n{USAGE}"
                );
                return ExitCode::from(2);
            }
        },
    };
    let listener = match tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, args.port)).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!(
                "cannot listen on 127.0.0.1:{}: {error} (try --port N)",
                args.port
            );
            return ExitCode::FAILURE;
        }
    };
    let port = listener
        .local_addr()
        .map_or(args.port, |address| address.port());
    println!("async-cache dashboard running at http://127.0.0.1:{port} (Ctrl-C to stop)");
    if let Some(fleet) = &fleet {
        tokio::spawn(report_link_changes(fleet.clone()));
    }
    if let Err(error) = dashboard::serve(listener, fleet).await {
        eprintln!("the server stopped: {error}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Prints the fleet's state now and at each change (the page shows it too).
async fn report_link_changes(fleet: DashboardFleet) {
    let mut was_connected = None;
    loop {
        let link = fleet.fleet().status().link;
        if was_connected != Some(link.is_connected()) {
            was_connected = Some(link.is_connected());
            match link {
                Link::Connected { .. } => println!(
                    "fleet: connected to {} (namespace {}): invalidations reach every dashboard there",
                    fleet.server(),
                    fleet.fleet().namespace()
                ),
                Link::Degraded { reason, .. } => println!(
                    "fleet: degraded, {} cannot be heard ({reason}): caches flushed, entries kept at \
                     most {} ms, invalidations queued; reconnecting in the background",
                    fleet.server(),
                    fleet.fleet().max_staleness().as_millis()
                ),
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
