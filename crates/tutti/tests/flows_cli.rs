//! `tutti flows validate` and `tutti flows test` as a user runs them, on the examples in the repository.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tutti(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tutti")).args(args).current_dir(repo()).output().expect("tutti runs");
    (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

/// `tutti flows test` over the S6 example and its events, with more arguments.
fn s6_dry_run(more: &[&str]) -> (bool, String, String) {
    let mut args =
        vec!["flows", "test", "examples/s6-personal-copy", "--events", "examples/s6-personal-copy/events.jsonl"];
    args.extend_from_slice(more);
    tutti(&args)
}

/// An example's dry run on its own events, as JSON decisions (and the output they were read from).
fn dry_run_json(example: &str) -> (Vec<Value>, String) {
    let (dir, events) = (format!("examples/{example}"), format!("examples/{example}/events.jsonl"));
    let (ok, stdout, stderr) = tutti(&["flows", "test", &dir, "--events", &events, "--format", "json"]);
    assert!(ok, "{stderr}");
    let decisions = stdout.lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect();
    (decisions, stdout)
}

#[test]
fn every_example_validates() {
    let (ok, stdout, stderr) = tutti(&["flows", "validate", "examples"]);
    assert!(ok, "{stderr}");
    assert!(stdout.starts_with("ok: 9 flow(s)"), "{stdout}");
}

#[test]
fn s10_dry_run_opens_a_card_per_topic_and_tells_of_a_rise() {
    let (decisions, stdout) = dry_run_json("s10-conversations");
    let actions: Vec<&Value> = decisions.iter().filter(|d| d["decision"] == "action").collect();
    let names: Vec<String> =
        actions.iter().map(|a| format!("{}.{}", a["connector"], a["operation"]).replace('"', "")).collect();
    assert_eq!(names, ["trello.upsert_card", "slack.post_message", "trello.upsert_card"], "{stdout}");
    // Both counts of the topic go to one card, keyed by the topic's id; the rise says the week's jump.
    assert_eq!(actions[0]["payload"]["topic_key"], actions[2]["payload"]["topic_key"]);
    assert_eq!(actions[0]["payload"]["name"], "Customers objection: Price");
    assert!(actions[1]["payload"]["text"].as_str().unwrap().contains("18 conversations in the week of 2026-11-23"));
}

#[test]
fn s2_dry_run_stops_the_promo_and_sends_the_receipt() {
    let (decisions, stdout) = dry_run_json("s2-complaint");
    let actions: Vec<&Value> = decisions.iter().filter(|d| d["decision"] == "action").collect();
    assert_eq!(actions.len(), 1, "{stdout}");
    assert_eq!(actions[0]["flow"], "receipt");
    assert_eq!(actions[0]["category"], "transactional");
    assert_eq!(actions[0]["time"], "2026-11-22T10:05:00.000Z");
    assert_eq!(actions[0]["payload"]["subject"], "Hoá đơn HD-1001");
    let exit = decisions
        .iter()
        .find(|d| d["decision"] == "exited" && d["flow"] == "winback-promo")
        .expect("the promo run is exited");
    assert_eq!(exit["time"], "2026-11-22T10:02:00.000Z");
    assert!(exit["reason"].as_str().unwrap().contains("complaint-suppression"));
    // The promo was waiting when it was stopped: a wait was scheduled for 10:05 and never resumed.
    assert!(decisions.iter().any(|d| d["decision"] == "waiting"
        && d["flow"] == "winback-promo"
        && d["until"] == "2026-11-22T10:05:00.000Z"));
    assert!(!decisions.iter().any(|d| d["decision"] == "resumed" && d["flow"] == "winback-promo"));
}

#[test]
fn s5_text_dry_run_names_every_decision() {
    let (ok, stdout, stderr) = tutti(&[
        "flows",
        "test",
        "examples/s5-abandoned-cart",
        "--events",
        "examples/s5-abandoned-cart/events.jsonl",
        "--profiles",
        "examples/s5-abandoned-cart/profiles.jsonl",
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("DEFERRED until 2026-11-23T00:00:00.000Z: quiet hours: policy quiet-hours"), "{stdout}");
    assert!(stdout.contains("王伟，您的购物车还在等您"), "{stdout}");
    assert!(stdout.contains("Sam, you left something in your cart"), "{stdout}");
    assert!(stdout.contains("GOAL Order Completed"), "{stdout}");
    assert!(!stdout.contains("Bạn quên giỏ hàng"), "Lan bought; no reminder: {stdout}");
    assert_eq!(stdout.matches("ACTION").count(), 2, "{stdout}");
}

#[test]
fn s6_dry_run_writes_the_copy_offline_and_plays_the_approval_out() {
    let (ok, stdout, stderr) = s6_dry_run(&["--format", "json"]);
    assert!(ok, "{stderr}");
    let decisions: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let sends: Vec<&Value> =
        decisions.iter().filter(|d| d["key"].as_str().is_some_and(|k| k.contains(":send:"))).collect();
    assert_eq!(sends.len(), 2, "both orders end in a send: {stdout}");
    // Wei (a small order) needs no approval: the copy the local model wrote goes, in Chinese, with the link.
    let wei = sends.iter().find(|d| d["payload"]["to"] == "wei@example.cn").unwrap();
    let text = wei["payload"]["text"].as_str().unwrap();
    assert!(text.contains("茶具") && text.contains("https://shop.example/orders/o-2"), "{wei}");
    assert!(wei["payload"]["subject"].as_str().is_some_and(|s| !s.is_empty()), "{wei}");
    // Lan is a big spender: the copy waits for a person; nobody decides in a day, so the default goes.
    assert!(stdout.contains("a customer worth 1500"), "{stdout}");
    let lan = sends.iter().find(|d| d["payload"]["to"] == "lan@example.vn").unwrap();
    assert_eq!(lan["payload"]["subject"], "Thank you for your order", "{lan}");
    assert_eq!(lan["time"].as_str().map(|a| &a[..10]), Some("2026-11-23"), "a day later: {lan}");
}

#[test]
fn a_dry_run_previews_the_generated_copy_and_says_who_wrote_it() {
    let (ok, stdout, stderr) = s6_dry_run(&[]);
    assert!(ok, "{stderr}");
    // Lan's copy waits for approval and is never sent in the dry run, but it is shown: a thank-you in
    // Vietnamese, written by the local generator.
    assert!(stdout.contains("COPY of p1-1:copy:1, written by the local generator:"), "{stdout}");
    assert!(stdout.contains("subject: Cảm ơn Lan đã mua áo dài lụa"), "{stdout}");
    assert!(stdout.contains("https://shop.example/orders/o-1"), "{stdout}");
    let (ok, json, _) = s6_dry_run(&["--format", "json"]);
    assert!(ok);
    let copy: Vec<Value> = json
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|d| d["decision"] == "result")
        .collect();
    assert_eq!(copy.len(), 2, "{json}");
    assert!(copy.iter().all(|d| d["copy"]["by"] == "the local generator" && d["copy"]["passed"] == true), "{json}");
}

#[test]
fn validate_names_file_line_and_hint() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, "flow: bad\ntrigger: { event: X }\nsteps:\n  - id: a\n    action: webhok.post\n").unwrap();
    let (ok, _, stderr) = tutti(&["flows", "validate", file.to_str().unwrap()]);
    assert!(!ok);
    let expected = format!("{}:5:13: unknown connector `webhok` (hint: did you mean `webhook`?", file.display());
    assert!(stderr.contains(&expected), "{stderr}");
}

