//! Conditions: CEL expressions (the Common Expression Language) over named JSON values, such as `event` and
//! `profile`. Flow triggers, branches and segments decide with them.
//!
//! CEL is non-Turing-complete and has no I/O, which is why Tutti uses it for conditions written by
//! marketers. Compiling checks the syntax and reports the line and column of the first error; the source is
//! bounded in length and nesting first, so a hostile expression cannot exhaust the parser's stack. Evaluation
//! must yield a boolean; anything else is an error that names what it got. A missing member (a trait the
//! profile does not have) is an evaluation error too, so conditions guard with `has(profile.traits.plan)`.
//!
//! Bounded while it runs (see [`crate::budget`]): each comprehension (`all`, `exists`, `exists_one`, `map`,
//! `filter`) draws a step per element of what it walks before walking it, and each element `map` keeps draws
//! for its size, so nested comprehensions over big lists end with a clear error instead of holding the
//! processor; integer overflow is already an error in CEL; a panic inside the interpreter fails the
//! evaluation, not the thread.

use std::collections::{BTreeSet, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, LazyLock};

use cel::common::ast::{CallExpr, EntryExpr, Expr, ListExpr, MapExpr, StructExpr};
use cel::common::types::{CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelUInt};
use cel::common::value::{CowVal, Val};
use cel::{ExecutionError, IdedExpr};
use serde_json::Value;

use crate::budget::{self, Exceeded, Limits, Metered};

/// The function a comprehension's range is passed through, to draw its size from the budget. Names starting
/// with `@` cannot be written in CEL source, so no condition can call or shadow it.
const CHARGE_RANGE: &str = "@tutti_range";

/// The function each element a `map` keeps is passed through, to draw its size from the budget.
const CHARGE_ITEM: &str = "@tutti_item";

/// The standard library of functions and macros, built once: building it registers hundreds of overloads,
/// far more work than evaluating a typical condition.
static ENV: LazyLock<Arc<cel::Env>> = LazyLock::new(|| {
    let mut env = cel::Env::stdlib();
    env.add_overload(CHARGE_RANGE, "tutti_range_dyn", vec![cel::common::types::DYN_TYPE], charge_range)
        .expect("a name no other function has");
    env.add_overload(CHARGE_ITEM, "tutti_item_dyn", vec![cel::common::types::DYN_TYPE], charge_item)
        .expect("a name no other function has");
    Arc::new(env)
});

/// The longest condition accepted, in bytes.
pub const MAX_SOURCE_BYTES: usize = 4096;

/// The deepest nesting of parentheses, brackets and braces accepted.
pub const MAX_NESTING: usize = 32;

/// A compiled condition.
pub struct Condition {
    source: String,
    /// The expression with its comprehensions metered.
    program: IdedExpr,
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
#[error("{message}")]
pub struct EvalError {
    pub message: String,
    /// The limit it ran into, when that is why.
    pub limit: Option<Exceeded>,
}

impl EvalError {
    fn new(message: impl Into<String>) -> EvalError {
        EvalError { message: message.into(), limit: None }
    }
}

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
        let parsed = catch_unwind(AssertUnwindSafe(|| ENV.parser().parse(source)));
        let mut program = match parsed {
            Ok(Ok(parsed)) => parsed,
            Ok(Err(errors)) => {
                let first = errors.errors.first();
                let (line, column) = first.map_or((1, 1), |e| (e.pos.0.max(1) as usize, e.pos.1.max(0) as usize + 1));
                let message = first.map_or_else(|| errors.to_string(), |e| e.msg.clone());
                return Err(ConditionError { line, column, message });
            }
            Err(panic) => {
                let message = format!("the condition could not be read: {}", budget::panic_text(&*panic));
                return Err(ConditionError { line: 1, column: 1, message });
            }
        };
        let mut variables = BTreeSet::new();
        free_variables(&program, &mut Vec::new(), &mut variables);
        meter(&mut program);
        Ok(Condition { source: source.to_owned(), program, variables: variables.into_iter().collect() })
    }

    /// The source it was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The top-level variables it reads (not those its comprehensions bind), sorted, for checking them
    /// against what a context provides.
    pub fn variables(&self) -> Vec<String> {
        self.variables.clone()
    }

    /// Whether the condition reads the named top-level variable (so the caller may skip building it).
    pub fn reads(&self, name: &str) -> bool {
        self.variables.binary_search_by(|v| v.as_str().cmp(name)).is_ok()
    }

    /// Evaluates with the given variables within the default [`Limits`]; the result must be a boolean. Only
    /// the variables the condition reads are converted, and they borrow their strings from the JSON instead of
    /// copying them.
    pub fn evaluate(&self, variables: &[(&str, &Value)]) -> Result<bool, EvalError> {
        self.evaluate_with(variables, Limits::default())
    }

    /// Evaluates within `limits` (lowered by any evaluation already metered on this thread).
    pub fn evaluate_with(&self, variables: &[(&str, &Value)], limits: Limits) -> Result<bool, EvalError> {
        let _meter = Metered::start_within(limits);
        let mut context = cel::Context::with_env(ENV.clone());
        for (name, value) in variables {
            if self.reads(name) {
                context.add_variable_as_val(*name, to_val(value));
            }
        }
        let result = catch_unwind(AssertUnwindSafe(|| cel::Value::resolve(&self.program, &context)));
        if let Some(limit) = budget::exceeded() {
            return Err(EvalError { message: format!("the condition ran into {limit}"), limit: Some(limit) });
        }
        match result {
            Ok(Ok(cel::Value::Bool(b))) => Ok(b),
            Ok(Ok(other)) => Err(EvalError::new(format!("the condition must be true or false, but gave {other:?}"))),
            Ok(Err(e)) => Err(EvalError::new(e.to_string())),
            Err(panic) => Err(EvalError::new(format!("the condition failed: {}", budget::panic_text(&*panic)))),
        }
    }
}

