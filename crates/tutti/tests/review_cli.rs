//! `tutti review`: the real binary checks copy against the review gate's packs, with no server.

use std::io::Write;
use std::process::{Command, Stdio};

fn review(args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tutti"))
        .arg("review")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tutti runs");
    if let Some(text) = stdin {
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn failing_copy_exits_1_naming_rule_and_span_and_the_revision_passes() {
    let copy = "Quỹ Vàng: lợi nhuận đảm bảo 12%/năm. Mở tài khoản đầu tư ngay hôm nay!";
    let (code, out, err) = review(&["--packs", "general,finance", "--revise", copy], None);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("finance.guaranteed_returns body[10..27] «lợi nhuận đảm bảo»"), "{out}");
    assert!(out.contains("finance.risk_disclosure body[0..3] «Quỹ»"), "{out}");
    assert!(out.contains("revised (passes):"), "{out}");
    assert!(out.contains("Đầu tư có rủi ro") && !out.contains("  body: Quỹ Vàng: lợi nhuận"), "{out}");

    // Clean copy from standard input passes with exit 0; JSON output for scripts.
    let receipt = Some("Acme: đơn hàng #48213 đã được giao.\n");
    let (code, out, err) = review(&["--json", "--channel", "sms", "--category", "transactional", "-"], receipt);
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["passed"], true);
    assert_eq!(v["violations"].as_array().unwrap().len(), 0);
    // Without a category, a Vietnamese SMS is checked as advertising: it must open with QC.
    let (code, out, _) = review(&["--json", "--channel", "sms", "-"], receipt);
    assert_eq!(code, 1);
    assert!(out.contains("general.sms_vn_advertising_marker"), "{out}");
}

#[test]
fn pack_files_and_unknown_packs_are_reported_clearly() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("brand.yaml"), "pack: brand\nrules:\n  - id: a\n    kind: phrases\n    says: s\n")
        .unwrap();
    let d = dir.path().to_str().unwrap();
    let (code, _, err) = review(&["--dir", d, "--packs", "brand", "hi"], None);
    assert_ne!(code, 0);
    assert!(err.contains("brand.yaml:3:5") && err.contains("needs `phrases`, `patterns` or `meaning`"), "{err}");
    std::fs::write(
        dir.path().join("brand.yaml"),
        "pack: brand\nrules:\n  - id: cheap\n    kind: phrases\n    says: never say cheap\n    phrases: {en: [cheap], zh: [廉价]}\n",
    )
    .unwrap();
    let (code, out, _) = review(&["--dir", d, "--packs", "general,brand", "廉价机票"], None);
    assert_eq!(code, 1);
    assert!(out.contains("brand.cheap body[0..2] «廉价»: never say cheap"), "{out}");
    let missing = dir.path().join("missing");
    let (code, _, err) = review(&["--dir", missing.to_str().unwrap(), "hi"], None);
    assert_ne!(code, 0);
    assert!(err.contains("missing: cannot read the review directory"), "{err}");
    let (code, _, err) = review(&["--packs", "nope", "hi"], None);
    assert_ne!(code, 0);
    assert!(err.contains("no review pack `nope`; loaded: general, finance, health"), "{err}");
}
