//! Reading definitions (flows, segments, policies, hook mappings) out of JSON values while collecting every
//! problem with its position, instead of stopping at the first as a serde derive would.

use serde_json::{Map, Value};

use crate::condition::Condition;
use crate::template::Template;
use crate::time::parse_duration;
use crate::yaml::{Pos, Positions, push_token};

/// A problem in a definition: where it is, what is wrong, and how to put it right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub pos: Pos,
    /// The JSON pointer of the offending value within the definition (`/steps/2/next`).
    pub pointer: String,
    pub message: String,
    pub hint: Option<String>,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.pos, self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

/// The decoding context: where values came from, and the problems found so far.
pub struct Cx<'a> {
    pub positions: &'a Positions,
    pub problems: Vec<Problem>,
}

impl<'a> Cx<'a> {
    pub fn new(positions: &'a Positions) -> Cx<'a> {
        Cx { positions, problems: Vec::new() }
    }

    pub fn problem(&mut self, pointer: &str, message: impl Into<String>, hint: impl Into<String>) {
        let hint = hint.into();
        self.problems.push(Problem {
            pos: self.positions.of(pointer),
            pointer: pointer.to_owned(),
            message: message.into(),
            hint: (!hint.is_empty()).then_some(hint),
        });
    }

    fn problem_at_key(&mut self, pointer: &str, message: String, hint: String) {
        self.problems.push(Problem {
            pos: self.positions.key(pointer),
            pointer: pointer.to_owned(),
            message,
            hint: (!hint.is_empty()).then_some(hint),
        });
    }

    /// Opens a mapping; a problem if the value is something else.
    pub fn object<'v>(&mut self, value: &'v Value, pointer: &str, what: &str) -> Option<Obj<'v>> {
        match value {
            Value::Object(map) => Some(Obj { map, pointer: pointer.to_owned(), known: Vec::new() }),
            other => {
                self.problem(pointer, format!("{what} must be a mapping, not {}", kind(other)), "");
                None
            }
        }
    }

    /// A string value; a problem if it is something else.
    pub fn string<'v>(&mut self, value: &'v Value, pointer: &str) -> Option<&'v str> {
        match value {
            Value::String(s) => Some(s),
            other => {
                self.problem(pointer, format!("expected text, found {}", kind(other)), "");
                None
            }
        }
    }

    /// A non-empty name (an id or an event name), at most 200 bytes.
    pub fn name(&mut self, value: &Value, pointer: &str) -> Option<String> {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => {
                self.problem(pointer, format!("expected a name, found {}", kind(other)), "");
                return None;
            }
        };
        if text.trim().is_empty() || text.len() > 200 || text.chars().any(char::is_control) {
            self.problem(pointer, format!("`{text}` is not a usable name"), "names are 1 to 200 printable characters");
            return None;
        }
        Some(text)
    }

    pub fn duration(&mut self, value: &Value, pointer: &str) -> Option<i64> {
        let text = self.string(value, pointer)?;
        match parse_duration(text) {
            Ok(ms) if ms > 0 => Some(ms),
            Ok(_) => {
                self.problem(pointer, "a duration of zero", "write a positive duration such as `5m`");
                None
            }
            Err(e) => {
                self.problem(pointer, e, "");
                None
            }
        }
    }

    pub fn positive(&mut self, value: &Value, pointer: &str, max: u64) -> Option<u64> {
        match value.as_u64() {
            Some(n) if n >= 1 && n <= max => Some(n),
            _ => {
                self.problem(pointer, format!("expected a whole number from 1 to {max}, found {value}"), "");
                None
            }
        }
    }

    pub fn boolean(&mut self, value: &Value, pointer: &str) -> Option<bool> {
        match value {
            Value::Bool(b) => Some(*b),
            other => {
                self.problem(pointer, format!("expected true or false, found {}", kind(other)), "");
                None
            }
        }
    }

    /// Compiles a CEL condition, placing its errors at their line in the file and checking that it reads only
    /// the variables this place provides.
    pub fn condition(&mut self, value: &Value, pointer: &str, variables: &[&str]) -> Option<Condition> {
        let source = match value {
            Value::String(s) => s.as_str(),
            Value::Bool(true) => "true",
            Value::Bool(false) => "false",
            other => {
                self.problem(pointer, format!("a condition is a CEL expression in text, not {}", kind(other)), "");
                return None;
            }
        };
        match Condition::compile(source) {
            Ok(condition) => {
                for name in condition.variables() {
                    if !variables.contains(&name.as_str()) {
                        self.problem(
                            pointer,
                            format!("the condition reads `{name}`, which is not defined here"),
                            format!("conditions here can read {}", variables.join(", ")),
                        );
                        return None;
                    }
                }
                Some(condition)
            }
            Err(e) => {
                let mut pos = self.positions.of(pointer);
                if e.line > 1 {
                    pos.line += e.line - 1;
                    pos.column = e.column;
                } else {
                    pos.column += e.column - 1;
                }
                self.problems.push(Problem {
                    pos,
                    pointer: pointer.to_owned(),
                    message: format!("CEL: {}", e.message),
                    hint: Some(
                        "conditions are CEL, such as `event.properties.total > 100 && has(profile.traits.email)`"
                            .into(),
                    ),
                });
                None
            }
        }
    }

    /// Parses a Liquid template, placing its errors at their line in the file.
    pub fn template(&mut self, source: &str, pointer: &str) -> Option<Template> {
        match Template::parse(source) {
            Ok(t) => Some(t),
            Err(e) => {
                let mut pos = self.positions.of(pointer);
                if e.line > 1 {
                    pos.line += e.line - 1;
                    pos.column = e.column;
                }
                self.problems.push(Problem {
                    pos,
                    pointer: pointer.to_owned(),
                    message: format!("Liquid: {}", e.message),
                    hint: Some(
                        "templates are Liquid, such as `Hello {{ profile.traits.name | default: \"there\" }}`".into(),
                    ),
                });
                None
            }
        }
    }
}

