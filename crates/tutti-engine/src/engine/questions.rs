//! Questions and reports over Tutti's own events: a question read (by the local reader) into a structured
//! query, or a structured query given, run on the analytics store's read-only connections.

use tutti_analytics::answer::{Answer, Facts, RunError, Runner};
use tutti_analytics::ask::{self, Context};
use tutti_analytics::sqlite::Limits;
use tutti_analytics::{MetricsLayer, Query};

use crate::Engine;

/// Why a question got no answer.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    /// Not a shape Tutti answers; the message says which it does, in the question's language.
    #[error("{0}")]
    NotUnderstood(String),
    /// The question or query is malformed (an unknown time zone, a bad instant, a name not in the layer).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Failed(String),
}

/// The JSON Schema a model's structured query must meet (the subset structured-output endpoints accept); the
/// names in it are checked against the metrics layer afterwards.
fn query_schema() -> serde_json::Value {
    let period = serde_json::json!({"type": "object", "additionalProperties": false, "required": ["from", "to"],
        "properties": {"from": {"type": "string", "maxLength": 40}, "to": {"type": "string", "maxLength": 40},
                       "label": {"type": ["string", "null"], "maxLength": 100}}});
    let names = serde_json::json!({"type": "array", "maxItems": 10, "items": {"type": "string", "maxLength": 200}});
    serde_json::json!({"anyOf": [
        {"type": "object", "additionalProperties": false, "required": ["kind", "measure", "period"], "properties": {
            "kind": {"const": "metric"}, "measure": {"type": "string", "maxLength": 64}, "period": period,
            "by": {"type": ["string", "null"], "maxLength": 64},
            "grain": {"enum": ["day", "week", "month", null]},
            "compare": {"anyOf": [period, {"type": "null"}]},
            "filters": {"type": "array", "maxItems": 10, "items": {"type": "object", "additionalProperties": false,
                "required": ["dimension", "equals"], "properties": {"dimension": {"type": "string", "maxLength": 64},
                "equals": {"type": "string", "maxLength": 200}}}},
            "order": {"enum": ["desc", "asc"]},
            "limit": {"type": ["integer", "null"], "minimum": 1, "maximum": 100}}},
        {"type": "object", "additionalProperties": false, "required": ["kind", "did", "period"], "properties": {
            "kind": {"const": "people"}, "did": names, "did_not": names, "period": period}},
        {"type": "object", "additionalProperties": false, "required": ["kind", "segment"], "properties": {
            "kind": {"const": "segment"}, "segment": {"type": "string", "maxLength": 200}}},
        {"type": "object", "additionalProperties": false, "required": ["kind", "flow"], "properties": {
            "kind": {"const": "flow"}, "flow": {"type": "string", "maxLength": 200}}}
    ]})
}

/// The most event names the reader looks for in a question.
const KNOWN_EVENTS: usize = 5_000;

struct EngineFacts<'a>(&'a Engine);

impl Facts for EngineFacts<'_> {
    fn segment_size(&self, segment: &str) -> Option<u64> {
        self.0.flow_definitions().segments.contains_key(segment).then(|| self.0.flow_store_segment_count(segment))
    }

    fn flow_totals(&self, flow: &str) -> Option<Vec<(String, u64)>> {
        let definitions = self.0.flow_definitions();
        definitions.current_flows().any(|f| f.id == flow).then(|| {
            let stats = self.0.flow_stats(flow).unwrap_or_default();
            stats.into_iter().filter(|(step, _, _)| step.is_empty()).map(|(_, m, v)| (m, v)).collect()
        })
    }
}

/// Whether a question names one person (an email address, a phone number, a user id): answers are about
/// groups, and a question about one person is not answered with everyone's numbers.
fn names_a_person(question: &str) -> bool {
    use std::sync::LazyLock;
    static PERSON: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r"(?i)[^\s@]+@[^\s@]+\.[^\s@]+|\buser\s*id\b|\buserid\b|\banonymous\s*id\b")
            .expect("the pattern compiles")
    });
    static PHONE: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"\+?\d[\d .-]{7,}\d").expect("the pattern compiles"));
    static DATE: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"^\d{4}-\d{1,2}-\d{1,2}").expect("the pattern compiles"));
    // A phone number has nine digits or more; a date is not one.
    PERSON.is_match(question)
        || PHONE
            .find_iter(question)
            .any(|m| m.as_str().chars().filter(char::is_ascii_digit).count() >= 9 && !DATE.is_match(m.as_str()))
}

