//! Liquid's standard filters, each behind a guard, and the few that had to be written again.
//!
//! The guard draws a step per call plus one per kilobyte read and produced, refuses a result past the size
//! limit, and turns a panic inside a filter into an error. Growth by a bounded factor (`append`, `escape`,
//! `concat`) is caught by the result check, since the result is at most a few times the limit. Filters whose
//! result can be far larger than their input are Tutti's own and check the size before building anything
//! (`replace` with an empty search inserts between every character; `join` repeats its separator), and so is
//! integer arithmetic, which errs instead of wrapping or panicking on overflow.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use liquid::ParserBuilder;
use liquid_core::model::{Value, ValueView};
use liquid_core::parser::{FilterArguments, FilterReflection, ParameterReflection, ParseFilter};
use liquid_core::{Error, Expression, Filter, Result, Runtime};
use liquid_lib::stdlib;

use crate::budget::{self, Exceeded};

pub(super) fn register(builder: ParserBuilder) -> ParserBuilder {
    builder
        .filter(Guarded(stdlib::AtLeast))
        .filter(Guarded(stdlib::AtMost))
        .filter(Guarded(stdlib::Append))
        .filter(Guarded(stdlib::Capitalize))
        .filter(Guarded(stdlib::Ceil))
        .filter(Guarded(stdlib::Compact))
        .filter(Guarded(stdlib::Concat))
        .filter(Guarded(Own::DATE))
        .filter(Guarded(stdlib::Default))
        .filter(Guarded(stdlib::Downcase))
        .filter(Guarded(stdlib::Escape))
        .filter(Guarded(stdlib::EscapeOnce))
        .filter(Guarded(stdlib::First))
        .filter(Guarded(stdlib::Floor))
        .filter(Guarded(stdlib::Last))
        .filter(Guarded(stdlib::Lstrip))
        .filter(Guarded(stdlib::Map))
        .filter(Guarded(stdlib::NewlineToBr))
        .filter(Guarded(stdlib::Prepend))
        .filter(Guarded(stdlib::Remove))
        .filter(Guarded(stdlib::RemoveFirst))
        .filter(Guarded(stdlib::Reverse))
        .filter(Guarded(stdlib::Round))
        .filter(Guarded(stdlib::Rstrip))
        .filter(Guarded(stdlib::Slice))
        .filter(Guarded(stdlib::Sort))
        .filter(Guarded(stdlib::SortNatural))
        .filter(Guarded(stdlib::Split))
        .filter(Guarded(stdlib::Strip))
        .filter(Guarded(stdlib::StripHtml))
        .filter(Guarded(stdlib::StripNewlines))
        .filter(Guarded(stdlib::Truncate))
        .filter(Guarded(stdlib::TruncateWords))
        .filter(Guarded(stdlib::Uniq))
        .filter(Guarded(stdlib::Upcase))
        .filter(Guarded(stdlib::UrlDecode))
        .filter(Guarded(stdlib::UrlEncode))
        .filter(Guarded(stdlib::Where))
        .filter(Guarded(Own::ARITHMETIC[0]))
        .filter(Guarded(Own::ARITHMETIC[1]))
        .filter(Guarded(Own::ARITHMETIC[2]))
        .filter(Guarded(Own::ARITHMETIC[3]))
        .filter(Guarded(Own::ARITHMETIC[4]))
        .filter(Guarded(Own::ABS))
        .filter(Guarded(Own::REPLACE))
        .filter(Guarded(Own::REPLACE_FIRST))
        .filter(Guarded(Own::JOIN))
        .filter(Guarded(Own::SIZE))
}

/// A filter behind the guard.
#[derive(Clone)]
struct Guarded<F>(F);

impl<F: ParseFilter + Clone + 'static> ParseFilter for Guarded<F> {
    fn parse(&self, arguments: FilterArguments) -> Result<Box<dyn Filter>> {
        let inner = self.0.parse(arguments)?;
        Ok(Box::new(GuardedFilter { name: self.0.reflection().name().to_owned(), inner }))
    }

    fn reflection(&self) -> &dyn FilterReflection {
        self.0.reflection()
    }
}

#[derive(Debug)]
struct GuardedFilter {
    name: String,
    inner: Box<dyn Filter>,
}

impl fmt::Display for GuardedFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

