//! `tutti ask`: a question answered from Tutti's own events; `tutti analytics`: the metrics layer, how far the
//! analytics tables have come, and making them again from the log (with a progress bar).

use std::io::Write;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};

use crate::cli::client::{Client, print};

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Format {
    Text,
    Json,
}

#[derive(Args)]
pub(crate) struct AskArgs {
    /// The question, in English, Vietnamese or Chinese ("which product sold best last month?").
    question: String,
    /// text: the answer, its table and what was assumed; json: the whole answer (query, SQL).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// The IANA time zone periods are read in (default: the server's `[analytics] time_zone`).
    #[arg(long)]
    time_zone: Option<String>,
    /// The instant the question is asked at (RFC 3339; default: now).
    #[arg(long)]
    now: Option<String>,
}

pub(crate) fn ask(args: AskArgs, client: &Client) -> anyhow::Result<()> {
    let body = json!({"question": args.question, "time_zone": args.time_zone, "now": args.now});
    let answer = client.send("POST", "/api/v1/questions", Some(&body))?;
    if let Format::Json = args.format {
        return print(&answer);
    }
    say!("{}", answer["answer"].as_str().unwrap_or(""));
    let columns: Vec<String> =
        answer["columns"].as_array().into_iter().flatten().map(|c| c.as_str().unwrap_or("").to_owned()).collect();
    let rows = answer["rows"].as_array().cloned().unwrap_or_default();
    if rows.len() > 1 || columns.len() > 1 {
        say!("");
        say!("{}", columns.join("\t"));
        for row in &rows {
            let cells: Vec<String> = row.as_array().into_iter().flatten().map(cell).collect();
            say!("{}", cells.join("\t"));
        }
    }
    for a in answer["assumptions"].as_array().into_iter().flatten() {
        say!("· {}", a.as_str().unwrap_or(""));
    }
    Ok(())
}

fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[derive(Subcommand)]
pub(crate) enum AnalyticsCommand {
    /// The metrics layer in force: measures, dimensions and grains (JSON).
    Metrics,
    /// How far the analytics tables have come behind the log.
    Status,
    /// A flow's report: per version, runs entered, goal conversion with its 95% interval, each split's arms
    /// against the control, and revenue within the attribution window.
    Flow {
        id: String,
        /// The attribution window (`7d`, `48h`); the goal's `within` when not given.
        #[arg(long)]
        window: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// A flow's messages day by day (the last 30 days): sent, delivered, failed, opened, clicked, and rates.
    Messages {
        flow: String,
        #[arg(long)]
        step: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Empty the analytics tables and make them again from the log, showing progress until done.
    Rebuild {
        /// Start it and return at once.
        #[arg(long)]
        no_wait: bool,
    },
}

pub(crate) fn analytics(command: AnalyticsCommand, client: &Client) -> anyhow::Result<()> {
    match command {
        AnalyticsCommand::Metrics => print(&client.call("GET", "/api/v1/analytics/metrics")?),
        AnalyticsCommand::Flow { id, window, format } => {
            let query = window.map(|w| format!("?window={}", crate::cli::client::encode(&w))).unwrap_or_default();
            let report =
                client.call("GET", &format!("/api/v1/flows/{}/report{query}", crate::cli::client::encode(&id)))?;
            if let Format::Json = format {
                return print(&report);
            }
            flow_report(&report)
        }
        AnalyticsCommand::Messages { flow, step, format } => {
            let query = step.map(|s| format!("?step={}", crate::cli::client::encode(&s))).unwrap_or_default();
            let report =
                client.call("GET", &format!("/api/v1/flows/{}/messages{query}", crate::cli::client::encode(&flow)))?;
            if let Format::Json = format {
                return print(&report);
            }
            let t = &report["totals"];
            say!(
                "flow {} from {} to {} ({}): sent {} · delivered {} · opened {} · clicked {}",
                flow,
                report["from"].as_str().unwrap_or(""),
                report["to"].as_str().unwrap_or(""),
                report["time_zone"].as_str().unwrap_or(""),
                t["sent"],
                t["delivered"],
                t["opened"],
                t["clicked"]
            );
            let pct = |k: &str| report["rates"][k].as_f64().unwrap_or(0.0) * 100.0;
            say!(
                "delivery {:.1}% · open {:.1}% · click {:.1}% · click-to-open {:.1}%",
                pct("delivery"),
                pct("open"),
                pct("click"),
                pct("click_to_open")
            );
            for d in report["days"].as_array().into_iter().flatten().filter(|d| d["sent"].as_u64() != Some(0)) {
                say!(
                    "  {}  sent {} delivered {} opened {} clicked {}",
                    d["day"].as_str().unwrap_or(""),
                    d["sent"],
                    d["delivered"],
                    d["opened"],
                    d["clicked"]
                );
            }
            Ok(())
        }
        AnalyticsCommand::Status => {
            let s = client.call("GET", "/api/v1/analytics/status")?;
            say!("projected {} of {} events folded ({} durable)", s["projected"], s["processed"], s["head"]);
            Ok(())
        }
        AnalyticsCommand::Rebuild { no_wait } => {
            let target = client.call("GET", "/api/v1/analytics/status")?["processed"].as_u64().unwrap_or(0);
            client.send("POST", "/api/v1/analytics/rebuild", Some(&json!({})))?;
            if no_wait {
                say!("rebuilding; `tutti analytics status` shows how far it has come");
                return Ok(());
            }
            let started = Instant::now();
            loop {
                let done = client.call("GET", "/api/v1/analytics/status")?["projected"].as_u64().unwrap_or(0);
                bar(done.min(target), target, started.elapsed());
                if done >= target {
                    eprintln!();
                    say!("rebuilt {target} events in {:.1} s", started.elapsed().as_secs_f64());
                    return Ok(());
                }
                // Polling a server for progress, for a person to watch: not synchronisation.
                std::thread::sleep(Duration::from_millis(250));
            }
        }
    }
}

/// A progress bar on standard error: `[#####.....]  52%  5,200,000 / 10,000,000 events  48,000/s`.
fn bar(done: u64, total: u64, elapsed: Duration) {
    const WIDTH: u64 = 30;
    let filled = (done * WIDTH).checked_div(total).unwrap_or(WIDTH);
    let percent = (done * 100).checked_div(total).unwrap_or(100);
    let rate = done as f64 / elapsed.as_secs_f64().max(0.001);
    let mut err = std::io::stderr();
    let _ = write!(
        err,
        "\r[{}{}] {percent:>3}%  {done} / {total} events  {rate:.0}/s ",
        "#".repeat(filled as usize),
        ".".repeat((WIDTH - filled) as usize)
    );
    let _ = err.flush();
}

fn rate(r: &Value) -> String {
    let pct = |k: &str| r[k].as_f64().unwrap_or(0.0) * 100.0;
    format!("{:.1}% ({}/{}; 95% {:.1}-{:.1}%)", pct("rate"), r["successes"], r["trials"], pct("low"), pct("high"))
}

/// `{micros, currency}` as people write it (`3,000 VND`).
fn money(m: &Value) -> String {
    tutti_core::money::Money::new(m["micros"].as_i64().unwrap_or(0), m["currency"].as_str().unwrap_or("")).to_string()
}

fn flow_report(report: &Value) -> anyhow::Result<()> {
    let days = report["window_ms"].as_f64().unwrap_or(0.0) / 86_400_000.0;
    say!(
        "flow {} (attribution window {days:.1} d; {} runs read)",
        report["flow"].as_str().unwrap_or(""),
        report["runs_read"]
    );
    let spent: Vec<String> = report["spend"].as_array().into_iter().flatten().map(money).collect();
    if !spent.is_empty() || !report["budget"].is_null() {
        let budget = &report["budget"];
        let of = if budget.is_null() { String::new() } else { format!(" of the budget {}", money(budget)) };
        say!("  spend: {}{of}", if spent.is_empty() { "0".to_owned() } else { spent.join(" + ") });
    }
    for v in report["versions"].as_array().into_iter().flatten() {
        say!("\nversion {}: {} entered, goal {}", v["version"], v["entered"], rate(&v["conversion"]));
        let revenue: Vec<String> = v["revenue"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(currency, amount)| {
                format!("{} {currency}", tutti_analytics::answer::num("en", amount.as_f64().unwrap_or(0.0)))
            })
            .collect();
        say!("  revenue in the window: {}", if revenue.is_empty() { "0".to_owned() } else { revenue.join(" + ") });
        for split in v["splits"].as_array().into_iter().flatten() {
            say!(
                "  split {} (control: {})",
                split["step"].as_str().unwrap_or(""),
                split["control"].as_str().unwrap_or("none")
            );
            for arm in split["arms"].as_array().into_iter().flatten() {
                let lift = &arm["lift"];
                let lift = if lift.is_null() {
                    String::new()
                } else {
                    let pt = |k: &str| lift[k].as_f64().unwrap_or(0.0) * 100.0;
                    format!("  lift {:+.1} pt (95% {:+.1} to {:+.1})", pt("difference"), pt("low"), pt("high"))
                };
                say!("    {:<12} {}{lift}", arm["arm"].as_str().unwrap_or(""), rate(&arm["conversion"]));
            }
        }
    }
    Ok(())
}
