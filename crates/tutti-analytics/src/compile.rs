//! Structured queries compiled to SQL over the projected tables. Every value the query carries is a bound
//! parameter; the only names written into the text are this module's own table and column names, chosen by
//! matching the metrics layer's checked entries. The SQL is standard enough for SQLite and Postgres; the few
//! differences (placeholders, reading JSON text) are the [`Dialect`]'s.

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use serde_json::Value;

use crate::metrics::{Aggregate, Grain, Measure, MetricsLayer, Source, SumColumn};
use crate::query::{MAX_BUCKETS, MetricQuery, Order, PeopleQuery, QueryError, Span, Table};

/// The SQL flavour to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A bound value.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Int(i64),
    Text(String),
}

/// SQL text and its parameters, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Sql {
    pub text: String,
    pub params: Vec<Param>,
}

impl Sql {
    /// The text with each parameter written in where it is bound, for people to read (`sql` in an answer).
    /// Never executed.
    pub fn shown(&self) -> String {
        let mut out = String::new();
        let mut params = self.params.iter();
        let mut chars = self.text.chars().peekable();
        while let Some(c) = chars.next() {
            let placeholder = c == '?' || (c == '$' && chars.peek().is_some_and(char::is_ascii_digit));
            if !placeholder {
                out.push(c);
                continue;
            }
            while chars.peek().is_some_and(char::is_ascii_digit) {
                chars.next();
            }
            match params.next() {
                Some(Param::Int(n)) => out.push_str(&n.to_string()),
                Some(Param::Text(t)) => out.push_str(&format!("'{}'", t.replace('\'', "''"))),
                None => out.push('?'),
            }
        }
        out
    }
}

/// One time bucket of a query: a label (a local date, or the period's own) and its span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    pub label: String,
    pub span: Span,
}

/// Milliseconds in one slot of the `active` table.
pub const SLOT_MS: i64 = 15 * 60 * 1000;

/// A condition of a WHERE clause, written when its turn comes.
type Condition = Box<dyn Fn(&mut Builder)>;

struct Builder {
    dialect: Dialect,
    text: String,
    params: Vec<Param>,
}

impl Builder {
    fn new(dialect: Dialect) -> Builder {
        Builder { dialect, text: String::new(), params: Vec::new() }
    }

    fn push(&mut self, text: &str) -> &mut Builder {
        self.text.push_str(text);
        self
    }

    fn bind(&mut self, p: Param) -> &mut Builder {
        self.params.push(p);
        match self.dialect {
            Dialect::Sqlite => self.text.push('?'),
            Dialect::Postgres => {
                let n = self.params.len();
                self.text.push_str(&format!("${n}"));
            }
        }
        self
    }

    /// The text of a key of a JSON object column.
    fn json_text(&mut self, column: &str, key: &str) -> &mut Builder {
        match self.dialect {
            Dialect::Sqlite => {
                self.push(&format!("json_extract({column}, "));
                self.bind(Param::Text(format!("$.\"{key}\"")));
                self.push(")")
            }
            Dialect::Postgres => {
                self.push(&format!("({column}::jsonb ->> "));
                self.bind(Param::Text(key.to_owned()));
                self.push(")")
            }
        }
    }

    /// The id of an event name, or of any of several.
    fn names_in(&mut self, names: &[String]) -> &mut Builder {
        self.push("(SELECT id FROM names WHERE name IN (");
        for (i, n) in names.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind(Param::Text(n.clone()));
        }
        self.push("))")
    }

    fn finish(self) -> Sql {
        Sql { text: self.text, params: self.params }
    }
}

