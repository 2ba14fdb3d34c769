//! A query run and its answer written in the question's language: the sentence with the numbers, the table it
//! comes from, the query and the SQL that ran, and what was taken for granted.

use jiff::tz::TimeZone;
use serde::Serialize;
use serde_json::Value;

use crate::compile::{self, Bucket, Dialect};
use crate::metrics::MetricsLayer;
use crate::query::{MetricQuery, Order, PeopleQuery, Query, QueryError};
use crate::sqlite::{Limits, Rows, SqliteAnalyticsReader, StoreError};

/// An answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Answer {
    /// A sentence in the question's language, with the numbers.
    pub answer: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
    /// The structured query against the metrics layer.
    pub query: Query,
    /// What ran, with its values written in (for reading; never run as written).
    pub sql: Option<String>,
    /// `local`, or `<provider>/<model>` when a model read the question.
    pub method: String,
    pub assumptions: Vec<String>,
    pub language: String,
}

/// What the engine knows that the analytics tables do not: segments and flows.
pub trait Facts {
    /// A segment's members now; `None` when there is no such segment.
    fn segment_size(&self, segment: &str) -> Option<u64>;
    /// A flow's running totals, flow-wide (`entered`, `completed`, `goal`, ...); `None` when there is no such flow.
    fn flow_totals(&self, flow: &str) -> Option<Vec<(String, u64)>>;
}

/// Why a query could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Query(#[from] QueryError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Unknown(String),
}

/// What a query found: the sentence, the columns, the rows and the SQL shown.
type Found = (String, Vec<String>, Vec<Vec<Value>>, Option<String>);

/// What running a query needs.
pub struct Runner<'a> {
    pub layer: &'a MetricsLayer,
    pub zone: &'a TimeZone,
    pub reader: &'a SqliteAnalyticsReader,
    pub facts: &'a dyn Facts,
    pub limits: Limits,
}

