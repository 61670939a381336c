//! The dashboard's agent playground over real HTTP: the seed scenarios and typed sequences of
//! tool calls, run with the limits and `OnLoop` the caller chose.

mod support;

use serde_json::json;
use support::Dashboard;

#[tokio::test]
async fn the_agent_endpoints_run_scenarios_and_scripts_with_the_chosen_limits() {
    let dashboard = Dashboard::start().await;
    let catalogue = dashboard.get("/api/agent").await;
    assert_eq!(
        catalogue["scenarios"],
        json!(["ecommerce", "support", "research", "inventory", "payment"])
    );
    assert_eq!(catalogue["tools"].as_array().unwrap().len(), 11);
    assert_eq!(catalogue["default_limits"]["max_tool_repeats"], 5);

    let inventory = dashboard
        .post("/api/agent/scenarios/inventory", json!({}))
        .await;
    assert_eq!(inventory["halted"], true);
    assert!(
        inventory["outcome"]
            .as_str()
            .unwrap()
            .starts_with("Cycle detected: check_stock -> update_stock")
    );
    let markers: Vec<&str> = inventory["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["marker"].as_str().unwrap())
        .collect();
    assert_eq!(markers, ["miss", "invalidation", "miss", "loop_detected"]);
    assert_eq!(inventory["metrics"]["loop_detections"], 1);
    assert_eq!(inventory["metrics"]["loop_detections_by_kind"]["cycle"], 1);

    // With Warn the loop is logged and the planner runs its 20 calls.
    let warned = dashboard
        .post("/api/agent/scenarios/inventory", json!({"on_loop": "warn"}))
        .await;
    assert_eq!(warned["halted"], false);
    let steps = warned["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 20);
    assert!(steps.iter().any(|s| s["marker"] == "loop_warned"));

    let research = dashboard
        .post(
            "/api/agent/scenarios/research",
            json!({"max_tool_repeats": "3", "max_execution_depth": 20}),
        )
        .await;
    assert!(
        research["outcome"]
            .as_str()
            .unwrap()
            .starts_with("Repeated call detected: search_web")
    );
    let payment = dashboard
        .post("/api/agent/scenarios/payment", json!(null))
        .await;
    assert!(
        payment["outcome"]
            .as_str()
            .unwrap()
            .starts_with("Retry storm detected: charge_payment")
    );
    for name in ["ecommerce", "support"] {
        let report = dashboard
            .post(&format!("/api/agent/scenarios/{name}"), json!({}))
            .await;
        assert_eq!(report["halted"], false, "{name}: {report}");
    }

    let script = "# a user-typed sequence\nget_cart dash-u1\nget_cart(dash-u1)\nadd_to_cart dash-u1 \"gaming mouse\"\nget_cart dash-u1\n";
    let report = dashboard
        .post("/api/agent/script", json!({ "script": script }))
        .await;
    assert_eq!(report["title"], "Custom sequence");
    let steps: Vec<(&str, &str)> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["call"].as_str().unwrap(), s["marker"].as_str().unwrap()))
        .collect();
    assert_eq!(
        steps,
        [
            ("get_cart(dash-u1)", "miss"),
            ("get_cart(dash-u1)", "hit"),
            ("add_to_cart(dash-u1, gaming mouse)", "invalidation"),
            ("get_cart(dash-u1)", "miss"),
        ]
    );
    let looping = "check_stock dash-s\nupdate_stock dash-s -1\n".repeat(3);
    let report = dashboard
        .post(
            "/api/agent/script",
            json!({"script": looping, "max_tool_repeats": 10, "on_loop": "raise"}),
        )
        .await;
    assert!(
        report["outcome"]
            .as_str()
            .unwrap()
            .starts_with("Cycle detected: check_stock -> update_stock")
    );
    let report = dashboard
        .post(
            "/api/agent/script",
            json!({"script": "check_stock d\n".repeat(4), "max_tool_repeats": 2}),
        )
        .await;
    assert_eq!(
        report["steps"].as_array().unwrap().len(),
        3,
        "the third identical call is stopped"
    );
}
