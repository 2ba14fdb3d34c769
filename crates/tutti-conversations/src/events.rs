//! What a mining tells flows: a topic raised in enough conversations is `Conversation Topic Counted` (a flow
//! opens or updates one content task for it, keyed by the topic), and a topic whose last week is well above the
//! weeks before is `Conversation Topic Rose`. The topic is the profile, as a post is in story S4 (anonymous id
//! `topic:<id>`), so flows' entry rules (once per week, dedupe) apply per topic.
//!
//! Message ids say what the event states (the topic and its counts; the topic and its week), so a mining that
//! finds the same again sends nothing new: intake drops a repeated message id.

use serde_json::{Value, json};

use crate::service::{Report, TopicView};
use crate::settings::Settings;

/// One line a content task can carry: the counts, the trend and the examples.
fn summary(t: &TopicView) -> String {
    let won = t.win_rate.map(|r| format!(", won {:.0}%", r * 100.0)).unwrap_or_default();
    let weeks: Vec<String> =
        t.trend.iter().rev().take(8).rev().map(|w| format!("{} {}", w.week, w.conversations)).collect();
    let examples: Vec<String> = t.examples.iter().map(|e| format!("\"{e}\"")).collect();
    format!(
        "{} ({}): {} {}s in {} conversations{won}. Weekly: {}. Customers said: {}",
        t.label,
        t.label_en,
        t.turns,
        t.kind.as_str(),
        t.conversations,
        weeks.join(", "),
        examples.join("; ")
    )
}

/// The events a mining sends (Segment track events, ready for intake).
pub fn topic_events(report: &Report, signals: &Settings) -> Vec<Value> {
    let mut events = Vec::new();
    for t in report.topics.iter().filter(|t| t.conversations >= signals.task_threshold) {
        let last = t.trend.last().map_or(0, |w| w.conversations);
        let before: Vec<u64> = t.trend.iter().rev().skip(1).take(4).map(|w| w.conversations).collect();
        let mean = if before.is_empty() { 0.0 } else { before.iter().sum::<u64>() as f64 / before.len() as f64 };
        let properties = json!({
            "topic": t.id,
            // One task per topic, by its id, which stays from one mining to the next. `taxonomy` names the known
            // objection it is, for a flow that wants one task across languages.
            "topic_key": t.id,
            "taxonomy": t.taxonomy,
            "label": t.label,
            "label_en": t.label_en,
            "language": t.language,
            "kind": t.kind.as_str(),
            "conversations": t.conversations,
            "turns": t.turns,
            "win_rate": t.win_rate,
            "last_week": t.trend.last().map(|w| w.week.clone()),
            "last_week_conversations": last,
            "weekly_mean_before": mean,
            "trend": t.trend.iter().rev().take(8).rev().collect::<Vec<_>>(),
            "examples": t.examples,
            "summary": summary(t),
        });
        let anonymous = format!("topic:{}", t.id);
        events.push(json!({
            "type": "track",
            "event": "Conversation Topic Counted",
            "anonymousId": anonymous,
            "messageId": format!("tutti-topic-{}-{}-{}", t.id, t.conversations, t.turns),
            "properties": properties,
            "context": {"source": "tutti.conversations"},
        }));
        let rose = last >= signals.rise_minimum && before.len() >= 2 && last as f64 >= signals.rise_factor * mean;
        if rose {
            let week = t.trend.last().map(|w| w.week.clone()).unwrap_or_default();
            events.push(json!({
                "type": "track",
                "event": "Conversation Topic Rose",
                "anonymousId": anonymous,
                "messageId": format!("tutti-topic-rose-{}-{week}", t.id),
                "properties": properties,
                "context": {"source": "tutti.conversations"},
            }));
        }
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mine::{Kind, Week};

    fn topic(id: &str, weekly: &[u64]) -> TopicView {
        TopicView {
            id: id.into(),
            label: "Giá cao quá".into(),
            label_en: "Price".into(),
            language: "vi".into(),
            kind: Kind::Objection,
            conversations: weekly.iter().sum(),
            turns: weekly.iter().sum::<u64>() + 3,
            win_rate: Some(0.25),
            win_rate_interval: Some([0.1, 0.4]),
            trend: weekly
                .iter()
                .enumerate()
                .map(|(i, n)| Week { week: format!("2026-11-{:02}", 2 + 7 * i), conversations: *n })
                .collect(),
            examples: vec!["Giá bên em đắt quá".into()],
            taxonomy: Some("price".into()),
        }
    }

    fn report(topics: Vec<TopicView>) -> Report {
        Report {
            mined_at: 0,
            conversations: 100,
            turns: 1_000,
            sentences: 50,
            unassigned: 0,
            topics,
            scripts: Vec::new(),
            centres: Vec::new(),
            grouped_by: "local".into(),
            labelled_by: "local".into(),
            notes: Vec::new(),
        }
    }

    #[test]
    fn counted_above_the_threshold_and_rose_when_the_last_week_jumps() {
        let r = report(vec![topic("t1", &[5, 6, 5, 4, 16]), topic("t2", &[5, 5, 5, 5, 6]), topic("t3", &[1, 2, 1])]);
        let events = topic_events(&r, &Settings::default());
        let names: Vec<(&str, &str)> =
            events.iter().map(|e| (e["anonymousId"].as_str().unwrap(), e["event"].as_str().unwrap())).collect();
        assert_eq!(
            names,
            [
                ("topic:t1", "Conversation Topic Counted"),
                ("topic:t1", "Conversation Topic Rose"),
                ("topic:t2", "Conversation Topic Counted")
            ],
            "t3 is under the threshold; t2 is steady"
        );
        let p = &events[0]["properties"];
        assert_eq!((p["topic_key"].as_str(), p["taxonomy"].as_str()), (Some("t1"), Some("price")));
        assert_eq!(p["conversations"].as_u64(), Some(36));
        assert!(p["summary"].as_str().unwrap().contains("39 objections in 36 conversations, won 25%"), "{p}");
        assert!(p["summary"].as_str().unwrap().contains("\"Giá bên em đắt quá\""));
        // The same counts give the same message ids: a mining that finds nothing new sends nothing new.
        assert_eq!(topic_events(&r, &Settings::default()), events);
    }
}
