//! The structured query: what a question is turned into, by the local parser or a model, and what reports ask.
//! It names measures and dimensions of the metrics layer and instants; it never carries SQL. [`Query::check`]
//! holds it against the layer before anything compiles it.

use serde::{Deserialize, Serialize};

use crate::metrics::{Aggregate, Grain, MetricsLayer, Source};

/// The most rows a ranking may ask for.
pub const MAX_LIMIT: u32 = 100;
/// The most time buckets one query may span.
pub const MAX_BUCKETS: usize = 400;

/// A span of time: from (inclusive) to (exclusive), as RFC 3339 instants, with what it was called.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Period {
    pub from: String,
    pub to: String,
    /// How the question named it ("last month"), for the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    #[default]
    Desc,
    Asc,
}

/// Only rows where a dimension has this value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    pub dimension: String,
    pub equals: String,
}

/// A measure over a period: a total, a ranking by a dimension, a series by a grain, or two periods compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricQuery {
    pub measure: String,
    pub period: Period,
    /// Rank by this dimension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// Break the period into days, weeks or months.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grain: Option<Grain>,
    /// A second period to compare with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compare: Option<Period>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<Filter>,
    #[serde(default)]
    pub order: Order,
    /// How many rows of a ranking (10 when not said).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// How many different people did every event in `did` and none in `did_not`, in a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeopleQuery {
    pub did: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub did_not: Vec<String>,
    pub period: Period,
}

/// A structured query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Query {
    Metric(MetricQuery),
    People(PeopleQuery),
    /// A segment's size now.
    Segment {
        segment: String,
    },
    /// A flow's running totals.
    Flow {
        flow: String,
    },
}

/// Why a query cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(pub String);

/// A period read into milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub from: i64,
    pub to: i64,
}

impl Period {
    pub fn span(&self) -> Result<Span, QueryError> {
        let read = |t: &str| {
            tutti_core::time::parse_timestamp(t).ok_or_else(|| QueryError(format!("`{t}` is not an RFC 3339 instant")))
        };
        let (from, to) = (read(&self.from)?, read(&self.to)?);
        if to <= from {
            return Err(QueryError(format!("the period ends ({}) before it starts ({})", self.to, self.from)));
        }
        Ok(Span { from, to })
    }
}

/// Where a measure's rows come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Events,
    Items,
    Active,
}

impl Query {
    /// Holds the query against the layer: every name known, every dimension usable with the measure.
    pub fn check(&self, layer: &MetricsLayer) -> Result<(), QueryError> {
        match self {
            Query::Metric(q) => q.check(layer),
            Query::People(q) => {
                if q.did.is_empty() || q.did.len() + q.did_not.len() > 10 {
                    return Err(QueryError("a people query names 1 to 10 events".into()));
                }
                for name in q.did.iter().chain(&q.did_not) {
                    if name.is_empty() || name.len() > 200 {
                        return Err(QueryError("an event name is 1 to 200 characters".into()));
                    }
                }
                q.period.span().map(|_| ())
            }
            Query::Segment { segment } | Query::Flow { flow: segment } => {
                if segment.is_empty() || segment.len() > 200 {
                    return Err(QueryError("a name is 1 to 200 characters".into()));
                }
                Ok(())
            }
        }
    }
}

impl MetricQuery {
    pub fn check(&self, layer: &MetricsLayer) -> Result<(), QueryError> {
        let Some(measure) = layer.measures.get(&self.measure) else {
            let known: Vec<&str> = layer.measures.keys().map(String::as_str).collect();
            return Err(QueryError(format!("no measure `{}`; measures are {}", self.measure, known.join(", "))));
        };
        self.period.span()?;
        if let Some(c) = &self.compare {
            c.span()?;
            if self.by.is_some() || self.grain.is_some() {
                return Err(QueryError("a comparison of two periods is of totals, not rankings or series".into()));
            }
        }
        if self.by.is_some() && self.grain.is_some() {
            return Err(QueryError("a query ranks by a dimension or breaks down by a grain, not both".into()));
        }
        if let Some(g) = self.grain
            && !layer.grains.contains(&g)
        {
            return Err(QueryError(format!("the grain `{}` is not in the metrics layer", g.as_str())));
        }
        if let Some(limit) = self.limit
            && !(1..=MAX_LIMIT).contains(&limit)
        {
            return Err(QueryError(format!("a ranking has 1 to {MAX_LIMIT} rows")));
        }
        let table = self.table(layer);
        for name in self.by.iter().chain(self.filters.iter().map(|f| &f.dimension)) {
            let Some(d) = layer.dimensions.get(name) else {
                let known: Vec<&str> = layer.dimensions.keys().map(String::as_str).collect();
                return Err(QueryError(format!("no dimension `{name}`; dimensions are {}", known.join(", "))));
            };
            usable(measure.name.as_str(), table, d)?;
        }
        for f in &self.filters {
            if f.equals.len() > 200 {
                return Err(QueryError("a filter's value is at most 200 characters".into()));
            }
        }
        Ok(())
    }

