//! `for` and `tablerow`, walking ranges without building them.
//!
//! Liquid's own loops collect `(1..n)` into a vector before the first iteration, so `n` taken from an event
//! (`4611686018427387904`) overflows the allocator before any limit could apply. These compute the window of
//! a range (offset, limit, reversed) arithmetically, draw one step per iteration, and stop at `break`. What
//! the source alone shows is checked when parsing: a literal range, or nested literal ranges whose product,
//! past the step limit, and `cols: 0`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write;

use liquid::ParserBuilder;
use liquid_core::model::{KString, KStringRef, Object, Scalar, Value, ValueCow, ValueView};
use liquid_core::parser::{BlockElement, BlockReflection, ParseBlock, TagBlock, TagTokenIter, TryMatchToken};
use liquid_core::runtime::{Interrupt, InterruptRegister, StackFrame};
use liquid_core::{Error, Expression, Language, Renderable, Result, Runtime, Template};

use super::write_text;
use crate::budget;

pub(super) fn register(builder: ParserBuilder) -> ParserBuilder {
    builder.block(ForBlock).block(TableRowBlock)
}

thread_local! {
    /// While parsing: how many times the body being parsed runs, as far as literal ranges show (1 per loop
    /// whose range is not literal).
    static NESTED_RUNS: RefCell<Vec<u128>> = const { RefCell::new(Vec::new()) };
}

/// Forgets any nesting left by a parse that failed midway.
pub(super) fn begin_parse() {
    NESTED_RUNS.with(|n| n.borrow_mut().clear());
}

/// Enters a loop body while parsing; refuses it when literal ranges alone make it run past the step limit.
fn enter_body(arguments: &mut TagTokenIter<'_>, runs: Option<u128>) -> Result<BodyGuard> {
    let outer = NESTED_RUNS.with(|n| n.borrow().last().copied().unwrap_or(1));
    let total = outer.saturating_mul(runs.unwrap_or(1));
    let limit = budget::DEFAULT_STEPS as u128;
    if total > limit {
        let what = if outer > 1 { "these nested loops would run" } else { "this loop would run" };
        return Err(arguments.raise_error(&format!("{what} {total} times; the step limit is {limit}")));
    }
    NESTED_RUNS.with(|n| n.borrow_mut().push(total));
    Ok(BodyGuard)
}

struct BodyGuard;

impl Drop for BodyGuard {
    fn drop(&mut self) {
        NESTED_RUNS.with(|n| n.borrow_mut().pop());
    }
}

/// What a loop walks.
#[derive(Debug)]
enum Range {
    /// An array, an object (as `[key, value]` pairs) or nil, written as a value.
    Items(Expression),
    /// `(start..stop)`, both ends included.
    Counted(Expression, Expression),
}

impl Range {
    fn parse(arguments: &mut TagTokenIter<'_>) -> Result<Range> {
        let token = arguments.expect_next("an array or a range expected")?;
        Ok(match token.expect_value() {
            TryMatchToken::Matches(items) => Range::Items(items),
            TryMatchToken::Fails(token) => match token.expect_range() {
                TryMatchToken::Matches((start, stop)) => Range::Counted(start, stop),
                TryMatchToken::Fails(token) => return Err(token.raise_error()),
            },
        })
    }

    /// How many items a range of literals has.
    fn literal_len(&self) -> Option<u128> {
        let Range::Counted(Expression::Literal(start), Expression::Literal(stop)) = self else { return None };
        let (start, stop) = (start.as_scalar()?.to_integer()?, stop.as_scalar()?.to_integer()?);
        Some(counted_len(start, stop) as u128)
    }
}

/// How many whole numbers `start..stop` holds, both ends included (at most `u64::MAX`, which no budget
/// reaches).
fn counted_len(start: i64, stop: i64) -> u64 {
    if stop < start { 0 } else { u64::try_from(i128::from(stop) - i128::from(start) + 1).unwrap_or(u64::MAX) }
}

