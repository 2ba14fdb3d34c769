//! Reviewing a draft: every field read once against the selected packs' phrases, then their expressions and
//! requirements.

use std::collections::BTreeMap;

use aho_corasick::AhoCorasick;

use super::meaning;
use super::scan::{self, View};
use super::{Check, Draft, Gate, Meta, Recipient, Requirement, Review, Role, Rule, Selection, Severity, Violation};
use crate::text;

impl Gate {
    /// Reviews a draft for a recipient against the selected packs.
    pub fn review(&self, draft: &Draft, recipient: &Recipient, selection: Selection) -> Review {
        let on = |rule: &Rule| selection.0 & (1 << rule.pack) != 0 && rule.applies(draft);
        let mut violations = Vec::new();
        // Sentences the classifier leans towards a rule's family without reaching the threshold.
        let mut uncertain = Vec::new();
        // For `require` rules, over all fields: what made each required (first hit) and whether it is met.
        let mut required: BTreeMap<u32, Requirement> = BTreeMap::new();
        for (fi, (field, value)) in draft.fields.iter().enumerate() {
            let view = View::new(value);
            // The meaning classifier's reading of the field's sentences, made once when a rule needs it.
            let mut readings: Option<Vec<(usize, usize, usize, f32)>> = None;
            // (rule, role) -> spans in `view.lower`
            let mut hits: BTreeMap<(u32, Role), Vec<(usize, usize)>> = BTreeMap::new();
            let mut collect = |automaton: &AhoCorasick, meta: &[Meta]| {
                for m in automaton.find_overlapping_iter(view.lower.as_str()) {
                    let meta = meta[m.pattern().as_usize()];
                    if on(&self.rules[meta.rule as usize]) && text::stands_alone(&view.lower, m.start(), m.end()) {
                        hits.entry((meta.rule, meta.role)).or_default().push((m.start(), m.end()));
                    }
                }
            };
            collect(&self.plain, &self.plain_meta);
            if !text::has_diacritics(value) {
                collect(&self.folded, &self.folded_meta);
            }
            for (ri, rule) in self.rules.iter().enumerate().filter(|(_, r)| on(r)) {
                let r = ri as u32;
                let excepts = hits.get(&(r, Role::Except)).map(Vec::as_slice).unwrap_or_default();
                let kept = |spans: Option<&Vec<(usize, usize)>>| -> Vec<(usize, usize)> {
                    let mut spans: Vec<(usize, usize)> = spans
                        .into_iter()
                        .flatten()
                        .copied()
                        .filter(|(s, e)| !excepts.iter().any(|(xs, xe)| xs < e && s < xe))
                        .collect();
                    spans.sort_by_key(|(s, e)| (*s, usize::MAX - e));
                    let mut out: Vec<(usize, usize)> = Vec::new();
                    for span in spans {
                        if out.last().is_none_or(|last| span.0 >= last.1) {
                            out.push(span);
                        }
                    }
                    out
                };
                let mut flag = |start: usize, end: usize, detail: String| {
                    violations.push(self.violation(rule, field, value, (start, end), detail));
                };
                match &rule.check {
                    Check::Phrases { patterns } => {
                        let mut found = hits.get(&(r, Role::Hit)).cloned().unwrap_or_default();
                        for p in patterns {
                            found.extend(p.find_iter(&view.lower).map(|m| (m.start(), m.end())));
                        }
                        for (s, e) in kept(Some(&found)) {
                            let (s, e) = view.original(s, e);
                            flag(s, e, String::new());
                        }
                    }
                    Check::Require { at_start, .. } => {
                        let entry = required.entry(r).or_default();
                        if entry.because.is_none()
                            && let Some((s, e)) = kept(hits.get(&(r, Role::When))).first().copied()
                        {
                            let (s, e) = view.original(s, e);
                            entry.because = Some((fi, s, e));
                        }
                        let opening = value.len() - value.trim_start().len();
                        entry.met |= match at_start {
                            false => hits.contains_key(&(r, Role::AnyOf)),
                            // Only in the body, and only as its first words.
                            true => {
                                Some(fi) == draft.body_index()
                                    && hits
                                        .get(&(r, Role::AnyOf))
                                        .into_iter()
                                        .flatten()
                                        .any(|(s, e)| view.original(*s, *e).0 == opening)
                            }
                        };
                    }
                    Check::PersonalData => {
                        for (s, e) in scan::emails(value) {
                            let address = value[s..e].to_lowercase();
                            let own = recipient.emails.iter().any(|m| m.trim().eq_ignore_ascii_case(&address));
                            if !own && !self.allowed.contains(&address) {
                                flag(s, e, "an email address that is not the recipient's".into());
                            }
                        }
                        for n in scan::long_numbers(value) {
                            if n.digits.len() > 15 {
                                flag(n.start, n.end, "a long number, like a card or account number".into());
                                continue;
                            }
                            let own = recipient.phones.iter().any(|p| scan::same_phone(p, &n.digits));
                            let allowed = self.allowed.iter().any(|a| scan::same_phone(a, &n.digits));
                            if !own && !allowed {
                                flag(n.start, n.end, "a phone number that is not the recipient's".into());
                            }
                        }
                        for (s, e, what) in scan::raw_ids(value) {
                            flag(s, e, format!("{what}: internal identifiers never go in copy"));
                        }
                        for id in
                            recipient.ids.iter().filter(|id| id.len() >= 6 && id.chars().any(|c| c.is_ascii_digit()))
                        {
                            for (s, _) in value.match_indices(id.as_str()) {
                                flag(s, s + id.len(), "the recipient's own identifier".into());
                            }
                        }
                    }
                    Check::Tone { shouted, run, total } => {
                        for (s, e, words) in scan::shouted_runs(value) {
                            if words > *shouted {
                                flag(s, e, format!("{words} words in capitals; at most {shouted}"));
                            }
                        }
                        let mut count = 0;
                        let mut streak: Option<(usize, usize, usize)> = None;
                        let mut streaks = Vec::new();
                        for (i, c) in value.char_indices() {
                            if scan::is_bang(c) {
                                count += 1;
                                streak = Some(match streak {
                                    Some((s, _, n)) => (s, i + c.len_utf8(), n + 1),
                                    None => (i, i + c.len_utf8(), 1),
                                });
                            } else {
                                streaks.extend(streak.take());
                            }
                        }
                        streaks.extend(streak);
                        let long: Vec<_> = streaks.iter().filter(|(_, _, n)| n > run).collect();
                        for (s, e, n) in &long {
                            flag(*s, *e, format!("{n} exclamation marks in a row; at most {run}"));
                        }
                        if count > *total && long.is_empty() {
                            let mut seen = 0;
                            if let Some((s, e, _)) = streaks.iter().find(|(_, _, n)| {
                                seen += n;
                                seen > *total
                            }) {
                                flag(*s, *e, format!("{count} exclamation marks; at most {total}"));
                            }
                        }
                    }
                    Check::Length { max, segments } => {
                        let is_body = fi + 1 == draft.fields.len() || field == "body" || field == "text";
                        if let Some(limit) = segments.get(&draft.channel).filter(|_| is_body) {
                            let parts = crate::sms::segments(value);
                            if parts.parts > *limit {
                                let keep = crate::sms::fits(value, *limit);
                                let cut = value.char_indices().nth(keep).map_or(value.len(), |(i, _)| i);
                                flag(
                                    cut,
                                    value.len(),
                                    format!(
                                        "{} parts in {} ({} characters); at most {limit}",
                                        parts.parts,
                                        parts.encoding.name(),
                                        parts.chars
                                    ),
                                );
                            }
                        }
                        let key = format!("{}.{field}", draft.channel);
                        let limit = max.get(&key).or_else(|| {
                            (fi + 1 == draft.fields.len() || field == "body" || field == "text")
                                .then(|| max.get(&draft.channel))
                                .flatten()
                        });
                        let chars = value.chars().count();
                        if let Some(limit) = limit
                            && chars > *limit
                        {
                            let cut = value.char_indices().nth(*limit).map_or(value.len(), |(i, _)| i);
                            flag(cut, value.len(), format!("{chars} characters; at most {limit} for {key}"));
                        }
                    }
                }
                // The rule's family, read in the field's sentences: those its phrases did not already flag
                // and no `except` phrase excuses.
                if let Some(family) = rule.meaning {
                    let readings = readings.get_or_insert_with(|| {
                        meaning::read_sentences(&self.meaning, &self.without_own_contacts(value, recipient))
                    });
                    let excused: Vec<(usize, usize)> = excepts.iter().map(|(s, e)| view.original(*s, *e)).collect();
                    for &(s, e, f, p) in readings.iter().filter(|r| r.2 == family) {
                        let overlaps = |(a, b): (usize, usize)| a < e && s < b;
                        let flagged = violations.iter().any(|v: &Violation| {
                            v.rule == rule.id
                                && v.field == *field
                                && overlaps(char_span_to_bytes(value, v.start, v.end))
                        });
                        if flagged || excused.iter().copied().any(overlaps) {
                            continue;
                        }
                        let detail = format!("read as {} ({:.0}%)", meaning::FAMILIES[f], p * 100.0);
                        let v = self.violation(rule, field, value, (s, e), detail);
                        if p >= meaning::THRESHOLD {
                            violations.push(v);
                        } else {
                            uncertain.push(v);
                        }
                    }
                }
            }
        }
        for (r, Requirement { because, met }) in required {
            let rule = &self.rules[r as usize];
            let Check::Require { conditional, .. } = rule.check else { continue };
            if met || (conditional && because.is_none()) {
                continue;
            }
            let (fi, s, e, detail) = match because {
                Some((fi, s, e)) => (fi, s, e, "required because of this".to_owned()),
                None => {
                    let fi = draft.body_index().unwrap_or_default();
                    (fi, 0, draft.fields.get(fi).map_or(0, |f| f.1.len()), String::new())
                }
            };
            if let Some((field, value)) = draft.fields.get(fi) {
                violations.push(self.violation(rule, field, value, (s, e), detail));
            }
        }
        let passed = violations.iter().all(|v| v.severity == Severity::Warn);
        Review { passed, violations, uncertain }
    }

