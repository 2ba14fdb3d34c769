//! Questions read into structured queries without a model, in English, Vietnamese and Chinese.
//!
//! The reader spots phrases: periods (`periods.rs`), the measures and dimensions of the metrics layer by their
//! words, the fixed words of rankings, grains, people, comparison and negation (`words.rs`), and the names of
//! events, segments and flows Tutti knows. It answers the shapes below and says so when a question is none of
//! them; it never guesses a number.
//!
//! - top or bottom N of a dimension by a measure in a period;
//! - a measure over a period, in total or by day, week or month;
//! - a measure in two periods compared;
//! - how many people did X (and not Y) in a period;
//! - a segment's size; a flow's totals.

pub mod periods;
pub mod words;

use jiff::tz::TimeZone;

use crate::metrics::{Grain, MetricsLayer, Names, Source};
use crate::query::{MetricQuery, Order, PeopleQuery, Period, Query};

/// The longest question read.
pub const MAX_QUESTION_CHARS: usize = 1000;

/// What the reader knows besides the question.
pub struct Context<'a> {
    /// When the question is asked, in milliseconds.
    pub now: i64,
    pub zone: &'a TimeZone,
    pub zone_name: &'a str,
    pub layer: &'a MetricsLayer,
    /// Event names seen in the data.
    pub events: &'a [String],
    pub segments: &'a [String],
    pub flows: &'a [String],
}

/// A question read.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub query: Query,
    /// `en`, `vi` or `zh`.
    pub language: &'static str,
    /// What the reader took for granted, in the question's language.
    pub assumptions: Vec<String>,
}

/// A question the reader cannot answer, with what it can answer, in the question's language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotUnderstood {
    pub language: &'static str,
    pub message: String,
}

/// The language a question is in: `vi`, `zh`, or `en` for anything else.
pub fn language(question: &str) -> &'static str {
    match tutti_ai::text::detect(question) {
        tutti_ai::text::Language::Vi => "vi",
        tutti_ai::text::Language::Zh => "zh",
        _ if question.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)) => "zh",
        _ if tutti_ai::text::has_diacritics(question) => "vi",
        _ => "en",
    }
}

/// Lower case, composed, without Vietnamese tone marks, and with full-width punctuation as spaces: the form
/// questions and words are matched in.
pub fn fold(text: &str) -> String {
    let folded = tutti_ai::text::fold(&tutti_ai::text::normalize(text));
    folded
        .chars()
        .map(|c| match c {
            '，' | '。' | '？' | '！' | '：' | '；' | '、' | '（' | '）' | '「' | '」' | '“' | '”' | '‘' | '’'
            | '?' | '!' | ',' | ';' | ':' | '(' | ')' | '"' | '\'' => ' ',
            c => c,
        })
        .collect()
}

/// A number written in digits, English words or Chinese numerals ("7", "seven", "七", "十五", "两").
pub fn number(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(n) = text.parse::<i64>() {
        return Some(n);
    }
    let english = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
        "twenty",
    ];
    if let Some(n) = english.iter().position(|w| *w == text) {
        return Some(n as i64);
    }
    match text {
        "thirty" => return Some(30),
        "sixty" => return Some(60),
        "ninety" => return Some(90),
        "hundred" | "a hundred" => return Some(100),
        _ => {}
    }
    let digit =
        |c: char| "零一二三四五六七八九".chars().position(|d| d == c).map(|d| d as i64).or((c == '两').then_some(2));
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() || !chars.iter().all(|c| digit(*c).is_some() || *c == '十' || *c == '百') {
        return None;
    }
    let (mut total, mut current) = (0i64, 0i64);
    for c in chars {
        match c {
            '百' => {
                total += current.max(1) * 100;
                current = 0;
            }
            '十' => {
                total += current.max(1) * 10;
                current = 0;
            }
            c => current = digit(c)?,
        }
    }
    Some(total + current)
}

/// Where `phrase` occurs in `text`: as whole words for Latin text, anywhere for Han characters.
fn occurrences(text: &str, phrase: &str) -> Vec<(usize, usize)> {
    if phrase.is_empty() {
        return Vec::new();
    }
    let han = phrase.chars().any(|c| !c.is_ascii() && c.is_alphabetic() && !c.is_lowercase() && !c.is_uppercase());
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find(phrase) {
        let (s, e) = (from + i, from + i + phrase.len());
        let glued_before = text[..s].chars().next_back().is_some_and(|c| c.is_alphanumeric() && !is_han(c));
        let glued_after = text[e..].chars().next().is_some_and(|c| c.is_alphanumeric() && !is_han(c));
        if han || (!glued_before && !glued_after) {
            out.push((s, e));
        }
        from = s + phrase.len().max(1);
        while !text.is_char_boundary(from) {
            from += 1;
        }
    }
    out
}