/// The buckets of a period: the period itself, or its days, weeks (from Monday) or months in `tz`, the first
/// and last cut to the period.
pub fn buckets(span: Span, grain: Option<Grain>, tz: &TimeZone, label: &str) -> Result<Vec<Bucket>, QueryError> {
    let Some(grain) = grain else {
        return Ok(vec![Bucket { label: label.to_owned(), span }]);
    };
    let local = |ms: i64| -> Result<Date, QueryError> {
        let ts = jiff::Timestamp::from_millisecond(ms).map_err(|e| QueryError(e.to_string()))?;
        Ok(ts.to_zoned(tz.clone()).date())
    };
    let start_of = |d: Date| -> Result<i64, QueryError> {
        let z = d.to_zoned(tz.clone()).map_err(|e| QueryError(e.to_string()))?;
        Ok(z.timestamp().as_millisecond())
    };
    let mut day = local(span.from)?;
    day = match grain {
        Grain::Day => day,
        Grain::Week => day
            .checked_sub(jiff::Span::new().days(i64::from(day.weekday().since(Weekday::Monday))))
            .map_err(|e| QueryError(e.to_string()))?,
        Grain::Month => day.first_of_month(),
    };
    let mut out = Vec::new();
    loop {
        let next = match grain {
            Grain::Day => day.tomorrow(),
            Grain::Week => day.checked_add(jiff::Span::new().days(7)),
            Grain::Month => day.last_of_month().tomorrow(),
        }
        .map_err(|e| QueryError(e.to_string()))?;
        let (s, e) = (start_of(day)?.max(span.from), start_of(next)?.min(span.to));
        if s < e {
            let label = match grain {
                Grain::Month => format!("{:04}-{:02}", day.year(), day.month()),
                _ => day.to_string(),
            };
            out.push(Bucket { label, span: Span { from: s, to: e } });
        }
        if out.len() > MAX_BUCKETS {
            return Err(QueryError(format!("that is more than {MAX_BUCKETS} {}s", grain.as_str())));
        }
        if start_of(next)? >= span.to {
            break;
        }
        day = next;
    }
    Ok(out)
}

/// The columns of a compiled metric query's rows, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    pub dimension: Option<String>,
    pub currency: bool,
}

/// Compiles a checked metric query over the given buckets. Rows are `bucket, [dimension], [currency], value`.
pub fn metric(q: &MetricQuery, layer: &MetricsLayer, buckets: &[Bucket], dialect: Dialect) -> (Sql, Shape) {
    let measure = &layer.measures[&q.measure];
    let table = q.table(layer);
    let mut b = Builder::new(dialect);
    let (table_name, time) = match table {
        Table::Events => ("events", "ts"),
        Table::Items => ("items", "ts"),
        Table::Active => ("active", "slot"),
    };
    b.push("WITH b(i, s, e) AS (VALUES ");
    for (i, bucket) in buckets.iter().enumerate() {
        if i > 0 {
            b.push(", ");
        }
        let (s, e) = match table {
            Table::Active => (bucket.span.from.div_euclid(SLOT_MS), bucket.span.to.div_euclid(SLOT_MS)),
            _ => (bucket.span.from, bucket.span.to),
        };
        b.push(&format!("({i}, "));
        b.bind(Param::Int(s)).push(", ").bind(Param::Int(e)).push(")");
    }
    b.push(")\nSELECT b.i AS bucket");
    let dimension = q.by.as_ref().map(|name| &layer.dimensions[name]);
    let needs_profiles =
        q.by.iter()
            .chain(q.filters.iter().map(|f| &f.dimension))
            .any(|n| matches!(layer.dimensions[n].source, Source::Trait(_)));
    let needs_event_row = table == Table::Items
        && q.by.iter().chain(q.filters.iter().map(|f| &f.dimension)).any(|n| {
            matches!(layer.dimensions[n].source, Source::Property(_) | Source::Context(_) | Source::EventName)
        });
    if let Some(d) = dimension {
        b.push(", ");
        dimension_expr(&mut b, d, table);
        b.push(" AS dimension");
    }
    let money = measure.money && table != Table::Active;
    if money {
        b.push(", x.currency AS currency");
    }
    b.push(", ");
    aggregate(&mut b, measure, table);
    b.push(&format!(" AS value\nFROM b JOIN {table_name} x ON x.{time} >= b.s AND x.{time} < b.e"));
    if needs_profiles {
        b.push(" LEFT JOIN profiles p ON p.profile = x.profile");
    }
    if needs_event_row {
        b.push(" JOIN events ev ON ev.seq = x.seq");
    }
    let mut conditions: Vec<Condition> = Vec::new();
    if table == Table::Events {
        match (&measure.aggregate, &measure.event) {
            (Aggregate::CountOrders | Aggregate::Average { .. } | Aggregate::Sum { .. }, _) => {
                let orders = layer.order_events.clone();
                conditions.push(Box::new(move |b| {
                    b.push("x.name IN ");
                    b.names_in(&orders);
                }));
            }
            (_, Some(event)) => {
                let event = vec![event.clone()];
                conditions.push(Box::new(move |b| {
                    b.push("x.name IN ");
                    b.names_in(&event);
                }));
            }
            _ => {}
        }
    }
    for f in &q.filters {
        let d = layer.dimensions[&f.dimension].clone();
        let value = f.equals.clone();
        conditions.push(Box::new(move |b| {
            dimension_expr(b, &d, table);
            b.push(" = ");
            b.bind(Param::Text(value.clone()));
        }));
    }
    for (i, c) in conditions.iter().enumerate() {
        b.push(if i == 0 { "\nWHERE " } else { " AND " });
        c(&mut b);
    }
    b.push("\nGROUP BY b.i");
    if dimension.is_some() {
        b.push(", dimension");
    }
    if money {
        b.push(", currency");
    }
    if dimension.is_some() {
        let dir = match q.order {
            Order::Desc => "DESC",
            Order::Asc => "ASC",
        };
        // Ties are broken by name so that an answer is the same every time it is asked.
        b.push(&format!("\nORDER BY value {dir}, dimension ASC\nLIMIT "));
        b.bind(Param::Int(i64::from(q.limit.unwrap_or(10))));
    } else {
        b.push("\nORDER BY b.i");
        if money {
            b.push(", currency");
        }
    }
    (b.finish(), Shape { dimension: q.by.clone(), currency: money })
}

