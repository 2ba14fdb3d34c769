//! Templates: Liquid, what marketers already write in Braze, Klaviyo and Shopify. Message bodies and action
//! payloads are rendered with them from named JSON values such as `event` and `profile`.
//!
//! Variables are looked up the way Shopify's Liquid does, not the way liquid-rust does by default: a member
//! that does not exist is nil (renders empty, is falsy, takes `| default:`), instead of failing the render.
//! Marketers write `{{ profile.traits.first_name | default: 'bạn' }}` for people who never gave a name.
//!
//! Sandboxed: the parser has the standard tags and filters but no partial source, so `{% include %}` and
//! `{% render %}` cannot reach the file system, and nothing in Liquid reaches the network. Parsing reports the
//! line and column of the first error. Sources and rendered output are bounded in size.

use std::sync::LazyLock;

use liquid::model::{ArrayView, DisplayCow, KStringCow, ScalarCow, State, Value as LiquidValue};
use ref_cast::RefCast;
use serde_json::Value;

/// The longest template accepted, in bytes.
pub const MAX_SOURCE_BYTES: usize = 64 * 1024;

/// The longest rendered output accepted, in bytes.
pub const MAX_OUTPUT_BYTES: usize = 256 * 1024;

static PARSER: LazyLock<liquid::Parser> =
    LazyLock::new(|| liquid::ParserBuilder::with_stdlib().build().expect("the standard library builds a parser"));

/// A parsed template.
pub struct Template {
    source: String,
    template: liquid::Template,
}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Template").field(&self.source).finish()
    }
}

/// Why a template does not parse: where, and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct TemplateError {
    /// 1-based line within the template's source.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    pub message: String,
}

/// Why a parsed template could not be rendered (an unknown variable, a filter given the wrong type, output
/// over the limit).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RenderError(pub String);

impl Template {
    /// Parses a template, or says where its first error is.
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        if source.len() > MAX_SOURCE_BYTES {
            return Err(TemplateError {
                line: 1,
                column: 1,
                message: format!("the template is {} bytes; the limit is {MAX_SOURCE_BYTES}", source.len()),
            });
        }
        let template = PARSER.parse(source).map_err(|e| {
            let text = e.to_string();
            let (line, column) = position(&text).unwrap_or((1, 1));
            TemplateError { line, column, message: summary(&text) }
        })?;
        Ok(Template { source: source.to_owned(), template })
    }

    /// The source it was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the source mentions the name at all: when it does not, the template cannot read a variable of
    /// that name, so the caller may skip building it. (A mention need not be a read; that only costs the work.)
    pub fn mentions(&self, name: &str) -> bool {
        self.source.contains(name)
    }

    /// Renders with the given variables. Liquid reads them where they are: nothing is copied but what the
    /// template prints.
    pub fn render(&self, variables: &[(&str, &Value)]) -> Result<String, RenderError> {
        let out = self.template.render(&Globals(variables)).map_err(|e| RenderError(summary(&e.to_string())))?;
        if out.len() > MAX_OUTPUT_BYTES {
            return Err(RenderError(format!("the output is {} bytes; the limit is {MAX_OUTPUT_BYTES}", out.len())));
        }
        Ok(out)
    }
}

/// A JSON value as Liquid sees it, where looking up a member that is not there gives nil. A view over the
/// value itself (`Lax::ref_cast(&value)`), so a member lookup hands out a view of the member in place.
#[derive(Debug, RefCast)]
#[repr(transparent)]
struct Lax(Value);

static NIL: Lax = Lax(Value::Null);

/// The named variables of one render, as Liquid's top-level object.
#[derive(Debug)]
struct Globals<'a>(&'a [(&'a str, &'a Value)]);

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

/// The `--> line:column` that Liquid's parse errors carry.
fn position(text: &str) -> Option<(usize, usize)> {
    let rest = &text[text.find("--> ")? + 4..];
    let end = rest.find(|c: char| !c.is_ascii_digit() && c != ':').unwrap_or(rest.len());
    let (line, column) = rest[..end].split_once(':')?;
    Some((line.parse().ok()?, column.parse().ok()?))
}

/// The error's message without Liquid's source excerpt: the lines that say what is wrong.
fn summary(text: &str) -> String {
    let said: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty()
                && !l.starts_with("-->")
                && !l.starts_with('|')
                && !l.chars().next().is_some_and(|c| c.is_ascii_digit())
        })
        .map(|l| l.trim_start_matches("= ").trim_start_matches("liquid:").trim())
        .filter(|l| !l.is_empty())
        .collect();
    if said.is_empty() { text.trim().to_owned() } else { said.join("; ") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_vietnamese_and_chinese_with_filters() {
        let t = Template::parse(
            "Xin chào {{ profile.traits.name | default: 'bạn' }}, {{ event.properties.product }} còn {{ event.properties.stock }} chiếc. 你好{{ profile.traits['城市'] }}",
        )
        .unwrap();
        let event = json!({"properties": {"product": "Áo dài lụa", "stock": 3}});
        let profile = json!({"traits": {"城市": "上海"}});
        assert_eq!(
            t.render(&[("event", &event), ("profile", &profile)]).unwrap(),
            "Xin chào bạn, Áo dài lụa còn 3 chiếc. 你好上海"
        );
    }

    #[test]
    fn syntax_errors_say_where_and_what() {
        let err = Template::parse("Hello\n{% if profile.vip %}VIP").unwrap_err();
        assert_eq!(err.line, 2, "{err}");
        assert!(err.message.to_lowercase().contains("endif"), "{err}");
        let err = Template::parse("{{ profile.name | nosuchfilter }}").unwrap_err();
        assert!(err.message.contains("nosuchfilter"), "{err}");
    }

    #[test]
    fn the_file_system_is_out_of_reach() {
        let include = Template::parse("{% include '/etc/passwd' %}");
        let rendered = include.map(|t| t.render(&[]));
        assert!(matches!(rendered, Err(_) | Ok(Err(_))), "an include must not read files: {rendered:?}");
    }

    #[test]
    fn missing_members_are_nil_as_in_shopify_liquid() {
        let t = Template::parse(
            "[{{ profile.traits.plan }}][{{ profile.nothing.at.all | default: 'none' }}][{% if profile.traits.vip %}vip{% else %}regular{% endif %}][{{ profile.traits.size }}][{{ profile.tags.size }}][{{ profile.tags.first }}][{{ profile.tags[-1] }}]",
        )
        .unwrap();
        let profile = json!({"traits": {"a": 1, "b": 2}, "tags": ["mới", "vip"]});
        assert_eq!(t.render(&[("profile", &profile)]).unwrap(), "[][none][regular][2][2][mới][vip]");
        let loop_ =
            Template::parse("{% for t in profile.tags %}{{ t }};{% endfor %}{% for x in profile.none %}x{% endfor %}")
                .unwrap();
        assert_eq!(loop_.render(&[("profile", &profile)]).unwrap(), "mới;vip;");
    }

    #[test]
    fn output_is_bounded() {
        let big = Template::parse("{% for i in (1..300) %}{{ profile.pad }}{% endfor %}").unwrap();
        let err = big.render(&[("profile", &json!({"pad": "x".repeat(1000)}))]).unwrap_err();
        assert!(err.0.contains("limit"), "{err}");
    }
}
