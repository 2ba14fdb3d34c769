//! The Ask box: a question about Tutti's own events, answered on the page with its table, a chart of a ranking or
//! a series, what was assumed, and the query and SQL behind it. Every role may ask; the form is a GET, as asking
//! changes nothing. Periods are read in the person's time zone (Settings), else the server's.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::Value;
use tutti_engine::{AskError, Engine};

use super::{Lang, Who, Words, field, page, to_sign_in};
use crate::admin::blocking;
use crate::sessions::SignedIn;

#[derive(Template)]
#[template(path = "ask.html")]
struct AskPage {
    lang: &'static str,
    title: &'static str,
    words: &'static Words,
    who: Who,
    question: String,
    placeholder: &'static str,
    /// Example questions: (the link that asks it, the question).
    examples: Vec<(String, &'static str)>,
    answer: Option<Shown>,
    problem: Option<String>,
}

struct Shown {
    sentence: String,
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
    chart: String,
    assumptions: Vec<String>,
    query: String,
    sql: String,
}

fn examples(lang: Lang) -> Vec<&'static str> {
    match lang {
        Lang::Vi => vec![
            "Tháng trước sản phẩm nào bán chạy nhất?",
            "Doanh thu theo ngày trong 30 ngày qua",
            "So sánh doanh thu tháng này với tháng trước",
            "Bao nhiêu người đã thêm vào giỏ nhưng chưa mua hàng tuần trước?",
        ],
        Lang::Zh => vec![
            "上个月哪个产品卖得最好？",
            "过去30天每天的收入",
            "本月收入和上月相比",
            "上周有多少人加入购物车但没有下单？",
        ],
        Lang::En => vec![
            "Which product sold best last month?",
            "Revenue by day over the last 30 days",
            "Compare revenue this month with last month",
            "How many people added to cart but did not order last week?",
        ],
    }
}

fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => tutti_analytics::answer::num("en", n.as_f64().unwrap_or(0.0)),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A ranking or a series as horizontal bars, the label and value of each as its title, on a scale from zero.
/// Labels and values are escaped here: they come from the data.
fn chart(columns: &[String], rows: &[Vec<Value>]) -> String {
    use std::fmt::Write;
    if rows.len() < 2 || columns.len() < 2 {
        return String::new();
    }
    let values: Vec<f64> = rows.iter().map(|r| r.last().and_then(Value::as_f64).unwrap_or(0.0)).collect();
    let top = values.iter().copied().fold(0.0f64, f64::max);
    if top <= 0.0 {
        return String::new();
    }
    let (bar_h, gap, width) = (16usize, 4usize, 480.0);
    let height = rows.len() * (bar_h + gap);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="answer-chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img">"#
    );
    for (i, (row, value)) in rows.iter().zip(&values).enumerate() {
        let label: Vec<String> = row[..row.len() - 1].iter().map(cell).collect();
        let title = super::graph::escape(&format!("{}: {}", label.join(" "), cell(row.last().unwrap_or(&Value::Null))));
        let w = (value.max(0.0) / top * width).max(1.0);
        let y = i * (bar_h + gap);
        let _ = write!(svg, r#"<rect x="0" y="{y}" width="{w:.1}" height="{bar_h}"><title>{title}</title></rect>"#);
    }
    svg.push_str("</svg>");
    svg
}

/// `GET /ask?q=...`.
pub async fn ask(
    signed_in: Option<SignedIn>,
    State(engine): State<Arc<Engine>>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let Some(signed_in) = signed_in else { return to_sign_in() };
    let lang = Lang::of(&headers);
    let words = lang.words();
    let question: String = field(&pairs, "q").chars().take(tutti_analytics::ask::MAX_QUESTION_CHARS).collect();
    let zone = super::Zone::chosen(&headers).map(|z| z.name().to_owned());
    let (mut answer, mut problem) = (None, None);
    if !question.trim().is_empty() {
        let asked = question.clone();
        match blocking(move || Ok(engine.ask(&asked, None, zone.as_deref()))).await {
            Ok(Ok(a)) => {
                let chart = chart(&a.columns, &a.rows);
                answer = Some(Shown {
                    sentence: a.answer,
                    rows: a.rows.iter().map(|r| r.iter().map(cell).collect()).collect(),
                    columns: a.columns,
                    chart,
                    assumptions: a.assumptions,
                    query: serde_json::to_string_pretty(&a.query).unwrap_or_default(),
                    sql: a.sql.unwrap_or_default(),
                });
            }
            Ok(Err(AskError::NotUnderstood(message) | AskError::Invalid(message))) => problem = Some(message),
            Ok(Err(AskError::Failed(message))) => {
                tracing::error!(error = %message, "a question asked in the console failed");
                problem = Some(words.ask_failed.to_owned());
            }
            Err(_) => problem = Some(words.ask_failed.to_owned()),
        }
    }
    page(&AskPage {
        lang: lang.code(),
        title: words.ask,
        words,
        who: Who::of(&signed_in.session),
        question,
        placeholder: examples(lang)[0],
        examples: examples(lang)
            .into_iter()
            .map(|e| (format!("/ask?q={}", super::deliveries::escape_query(e)), e))
            .collect(),
        answer,
        problem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_chart_escapes_what_the_data_says() {
        let svg = chart(
            &["product".into(), "units".into()],
            &[vec![json!("<script>x</script>"), json!(3)], vec![json!("b"), json!(1)]],
        );
        assert!(svg.contains("&lt;script&gt;") && !svg.contains("<script>"), "{svg}");
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(chart(&["n".into()], &[vec![json!(1)]]).is_empty(), "one number needs no chart");
    }
}
