//! The metrics layer: the measures, dimensions and time grains that questions and reports count with.
//!
//! Shipped defaults (`defaults.yaml`) understand Segment's e-commerce and email events; a user's own file is
//! laid over them (a measure or dimension of the same name replaces the shipped one). Both are read with every
//! problem located at its line, like flows. The words under each name are what the local question parser
//! recognises, in English, Vietnamese and Chinese.

mod read;

use std::collections::BTreeMap;

use serde::Serialize;
use tutti_core::decode::Problem;

pub use read::load;

/// The layer Tutti ships.
pub const DEFAULTS: &str = include_str!("defaults.yaml");

/// The languages measures and dimensions are named in.
pub const LANGUAGES: [&str; 3] = ["en", "vi", "zh"];

/// What a measure adds up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Aggregate {
    /// The number of order events.
    CountOrders,
    /// The number of events (named `event`, or all).
    CountEvents,
    /// The number of different people (doing `event`, or doing anything).
    CountProfiles,
    /// The sum of a column of orders or items: `revenue` (orders), `quantity` or `amount` (items).
    Sum { column: SumColumn },
    /// The sum of an event property (`properties.<path>`) of the events named `event`.
    SumProperty { path: String },
    /// The average per order of a column (`revenue`).
    Average { column: SumColumn },
}

/// The columns Tutti projects that a measure can sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SumColumn {
    /// An order's revenue (`revenue`, else `total`, else `value`).
    Revenue,
    /// An item's quantity.
    Quantity,
    /// An item's price × quantity.
    Amount,
}

impl SumColumn {
    pub fn as_str(self) -> &'static str {
        match self {
            SumColumn::Revenue => "revenue",
            SumColumn::Quantity => "quantity",
            SumColumn::Amount => "amount",
        }
    }

    /// Whether this is money (kept per currency).
    pub fn is_money(self) -> bool {
        !matches!(self, SumColumn::Quantity)
    }
}

/// Words in the three languages, and a label per language.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Names {
    pub label: BTreeMap<String, String>,
    pub words: BTreeMap<String, Vec<String>>,
}

impl Names {
    /// The label in `language`, else English, else `fallback`.
    pub fn label<'a>(&'a self, language: &str, fallback: &'a str) -> &'a str {
        self.label.get(language).or_else(|| self.label.get("en")).map(String::as_str).unwrap_or(fallback)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Measure {
    pub name: String,
    pub aggregate: Aggregate,
    /// Only events with this name count (measures over events or people).
    pub event: Option<String>,
    /// What is summed instead when the query splits by an item dimension (`amount` for revenue).
    pub per_item: Option<SumColumn>,
    /// Money: results are per currency.
    pub money: bool,
    #[serde(flatten)]
    pub names: Names,
}

/// Where a dimension's value is read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "from", content = "path")]
pub enum Source {
    /// A column of an order's item: `product_id`, `sku`, `name`, `category`, `brand`, `variant`.
    Item(String),
    /// A profile trait (the latest value an identify call set).
    Trait(String),
    /// An event property (`properties.<path>`).
    Property(String),
    /// An event's context (`context.<path>`, such as `campaign.source` for `utm_source`).
    Context(String),
    /// The event's name.
    EventName,
}

/// The item columns a dimension can name.
pub const ITEM_COLUMNS: [&str; 6] = ["product_id", "sku", "name", "category", "brand", "variant"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dimension {
    pub name: String,
    pub source: Source,
    #[serde(flatten)]
    pub names: Names,
}

/// A time grain a measure can be broken down by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grain {
    Day,
    Week,
    Month,
}

impl Grain {
    pub fn parse(text: &str) -> Option<Grain> {
        match text {
            "day" => Some(Grain::Day),
            "week" => Some(Grain::Week),
            "month" => Some(Grain::Month),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Grain::Day => "day",
            Grain::Week => "week",
            Grain::Month => "month",
        }
    }
}

/// The metrics layer in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MetricsLayer {
    /// The events that are orders; their `products[]` become items.
    pub order_events: Vec<String>,
    pub measures: BTreeMap<String, Measure>,
    pub dimensions: BTreeMap<String, Dimension>,
    pub grains: Vec<Grain>,
}

impl MetricsLayer {
    /// The shipped layer alone.
    pub fn defaults() -> MetricsLayer {
        load(DEFAULTS, None).expect("the shipped metrics layer is valid")
    }

