//! The hostile corpus (tests/hostile/expressions.json) in a running server and in a dry run: every template and
//! condition that the source shows to be hostile is refused with its line and column; every other one fails
//! its own run or records a clear error, while another profile's flow completes; a restart handles none of
//! them again.

mod common;

use std::path::Path;

use common::{Server, wait_until};
use serde_json::{Value, json};

struct Corpus {
    properties: Value,
    render: Vec<String>,
    parse: Vec<String>,
    conditions: Vec<String>,
}

fn corpus() -> Corpus {
    let path = common::repo_root().join("tests/hostile/expressions.json");
    let raw: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut properties = raw["event_properties"].clone();
    properties["text"] = json!("x".repeat(raw["text_bytes"].as_u64().unwrap() as usize));
    let list = |k: &str| raw[k].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
    Corpus { properties, render: list("render"), parse: list("parse"), conditions: list("conditions") }
}

/// A flow whose one action renders `template` (a JSON string is a YAML double-quoted string).
fn template_flow(id: &str, template: &str) -> String {
    format!(
        "flow: {id}\ncategory: transactional\ntrigger:\n  event: {id}\nsteps:\n  - id: note\n    action: log.write\n    with:\n      text: {}\n",
        serde_json::to_string(template).unwrap()
    )
}

/// A flow that branches on `condition`.
fn condition_flow(id: &str, condition: &str) -> String {
    format!(
        "flow: {id}\ncategory: transactional\ntrigger:\n  event: {id}\nsteps:\n  - id: decide\n    branch:\n      - when: {}\n        next: done\n      - next: done\n  - id: done\n    action: log.write\n    with:\n      text: done\n",
        serde_json::to_string(condition).unwrap()
    )
}

/// Every flow of the corpus, by id.
fn flows(corpus: &Corpus) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, t) in corpus.render.iter().enumerate() {
        out.push((format!("hostile-r{i}"), template_flow(&format!("hostile-r{i}"), t)));
    }
    for (i, c) in corpus.conditions.iter().enumerate() {
        out.push((format!("hostile-c{i}"), condition_flow(&format!("hostile-c{i}"), c)));
    }
    out.push((
        "fine".into(),
        template_flow("fine", "{% for i in (1..3) %}{{ i }}{% endfor %} {{ event.properties.word }}"),
    ));
    out
}

/// Whether a run failed, or went on past a clear error it recorded.
fn failed_or_noted(run: &Value) -> bool {
    run["status"]["state"] == "failed"
        || run["path"].as_array().unwrap().iter().any(|d| {
            d["decision"] == "error"
                || (d["decision"] == "branch" && d["reason"].as_str().unwrap_or("").contains("could not decide"))
        })
}

fn runs_of(server: &Server, flow: &str) -> Vec<Value> {
    server.admin(&format!("/api/v1/runs?flow={flow}&limit=10"))["runs"].as_array().unwrap().clone()
}

#[test]
fn the_hostile_corpus_in_a_running_server_fails_only_its_own_runs_and_not_twice() {
    let corpus = corpus();
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::start_in(data.path(), &[]);
    for source in &corpus.parse {
        let (status, body) = server.put("/api/v1/flows/hostile-p", &template_flow("hostile-p", source));
        assert!((400..500).contains(&status), "{source}: {status} {body}");
        let said = body.to_string();
        assert!(said.contains("line") || said.contains(':'), "{source}: the refusal says where: {said}");
    }
    let flows = flows(&corpus);
    for (id, yaml) in &flows {
        let (status, body) = server.put(&format!("/api/v1/flows/{id}"), yaml);
        assert_eq!(status, 200, "{id}: {body}");
    }
    for (n, (id, _)) in flows.iter().enumerate() {
        let properties = if id == "fine" { json!({"word": "ab"}) } else { corpus.properties.clone() };
        let (status, body) =
            server.track("/v1/track", &json!({"userId": format!("u{n}"), "event": id, "properties": properties}));
        assert_eq!(status, 200, "{id}: {body}");
    }
    wait_until("every run ended", || {
        flows.iter().all(|(id, _)| {
            let runs = runs_of(&server, id);
            runs.len() == 1 && !matches!(runs[0]["status"]["state"].as_str(), Some("waiting" | "awaiting_result"))
        })
    });
    for (id, _) in &flows {
        let run = &runs_of(&server, id)[0];
        if id == "fine" {
            assert_eq!(run["status"]["state"], "completed", "{run}");
        } else {
            assert!(failed_or_noted(run), "{id}: {run}");
        }
    }
    let failed = server.metric("tutti_runs_failed_total");
    assert!(failed >= 30.0, "most of the corpus runs into a limit: {failed}");
    assert_eq!(server.request("GET", "/healthz", None).0, 200);

    // After a kill -9 and a restart, nothing is handled again.
    server.kill9();
    let server = Server::start_in(data.path(), &[]);
    let (status, _) =
        server.track("/v1/track", &json!({"userId": "after", "event": "fine", "properties": {"word": "ok"}}));
    assert_eq!(status, 200);
    wait_until("the new event ran", || runs_of(&server, "fine").len() == 2);
    assert_eq!(server.metric("tutti_runs_failed_total"), 0.0);
    assert_eq!(server.metric("tutti_inputs_failed_total"), 0.0);
    for (id, _) in flows.iter().filter(|(id, _)| id != "fine") {
        assert_eq!(runs_of(&server, id).len(), 1, "{id} ran once");
    }
}

#[test]
fn the_hostile_corpus_in_a_dry_run_fails_with_reasons() {
    let corpus = corpus();
    let dir = tempfile::tempdir().unwrap();
    let flows = flows(&corpus);
    for (id, yaml) in &flows {
        std::fs::write(dir.path().join(format!("{id}.yaml")), yaml).unwrap();
    }
    let events: Vec<String> = flows
        .iter()
        .enumerate()
        .map(|(n, (id, _))| {
            json!({"type": "track", "userId": format!("u{n}"), "event": id, "properties": corpus.properties,
                   "timestamp": "2026-12-01T10:00:00Z"})
            .to_string()
        })
        .collect();
    let events_file = dir.path().join("events.jsonl");
    std::fs::write(&events_file, events.join("\n")).unwrap();
    let (ok, stdout, stderr) = dry_run(dir.path(), &events_file);
    assert!(ok, "{stderr}");
    let decisions: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for (id, _) in flows.iter().filter(|(id, _)| id != "fine") {
        let mine: Vec<&Value> = decisions.iter().filter(|d| d["flow"] == id.as_str()).collect();
        let clear = mine.iter().any(|d| {
            d["decision"] == "failed"
                || d["decision"] == "error"
                || d["reason"].as_str().is_some_and(|r| r.contains("could not decide"))
        });
        assert!(clear, "{id}: {mine:?}");
    }
    assert!(decisions.iter().any(|d| d["flow"] == "fine" && d["decision"] == "completed"), "{stdout}");
}

fn dry_run(flows: &Path, events: &Path) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tutti"))
        .args(["flows", "test"])
        .arg(flows)
        .arg("--events")
        .arg(events)
        .args(["--format", "json"])
        .output()
        .expect("tutti runs");
    (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}
