//! Reports as text for a terminal.

use std::fmt::Write as _;
use tutti_core::html::escape;

use crate::analysis::{Comparison, Interval, Report, Verdict};

/// Display width: Han, kana, Hangul and full-width forms take two columns.
fn width(s: &str) -> usize {
    s.chars()
        .map(|c| match c as u32 {
            0x1100..=0x115F
            | 0x2E80..=0xA4CF
            | 0xAC00..=0xD7A3
            | 0xF900..=0xFAFF
            | 0xFE30..=0xFE4F
            | 0xFF00..=0xFF60
            | 0xFFE0..=0xFFE6
            | 0x20000..=0x3FFFD => 2,
            _ => 1,
        })
        .sum()
}

fn pad(s: &str, to: usize) -> String {
    format!("{s}{}", " ".repeat(to.saturating_sub(width(s))))
}

fn percent(x: f64) -> String {
    format!("{:.2}%", x * 100.0)
}

fn rate(i: &Option<Interval>) -> String {
    match i {
        Some(i) => format!("{} ({}–{})", percent(i.mean), percent(i.low), percent(i.high)),
        None => "not enough data".to_owned(),
    }
}

fn signed(x: f64) -> String {
    format!("{:+.0}%", x * 100.0)
}

/// One comparison as a sentence, worded as an association.
pub fn sentence(channel: &str, trait_name: &str, c: &Comparison) -> String {
    let what = c.metric.label();
    match (c.verdict, c.probability, c.lift) {
        (Verdict::NotEnoughData, _, _) | (_, None, _) => {
            format!("{channel}, {trait_name}: {} vs {}: not enough data to compare {what} rates", c.a, c.b)
        }
        (verdict, Some(p), lift) => {
            let lift = lift.map_or(String::new(), |l| {
                format!(" (expected {}, 95% interval {} to {})", signed(l.mean), signed(l.low), signed(l.high))
            });
            let call = match verdict {
                Verdict::Better => "likely higher",
                Verdict::Worse => "likely lower",
                _ => "inconclusive",
            };
            format!(
                "{channel}, {trait_name}: creatives tagged {} had a {what} rate {call} than those tagged {}{lift}; \
                 probability {:.1}% (bar {:.1}%)",
                c.a,
                c.b,
                p * 100.0,
                c.bar * 100.0
            )
        }
    }
}

/// The days a report covers, in words.
fn days_covered(report: &Report) -> String {
    match (report.from, report.to) {
        (None, None) => "all days".to_owned(),
        (from, to) => format!(
            "{} to {}",
            from.map_or("the start".to_owned(), |d| d.to_string()),
            to.map_or("the end".to_owned(), |d| d.to_string())
        ),
    }
}

/// The report as tables: per channel and trait, each value's rates, then the comparisons that were called.
pub fn text(report: &Report) -> String {
    let mut out = String::new();
    let window = days_covered(report);
    let _ = writeln!(
        out,
        "Creative insights, {window} ({} posterior draws). Associations, not proven causes.",
        report.draws
    );
    if report.channels.is_empty() {
        let _ = writeln!(out, "\nNo performance data for our creatives yet.");
    }
    for ch in &report.channels {
        let t = &ch.totals;
        let _ = writeln!(
            out,
            "\n== {} == {} creatives, {} impressions, {} clicks, {} conversions",
            ch.channel, ch.creatives, t.impressions, t.clicks, t.conversions
        );
        for tr in &ch.traits {
            let _ = writeln!(out, "\n  {}", tr.name);
            let name_width = tr.values.iter().map(|v| width(&v.value)).max().unwrap_or(5).max(5);
            let _ = writeln!(
                out,
                "    {}  {:>9}  {:>12}  {:<30}  conversion",
                pad("value", name_width),
                "creatives",
                "impressions",
                "click-through (95% interval)"
            );
            for v in &tr.values {
                let _ = writeln!(
                    out,
                    "    {}  {:>9}  {:>12}  {:<30}  {}",
                    pad(&v.value, name_width),
                    v.creatives,
                    v.totals.impressions,
                    rate(&v.click_through),
                    rate(&v.conversion)
                );
            }
            let called: Vec<&Comparison> =
                tr.comparisons.iter().filter(|c| matches!(c.verdict, Verdict::Better | Verdict::Worse)).collect();
            for c in &called {
                let _ = writeln!(out, "    * {}", sentence(&ch.channel, &tr.name, c));
            }
            let open = tr.comparisons.iter().filter(|c| c.verdict == Verdict::Inconclusive).count();
            let thin = tr.comparisons.iter().filter(|c| c.verdict == Verdict::NotEnoughData).count();
            if called.is_empty() || open + thin > 0 {
                let _ = writeln!(
                    out,
                    "    ({} comparison(s) called, {open} inconclusive, {thin} without enough data)",
                    called.len()
                );
            }
        }
    }
    if report.unknown_creatives > 0 {
        let _ = writeln!(
            out,
            "\n{} performance row(s) name creatives that are not known; left out.",
            report.unknown_creatives
        );
    }
    out
}

