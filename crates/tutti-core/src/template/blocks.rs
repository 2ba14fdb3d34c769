//! Liquid's standard tags and blocks, with `capture` and `ifchanged` replaced by versions that render into a
//! bounded, metered [`Sink`] (Liquid's own render into an unbounded buffer, which a capture doubled in a loop
//! grows past any memory). Neither `include` nor `render` is registered: templates cannot reach files.

use std::io::Write;

use liquid::ParserBuilder;
use liquid_core::error::ResultLiquidExt;
use liquid_core::model::{KString, Value};
use liquid_core::parser::{BlockReflection, ParseBlock, TagBlock, TagTokenIter};
use liquid_core::{Language, Renderable, Result, Runtime, Template};
use liquid_lib::stdlib;

use super::Sink;
use crate::budget;

pub(super) fn register(builder: ParserBuilder) -> ParserBuilder {
    builder
        .tag(stdlib::AssignTag)
        .tag(stdlib::BreakTag)
        .tag(stdlib::ContinueTag)
        .tag(stdlib::CycleTag)
        .tag(stdlib::IncrementTag)
        .tag(stdlib::DecrementTag)
        .block(stdlib::RawBlock)
        .block(stdlib::IfBlock)
        .block(stdlib::UnlessBlock)
        .block(stdlib::CommentBlock)
        .block(stdlib::CaseBlock)
        .block(CaptureBlock)
        .block(IfChangedBlock)
}

/// Renders `template` into a new sink bounded by the evaluation's size limit.
fn render_bounded(template: &Template, runtime: &dyn Runtime) -> Result<String> {
    let mut sink = Sink::new(budget::output_limit());
    template.render_to(&mut sink, runtime)?;
    Ok(sink.into_string())
}

/// `{% capture name %}...{% endcapture %}`: renders its body into the variable `name`.
#[derive(Clone, Copy, Debug)]
struct CaptureBlock;

super::block_reflection!(CaptureBlock, "capture", "endcapture", "Renders its body into a variable, bounded in size.");

impl ParseBlock for CaptureBlock {
    fn parse(
        &self,
        mut arguments: TagTokenIter<'_>,
        mut tokens: TagBlock<'_, '_>,
        options: &Language,
    ) -> Result<Box<dyn Renderable>> {
        let name = super::variable_name(&mut arguments)?;
        arguments.expect_nothing()?;
        let body = Template::new(tokens.parse_all(options)?);
        tokens.assert_empty();
        Ok(Box::new(Capture { name, body }))
    }

    fn reflection(&self) -> &dyn BlockReflection {
        self
    }
}

#[derive(Debug)]
struct Capture {
    name: KString,
    body: Template,
}

impl Renderable for Capture {
    fn render_to(&self, _writer: &mut dyn Write, runtime: &dyn Runtime) -> Result<()> {
        let text =
            render_bounded(&self.body, runtime).trace_with(|| format!("{{% capture {} %}}", self.name).into())?;
        runtime.set_global(self.name.clone(), Value::scalar(text));
        Ok(())
    }
}

/// `{% ifchanged %}...{% endifchanged %}`: prints its body only when it differs from the last time.
#[derive(Clone, Copy, Debug)]
struct IfChangedBlock;

super::block_reflection!(
    IfChangedBlock,
    "ifchanged",
    "endifchanged",
    "Prints its body when it differs from the last time it was rendered."
);

impl ParseBlock for IfChangedBlock {
    fn parse(
        &self,
        mut arguments: TagTokenIter<'_>,
        mut tokens: TagBlock<'_, '_>,
        options: &Language,
    ) -> Result<Box<dyn Renderable>> {
        arguments.expect_nothing()?;
        let body = Template::new(tokens.parse_all(options)?);
        tokens.assert_empty();
        Ok(Box::new(IfChanged { body }))
    }

    fn reflection(&self) -> &dyn BlockReflection {
        self
    }
}

#[derive(Debug)]
struct IfChanged {
    body: Template,
}

/// What the last `ifchanged` of this render printed.
#[derive(Debug, Default)]
struct LastChanged(Option<String>);

impl Renderable for IfChanged {
    fn render_to(&self, writer: &mut dyn Write, runtime: &dyn Runtime) -> Result<()> {
        let text = render_bounded(&self.body, runtime).trace("{% ifchanged %}")?;
        let mut last = runtime.registers().get_mut::<LastChanged>();
        if last.0.as_deref() != Some(text.as_str()) {
            super::write_text(writer, &text)?;
            last.0 = Some(text);
        }
        Ok(())
    }
}
