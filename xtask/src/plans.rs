//! `cargo xtask plans`: the copilot's goal suite (`crates/tutti-copilot/data/goals.jsonl`): the share of goals the
//! local planner plans correctly, and, with `--config` naming a `tutti.toml` whose `[connectors.ai]` routes `plan`
//! to a model, pass^k: the share of goals the model's plans get right in every one of `--k` runs (a goal passes
//! only if all k do). The model reads each goal through the copilot's typed tool, as the server does.

use std::path::PathBuf;

use serde_json::json;
use tutti_copilot::suite::{GOALS, cases, check, measure};
use tutti_copilot::{Context as PlanContext, plan_reading, tool};

#[derive(clap::Args)]
pub(crate) struct PlansArgs {
    /// A tutti.toml whose [connectors.ai] routes `plan` to a model (secrets from the environment).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Runs per goal with the model: a goal counts for pass^k only if every run plans it right.
    #[arg(long, default_value_t = 3)]
    k: usize,
    /// Print every goal's outcome, not only the misses.
    #[arg(long)]
    verbose: bool,
}

pub(crate) fn plans(args: PlansArgs) -> anyhow::Result<()> {
    let cases = cases(GOALS).map_err(anyhow::Error::msg)?;
    let cx = PlanContext::standard();
    let local = measure(&cases, &cx);
    let passed = local.iter().filter(|o| o.passed).count();
    println!(
        "goal suite: {} goals (en {}, vi {}, zh {})",
        cases.len(),
        count(&cases, "en-"),
        count(&cases, "vi-"),
        count(&cases, "zh-")
    );
    for o in &local {
        if args.verbose || !o.passed {
            println!("  local {} {}: {}", o.id, if o.passed { "ok" } else { "MISS" }, o.why.join("; "));
        }
    }
    println!(
        "local planner: {passed}/{} planned correctly ({:.1}%)",
        cases.len(),
        100.0 * passed as f64 / cases.len() as f64
    );
    let Some(config) = args.config else {
        println!("(no --config: the model's pass^k is not measured)");
        return Ok(());
    };
    let model = crate::model::ModelConnector::from_config(&config)?;
    let payload_tool = json!({"name": tool::NAME, "description": tool::DESCRIPTION, "parameters": tool::parameters()});
    let (mut all_k, mut runs_ok, mut fell_back) = (0, 0, 0);
    for case in &cases {
        let mut every = true;
        for run in 0..args.k {
            let payload = json!({"goal": case.goal, "tool": payload_tool});
            let key = format!("suite:{}:{run}", case.id);
            let answer = model.ask("copilot-suite", "plan", &key, &payload, jiff::Timestamp::now().as_millisecond())?;
            let result = if answer["reading"].is_null() {
                fell_back += 1;
                Err(tutti_copilot::Refusal(format!("no reading: {}", answer["why"])))
            } else {
                match tool::reading(&answer["reading"], &case.goal) {
                    Ok(Some(r)) => plan_reading("suite", &case.goal, r, &cx),
                    Ok(None) => Err(tutti_copilot::planner::refuse(&case.goal)),
                    Err(e) => Err(tutti_copilot::Refusal(e)),
                }
            };
            let why = check(&result, &case.expect);
            if why.is_empty() {
                runs_ok += 1;
            } else {
                every = false;
            }
            if args.verbose || !why.is_empty() {
                println!(
                    "  model {} run {run} {}: {}",
                    case.id,
                    if why.is_empty() { "ok" } else { "MISS" },
                    why.join("; ")
                );
            }
        }
        all_k += usize::from(every);
    }
    let runs = cases.len() * args.k;
    println!(
        "model: {runs_ok}/{runs} runs correct ({:.1}%); {fell_back} runs had no usable reading",
        100.0 * runs_ok as f64 / runs as f64
    );
    println!(
        "model pass^{}: {all_k}/{} goals right in every run ({:.1}%)",
        args.k,
        cases.len(),
        100.0 * all_k as f64 / cases.len() as f64
    );
    Ok(())
}

fn count(cases: &[tutti_copilot::suite::Case], prefix: &str) -> usize {
    cases.iter().filter(|c| c.id.starts_with(prefix)).count()
}
