//! The seed README's "payment" agent scenario: `cargo run -p examples --example scenario_payment`.

#[tokio::main]
async fn main() {
    let report = examples::scenarios::payment().await;
    examples::print_report(&report);
}
