//! A flow's report (`/flows/{id}/report`): per version, runs entered, goal conversion with its 95% interval,
//! revenue within the attribution window, how runs ended, and each split's arms against the control with the
//! difference's interval, drawn as bars with whiskers. Its own page: it reads up to 200,000 runs.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use tutti_analytics::stats::Rate;
use tutti_engine::Engine;

use super::{Lang, Who, Words, not_found, page, secured, to_sign_in};
use crate::admin::blocking;
use crate::sessions::SignedIn;

struct ArmRow {
    arm: String,
    holdout: bool,
    runs: u64,
    conversion: String,
    lift: String,
    revenue: String,
}

struct VersionBlock {
    version: u32,
    entered: u64,
    conversion: String,
    revenue: String,
    outcomes: Vec<(String, u64)>,
    splits: Vec<(String, Vec<ArmRow>, String)>,
}

/// Totals with their rates (label, shown value), and the days anything happened.
type Messages = (Vec<(&'static str, String)>, Vec<tutti_engine::MessageDay>);

#[derive(Template)]
#[template(path = "report.html")]
struct ReportPage {
    lang: &'static str,
    title: &'static str,
    words: &'static Words,
    who: Who,
    id: String,
    window_days: String,
    versions: Vec<VersionBlock>,
    partial: bool,
    /// The last 30 days of the flow's messages: totals and rates, then the days anything was sent.
    messages: Option<Messages>,
    /// What the flow spent (per currency, joined) and its budget, when it has a price or a budget.
    spend: Option<(String, Option<String>)>,
}

fn percent(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn rate(r: &Rate) -> String {
    format!("{} ({} / {}; 95%: {} – {})", percent(r.rate), r.successes, r.trials, percent(r.low), percent(r.high))
}

fn money(m: &std::collections::BTreeMap<String, f64>) -> String {
    if m.is_empty() {
        return "0".into();
    }
    m.iter()
        .map(|(c, v)| format!("{} {}", tutti_analytics::answer::num("en", *v), if c.is_empty() { "?" } else { c }))
        .collect::<Vec<_>>()
        .join(" + ")
}

/// Arms' conversion as bars with their intervals as whiskers, on a scale from 0 to the highest upper bound.
fn bars(arms: &[tutti_engine::ArmReport]) -> String {
    use std::fmt::Write;
    let top = arms.iter().map(|a| a.conversion.high).fold(0.0f64, f64::max);
    if arms.is_empty() || top <= 0.0 {
        return String::new();
    }
    let (h, gap, width) = (18usize, 6usize, 400.0);
    let height = arms.len() * (h + gap);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="arms" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img">"#
    );
    for (i, a) in arms.iter().enumerate() {
        let y = i * (h + gap);
        let x = |v: f64| v / top * width;
        // Arm names are checked names in a flow file (no markup); escaped anyway.
        let name = super::graph::escape(&a.arm);
        let _ = write!(
            svg,
            r#"<rect x="0" y="{y}" width="{:.1}" height="{h}"><title>{name}: {}</title></rect><line class="whisker" x1="{:.1}" x2="{:.1}" y1="{}" y2="{}"/>"#,
            x(a.conversion.rate).max(1.0),
            percent(a.conversion.rate),
            x(a.conversion.low),
            x(a.conversion.high),
            y + h / 2,
            y + h / 2
        );
    }
    svg.push_str("</svg>");
    svg
}

/// `GET /flows/{id}/report`.
pub async fn show(
    signed_in: Option<SignedIn>,
    State(engine): State<Arc<Engine>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let Some(signed_in) = signed_in else { return to_sign_in() };
    let lang = Lang::of(&headers);
    let words = lang.words();
    let flow_id = id.clone();
    let zone = super::Zone::chosen(&headers).map(|z| z.name().to_owned());
    let found = blocking(move || {
        let report = engine.flow_report(&flow_id, None)?;
        let now = engine.clock.now_ms();
        let messages = engine.message_report(&flow_id, None, now - 30 * 86_400_000, now, zone.as_deref()).ok();
        Ok((report, messages))
    })
    .await;
    let (report, messages) = match found {
        Ok((Some(r), m)) => (r, m),
        Ok((None, _)) => return not_found(&headers),
        Err(e) => return secured(e.into_response()),
    };
    let messages = messages.filter(|m| m.totals.sent > 0).map(|m| {
        let pct = |k: &str| percent(m.rates.get(k).copied().unwrap_or(0.0));
        let t = &m.totals;
        let totals = vec![
            (words.sent, t.sent.to_string()),
            (words.delivered, format!("{} ({})", t.delivered, pct("delivery"))),
            (words.failed, t.failed.to_string()),
            (words.opened, format!("{} ({})", t.opened, pct("open"))),
            (words.clicked, format!("{} ({}; {} {})", t.clicked, pct("click"), pct("click_to_open"), words.of_opens)),
        ];
        (totals, m.days.into_iter().filter(|d| d.sent > 0 || d.opened > 0 || d.clicked > 0).collect())
    });
    let versions = report
        .versions
        .iter()
        .map(|v| VersionBlock {
            version: v.version,
            entered: v.entered,
            conversion: rate(&v.conversion),
            revenue: money(&v.revenue),
            outcomes: v.outcomes.iter().map(|(k, n)| (k.clone(), *n)).collect(),
            splits: v
                .splits
                .iter()
                .map(|s| {
                    let rows = s
                        .arms
                        .iter()
                        .map(|a| ArmRow {
                            arm: a.arm.clone(),
                            holdout: a.holdout,
                            runs: a.conversion.trials,
                            conversion: rate(&a.conversion),
                            lift: a
                                .lift
                                .map(|l| {
                                    format!(
                                        "{:+.1} pt (95%: {:+.1} – {:+.1})",
                                        l.difference * 100.0,
                                        l.low * 100.0,
                                        l.high * 100.0
                                    )
                                })
                                .unwrap_or_default(),
                            revenue: money(&a.revenue),
                        })
                        .collect();
                    (s.step.clone(), rows, bars(&s.arms))
                })
                .collect(),
        })
        .collect();
    page(&ReportPage {
        lang: lang.code(),
        title: words.report,
        words,
        who: Who::of(&signed_in.session),
        id,
        window_days: format!("{:.1}", report.window_ms as f64 / 86_400_000.0),
        partial: !report.complete,
        versions,
        messages,
        spend: (!report.spend.is_empty() || report.budget.is_some()).then(|| {
            let spent: Vec<String> = report.spend.iter().map(ToString::to_string).collect();
            let spent = if spent.is_empty() { words.no_spend.to_owned() } else { spent.join(" + ") };
            (spent, report.budget.as_ref().map(ToString::to_string))
        }),
    })
}
