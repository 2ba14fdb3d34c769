//! YAML definitions read into JSON values, remembering where every value came from.
//!
//! Flows, segments and policies are YAML files that people review in git, so a problem must be reported at the
//! line that causes it. [`load`] parses one document (with `saphyr-parser`, a YAML 1.2 parser) into a
//! `serde_json::Value` and a [`Positions`] table from JSON pointer to line and column; the definition compilers
//! then work on plain JSON and ask the table where a member was written.
//!
//! Deliberately narrower than YAML: one document per file; keys are strings; duplicate keys are errors (YAML
//! says they are, many parsers keep the last silently); anchors, aliases and custom tags are refused, which
//! also rules out alias bombs; scalars resolve by the YAML 1.2 core schema, without `.inf` or `.nan`, which
//! JSON cannot hold. The source and the nesting are bounded.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use serde_json::{Map, Number, Value};

/// The largest definition file accepted, in bytes.
pub const MAX_SOURCE_BYTES: usize = 1024 * 1024;

/// The deepest nesting of mappings and sequences accepted.
pub const MAX_DEPTH: usize = 64;

/// A line and a column in a source file, both 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Where each value of a loaded document starts, by JSON pointer (`/steps/2/wait`; the root is `""`).
#[derive(Debug, Clone, Default)]
pub struct Positions {
    at: HashMap<String, Pos>,
    /// Where a mapping key was written, for "unknown member" problems.
    keys: HashMap<String, Pos>,
}

impl Positions {
    /// Where the value at `pointer` starts, or where its nearest enclosing value starts.
    pub fn of(&self, pointer: &str) -> Pos {
        let mut p = pointer;
        loop {
            if let Some(pos) = self.at.get(p) {
                return *pos;
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return Pos { line: 1, column: 1 },
            }
        }
    }

    /// Where the key naming the member at `pointer` was written (falls back to the value's position).
    pub fn key(&self, pointer: &str) -> Pos {
        self.keys.get(pointer).copied().unwrap_or_else(|| self.of(pointer))
    }
}

/// Why a file is not a YAML document Tutti can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pos}: {message}")]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
}

/// Appends one JSON-pointer token (escaping `~` and `/` as RFC 6901 says).
pub fn push_token(pointer: &str, token: &str) -> String {
    let mut out = String::with_capacity(pointer.len() + token.len() + 1);
    out.push_str(pointer);
    out.push('/');
    for c in token.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
    out
}

fn pos(span: &Span) -> Pos {
    Pos { line: span.start.line(), column: span.start.col() + 1 }
}

/// Parses one YAML document.
pub fn load(source: &str) -> Result<(Value, Positions), YamlError> {
    if source.len() > MAX_SOURCE_BYTES {
        return Err(YamlError {
            pos: Pos { line: 1, column: 1 },
            message: format!("the file is {} bytes; the limit is {MAX_SOURCE_BYTES}", source.len()),
        });
    }
    let mut reader =
        Reader { parser: Parser::new_from_str(source), positions: Positions::default(), last: Pos::default() };
    loop {
        let (event, span) = reader.next()?;
        match event {
            Event::StreamStart | Event::Nothing => continue,
            Event::StreamEnd => {
                return Err(YamlError { pos: pos(&span), message: "the file is empty".into() });
            }
            Event::DocumentStart(_) => break,
            other => return Err(reader.unexpected(&other, &span)),
        }
    }
    let (first, span) = reader.next()?;
    let value = if matches!(first, Event::DocumentEnd) {
        return Err(YamlError { pos: pos(&span), message: "the document is empty".into() });
    } else {
        reader.node(first, span, String::new(), 0)?
    };
    loop {
        let (event, span) = reader.next()?;
        match event {
            Event::DocumentEnd => continue,
            Event::StreamEnd => break,
            Event::DocumentStart(_) => {
                return Err(YamlError {
                    pos: pos(&span),
                    message: "a second document; put each definition in a file of its own".into(),
                });
            }
            other => return Err(reader.unexpected(&other, &span)),
        }
    }
    Ok((value, reader.positions))
}

struct Reader<'a> {
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    positions: Positions,
    last: Pos,
}

impl<'a> Reader<'a> {
    fn next(&mut self) -> Result<(Event<'a>, Span), YamlError> {
        match self.parser.next_event() {
            Some(Ok((event, span))) => {
                self.last = pos(&span);
                Ok((event, span))
            }
            Some(Err(e)) => Err(YamlError {
                pos: Pos { line: e.marker().line(), column: e.marker().col() + 1 },
                message: e.info().to_owned(),
            }),
            None => Err(YamlError { pos: self.last, message: "the file ends in the middle of a value".into() }),
        }
    }