/// The variables an expression reads that no comprehension around them binds, into `out`.
fn free_variables(expr: &IdedExpr, bound: &mut Vec<String>, out: &mut BTreeSet<String>) {
    match &expr.expr {
        Expr::Ident(name) => {
            if !name.starts_with('@') && !bound.iter().any(|b| b == name) {
                out.insert(name.clone());
            }
        }
        Expr::Comprehension(c) => {
            free_variables(&c.iter_range, bound, out);
            free_variables(&c.accu_init, bound, out);
            let depth = bound.len();
            bound.push(c.iter_var.clone());
            bound.extend(c.iter_var2.clone());
            bound.push(c.accu_var.clone());
            for part in [&c.loop_cond, &c.loop_step, &c.result] {
                free_variables(part, bound, out);
            }
            bound.truncate(depth);
        }
        _ => children(expr).into_iter().for_each(|child| free_variables(child, bound, out)),
    }
}

/// The sub-expressions of any node but a comprehension (whose parts its walkers take one by one).
fn children(expr: &IdedExpr) -> Vec<&IdedExpr> {
    match &expr.expr {
        Expr::Call(call) => call.target.iter().map(|t| &**t).chain(&call.args).collect(),
        Expr::List(list) => list.elements.iter().collect(),
        Expr::Map(MapExpr { entries }) | Expr::Struct(StructExpr { entries, .. }) => entries
            .iter()
            .flat_map(|entry| match &entry.expr {
                EntryExpr::StructField(f) => vec![&f.value],
                EntryExpr::MapEntry(e) => vec![&e.key, &e.value],
            })
            .collect(),
        Expr::Select(select) => vec![&*select.operand],
        Expr::Comprehension(_) | Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => Vec::new(),
    }
}

/// [`children`], to change them.
fn children_mut(expr: &mut IdedExpr) -> Vec<&mut IdedExpr> {
    match &mut expr.expr {
        Expr::Call(call) => call.target.iter_mut().map(|t| &mut **t).chain(&mut call.args).collect(),
        Expr::List(list) => list.elements.iter_mut().collect(),
        Expr::Map(MapExpr { entries }) | Expr::Struct(StructExpr { entries, .. }) => entries
            .iter_mut()
            .flat_map(|entry| match &mut entry.expr {
                EntryExpr::StructField(f) => vec![&mut f.value],
                EntryExpr::MapEntry(e) => vec![&mut e.key, &mut e.value],
            })
            .collect(),
        Expr::Select(select) => vec![&mut *select.operand],
        Expr::Comprehension(_) | Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => Vec::new(),
    }
}

/// Wraps `expr` in a call to one of the metering functions.
fn wrap(function: &str, expr: &mut IdedExpr) {
    let inner = std::mem::replace(expr, IdedExpr { id: expr.id, expr: Expr::Unspecified });
    expr.expr = Expr::Call(CallExpr { func_name: function.to_owned(), target: None, args: vec![inner] });
}

/// Meters every comprehension: its range passes through [`CHARGE_RANGE`], and the element a `map` appends
/// through [`CHARGE_ITEM`]. The loop's own shape is left as the macros wrote it, so the interpreter's fast
/// paths for `all`, `exists`, `map` and `filter` still apply.
fn meter(expr: &mut IdedExpr) {
    let Expr::Comprehension(c) = &mut expr.expr else {
        children_mut(expr).into_iter().for_each(meter);
        return;
    };
    for part in [&mut c.iter_range, &mut c.accu_init, &mut c.loop_cond, &mut c.loop_step, &mut c.result] {
        meter(part);
    }
    wrap(CHARGE_RANGE, &mut c.iter_range);
    // `@result + [item]`, possibly as the middle of `guard ? @result + [item] : @result`.
    let step = match &mut c.loop_step.expr {
        Expr::Call(call) if call.func_name == cel::common::ast::operators::CONDITIONAL => call.args.get_mut(1),
        _ => Some(&mut c.loop_step),
    };
    if let Some(IdedExpr { expr: Expr::Call(call), .. }) = step
        && call.func_name == cel::common::ast::operators::ADD
        && let Some(IdedExpr { expr: Expr::List(ListExpr { elements, .. }), .. }) = call.args.get_mut(1)
    {
        elements.iter_mut().for_each(|e| wrap(CHARGE_ITEM, e));
    }
}

/// How much a value costs to walk or keep: elements of a list or map, kilobytes of a string.
fn cost(value: &dyn Val) -> u64 {
    if let Some(s) = value.downcast_ref::<CelString>() {
        return (s.inner().len() / budget::BYTES_PER_STEP) as u64;
    }
    value.as_sizer().map_or(0, |s| (*s.size().inner()).max(0) as u64)
}

fn limit_error(e: Exceeded) -> ExecutionError {
    ExecutionError::function_error("comprehension", format!("ran into {e}"))
}

/// Draws a step per element of a comprehension's range, before it is walked.
fn charge_range<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    charged(args, 1)
}

/// Draws for the size of an element a `map` keeps.
fn charge_item<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    charged(args, 0)
}

/// The one argument, passed through once `base` steps and its [`cost`] are drawn.
fn charged<'b, 'v>(mut args: Vec<CowVal<'b, 'v>>, base: u64) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let value = args.pop().ok_or_else(ExecutionError::missing_argument_or_target)?;
    budget::charge(base + cost(value.as_ref())).map_err(limit_error)?;
    Ok(value)
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
        assert!(err.message.contains("true or false"), "{err}");
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
