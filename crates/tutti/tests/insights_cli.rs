//! `tutti insights`: the real binary on a temporary data directory.

use std::process::Command;

fn tutti(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tutti"))
        .arg("insights")
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

const META: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tutti-insights/tests/fixtures/meta_ads_manager.csv");

#[test]
fn import_twice_changes_nothing_the_second_time_and_says_why_rows_were_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = tutti(dir.path(), &["import", META]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("Meta layout"), "{out}");
    assert!(out.contains("performance rows: 3 new, 0 changed, 0 unchanged"), "{out}");
    assert!(out.contains("creatives: 2 new, 0 changed, 0 unchanged; 2 tagged"), "{out}");
    assert!(out.contains("2 row(s) rejected"), "{out}");
    assert!(out.contains("line 5: impressions: `abc` is not a whole number"), "{out}");
    let (ok, out, _) = tutti(dir.path(), &["import", META]);
    assert!(ok);
    assert!(out.contains("performance rows: 0 new, 0 changed, 3 unchanged"), "{out}");
    assert!(out.contains("creatives: 0 new, 0 changed, 2 unchanged; 0 tagged"), "{out}");
}

#[test]
fn a_file_that_is_no_export_fails_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.csv");
    std::fs::write(&file, "a,b\n1,2\n").unwrap();
    let (ok, _, err) = tutti(dir.path(), &["import", file.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("no header row found"), "{err}");
}

#[test]
fn demo_then_report_as_table_and_json_with_a_manual_tag_kept() {
    let dir = tempfile::tempdir().unwrap();
    assert!(tutti(dir.path(), &["demo"]).0);
    let (ok, table, err) = tutti(dir.path(), &["creatives"]);
    assert!(ok, "{err}");
    assert!(table.contains("== facebook =="), "{table}");
    assert!(table.contains("creatives tagged emotional had a click-through rate likely higher"), "{table}");
    let (ok, json, _) = tutti(dir.path(), &["creatives", "--format", "json", "--from", "2026-03-10"]);
    assert!(ok);
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["from"], "2026-03-10");
    assert_eq!(report["channels"].as_array().unwrap().len(), 3);
    // A manual tag wins and survives re-tagging; the tagger's tags on the same creative are redone.
    assert!(tutti(dir.path(), &["import", META]).0);
    let id = "120210000000001";
    assert!(tutti(dir.path(), &["set-tag", id, "purpose", "educational"]).0);
    assert!(tutti(dir.path(), &["tag", "--all"]).0);
    {
        use tutti_store::CreativeStore;
        let store = tutti_store::sqlite::SqliteCreativeStore::open(&dir.path().join("creatives.db")).unwrap();
        let tag = store.creative(id).unwrap().unwrap().tags["purpose"].clone();
        assert_eq!((tag.value.as_str(), tag.source), ("educational", tutti_core::creative::TagSource::Manual));
        let tone = store.creative(id).unwrap().unwrap().tags["tone"].clone();
        assert_eq!(tone.source, tutti_core::creative::TagSource::Local);
        assert!(tone.why.unwrap().starts_with("local classifier"));
    }
    let (ok, _, err) = tutti(dir.path(), &["set-tag", "no-such", "tone", "emotional"]);
    assert!(!ok && err.contains("no creative `no-such`"), "{err}");
}

#[test]
fn the_tagger_evaluation_prints_accuracy_per_language() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = tutti(dir.path(), &["evaluate-tagger"]);
    assert!(ok, "{err}");
    for needle in ["tone", "purpose", "structure", "offer", "language", "vi", "zh", "en"] {
        assert!(out.contains(needle), "{needle} missing from:\n{out}");
    }
}

#[test]
fn a_taxonomy_of_ones_own_is_used_and_a_broken_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    // Start from the default, add a trait with cues only.
    let (ok, default, _) = tutti(dir.path(), &["taxonomy"]);
    assert!(ok);
    let mut taxonomy: serde_json::Value = serde_json::from_str(&default).unwrap();
    assert!(taxonomy["traits"].as_array().unwrap().iter().any(|t| t["name"] == "tone"));
    taxonomy["traits"].as_array_mut().unwrap().push(serde_json::json!({
        "name": "season", "values": ["tet", "mid_autumn", "none"],
        "cues": {"tet": ["tết"], "mid_autumn": ["中秋", "trung thu", "mid-autumn"]}
    }));
    let file = dir.path().join("taxonomy.json");
    std::fs::write(&file, taxonomy.to_string()).unwrap();
    let (ok, out, err) = tutti(dir.path(), &["import", META, "--taxonomy", file.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    use tutti_store::CreativeStore;
    let store = tutti_store::sqlite::SqliteCreativeStore::open(&dir.path().join("creatives.db")).unwrap();
    let mooncake = store.creative("120210000000002").unwrap().unwrap();
    assert_eq!(mooncake.tags["season"].value, "mid_autumn", "{:?}", mooncake.tags);
    assert!(mooncake.tags.contains_key("tone"));
    std::fs::write(&file, r#"{"traits": [{"name": "tone", "values": ["only-one"]}]}"#).unwrap();
    let (ok, _, err) = tutti(dir.path(), &["tag", "--taxonomy", file.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("trait `tone` needs at least two values"), "{err}");
}