fn is_han(c: char) -> bool {
    ('\u{4e00}'..='\u{9fff}').contains(&c) || ('\u{3400}'..='\u{4dbf}').contains(&c)
}

/// Phrase spotting over a question, remembering what was already taken.
struct Spotter {
    text: String,
    taken: Vec<(usize, usize)>,
}

impl Spotter {
    fn free(&self, s: usize, e: usize) -> bool {
        !self.taken.iter().any(|(a, b)| s < *b && *a < e)
    }

    /// The longest free occurrence of any of `phrases`, with the phrase's index.
    fn longest<'p>(&self, phrases: impl IntoIterator<Item = (usize, &'p str)>) -> Option<(usize, usize, usize)> {
        let mut best: Option<(usize, usize, usize)> = None;
        for (i, p) in phrases {
            for (s, e) in occurrences(&self.text, p) {
                if self.free(s, e) && best.is_none_or(|(bs, be, _)| e - s > be - bs || (e - s == be - bs && s < bs)) {
                    best = Some((s, e, i));
                }
            }
        }
        best
    }

    fn any(&self, phrases: &[&str]) -> Option<(usize, usize)> {
        self.longest(phrases.iter().copied().enumerate()).map(|(s, e, _)| (s, e))
    }

    fn take(&mut self, s: usize, e: usize) {
        self.taken.push((s, e));
    }
}

/// The words of a layer entry in `lang`, and in English (people mix them), folded.
fn entry_words(names: &Names, name: &str, lang: &str) -> Vec<String> {
    let mut out: Vec<String> = names.words.get(lang).into_iter().flatten().map(|w| fold(w)).collect();
    if lang != "en" {
        out.extend(names.words.get("en").into_iter().flatten().map(|w| fold(w)));
    }
    out.push(name.replace('_', " "));
    out.retain(|w| !w.trim().is_empty());
    out
}

/// What no reading may answer, whoever reads the question (this reader or a model): forecasts, "why", and
/// people's contact details; with what can be answered.
pub fn refusal(question: &str, layer: &MetricsLayer) -> Option<NotUnderstood> {
    let lang = language(question);
    let spot = Spotter { text: format!(" {} ", fold(question)), taken: Vec::new() };
    for (cues, why) in [(words::FUTURE, "future"), (words::WHY, "why"), (words::PERSONAL, "personal")] {
        if spot.any(cues).is_some() {
            return Some(NotUnderstood {
                language: lang,
                message: can_answer(lang, layer, Some(words_for(lang, why))),
            });
        }
    }
    None
}