/// One trait's values on one channel as horizontal bars (posterior mean) with 95% interval whiskers.
fn rate_chart(values: &[crate::analysis::ValueReport]) -> String {
    let rows: Vec<(&str, Interval)> =
        values.iter().filter_map(|v| v.click_through.map(|i| (v.value.as_str(), i))).collect();
    if rows.is_empty() {
        return "<p class=\"thin\">Not enough data to chart.</p>".to_owned();
    }
    let max = rows.iter().map(|(_, i)| i.high).fold(0.0f64, f64::max).max(1e-9) * 1.1;
    let (label, plot, row) = (160.0, 420.0, 26.0);
    let height = rows.len() as f64 * row + 24.0;
    let x = |v: f64| label + v / max * plot;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" role=\"img\" \
         font-family=\"sans-serif\" aria-label=\"click-through by value\">",
        label + plot + 90.0
    );
    for (n, (value, i)) in rows.iter().enumerate() {
        let y = n as f64 * row + 4.0;
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"12\">{}</text>\
             <rect x=\"{label}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"16\" fill=\"#7aa6d8\"/>\
             <line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#1d3557\" stroke-width=\"2\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\">{}</text>",
            label - 6.0,
            y + 12.0,
            escape(value),
            x(i.mean) - label,
            x(i.low),
            x(i.high),
            y + 8.0,
            y + 8.0,
            x(i.high) + 4.0,
            y + 12.0,
            percent(i.mean)
        );
    }
    let axis = rows.len() as f64 * row + 12.0;
    let _ = write!(
        svg,
        "<line x1=\"{label}\" x2=\"{:.1}\" y1=\"{axis:.1}\" y2=\"{axis:.1}\" stroke=\"#999\"/>\
         <text x=\"{label}\" y=\"{:.1}\" font-size=\"10\">0%</text>\
         <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\">{}</text></svg>",
        label + plot,
        axis + 11.0,
        label + plot,
        axis + 11.0,
        percent(max)
    );
    svg
}

/// Shares of one trait's values per owner, as stacked bars.
fn share_chart(view: &crate::competitors::TraitView) -> String {
    let rows: Vec<&crate::competitors::Shares> = view.rows.iter().filter(|r| r.period == "all").collect();
    let values: std::collections::BTreeSet<&str> =
        rows.iter().flat_map(|r| r.shares.keys().map(String::as_str)).collect();
    let palette = ["#264653", "#2a9d8f", "#e9c46a", "#f4a261", "#e76f51", "#8ab17d", "#6d597a", "#b56576"];
    let (label, plot, row) = (160.0, 420.0, 26.0);
    let height = rows.len() as f64 * row + 30.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" role=\"img\" \
         font-family=\"sans-serif\" aria-label=\"{} by owner\">",
        label + plot + 20.0,
        escape(&view.name)
    );
    for (n, r) in rows.iter().enumerate() {
        let y = n as f64 * row + 4.0;
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"12\">{} ({})</text>",
            label - 6.0,
            y + 12.0,
            escape(&r.owner),
            r.creatives
        );
        let mut at = label;
        for (k, v) in values.iter().enumerate() {
            let share = r.shares.get(*v).copied().unwrap_or(0.0);
            let w = share * plot;
            if w > 0.0 {
                let _ = write!(
                    svg,
                    "<rect x=\"{at:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"16\" fill=\"{}\">\
                     <title>{}: {}</title></rect>",
                    palette[k % palette.len()],
                    escape(v),
                    percent(share)
                );
            }
            at += w;
        }
    }
    let mut x = label;
    let legend = rows.len() as f64 * row + 16.0;
    for (k, v) in values.iter().enumerate() {
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\">{}</text>",
            legend - 9.0,
            palette[k % palette.len()],
            x + 13.0,
            legend,
            escape(v)
        );
        x += 14.0 + 7.0 * width(v) as f64 + 10.0;
    }
    svg.push_str("</svg>");
    svg
}

