//! `cargo xtask copy`: the copy the AI layer writes and checks, measured in one place. It prints the review
//! gate's recall and false positives per language, the creative tagger's accuracy per trait and language, the
//! `generate` step's first-pass rate over the customer suite (`crates/tutti-ai/data/generate/customers.jsonl`,
//! 30 customers per language), and every message it wrote with the context that produced it, for a person to
//! read. No model is involved: this is what Tutti sends with none configured.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};
use tutti_ai::generate::{self, Generated, GenerationPolicy, Stats};
use tutti_ai::provider::Task;
use tutti_ai::provider::local::Local;
use tutti_ai::provider::route::Router;
use tutti_ai::review::{Gate, measure, read_labelled};
use tutti_ai::tagger::{LocalTagger, evaluate, read_examples};

const CUSTOMERS: &str = include_str!("../../crates/tutti-ai/data/generate/customers.jsonl");
const GATE_SET: &str = include_str!("../../crates/tutti-ai/data/review/labelled.jsonl");
const GATE_HELD_OUT: &str = include_str!("../../crates/tutti-ai/data/review/heldout.jsonl");
const TAGGER_SET: &str = include_str!("../../crates/tutti-ai/data/creatives/eval.jsonl");
const TAGGER_HELD_OUT: &str = include_str!("../../crates/tutti-ai/data/creatives/heldout.jsonl");

/// The suite's "now": 1 December 2026, 09:00 UTC. Days in the suite (last order, last seen, history) count
/// back from it, so the output is the same on every run.
const NOW: i64 = 1_796_115_600_000;
const DAY: i64 = 86_400_000;

#[derive(clap::Args)]
pub(crate) struct CopyArgs {
    /// Print only the measures, not the messages.
    #[arg(long)]
    pub(crate) quiet: bool,
    /// A `tutti.toml` whose `[connectors.ai]` routes `tag` to a model: its tags on the held-out creatives are
    /// measured beside the local tagger's.
    #[arg(long)]
    pub(crate) config: Option<std::path::PathBuf>,
}

pub(crate) fn copy(args: CopyArgs) -> anyhow::Result<()> {
    println!("# Tutti copy report\n");
    gate_report()?;
    tagger_report()?;
    model_tagger_report(args.config.as_deref())?;
    let written = write_suite()?;
    generation_report(&written);
    if !args.quiet {
        println!("\n## The messages\n");
        for (customer, g) in &written {
            print_message(customer, g);
        }
    }
    Ok(())
}

fn gate_report() -> anyhow::Result<()> {
    let brand = include_str!("../../crates/tutti-ai/data/review/acme.yaml");
    // The company's own contact details, which the set's clean messages quote, as the gate's test allows them.
    let own = ["+1 415 555 0100", "400-820-8820", "help@acme.example"].map(str::to_owned);
    let gate = Gate::from_sources(&[("acme.yaml".into(), brand.into())])?.allow_contacts(own);
    let held_out = read_labelled(GATE_HELD_OUT).map_err(|e| anyhow::anyhow!(e))?;
    let development = read_labelled(GATE_SET).map_err(|e| anyhow::anyhow!(e))?;
    // The held-out set's batches apart: each was written before the changes that followed it, so only the
    // newest is one the classifier was never tuned on (docs/ai.md says which changes each one saw).
    let batch = |prefix: &str| held_out.iter().filter(|m| m.id.starts_with(prefix)).cloned().collect::<Vec<_>>();
    for (title, path, set) in [
        ("the held-out set, all batches", "heldout.jsonl", held_out.clone()),
        ("the held-out set, first batch", "heldout.jsonl, ids h-", batch("h-")),
        ("the held-out set, second batch", "heldout.jsonl, ids h2-", batch("h2-")),
        ("the held-out set, third batch", "heldout.jsonl, ids h3-", batch("h3-")),
        ("the held-out set, fourth batch", "heldout.jsonl, ids h4-", batch("h4-")),
        ("the held-out set, fifth batch", "heldout.jsonl, ids h5-", batch("h5-")),
        ("the development set", "labelled.jsonl", development),
    ] {
        let measured = measure(&gate, &set)?;
        println!("## Review gate: {title} ({} messages, crates/tutti-ai/data/review/{path})\n", set.len());
        println!("| language | violating | caught | recall | clean | false positives |");
        println!("|---|---|---|---|---|---|");
        for (lang, m) in &measured {
            println!(
                "| {lang} | {} | {} | {:.1}% | {} | {:.1}% |",
                m.violating,
                m.caught,
                100.0 * m.recall(),
                m.clean,
                100.0 * m.false_positive_rate()
            );
        }
        println!();
        for (lang, m) in &measured {
            for (id, what) in &m.misses {
                println!("- {lang} {id}: {what}");
            }
        }
        println!();
    }
    Ok(())
}

