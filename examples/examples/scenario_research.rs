//! The seed README's "research" agent scenario: `cargo run -p examples --example scenario_research`.

#[tokio::main]
async fn main() {
    let report = examples::scenarios::research().await;
    examples::print_report(&report);
}
