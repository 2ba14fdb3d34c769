//! One event as the analytics tables keep it: its time, person and name; an order's revenue and items; the
//! properties and traits the metrics layer asks for. Pure: the caller says whose event it is.

use serde::Deserialize;
use serde_json::{Map, Value};
use tutti_core::Event;
use tutti_core::event::EventType;

use crate::metrics::MetricsLayer;

/// The most items of one order kept.
pub const MAX_ITEMS: usize = 200;
/// The longest text value kept for a dimension; longer values are cut at a character boundary.
pub const MAX_VALUE_CHARS: usize = 200;

/// One event, projected.
#[derive(Debug, Clone, PartialEq)]
pub struct Projected {
    pub seq: u64,
    /// The event's corrected timestamp, in milliseconds.
    pub at: i64,
    pub profile: u64,
    /// The track event's name, or the call type (`page`, `identify`, ...).
    pub name: String,
    /// An order's revenue (`revenue`, else `total`, else `value`).
    pub revenue: Option<f64>,
    pub currency: Option<String>,
    /// The layer's event dimensions and summed properties present in this event, as a JSON object's text.
    pub props: Option<String>,
    pub items: Vec<Item>,
    /// The layer's trait dimensions an identify call set.
    pub traits: Map<String, Value>,
}

/// One line of an order's `products[]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Item {
    pub product_id: Option<String>,
    pub sku: Option<String>,
    pub name: Option<String>,
    pub category: Option<String>,
    pub brand: Option<String>,
    pub variant: Option<String>,
    pub price: Option<f64>,
    /// `quantity`, 1 when absent.
    pub quantity: f64,
}

impl Item {
    /// Price × quantity, when the price is known.
    pub fn amount(&self) -> Option<f64> {
        self.price.map(|p| p * self.quantity)
    }
}

/// The parts of a stored event the projection reads beyond the decided fields.
#[derive(Deserialize)]
struct Parts {
    #[serde(default)]
    properties: Option<Value>,
    #[serde(default)]
    context: Option<Value>,
}

/// Projects an event that belongs to `profile`.
pub fn project(seq: u64, event: &Event, profile: u64, layer: &MetricsLayer) -> Projected {
    let parts: Parts = serde_json::from_slice(&event.body).unwrap_or(Parts { properties: None, context: None });
    let properties = parts.properties.as_ref().and_then(Value::as_object);
    let name = match (event.kind, &event.name) {
        (EventType::Track, Some(name)) => name.clone(),
        _ => event.kind.as_str().to_owned(),
    };
    let is_order = event.kind == EventType::Track && layer.order_events.contains(&name);
    let currency = properties.and_then(|p| p.get("currency")).and_then(currency);
    let (revenue, items) = match (is_order, properties) {
        (true, Some(p)) => {
            let revenue = ["revenue", "total", "value"].iter().find_map(|k| p.get(*k).and_then(number));
            let items = p.get("products").and_then(Value::as_array).map(|list| items_of(list)).unwrap_or_default();
            (revenue, items)
        }
        _ => (None, Vec::new()),
    };
    let mut kept = Map::new();
    let roots = [("properties", parts.properties.as_ref()), ("context", parts.context.as_ref())];
    for (key, path) in layer.event_paths() {
        let root = roots.iter().find(|(r, _)| *r == path[0]).and_then(|(_, v)| *v);
        if let Some(v) = root.and_then(|r| walk(r, &path[1..])).and_then(scalar) {
            kept.insert(key, v);
        }
    }
    let keeps_props = !kept.is_empty();
    let props = keeps_props.then(|| Value::Object(kept).to_string());
    let mut traits = Map::new();
    if event.kind == EventType::Identify {
        let set = event.identify_traits();
        for (key, path) in layer.trait_paths() {
            let segments: Vec<String> = path.split('.').map(str::to_owned).collect();
            let found = set.get(&segments[0]).and_then(|v| walk(v, &segments[1..])).and_then(scalar);
            if let Some(v) = found {
                traits.insert(key, v);
            }
        }
    }
    Projected {
        seq,
        at: event.timestamp,
        profile,
        name,
        revenue,
        currency: if is_order || keeps_props { currency } else { None },
        props,
        items,
        traits,
    }
}

