//! The live dashboard: a local web server and one page to try the caches, fire concurrent
//! load at them, run the agent scenarios and watch the metrics.
//!
//! `cargo run -p examples --example dashboard` serves it on <http://127.0.0.1:5001>
//! (`--port N` or the `PORT` variable to change the port). Tests start it in-process:
//!
//! ```no_run
//! # async fn start() -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let address = listener.local_addr()?;
//! tokio::spawn(examples::dashboard::serve(listener));
//! // http://{address}/ is the page, http://{address}/api/metrics the metrics.
//! # Ok(())
//! # }
//! ```
//!
//! # Endpoints
//!
//! | route | what it does |
//! |---|---|
//! | `GET /` | the page (its CSS and JS under `/assets/`) |
//! | `GET /api/config`, `POST /api/config` | the playground's configuration; setting it rebuilds the direct cache and empties the macro caches |
//! | `POST /api/caches/{ttl,lru,direct}/call` | `{"key", "use_cache"?, "batch"?}`: one lookup through that cache, loading from the 100 ms backend on a miss |
//! | `POST /api/caches/{ttl,lru,direct}/clear` | empties that cache |
//! | `POST /api/direct/warmup` | `{"keys": [...]}`: preloads keys into the direct cache |
//! | `GET`, `PUT`, `DELETE /api/direct/entries/{key}` | get (no load), set (`{"value", "ttl"?}`) and delete one entry |
//! | `GET /api/agent` | the scenarios, the tools a script can call, the default limits |
//! | `POST /api/agent/scenarios/{name}` | runs a seed scenario with the limits in the body (`max_tool_repeats`, `max_execution_depth`, `on_loop`) |
//! | `POST /api/agent/script` | `{"script", ...limits}`: runs tool calls typed one a line |
//! | `GET /api/metrics` | every cache and the agent layer, as JSON |
//! | `GET /metrics` | the same in the Prometheus text format |
//!
//! Bad input gets a 4xx answer `{"error": "..."}` that says what is allowed.
//!
//! # The caches
//!
//! - `ttl` and `lru`: `async fn (replica: u8, key: String) -> String` cached by
//!   `#[async_ttl(time_to_live = 30, maxsize = 1024)]` and `#[async_lru(maxsize = 64)]`.
//!   Requests are spread round-robin over 4 replicas; `skip_args = 1` (the default) leaves
//!   the replica out of the key. Attributes are fixed at compile time, so each is declared
//!   with `skip_args = 0` and `= 1`, and the configuration picks one.
//! - `direct`: an `AsyncCache<String, String>` built from the configuration (maxsize, TTL,
//!   batch window, max batch size), loaded by a single loader or by its batch loader.
//!
//! Every backend call counts, per cache, in `/api/metrics` (`backend_calls`), so a herd of
//! 100 same-key requests shows its one load.

mod api;
mod backend;
mod caches;
mod input;
mod metrics;
mod page;
mod playground;
mod prometheus;

use std::io;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;

use self::playground::Playground;

/// The port the dashboard listens on unless told otherwise (the Python demo's).
pub const DEFAULT_PORT: u16 = 5001;

/// The dashboard's routes, over a fresh playground. The macro caches and the agent layer are
/// process-wide, so two routers in one process share them.
pub fn router() -> Router {
    api::router(Arc::new(Playground::default()))
}

/// Serves the dashboard on `listener` until the process ends.
pub async fn serve(listener: TcpListener) -> io::Result<()> {
    axum::serve(listener, router()).await
}

/// The port to listen on: `--port N` or `--port=N` among `args`, else `env_port` (the
/// `PORT` variable), else [`DEFAULT_PORT`].
pub fn port_from(
    args: impl IntoIterator<Item = String>,
    env_port: Option<String>,
) -> Result<u16, String> {
    let parse = |text: &str, from: &str| {
        text.trim()
            .parse::<u16>()
            .map_err(|_| format!("{from} must be a port number from 0 to 65535, got {text:?}"))
    };
    const FLAG: &str = "--port";
    let args: Vec<String> = args.into_iter().collect();
    match args.as_slice() {
        [] => env_port.map_or(Ok(DEFAULT_PORT), |port| parse(&port, "PORT")),
        [flag, port] if flag == FLAG => parse(port, FLAG),
        [flag] if flag == FLAG => Err("--port needs a value, e.g. --port 8080".into()),
        [arg] if arg.starts_with("--port=") => parse(&arg[FLAG.len() + 1..], FLAG),
        _ => Err(format!(
            "unexpected arguments {args:?}; usage: dashboard [--port N] (or PORT=N)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|arg| (*arg).to_owned()).collect()
    }

    #[test]
    fn the_port_comes_from_the_flag_then_the_environment_then_the_default() {
        assert_eq!(port_from(args(&[]), None), Ok(DEFAULT_PORT));
        assert_eq!(port_from(args(&[]), Some("8080".into())), Ok(8080));
        assert_eq!(
            port_from(args(&["--port", "9000"]), Some("8080".into())),
            Ok(9000)
        );
        assert_eq!(port_from(args(&["--port=9001"]), None), Ok(9001));
        assert!(
            port_from(args(&["--port"]), None)
                .unwrap_err()
                .contains("needs a value")
        );
        assert!(port_from(args(&["--port", "70000"]), None).is_err());
        assert!(
            port_from(args(&[]), Some("http".into()))
                .unwrap_err()
                .contains("PORT")
        );
        assert!(
            port_from(args(&["--verbose"]), None)
                .unwrap_err()
                .contains("usage")
        );
    }
}
