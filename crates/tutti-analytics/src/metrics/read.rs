//! Reading metrics files: the shipped defaults, then a user's own laid over them, every problem located.

use std::collections::BTreeMap;

use serde_json::Value;
use tutti_core::decode::{Cx, Obj, closest, kind};
use tutti_core::yaml;

use super::{
    Aggregate, Dimension, Grain, ITEM_COLUMNS, LANGUAGES, LayerError, Measure, MetricsLayer, Names, Source, SumColumn,
};
use tutti_core::decode::Problem;

/// The most measures or dimensions a layer may have.
pub const MAX_ENTRIES: usize = 500;
/// The most words a name may list per language.
pub const MAX_WORDS: usize = 50;

/// Reads the shipped layer and, when given, a user's file over it.
pub fn load(defaults: &str, own: Option<&str>) -> Result<MetricsLayer, LayerError> {
    let mut layer = MetricsLayer {
        order_events: Vec::new(),
        measures: BTreeMap::new(),
        dimensions: BTreeMap::new(),
        grains: Vec::new(),
    };
    read_into(&mut layer, defaults)?;
    if let Some(own) = own {
        read_into(&mut layer, own)?;
    }
    if layer.grains.is_empty() {
        layer.grains = vec![Grain::Day, Grain::Week, Grain::Month];
    }
    Ok(layer)
}

fn read_into(layer: &mut MetricsLayer, source: &str) -> Result<(), LayerError> {
    let (value, positions) = yaml::load(source).map_err(|e| LayerError {
        problems: vec![Problem { pos: e.pos, pointer: String::new(), message: e.message, hint: None }],
    })?;
    let mut cx = Cx::new(&positions);
    read_top(&mut cx, &value, layer);
    if cx.problems.is_empty() { Ok(()) } else { Err(LayerError { problems: cx.problems }) }
}

fn read_top(cx: &mut Cx<'_>, value: &Value, layer: &mut MetricsLayer) {
    if value.is_null() {
        return;
    }
    let Some(mut top) = cx.object(value, "", "a metrics file") else { return };
    if let Some((orders, at)) = top.get("orders")
        && let Some(mut obj) = cx.object(orders, &at, "`orders`")
    {
        if let Some((events, at)) =
            obj.require(cx, "events", "list the events that are orders, such as [Order Completed]")
        {
            layer.order_events = names_list(cx, events, &at);
        }
        obj.finish(cx);
    }
    if let Some((measures, at)) = top.get("measures")
        && let Some(map) = entries(cx, measures, &at, "`measures`")
    {
        for (name, value, at) in map {
            if let Some(m) = measure(cx, &name, value, &at) {
                layer.measures.insert(name, m);
            }
        }
    }
    if let Some((dimensions, at)) = top.get("dimensions")
        && let Some(map) = entries(cx, dimensions, &at, "`dimensions`")
    {
        for (name, value, at) in map {
            if let Some(d) = dimension(cx, &name, value, &at) {
                layer.dimensions.insert(name, d);
            }
        }
    }
    if let Some((grains, at)) = top.get("grains") {
        let mut read = Vec::new();
        for (i, g) in list(cx, grains, &at).iter().enumerate() {
            let at = yaml::push_token(&at, &i.to_string());
            match g.as_str().and_then(Grain::parse) {
                Some(grain) => read.push(grain),
                None => cx.problem(&at, format!("`{}` is not a time grain", text(g)), "grains are day, week and month"),
            }
        }
        read.sort();
        read.dedup();
        layer.grains = read;
    }
    top.finish(cx);
}

fn text(v: &Value) -> String {
    v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())
}

fn list<'v>(cx: &mut Cx<'_>, value: &'v Value, at: &str) -> &'v [Value] {
    match value {
        Value::Array(items) => items,
        other => {
            cx.problem(at, format!("expected a list, found {}", kind(other)), "");
            &[]
        }
    }
}

fn names_list(cx: &mut Cx<'_>, value: &Value, at: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, v) in list(cx, value, at).iter().enumerate() {
        if let Some(name) = cx.name(v, &yaml::push_token(at, &i.to_string())) {
            out.push(name);
        }
    }
    out
}

