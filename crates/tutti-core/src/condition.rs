//! Conditions: CEL expressions (the Common Expression Language) over named JSON values, such as `event` and
//! `profile`. Flow triggers, branches and segments decide with them.
//!
//! CEL is non-Turing-complete and has no I/O, which is why DESIGN.md chose it for conditions written by
//! marketers. Compiling checks the syntax and reports the line and column of the first error; the source is
//! bounded in length and nesting first, so a hostile expression cannot exhaust the parser's stack. Evaluation
//! must yield a boolean; anything else is an error that names what it got. A missing member (a trait the
//! profile does not have) is an evaluation error too, so conditions guard with `has(profile.traits.plan)`.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use cel::common::types::{CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelUInt};
use cel::common::value::Val;
use serde_json::Value;

/// The standard library of functions and macros, built once: building it registers hundreds of overloads,
/// far more work than evaluating a typical condition.
static ENV: LazyLock<Arc<cel::Env>> = LazyLock::new(|| Arc::new(cel::Env::stdlib()));

/// The longest condition accepted, in bytes.
pub const MAX_SOURCE_BYTES: usize = 4096;

/// The deepest nesting of parentheses, brackets and braces accepted.
pub const MAX_NESTING: usize = 32;

/// A compiled condition.
pub struct Condition {
    source: String,
    program: cel::Program,
    /// The top-level variables the program reads, sorted: only these are handed to it.
    variables: Vec<String>,
}

impl std::fmt::Debug for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Condition").field(&self.source).finish()
    }
}

/// Why a condition does not compile: where, and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct ConditionError {
    /// 1-based line within the condition's source.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    pub message: String,
}

/// Why a compiled condition could not decide.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EvalError(pub String);

impl Condition {
    /// Compiles a condition, or says where its first error is.
    pub fn compile(source: &str) -> Result<Condition, ConditionError> {
        if source.len() > MAX_SOURCE_BYTES {
            return Err(ConditionError {
                line: 1,
                column: 1,
                message: format!("the condition is {} bytes; the limit is {MAX_SOURCE_BYTES}", source.len()),
            });
        }
        if let Some((line, column)) = too_deep(source) {
            return Err(ConditionError {
                line,
                column,
                message: format!("nested deeper than {MAX_NESTING} levels of parentheses, brackets and braces"),
            });
        }
        let program = cel::Program::compile(source).map_err(|errors| {
            let first = errors.errors.first();
            let (line, column) = first.map_or((1, 1), |e| (e.pos.0.max(1) as usize, e.pos.1.max(0) as usize + 1));
            ConditionError { line, column, message: first.map_or_else(|| errors.to_string(), |e| e.msg.clone()) }
        })?;
        let mut variables: Vec<String> = program.references().variables().into_iter().map(str::to_owned).collect();
        variables.sort();
        Ok(Condition { source: source.to_owned(), program, variables })
    }

    /// The source it was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The top-level variables it reads, sorted, for checking them against what a context provides.
    pub fn variables(&self) -> Vec<String> {
        self.variables.clone()
    }

    /// Whether the condition reads the named top-level variable (so the caller may skip building it).
    pub fn reads(&self, name: &str) -> bool {
        self.variables.binary_search_by(|v| v.as_str().cmp(name)).is_ok()
    }

    /// Evaluates with the given variables; the result must be a boolean. Only the variables the condition
    /// reads are converted, and they borrow their strings from the JSON instead of copying them.
    pub fn evaluate(&self, variables: &[(&str, &Value)]) -> Result<bool, EvalError> {
        let mut context = cel::Context::with_env(ENV.clone());
        for (name, value) in variables {
            if self.reads(name) {
                context.add_variable_as_val(*name, to_val(value));
            }
        }
        match self.program.execute(&context) {
            Ok(cel::Value::Bool(b)) => Ok(b),
            Ok(other) => Err(EvalError(format!("the condition must be true or false, but gave {other:?}"))),
            Err(e) => Err(EvalError(e.to_string())),
        }
    }
}

/// Where nesting first goes past [`MAX_NESTING`], outside string literals, as (line, column).
fn too_deep(source: &str) -> Option<(usize, usize)> {
    let (mut depth, mut line, mut column) = (0usize, 1usize, 0usize);
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in source.chars() {
        column += 1;
        if c == '\n' {
            (line, column) = (line + 1, 0);
        }
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '"' | '\'' => quote = Some(c),
                '(' | '[' | '{' => {
                    depth += 1;
                    if depth > MAX_NESTING {
                        return Some((line, column));
                    }
                }
                ')' | ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
    }
    None
}

