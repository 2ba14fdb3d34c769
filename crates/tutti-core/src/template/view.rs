//! JSON values as Liquid sees them: views in place over `serde_json` values, with Shopify's lax lookups (a
//! member that is not there is nil).

use liquid::model::{ArrayView, DisplayCow, KStringCow, ScalarCow, State, Value as LiquidValue};
use ref_cast::RefCast;
use serde_json::Value;

/// A JSON value as Liquid sees it, where looking up a member that is not there gives nil. A view over the
/// value itself (`Lax::ref_cast(&value)`), so a member lookup hands out a view of the member in place.
#[derive(Debug, RefCast)]
#[repr(transparent)]
pub(super) struct Lax(Value);

static NIL: Lax = Lax(Value::Null);

/// The named variables of one render, as Liquid's top-level object.
#[derive(Debug)]
pub(super) struct Globals<'a>(pub(super) &'a [(&'a str, &'a Value)]);

/// Liquid's own value, for everything Liquid knows how to do with values.
fn liquid(value: &Value) -> LiquidValue {
    match value {
        Value::Null => LiquidValue::Nil,
        Value::Bool(b) => LiquidValue::scalar(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => LiquidValue::scalar(i),
            None => LiquidValue::scalar(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => LiquidValue::scalar(s.clone()),
        Value::Array(items) => LiquidValue::Array(items.iter().map(liquid).collect()),
        Value::Object(map) => LiquidValue::Object(map.iter().map(|(k, v)| (k.clone().into(), liquid(v))).collect()),
    }
}

impl liquid::ValueView for Lax {
    fn as_debug(&self) -> &dyn std::fmt::Debug {
        self
    }
    fn render(&self) -> DisplayCow<'_> {
        match &self.0 {
            Value::String(s) => DisplayCow::Borrowed(s),
            other => DisplayCow::Owned(Box::new(liquid(other).render().to_string())),
        }
    }
    fn source(&self) -> DisplayCow<'_> {
        DisplayCow::Owned(Box::new(liquid(&self.0).source().to_string()))
    }
    fn type_name(&self) -> &'static str {
        match &self.0 {
            Value::Null => "nil",
            Value::Bool(_) | Value::Number(_) | Value::String(_) => "scalar",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }
    fn query_state(&self, state: State) -> bool {
        match &self.0 {
            Value::Null => LiquidValue::Nil.query_state(state),
            Value::Array(items) => state == State::Truthy || items.is_empty(),
            Value::Object(map) => state == State::Truthy || map.is_empty(),
            _ => self.as_scalar().is_some_and(|s| s.query_state(state)),
        }
    }
    fn to_kstr(&self) -> KStringCow<'_> {
        match &self.0 {
            Value::String(s) => KStringCow::from_ref(s),
            other => KStringCow::from_string(liquid(other).to_kstr().as_str().to_owned()),
        }
    }
    fn to_value(&self) -> LiquidValue {
        liquid(&self.0)
    }
    fn as_scalar(&self) -> Option<ScalarCow<'_>> {
        match &self.0 {
            Value::Bool(b) => Some(ScalarCow::from(*b)),
            Value::Number(n) => Some(match n.as_i64() {
                Some(i) => ScalarCow::from(i),
                None => ScalarCow::from(n.as_f64().unwrap_or(f64::NAN)),
            }),
            Value::String(s) => Some(ScalarCow::from(s.as_str())),
            _ => None,
        }
    }
    fn as_array(&self) -> Option<&dyn ArrayView> {
        matches!(self.0, Value::Array(_)).then_some(self as &dyn ArrayView)
    }
    fn as_object(&self) -> Option<&dyn liquid::ObjectView> {
        // Nil answers every lookup with nil, so `a.b.c` is nil when `a` is missing.
        matches!(self.0, Value::Object(_) | Value::Null).then_some(self as &dyn liquid::ObjectView)
    }
    fn is_nil(&self) -> bool {
        self.0.is_null()
    }
}

