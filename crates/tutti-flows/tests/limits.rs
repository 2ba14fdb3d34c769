//! A flow's own limits on its templates and conditions: lower than the engine's, never higher. Written by
//! Tutti's developers.

use serde_json::json;

#[test]
fn a_flow_lowers_its_limits_and_may_not_raise_them() {
    use tutti_flows::{ConnectorInfo, compile};
    let connectors = [ConnectorInfo { name: "log".into(), operations: vec!["write".into()], channel: "log".into() }];
    let flow = |limits: &str| {
        format!(
            "flow: f\ntrigger: {{ event: A }}\nlimits: {limits}\nsteps:\n  - id: note\n    action: log.write\n    with: {{ text: '{{% for i in (1..event.properties.n) %}}.{{% endfor %}}' }}\n"
        )
    };
    let lowered = compile(&flow("{ steps: 50, output: 1000, time: 100ms }"), &connectors).unwrap();
    let tutti_flows::Definition::Flow(f) = &lowered else { panic!("a flow") };
    assert_eq!((f.limits.steps, f.limits.output_bytes, f.limits.time.as_millis()), (50, 1000, 100));
    for too_much in ["{ steps: 100001 }", "{ output: 300000 }", "{ time: 1s }", "{ colour: red }"] {
        assert!(compile(&flow(too_much), &connectors).is_err(), "{too_much}");
    }

    // In a dry run, a loop the defaults allow fails under the flow's lower step limit.
    let defs = {
        let mut defs = tutti_flows::Definitions::default();
        defs.insert(lowered);
        defs
    };
    let mut sim = tutti_flows::simulate::Simulation::new(&defs);
    let event = tutti_core::event::Event::from_json(
        json!({"type": "track", "userId": "u", "event": "A", "properties": {"n": 500}, "messageId": "m1",
               "timestamp": "2026-12-01T10:00:00Z"}),
        None,
        &tutti_core::event::BatchDefaults::default(),
        0,
        || unreachable!(),
    )
    .unwrap();
    sim.event(&event);
    let failed = sim.decisions.iter().find_map(|d| match &d.kind {
        tutti_flows::machine::DecisionKind::Failed { reason } => Some(reason.clone()),
        _ => None,
    });
    let reason = failed.expect("the run failed");
    assert!(reason.contains("step limit of 50"), "{reason}");
}