impl Engine {
    /// The metrics layer in force.
    pub fn metrics_layer(&self) -> &MetricsLayer {
        &self.metrics_layer
    }

    fn flow_store_segment_count(&self, segment: &str) -> u64 {
        self.flow_store.segment_count(segment).unwrap_or(0)
    }

    fn zone(&self, zone: Option<&str>) -> Result<(jiff::tz::TimeZone, String), AskError> {
        let name = zone.unwrap_or(&self.config.analytics.time_zone).to_owned();
        let tz = tutti_core::time::zone(&name).ok_or_else(|| {
            AskError::Invalid(format!("`{name}` is not a time zone (an IANA name such as Asia/Ho_Chi_Minh)"))
        })?;
        Ok((tz, name))
    }

    fn runner_answer(
        &self,
        query: Query,
        lang: &str,
        assumptions: Vec<String>,
        zone: &jiff::tz::TimeZone,
    ) -> Result<Answer, AskError> {
        let facts = EngineFacts(self);
        let runner = Runner {
            layer: &self.metrics_layer,
            zone,
            reader: &self.analytics_reader,
            facts: &facts,
            limits: Limits { rows: self.config.analytics.max_rows.max(1), time: self.config.analytics.query_timeout },
        };
        runner.answer(query, lang, assumptions, "local").map_err(|e| match e {
            RunError::Query(e) => AskError::Invalid(e.0),
            RunError::Unknown(e) => AskError::Invalid(e),
            RunError::Store(e) => AskError::Failed(e.to_string()),
        })
    }

    /// Answers a question asked at `now` (default: the engine's clock) in `zone` (default: `[analytics]
    /// time_zone`). Blocking: run it off the async runtime.
    pub fn ask(&self, question: &str, now: Option<i64>, zone: Option<&str>) -> Result<Answer, AskError> {
        let (tz, zone_name) = self.zone(zone)?;
        let lang = ask::language(question);
        if names_a_person(question) {
            let why = match lang {
                "vi" => "câu trả lời nói về nhóm người, không về một người; hãy xem trang hồ sơ của người đó",
                "zh" => "回答针对人群，而非某一个人；请查看此人的档案页",
                _ => "answers are about groups of people, not one person; see that person's profile page",
            };
            return Err(AskError::NotUnderstood(ask::can_answer(lang, &self.metrics_layer, Some(why.into()))));
        }
        let definitions = self.flow_definitions();
        let segments: Vec<String> = definitions.segments.keys().cloned().collect();
        let flows: Vec<String> = definitions.current_flows().map(|f| f.id.clone()).collect();
        let mut events =
            self.analytics_reader.event_names(KNOWN_EVENTS).map_err(|e| AskError::Failed(e.to_string()))?;
        events.retain(|e| !e.starts_with(tutti_core::event::RESERVED_ID_PREFIX));
        let cx = Context {
            now: now.unwrap_or_else(|| self.clock.now_ms()),
            zone: &tz,
            zone_name: &zone_name,
            layer: &self.metrics_layer,
            events: &events,
            segments: &segments,
            flows: &flows,
        };
        if let Some(refused) = ask::refusal(question, &self.metrics_layer) {
            return Err(AskError::NotUnderstood(refused.message));
        }
        if let Some((query, method)) = self.model_reading(question, &cx) {
            let assumptions = vec![match lang {
                "vi" => format!("mô hình {method} đọc câu hỏi thành truy vấn bên dưới"),
                "zh" => format!("模型 {method} 将问题读作下面的查询"),
                _ => format!("the model {method} read the question as the query below"),
            }];
            let mut answer = self.runner_answer(query, lang, assumptions, &tz)?;
            answer.method = method;
            return Ok(answer);
        }
        let reading = ask::read(question, &cx).map_err(|e| AskError::NotUnderstood(e.message))?;
        self.runner_answer(reading.query, reading.language, reading.assumptions, &tz)
    }