/// What a loop tag says: `<name> in <range> <options>`; parsing it enters the loop's body (see
/// [`enter_body`]) until the guard is dropped.
fn loop_header(arguments: &mut TagTokenIter<'_>, tablerow: bool) -> Result<(KString, Range, Options, BodyGuard)> {
    let name = super::variable_name(arguments)?;
    arguments.expect_next("\"in\" expected")?.expect_str("in").into_result_custom_msg("\"in\" expected")?;
    let range = Range::parse(arguments)?;
    let options = Options::parse(arguments, tablerow)?;
    let guard = enter_body(arguments, range.literal_len())?;
    Ok((name, range, options, guard))
}

/// Loop options: `limit:`, `offset:`, `cols:` and `reversed`.
#[derive(Debug, Default)]
struct Options {
    limit: Option<Expression>,
    offset: Option<Expression>,
    cols: Option<Expression>,
    reversed: bool,
}

impl Options {
    fn parse(arguments: &mut TagTokenIter<'_>, tablerow: bool) -> Result<Options> {
        let mut options = Options::default();
        while let Some(token) = arguments.next() {
            let slot = match token.as_str() {
                "limit" => &mut options.limit,
                "offset" => &mut options.offset,
                "cols" if tablerow => &mut options.cols,
                "reversed" if !tablerow => {
                    options.reversed = true;
                    continue;
                }
                _ => {
                    let expected = if tablerow { "cols, limit or offset" } else { "limit, offset or reversed" };
                    return Err(token.raise_custom_error(&format!("{expected} expected")));
                }
            };
            arguments.expect_next("\":\" expected")?.expect_str(":").into_result_custom_msg("\":\" expected")?;
            *slot = Some(arguments.expect_next("a value expected")?.expect_value().into_result()?);
        }
        if let Some(Expression::Literal(cols)) = &options.cols
            && cols.as_scalar().and_then(|s| s.to_integer()).is_some_and(|c| c < 1)
        {
            return Err(arguments.raise_error("cols must be at least 1"));
        }
        Ok(options)
    }
}

/// A whole number option (`limit`, `offset`, `cols`); negative counts as 0.
fn whole(expression: &Option<Expression>, runtime: &dyn Runtime, name: &str) -> Result<Option<u64>> {
    let Some(expression) = expression else { return Ok(None) };
    let value = expression.evaluate(runtime)?;
    let n = value
        .as_scalar()
        .and_then(|s| s.to_integer())
        .ok_or_else(|| Error::with_msg(format!("{name} must be a whole number, not {}", value.type_name())))?;
    Ok(Some(n.max(0) as u64))
}

/// The items of one loop, after offset, limit and reversal: counted ranges stay arithmetic.
enum Window<'r> {
    Counted { first: i64, len: u64, reversed: bool },
    Items(Vec<ValueCow<'r>>),
}

impl Window<'_> {
    fn len(&self) -> u64 {
        match self {
            Window::Counted { len, .. } => *len,
            Window::Items(items) => items.len() as u64,
        }
    }

    fn item(&self, i: u64) -> ValueCow<'_> {
        match self {
            Window::Counted { first, len, reversed } => {
                let at = if *reversed { len - 1 - i } else { i };
                // Within [start, stop], so it fits an i64.
                ValueCow::Owned(Value::scalar((i128::from(*first) + i128::from(at)) as i64))
            }
            Window::Items(items) => ValueCow::Borrowed(items[i as usize].as_view()),
        }
    }
}

fn window<'r>(range: &'r Range, options: &Options, runtime: &'r dyn Runtime) -> Result<Window<'r>> {
    let offset = whole(&options.offset, runtime, "offset")?.unwrap_or(0);
    let limit = whole(&options.limit, runtime, "limit")?;
    let cut = |len: u64| {
        let rest = len - offset.min(len);
        limit.map_or(rest, |l| l.min(rest))
    };
    match range {
        Range::Counted(start, stop) => {
            let start = integer(start, runtime, "start")?;
            let stop = integer(stop, runtime, "end")?;
            let whole = counted_len(start, stop);
            let first = (i128::from(start) + i128::from(offset.min(whole))) as i64;
            let len = cut(whole);
            Ok(Window::Counted { first, len, reversed: options.reversed })
        }
        Range::Items(items) => {
            let value = items.evaluate(runtime)?;
            let mut all: Vec<ValueCow<'r>> = match value {
                ValueCow::Borrowed(v) => borrowed_items(v)?,
                ValueCow::Owned(v) => owned_items(v)?,
            };
            let len = cut(all.len() as u64) as usize;
            let start = (offset as usize).min(all.len());
            all.truncate(start + len);
            all.drain(..start);
            if options.reversed {
                all.reverse();
            }
            Ok(Window::Items(all))
        }
    }
}

