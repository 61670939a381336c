//! The seed README's "ecommerce" agent scenario: `cargo run -p examples --example scenario_ecommerce`.

#[tokio::main]
async fn main() {
    let report = examples::scenarios::ecommerce().await;
    examples::print_report(&report);
}
