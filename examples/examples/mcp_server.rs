//! An MCP server with the tools of the five seed scenarios, cached, invalidated and
//! loop-guarded by agent-cache. Point any MCP client at it:
//!
//! ```text
//! cargo run -p examples --example mcp_server                 # stdio
//! cargo run -p examples --example mcp_server -- --http       # http://127.0.0.1:8000/mcp
//! ```
//!
//! Options: `--port N` (with `--http`; 0 picks a free port), `--max-tool-repeats N` (default
//! 3), `--max-execution-depth N` (default 50), `--on-loop raise|warn|short_circuit`.

use std::net::Ipv4Addr;
use std::process::ExitCode;

use examples::mcp::{self, Options};

#[tokio::main]
async fn main() -> ExitCode {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(usage) => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    let server = mcp::guard(options.limits);
    let served = if options.http {
        let listener =
            match tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, options.port)).await {
                Ok(listener) => listener,
                Err(error) => {
                    eprintln!(
                        "cannot listen on 127.0.0.1:{}: {error} (try --port N)",
                        options.port
                    );
                    return ExitCode::FAILURE;
                }
            };
        match listener.local_addr() {
            // On stdout, so that a process that started the server can read the address.
            Ok(address) => println!("MCP server (streamable HTTP) at {}", mcp::endpoint(address)),
            Err(error) => eprintln!("listening, at an address unknown: {error}"),
        }
        mcp::serve_http(listener, server).await
    } else {
        // stdout carries the protocol: say hello on stderr.
        eprintln!("MCP server on stdio: the scenario tools, guarded by agent-cache");
        mcp::serve_stdio(server).await
    };
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("the server stopped: {error}");
            ExitCode::FAILURE
        }
    }
}
