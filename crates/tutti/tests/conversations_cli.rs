//! `tutti conversations`: the real binary on a temporary data directory. Generated conversations with planted
//! topics imported as JSON lines (twice), a WebVTT transcript, hostile files refused with their reason, the topics
//! as JSON, the playbook, suggestions, and a rename and a split kept on the next mining.

use std::process::Command;

use tutti_conversations::synth::{self, Shape};

fn tutti(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tutti"))
        .arg("conversations")
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .expect("tutti runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn import_mine_playbook_suggest_and_rename() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let shape = Shape { conversations: 1_200, turns: 10, seed: 11, start: 1_790_000_000_000, weeks: 4, noise: 0 };
    let (conversations, _) = synth::generate(&shape);
    let mut lines: String = conversations.iter().map(|c| serde_json::to_string(c).unwrap() + "\n").collect::<String>();
    lines.push_str("{\"id\": \"c-bad\", \"outcome\": \"maybe\", \"turns\": [{\"role\": \"rep\", \"text\": \"hi\"}]}\n");
    let file = dir.path().join("calls.jsonl");
    std::fs::write(&file, &lines).unwrap();

    let (ok, out, err) = tutti(&data, &["import", file.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("conversations: 1200 new, 0 changed, 0 unchanged"), "{out}");
    assert!(out.contains("line 1201 (c-bad): `outcome` \"maybe\" is not one of won, lost, open"), "{out}");
    let (ok, out, _) = tutti(&data, &["import", file.to_str().unwrap()]);
    assert!(ok && out.contains("conversations: 0 new, 0 changed, 1200 unchanged"), "{out}");

    let vtt = dir.path().join("call-77.vtt");
    std::fs::write(&vtt, "WEBVTT\n\n00:00:01.000 --> 00:00:03.000\n<v Agent>Hello, this is Sam.\n\n00:00:04.000 --> 00:00:06.000\n<v Customer>Does it integrate with Salesforce?\n").unwrap();
    let (ok, out, err) =
        tutti(&data, &["import", vtt.to_str().unwrap(), "--outcome", "won", "--customer", "email=lee@example.com"]);
    assert!(ok && out.contains("conversations: 1 new"), "{out}{err}");
    let binary = dir.path().join("noise.srt");
    std::fs::write(&binary, [0u8, 159, 146, 150, 0, 1, 2]).unwrap();
    let (ok, out, _) = tutti(&data, &["import", binary.to_str().unwrap()]);
    assert!(ok && out.contains("file (noise): not text: the file holds NUL bytes"), "{out}");

    let (ok, out, err) = tutti(&data, &["topics", "--format", "json"]);
    assert!(ok, "{err}");
    let topics: serde_json::Value = serde_json::from_str(&out).unwrap();
    let topics = topics.as_array().unwrap();
    assert!(topics.len() >= 11, "{out}");
    for key in ["id", "label", "label_en", "kind", "conversations", "turns", "win_rate", "trend", "examples"] {
        assert!(topics.iter().all(|t| t.get(key).is_some()), "{key} in every topic");
    }
    let integration =
        topics.iter().find(|t| t["label"].as_str().unwrap().contains("ntegrat")).expect("the integration topic");
    assert_eq!(integration["kind"], "question");
    let price =
        topics.iter().find(|t| t["language"] == "vi" && t["taxonomy"] == "price").expect("the Vietnamese price topic");
    let price_id = price["id"].as_str().unwrap();
    assert_eq!(price["kind"], "objection");
    let trend = price["trend"].as_array().unwrap();
    assert_eq!(trend.len(), 5, "four weeks from a Thursday touch five weeks, every one shown");
    let per_week: u64 = trend.iter().map(|w| w["conversations"].as_u64().unwrap()).sum();
    assert_eq!(per_week, price["conversations"].as_u64().unwrap());

    let playbook = dir.path().join("playbook.html");
    let (ok, _, err) = tutti(&data, &["scripts", "--format", "html", "--out", playbook.to_str().unwrap()]);
    assert!(ok, "{err}");
    let html = std::fs::read_to_string(&playbook).unwrap();
    assert!(html.contains("<span class=\"wins\">wins</span>") && html.contains("gói năm"), "{html}");
    let (ok, out, _) = tutti(&data, &["scripts", "--topic", price_id, "--format", "markdown"]);
    assert!(ok && out.contains("**wins**") && out.lines().filter(|l| l.starts_with("## ")).count() == 1, "{out}");
    let (ok, _, err) = tutti(&data, &["scripts", "--topic", "t-nothing"]);
    assert!(!ok && err.contains("no topic \"t-nothing\""), "{err}");

    let (ok, out, _) = tutti(&data, &["suggest", "Giá bên em đắt quá, để anh suy nghĩ thêm", "--format", "json"]);
    assert!(ok, "{out}");
    let suggestions: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(suggestions[0]["topic"]["id"], price_id, "{out}");
    assert_eq!(suggestions[0]["replies"][0]["winner"], true, "{out}");

    let (ok, out, _) = tutti(&data, &["rename", price_id, "--label", "Giá cao", "--label-en", "Price too high"]);
    assert!(ok, "{out}");
    let (ok, out, _) = tutti(&data, &["topics"]);
    assert!(ok && out.contains("Giá cao (Price too high)"), "{out}");
    let (ok, out, _) = tutti(&data, &["split", price_id, "ngân sách"]);
    assert!(ok, "{out}");
    let (ok, out, _) = tutti(&data, &["topics"]);
    assert!(ok && out.contains("Giá cao · ngân sách (Price too high · ngân sách)"), "{out}");
}