    /// The structured query a model routed for `question` (through the `ai` connector, which writes its audit
    /// record) read the question into, with `<provider>/<model>`; `None` when no model is routed, the call
    /// failed, or what came back is not a query of the metrics layer, and the local reader reads it instead.
    /// What the model writes is only ever a query, checked here; no SQL it might write is run.
    fn model_reading(&self, question: &str, cx: &Context<'_>) -> Option<(Query, String)> {
        let ai = self.checks.connectors.get("ai")?;
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let layer = cx.layer;
        let named = |names: &tutti_analytics::metrics::Names, name: &str| serde_json::json!({"name": name, "label": names.label("en", name)});
        let names = serde_json::json!({
            "measures": layer.measures.values().map(|m| named(&m.names, &m.name)).collect::<Vec<_>>(),
            "dimensions": layer.dimensions.values().map(|d| named(&d.names, &d.name)).collect::<Vec<_>>(),
            "grains": layer.grains.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
            "events": cx.events.iter().take(200).collect::<Vec<_>>(),
            "segments": cx.segments,
            "flows": cx.flows,
        });
        let payload = serde_json::json!({
            "question": question,
            "now": tutti_core::time::format_timestamp(cx.now),
            "time_zone": cx.zone_name,
            "names": names,
            "schema": query_schema(),
        });
        let action = tutti_connectors::Action {
            key: "question",
            profile: 0,
            flow: "",
            step: "",
            operation: "question",
            category: "transactional",
            channel: "ai",
            payload: &payload,
            now: self.clock.now_ms(),
            tracking: false,
        };
        let answered = match runtime.block_on(ai.sender.send(action)) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = ?e, "the model could not read a question; the local reader does");
                return None;
            }
        };
        let method = answered["method"].as_str().filter(|m| *m != "local")?.to_owned();
        let query: Query = match serde_json::from_value(answered["query"].clone()) {
            Ok(q) => q,
            Err(e) => {
                tracing::warn!(error = %e, "a model's query is not a structured query; the local reader reads the question");
                return None;
            }
        };
        if let Err(e) = query.check(layer) {
            tracing::warn!(error = %e, "a model's query does not fit the metrics layer; the local reader reads the question");
            return None;
        }
        Some((query, method))
    }

    /// Runs a structured query (reports, and what a model wrote for a question), answering in `lang`.
    /// Blocking.
    pub fn run_query(&self, query: Query, lang: &str, zone: Option<&str>) -> Result<Answer, AskError> {
        let (tz, _) = self.zone(zone)?;
        let lang = if ["en", "vi", "zh"].contains(&lang) { lang } else { "en" };
        self.runner_answer(query, lang, Vec::new(), &tz)
    }

    /// Starts the analytics tables over: emptied now, made again from the log by the projector (which looks for
    /// work at least every second).
    /// Blocking (emptying millions of rows takes seconds).
    pub fn rebuild_analytics(&self) -> Result<(), crate::EngineError> {
        let mut store = self.analytics_writer.lock().unwrap_or_else(|e| e.into_inner());
        store.reset(&self.metrics_layer.projection_fingerprint()).map_err(crate::analytics::AnalyticsError::from)?;
        drop(store);
        self.metrics.analytics_seq.store(0, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// How far the analytics tables have come: (projected, processed, durable head) as log sequence numbers.
    pub fn analytics_status(&self) -> Result<(u64, u64, u64), crate::EngineError> {
        let m = &self.metrics;
        let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        Ok((self.analytics_position()?, load(&m.processed_seq), load(&m.log_head)))
    }

    /// How far the analytics store has projected the log (its cursor).
    pub fn analytics_position(&self) -> Result<u64, crate::EngineError> {
        Ok(crate::analytics::cursor(&self.analytics_writer)?.log)
    }
}

#[cfg(test)]
mod tests {
    use super::names_a_person;

    #[test]
    fn questions_about_one_person_are_spotted() {
        for q in [
            "what did an@example.vn buy?",
            "doanh thu của 0912 345 678",
            "revenue for userId 42",
            "+84912345678 的订单",
        ] {
            assert!(names_a_person(q), "{q}");
        }
        for q in ["top 10 products last month", "过去30天每天的收入", "doanh thu năm 2026", "orders on 2026-11-02"]
        {
            assert!(!names_a_person(q), "{q}");
        }
    }
}
