//! Templates: Liquid, what marketers already write in Braze, Klaviyo and Shopify. Message bodies and action
//! payloads are rendered with them from named JSON values such as `event` and `profile`.
//!
//! Variables are looked up the way Shopify's Liquid does, not the way liquid-rust does by default: a member
//! that does not exist is nil (renders empty, is falsy, takes `| default:`), instead of failing the render.
//! Marketers write `{{ profile.traits.first_name | default: 'bạn' }}` for people who never gave a name.
//!
//! Sandboxed: the parser has the standard tags and filters but no partial source, so `{% include %}` and
//! `{% render %}` cannot reach the file system, and nothing in Liquid reaches the network. Parsing reports the
//! line and column of the first error.
//!
//! Bounded while it runs (see [`crate::budget`]): every loop iteration and filter call draws on one budget of
//! steps per render, ranges are walked without being built, every string, capture and the output are checked
//! as they grow, integer arithmetic that would overflow is an error, and a panic inside Liquid fails the
//! render instead of the thread. What can be seen before running (a literal range past the step limit, nested
//! literal loops whose product is, `cols: 0`) is refused when parsing.

/// `BlockReflection` for one of Tutti's own blocks: its tags and what it does.
macro_rules! block_reflection {
    ($block:ty, $start:literal, $end:literal, $what:literal) => {
        impl liquid_core::parser::BlockReflection for $block {
            fn start_tag(&self) -> &str {
                $start
            }
            fn end_tag(&self) -> &str {
                $end
            }
            fn description(&self) -> &str {
                $what
            }
        }
    };
}
use block_reflection;

mod blocks;
mod filters;
mod loops;
mod view;

use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::LazyLock;

use liquid_core::model::KString;
use serde_json::Value;

use crate::budget::{self, Exceeded, Limits, Metered};
use view::Globals;

/// The longest template accepted, in bytes.
pub const MAX_SOURCE_BYTES: usize = 64 * 1024;

/// The longest rendered output accepted by default, in bytes (also the longest any string or capture may grow).
pub const MAX_OUTPUT_BYTES: usize = 256 * 1024;

static PARSER: LazyLock<liquid::Parser> = LazyLock::new(|| {
    let builder = liquid::ParserBuilder::new();
    let builder = blocks::register(builder);
    let builder = loops::register(builder);
    filters::register(builder).build().expect("the bounded library builds a parser")
});

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

/// Why a parsed template could not be rendered: an unknown variable, a filter given the wrong type, or a limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RenderError {
    pub message: String,
    /// The limit it ran into, when that is why. A run fails on these; other render errors are noted and the
    /// run goes on.
    pub limit: Option<Exceeded>,
}

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
        if let Some((line, column)) = overflowing_integer(source) {
            return Err(TemplateError {
                line,
                column,
                message: format!("a whole number past {} cannot be read", i64::MAX),
            });
        }
        let parsed = catch_unwind(AssertUnwindSafe(|| {
            loops::begin_parse();
            PARSER.parse(source)
        }));
        let template = match parsed {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                let text = e.to_string();
                let (line, column) = position(&text).unwrap_or((1, 1));
                return Err(TemplateError { line, column, message: summary(&text) });
            }
            Err(panic) => {
                return Err(TemplateError {
                    line: 1,
                    column: 1,
                    message: format!("the template could not be read: {}", budget::panic_text(&*panic)),
                });
            }
        };
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

    /// Renders with the given variables within the default [`Limits`], or within the limits of an evaluation
    /// already metered on this thread (a payload of several templates shares one budget). Liquid reads the
    /// variables where they are: nothing is copied but what the template prints.
    pub fn render(&self, variables: &[(&str, &Value)]) -> Result<String, RenderError> {
        let _meter = Metered::join_or_start(Limits::default());
        self.render_metered(variables)
    }

    /// Renders within `limits` (lowered by any evaluation already metered on this thread).
    pub fn render_with(&self, variables: &[(&str, &Value)], limits: Limits) -> Result<String, RenderError> {
        let _meter = Metered::start_within(limits);
        self.render_metered(variables)
    }

    fn render_metered(&self, variables: &[(&str, &Value)]) -> Result<String, RenderError> {
        let mut out = Sink::new(budget::output_limit());
        let rendered = catch_unwind(AssertUnwindSafe(|| self.template.render_to(&mut out, &Globals(variables))));
        // A limit decides, whatever Liquid made of it: it may have discarded the error (a lax lookup) or
        // wrapped it in its own words.
        if let Some(limit) = budget::exceeded() {
            return Err(RenderError { message: format!("the template ran into {limit}"), limit: Some(limit) });
        }
        match rendered {
            Ok(Ok(())) => Ok(out.into_string()),
            Ok(Err(e)) => Err(RenderError { message: summary(&e.to_string()), limit: None }),
            Err(panic) => Err(RenderError {
                message: format!("the template failed inside Liquid: {}", budget::panic_text(&*panic)),
                limit: None,
            }),
        }
    }
}