/// Roughly how many bytes a value takes as text: strings by length, arrays and objects by entries.
fn size(value: &dyn ValueView) -> usize {
    if let Some(s) = value.as_scalar() {
        s.to_kstr().len()
    } else if let Some(a) = value.as_array() {
        a.size().max(0) as usize
    } else if let Some(o) = value.as_object() {
        o.size().max(0) as usize
    } else {
        0
    }
}

fn limit_error(name: &str, e: Exceeded) -> Error {
    Error::with_msg(format!("the filter `{name}` ran into {e}"))
}

impl Filter for GuardedFilter {
    fn evaluate(&self, input: &dyn ValueView, runtime: &dyn Runtime) -> Result<Value> {
        budget::charge(1 + (size(input) / budget::BYTES_PER_STEP) as u64).map_err(|e| limit_error(&self.name, e))?;
        let result = catch_unwind(AssertUnwindSafe(|| self.inner.evaluate(input, runtime))).map_err(|panic| {
            Error::with_msg(format!("the filter `{}` failed: {}", self.name, budget::panic_text(&*panic)))
        })??;
        budget::charge_bytes(size(&result)).map_err(|e| limit_error(&self.name, e))?;
        Ok(result)
    }
}

/// A filter of Tutti's own: positional arguments only, evaluated before `eval` sees them.
#[derive(Clone, Copy)]
struct Own {
    name: &'static str,
    description: &'static str,
    parameters: &'static [ParameterReflection],
    /// How many of the parameters must be given.
    required: usize,
    eval: fn(&dyn ValueView, &[Value]) -> Result<Value>,
}

const OPERAND: &[ParameterReflection] =
    &[ParameterReflection { name: "operand", description: "The other number.", is_optional: false }];

impl Own {
    const ARITHMETIC: [Own; 5] = [
        Own::arithmetic("plus", "Adds a number.", |i, a| arithmetic(i, a, "plus", i64::checked_add, |x, y| x + y)),
        Own::arithmetic("minus", "Subtracts a number.", |i, a| {
            arithmetic(i, a, "minus", i64::checked_sub, |x, y| x - y)
        }),
        Own::arithmetic("times", "Multiplies by a number.", |i, a| {
            arithmetic(i, a, "times", i64::checked_mul, |x, y| x * y)
        }),
        Own::arithmetic("divided_by", "Divides by a number (whole numbers round down).", |i, a| {
            arithmetic(i, a, "divided_by", floor_div, |x, y| x / y)
        }),
        Own::arithmetic("modulo", "The remainder of a division.", |i, a| {
            arithmetic(i, a, "modulo", floor_mod, |x, y| x % y)
        }),
    ];

    const ABS: Own =
        Own { name: "abs", description: "The absolute value.", parameters: &[], required: 0, eval: absolute };

    const REPLACE: Own = Own {
        name: "replace",
        description: "Replaces every occurrence of a string.",
        parameters: REPLACE_PARAMETERS,
        required: 1,
        eval: |input, args| replace(input, args, usize::MAX),
    };

    const REPLACE_FIRST: Own = Own {
        name: "replace_first",
        description: "Replaces the first occurrence of a string.",
        parameters: REPLACE_PARAMETERS,
        required: 1,
        eval: |input, args| replace(input, args, 1),
    };

    const JOIN: Own = Own {
        name: "join",
        description: "Joins the items of an array with a separator (a space by default).",
        parameters: &[ParameterReflection { name: "separator", description: "Put between items.", is_optional: true }],
        required: 0,
        eval: join,
    };

    const DATE: Own = Own {
        name: "date",
        description: "Formats a date (`now`, `today`, or a date in text) with strftime codes.",
        parameters: &[ParameterReflection {
            name: "format",
            description: "The format to return the date in.",
            is_optional: false,
        }],
        required: 1,
        eval: date,
    };

    const SIZE: Own = Own {
        name: "size",
        description: "The number of characters in a string, or of items in an array or object.",
        parameters: &[],
        required: 0,
        eval: count,
    };

    const fn arithmetic(
        name: &'static str,
        description: &'static str,
        eval: fn(&dyn ValueView, &[Value]) -> Result<Value>,
    ) -> Own {
        Own { name, description, parameters: OPERAND, required: 1, eval }
    }
}