fn borrowed_items(value: &dyn ValueView) -> Result<Vec<ValueCow<'_>>> {
    if let Some(array) = value.as_array() {
        Ok(array.values().map(ValueCow::Borrowed).collect())
    } else if let Some(object) = value.as_object() {
        Ok(object
            .iter()
            .map(|(k, v)| ValueCow::Owned(Value::Array(vec![Value::scalar(k.into_owned()), v.to_value()])))
            .collect())
    } else if value.is_nil() || value.is_state() {
        Ok(Vec::new())
    } else {
        Err(Error::with_msg(format!("an array or a range expected, not {}", value.type_name())))
    }
}

fn owned_items<'r>(value: Value) -> Result<Vec<ValueCow<'r>>> {
    match value {
        Value::Array(items) => Ok(items.into_iter().map(ValueCow::Owned).collect()),
        Value::Object(map) => {
            Ok(map.into_iter().map(|(k, v)| ValueCow::Owned(Value::Array(vec![Value::scalar(k), v]))).collect())
        }
        Value::Nil | Value::State(_) => Ok(Vec::new()),
        other => Err(Error::with_msg(format!("an array or a range expected, not {}", other.type_name()))),
    }
}

fn integer(expression: &Expression, runtime: &dyn Runtime, name: &str) -> Result<i64> {
    let value = expression.evaluate(runtime)?;
    value
        .as_scalar()
        .and_then(|s| s.to_integer())
        .ok_or_else(|| Error::with_msg(format!("the range's {name} must be a whole number, not {}", value.type_name())))
}

fn limit_error(e: budget::Exceeded) -> Error {
    Error::with_msg(format!("the loop ran into {e}"))
}

/// The `forloop` (or `tablerow`) object of iteration `i` of `len`.
fn loop_object(i: u64, len: u64) -> Object {
    // A range may be longer than an i64 counts (the budget stops it long before the end).
    let (i, len) = (i.min(i64::MAX as u64) as i64, len.min(i64::MAX as u64) as i64);
    let mut o = Object::new();
    o.insert("length".into(), Value::scalar(len));
    o.insert("index0".into(), Value::scalar(i));
    o.insert("index".into(), Value::scalar(i.saturating_add(1)));
    o.insert("rindex0".into(), Value::scalar(len.saturating_sub(i).saturating_sub(1)));
    o.insert("rindex".into(), Value::scalar(len.saturating_sub(i)));
    o.insert("first".into(), Value::scalar(i == 0));
    o.insert("last".into(), Value::scalar(i == len.saturating_sub(1)));
    o
}

#[derive(Clone, Copy, Debug)]
struct ForBlock;

super::block_reflection!(
    ForBlock,
    "for",
    "endfor",
    "Repeats its body for each item of an array or range, one step of the budget each."
);

impl ParseBlock for ForBlock {
    fn parse(
        &self,
        mut arguments: TagTokenIter<'_>,
        mut tokens: TagBlock<'_, '_>,
        options: &Language,
    ) -> Result<Box<dyn Renderable>> {
        let (name, range, loop_options, guard) = loop_header(&mut arguments, false)?;
        let mut body = Vec::new();
        let mut otherwise = None;
        while let Some(element) = tokens.next()? {
            match element {
                BlockElement::Tag(mut tag) if tag.name() == "else" => {
                    tag.tokens().expect_nothing()?;
                    otherwise = Some(Template::new(tokens.parse_all(options)?));
                    break;
                }
                BlockElement::Tag(tag) => body.push(tag.parse(&mut tokens, options)?),
                element => body.push(element.parse(&mut tokens, options)?),
            }
        }
        drop(guard);
        tokens.assert_empty();
        Ok(Box::new(For { name, range, options: loop_options, body: Template::new(body), otherwise }))
    }