/// Where rendered text goes: bounded as it grows, each kilobyte drawing a step. Loops, captures and
/// `ifchanged` write through sinks too, so no text grows unmetered.
pub(crate) struct Sink {
    bytes: Vec<u8>,
    limit: usize,
    /// Bytes written since the last step was drawn for them.
    unpaid: usize,
}

impl Sink {
    pub(crate) fn new(limit: usize) -> Sink {
        Sink { bytes: Vec::new(), limit, unpaid: 0 }
    }

    pub(crate) fn into_string(self) -> String {
        String::from_utf8(self.bytes).expect("Liquid writes UTF-8")
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > self.limit {
            let e = budget::fail(Exceeded::Output(self.limit));
            return Err(std::io::Error::other(e.to_string()));
        }
        self.unpaid += buf.len();
        if self.unpaid >= budget::BYTES_PER_STEP {
            let steps = (self.unpaid / budget::BYTES_PER_STEP) as u64;
            self.unpaid %= budget::BYTES_PER_STEP;
            budget::charge(steps).map_err(|e| std::io::Error::other(e.to_string()))?;
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes text a block produces itself (table markup, a remembered `ifchanged` body) into the render.
pub(crate) fn write_text(writer: &mut dyn Write, text: &str) -> liquid_core::Result<()> {
    writer.write_all(text.as_bytes()).map_err(|e| liquid_core::Error::with_msg(e.to_string()))
}

/// The variable a block tag names first (`capture name`, `for name in ...`).
pub(crate) fn variable_name(arguments: &mut liquid_core::parser::TagTokenIter<'_>) -> liquid_core::Result<KString> {
    Ok(arguments.expect_next("a variable name expected")?.expect_identifier().into_result()?.to_owned().into())
}

/// Where a whole number too big for 64 bits stands inside a tag or an output (`{% %}`, `{{ }}`), outside
/// quotes. Liquid's parser would panic on it ("Grammar ensures matches are parseable"); found by fuzzing.
fn overflowing_integer(source: &str) -> Option<(usize, usize)> {
    let bytes = source.as_bytes();
    let (mut i, mut in_tag, mut quote) = (0, false, None::<u8>);
    while i < bytes.len() {
        let b = bytes[i];
        if !in_tag {
            in_tag = b == b'{' && matches!(bytes.get(i + 1), Some(b'{' | b'%'));
            i += 1;
            continue;
        }
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'"' || b == b'\'' => quote = Some(b),
            None if (b == b'}' || b == b'%') && bytes.get(i + 1) == Some(&b'}') => in_tag = false,
            None if b.is_ascii_digit() => {
                let end = bytes[i..].iter().position(|c| !c.is_ascii_digit()).map_or(bytes.len(), |n| i + n);
                let digits = source[i..end].trim_start_matches('0');
                if digits.len() > 19 || (digits.len() == 19 && digits > "9223372036854775807") {
                    let line = source[..i].matches('\n').count() + 1;
                    let column = source[..i].rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                    return Some((line, column));
                }
                i = end;
                continue;
            }
            None => {}
        }
        i += 1;
    }
    None
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
        .map(|l| l.trim().trim_start_matches("= ").trim_start_matches("liquid:").trim())
        .filter(|l| {
            !l.is_empty()
                && !l.starts_with("-->")
                && !l.starts_with('|')
                && !l.chars().next().is_some_and(|c| c.is_ascii_digit())
        })
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
        assert!(err.message.contains("limit"), "{err}");
    }
}