/// Reads a question.
pub fn read(question: &str, cx: &Context<'_>) -> Result<Reading, NotUnderstood> {
    let lang = language(question);
    let refuse = |why: Option<String>| NotUnderstood { language: lang, message: can_answer(lang, cx.layer, why) };
    if question.chars().count() > MAX_QUESTION_CHARS {
        return Err(refuse(Some(words_for(lang, "too_long"))));
    }
    if let Some(refused) = refusal(question, cx.layer) {
        return Err(refused);
    }
    let mut spot = Spotter { text: format!(" {} ", fold(question)), taken: Vec::new() };
    let mut assumptions = Vec::new();

    let found = periods::find(&spot.text, lang, cx.now, cx.zone, cx.zone_name);
    for f in &found {
        spot.take(f.at, f.end);
    }
    let mut periods: Vec<Period> = found.iter().map(|f| f.period.clone()).collect();
    for f in &found {
        assumptions.push(format!("{} = {}", f.name, f.dates));
    }

    // A segment or a flow named, with a word saying which it is.
    let named = |names: &[String]| -> Option<(usize, usize, usize)> {
        let folded: Vec<String> = names.iter().map(|n| fold(n)).collect();
        let spaced: Vec<String> = folded.iter().map(|n| n.replace(['-', '_'], " ")).collect();
        spot.longest(folded.iter().map(String::as_str).enumerate().chain(spaced.iter().map(String::as_str).enumerate()))
    };
    let segment_word = spot.any(words::SEGMENT);
    let flow_word = spot.any(words::FLOW);
    if let Some((s, e, i)) = named(cx.segments)
        && (segment_word.is_some() || flow_word.is_none())
    {
        spot.take(s, e);
        return Ok(Reading { query: Query::Segment { segment: cx.segments[i].clone() }, language: lang, assumptions });
    }
    // A measure asked of one flow ("emails opened in the welcome flow") is the measure filtered by the flow;
    // the flow alone ("how is the welcome flow doing") is its totals.
    let measure_words: Vec<(String, String)> = cx
        .layer
        .measures
        .values()
        .flat_map(|m| entry_words(&m.names, &m.name, lang).into_iter().map(move |w| (m.name.clone(), w)))
        .collect();
    let mut flow_filter = None;
    if let Some((s, e, i)) = named(cx.flows)
        && flow_word.is_some()
    {
        spot.take(s, e);
        let asks_a_measure = spot.longest(measure_words.iter().map(|(_, w)| w.as_str()).enumerate()).is_some();
        if !asks_a_measure || !cx.layer.dimensions.contains_key("flow") {
            return Ok(Reading { query: Query::Flow { flow: cx.flows[i].clone() }, language: lang, assumptions });
        }
        if let Some((ws, we)) = flow_word {
            spot.take(ws, we);
        }
        flow_filter = Some(cx.flows[i].clone());
    }
    if segment_word.is_some() && cx.layer.dimensions.values().all(|d| d.name != "segment") {
        let known = if cx.segments.is_empty() { "-".to_owned() } else { cx.segments.join(", ") };
        return Err(refuse(Some(format!("{}: {known}", words_for(lang, "segments_are")))));
    }

    let people = spot.any(words::PEOPLE);
    if let Some((ps, pe)) = people {
        spot.take(ps, pe);
        let events = spot_events(&mut spot, cx, lang);
        if !events.is_empty() {
            let not_at = spot.any(words::NOT).map(|(s, _)| s);
            let (mut did, mut did_not) = (Vec::new(), Vec::new());
            for (at, name) in events {
                let list = if not_at.is_some_and(|n| at > n) { &mut did_not } else { &mut did };
                if !list.contains(&name) {
                    list.push(name);
                }
            }
            if did.is_empty() {
                return Err(refuse(Some(words_for(lang, "people_did"))));
            }
            for name in did.iter().chain(&did_not) {
                if !cx.events.contains(name) {
                    assumptions.push(format!("{}: {name}", words_for(lang, "never_seen")));
                }
            }
            let period = match periods.first() {
                Some(p) => p.clone(),
                None => default(lang, cx, &mut assumptions, 30)?,
            };
            return Ok(Reading {
                query: Query::People(PeopleQuery { did, did_not, period }),
                language: lang,
                assumptions,
            });
        }
    }

    // A measure over a period.
    let dimension_words: Vec<(String, String)> = cx
        .layer
        .dimensions
        .values()
        .flat_map(|d| entry_words(&d.names, &d.name, lang).into_iter().map(move |w| (d.name.clone(), w)))
        .collect();
    let grain = words::GRAINS.iter().find_map(|(g, ws)| spot.any(ws).map(|(s, e)| (Grain::parse(g), s, e)));
    if let Some((_, s, e)) = grain {
        spot.take(s, e);
    }
    let grain = grain
        .and_then(|(g, _, _)| g)
        .or_else(|| words::IMPLIED_GRAIN.iter().find_map(|(g, ws)| spot.any(ws).and_then(|_| Grain::parse(g))));
    let dimension = spot.longest(dimension_words.iter().map(|(_, w)| w.as_str()).enumerate());
    if let Some((s, e, _)) = dimension {
        spot.take(s, e);
    }
    let dimension = dimension.map(|(s, e, i)| (dimension_words[i].0.clone(), spot.text[s..e].to_owned()));
    let measure = spot.longest(measure_words.iter().map(|(_, w)| w.as_str()).enumerate());
    let least = spot.any(words::LEAST);
    let measure = match measure {
        Some((s, e, i)) => {
            spot.take(s, e);
            measure_words[i].0.clone()
        }
        None if people.is_some() => "active_profiles".to_owned(),
        None if dimension.as_ref().is_some_and(|(d, _)| is_item(cx.layer, d))
            && (least.is_some() || spot.any(words::MOST).is_some()) =>
        {
            assumptions.push(words_for(lang, "best_is_units"));
            "units".to_owned()
        }
        None => return Err(refuse(None)),
    };
    if !cx.layer.measures.contains_key(&measure) {
        return Err(refuse(None));
    }
    let mut q = MetricQuery {
        measure,
        period: Period { from: String::new(), to: String::new(), label: None },
        by: dimension.as_ref().map(|(d, _)| d.clone()),
        grain,
        compare: None,
        filters: Vec::new(),
        order: if least.is_some() { Order::Asc } else { Order::Desc },
        limit: None,
    };
    if let Some(flow) = flow_filter {
        q.filters.push(crate::query::Filter { dimension: "flow".into(), equals: flow });
    }
    if let Some((_, word)) = &dimension {
        q.limit = Some(limit(&spot, lang, word).unwrap_or(10));
        if q.grain.is_some() {
            // A ranking of a measure by a dimension is asked more often than a series of each value.
            q.grain = None;
        }
    }
    q.period = match periods.first() {
        Some(p) => p.clone(),
        None => {
            let days = match q.grain {
                Some(Grain::Week) => 84,
                Some(Grain::Month) => 365,
                _ => 30,
            };
            default(lang, cx, &mut assumptions, days)?
        }
    };
    if periods.len() >= 2 && q.by.is_none() && q.grain.is_none() {
        q.compare = Some(periods.remove(1));
    }
    let query = Query::Metric(q);
    query.check(cx.layer).map_err(|e| refuse(Some(e.0)))?;
    Ok(Reading { query, language: lang, assumptions })
}