impl liquid::ObjectView for Lax {
    fn as_value(&self) -> &dyn liquid::ValueView {
        self
    }
    fn size(&self) -> i64 {
        self.0.as_object().map_or(0, |m| m.len() as i64)
    }
    fn keys<'k>(&'k self) -> Box<dyn Iterator<Item = KStringCow<'k>> + 'k> {
        match &self.0 {
            Value::Object(map) => Box::new(map.keys().map(|k| KStringCow::from_ref(k))),
            _ => Box::new(std::iter::empty()),
        }
    }
    fn values<'k>(&'k self) -> Box<dyn Iterator<Item = &'k dyn liquid::ValueView> + 'k> {
        match &self.0 {
            Value::Object(map) => Box::new(map.values().map(|v| Lax::ref_cast(v) as &dyn liquid::ValueView)),
            _ => Box::new(std::iter::empty()),
        }
    }
    fn iter<'k>(&'k self) -> Box<dyn Iterator<Item = (KStringCow<'k>, &'k dyn liquid::ValueView)> + 'k> {
        match &self.0 {
            Value::Object(map) => {
                Box::new(map.iter().map(|(k, v)| (KStringCow::from_ref(k), Lax::ref_cast(v) as &dyn liquid::ValueView)))
            }
            _ => Box::new(std::iter::empty()),
        }
    }
    fn contains_key(&self, index: &str) -> bool {
        matches!(&self.0, Value::Object(map) if map.contains_key(index))
    }
    fn get<'s>(&'s self, index: &str) -> Option<&'s dyn liquid::ValueView> {
        match &self.0 {
            Value::Object(map) => match map.get(index) {
                Some(v) => Some(Lax::ref_cast(v)),
                // Let Liquid answer `size` itself.
                None if index == "size" => None,
                None => Some(&NIL),
            },
            Value::Null => Some(&NIL),
            _ => None,
        }
    }
}

impl ArrayView for Lax {
    fn as_value(&self) -> &dyn liquid::ValueView {
        self
    }
    fn size(&self) -> i64 {
        self.0.as_array().map_or(0, |a| a.len() as i64)
    }
    fn values<'k>(&'k self) -> Box<dyn Iterator<Item = &'k dyn liquid::ValueView> + 'k> {
        match &self.0 {
            Value::Array(items) => Box::new(items.iter().map(|v| Lax::ref_cast(v) as &dyn liquid::ValueView)),
            _ => Box::new(std::iter::empty()),
        }
    }
    fn contains_key(&self, index: i64) -> bool {
        ArrayView::get(self, index).is_some()
    }
    fn get(&self, index: i64) -> Option<&dyn liquid::ValueView> {
        let Value::Array(items) = &self.0 else { return None };
        let at = if index < 0 { items.len() as i64 + index } else { index };
        usize::try_from(at).ok().and_then(|i| items.get(i)).map(|v| Lax::ref_cast(v) as &dyn liquid::ValueView)
    }
}

impl liquid::ValueView for Globals<'_> {
    fn as_debug(&self) -> &dyn std::fmt::Debug {
        self
    }
    fn render(&self) -> DisplayCow<'_> {
        DisplayCow::Owned(Box::new(self.to_value().render().to_string()))
    }
    fn source(&self) -> DisplayCow<'_> {
        DisplayCow::Owned(Box::new(self.to_value().source().to_string()))
    }
    fn type_name(&self) -> &'static str {
        "object"
    }
    fn query_state(&self, state: State) -> bool {
        match state {
            State::Truthy => true,
            State::DefaultValue | State::Empty | State::Blank => self.0.is_empty(),
        }
    }
    fn to_kstr(&self) -> KStringCow<'_> {
        KStringCow::from_string(self.to_value().to_kstr().as_str().to_owned())
    }
    fn to_value(&self) -> LiquidValue {
        LiquidValue::Object(self.0.iter().map(|(k, v)| ((*k).to_owned().into(), liquid(v))).collect())
    }
    fn as_object(&self) -> Option<&dyn liquid::ObjectView> {
        Some(self)
    }
}

impl liquid::ObjectView for Globals<'_> {
    fn as_value(&self) -> &dyn liquid::ValueView {
        self
    }
    fn size(&self) -> i64 {
        self.0.len() as i64
    }
    fn keys<'k>(&'k self) -> Box<dyn Iterator<Item = KStringCow<'k>> + 'k> {
        Box::new(self.0.iter().map(|(k, _)| KStringCow::from_ref(k)))
    }
    fn values<'k>(&'k self) -> Box<dyn Iterator<Item = &'k dyn liquid::ValueView> + 'k> {
        Box::new(self.0.iter().map(|(_, v)| Lax::ref_cast(v) as &dyn liquid::ValueView))
    }
    fn iter<'k>(&'k self) -> Box<dyn Iterator<Item = (KStringCow<'k>, &'k dyn liquid::ValueView)> + 'k> {
        Box::new(self.0.iter().map(|(k, v)| (KStringCow::from_ref(k), Lax::ref_cast(*v) as &dyn liquid::ValueView)))
    }
    fn contains_key(&self, index: &str) -> bool {
        self.0.iter().any(|(k, _)| *k == index)
    }
    fn get<'s>(&'s self, index: &str) -> Option<&'s dyn liquid::ValueView> {
        match self.0.iter().find(|(k, _)| *k == index) {
            Some((_, v)) => Some(Lax::ref_cast(*v)),
            None => Some(&NIL),
        }
    }
}