/// The report as one self-contained HTML page: charts drawn here as SVG, no scripts, no fonts or styles from
/// elsewhere, so it opens offline and can be mailed as a file.
pub fn html(report: &Report, competitors: &[crate::competitors::TraitView]) -> String {
    let mut out = String::from(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Tutti creative insights</title><style>\
         body{font-family:system-ui,-apple-system,\"Segoe UI\",\"Noto Sans\",\"PingFang SC\",sans-serif;\
         margin:2rem auto;max-width:960px;color:#1d1d1d;padding:0 1rem}\
         h1{font-size:1.5rem}h2{border-bottom:1px solid #ddd;padding-bottom:.3rem;margin-top:2rem}\
         table{border-collapse:collapse;margin:.5rem 0}td,th{padding:.2rem .6rem;text-align:right;border-bottom:1px solid #eee}\
         td:first-child,th:first-child{text-align:left}.called{color:#1d3557;font-weight:600}.thin{color:#777}\
         .note{color:#555;font-size:.9rem}</style></head><body>",
    );
    let window = days_covered(report);
    let _ = write!(
        out,
        "<h1>Creative insights</h1><p class=\"note\">{} · {} posterior draws · a value is called better when the \
         probability that it beats another reaches the bar shown (95%, raised when a trait has many values). \
         These are associations between tags and results, not proof that a tag caused them.</p>",
        escape(&window),
        report.draws
    );
    if report.channels.is_empty() {
        out.push_str("<p>No performance data for our creatives yet.</p>");
    }
    for ch in &report.channels {
        let t = &ch.totals;
        let _ = write!(
            out,
            "<h2>{}</h2><p>{} creatives · {} impressions · {} clicks · {} conversions</p>",
            escape(&ch.channel),
            ch.creatives,
            t.impressions,
            t.clicks,
            t.conversions
        );
        for tr in &ch.traits {
            let _ = write!(out, "<h3>{}</h3>{}", escape(&tr.name), rate_chart(&tr.values));
            out.push_str(
                "<table><tr><th>value</th><th>creatives</th><th>impressions</th><th>click-through (95%)</th>\
                 <th>conversion (95%)</th></tr>",
            );
            for v in &tr.values {
                let _ = write!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    escape(&v.value),
                    v.creatives,
                    v.totals.impressions,
                    escape(&rate(&v.click_through)),
                    escape(&rate(&v.conversion))
                );
            }
            out.push_str("</table><ul>");
            for c in &tr.comparisons {
                if matches!(c.verdict, Verdict::Better | Verdict::Worse) {
                    let _ = write!(out, "<li class=\"called\">{}</li>", escape(&sentence(&ch.channel, &tr.name, c)));
                }
            }
            let open = tr.comparisons.iter().filter(|c| c.verdict == Verdict::Inconclusive).count();
            let thin = tr.comparisons.iter().filter(|c| c.verdict == Verdict::NotEnoughData).count();
            let _ = write!(out, "<li class=\"thin\">{open} inconclusive, {thin} without enough data</li></ul>");
        }
    }
    if !competitors.is_empty() {
        out.push_str("<h2>What each owner leans on</h2><p class=\"note\">Share of each owner's creatives per value, all periods.</p>");
        for view in competitors {
            let _ = write!(out, "<h3>{}</h3>{}", escape(&view.name), share_chart(view));
        }
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imported_text_cannot_inject_markup() {
        let mut report = Report::empty(&crate::Options::default());
        let campaign = crate::synth::generate(&crate::synth::Spec::s6(1));
        let mut creatives = campaign.creatives;
        for c in &mut creatives {
            c.channel = "<script>alert(1)</script>".to_owned();
        }
        report.channels = crate::analyze(&creatives, &campaign.performance, &crate::Options::default()).channels;
        let page = html(&report, &crate::competitors::competitor_view(&creatives));
        assert!(!page.contains("<script>"));
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("<svg"));
        // Self-contained: the only address is the SVG namespace; nothing is fetched.
        assert_eq!(page.matches("http").count(), page.matches("http://www.w3.org/2000/svg").count());
        assert!(!page.contains("src=") && !page.contains("href=") && !page.contains("@import"));
    }

    #[test]
    fn han_characters_take_two_columns() {
        assert_eq!(width("abc"), 3);
        assert_eq!(width("情感"), 4);
        assert_eq!(width("cảm xúc"), 7);
        assert_eq!(pad("情感", 6), "情感  ");
    }
}