fn tagger_report() -> anyhow::Result<()> {
    let tagger = LocalTagger::new_default();
    for (title, path, source) in [
        ("the held-out set in another style", "heldout.jsonl", TAGGER_HELD_OUT),
        ("the evaluation set", "eval.jsonl", TAGGER_SET),
    ] {
        let set = read_examples(source)?;
        let result = evaluate(&tagger, &set);
        println!("## Creative tagger: {title} ({} creatives, crates/tutti-ai/data/creatives/{path})\n", set.len());
        println!("| trait | all | vi | zh | en |");
        println!("|---|---|---|---|---|");
        for name in result.by_trait.keys() {
            let cell =
                |l: Option<&str>| result.accuracy(name, l).map_or("-".to_owned(), |a| format!("{:.1}%", 100.0 * a));
            println!(
                "| {name} | {} | {} | {} | {} |",
                cell(None),
                cell(Some("vi")),
                cell(Some("zh")),
                cell(Some("en"))
            );
        }
        println!();
    }
    Ok(())
}

/// The held-out creatives tagged by the model `--config` routes `tag` to, side by side with the local tagger.
fn model_tagger_report(config: Option<&std::path::Path>) -> anyhow::Result<()> {
    let Some(config) = config else {
        println!("(no --config: tagging by a model is not measured)\n");
        return Ok(());
    };
    let model = crate::model::ModelConnector::from_config(config)?;
    let set = read_examples(TAGGER_HELD_OUT)?;
    let (mut decisions, mut fell_back) = (Vec::new(), 0);
    for (i, e) in set.iter().enumerate() {
        let payload = json!({"headline": e.headline, "body": e.body, "call_to_action": e.call_to_action});
        let key = format!("copy-report:tag:{i}");
        let answer = model.ask("copy-report", "tag", &key, &payload, NOW)?;
        fell_back += usize::from(answer["method"] == "local");
        decisions
            .push(serde_json::from_value::<Vec<tutti_ai::TraitDecision>>(answer["tags"].clone()).unwrap_or_default());
    }
    let model = tutti_ai::tagger::evaluate_decisions(&set, &decisions);
    let local = evaluate(&LocalTagger::new_default(), &set);
    println!(
        "## Creative tagger: a model beside the local tagger ({} creatives; {fell_back} answered locally)\n",
        set.len()
    );
    println!("| trait | model, all | local, all | model vi / zh / en | local vi / zh / en |");
    println!("|---|---|---|---|---|");
    for name in ["tone", "purpose", "structure", "offer"] {
        let cell = |r: &tutti_ai::tagger::Evaluation, l: Option<&str>| {
            r.accuracy(name, l).map_or("-".to_owned(), |a| format!("{:.1}%", 100.0 * a))
        };
        let per =
            |r: &tutti_ai::tagger::Evaluation| [Some("vi"), Some("zh"), Some("en")].map(|l| cell(r, l)).join(" / ");
        println!("| {name} | {} | {} | {} | {} |", cell(&model, None), cell(&local, None), per(&model), per(&local));
    }
    println!();
    Ok(())
}

/// The `ai` connector's payload for one customer of the suite.
fn input_of(customer: &Value) -> Value {
    let mut traits = customer["traits"].clone();
    if let Some(days) = customer["last_order_days"].as_i64() {
        traits["last_order_at"] = json!(tutti_core::time::format_timestamp(NOW - days * DAY));
    }
    let last_seen = customer["last_seen_days"].as_i64().unwrap_or(1);
    let history: Vec<Value> = customer["history"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| {
            json!({"type": "track", "event": h["event"], "properties": h["properties"],
                   "timestamp": tutti_core::time::format_timestamp(NOW - h["days_ago"].as_i64().unwrap_or(0) * DAY)})
        })
        .collect();
    let mut event = customer["event"].clone();
    event["type"] = json!("track");
    event["timestamp"] = json!(tutti_core::time::format_timestamp(NOW));
    json!({
        "request": customer["request"], "category": customer["category"], "event": event, "history": history,
        "profile": {"id": customer["id"], "traits": traits, "identities": [],
                    "last_seen": tutti_core::time::format_timestamp(NOW - last_seen * DAY)},
        "run": {"id": customer["id"], "flow": "copy-suite", "version": 1, "step": "copy", "steps": {}},
    })
}