/// The members of a mapping of named entries, each name checked.
fn entries<'v>(cx: &mut Cx<'_>, value: &'v Value, at: &str, what: &str) -> Option<Vec<(String, &'v Value, String)>> {
    let obj = cx.object(value, at, what)?;
    if obj.map.len() > MAX_ENTRIES {
        cx.problem(at, format!("{what} has {} entries; at most {MAX_ENTRIES}", obj.map.len()), "");
        return None;
    }
    let mut out = Vec::new();
    for (name, v) in obj.map {
        let pointer = yaml::push_token(at, name);
        if !is_name(name) {
            cx.problem(
                &pointer,
                format!("`{name}` is not a usable name"),
                "names are lower-case letters, digits and `_`, starting with a letter, at most 64",
            );
            continue;
        }
        out.push((name.clone(), v, pointer));
    }
    Some(out)
}

/// A measure or dimension name: what queries and answers call it.
pub fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// A dotted path into an event (`campaign.source`): segments of printable characters.
fn path(cx: &mut Cx<'_>, value: &Value, at: &str) -> Option<String> {
    let p = cx.string(value, at)?;
    let ok = !p.is_empty()
        && p.len() <= 200
        && p.split('.').count() <= 8
        && p.split('.').all(|s| !s.is_empty() && !s.chars().any(char::is_control));
    if !ok {
        cx.problem(at, format!("`{p}` is not a path"), "a path names members with dots, such as `campaign.source`");
        return None;
    }
    Some(p.to_owned())
}

fn names(cx: &mut Cx<'_>, obj: &mut Obj<'_>) -> Names {
    let mut out = Names::default();
    if let Some((label, at)) = obj.get("label")
        && let Some(mut labels) = cx.object(label, &at, "`label`")
    {
        for lang in LANGUAGES {
            if let Some((v, at)) = labels.get(lang)
                && let Some(text) = cx.name(v, &at)
            {
                out.label.insert(lang.to_owned(), text);
            }
        }
        labels.finish(cx);
    }
    if let Some((words, at)) = obj.get("words")
        && let Some(mut by_lang) = cx.object(words, &at, "`words`")
    {
        for lang in LANGUAGES {
            if let Some((v, at)) = by_lang.get(lang) {
                let read = names_list(cx, v, &at);
                if read.len() > MAX_WORDS {
                    cx.problem(&at, format!("{} words; at most {MAX_WORDS}", read.len()), "");
                }
                out.words.insert(lang.to_owned(), read.into_iter().take(MAX_WORDS).collect());
            }
        }
        by_lang.finish(cx);
    }
    out
}

const COUNTS: [&str; 3] = ["orders", "events", "profiles"];
const SUMS: [&str; 4] = ["revenue", "quantity", "amount", "properties.<path>"];

fn column(word: &str) -> Option<SumColumn> {
    match word {
        "revenue" => Some(SumColumn::Revenue),
        "quantity" => Some(SumColumn::Quantity),
        "amount" => Some(SumColumn::Amount),
        _ => None,
    }
}

