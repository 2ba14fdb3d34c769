//! One way back: the answer to an awaited action (`ai.classify` here) reaches its run through the durable log,
//! so a `kill -9` anywhere between the connector's answer and the run's commit leaves no run waiting for ever.
//! Hundreds of runs, five kills while answers are coming back, and every run completes with its answer.

mod common;

use common::{Server, wait_until};
use serde_json::{Value, json};

const PEOPLE: usize = 400;
const KILLS: usize = 5;

fn runs(server: &Server) -> Vec<Value> {
    server.admin("/api/v1/runs?flow=triage&limit=1000")["runs"].as_array().unwrap().clone()
}

#[test]
fn awaited_answers_reach_their_runs_across_kills() {
    let data = tempfile::tempdir().unwrap();
    let flows = tempfile::tempdir().unwrap();
    std::fs::write(
        flows.path().join("triage.yaml"),
        "flow: triage\ncategory: transactional\ntrigger: { event: Asked }\nsteps:\n  - id: topic\n    action: ai.classify\n    await: true\n    with: { text: '{{ event.properties.text }}' }\n  - id: note\n    action: log.write\n    with: { topic: '{{ run.steps.topic.topic }}' }\n",
    )
    .unwrap();
    let flows_dir = flows.path().to_str().unwrap().to_owned();
    let env = [("TUTTI_FLOWS__DIR", flows_dir.as_str())];
    let mut server = Server::start_in(data.path(), &env);
    let questions = ["Giá này đắt quá so với bên kia", "这个价格太贵了", "Is my data safe with you?", "Hello"];
    let batch: Vec<Value> = (0..PEOPLE)
        .map(|n| {
            json!({"type": "track", "userId": format!("u{n}"), "event": "Asked",
                   "properties": {"text": questions[n % questions.len()]}})
        })
        .collect();
    let (status, body) = server.track("/v1/batch", &json!({"batch": batch}));
    assert_eq!(status, 200, "{body}");
    for kill in 1..=KILLS {
        // A kill while answers come back: after a share of the runs has completed.
        let share = kill * PEOPLE / (KILLS + 3);
        wait_until("answers coming back", || {
            runs(&server).iter().filter(|r| r["status"]["state"] == "completed").count() >= share
        });
        server.kill9();
        server = Server::start_in(data.path(), &env);
    }
    wait_until("every run completed", || {
        let all = runs(&server);
        all.len() == PEOPLE && all.iter().all(|r| r["status"]["state"] == "completed")
    });
    for run in runs(&server) {
        let answer = &run["results"]["topic"];
        assert!(answer["key"].is_string() && answer["taxonomy"] == "objections", "{run}");
    }
}
