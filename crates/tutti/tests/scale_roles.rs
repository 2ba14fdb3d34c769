//! Several `tutti serve` processes on one log in NATS JetStream: intakes that only take events, a worker that
//! folds them into profiles, each refusing what its role does not serve.

mod common;

use std::process::Command;

use common::{Server, wait_until};
use serde_json::json;
use tutti_log::nats::testing::NatsServer;

#[test]
fn two_intakes_feed_one_worker_through_the_shared_log() {
    let Some(nats) = NatsServer::start() else { return };
    let url = nats.url();
    let worker = Server::start_from_temp(&[("TUTTI_BUS__NATS", url.as_str()), ("TUTTI_SERVER__ROLE", "worker")]);
    let intakes: Vec<Server> = (0..2)
        .map(|_| Server::start_from_temp(&[("TUTTI_BUS__NATS", url.as_str()), ("TUTTI_SERVER__ROLE", "intake")]))
        .collect();

    // Twenty people, each with events through both intakes: 5 through one, 5 through the other.
    for i in 0..200 {
        let intake = &intakes[i % 2];
        let user = format!("khach-{}", i % 20);
        let (status, _) =
            intake.track("/v1/track", &json!({"userId": user, "event": "Xem sản phẩm", "messageId": format!("m{i}")}));
        assert_eq!(status, 200);
    }
    // A retry through the other intake is the same event.
    let (status, _) =
        intakes[1].track("/v1/track", &json!({"userId": "khach-0", "event": "Xem sản phẩm", "messageId": "m0"}));
    assert_eq!(status, 200);

    wait_until("the worker folded every event", || {
        (0..20).all(|u| {
            let (status, profile) = worker.profile(&format!("user_id:khach-{u}"));
            status == 200 && profile["event_counts"]["Xem sản phẩm"] == 10
        })
    });

    // Each role answers only for what it serves.
    let (status, body) = intakes[0].request("GET", "/api/v1/profiles/user_id:khach-1", Some(common::ADMIN_TOKEN));
    assert_eq!(status, 404, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("intake"), "{body}");
    let (status, body) = worker.track("/v1/track", &json!({"userId": "x", "event": "E"}));
    assert_eq!(status, 404, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("worker"), "{body}");
    for server in intakes.iter().chain([&worker]) {
        assert_eq!(server.request("GET", "/healthz", None).0, 200);
    }
}

#[test]
fn a_role_that_cannot_work_refuses_to_start_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let refused = |env: &[(&str, &str)]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tutti"));
        command.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"]).arg(dir.path());
        command.env_remove("TUTTI_WRITE_KEY").env_remove("TUTTI_BUS__NATS");
        for (k, v) in env {
            command.env(k, v);
        }
        let output = command.output().unwrap();
        assert!(!output.status.success());
        String::from_utf8_lossy(&output.stderr).into_owned() + &String::from_utf8_lossy(&output.stdout)
    };
    let why = refused(&[("TUTTI_SERVER__ROLE", "worker")]);
    assert!(why.contains("needs [bus] nats"), "{why}");
    let why = refused(&[("TUTTI_SERVER__ROLE", "intake"), ("TUTTI_BUS__NATS", "nats://127.0.0.1:1")]);
    assert!(why.contains("needs the write key"), "{why}");
    let mut command = Command::new(env!("CARGO_BIN_EXE_tutti"));
    let output = command.args(["serve", "--role", "boss"]).output().unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a role"));
}
