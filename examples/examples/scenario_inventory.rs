//! The seed README's "inventory" agent scenario: `cargo run -p examples --example scenario_inventory`.

#[tokio::main]
async fn main() {
    let report = examples::scenarios::inventory().await;
    examples::print_report(&report);
}