const REPLACE_PARAMETERS: &[ParameterReflection] = &[
    ParameterReflection { name: "search", description: "The text to find.", is_optional: false },
    ParameterReflection { name: "replacement", description: "The text to put instead.", is_optional: true },
];

impl ParseFilter for Own {
    fn parse(&self, mut arguments: FilterArguments) -> Result<Box<dyn Filter>> {
        let args: Vec<Expression> = arguments.positional.by_ref().collect();
        if arguments.keyword.next().is_some() {
            return Err(Error::with_msg(format!("`{}` takes no named arguments", self.name)));
        }
        if args.len() < self.required || args.len() > self.parameters.len() {
            return Err(Error::with_msg(format!(
                "`{}` takes {} argument(s), not {}",
                self.name,
                if self.required == self.parameters.len() {
                    self.required.to_string()
                } else {
                    format!("{} to {}", self.required, self.parameters.len())
                },
                args.len()
            )));
        }
        Ok(Box::new(OwnFilter { own: *self, args }))
    }

    fn reflection(&self) -> &dyn FilterReflection {
        self
    }
}

impl FilterReflection for Own {
    fn name(&self) -> &str {
        self.name
    }
    fn description(&self) -> &str {
        self.description
    }
    fn positional_parameters(&self) -> &'static [ParameterReflection] {
        self.parameters
    }
    fn keyword_parameters(&self) -> &'static [ParameterReflection] {
        &[]
    }
}

struct OwnFilter {
    own: Own,
    args: Vec<Expression>,
}

impl fmt::Debug for OwnFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnFilter").field("name", &self.own.name).field("args", &self.args).finish()
    }
}

impl fmt::Display for OwnFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.own.name)?;
        for (i, arg) in self.args.iter().enumerate() {
            write!(f, "{}{arg}", if i == 0 { ": " } else { ", " })?;
        }
        Ok(())
    }
}

impl Filter for OwnFilter {
    fn evaluate(&self, input: &dyn ValueView, runtime: &dyn Runtime) -> Result<Value> {
        let args = self.args.iter().map(|a| a.evaluate(runtime).map(|v| v.into_owned())).collect::<Result<Vec<_>>>()?;
        (self.own.eval)(input, &args).map_err(|e| match e {
            // Name the filter in errors of its own making.
            e if e.to_string().contains(&format!("`{}`", self.own.name)) => e,
            e => Error::with_msg(format!("`{}`: {e}", self.own.name)),
        })
    }
}

/// The widest field a `date` format may ask for (`%10d` is 10): Liquid pads a field to its width before any
/// size check sees the result, so `%999999999999d` would write that many zeros.
pub const MAX_DATE_WIDTH: u64 = 64;

/// Liquid's `date`, with the field widths checked first.
fn date(input: &dyn ValueView, args: &[Value]) -> Result<Value> {
    let format = text_of(&args[0]);
    if format.is_empty() {
        return Ok(input.to_value());
    }
    if let Some(width) = widest_field(&format).filter(|w| *w > MAX_DATE_WIDTH) {
        return Err(Error::with_msg(format!(
            "`date` pads a field to at most {MAX_DATE_WIDTH} characters; the format asks for {width}"
        )));
    }
    match input.as_scalar().and_then(|s| s.to_date_time()) {
        Some(date) => date
            .format(&format)
            .map(Value::scalar)
            .map_err(|_| Error::with_msg(format!("`date`: `{format}` is not a date format"))),
        None => Ok(input.to_value()),
    }
}

/// The widest field width a strftime format asks for (`%-10d` and `%010d` are 10), past `u64` as `u64::MAX`.
fn widest_field(format: &str) -> Option<u64> {
    let bytes = format.as_bytes();
    let mut widest = None;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            i += 1;
            continue;
        }
        i += 1;
        if bytes.get(i) == Some(&b'%') {
            i += 1;
            continue;
        }
        // Flags, as Liquid reads them: `0` is one, so the width starts at the first other digit.
        while matches!(bytes.get(i), Some(b'-' | b'_' | b'0' | b'^' | b'#')) {
            i += 1;
        }
        let start = i;
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i > start {
            widest = widest.max(Some(format[start..i].parse::<u64>().unwrap_or(u64::MAX)));
        }
    }
    widest
}

