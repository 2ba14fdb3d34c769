//! `tutti demo` on a fresh data directory with no configuration: the day is played through every story, each
//! story's flows act (through the stand-ins the demo starts), and the console opens with the demo account.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;

#[test]
fn the_demo_plays_every_story_and_serves_the_console() {
    let data = tempfile::tempdir().unwrap();
    /// The demo process, killed however the test ends.
    struct Demo(std::process::Child);
    impl Drop for Demo {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_tutti"))
        .args(["demo", "--listen", "127.0.0.1:0", "--speed", "86400", "--shoppers", "30", "--data-dir"])
        .arg(data.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the demo starts");
    let stdout = child.stdout.take().unwrap();
    let _demo = Demo(child);
    let mut lines = BufReader::new(stdout).lines();
    let mut said = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("the demo's output");
        let done = line.starts_with("Open the console");
        said.push(line);
        if done {
            break;
        }
    }
    let find = |prefix: &str| said.iter().find_map(|l| l.strip_prefix(prefix)).map(str::to_owned);
    let console = find("Console: ").expect("the console's address");
    let url = console.split_whitespace().next().unwrap().to_owned();
    let password = console.rsplit(' ').next().unwrap().to_owned();
    let token = find("Admin token: ").expect("the admin token");
    let api = |path: &str| -> Value {
        let mut answer = common::agent()
            .get(format!("{url}{path}"))
            .header("Authorization", format!("Bearer {token}"))
            .call()
            .unwrap();
        serde_json::from_str(&answer.body_mut().read_to_string().unwrap()).unwrap()
    };
    let delivered = |flow: &str| {
        let page = api(&format!("/api/v1/deliveries?flow={flow}&outcome=done&limit=1000"));
        page["deliveries"].as_array().map_or(0, Vec::len)
    };
    // Each story did what it is about.
    assert_eq!(delivered("hot-lead-pricing"), 3, "S1: Slack, the audience and the website slot, once: {said:?}");
    assert!(delivered("receipt") >= 1, "S2: the receipt goes");
    assert_eq!(delivered("winback-promo"), 0, "S2: the complaint stopped the promotion");
    assert_eq!(delivered("objection-to-content-task"), 2, "S3: a card, then a comment on it");
    assert!(delivered("organic-reach-alert") >= 1, "S4: the ads team is told");
    assert!(delivered("abandoned-cart") >= 1, "S5: a reminder");
    assert!(delivered("personal-thanks") >= 1, "S6: copy written and sent");
    let waiting = api("/api/v1/approvals");
    assert!(
        waiting["approvals"].as_array().unwrap().iter().any(|a| a["flow"] == "personal-thanks"),
        "S6: a big spender's thank-you waits for a person: {waiting}"
    );
    assert!(said.iter().any(|l| l.contains("S3 sales objections")), "the summary names each story: {said:?}");

    // The console opens with the demo account.
    let signed_in = common::agent()
        .post(format!("{url}/api/v1/sessions"))
        .header("Content-Type", "application/json")
        .send(serde_json::json!({"email": "demo@tutti.local", "password": password}).to_string())
        .unwrap();
    assert_eq!(signed_in.status().as_u16(), 201);
}