    /// The text with the recipient's own contact details and the company's allowed ones blanked out (spaces of
    /// the same length, so spans still line up): the classifier reads what is left, since a message may carry
    /// those.
    fn without_own_contacts(&self, value: &str, recipient: &Recipient) -> String {
        let mut out = value.to_owned();
        let mut blank = |s: usize, e: usize| out.replace_range(s..e, &" ".repeat(e - s));
        for (s, e) in scan::emails(value) {
            let address = value[s..e].to_lowercase();
            if recipient.emails.iter().any(|m| m.trim().eq_ignore_ascii_case(&address))
                || self.allowed.contains(&address)
            {
                blank(s, e);
            }
        }
        for n in scan::long_numbers(value) {
            let own = recipient.phones.iter().any(|p| scan::same_phone(p, &n.digits));
            if own || self.allowed.iter().any(|a| scan::same_phone(a, &n.digits)) {
                blank(n.start, n.end);
            }
        }
        out
    }

    fn violation(&self, rule: &Rule, field: &str, value: &str, (s, e): (usize, usize), detail: String) -> Violation {
        let start = value[..s].chars().count();
        Violation {
            rule: rule.id.clone(),
            says: rule.says.clone(),
            why: rule.why.clone(),
            severity: rule.severity,
            field: field.to_owned(),
            start,
            end: start + value[s..e].chars().count(),
            excerpt: value[s..e].to_owned(),
            detail,
        }
    }
}

/// A span in characters as bytes of `value`.
fn char_span_to_bytes(value: &str, start: usize, end: usize) -> (usize, usize) {
    let at = |n: usize| value.char_indices().nth(n).map_or(value.len(), |(i, _)| i);
    (at(start), at(end))
}