fn dimension_expr(b: &mut Builder, d: &crate::metrics::Dimension, table: Table) {
    let event_row = if table == Table::Items { "ev" } else { "x" };
    match &d.source {
        Source::Item(column) => {
            // Only the item columns the layer allows reach here (checked when the layer was read).
            let column = crate::metrics::ITEM_COLUMNS.iter().find(|c| **c == column).copied().unwrap_or("name");
            b.push(&format!("x.{column}"));
        }
        Source::Trait(_) => {
            b.json_text("p.traits", &d.name);
        }
        Source::Property(_) | Source::Context(_) => {
            b.json_text(&format!("{event_row}.props"), &d.name);
        }
        Source::EventName => {
            b.push(&format!("(SELECT name FROM names WHERE id = {event_row}.name)"));
        }
    }
}

fn aggregate(b: &mut Builder, m: &Measure, table: Table) {
    match (&m.aggregate, table) {
        (Aggregate::CountOrders, Table::Items) => b.push("COUNT(DISTINCT x.seq)"),
        (Aggregate::CountOrders | Aggregate::CountEvents, _) => b.push("COUNT(*)"),
        (Aggregate::CountProfiles, _) => b.push("COUNT(DISTINCT x.profile)"),
        (Aggregate::Sum { column }, Table::Items) => {
            let column = match (column, m.per_item) {
                (SumColumn::Revenue, Some(per_item)) => per_item,
                (SumColumn::Revenue, None) => SumColumn::Amount,
                (c, _) => *c,
            };
            b.push(&format!("SUM(x.{})", column.as_str()))
        }
        (Aggregate::Sum { .. }, _) => b.push("SUM(x.revenue)"),
        (Aggregate::Average { .. }, _) => b.push("AVG(x.revenue)"),
        (Aggregate::SumProperty { .. }, _) => {
            b.push("SUM(CAST(");
            b.json_text("x.props", &format!("sum:{}", m.name));
            b.push(" AS REAL))")
        }
    };
}

