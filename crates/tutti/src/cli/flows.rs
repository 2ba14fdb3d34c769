//! `tutti flows`: check flow, segment and policy files, or dry-run them over events.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;
use serde_json::Value;

#[derive(Subcommand)]
pub(crate) enum FlowsCommand {
    /// Check definition files (or directories of them): every problem with file, line and a hint.
    Validate {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Play events through the definitions on a simulated clock (event timestamps drive time) and print every
    /// decision: actions with their rendered payloads, waits, branches, skips and their reasons.
    Test {
        /// Flow, segment and policy files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Segment events, one JSON object per line, each with a `timestamp`.
        #[arg(long)]
        events: PathBuf,
        /// Profiles to start from, one JSON object per line (`userId`, `traits`, `context.timezone`).
        #[arg(long)]
        profiles: Option<PathBuf>,
        /// `text`, or `json` for one JSON object per decision.
        #[arg(long, default_value = "text", value_parser = ["text", "json"])]
        format: String,
        /// How long the clock runs on after the last event, so waits play out.
        #[arg(long, default_value = "30d")]
        run_on: String,
    },
}

pub(crate) fn flows(command: FlowsCommand) -> anyhow::Result<()> {
    use tutti_engine::definitions;
    let paths = match &command {
        FlowsCommand::Validate { paths } | FlowsCommand::Test { paths, .. } => paths,
    };
    let (defs, problems) = definitions::load(paths);
    for problem in &problems {
        eprintln!("{problem}");
    }
    if !problems.is_empty() {
        bail!("{} problem(s) found", problems.len());
    }
    match command {
        FlowsCommand::Validate { .. } => {
            let flows = defs.flows.len();
            say!("ok: {flows} flow(s), {} segment(s), {} policy(ies)", defs.segments.len(), defs.policies.len());
            Ok(())
        }
        FlowsCommand::Test { events, profiles, format, run_on, .. } => {
            let run_on = tutti_core::time::parse_duration(&run_on).map_err(anyhow::Error::msg).context("--run-on")?;
            let name = events.display().to_string();
            let text = std::fs::read_to_string(&events).with_context(|| format!("reading {name}"))?;
            let events = definitions::read_events(&name, &text)?;
            let first = events.iter().map(|e| e.timestamp).min().unwrap_or(0);
            let profiles = match profiles {
                Some(path) => {
                    let name = path.display().to_string();
                    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {name}"))?;
                    definitions::read_profiles(&name, &text, first)?
                }
                None => Vec::new(),
            };
            let played = events.len();
            let decisions = definitions::dry_run(&defs, profiles, events, run_on);
            if decisions.is_empty() {
                // Silence would look like success; in JSON, standard output stays an empty list of lines.
                eprintln!(
                    "nothing happened: no flow was triggered by the {played} event(s) played, and no segment changed"
                );
                return Ok(());
            }
            let mut out = std::io::stdout().lock();
            for decision in &decisions {
                let line = if format == "json" { decision_json(decision) } else { decision_text(decision) };
                writeln!(out, "{line}")?;
            }
            Ok(())
        }
    }
}

/// One decision as a JSON object, with its time as RFC 3339.
pub(crate) fn decision_json(decision: &tutti_flows::Decision) -> String {
    let mut value = serde_json::to_value(decision).expect("decisions serialise");
    if let Some(object) = value.as_object_mut() {
        object.insert("time".into(), tutti_core::time::format_timestamp(decision.at).into());
        for key in ["until"] {
            if let Some(ms) = object.get(key).and_then(Value::as_i64) {
                object.insert(key.into(), tutti_core::time::format_timestamp(ms).into());
            }
        }
        object.remove("at");
    }
    value.to_string()
}

/// One decision as a line of text.
pub(crate) fn decision_text(decision: &tutti_flows::Decision) -> String {
    use tutti_core::time::format_timestamp as ts;
    use tutti_flows::DecisionKind as K;
    let whose = match (&decision.flow, &decision.run, &decision.step) {
        (Some(f), Some(r), Some(s)) => format!("{f} run {r} step {s}"),
        (Some(f), Some(r), None) => format!("{f} run {r}"),
        (Some(f), None, _) => f.clone(),
        _ => "-".to_owned(),
    };
    let what = match &decision.kind {
        K::Entered { trigger } => format!("entered on {trigger}"),
        K::NotEntered { reason } => format!("not entered: {reason}"),
        K::Action { connector, operation, key, channel, category, payload } => {
            format!("ACTION {connector}.{operation} [{channel}/{category}] key {key} {payload}")
        }
        K::Skipped { reason } => format!("SKIPPED {reason}"),
        K::Deferred { until, reason } => format!("DEFERRED until {}: {reason}", ts(*until)),
        K::Waiting { until, reason } => format!("waiting until {}: {reason}", ts(*until)),
        K::Resumed { reason } => format!("resumed: {reason}"),
        K::Branch { arm, reason } => format!("branch arm {arm}: {reason}"),
        K::Split { arm, holdout } => format!("split arm {arm}{}", if *holdout { " (holdout)" } else { "" }),
        K::ProfileUpdated { traits } => format!("profile updated {traits}"),
        K::Result { key, copy: None } => format!("result of {key}"),
        K::Result { key, copy: Some(copy) } => match copy["body"].as_str() {
            Some(body) => format!(
                "COPY of {key}, written by {}{}:\n    subject: {}\n    {}",
                copy["by"].as_str().unwrap_or("?"),
                if copy["passed"] == false { " (did not pass review)" } else { "" },
                copy["subject"].as_str().unwrap_or("-"),
                body.lines()
                    .map(|l| if l.is_empty() { String::new() } else { format!("    {l}") })
                    .collect::<Vec<_>>()
                    .join("\n")
                    .trim_start()
            ),
            None => format!("result of {key}: no copy ({})", copy["error"].as_str().unwrap_or("no answer")),
        },
        K::Exited { reason } => format!("EXITED {reason}"),
        K::Failed { reason } => format!("FAILED {reason}"),
        K::Completed => "completed".to_owned(),
        K::Goal { event } => format!("GOAL {event}"),
        K::SegmentEntered { segment } => format!("entered segment {segment}"),
        K::SegmentLeft { segment } => format!("left segment {segment}"),
        K::Suppressed { policy, categories, until } => {
            format!("SUPPRESSED {} until {} by policy {policy}", categories.join(", "), ts(*until))
        }
        K::Error { reason } => format!("ERROR {reason}"),
        K::ApprovalRequested { reason, until, escalated_to } => match escalated_to {
            Some(to) => format!("APPROVAL escalated to {to} until {}: {reason}", ts(*until)),
            None => format!("APPROVAL needed by {}: {reason}", ts(*until)),
        },
        K::Approved { by, edited } => format!("APPROVED by {by}{}", if *edited { " (edited)" } else { "" }),
        K::Rejected { by, reason } => format!("REJECTED by {by}: {reason}"),
        K::ApprovalExpired { fallback } => format!("APPROVAL EXPIRED: {fallback}"),
    };
    format!("{}  profile {}  {whose}  {what}", ts(decision.at), decision.profile)
}
