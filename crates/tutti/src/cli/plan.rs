//! `tutti plan`: the copilot from the command line. `tutti plan "goal"` proposes a plan and prints it (what it
//! assumed, the audience now, the steps, the budget split and cost, the sample messages with their review, the
//! YAML); `--change P "words"` makes the next version, `--approve P` and `--reject P` decide it (as the person
//! whose token is used), `--show P` and `--list` read them. `--format json` prints what the API answers.

use clap::Args;
use serde_json::{Value, json};

use crate::cli::analytics::Format;
use crate::cli::client::{Client, print};

#[derive(Args)]
pub(crate) struct PlanArgs {
    /// The goal, in English, Vietnamese or Chinese ("Bring back lapsed VIP customers in Hanoi, budget 50 million
    /// VND, email and Zalo, two weeks"); with `--change`, the change in words.
    text: Option<String>,
    /// Make the next version of this plan with the change in TEXT.
    #[arg(long, value_name = "PLAN")]
    change: Option<String>,
    /// Show this plan's newest version.
    #[arg(long, value_name = "PLAN", conflicts_with_all = ["change", "approve", "reject", "list"])]
    show: Option<String>,
    /// Approve this plan: its segment and flow are created and start.
    #[arg(long, value_name = "PLAN", conflicts_with_all = ["change", "reject", "list"])]
    approve: Option<String>,
    /// Reject this plan: nothing is created.
    #[arg(long, value_name = "PLAN", conflicts_with_all = ["change", "list"])]
    reject: Option<String>,
    /// Why, when deciding.
    #[arg(long, default_value = "")]
    reason: String,
    /// The plans, newest first.
    #[arg(long)]
    list: bool,
    /// text: tables; json: the whole plan as the API answers it.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

pub(crate) fn plan(args: PlanArgs, client: &Client) -> anyhow::Result<()> {
    let answer = if args.list {
        client.send("GET", "/api/v1/plans", None)?
    } else if let Some(id) = &args.show {
        client.send("GET", &format!("/api/v1/plans/{id}"), None)?
    } else if let Some(id) = args.approve.as_ref().or(args.reject.as_ref()) {
        let verdict = if args.approve.is_some() { "approve" } else { "reject" };
        client.send("POST", &format!("/api/v1/plans/{id}/{verdict}"), Some(&json!({"reason": args.reason})))?
    } else if let Some(id) = &args.change {
        let text =
            args.text.as_deref().ok_or_else(|| anyhow::anyhow!("say the change: tutti plan --change P \"...\""))?;
        client.send("POST", &format!("/api/v1/plans/{id}/versions"), Some(&json!({"change": text})))?
    } else {
        let goal = args.text.as_deref().ok_or_else(|| anyhow::anyhow!("say the goal: tutti plan \"...\""))?;
        client.send("POST", "/api/v1/plans", Some(&json!({"goal": goal})))?
    };
    if let Format::Json = args.format {
        return print(&answer);
    }
    if let Some(plans) = answer["plans"].as_array() {
        say!("plan\tversion\tstatus\tgoal");
        for p in plans {
            say!("{}\t{}\t{}\t{}", text(&p["id"]), p["version"], text(&p["status"]), text(&p["goal"]));
        }
        return Ok(());
    }
    show(&answer)
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn money(v: &Value) -> String {
    if v.is_null() {
        return "-".into();
    }
    tutti_core::money::Money::new(v["micros"].as_i64().unwrap_or(0), v["currency"].as_str().unwrap_or("")).to_string()
}

fn show(p: &Value) -> anyhow::Result<()> {
    say!("plan {} version {} ({})", text(&p["id"]), p["version"], text(&p["status"]));
    say!("goal: {}", text(&p["goal"]));
    if let Some(created) = p["created"].as_object() {
        say!(
            "created: segment {} v{}, flow {} v{}",
            text(&created["segment"]["id"]),
            created["segment"]["version"],
            text(&created["flow"]["id"]),
            created["flow"]["version"]
        );
    }
    say!("");
    say!("assumed:");
    for a in p["assumptions"].as_array().into_iter().flatten() {
        say!("  · {}", text(a));
    }
    let audience = &p["audience"];
    say!("");
    say!("audience now: {} people", audience["count"]);
    for r in audience["reach"].as_array().into_iter().flatten() {
        say!("  reachable on {}: {}", text(&r["channel"]), r["count"]);
    }
    for s in audience["sample"].as_array().into_iter().flatten() {
        say!("  e.g. {} {} {}", text(&s["profile"]), text(&s["name"]), text(&s["city"]));
    }
    say!("");
    say!("budget: {}; estimated cost: {}", money(&p["budget"]), money(&p["cost_estimate"]));
    say!("channel\tmessages\tprice\tcost");
    for c in p["budget_split"].as_array().into_iter().flatten() {
        say!("{}\t{}\t{}\t{}", text(&c["channel"]), c["messages"], money(&c["price"]), money(&c["cost"]));
    }
    say!("");
    say!("steps:");
    for s in p["steps"].as_array().into_iter().flatten() {
        let what = match s["type"].as_str().unwrap_or("") {
            "content" => format!("day {}: {} — {}", s["day"], text(&s["channel"]), text(&s["prompt"])),
            "holdout" => format!("holdout {}%", (s["share"].as_f64().unwrap_or(0.0) * 100.0).round()),
            "schedule" => format!("{} days, quiet hours {}", s["days"], text(&s["quiet_hours"])),
            "goal" => format!("goal: {} within {} days", text(&s["event"]), s["within_days"]),
            "exit" => format!("exit on {}", text(&s["when"])),
            "segment" => format!("segment {}", text(&s["id"])),
            "budget_split" => "across the channels as above".to_owned(),
            other => other.to_owned(),
        };
        say!("  {} {what}", text(&s["type"]));
    }
    say!("");
    say!("sample messages:");
    for m in p["messages"].as_array().into_iter().flatten() {
        let verdict = if m["review"]["passed"] == true { "passes review" } else { "fails review" };
        say!("  [{} · {} · {verdict}]", text(&m["channel"]), text(&m["language"]));
        if !m["subject"].is_null() {
            say!("    {}", text(&m["subject"]));
        }
        say!("    {}", text(&m["body"]).replace('\n', "\n    "));
    }
    if let Some(changes) = p["changes"].as_object() {
        say!("");
        say!("changed from version {}:", changes["from_version"]);
        for line in text(&changes["segment"]).lines().chain(text(&changes["flow"]).lines()) {
            if line.starts_with('+') || line.starts_with('-') {
                say!("  {line}");
            }
        }
    }
    say!("");
    say!("{}", text(&p["audience"]["segment_yaml"]));
    say!("{}", text(&p["flow_yaml"]));
    Ok(())
}
