//! Repairing a draft as the violated rules say: drop the offending sentence, add the missing disclosure, calm the
//! shouting, shorten.

use super::scan;
use super::{Draft, Fix, Gate, Review};
use crate::text::Language;

impl Gate {
    /// Repairs what the violated rules say how to repair. `None` when nothing could be repaired, or the
    /// repair leaves no body.
    pub fn revise(&self, draft: &Draft, review: &Review) -> Option<Draft> {
        let language = draft.language();
        let mut out = draft.clone();
        let mut changed = false;
        let mut additions: Vec<String> = Vec::new();
        let mut openings: Vec<String> = Vec::new();
        let rule_of = |id: &str| self.rules.iter().find(|r| r.id == id);
        // Drops first (they need the spans as reviewed), then calming, additions and shortening.
        for (fi, (field, value)) in draft.fields.iter().enumerate() {
            let mut drop: Vec<(usize, usize)> = Vec::new();
            for v in review.violations.iter().filter(|v| &v.field == field) {
                if let Some(Fix::DropSentence) = rule_of(&v.rule).map(|r| &r.fix) {
                    let start = value.char_indices().nth(v.start).map_or(value.len(), |(i, _)| i);
                    if let Some(sentence) = scan::sentences(value).into_iter().find(|(s, e)| *s <= start && start < *e)
                    {
                        drop.push(sentence);
                    }
                }
            }
            if !drop.is_empty() {
                let mut kept = String::with_capacity(value.len());
                let mut at = 0;
                drop.sort_unstable();
                drop.dedup();
                for (s, e) in drop {
                    if s >= at {
                        kept.push_str(&value[at..s]);
                        at = e;
                    }
                }
                kept.push_str(&value[at..]);
                out.fields[fi].1 = kept.trim().to_owned();
                changed = true;
            }
        }
        for v in &review.violations {
            let Some(rule) = rule_of(&v.rule) else { continue };
            let Some(fi) = out.fields.iter().position(|(k, _)| *k == v.field) else { continue };
            match &rule.fix {
                Fix::Calm => {
                    let calmed = calm(&out.fields[fi].1);
                    changed |= calmed != out.fields[fi].1;
                    out.fields[fi].1 = calmed;
                }
                Fix::Add { texts, at_start } => {
                    let list = if *at_start { &mut openings } else { &mut additions };
                    if let Some(t) =
                        texts.get(&Some(language)).or_else(|| texts.get(&None)).or_else(|| texts.values().next())
                        && !list.contains(t)
                    {
                        list.push(t.clone());
                    }
                }
                _ => {}
            }
        }
        if let Some(bi) = out.body_index() {
            for t in openings.iter().rev() {
                let body = &mut out.fields[bi].1;
                let trimmed = body.trim_start().to_owned();
                *body = format!("{t}{trimmed}");
                changed = true;
            }
            for t in &additions {
                let body = &mut out.fields[bi].1;
                // A disclosure goes before the sign-off, as its own paragraph, not after "Trân trọng.".
                if let Some(at) = sign_off_at(body) {
                    let (before, sign) = body.split_at(at);
                    *body = format!("{}\n\n{t}\n\n{sign}", before.trim_end());
                    changed = true;
                    continue;
                }
                let joiner = if body.is_empty() || language == Language::Zh { "" } else { " " };
                if !body.ends_with(['.', '!', '?', '。', '！', '？']) && !body.is_empty() {
                    body.push(if language == Language::Zh { '。' } else { '.' });
                }
                body.push_str(joiner);
                body.push_str(t);
                changed = true;
            }
        }
        for v in &review.violations {
            if let Some(Fix::Shorten) = rule_of(&v.rule).map(|r| &r.fix)
                && let Some(fi) = out.fields.iter().position(|(k, _)| *k == v.field)
            {
                let limit = v.start;
                let shortened = shorten(&out.fields[fi].1, limit);
                changed |= shortened != out.fields[fi].1;
                out.fields[fi].1 = shortened;
            }
        }
        let body_left = out.body_index().is_some_and(|bi| !out.fields[bi].1.trim().is_empty());
        (changed && body_left).then_some(out)
    }
}

/// Closing lines a message ends with, lower-cased, in the three languages.
const SIGN_OFFS: [&str; 16] = [
    "trân trọng",
    "thân ái",
    "thân mến",
    "best regards",
    "kind regards",
    "regards",
    "best",
    "cheers",
    "thanks",
    "thank you",
    "祝好",
    "祝您生活愉快",
    "再次向您致歉",
    "此致敬礼",
    "谢谢",
    "敬上",
];

/// Where the body's last paragraph starts, when that paragraph is a sign-off ("Trân trọng.", "Best regards,
/// Acme", "祝好。").
pub(crate) fn sign_off_at(body: &str) -> Option<usize> {
    let at = body.trim_end().rfind("\n\n")? + 2;
    let last = body[at..].trim().to_lowercase();
    let first_line = last.lines().next().unwrap_or("").trim_end_matches(['.', ',', '!', '。', '，', '！']);
    (last.chars().count() <= 60 && SIGN_OFFS.contains(&first_line)).then_some(at)
}

/// Sentence case for shouted runs, one exclamation mark where there were several.
fn calm(value: &str) -> String {
    let mut out = value.to_owned();
    for (s, e, _) in scan::shouted_runs(value).into_iter().rev() {
        let lower = value[s..e].to_lowercase();
        let mut chars = lower.chars();
        let first: String = chars.next().map(|c| c.to_uppercase().collect()).unwrap_or_default();
        out.replace_range(s..e, &(first + chars.as_str()));
    }
    let mut calmed = String::with_capacity(out.len());
    let mut last_bang = false;
    for c in out.chars() {
        let bang = scan::is_bang(c);
        if !(bang && last_bang) {
            calmed.push(c);
        }
        last_bang = bang || (last_bang && c == ' ');
    }
    calmed
}

/// Cuts to at most `limit` characters: at the last sentence that fits, or the last word with an ellipsis.
fn shorten(value: &str, limit: usize) -> String {
    if value.chars().count() <= limit {
        return value.to_owned();
    }
    let cut = value.char_indices().nth(limit).map_or(value.len(), |(i, _)| i);
    if let Some((_, end)) = scan::sentences(value).into_iter().take_while(|(_, e)| *e <= cut).last() {
        return value[..end].trim_end().to_owned();
    }
    let room = value.char_indices().nth(limit.saturating_sub(1)).map_or(value.len(), |(i, _)| i);
    let head = &value[..room];
    let at = head.rfind(char::is_whitespace).filter(|i| *i > 0).unwrap_or(head.len());
    format!("{}…", head[..at].trim_end())
}