fn measure(cx: &mut Cx<'_>, name: &str, value: &Value, at: &str) -> Option<Measure> {
    let mut obj = cx.object(value, at, "a measure")?;
    let count = obj.get("count");
    let sum = obj.get("sum");
    let average = obj.get("average");
    let event = obj.get("event").and_then(|(v, at)| cx.name(v, &at));
    let per_item = obj.get("per_item");
    let money_flag = obj.get("money").and_then(|(v, at)| cx.boolean(v, &at));
    let names = names(cx, &mut obj);
    obj.finish(cx);
    let how = [&count, &sum, &average].iter().filter(|x| x.is_some()).count();
    if how != 1 {
        cx.problem(
            at,
            "a measure says exactly one of `count`, `sum` or `average`",
            "such as `count: orders` or `sum: revenue`",
        );
        return None;
    }
    let mut money = false;
    let aggregate = if let Some((v, at)) = count {
        let word = cx.string(v, &at)?;
        match word {
            "orders" => {
                if event.is_some() {
                    cx.problem(
                        &at,
                        "orders are already the order events; `event` does not apply",
                        "use `count: events` with `event`",
                    );
                }
                Aggregate::CountOrders
            }
            "events" => Aggregate::CountEvents,
            "profiles" => Aggregate::CountProfiles,
            other => {
                let hint = match closest(other, &COUNTS) {
                    Some(near) => format!("did you mean `{near}`? a measure counts orders, events or profiles"),
                    None => "a measure counts orders, events or profiles".into(),
                };
                cx.problem(&at, format!("cannot count `{other}`"), hint);
                return None;
            }
        }
    } else if let Some((v, at)) = sum {
        let word = cx.string(v, &at)?;
        if let Some(rest) = word.strip_prefix("properties.") {
            let p = path(cx, &Value::String(rest.to_owned()), &at)?;
            if event.is_none() {
                cx.problem(
                    &at,
                    "a sum of a property needs the `event` it is read from",
                    "add `event: <the event's name>`",
                );
                return None;
            }
            money = money_flag.unwrap_or(false);
            Aggregate::SumProperty { path: p }
        } else if let Some(c) = column(word) {
            money = c.is_money();
            Aggregate::Sum { column: c }
        } else {
            cx.problem(&at, format!("cannot sum `{word}`"), format!("a measure sums {}", SUMS.join(", ")));
            return None;
        }
    } else {
        let (v, at) = average?;
        let word = cx.string(v, &at)?;
        match column(word) {
            Some(c @ SumColumn::Revenue) => {
                money = true;
                Aggregate::Average { column: c }
            }
            _ => {
                cx.problem(&at, format!("cannot average `{word}`"), "a measure averages `revenue` per order");
                return None;
            }
        }
    };
    let per_item = match per_item {
        Some((v, at)) => match cx.string(v, &at).and_then(column) {
            Some(c @ (SumColumn::Amount | SumColumn::Quantity)) => Some(c),
            _ => {
                cx.problem(
                    &at,
                    "`per_item` is `amount` or `quantity`",
                    "what to sum when split by a product dimension",
                );
                None
            }
        },
        None => None,
    };
    Some(Measure { name: name.to_owned(), aggregate, event, per_item, money, names })
}

fn dimension(cx: &mut Cx<'_>, name: &str, value: &Value, at: &str) -> Option<Dimension> {
    let mut obj = cx.object(value, at, "a dimension")?;
    let item = obj.get("item");
    let trait_ = obj.get("trait");
    let property = obj.get("property");
    let context = obj.get("context");
    let event_name = obj.get("event_name");
    let names = names(cx, &mut obj);
    obj.finish(cx);
    let given = [&item, &trait_, &property, &context, &event_name].iter().filter(|x| x.is_some()).count();
    if given != 1 {
        cx.problem(
            at,
            "a dimension says exactly one of `item`, `trait`, `property`, `context` or `event_name`",
            "such as `trait: city` or `context: campaign.source`",
        );
        return None;
    }
    let source = if let Some((v, at)) = item {
        let column = cx.string(v, &at)?;
        if !ITEM_COLUMNS.contains(&column) {
            cx.problem(&at, format!("items have no `{column}`"), format!("items have {}", ITEM_COLUMNS.join(", ")));
            return None;
        }
        Source::Item(column.to_owned())
    } else if let Some((v, at)) = trait_ {
        Source::Trait(path(cx, v, &at)?)
    } else if let Some((v, at)) = property {
        Source::Property(path(cx, v, &at)?)
    } else if let Some((v, at)) = context {
        Source::Context(path(cx, v, &at)?)
    } else {
        let (v, at) = event_name?;
        if cx.boolean(v, &at) != Some(true) {
            cx.problem(&at, "`event_name` is `true` when given", "");
            return None;
        }
        Source::EventName
    };
    Some(Dimension { name: name.to_owned(), source, names })
}