/// Compiles a people query: one row, the number of people.
pub fn people(q: &PeopleQuery, span: Span, dialect: Dialect) -> Sql {
    let mut b = Builder::new(dialect);
    b.push("SELECT COUNT(*) AS value FROM (");
    let mut first = true;
    for (name, op) in q.did.iter().map(|n| (n, "INTERSECT")).chain(q.did_not.iter().map(|n| (n, "EXCEPT"))) {
        if !first {
            b.push(&format!("\n  {op} "));
        }
        first = false;
        // DISTINCT: one row per person even when nothing is intersected or taken away.
        b.push("SELECT DISTINCT profile FROM events WHERE name IN ");
        b.names_in(std::slice::from_ref(name));
        b.push(" AND ts >= ").bind(Param::Int(span.from)).push(" AND ts < ").bind(Param::Int(span.to));
    }
    b.push(") AS people");
    b.finish()
}

/// A number cell as JSON: whole when it is whole.
pub fn number_value(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9e15 { Value::from(n as i64) } else { Value::from((n * 100.0).round() / 100.0) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{Filter, Period};

    fn zone(name: &str) -> TimeZone {
        TimeZone::get(name).unwrap()
    }

    fn ms(t: &str) -> i64 {
        tutti_core::time::parse_timestamp(t).unwrap()
    }

    #[test]
    fn days_weeks_and_months_are_cut_in_the_zone() {
        let span = Span { from: ms("2026-11-01T00:00:00+07:00"), to: ms("2026-12-01T00:00:00+07:00") };
        let days = buckets(span, Some(Grain::Day), &zone("Asia/Ho_Chi_Minh"), "").unwrap();
        assert_eq!(days.len(), 30);
        assert_eq!(days[0].label, "2026-11-01");
        assert_eq!(days[0].span.from, ms("2026-10-31T17:00:00Z"));
        let weeks = buckets(span, Some(Grain::Week), &zone("Asia/Ho_Chi_Minh"), "").unwrap();
        assert_eq!(weeks[0].label, "2026-10-26", "the week that holds 1 November starts on Monday");
        assert_eq!(weeks[0].span.from, span.from, "cut to the period");
        assert_eq!(weeks.len(), 6);
        // A day when clocks go back is 25 hours long.
        let ny = Span { from: ms("2026-11-01T00:00:00-04:00"), to: ms("2026-11-03T00:00:00-05:00") };
        let days = buckets(ny, Some(Grain::Day), &zone("America/New_York"), "").unwrap();
        assert_eq!(days[0].span.to - days[0].span.from, 25 * 3_600_000);
        let months = buckets(
            Span { from: span.from, to: ms("2027-02-01T00:00:00+07:00") },
            Some(Grain::Month),
            &zone("Asia/Ho_Chi_Minh"),
            "",
        )
        .unwrap();
        assert_eq!(months.iter().map(|m| m.label.as_str()).collect::<Vec<_>>(), ["2026-11", "2026-12", "2027-01"]);
    }

    #[test]
    fn values_are_bound_never_written_into_the_text() {
        let layer = MetricsLayer::defaults();
        let q = MetricQuery {
            measure: "revenue".into(),
            period: Period { from: "2026-11-01T00:00:00Z".into(), to: "2026-12-01T00:00:00Z".into(), label: None },
            by: Some("product".into()),
            grain: None,
            compare: None,
            filters: vec![Filter { dimension: "city".into(), equals: "x'); DROP TABLE events; --".into() }],
            order: Order::Desc,
            limit: Some(5),
        };
        let bs = buckets(q.period.span().unwrap(), None, &zone("UTC"), "").unwrap();
        let (sql, shape) = metric(&q, &layer, &bs, Dialect::Sqlite);
        assert!(!sql.text.contains("DROP"), "{}", sql.text);
        assert!(sql.params.contains(&Param::Text("x'); DROP TABLE events; --".into())));
        assert!(sql.text.contains("FROM b JOIN items x") && sql.text.contains("SUM(x.amount)"), "{}", sql.text);
        assert!(shape.currency);
        assert!(sql.shown().contains("'x''); DROP TABLE events; --'"), "shown quotes values: {}", sql.shown());
        let (pg, _) = metric(&q, &layer, &bs, Dialect::Postgres);
        assert!(pg.text.contains("(p.traits::jsonb ->> $3)") && pg.text.contains("LIMIT $5"), "{}", pg.text);
    }
}