impl Runner<'_> {
    /// Checks and runs a query, and says what it found in `lang`.
    pub fn answer(
        &self,
        query: Query,
        lang: &str,
        mut assumptions: Vec<String>,
        method: &str,
    ) -> Result<Answer, RunError> {
        query.check(self.layer)?;
        let (sentence, columns, rows, sql) = match &query {
            Query::Metric(q) => self.metric(q, lang, &mut assumptions)?,
            Query::People(q) => self.people(q, lang)?,
            Query::Segment { segment } => {
                let size = self
                    .facts
                    .segment_size(segment)
                    .ok_or_else(|| RunError::Unknown(format!("no segment `{segment}`")))?;
                let sentence = match lang {
                    "vi" => format!("Phân khúc {segment} hiện có {} người.", num(lang, size as f64)),
                    "zh" => format!("分群 {segment} 目前有 {} 人。", num(lang, size as f64)),
                    _ => format!("The segment {segment} has {} members now.", num(lang, size as f64)),
                };
                (
                    sentence,
                    vec!["segment".into(), "members".into()],
                    vec![vec![Value::from(segment.clone()), Value::from(size)]],
                    None,
                )
            }
            Query::Flow { flow } => {
                let totals =
                    self.facts.flow_totals(flow).ok_or_else(|| RunError::Unknown(format!("no flow `{flow}`")))?;
                let get = |m: &str| totals.iter().find(|(k, _)| k == m).map(|(_, v)| *v).unwrap_or(0);
                let (entered, completed, goal) = (get("entered"), get("completed"), get("goal"));
                let sentence = match lang {
                    "vi" => format!(
                        "Luồng {flow}: {} người vào, {} hoàn thành, {} đạt mục tiêu.",
                        num(lang, entered as f64),
                        num(lang, completed as f64),
                        num(lang, goal as f64)
                    ),
                    "zh" => format!(
                        "流程 {flow}：进入 {} 人，完成 {} 人，达成目标 {} 人。",
                        num(lang, entered as f64),
                        num(lang, completed as f64),
                        num(lang, goal as f64)
                    ),
                    _ => format!(
                        "The flow {flow}: {} entered, {} completed, {} reached the goal.",
                        num(lang, entered as f64),
                        num(lang, completed as f64),
                        num(lang, goal as f64)
                    ),
                };
                let rows = totals.into_iter().map(|(k, v)| vec![Value::from(k), Value::from(v)]).collect();
                (sentence, vec!["measure".into(), "value".into()], rows, None)
            }
        };
        Ok(Answer {
            answer: sentence,
            columns,
            rows,
            query,
            sql,
            method: method.to_owned(),
            assumptions,
            language: lang.to_owned(),
        })
    }

    fn metric(&self, q: &MetricQuery, lang: &str, assumptions: &mut Vec<String>) -> Result<Found, RunError> {
        let span = q.period.span()?;
        let label = q.period.label.clone().unwrap_or_else(|| format!("{} – {}", q.period.from, q.period.to));
        let mut buckets = compile::buckets(span, q.grain, self.zone, &label)?;
        if let Some(c) = &q.compare {
            let other = c.label.clone().unwrap_or_else(|| format!("{} – {}", c.from, c.to));
            buckets.push(Bucket { label: other, span: c.span()? });
        }
        let (sql, shape) = compile::metric(q, self.layer, &buckets, Dialect::Sqlite);
        let found = self.reader.run(&sql, self.limits)?;
        let measure = &self.layer.measures[&q.measure];
        let measure_label = measure.names.label(lang, &measure.name).to_owned();
        let mut columns = Vec::new();
        let first = if let Some(d) = &shape.dimension {
            Some(d.clone())
        } else if let Some(g) = q.grain {
            Some(g.as_str().to_owned())
        } else if q.compare.is_some() {
            Some("period".to_owned())
        } else {
            None
        };
        columns.extend(first.clone());
        if shape.currency {
            columns.push("currency".into());
            assumptions.push(match lang {
                "vi" => "tiền được tính theo từng loại tiền tệ, không quy đổi".into(),
                "zh" => "金额按币种分别计算，未做换算".into(),
                _ => "money is summed per currency, never converted".into(),
            });
        }
        columns.push(q.measure.clone());
        let rows = shape_rows(
            &found,
            &buckets,
            shape.dimension.is_some(),
            shape.currency,
            q.grain.is_some() || q.compare.is_some(),
        );
        let sentence = sentence(lang, q, &measure_label, self.layer, &rows, shape.currency, &label);
        Ok((sentence, columns, rows, Some(sql.shown())))
    }

    fn people(&self, q: &PeopleQuery, lang: &str) -> Result<Found, RunError> {
        let span = q.period.span()?;
        let sql = compile::people(q, span, Dialect::Sqlite);
        let found = self.reader.run(&sql, self.limits)?;
        let n = found.rows.first().and_then(|r| r.first()).and_then(Value::as_f64).unwrap_or(0.0);
        let label = q.period.label.clone().unwrap_or_default();
        let did = q.did.join(lang_and(lang));
        let sentence = match (lang, q.did_not.is_empty()) {
            ("vi", true) => format!("{} người đã {did} trong {label}.", num(lang, n)),
            ("vi", false) => {
                format!("{} người đã {did} nhưng không {} trong {label}.", num(lang, n), q.did_not.join(" hoặc "))
            }
            ("zh", true) => format!("{label}有 {} 人做了 {did}。", num(lang, n)),
            ("zh", false) => format!("{label}有 {} 人做了 {did} 但没有 {}。", num(lang, n), q.did_not.join(" 或 ")),
            (_, true) => format!("{} people did {did} in {label}.", num(lang, n)),
            (_, false) => format!("{} people did {did} but not {} in {label}.", num(lang, n), q.did_not.join(" or ")),
        };
        Ok((sentence, vec!["people".into()], vec![vec![compile::number_value(n)]], Some(sql.shown())))
    }
}

fn lang_and(lang: &str) -> &'static str {
    match lang {
        "vi" => " và ",
        "zh" => " 和 ",
        _ => " and ",
    }
}

/// The rows of a metric query for people: bucket labels instead of numbers, empty buckets of a series as 0.
fn shape_rows(found: &Rows, buckets: &[Bucket], ranked: bool, currency: bool, labelled: bool) -> Vec<Vec<Value>> {
    let label_of = |cell: &Value| -> Value {
        let i = cell.as_u64().unwrap_or(0) as usize;
        Value::from(buckets.get(i).map(|b| b.label.clone()).unwrap_or_default())
    };
    if ranked {
        return found
            .rows
            .iter()
            .map(|r| r[1..].iter().map(|v| if v.is_null() { Value::from("(none)") } else { v.clone() }).collect())
            .collect();
    }
    let mut out: Vec<Vec<Value>> = Vec::new();
    for (i, _) in buckets.iter().enumerate() {
        let here: Vec<&Vec<Value>> = found.rows.iter().filter(|r| r[0].as_u64() == Some(i as u64)).collect();
        if here.is_empty() && !currency {
            let mut row = Vec::new();
            if labelled {
                row.push(label_of(&Value::from(i)));
            }
            row.push(Value::from(0));
            out.push(row);
        }
        for r in here {
            let mut row = Vec::new();
            if labelled {
                row.push(label_of(&r[0]));
            }
            row.extend(r[1..].iter().cloned());
            out.push(row);
        }
    }
    out
}

