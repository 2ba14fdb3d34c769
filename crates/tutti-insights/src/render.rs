//! Reports as text for a terminal.

use std::fmt::Write as _;

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

/// The report as tables: per channel and trait, each value's rates, then the comparisons that were called.
pub fn text(report: &Report) -> String {
    let mut out = String::new();
    let window = match (report.from, report.to) {
        (None, None) => "all days".to_owned(),
        (from, to) => format!(
            "{} to {}",
            from.map_or("the start".to_owned(), |d| d.to_string()),
            to.map_or("the end".to_owned(), |d| d.to_string())
        ),
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn han_characters_take_two_columns() {
        assert_eq!(width("abc"), 3);
        assert_eq!(width("情感"), 4);
        assert_eq!(width("cảm xúc"), 7);
        assert_eq!(pad("情感", 6), "情感  ");
    }
}