fn is_item(layer: &MetricsLayer, dimension: &str) -> bool {
    layer.dimensions.get(dimension).is_some_and(|d| matches!(d.source, Source::Item(_)))
}

fn default(
    lang: &'static str,
    cx: &Context<'_>,
    assumptions: &mut Vec<String>,
    days: i64,
) -> Result<Period, NotUnderstood> {
    let text = format!(" last {days} days ");
    let found = periods::find(&text, lang, cx.now, cx.zone, cx.zone_name);
    let f = found
        .into_iter()
        .next()
        .ok_or_else(|| NotUnderstood { language: lang, message: can_answer(lang, cx.layer, None) })?;
    assumptions.push(format!("{}: {} = {}", words_for(lang, "no_period"), f.name, f.dates));
    Ok(f.period)
}

/// The events a question names: by their names in the data, or in people's own words.
fn spot_events(spot: &mut Spotter, cx: &Context<'_>, lang: &str) -> Vec<(usize, String)> {
    let mut phrases: Vec<(String, String)> = cx.events.iter().map(|e| (e.clone(), fold(e))).collect();
    for (event, ws) in words::EVENTS {
        phrases.extend(ws.iter().map(|w| ((*event).to_owned(), (*w).to_owned())));
    }
    for m in cx.layer.measures.values() {
        if let Some(event) = &m.event {
            phrases.extend(entry_words(&m.names, &m.name, lang).into_iter().map(|w| (event.clone(), w)));
        }
    }
    phrases.retain(|(_, w)| w.trim().chars().count() >= 2);
    let mut out = Vec::new();
    while let Some((s, e, i)) = spot.longest(phrases.iter().map(|(_, w)| w.as_str()).enumerate()) {
        spot.take(s, e);
        out.push((s, phrases[i].0.clone()));
        if out.len() > 10 {
            break;
        }
    }
    out.sort_by_key(|(at, _)| *at);
    out
}

/// How many rows a ranking asks for: a number written, or one for "which product" in the singular.
fn limit(spot: &Spotter, lang: &str, dimension_word: &str) -> Option<u32> {
    let numbers = regex_numbers(&spot.text);
    for (s, e, n) in numbers {
        if spot.free(s, e) && (1..=100).contains(&n) {
            return Some(n as u32);
        }
    }
    let singular = match lang {
        "zh" => spot.any(&["哪个", "哪一个", "哪款", "哪家", "哪一款", "哪种", "哪一种", "第一"]).is_some(),
        "vi" => spot.any(&["nao"]).is_some() && spot.any(&["nhung", "cac", "top"]).is_none(),
        _ => {
            spot.any(&["which", "what", "the best", "the most", "the top", "the least", "the worst"]).is_some()
                && !dimension_word.ends_with('s')
                && spot.any(&["top"]).is_none_or(|_| spot.any(&["the top"]).is_some())
        }
    };
    singular.then_some(1)
}

