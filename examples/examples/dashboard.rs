//! The live dashboard: `cargo run -p examples --example dashboard`, then open
//! <http://127.0.0.1:5001> (`--port N` or `PORT=N` to change the port).

use std::net::Ipv4Addr;
use std::process::ExitCode;

use examples::dashboard;

#[tokio::main]
async fn main() -> ExitCode {
    let port = match dashboard::port_from(std::env::args().skip(1), std::env::var("PORT").ok()) {
        Ok(port) => port,
        Err(usage) => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("cannot listen on 127.0.0.1:{port}: {error} (try --port N)");
            return ExitCode::FAILURE;
        }
    };
    println!("async-cache dashboard running at http://127.0.0.1:{port} (Ctrl-C to stop)");
    if let Err(error) = dashboard::serve(listener).await {
        eprintln!("the server stopped: {error}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