fn write_suite() -> anyhow::Result<Vec<(Value, Generated)>> {
    let router = Router::local_only(Local::new().with(Task::Generate, Arc::new(generate::local_skill)));
    let (gate, stats, policy) = (Gate::builtin(), Stats::default(), GenerationPolicy::default());
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let mut written = Vec::new();
    for (i, line) in CUSTOMERS.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let customer: Value =
            serde_json::from_str(line).map_err(|e| anyhow::anyhow!("customers.jsonl:{}: {e}", i + 1))?;
        let input = input_of(&customer);
        let g = runtime
            .block_on(generate::generate_with(&input, &router, &gate, &stats, &policy, NOW))
            .map_err(|e| anyhow::anyhow!("{}: {e}", customer["id"]))?;
        written.push((customer, g));
    }
    Ok(written)
}

fn generation_report(written: &[(Value, Generated)]) {
    println!(
        "## Generation: the customer suite ({} customers, crates/tutti-ai/data/generate/customers.jsonl)\n",
        written.len()
    );
    println!("| language | messages | first pass | passed after revision | held for a person |");
    println!("|---|---|---|---|---|");
    let mut by_lang: BTreeMap<String, (usize, usize, usize, usize)> = BTreeMap::new();
    for (_, g) in written {
        let c = by_lang.entry(g.language.code().to_owned()).or_default();
        c.0 += 1;
        c.1 += usize::from(g.first_pass);
        c.2 += usize::from(g.passed && !g.first_pass);
        c.3 += usize::from(!g.passed);
    }
    let total = by_lang.values().fold((0, 0, 0, 0), |a, c| (a.0 + c.0, a.1 + c.1, a.2 + c.2, a.3 + c.3));
    for (lang, c) in by_lang.iter().map(|(l, c)| (l.as_str(), *c)).chain([("all", total)]) {
        let share = |n: usize| format!("{n} ({:.0}%)", 100.0 * n as f64 / c.0.max(1) as f64);
        println!("| {lang} | {} | {} | {} | {} |", c.0, share(c.1), share(c.2), share(c.3));
    }
}

fn print_message(customer: &Value, g: &Generated) {
    let ctx = &g.context;
    let levels: Vec<String> = ctx
        .levels
        .iter()
        .map(|l| serde_json::to_value(l).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default())
        .collect();
    let kind = serde_json::to_value(ctx.kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    println!(
        "### {} ({}, {})",
        customer["id"].as_str().unwrap_or("?"),
        g.channel,
        customer["category"].as_str().unwrap_or("-")
    );
    println!("- customer: {}", customer["traits"]);
    let history: Vec<String> = customer["history"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| format!("{} {} days ago {}", h["event"].as_str().unwrap_or("?"), h["days_ago"], h["properties"]))
        .collect();
    println!(
        "- event: {} {}; prompt: {:?}; brief: {}{}",
        customer["event"]["event"].as_str().unwrap_or("?"),
        customer["event"]["properties"],
        customer["request"]["prompt"].as_str().unwrap_or(""),
        customer["request"]["brief"],
        if history.is_empty() { String::new() } else { format!("; history: {}", history.join(", ")) }
    );
    println!("- read as: {kind}, addressed as \"{}\", levels used: {}", ctx.address, levels.join(", "));
    let verdict = match (g.passed, g.first_pass) {
        (true, true) => "passed review as written".to_owned(),
        (true, false) => format!("passed after {} revision(s)", g.revisions),
        (false, _) => {
            let rules: Vec<&str> = g.violations.iter().map(|v| v.rule.as_str()).collect();
            format!("HELD for a person: {}", rules.join(", "))
        }
    };
    println!("- review: {verdict}\n");
    if let Some(subject) = &g.subject {
        println!("> **{subject}**\n>");
    }
    for line in g.body.lines() {
        println!("> {line}");
    }
    println!();
}
