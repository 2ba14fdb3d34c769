//! A flow's report, per version: runs entered, how they ended, what each step did, goal conversion with its 95%
//! interval, each split's arms against the control arm (the holdout, else the arm named `control`) with the
//! difference's interval, and order revenue within the attribution window (the goal's `within`, else 7 days),
//! per currency; and what the flow spent against its budget. Worked out from the runs' own records (their path of decisions and their goal), the newest
//! [`MAX_RUNS`] of them, and from the analytics tables for revenue.

use std::collections::BTreeMap;

use serde::Serialize;
use tutti_analytics::sqlite::Limits;
use tutti_analytics::stats::{Difference, Rate, difference, wilson};
use tutti_core::Millis;
use tutti_flows::Run;
use tutti_flows::machine::DecisionKind;

use crate::{Engine, EngineError};

/// The most runs one report reads, newest first.
pub const MAX_RUNS: usize = 200_000;

/// The attribution window when the flow has no goal.
pub const DEFAULT_WINDOW: Millis = 7 * 86_400_000;

#[derive(Debug, Clone, Serialize)]
pub struct FlowReport {
    pub flow: String,
    /// Order revenue counts within this long after a run entered.
    pub window_ms: Millis,
    pub versions: Vec<VersionReport>,
    /// How many runs were read, and whether they were all (false: only the newest [`MAX_RUNS`]).
    pub runs_read: usize,
    pub complete: bool,
    /// What its delivered actions cost, per currency (at the connectors' prices), and its budget if it has one.
    pub spend: Vec<tutti_core::money::Money>,
    pub budget: Option<tutti_core::money::Money>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VersionReport {
    pub version: u32,
    pub entered: u64,
    /// Flow-wide measures: completed, `exited:<reason>`, goal...
    pub outcomes: BTreeMap<String, u64>,
    /// Per step: reached, acted, `skipped:<reason>`, `arm:<name>`...
    pub steps: BTreeMap<String, BTreeMap<String, u64>>,
    /// Runs that reached the goal, of those entered.
    pub conversion: Rate,
    pub revenue: BTreeMap<String, f64>,
    pub splits: Vec<SplitReport>,
    /// Some runs' records dropped early decisions (very long runs): step counts are then a lower bound.
    pub partial_paths: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct SplitReport {
    pub step: String,
    pub control: Option<String>,
    pub arms: Vec<ArmReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ArmReport {
    pub arm: String,
    pub holdout: bool,
    pub conversion: Rate,
    /// Against the control arm (none for the control itself, or when there is no control).
    pub lift: Option<Difference>,
    pub revenue: BTreeMap<String, f64>,
}

#[derive(Default, Clone)]
struct ArmTally {
    runs: u64,
    goals: u64,
    revenue: BTreeMap<String, f64>,
}

#[derive(Default)]
struct Tally {
    entered: u64,
    goal: u64,
    outcomes: BTreeMap<String, u64>,
    steps: BTreeMap<String, BTreeMap<String, u64>>,
    revenue: BTreeMap<String, f64>,
    /// By (split step, arm).
    arms: BTreeMap<(String, String), ArmTally>,
    partial: bool,
}

impl Engine {
    /// A flow's report, or `None` when no flow has this id. Blocking.
    pub fn flow_report(&self, flow: &str, window: Option<Millis>) -> Result<Option<FlowReport>, EngineError> {
        let definitions = self.flow_definitions();
        let Some(current) = definitions.current_flows().find(|f| f.id == flow).cloned() else {
            return Ok(None);
        };
        let window = window.or_else(|| current.goal.as_ref().map(|g| g.within)).unwrap_or(DEFAULT_WINDOW);
        let bodies = self.flow_store.runs(None, Some(flow), MAX_RUNS + 1)?;
        let complete = bodies.len() <= MAX_RUNS;
        let runs: Vec<Run> =
            bodies.iter().take(MAX_RUNS).filter_map(|b| serde_json::from_slice::<Run>(b).ok()).collect();
        let windows: Vec<(u64, i64, i64)> = runs
            .iter()
            .map(|r| {
                let profile = r.profile.parse::<tutti_core::ProfileId>().map(|p| p.0).unwrap_or(0);
                (profile, r.started_at, r.started_at.saturating_add(window))
            })
            .collect();
        let limits = Limits { rows: usize::MAX, time: std::time::Duration::from_secs(30) };
        let revenue = self
            .analytics_reader
            .revenue_within(&self.metrics_layer.order_events, &windows, limits)
            .map_err(crate::analytics::AnalyticsError::from)?;
        let mut tallies: BTreeMap<u32, Tally> = BTreeMap::new();
        for (run, money) in runs.iter().zip(&revenue) {
            let t = tallies.entry(run.version).or_default();
            t.entered += 1;
            t.partial |= run.path_dropped > 0;
            let reached = run.goal_at.is_some();
            t.goal += u64::from(reached);
            for (currency, amount) in money {
                *t.revenue.entry(currency.clone()).or_default() += amount;
            }
            for decision in &run.path {
                for (step, measure) in tutti_flows::stats::measures(decision) {
                    if step.is_empty() {
                        // Entering and the goal are counted from the run itself.
                        if measure != "entered" && measure != "goal" {
                            *t.outcomes.entry(measure).or_default() += 1;
                        }
                    } else {
                        *t.steps.entry(step).or_default().entry(measure).or_default() += 1;
                    }
                }
                if let (Some(step), DecisionKind::Split { arm, .. }) = (&decision.step, &decision.kind) {
                    let entry = t.arms.entry((step.clone(), arm.clone())).or_default();
                    entry.runs += 1;
                    entry.goals += u64::from(reached);
                    for (currency, amount) in money {
                        *entry.revenue.entry(currency.clone()).or_default() += amount;
                    }
                }
            }
        }
        let mut versions = Vec::new();
        for (version, t) in tallies {
            let mut outcomes = t.outcomes;
            outcomes.insert("goal".into(), t.goal);
            let mut splits = Vec::new();
            if let Some(def) = definitions.flow(flow, version) {
                for step in &def.steps {
                    let tutti_flows::StepKind::Split(arms) = &step.kind else { continue };
                    let control = arms
                        .iter()
                        .find(|a| a.holdout)
                        .or_else(|| arms.iter().find(|a| a.name == "control"))
                        .map(|a| a.name.clone());
                    let rate_of = |arm: &str| {
                        let tally = t.arms.get(&(step.id.clone(), arm.to_owned())).cloned().unwrap_or_default();
                        wilson(tally.goals, tally.runs)
                    };
                    let control_rate = control.as_deref().map(rate_of);
                    let arms = arms
                        .iter()
                        .map(|a| {
                            let conversion = rate_of(&a.name);
                            let lift = match (&control, &control_rate) {
                                (Some(c), Some(cr)) if *c != a.name => Some(difference(&conversion, cr)),
                                _ => None,
                            };
                            let revenue = t
                                .arms
                                .get(&(step.id.clone(), a.name.clone()))
                                .map(|x| x.revenue.clone())
                                .unwrap_or_default();
                            ArmReport { arm: a.name.clone(), holdout: a.holdout, conversion, lift, revenue }
                        })
                        .collect();
                    splits.push(SplitReport { step: step.id.clone(), control, arms });
                }
            }
            versions.push(VersionReport {
                version,
                entered: t.entered,
                conversion: wilson(t.goal, t.entered),
                outcomes,
                steps: t.steps,
                revenue: t.revenue,
                splits,
                partial_paths: t.partial,
            });
        }
        versions.reverse();
        Ok(Some(FlowReport {
            flow: flow.to_owned(),
            window_ms: window,
            versions,
            runs_read: runs.len(),
            complete,
            spend: self.budgets.spent(flow),
            budget: current.budget.clone(),
        }))
    }
}

/// One message of a flow (a step that sends), by day: what happened to it, and the rates. Bounces that an
/// email provider reports, unsubscribes and spam complaints come without the message they answer, so they are
/// counted for the channel, day by day, beside it.
#[derive(Debug, Clone, Serialize)]
pub struct MessageReport {
    pub flow: String,
    pub step: Option<String>,
    pub from: String,
    pub to: String,
    pub time_zone: String,
    pub days: Vec<MessageDay>,
    pub totals: MessageDay,
    /// delivered / sent, opened / delivered, clicked / delivered, clicked / opened.
    pub rates: BTreeMap<String, f64>,
    pub channel_days: Vec<ChannelDay>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct MessageDay {
    pub day: String,
    pub sent: u64,
    pub delivered: u64,
    pub failed: u64,
    pub opened: u64,
    pub clicked: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ChannelDay {
    pub day: String,
    pub bounced: u64,
    pub unsubscribed: u64,
    pub complained: u64,
}

impl Engine {
    /// A flow's messages (or one step's) day by day over `[from, to)`, in `zone` (default `[analytics]
    /// time_zone`). Blocking.
    pub fn message_report(
        &self,
        flow: &str,
        step: Option<&str>,
        from: Millis,
        to: Millis,
        zone: Option<&str>,
    ) -> Result<MessageReport, crate::AskError> {
        use tutti_analytics::query::{Filter, MetricQuery, Order, Period, Query};
        let zone_name = zone.unwrap_or(&self.config.analytics.time_zone).to_owned();
        let period = Period {
            from: tutti_core::time::format_timestamp(from),
            to: tutti_core::time::format_timestamp(to),
            label: None,
        };
        let mut filters = vec![Filter { dimension: "flow".into(), equals: flow.to_owned() }];
        if let Some(step) = step {
            filters.push(Filter { dimension: "step".into(), equals: step.to_owned() });
        }
        let series = |measure: &str, filters: Vec<Filter>| -> Result<Vec<(String, u64)>, crate::AskError> {
            let query = Query::Metric(MetricQuery {
                measure: measure.to_owned(),
                period: period.clone(),
                by: None,
                grain: Some(tutti_analytics::metrics::Grain::Day),
                compare: None,
                filters,
                order: Order::Desc,
                limit: None,
            });
            let answer = self.run_query(query, "en", Some(&zone_name))?;
            Ok(answer
                .rows
                .iter()
                .map(|r| (r[0].as_str().unwrap_or("").to_owned(), r.last().and_then(|v| v.as_u64()).unwrap_or(0)))
                .collect())
        };
        let delivered = series("messages_delivered", filters.clone())?;
        let failed = series("messages_failed", filters.clone())?;
        let opened = series("emails_opened", filters.clone())?;
        let clicked = series("emails_clicked", filters)?;
        let mut totals = MessageDay { day: "total".into(), ..MessageDay::default() };
        let days: Vec<MessageDay> = delivered
            .iter()
            .enumerate()
            .map(|(i, (day, d))| {
                let at = |s: &[(String, u64)]| s.get(i).map(|x| x.1).unwrap_or(0);
                let row = MessageDay {
                    day: day.clone(),
                    sent: d + at(&failed),
                    delivered: *d,
                    failed: at(&failed),
                    opened: at(&opened),
                    clicked: at(&clicked),
                };
                totals.sent += row.sent;
                totals.delivered += row.delivered;
                totals.failed += row.failed;
                totals.opened += row.opened;
                totals.clicked += row.clicked;
                row
            })
            .collect();
        let share = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let rates = BTreeMap::from([
            ("delivery".to_owned(), share(totals.delivered, totals.sent)),
            ("open".to_owned(), share(totals.opened, totals.delivered)),
            ("click".to_owned(), share(totals.clicked, totals.delivered)),
            ("click_to_open".to_owned(), share(totals.clicked, totals.opened)),
        ]);
        let bounced = series("emails_bounced", Vec::new())?;
        let unsubscribed = series("unsubscribes", Vec::new())?;
        let complained = series("spam_complaints", Vec::new())?;
        let channel_days = bounced
            .iter()
            .enumerate()
            .map(|(i, (day, b))| ChannelDay {
                day: day.clone(),
                bounced: *b,
                unsubscribed: unsubscribed.get(i).map(|x| x.1).unwrap_or(0),
                complained: complained.get(i).map(|x| x.1).unwrap_or(0),
            })
            .collect();
        Ok(MessageReport {
            flow: flow.to_owned(),
            step: step.map(str::to_owned),
            from: period.from,
            to: period.to,
            time_zone: zone_name,
            days,
            totals,
            rates,
            channel_days,
        })
    }
}
