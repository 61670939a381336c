//! The seed README's "support" agent scenario: `cargo run -p examples --example scenario_support`.

#[tokio::main]
async fn main() {
    let report = examples::scenarios::support().await;
    examples::print_report(&report);
}