    /// Whether the query splits or filters by a column of items.
    pub fn uses_items(&self, layer: &MetricsLayer) -> bool {
        self.by
            .iter()
            .chain(self.filters.iter().map(|f| &f.dimension))
            .any(|name| layer.dimensions.get(name).is_some_and(|d| matches!(d.source, Source::Item(_))))
    }

    /// The table the measure's rows come from, given the dimensions used.
    pub fn table(&self, layer: &MetricsLayer) -> Table {
        let Some(m) = layer.measures.get(&self.measure) else { return Table::Events };
        let items = self.uses_items(layer);
        match &m.aggregate {
            Aggregate::Sum { column } if !column_on_orders(*column) => Table::Items,
            Aggregate::Sum { .. } | Aggregate::CountOrders if items => Table::Items,
            Aggregate::CountProfiles if m.event.is_none() && !self.uses_event_columns(layer) => Table::Active,
            _ => Table::Events,
        }
    }

    fn uses_event_columns(&self, layer: &MetricsLayer) -> bool {
        self.by.iter().chain(self.filters.iter().map(|f| &f.dimension)).any(|name| {
            layer
                .dimensions
                .get(name)
                .is_some_and(|d| matches!(d.source, Source::Property(_) | Source::Context(_) | Source::EventName))
        })
    }
}

fn column_on_orders(c: crate::metrics::SumColumn) -> bool {
    matches!(c, crate::metrics::SumColumn::Revenue)
}

fn usable(measure: &str, table: Table, d: &crate::metrics::Dimension) -> Result<(), QueryError> {
    let bad = |why: &str| Err(QueryError(format!("`{measure}` cannot be split by `{}`: {why}", d.name)));
    match (&d.source, table) {
        (Source::Item(_), Table::Items) => Ok(()),
        (Source::Item(_), _) => bad("only order measures have products"),
        (Source::EventName, Table::Active) => bad("active people are counted across all events"),
        (Source::Property(_) | Source::Context(_), Table::Active) => bad("active people are counted across all events"),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn metric(v: serde_json::Value) -> Query {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn queries_are_checked_against_the_layer() {
        let layer = MetricsLayer::defaults();
        let period = json!({"from": "2026-11-01T00:00:00+07:00", "to": "2026-12-01T00:00:00+07:00"});
        let ok =
            metric(json!({"kind": "metric", "measure": "revenue", "by": "product", "period": period, "limit": 10}));
        ok.check(&layer).unwrap();
        let Query::Metric(q) = &ok else { panic!() };
        assert_eq!(q.table(&layer), Table::Items);
        let bad = [
            (json!({"kind": "metric", "measure": "profit", "period": period}), "no measure `profit`"),
            (
                json!({"kind": "metric", "measure": "revenue", "by": "colour", "period": period}),
                "no dimension `colour`",
            ),
            (
                json!({"kind": "metric", "measure": "active_profiles", "by": "product", "period": period}),
                "only order measures",
            ),
            (
                json!({"kind": "metric", "measure": "orders", "period": {"from": "2026-12-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"}}),
                "before it starts",
            ),
            (json!({"kind": "metric", "measure": "orders", "limit": 0, "period": period}), "1 to 100"),
        ];
        for (q, why) in bad {
            let e = metric(q).check(&layer).unwrap_err();
            assert!(e.0.contains(why), "{e} / {why}");
        }
        assert!(
            serde_json::from_value::<Query>(json!({"kind": "metric", "measure": "x", "period": period, "sql": "DROP"}))
                .is_err()
        );
    }
}