/// Whole-number division rounding down, as Ruby and Shopify's Liquid do; `None` on division by zero or
/// overflow (`-9223372036854775808 / -1`).
fn floor_div(a: i64, b: i64) -> Option<i64> {
    let q = a.checked_div(b)?;
    Some(if (a % b != 0) && ((a < 0) != (b < 0)) { q - 1 } else { q })
}

/// The remainder with the sign of the divisor, as Ruby's `%`; `None` on zero or overflow.
fn floor_mod(a: i64, b: i64) -> Option<i64> {
    let r = a.checked_rem(b)?;
    Some(if r != 0 && ((r < 0) != (b < 0)) { r + b } else { r })
}

/// Whole-number overflow in `op`, recorded as the limit the render ran into.
fn overflow(op: &'static str) -> Error {
    Error::with_msg(budget::fail(Exceeded::Arithmetic(op)).to_string())
}

fn number_error(what: &str) -> Error {
    Error::with_msg(format!("{what} must be a number"))
}

/// An arithmetic filter: on whole numbers when both are whole (an error where the result does not fit or
/// the divisor is zero), on floats otherwise, as Liquid does.
fn arithmetic(
    input: &dyn ValueView,
    args: &[Value],
    name: &'static str,
    whole: fn(i64, i64) -> Option<i64>,
    float: fn(f64, f64) -> f64,
) -> Result<Value> {
    let a = input.as_scalar().ok_or_else(|| number_error("the input"))?;
    let b = args[0].as_scalar().ok_or_else(|| number_error("the operand"))?;
    if let (Some(x), Some(y)) = (a.to_integer(), b.to_integer()) {
        if y == 0 && matches!(name, "divided_by" | "modulo") {
            return Err(Error::with_msg("division by zero"));
        }
        return whole(x, y).map(Value::scalar).ok_or_else(|| overflow(name));
    }
    match (a.to_float(), b.to_float()) {
        (Some(x), Some(y)) => Ok(Value::scalar(float(x, y))),
        (None, _) => Err(number_error("the input")),
        (_, None) => Err(number_error("the operand")),
    }
}

fn absolute(input: &dyn ValueView, _args: &[Value]) -> Result<Value> {
    let n = input.as_scalar().ok_or_else(|| number_error("the input"))?;
    if let Some(i) = n.to_integer() {
        return i.checked_abs().map(Value::scalar).ok_or_else(|| overflow("abs"));
    }
    n.to_float().map(|f| Value::scalar(f.abs())).ok_or_else(|| number_error("the input"))
}

/// Characters, not bytes, as Shopify counts them: `'你好' | size` is 2 and `'chào' | size` is 4.
fn count(input: &dyn ValueView, _args: &[Value]) -> Result<Value> {
    let n = if let Some(a) = input.as_array() {
        a.size()
    } else if let Some(o) = input.as_object() {
        o.size()
    } else if input.is_nil() {
        0
    } else {
        input.to_kstr().chars().count() as i64
    };
    Ok(Value::scalar(n))
}

fn text_of(value: &dyn ValueView) -> String {
    value.to_kstr().as_str().to_owned()
}

fn replace(input: &dyn ValueView, args: &[Value], times: usize) -> Result<Value> {
    let text = text_of(input);
    let search = text_of(&args[0]);
    let with = args.get(1).map(|v| text_of(v)).unwrap_or_default();
    let found = if search.is_empty() {
        // An empty search matches before every character and at the end.
        text.chars().count() + 1
    } else {
        text.matches(search.as_str()).count()
    }
    .min(times);
    let grown = text.len() - found * search.len() + found * with.len();
    budget::charge_bytes(grown).map_err(|e| Error::with_msg(format!("the result would be too big: {e}")))?;
    Ok(Value::scalar(text.replacen(search.as_str(), &with, found)))
}

fn join(input: &dyn ValueView, args: &[Value]) -> Result<Value> {
    let separator = args.first().map(|v| text_of(v)).unwrap_or_else(|| " ".to_owned());
    let Some(items) = input.as_array() else { return Ok(Value::scalar(text_of(input))) };
    let parts: Vec<String> = items.values().map(text_of).collect();
    let grown = parts.iter().map(String::len).sum::<usize>() + separator.len() * parts.len().saturating_sub(1);
    budget::charge_bytes(grown).map_err(|e| Error::with_msg(format!("the result would be too big: {e}")))?;
    Ok(Value::scalar(parts.join(&separator)))
}