    fn unexpected(&self, event: &Event<'_>, span: &Span) -> YamlError {
        YamlError { pos: pos(span), message: format!("unexpected {event:?}") }
    }

    fn node(&mut self, event: Event<'a>, span: Span, pointer: String, depth: usize) -> Result<Value, YamlError> {
        if depth > MAX_DEPTH {
            return Err(YamlError { pos: pos(&span), message: format!("nested deeper than {MAX_DEPTH} levels") });
        }
        let here = pos(&span);
        let value = match event {
            Event::Alias(_) => {
                return Err(YamlError {
                    pos: here,
                    message: "anchors and aliases (`&name`, `*name`) are not supported; write the value out".into(),
                });
            }
            Event::Scalar(text, style, anchor, tag) => {
                refuse_anchor_or_tag(anchor, tag.is_some(), here)?;
                scalar(&text, style).map_err(|message| YamlError { pos: here, message })?
            }
            Event::SequenceStart(anchor, tag) => {
                refuse_anchor_or_tag(anchor, tag.is_some(), here)?;
                let mut items = Vec::new();
                loop {
                    let (event, span) = self.next()?;
                    if matches!(event, Event::SequenceEnd) {
                        break;
                    }
                    let child = push_token(&pointer, &items.len().to_string());
                    items.push(self.node(event, span, child, depth + 1)?);
                }
                Value::Array(items)
            }
            Event::MappingStart(anchor, tag) => {
                refuse_anchor_or_tag(anchor, tag.is_some(), here)?;
                let mut members = Map::new();
                loop {
                    let (event, span) = self.next()?;
                    let key = match event {
                        Event::MappingEnd => break,
                        Event::Scalar(text, style, anchor, tag) => {
                            refuse_anchor_or_tag(anchor, tag.is_some(), pos(&span))?;
                            match scalar(&text, style) {
                                Ok(Value::String(s)) => s,
                                Ok(Value::Number(n)) => n.to_string(),
                                Ok(Value::Bool(b)) => b.to_string(),
                                _ => {
                                    return Err(YamlError {
                                        pos: pos(&span),
                                        message: "a mapping key must be a string".into(),
                                    });
                                }
                            }
                        }
                        _ => {
                            return Err(YamlError {
                                pos: pos(&span),
                                message: "a mapping key must be a string".into(),
                            });
                        }
                    };
                    if members.contains_key(&key) {
                        return Err(YamlError { pos: pos(&span), message: format!("duplicate key `{key}`") });
                    }
                    let child = push_token(&pointer, &key);
                    self.positions.keys.insert(child.clone(), pos(&span));
                    let (event, span) = self.next()?;
                    let value = self.node(event, span, child, depth + 1)?;
                    members.insert(key, value);
                }
                Value::Object(members)
            }
            other => return Err(self.unexpected(&other, &span)),
        };
        self.positions.at.insert(pointer, here);
        Ok(value)
    }
}

fn refuse_anchor_or_tag(anchor: usize, tagged: bool, at: Pos) -> Result<(), YamlError> {
    if anchor != 0 {
        return Err(YamlError {
            pos: at,
            message: "anchors and aliases (`&name`, `*name`) are not supported; write the value out".into(),
        });
    }
    if tagged {
        return Err(YamlError { pos: at, message: "tags (`!name`) are not supported".into() });
    }
    Ok(())
}

/// Resolves a scalar by the YAML 1.2 core schema; quoted and block scalars are always strings.
fn scalar(text: &str, style: ScalarStyle) -> Result<Value, String> {
    if style != ScalarStyle::Plain {
        return Ok(Value::String(text.to_owned()));
    }
    Ok(match text {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf" | "-.INF" | ".nan" | ".NaN"
        | ".NAN" => return Err(format!("`{text}` is not a number JSON can hold")),
        _ => number(text).unwrap_or_else(|| Value::String(text.to_owned())),
    })
}