/// A number written for `lang`: thousands grouped, at most two decimals.
pub fn num(lang: &str, n: f64) -> String {
    let rounded = (n * 100.0).round() / 100.0;
    let whole = rounded.trunc().abs() as u64;
    let frac = ((rounded.abs() - rounded.abs().trunc()) * 100.0).round() as u64;
    let (group, point) = if lang == "vi" { ('.', ',') } else { (',', '.') };
    let digits = whole.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(group);
        }
        out.push(c);
    }
    if frac > 0 {
        out.push(point);
        out.push_str(format!("{frac:02}").trim_end_matches('0'));
    }
    if rounded < 0.0 { format!("-{out}") } else { out }
}

fn cell_text(lang: &str, v: &Value) -> String {
    match v {
        Value::Number(n) => num(lang, n.as_f64().unwrap_or(0.0)),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The value of a row with its currency when there is one.
fn amount(lang: &str, row: &[Value], currency: bool) -> String {
    let value = cell_text(lang, row.last().unwrap_or(&Value::Null));
    if currency && row.len() >= 2 {
        let code = row[row.len() - 2].as_str().unwrap_or("?");
        format!("{value} {code}")
    } else {
        value
    }
}

fn sentence(
    lang: &str,
    q: &MetricQuery,
    measure: &str,
    layer: &MetricsLayer,
    rows: &[Vec<Value>],
    currency: bool,
    period: &str,
) -> String {
    if let Some(d) = &q.by {
        let dim = layer.dimensions[d].names.label(lang, d);
        if rows.is_empty() {
            return match lang {
                "vi" => format!("Không có dữ liệu {measure} theo {dim} trong {period}."),
                "zh" => format!("{period}没有按{dim}的{measure}数据。"),
                _ => format!("There is no {measure} by {dim} in {period}."),
            };
        }
        let list: Vec<String> =
            rows.iter().map(|r| format!("{} ({})", cell_text(lang, &r[0]), amount(lang, r, currency))).collect();
        let list = list.join(if lang == "zh" { "、" } else { ", " });
        let n = rows.len();
        return match (lang, q.order, n) {
            ("vi", Order::Desc, 1) => format!("{} dẫn đầu về {measure} trong {period}: {list}.", cap(dim)),
            ("vi", Order::Asc, 1) => format!("{} có {measure} thấp nhất trong {period}: {list}.", cap(dim)),
            ("vi", Order::Desc, _) => format!("Top {n} {dim} theo {measure} trong {period}: {list}."),
            ("vi", Order::Asc, _) => format!("{n} {dim} có {measure} thấp nhất trong {period}: {list}."),
            ("zh", Order::Desc, 1) => format!("{period}{measure}最高的{dim}是：{list}。"),
            ("zh", Order::Asc, 1) => format!("{period}{measure}最低的{dim}是：{list}。"),
            ("zh", Order::Desc, _) => format!("{period}按{measure}排名前 {n} 的{dim}：{list}。"),
            ("zh", Order::Asc, _) => format!("{period}{measure}最低的 {n} 个{dim}：{list}。"),
            (_, Order::Desc, 1) => format!("The {dim} with the most {measure} in {period}: {list}."),
            (_, Order::Asc, 1) => format!("The {dim} with the least {measure} in {period}: {list}."),
            (_, Order::Desc, _) => format!("Top {n} by {measure} in {period}, by {dim}: {list}."),
            (_, Order::Asc, _) => format!("Bottom {n} by {measure} in {period}, by {dim}: {list}."),
        };
    }
    if let Some(c) = &q.compare {
        let other = c.label.clone().unwrap_or_default();
        let value = |label: &str| -> Vec<String> {
            rows.iter().filter(|r| r[0].as_str() == Some(label)).map(|r| amount(lang, r, currency)).collect()
        };
        let (a, b) = (value(period), value(&other));
        let (a_text, b_text) = (or_zero(&a), or_zero(&b));
        let change = if !currency
            || rows.iter().filter_map(|r| r.get(1)?.as_str()).collect::<std::collections::BTreeSet<_>>().len() <= 1
        {
            let pick = |label: &str| {
                rows.iter().find(|r| r[0].as_str() == Some(label)).and_then(|r| r.last()?.as_f64()).unwrap_or(0.0)
            };
            let (x, y) = (pick(period), pick(&other));
            (y != 0.0).then(|| {
                let pct = (x - y) / y * 100.0;
                format!("{}{}%", if pct >= 0.0 { "+" } else { "-" }, num(lang, pct.abs()))
            })
        } else {
            None
        };
        let change = change.map(|c| format!(" ({c})")).unwrap_or_default();
        return match lang {
            "vi" => format!("{}: {a_text} trong {period}, so với {b_text} trong {other}{change}.", cap(measure)),
            "zh" => format!("{measure}：{period} {a_text}，{other} {b_text}{change}。"),
            _ => format!("{}: {a_text} in {period}, against {b_text} in {other}{change}.", cap(measure)),
        };
    }
    if let Some(g) = q.grain {
        let values: Vec<(String, f64)> =
            rows.iter().filter_map(|r| Some((r[0].as_str()?.to_owned(), r.last()?.as_f64()?))).collect();
        let Some(high) = values.iter().max_by(|a, b| a.1.total_cmp(&b.1)) else {
            return format!("{measure}: -");
        };
        let low = values.iter().min_by(|a, b| a.1.total_cmp(&b.1)).expect("not empty");
        let mean = values.iter().map(|v| v.1).sum::<f64>() / values.len() as f64;
        let unit = match (lang, g) {
            ("vi", crate::metrics::Grain::Day) => "ngày",
            ("vi", crate::metrics::Grain::Week) => "tuần",
            ("vi", crate::metrics::Grain::Month) => "tháng",
            ("zh", crate::metrics::Grain::Day) => "天",
            ("zh", crate::metrics::Grain::Week) => "周",
            ("zh", crate::metrics::Grain::Month) => "月",
            (_, g) => g.as_str(),
        };
        let money_note = if currency { currency_note(lang) } else { String::new() };
        return match lang {
            "vi" => format!(
                "{} theo {unit} trong {period}: trung bình {} mỗi {unit}, cao nhất {} ({}), thấp nhất {} ({}).{money_note}",
                cap(measure),
                num(lang, mean),
                num(lang, high.1),
                high.0,
                num(lang, low.1),
                low.0
            ),
            "zh" => format!(
                "{period}每{unit}{measure}：平均 {}，最高 {}（{}），最低 {}（{}）。{money_note}",
                num(lang, mean),
                num(lang, high.1),
                high.0,
                num(lang, low.1),
                low.0
            ),
            _ => format!(
                "{} per {unit} in {period}: {} on average, highest {} ({}), lowest {} ({}).{money_note}",
                cap(measure),
                num(lang, mean),
                num(lang, high.1),
                high.0,
                num(lang, low.1),
                low.0
            ),
        };
    }
    let values: Vec<String> = rows.iter().map(|r| amount(lang, r, currency)).collect();
    let text = or_zero(&values);
    match lang {
        "vi" => format!("{} trong {period}: {text}.", cap(measure)),
        "zh" => format!("{period}的{measure}：{text}。"),
        _ => format!("{} in {period}: {text}.", cap(measure)),
    }
}

fn currency_note(lang: &str) -> String {
    match lang {
        "vi" => " (mỗi loại tiền tệ tính riêng)".into(),
        "zh" => "（各币种分别计算）".into(),
        _ => " (each currency on its own)".into(),
    }
}

fn or_zero(values: &[String]) -> String {
    if values.is_empty() { "0".into() } else { values.join(" + ") }
}

fn cap(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_the_way_each_language_reads_them() {
        assert_eq!(num("en", 1234567.5), "1,234,567.5");
        assert_eq!(num("vi", 1234567.5), "1.234.567,5");
        assert_eq!(num("zh", 12.0), "12");
        assert_eq!(num("en", -0.25), "-0.25");
    }
}