    /// What the projection must keep for this layer: changing it means the projected tables are rebuilt.
    /// Labels and words do not count.
    pub fn projection_fingerprint(&self) -> String {
        let mut parts: Vec<String> = vec![format!("orders={}", self.order_events.join("\u{1f}"))];
        for d in self.dimensions.values() {
            match &d.source {
                Source::Property(p) => parts.push(format!("{}=p:{p}", d.name)),
                Source::Context(p) => parts.push(format!("{}=c:{p}", d.name)),
                Source::Trait(t) => parts.push(format!("{}=t:{t}", d.name)),
                Source::Item(_) | Source::EventName => {}
            }
        }
        for m in self.measures.values() {
            if let Aggregate::SumProperty { path } = &m.aggregate {
                parts.push(format!("{}=s:{path}", m.name));
            }
        }
        parts.join("\n")
    }

    /// The event properties and context paths the projection keeps per event, by the key they are kept under.
    pub fn event_paths(&self) -> Vec<(String, Vec<String>)> {
        let mut out = Vec::new();
        for d in self.dimensions.values() {
            match &d.source {
                Source::Property(p) => out.push((d.name.clone(), path_of("properties", p))),
                Source::Context(p) => out.push((d.name.clone(), path_of("context", p))),
                _ => {}
            }
        }
        for m in self.measures.values() {
            if let Aggregate::SumProperty { path } = &m.aggregate {
                out.push((format!("sum:{}", m.name), path_of("properties", path)));
            }
        }
        out
    }

    /// The traits the projection keeps per profile, by the key they are kept under.
    pub fn trait_paths(&self) -> Vec<(String, String)> {
        self.dimensions
            .values()
            .filter_map(|d| match &d.source {
                Source::Trait(t) => Some((d.name.clone(), t.clone())),
                _ => None,
            })
            .collect()
    }
}

fn path_of(root: &str, dotted: &str) -> Vec<String> {
    std::iter::once(root.to_owned()).chain(dotted.split('.').map(str::to_owned)).collect()
}

/// A metrics file that could not be read: every problem, located.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", .problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct LayerError {
    pub problems: Vec<Problem>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_layer_reads_and_names_everything_in_three_languages() {
        let layer = MetricsLayer::defaults();
        assert_eq!(layer.order_events, vec!["Order Completed"]);
        assert_eq!(layer.measures["revenue"].aggregate, Aggregate::Sum { column: SumColumn::Revenue });
        assert!(layer.measures["revenue"].money);
        assert_eq!(layer.measures["units"].aggregate, Aggregate::Sum { column: SumColumn::Quantity });
        assert_eq!(layer.dimensions["utm_source"].source, Source::Context("campaign.source".into()));
        for m in layer.measures.values() {
            for lang in LANGUAGES {
                assert!(m.names.label.contains_key(lang), "{} has no {lang} label", m.name);
                assert!(m.names.words.get(lang).is_some_and(|w| !w.is_empty()), "{} has no {lang} words", m.name);
            }
        }
        assert_eq!(layer.grains, vec![Grain::Day, Grain::Week, Grain::Month]);
    }

    #[test]
    fn a_users_file_adds_and_replaces_by_name() {
        let own = "measures:\n  trial_starts:\n    count: profiles\n    event: Trial Started\n  revenue:\n    sum: revenue\n    label: { en: takings }\ndimensions:\n  tier:\n    trait: tier\n";
        let layer = load(DEFAULTS, Some(own)).unwrap();
        assert_eq!(layer.measures["trial_starts"].event.as_deref(), Some("Trial Started"));
        assert_eq!(layer.measures["revenue"].names.label("en", ""), "takings");
        assert_eq!(layer.measures["revenue"].per_item, None, "replaced whole, not merged");
        assert!(layer.dimensions.contains_key("product"), "the shipped ones stay");
        assert_eq!(layer.dimensions["tier"].source, Source::Trait("tier".into()));
        assert_ne!(layer.projection_fingerprint(), MetricsLayer::defaults().projection_fingerprint());
    }

    #[test]
    fn mistakes_are_located_and_explained() {
        let own = "measures:\n  gross:\n    sum: properties.amount\n  net:\n    count: orderz\ndimensions:\n  size:\n    item: weight\n  x:\n    trait: a\n    property: b\ngrains: [day, fortnight]\n";
        let err = load(DEFAULTS, Some(own)).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("3:10") && text.contains("`event`"), "{text}");
        assert!(text.contains("5:12") && text.contains("did you mean `orders`"), "{text}");
        assert!(text.contains("8:11") && text.contains("weight"), "{text}");
        assert!(text.contains("exactly one of"), "{text}");
        assert!(text.contains("fortnight"), "{text}");
    }

    #[test]
    fn hostile_files_are_refused_not_obeyed() {
        for source in [
            "measures: [1, 2]",
            "dimensions:\n  \"a';drop\":\n    trait: x\n",
            "measures:\n  m:\n    sum: properties.a..b\n    event: E\n",
            "&a [*a]",
        ] {
            assert!(load(DEFAULTS, Some(source)).is_err(), "{source}");
        }
    }
}