fn number(text: &str) -> Option<Value> {
    let bytes = text.as_bytes();
    let digits = |s: &str, radix: u32| !s.is_empty() && s.chars().all(|c| c.is_digit(radix));
    if let Some(hex) = text.strip_prefix("0x") {
        return digits(hex, 16).then(|| i64::from_str_radix(hex, 16).ok().map(Value::from)).flatten();
    }
    if let Some(oct) = text.strip_prefix("0o") {
        return digits(oct, 8).then(|| i64::from_str_radix(oct, 8).ok().map(Value::from)).flatten();
    }
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits(unsigned, 10) {
        return text.parse::<i64>().ok().map(Value::from).or_else(|| text.parse::<f64>().ok().and_then(float));
    }
    // [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?
    let first = *bytes.first()?;
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return None;
    }
    let mut rest = unsigned;
    let int_len = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    rest = &rest[int_len..];
    let mut frac_len = 0;
    if let Some(after) = rest.strip_prefix('.') {
        frac_len = after.find(|c: char| !c.is_ascii_digit()).unwrap_or(after.len());
        rest = &after[frac_len..];
    }
    if int_len == 0 && frac_len == 0 {
        return None;
    }
    if let Some(exp) = rest.strip_prefix(['e', 'E']) {
        let exp = exp.strip_prefix(['-', '+']).unwrap_or(exp);
        if !digits(exp, 10) {
            return None;
        }
    } else if !rest.is_empty() {
        return None;
    }
    text.parse::<f64>().ok().and_then(float)
}

fn float(f: f64) -> Option<Value> {
    Number::from_f64(f).map(Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_a_definition_with_positions() {
        let source = "flow: giỏ-hàng\nsteps:\n  - id: chờ\n    wait: 4h\n  - id: 提醒\n    action: log.write\n    with: {text: \"Xin chào {{ profile.traits.name }}\"}\n";
        let (value, positions) = load(source).unwrap();
        assert_eq!(
            value,
            json!({"flow": "giỏ-hàng", "steps": [
                {"id": "chờ", "wait": "4h"},
                {"id": "提醒", "action": "log.write", "with": {"text": "Xin chào {{ profile.traits.name }}"}}
            ]})
        );
        assert_eq!(positions.of("/steps/1/action"), Pos { line: 6, column: 13 });
        assert_eq!(positions.key("/steps/1/action"), Pos { line: 6, column: 5 });
        assert_eq!(positions.of("/steps/0"), Pos { line: 3, column: 5 });
        // Unknown pointers fall back to the nearest enclosing value.
        assert_eq!(positions.of("/steps/1/with/missing"), Pos { line: 7, column: 11 });
    }

    #[test]
    fn resolves_scalars_by_the_core_schema() {
        let (value, _) = load(
            "a: 12\nb: -3.5e2\nc: 0x1f\nd: true\ne: ~\nf: '12'\ng: 1.2.3\nh: no\ni: .5\nj: 9999999999999999999999",
        )
        .unwrap();
        assert_eq!(value["a"], json!(12));
        assert_eq!(value["b"], json!(-350.0));
        assert_eq!(value["c"], json!(31));
        assert_eq!(value["d"], json!(true));
        assert_eq!(value["e"], json!(null));
        assert_eq!(value["f"], json!("12"));
        assert_eq!(value["g"], json!("1.2.3"));
        // YAML 1.2: `no` is a string, not false.
        assert_eq!(value["h"], json!("no"));
        assert_eq!(value["i"], json!(0.5));
        assert_eq!(value["j"], json!(1e22));
    }

    #[test]
    fn refuses_what_it_does_not_support_with_a_position() {
        let cases = [
            ("a: 1\na: 2\n", 2, "duplicate key `a`"),
            ("a: &x [1]\nb: *x\n", 1, "anchors and aliases"),
            ("a: !custom 1\n", 1, "tags"),
            ("a: .inf\n", 1, "not a number"),
            ("a: 1\n---\nb: 2\n", 2, "a second document"),
            ("a: [1, 2\n", 2, ""),
            ("", 1, "empty"),
            ("? [1, 2]\n: x\n", 1, "must be a string"),
        ];
        for (source, line, text) in cases {
            let error = load(source).expect_err(source);
            assert_eq!(error.pos.line, line, "{source:?}: {error}");
            assert!(error.message.contains(text), "{source:?}: {error}");
        }
    }

    #[test]
    fn bounds_nesting_and_size() {
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        assert!(load(&deep).unwrap_err().message.contains("nested deeper"));
        let big = format!("a: \"{}\"", "x".repeat(MAX_SOURCE_BYTES));
        assert!(load(&big).unwrap_err().message.contains("the limit"));
    }
}