#[test]
fn a_bad_events_file_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    std::fs::write(&events, "{\"type\":\"track\",\"userId\":\"u\",\"event\":\"X\",\"timestamp\":\"2026-11-22T10:00:00Z\"}\n{\"type\":\"track\",\"userId\":\"u\",\"event\":\"X\"}\n").unwrap();
    let (ok, _, stderr) = tutti(&["flows", "test", "examples/s2-complaint", "--events", events.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("events.jsonl:2: every event in a dry run needs a `timestamp`"), "{stderr}");
}

#[test]
fn a_dry_run_where_nothing_triggers_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    std::fs::write(
        &events,
        "{\"type\":\"track\",\"userId\":\"u\",\"event\":\"Nothing Listens\",\"timestamp\":\"2026-11-22T10:00:00Z\"}\n",
    )
    .unwrap();
    let (ok, stdout, stderr) = tutti(&["flows", "test", "examples/s2-complaint", "--events", events.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout, "", "nothing to print as decisions");
    assert!(stderr.contains("nothing happened: no flow was triggered by the 1 event(s) played"), "{stderr}");
}

#[test]
fn the_whole_definitions_in_the_language_reference_validate() {
    let reference = std::fs::read_to_string(repo().join("docs/flows.md")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut written = 0;
    for (i, block) in reference.split("```yaml\n").skip(1).enumerate() {
        let block = block.split("```").next().unwrap();
        if ["flow:", "segment:", "policy:"].iter().any(|k| block.trim_start().starts_with(k)) {
            std::fs::write(dir.path().join(format!("{i}.yaml")), block).unwrap();
            written += 1;
        }
    }
    assert_eq!(written, 3, "a flow, a segment and a policy");
    let (ok, stdout, stderr) = tutti(&["flows", "validate", dir.path().to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(stdout.starts_with("ok: 1 flow(s), 1 segment(s), 1 policy(ies)"), "{stdout}");
}

/// What `tutti serve` logs at info level before it listens, with the flows of `flows_dir`.
fn start_log(flows_dir: &str) -> String {
    use std::io::{BufRead, BufReader};
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tutti"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .args(["--flows-dir", flows_dir])
        .current_dir(repo())
        .env("TUTTI_LOG__LEVEL", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut before_listening = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.starts_with("Tutti listening on ") {
            break;
        }
        before_listening.push(line);
    }
    child.kill().unwrap();
    child.wait().unwrap();
    before_listening.join("\n")
}

#[test]
fn a_flow_on_a_connector_that_is_not_configured_is_named_at_start() {
    let log = start_log("examples/s3-objection");
    assert!(
        log.lines().any(|l| l.contains("WARN")
            && l.contains("flow=objection-to-content-task")
            && l.contains("connector=\"trello\"")
            && l.contains("[connectors.trello]")),
        "{log}"
    );
}

#[test]
fn the_start_names_each_definition_in_force_without_colour_codes_in_a_file() {
    let log = start_log("examples/s2-complaint");
    for expected in ["flow=winback-promo", "flow=receipt", "policy=complaint-suppression"] {
        assert!(log.lines().any(|l| l.contains("loaded") && l.contains(expected)), "{expected} in:\n{log}");
    }
    assert!(!log.contains('\u{1b}'), "no colour codes when the output is not a terminal:\n{log}");
}

#[test]
fn a_misspelt_connector_is_the_one_problem_reported() {
    let dir = tempfile::tempdir().unwrap();
    let flow = dir.path().join("typo.yaml");
    std::fs::write(
        &flow,
        "flow: typo\ntrigger: { event: X }\nsteps:\n  - id: a\n    action: slak.post_message\n    with: { channel: '#x', text: hi }\n",
    )
    .unwrap();
    let (ok, _, stderr) = tutti(&["flows", "validate", flow.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("typo.yaml:5:13: unknown connector `slak` (hint: did you mean `slack`?"), "{stderr}");
    assert!(!stderr.contains("unknown member"), "the action's `with` is not a second problem: {stderr}");
    // A member misspelt beside it is named with the step's members, each once.
    std::fs::write(&flow, "flow: typo\ntrigger: { event: X }\nsteps:\n  - id: a\n    action: log.write\n    nxt: b\n")
        .unwrap();
    let (_, _, stderr) = tutti(&["flows", "validate", flow.to_str().unwrap()]);
    let hint = stderr.lines().find(|l| l.contains("unknown member `nxt`")).unwrap_or_else(|| panic!("{stderr}"));
    assert_eq!(hint.matches("action").count(), 1, "{hint}");
    assert!(stderr.contains("1 problem(s) found"), "{stderr}");
}

#[test]
fn a_member_the_connector_does_not_take_is_refused_where_it_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let flow = dir.path().join("card.yaml");
    let write = |with: &str| {
        let yaml = format!(
            "flow: card\ntrigger: {{ event: X }}\nsteps:\n  - id: a\n    action: trello.create_card\n    with: {with}\n"
        );
        std::fs::write(&flow, yaml).unwrap();
        tutti(&["flows", "validate", flow.to_str().unwrap()])
    };
    let (ok, _, stderr) = write("{ name: Hi, colour: red, lsit: abc }");
    assert!(!ok);
    assert!(stderr.contains("card.yaml:6:31: `trello.create_card` does not take `colour`"), "{stderr}");
    assert!(stderr.contains("`lsit` (hint: did you mean `list`?"), "{stderr}");
    assert!(stderr.contains("2 problem(s) found"), "{stderr}");
    // The members it takes pass, and a connector whose `with` is open (a webhook's body) takes anything.
    assert!(write("{ name: Hi, list: abc, labels: [x] }").0);
    std::fs::write(
        &flow,
        "flow: card\ntrigger: { event: X }\nsteps:\n  - id: a\n    action: webhook.post\n    with: { url: 'https://example.com', colour: red }\n",
    )
    .unwrap();
    assert!(tutti(&["flows", "validate", flow.to_str().unwrap()]).0);
}