fn items_of(list: &[Value]) -> Vec<Item> {
    list.iter()
        .filter_map(Value::as_object)
        .take(MAX_ITEMS)
        .map(|p| {
            let text = |k: &str| p.get(k).and_then(scalar).and_then(|v| v.as_str().map(str::to_owned));
            Item {
                product_id: text("product_id").or_else(|| text("id")),
                sku: text("sku"),
                name: text("name"),
                category: text("category"),
                brand: text("brand"),
                variant: text("variant"),
                price: p.get("price").and_then(number),
                quantity: p.get("quantity").and_then(number).filter(|q| *q > 0.0).unwrap_or(1.0),
            }
        })
        .collect()
}

fn walk<'v>(mut v: &'v Value, path: &[String]) -> Option<&'v Value> {
    for segment in path {
        v = v.as_object()?.get(segment)?;
    }
    Some(v)
}

/// A value a dimension can hold: text (cut to [`MAX_VALUE_CHARS`]), a number or true/false as text.
fn scalar(v: &Value) -> Option<Value> {
    match v {
        Value::String(s) => {
            let s = s.trim();
            if s.is_empty() {
                return None;
            }
            Some(Value::String(s.chars().take(MAX_VALUE_CHARS).collect()))
        }
        Value::Number(n) => Some(Value::String(n.to_string())),
        Value::Bool(b) => Some(Value::String(b.to_string())),
        _ => None,
    }
}

/// A finite number, or a string that reads as one (`"12.50"`), as clients often send money.
pub fn number(v: &Value) -> Option<f64> {
    let n = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    n.is_finite().then_some(n)
}

/// A currency code: three letters, upper-cased.
fn currency(v: &Value) -> Option<String> {
    let code = v.as_str()?.trim();
    (code.len() == 3 && code.chars().all(|c| c.is_ascii_alphabetic())).then(|| code.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(v: Value) -> Event {
        Event::from_json(v, None, &Default::default(), 1_000, || "m".into()).unwrap()
    }

    #[test]
    fn an_order_as_segments_spec_sends_it() {
        let layer = MetricsLayer::defaults();
        let e = event(json!({
            "type": "track", "userId": "u1", "event": "Order Completed", "timestamp": "2026-11-03T10:00:00Z",
            "context": {"campaign": {"source": "google", "name": "tet"}},
            "properties": {"order_id": "o1", "total": "27.50", "currency": "vnd", "products": [
                {"product_id": "p1", "name": "Áo dài", "category": "Thời trang", "price": 10, "quantity": 2},
                {"sku": "s2", "name": "茶", "price": "7.5"},
                "not an item"
            ]}
        }));
        let p = project(7, &e, 42, &layer);
        assert_eq!((p.seq, p.profile, p.name.as_str()), (7, 42, "Order Completed"));
        assert_eq!(p.at, tutti_core::time::parse_timestamp("2026-11-03T10:00:00Z").unwrap());
        assert_eq!(p.revenue, Some(27.5));
        assert_eq!(p.currency.as_deref(), Some("VND"));
        assert_eq!(p.items.len(), 2);
        assert_eq!(p.items[0].amount(), Some(20.0));
        assert_eq!((p.items[1].quantity, p.items[1].amount()), (1.0, Some(7.5)));
        assert_eq!(p.items[1].name.as_deref(), Some("茶"));
        let props: Value = serde_json::from_str(p.props.as_deref().unwrap()).unwrap();
        assert_eq!(props, json!({"utm_source": "google", "campaign": "tet"}));
    }

    #[test]
    fn other_events_keep_only_what_the_layer_names() {
        let layer = MetricsLayer::defaults();
        let e = event(
            json!({"type": "track", "userId": "u", "event": "Product Viewed", "properties": {"total": 9, "secret": "x"}}),
        );
        let p = project(1, &e, 1, &layer);
        assert_eq!((p.revenue, p.props.as_ref(), p.items.len()), (None, None, 0));
        let id = event(json!({"type": "identify", "userId": "u", "traits": {"city": "Hà Nội", "email": "a@b.c"}}));
        let p = project(2, &id, 1, &layer);
        assert_eq!(p.name, "identify");
        assert_eq!(Value::Object(p.traits), json!({"city": "Hà Nội"}));
    }
}
