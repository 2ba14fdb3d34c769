//! The playbook for agents: each frequent question and objection with the replies that won, as Markdown or as
//! one self-contained HTML page (no script, every text escaped).

use std::fmt::Write as _;

use tutti_core::html::escape;

use crate::mine::scripts::TopicScripts;
use crate::service::{Report, TopicView};

fn percent(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

fn points(x: f64) -> String {
    format!("{:+.0} pt", x * 100.0)
}

/// The playbook as Markdown: topics by how many conversations raised them, each with its replies, best first.
pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Playbook\n");
    let _ = writeln!(
        out,
        "From {} conversations. A reply marked **wins** was followed by more won conversations than the topic's \
         others, with a 95% interval above zero.\n",
        report.conversations
    );
    for (topic, scripts) in with_scripts(report) {
        let _ = writeln!(out, "## {} ({})\n", topic.label.replace('\n', " "), topic.label_en.replace('\n', " "));
        let rate = topic.win_rate.map(percent).unwrap_or_else(|| "no ended conversations".into());
        let _ = writeln!(
            out,
            "{} {}, {} conversations, won {rate}.\n",
            topic.language,
            topic.kind.as_str(),
            topic.conversations
        );
        if scripts.scripts.is_empty() {
            let _ = writeln!(out, "No reply was given often enough to judge.\n");
            continue;
        }
        for s in &scripts.scripts {
            let verdict = if s.winner { "**wins**" } else { "no clear effect" };
            let _ = writeln!(
                out,
                "- \"{}\": {verdict}; won {} of {} ({}), lift {} ({} to {})",
                s.reply.replace('\n', " "),
                s.won,
                s.decided,
                percent(s.win_rate),
                points(s.lift),
                points(s.lift_low),
                points(s.lift_high)
            );
        }
        out.push('\n');
    }
    out
}

/// Each topic, most raised first, with its replies.
fn with_scripts(report: &Report) -> impl Iterator<Item = (&TopicView, &TopicScripts)> {
    report.topics.iter().filter_map(|t| report.scripts.iter().find(|s| s.topic == t.id).map(|s| (t, s)))
}

/// The playbook as one HTML page.
pub fn html(report: &Report) -> String {
    let mut out = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Playbook</title><style>\
         body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}\
         .wins{color:#0a6b2d;font-weight:600}.meta{color:#555}li{margin:.4rem 0}</style></head><body><h1>Playbook</h1>",
    );
    let _ = write!(out, "<p class=\"meta\">From {} conversations.</p>", report.conversations);
    for (topic, scripts) in with_scripts(report) {
        let rate = topic.win_rate.map(percent).unwrap_or_else(|| "no ended conversations".into());
        let _ = write!(
            out,
            "<h2>{} <small class=\"meta\">{}</small></h2><p class=\"meta\">{} {}, {} conversations, won {rate}</p><ul>",
            escape(&topic.label),
            escape(&topic.label_en),
            escape(&topic.language),
            topic.kind.as_str(),
            topic.conversations
        );
        for s in &scripts.scripts {
            let verdict = if s.winner { "<span class=\"wins\">wins</span>" } else { "no clear effect" };
            let _ = write!(
                out,
                "<li>&ldquo;{}&rdquo; &mdash; {verdict}; won {} of {} ({}), lift {} ({} to {})</li>",
                escape(&s.reply),
                s.won,
                s.decided,
                percent(s.win_rate),
                points(s.lift),
                points(s.lift_low),
                points(s.lift_high)
            );
        }
        out.push_str("</ul>");
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mine::Kind;
    use crate::mine::scripts::{Script, TopicScripts};
    use crate::service::TopicView;

    fn report() -> Report {
        let topic = TopicView {
            id: "t1".into(),
            label: "Giá <b>cao</b>".into(),
            label_en: "Price".into(),
            language: "vi".into(),
            kind: Kind::Objection,
            conversations: 120,
            turns: 130,
            win_rate: Some(0.4),
            win_rate_interval: Some([0.3, 0.5]),
            trend: Vec::new(),
            examples: Vec::new(),
            taxonomy: None,
        };
        let script = |reply: &str, winner: bool| Script {
            reply: reply.into(),
            variants: Vec::new(),
            conversations: 40,
            won: 28,
            decided: 38,
            win_rate: 0.737,
            lift: 0.3,
            lift_low: if winner { 0.12 } else { -0.05 },
            lift_high: 0.45,
            winner,
        };
        Report {
            mined_at: 0,
            conversations: 300,
            turns: 3_000,
            sentences: 400,
            unassigned: 10,
            scripts: vec![TopicScripts {
                topic: "t1".into(),
                label: topic.label.clone(),
                label_en: topic.label_en.clone(),
                language: "vi".into(),
                kind: Kind::Objection,
                conversations: 120,
                scripts: vec![
                    script("Gói năm tặng hai tháng <script>alert(1)</script>", true),
                    script("Dạ em hiểu", false),
                ],
            }],
            topics: vec![topic],
            centres: Vec::new(),
            grouped_by: "local".into(),
            labelled_by: "local".into(),
            notes: Vec::new(),
        }
    }

    #[test]
    fn winners_are_marked_and_html_is_escaped() {
        let md = markdown(&report());
        assert!(md.contains("## Giá <b>cao</b> (Price)"), "{md}");
        assert!(md.contains("**wins**; won 28 of 38 (74%), lift +30 pt (+12 pt to +45 pt)"), "{md}");
        assert!(md.contains("\"Dạ em hiểu\": no clear effect"), "{md}");
        let html = html(&report());
        assert!(!html.contains("<script>") && html.contains("&lt;script&gt;alert(1)"), "{html}");
        assert!(html.contains("Giá &lt;b&gt;cao&lt;/b&gt;"));
    }
}