    fn reflection(&self) -> &dyn BlockReflection {
        self
    }
}

#[derive(Debug)]
struct For {
    name: KString,
    range: Range,
    options: Options,
    body: Template,
    otherwise: Option<Template>,
}

impl Renderable for For {
    fn render_to(&self, writer: &mut dyn Write, runtime: &dyn Runtime) -> Result<()> {
        budget::charge(1).map_err(limit_error)?;
        let items = window(&self.range, &self.options, runtime)?;
        let len = items.len();
        if len == 0 {
            return self.otherwise.as_ref().map_or(Ok(()), |t| t.render_to(writer, runtime));
        }
        let parent = runtime.try_get(&[Scalar::new("forloop")]).map(|v| v.to_value());
        for i in 0..len {
            budget::charge(1).map_err(limit_error)?;
            let mut forloop = loop_object(i, len);
            if let Some(parent) = &parent {
                forloop.insert("parentloop".into(), parent.clone());
            }
            let forloop = Value::Object(forloop);
            let item = items.item(i);
            let mut root = HashMap::<KStringRef<'_>, &dyn ValueView>::new();
            root.insert("forloop".into(), &forloop);
            root.insert(self.name.as_ref(), item.as_view());
            let scope = StackFrame::new(runtime, &root);
            self.body.render_to(writer, &scope)?;
            if let Some(Interrupt::Break) = scope.registers().get_mut::<InterruptRegister>().reset() {
                break;
            }
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug)]
struct TableRowBlock;

super::block_reflection!(
    TableRowBlock,
    "tablerow",
    "endtablerow",
    "Renders an HTML table row by row, one step of the budget per cell."
);

impl ParseBlock for TableRowBlock {
    fn parse(
        &self,
        mut arguments: TagTokenIter<'_>,
        mut tokens: TagBlock<'_, '_>,
        options: &Language,
    ) -> Result<Box<dyn Renderable>> {
        let (name, range, loop_options, guard) = loop_header(&mut arguments, true)?;
        let body = Template::new(tokens.parse_all(options)?);
        drop(guard);
        tokens.assert_empty();
        Ok(Box::new(TableRow { name, range, options: loop_options, body }))
    }

    fn reflection(&self) -> &dyn BlockReflection {
        self
    }
}

#[derive(Debug)]
struct TableRow {
    name: KString,
    range: Range,
    options: Options,
    body: Template,
}

impl Renderable for TableRow {
    fn render_to(&self, writer: &mut dyn Write, runtime: &dyn Runtime) -> Result<()> {
        budget::charge(1).map_err(limit_error)?;
        let items = window(&self.range, &self.options, runtime)?;
        let len = items.len();
        let cols = whole(&self.options.cols, runtime, "cols")?.unwrap_or(len);
        if cols == 0 && len > 0 {
            return Err(Error::with_msg("cols must be at least 1"));
        }
        for i in 0..len {
            budget::charge(1).map_err(limit_error)?;
            let (row, col) = (i / cols, i % cols);
            let ends_row = col == cols - 1 || i == len - 1;
            let mut tablerow = loop_object(i, len);
            tablerow.insert("col0".into(), Value::scalar(col as i64));
            tablerow.insert("col".into(), Value::scalar(col as i64 + 1));
            tablerow.insert("col_first".into(), Value::scalar(col == 0));
            tablerow.insert("col_last".into(), Value::scalar(ends_row));
            let tablerow = Value::Object(tablerow);
            if col == 0 {
                write_text(writer, &format!("<tr class=\"row{}\">", row + 1))?;
            }
            write_text(writer, &format!("<td class=\"col{}\">", col + 1))?;
            let item = items.item(i);
            let mut root = HashMap::<KStringRef<'_>, &dyn ValueView>::new();
            root.insert("tablerow".into(), &tablerow);
            root.insert(self.name.as_ref(), item.as_view());
            self.body.render_to(writer, &StackFrame::new(runtime, &root))?;
            write_text(writer, "</td>")?;
            if ends_row {
                write_text(writer, "</tr>")?;
            }
        }
        Ok(())
    }
}