/// A JSON value as a CEL value that borrows its strings: integers stay integers, so
/// `profile.event_counts["Order Completed"] >= 3` compares as written.
fn to_val(value: &Value) -> Box<dyn Val + '_> {
    match value {
        Value::Null => Box::new(CelNull),
        Value::Bool(b) => Box::new(CelBool::from(*b)),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Box::new(CelInt::from(i)),
            (None, Some(u), _) => Box::new(CelUInt::from(u)),
            (_, _, f) => Box::new(CelDouble::from(f.unwrap_or(f64::NAN))),
        },
        Value::String(s) => Box::new(CelString::from(s.as_str())),
        Value::Array(items) => Box::new(CelList::from(items.iter().map(to_val).collect::<Vec<_>>())),
        Value::Object(map) => {
            let map: HashMap<CelMapKey<'_>, Box<dyn Val + '_>> =
                map.iter().map(|(k, v)| (CelMapKey::from(k.as_str()), to_val(v))).collect();
            Box::new(CelMap::from(map))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decide(source: &str, event: Value, profile: Value) -> Result<bool, EvalError> {
        Condition::compile(source).unwrap().evaluate(&[("event", &event), ("profile", &profile)])
    }

    #[test]
    fn conditions_read_events_and_profiles_in_any_language() {
        let event = json!({"event": "Page Viewed", "properties": {"path": "/pricing/doanh-nghiệp", "giá": 1250000}});
        let profile =
            json!({"traits": {"lifecycle_stage": "lead", "城市": "上海"}, "event_counts": {"Order Completed": 3}});
        let hot = r#"event.properties.path.startsWith("/pricing") && profile.traits.lifecycle_stage == "lead""#;
        assert_eq!(decide(hot, event.clone(), profile.clone()), Ok(true));
        assert_eq!(
            decide(
                r#"profile.traits["城市"] == "上海" && event.properties["giá"] > 1000000"#,
                event.clone(),
                profile.clone()
            ),
            Ok(true)
        );
        assert_eq!(decide(r#"profile.event_counts["Order Completed"] >= 3"#, event.clone(), profile.clone()), Ok(true));
        assert_eq!(
            decide(r#"has(profile.traits.plan) && profile.traits.plan == "pro""#, event.clone(), profile.clone()),
            Ok(false)
        );
        assert_eq!(decide(r#"event.properties.path.matches("^/pricing/[a-zđệ-]+$")"#, event, profile), Ok(true));
    }

    #[test]
    fn non_boolean_results_and_missing_members_are_errors_not_false() {
        let err = decide("profile.traits", json!({}), json!({"traits": {}})).unwrap_err();
        assert!(err.0.contains("true or false"), "{err}");
        assert!(decide("profile.traits.plan == 'pro'", json!({}), json!({"traits": {}})).is_err());
    }

    #[test]
    fn syntax_errors_say_where() {
        let err = Condition::compile("event.name == \"a\" &&\n  profile.traits.(").unwrap_err();
        assert_eq!(err.line, 2, "{err}");
        assert!(err.column > 1, "{err}");
    }

    #[test]
    fn hostile_sources_are_refused_before_parsing() {
        let deep = format!("{}true{}", "(".repeat(1_000), ")".repeat(1_000));
        let err = Condition::compile(&deep).unwrap_err();
        assert!(err.message.contains("nested deeper"), "{err}");
        // Long chains within the length limit compile or fail cleanly, without exhausting the stack.
        for chain in [
            format!("{}true", "!".repeat(4000)),
            format!("{}1 == 1", "-".repeat(4000)),
            format!("a{}", ".b".repeat(2000)),
            format!("1{} == 1", " + 1".repeat(1000)),
            format!("x{}", "[0]".repeat(1300)),
        ] {
            if let Ok(c) = Condition::compile(&chain) {
                let _ = c.evaluate(&[("a", &json!({})), ("x", &json!([]))]);
            }
        }
        // Brackets inside strings do not count.
        assert!(Condition::compile(&format!("'{}' == 'x'", "(".repeat(100))).is_ok());
        assert!(Condition::compile(&"a".repeat(MAX_SOURCE_BYTES + 1)).unwrap_err().message.contains("limit"));
    }

    #[test]
    fn variables_are_listed_for_validation() {
        let c = Condition::compile("event.properties.x == 1 || segment.size > 2 || profile.traits.y").unwrap();
        assert_eq!(c.variables(), ["event", "profile", "segment"]);
    }
}