/// A mapping being read: remembers the members read so that the rest can be reported as unknown.
pub struct Obj<'v> {
    pub map: &'v Map<String, Value>,
    pub pointer: String,
    known: Vec<&'static str>,
}

impl<'v> Obj<'v> {
    /// The member `name`, with its pointer, if present (null counts as absent).
    pub fn get(&mut self, name: &'static str) -> Option<(&'v Value, String)> {
        // Once each: the names are listed back in hints, and a member may be read twice (`action` is).
        if !self.known.contains(&name) {
            self.known.push(name);
        }
        self.map.get(name).filter(|v| !v.is_null()).map(|v| (v, push_token(&self.pointer, name)))
    }

    /// The member `name`, or a problem saying it is required.
    pub fn require(&mut self, cx: &mut Cx<'_>, name: &'static str, hint: &str) -> Option<(&'v Value, String)> {
        let found = self.get(name);
        if found.is_none() {
            cx.problem(&self.pointer, format!("`{name}` is required"), hint);
        }
        found
    }

    pub fn has(&self, name: &str) -> bool {
        self.map.get(name).is_some_and(|v| !v.is_null())
    }

    /// Reports every member not read, with the closest known name as a hint.
    pub fn finish(self, cx: &mut Cx<'_>) {
        for key in self.map.keys() {
            if self.known.contains(&key.as_str()) {
                continue;
            }
            let pointer = push_token(&self.pointer, key);
            let hint = match closest(key, &self.known) {
                Some(near) => format!("did you mean `{near}`? known here: {}", self.known.join(", ")),
                None => format!("known here: {}", self.known.join(", ")),
            };
            cx.problem_at_key(&pointer, format!("unknown member `{key}`"), hint);
        }
    }
}

/// What kind of JSON value this is, for messages.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "true/false",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// The candidate nearest to `word` by edit distance, if near enough to be a likely typo.
pub fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (levenshtein(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.chars().count() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = if ca == *cb { previous } else { 1 + previous.min(row[j]).min(row[j + 1]) };
            previous = current;
        }
    }
    row[b.len()]
}
