//! The copilot in the engine (story S8): a goal made into a plan by the local planner (`tutti_copilot`), then
//! dry-run on the real profiles before anyone approves it: the audience counted now with a sample of members,
//! who can be reached on each channel, the budget split and estimated cost from the connectors' prices, a
//! sample message per channel and language drafted by `generate` and checked by the review gate, and the YAML
//! it will create. Every version is kept (`plans.db`); a change asked in words or made to fields is the next
//! version, shown with its difference. Approving (an approver) stores the segment and the flow as new versions,
//! which start at once (the segment's backfill enters its members); rejecting changes nothing. Nothing is
//! created, sent or spent before approval.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use tutti_copilot::compile::{diff, flow_yaml, segment_yaml};
use tutti_copilot::{Context, Plan};
use tutti_core::audit::AuditKind;
use tutti_core::event::Event;
use tutti_core::money::Money;
use tutti_core::{Millis, ProfileId};
use tutti_segments::SegmentState;
use tutti_store::sqlite::StoredPlan;

use crate::{DefinitionError, Engine, EngineError};

/// Members shown as the audience's sample.
const SAMPLE: usize = 5;
/// The most recent events read per profile for behaviour clauses (as the segment backfill reads).
const HISTORY: usize = 1_000;
/// Languages a sample message is drafted in, at most.
const LANGUAGES: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The goal or the change could not be read: what the planner covers, in the goal's language.
    #[error("{0}")]
    NotUnderstood(String),
    #[error("no plan `{0}`")]
    Unknown(String),
    #[error("plan `{0}` is {1}; only a proposed plan can be changed or decided")]
    Closed(String, String),
    #[error("{0}")]
    Invalid(String),
    /// Approving stored nothing: the definitions were refused (another definition's problem, say).
    #[error("the plan's definitions were refused: {0}")]
    Definitions(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// What the dry run found about the audience.
struct Audience {
    count: u64,
    sample: Vec<Value>,
    /// Per channel, members reachable there.
    reach: Vec<(String, u64)>,
    /// Members' languages, most common first.
    languages: Vec<(String, u64)>,
}

impl Engine {
    /// The planner's view of this installation: the traits profiles have, the prices per channel, the events.
    fn plan_context(&self) -> Context {
        let mut cx = Context::standard();
        if let Some(order) = self.metrics_layer.order_events.first() {
            cx.order_event = order.clone();
        }
        let mut traits = std::collections::BTreeSet::new();
        for id in self.profiles.newest_profile_ids(200).unwrap_or_default() {
            if let Ok(Some(p)) = self.profiles.profile(id) {
                traits.extend(p.traits.keys().cloned());
            }
        }
        cx.traits = traits.into_iter().collect();
        cx.prices = self.channel_prices();
        cx
    }

    /// The price of a message on each channel: the `price` of the connector that sends on it.
    fn channel_prices(&self) -> Vec<(String, Money)> {
        let mut out = Vec::new();
        for (channel, connector) in [("email", "smtp"), ("zalo", "zalo"), ("sms", "sms")] {
            if let Some(price) = self.checks.get(connector).and_then(|b| b.settings.price.clone()) {
                out.push((channel.to_owned(), price));
            }
        }
        out
    }

    /// Counts the audience the plan's segment holds now, over every profile. Blocking.
    fn count_audience(&self, plan: &Plan, now: Millis) -> Result<Audience, PlanError> {
        let yaml = segment_yaml(plan);
        let segment = match tutti_flows::compile(&yaml, &crate::connectors::all()) {
            Ok(tutti_flows::Definition::Segment(s)) => s,
            Ok(_) => return Err(PlanError::Invalid("the plan's audience is not a segment".into())),
            Err(problems) => {
                return Err(PlanError::Invalid(format!("the plan's audience does not compile: {problems:?}")));
            }
        };
        let channels: Vec<(&str, &str)> = plan
            .channels
            .iter()
            .filter_map(|c| tutti_copilot::read::words::CHANNELS.iter().find(|w| w.name == c))
            .map(|w| (w.name, w.trait_name))
            .collect();
        let mut found = Audience { count: 0, sample: Vec::new(), reach: Vec::new(), languages: Vec::new() };
        let mut reach: BTreeMap<&str, u64> = BTreeMap::new();
        let mut languages: BTreeMap<String, u64> = BTreeMap::new();
        // Page by the ids there are: they are sparse when several workers share the store.
        let mut after = 0;
        loop {
            let page = self.profiles.profile_ids_after(after, 1_000).map_err(EngineError::from)?;
            let Some(last) = page.last() else { break };
            after = last.0;
            for id in page.into_iter().map(|p| p.0) {
                let Some(profile) = self.profiles.profile(ProfileId(id)).map_err(EngineError::from)? else { continue };
                if profile.id.0 != id {
                    continue;
                }
                let view = profile.to_public_json();
                let mut state = SegmentState::default();
                if segment.has_behaviour() {
                    let seqs = self.profiles.event_seqs(ProfileId(id), None, HISTORY).map_err(EngineError::from)?;
                    let mut events: Vec<Event> = self
                        .events
                        .read_seqs(&seqs)
                        .map_err(EngineError::from)?
                        .into_iter()
                        .filter_map(|e| Event::from_stored(e.body).ok())
                        .collect();
                    events.sort_by_key(|e| e.timestamp);
                    for e in &events {
                        segment.observe(&mut state, e.kind, e.name.as_deref(), e.timestamp, &e.body_value());
                    }
                }
                if !segment.evaluate(&state, &view, now).0 {
                    continue;
                }
                found.count += 1;
                let traits = &view["traits"];
                for (name, trait_name) in &channels {
                    if !traits[*trait_name].is_null() {
                        *reach.entry(name).or_default() += 1;
                    }
                }
                let language = traits["language"].as_str().unwrap_or(&plan.language).to_lowercase();
                *languages.entry(language).or_default() += 1;
                if found.sample.len() < SAMPLE {
                    found.sample.push(json!({"profile": profile.id.to_string(), "name": traits["name"],
                                             "city": traits["city"], "language": traits["language"]}));
                }
            }
        }
        found.reach = plan.channels.iter().map(|c| (c.clone(), *reach.get(c.as_str()).unwrap_or(&0))).collect();
        let mut langs: Vec<(String, u64)> = languages.into_iter().collect();
        langs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        found.languages = langs;
        Ok(found)
    }

    /// A sample message per channel and language, drafted by the `ai` connector as a run would (the local
    /// model unless one is configured) and checked by the review gate.
    fn sample_messages(&self, plan: &Plan, languages: &[(String, u64)], now: Millis) -> Vec<Value> {
        let Some(ai) = self.checks.get("ai").map(|b| b.sender.clone()) else { return Vec::new() };
        let Some(blocking) = crate::connectors::BlockingSender::new() else { return Vec::new() };
        let mut langs: Vec<String> = languages.iter().take(LANGUAGES).map(|(l, _)| l.clone()).collect();
        if langs.is_empty() {
            langs.push(plan.language.clone());
        }
        let mut out = Vec::new();
        for brief in &plan.briefs {
            for language in &langs {
                let request = json!({"prompt": brief.prompt, "channel": brief.channel, "packs": ["general"],
                                     "language": language, "variants": 1});
                let payload = json!({"request": request, "event": {}, "category": "promotional",
                                     "profile": {"traits": {"language": language}},
                                     "run": {"id": format!("{}-sample", plan.id), "flow": plan.flow, "version": 0,
                                             "step": format!("{}_copy", brief.channel), "steps": {}}});
                let key = format!("{}:v{}:{}:{language}", plan.id, plan.version, brief.channel);
                let action = tutti_connectors::Action {
                    key: &key,
                    profile: 0,
                    flow: &plan.flow,
                    step: "sample",
                    operation: "generate",
                    category: "promotional",
                    channel: &brief.channel,
                    payload: &payload,
                    now,
                    tracking: false,
                };
                out.push(match blocking.send(&*ai, action, None) {
                    Some(Ok(copy)) => json!({"channel": brief.channel, "language": language, "day": brief.day,
                                             "subject": copy["subject"], "body": copy["body"],
                                             "review": {"passed": copy["passed"], "violations": copy["violations"]},
                                             "local": copy["local"]}),
                    Some(Err(e)) => json!({"channel": brief.channel, "language": language, "error": e.message()}),
                    None => json!({"channel": brief.channel, "language": language, "error": "the draft failed"}),
                });
            }
        }
        out
    }

    /// The plan's dry run, and the plan as the API and the console show it.
    fn plan_view(&self, plan: &mut Plan, previous: Option<&Plan>, now: Millis) -> Result<Value, PlanError> {
        let audience = self.count_audience(plan, now)?;
        plan.split_budget(&audience.reach, &self.channel_prices());
        let messages = self.sample_messages(plan, &audience.languages, now);
        let (segment, flow) = (segment_yaml(plan), flow_yaml(plan));
        let changes = previous.map(|p| {
            json!({"from_version": p.version, "segment": diff(&segment_yaml(p), &segment),
                   "flow": diff(&flow_yaml(p), &flow)})
        });
        let mut steps =
            vec![json!({"type": "segment", "id": plan.audience.segment, "conditions": plan.audience.conditions})];
        if plan.holdout > 0.0 {
            steps.push(json!({"type": "holdout", "share": plan.holdout}));
        }
        for b in &plan.briefs {
            steps.push(json!({"type": "content", "channel": b.channel, "prompt": b.prompt, "day": b.day}));
        }
        steps.push(json!({"type": "schedule", "days": plan.schedule.days, "quiet_hours": plan.schedule.quiet_hours}));
        steps.push(json!({"type": "budget_split", "channels": plan.budget_split}));
        steps.push(json!({"type": "goal", "event": plan.goal_event, "within_days": plan.schedule.days}));
        steps.push(json!({"type": "exit", "when": plan.goal_event}));
        let cost = plan.cost_estimate();
        Ok(json!({
            "id": plan.id, "version": plan.version, "goal": plan.goal, "language": plan.language,
            "shape": plan.shape, "status": plan.status, "assumptions": plan.assumptions,
            "audience": {"count": audience.count, "sample": audience.sample, "segment_yaml": segment,
                         "reach": audience.reach.iter().map(|(c, n)| json!({"channel": c, "count": n})).collect::<Vec<_>>(),
                         "languages": audience.languages.iter().map(|(l, n)| json!({"language": l, "count": n})).collect::<Vec<_>>()},
            "steps": steps, "channels": plan.channels, "holdout": plan.holdout,
            "schedule": {"days": plan.schedule.days}, "budget": plan.budget, "budget_split": plan.budget_split,
            "cost_estimate": cost.first(), "costs": cost, "messages": messages, "flow": plan.flow,
            "flow_yaml": flow, "changes": changes, "plan": plan,
        }))
    }

    fn keep_plan(&self, view: &Value, status: &str, by: &str) -> Result<(), PlanError> {
        let stored = StoredPlan {
            id: view["id"].as_str().unwrap_or_default().to_owned(),
            version: view["version"].as_u64().unwrap_or(1) as u32,
            status: status.to_owned(),
            body: view.to_string(),
            created_at: self.clock.now_ms(),
            created_by: by.to_owned(),
        };
        self.plans.put(&stored).map_err(EngineError::from)?;
        Ok(())
    }

    /// Plans a goal as `by`: the plan's first version, dry-run, kept as proposed. Blocking.
    pub fn propose_plan(&self, goal: &str, by: &str) -> Result<Value, PlanError> {
        let goal = goal.trim();
        if goal.is_empty() || goal.chars().count() > 2_000 {
            return Err(PlanError::Invalid("a goal is 1 to 2,000 characters".into()));
        }
        let id = self.plans.next_id().map_err(EngineError::from)?;
        let now = self.clock.now_ms();
        let cx = self.plan_context();
        let (reading, method, note) = self.goal_reading(goal, now);
        let mut plan = match reading {
            ModelReading::Plan(r) => tutti_copilot::plan_reading(&id, goal, r, &cx),
            // The model found the goal outside what the planner does: the local planner says so in its words.
            ModelReading::Outside => Err(tutti_copilot::planner::refuse(goal)),
            ModelReading::None => tutti_copilot::plan(&id, goal, &cx),
        }
        .map_err(|r| PlanError::NotUnderstood(r.0))?;
        plan.assumptions.push(note);
        let mut view = self.plan_view(&mut plan, None, now)?;
        view["method"] = json!(method);
        self.keep_plan(&view, "proposed", by)?;
        Ok(with_meta(view, by, now))
    }

    /// The newest version of a plan, with its earlier versions listed.
    pub fn plan(&self, id: &str) -> Result<Option<Value>, PlanError> {
        let versions = self.plans.versions(id).map_err(EngineError::from)?;
        let Some(newest) = versions.first() else { return Ok(None) };
        let mut view = stored_view(newest);
        // Once it runs, its report follows it: conversion against the holdout, spend against the budget.
        if newest.status == "approved"
            && let Some(flow) = view["flow"].as_str()
            && let Some(report) = self.flow_report(flow, None)?
        {
            view["report"] = serde_json::to_value(report).unwrap_or(Value::Null);
        }
        view["versions"] = versions
            .iter()
            .map(|v| {
                json!({"version": v.version, "status": v.status, "created_by": v.created_by,
                            "created_at": tutti_core::time::format_timestamp(v.created_at)})
            })
            .collect();
        Ok(Some(view))
    }

    /// The newest version of each plan, newest first.
    pub fn plans(&self, limit: usize) -> Result<Vec<Value>, PlanError> {
        Ok(self.plans.latest(limit).map_err(EngineError::from)?.iter().map(stored_view).collect())
    }

    /// The next version of a proposed plan: a change asked in words, or fields edited. Blocking.
    pub fn change_plan(
        &self,
        id: &str,
        request: Option<&str>,
        fields: Option<&Value>,
        by: &str,
    ) -> Result<Value, PlanError> {
        let (current, stored) = self.proposed(id)?;
        let cx = self.plan_context();
        let mut next = match (request.map(str::trim).filter(|r| !r.is_empty()), fields) {
            (Some(words), None) => {
                tutti_copilot::change::ask(&current, words, &cx).map_err(|r| PlanError::NotUnderstood(r.0))?
            }
            (None, Some(fields)) => tutti_copilot::change::edit(&current, fields).map_err(PlanError::Invalid)?,
            _ => return Err(PlanError::Invalid("give `change` (in words) or `fields`, one of them".into())),
        };
        let now = self.clock.now_ms();
        let view = self.plan_view(&mut next, Some(&current), now)?;
        self.keep_plan(&view, "proposed", by)?;
        let _ = stored;
        Ok(with_meta(view, by, now))
    }

    /// The newest version of a plan, which must be proposed.
    fn proposed(&self, id: &str) -> Result<(Plan, StoredPlan), PlanError> {
        let versions = self.plans.versions(id).map_err(EngineError::from)?;
        let Some(newest) = versions.into_iter().next() else { return Err(PlanError::Unknown(id.into())) };
        if newest.status != "proposed" {
            return Err(PlanError::Closed(id.into(), newest.status));
        }
        let body: Value = serde_json::from_str(&newest.body).map_err(|e| PlanError::Invalid(e.to_string()))?;
        let plan: Plan = serde_json::from_value(body["plan"].clone()).map_err(|e| PlanError::Invalid(e.to_string()))?;
        Ok((plan, newest))
    }

    /// Approves (creating the segment and the flow, which start at once) or rejects (nothing) the newest
    /// version of a proposed plan, as `by`; on the audit log. Blocking.
    pub fn decide_plan(&self, id: &str, approve: bool, by: &str, reason: &str) -> Result<Value, PlanError> {
        let (plan, stored) = self.proposed(id)?;
        let mut body: Value = serde_json::from_str(&stored.body).map_err(|e| PlanError::Invalid(e.to_string()))?;
        let now = self.clock.now_ms();
        let status = if approve { "approved" } else { "rejected" };
        let plan = if approve { plan.starting(now) } else { plan };
        if approve {
            body["plan"] = json!(plan);
            body["schedule"]["starts_at"] = json!(plan.schedule.starts_at);
            body["schedule"]["ends_at"] = json!(plan.schedule.ends_at);
            body["flow_yaml"] = json!(flow_yaml(&plan));
            let definition_error = |e: DefinitionError| PlanError::Definitions(e.to_string());
            // One change: a segment in force before its flow would be backfilled with nobody to enter.
            let (segment_source, flow_source) = (segment_yaml(&plan), flow_yaml(&plan));
            let versions = self
                .put_definitions(
                    &[("segment", &plan.audience.segment, &segment_source), ("flow", &plan.flow, &flow_source)],
                    Some(by),
                )
                .map_err(definition_error)?;
            let (segment, flow) = (versions[0], versions[1]);
            body["created"] = json!({"segment": {"id": plan.audience.segment, "version": segment},
                                     "flow": {"id": plan.flow, "version": flow}});
        }
        body["status"] = json!(status);
        body["plan"]["status"] = json!(status);
        body["decided_by"] = json!(by);
        body["decided_at"] = json!(tutti_core::time::format_timestamp(now));
        if !reason.is_empty() {
            body["reason"] = json!(reason);
        }
        if !self.plans.set_status(id, plan.version, "proposed", status, &body.to_string()).map_err(EngineError::from)? {
            return Err(PlanError::Closed(id.into(), "decided".into()));
        }
        let detail = json!({"plan": id, "version": plan.version, "decision": status, "goal": plan.goal,
                            "flow": plan.flow, "budget": plan.budget, "reason": reason});
        self.record(AuditKind::Plan, by, Some(&plan.flow), None, detail)?;
        Ok(body)
    }
}

/// What the model made of a goal.
enum ModelReading {
    Plan(tutti_copilot::read::Reading),
    Outside,
    /// No model for plans, or its answer could not be used: the local reader reads the goal.
    None,
}

impl Engine {
    /// The goal read by the model routed for `plan` through the copilot's typed tool, when one is; with how it
    /// was read (`local` or provider/model) and an assumption saying so.
    fn goal_reading(&self, goal: &str, now: Millis) -> (ModelReading, String, String) {
        let local = |why: Option<&str>| {
            let note = match why {
                Some(why) => format!("read by the local planner ({why})"),
                None => "read by the local planner (no model is routed for plans)".to_owned(),
            };
            (ModelReading::None, "local".to_owned(), note)
        };
        let Some(ai) = self.checks.get("ai").map(|b| b.sender.clone()) else { return local(None) };
        let Some(blocking) = crate::connectors::BlockingSender::new() else { return local(None) };
        let payload = json!({"goal": goal, "tool": {"name": tutti_copilot::tool::NAME,
                             "description": tutti_copilot::tool::DESCRIPTION,
                             "parameters": tutti_copilot::tool::parameters()}});
        let action = tutti_connectors::Action {
            key: "copilot:plan",
            profile: 0,
            flow: "copilot",
            step: "plan",
            operation: "plan",
            category: "internal",
            channel: "ai",
            payload: &payload,
            now,
            tracking: false,
        };
        let Some(Ok(answer)) = blocking.send(&*ai, action, None) else {
            return local(Some("the model could not be asked"));
        };
        let method = answer["method"].as_str().unwrap_or("local").to_owned();
        if answer["reading"].is_null() {
            return match answer["why"].as_str() {
                Some(why) => local(Some(why)),
                None => local(None),
            };
        }
        match tutti_copilot::tool::reading(&answer["reading"], goal) {
            Ok(Some(r)) => (ModelReading::Plan(r), method.clone(), format!("read by {method}")),
            Ok(None) => (ModelReading::Outside, method.clone(), format!("read by {method}")),
            Err(e) => local(Some(&format!("{method}'s reading was refused: {e}"))),
        }
    }
}

fn with_meta(mut view: Value, by: &str, now: Millis) -> Value {
    view["created_by"] = json!(by);
    view["created_at"] = json!(tutti_core::time::format_timestamp(now));
    view
}

fn stored_view(stored: &StoredPlan) -> Value {
    let mut view: Value = serde_json::from_str(&stored.body).unwrap_or(Value::Null);
    view["status"] = json!(stored.status);
    with_meta(view, &stored.created_by, stored.created_at)
}