fn regex_numbers(text: &str) -> Vec<(usize, usize, i64)> {
    use std::sync::LazyLock;
    static NUMBER: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r"\d{1,4}|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|fifteen|twenty)\b|[一二两三四五六七八九十]+")
            .expect("the number pattern compiles")
    });
    NUMBER.find_iter(text).filter_map(|m| number(m.as_str()).map(|n| (m.start(), m.end(), n))).collect()
}

/// A fixed phrase of the reader's answers, in `lang`.
pub fn words_for(lang: &str, key: &str) -> String {
    let (en, vi, zh) = match key {
        "too_long" => {
            ("the question is longer than 1,000 characters", "câu hỏi dài hơn 1.000 ký tự", "问题超过 1000 个字符")
        }
        "segments_are" => (
            "no segment by that name; segments are",
            "không có phân khúc tên đó; các phân khúc là",
            "没有这个名字的分群；现有分群",
        ),
        "people_did" => (
            "say what people did, not only what they did not",
            "hãy nói mọi người đã làm gì, không chỉ điều họ chưa làm",
            "请说明用户做了什么，而不只是没做什么",
        ),
        "never_seen" => {
            ("no event by this name has been received", "chưa nhận được sự kiện nào tên này", "尚未收到此名称的事件")
        }
        "best_is_units" => ("best = most units sold", "bán chạy nhất = nhiều số lượng bán nhất", "最好 = 销量最多"),
        "no_period" => ("no period given", "không nêu khoảng thời gian", "未指定时间段"),
        "future" => (
            "Tutti counts what has happened; it does not forecast",
            "Tutti đếm những gì đã xảy ra; không dự báo tương lai",
            "Tutti 只统计已经发生的事，不做预测",
        ),
        "why" => (
            "Tutti counts what happened; it cannot say why",
            "Tutti đếm những gì đã xảy ra; không thể nói vì sao",
            "Tutti 只统计发生了什么，无法说明原因",
        ),
        "personal" => (
            "answers are about groups of people, never anyone's contact details",
            "câu trả lời nói về nhóm người, không bao giờ là thông tin liên hệ của ai",
            "回答针对人群，绝不提供任何人的联系方式",
        ),
        _ => (key, key, key),
    };
    match lang {
        "vi" => vi.to_owned(),
        "zh" => zh.to_owned(),
        _ => en.to_owned(),
    }
}

/// What the reader can answer, with the layer's measures and dimensions, and why this question was not one.
pub fn can_answer(lang: &str, layer: &MetricsLayer, why: Option<String>) -> String {
    let measures: Vec<&str> = layer.measures.values().map(|m| m.names.label(lang, &m.name)).collect();
    let dimensions: Vec<&str> = layer.dimensions.values().map(|d| d.names.label(lang, &d.name)).collect();
    let head = match lang {
        "vi" => {
            "Tôi trả lời được: top hoặc cuối N theo một chiều và một chỉ số trong một khoảng thời gian; một chỉ số trong một khoảng thời gian, tổng hoặc theo ngày, tuần, tháng; so sánh hai khoảng thời gian; bao nhiêu người đã làm X (và không làm Y); số người trong một phân khúc; số liệu của một luồng."
        }
        "zh" => {
            "我能回答：某时间段内按某个指标排名前或后 N 的某个维度；某时间段内的指标，总计或按天、周、月；两个时间段的比较；多少人做了 X（且没做 Y）；某个分群的人数；某个流程的数据。"
        }
        _ => {
            "I can answer: the top or bottom N of a dimension by a measure in a period; a measure over a period, in total or by day, week or month; a measure in two periods compared; how many people did X (and not Y) in a period; a segment's size; a flow's totals."
        }
    };
    let (m, d) = match lang {
        "vi" => ("Chỉ số", "Chiều"),
        "zh" => ("指标", "维度"),
        _ => ("Measures", "Dimensions"),
    };
    let mut out = String::new();
    if let Some(why) = why {
        out.push_str(&why);
        out.push_str(". ");
    }
    out.push_str(head);
    out.push_str(&format!(" {m}: {}. {d}: {}.", measures.join(", "), dimensions.join(", ")));
    out
}

#[cfg(test)]
mod tests;
