//! Templates: Liquid, what marketers already write in Braze, Klaviyo and Shopify. Message bodies and action
//! payloads are rendered with them from named JSON values such as `event` and `profile`.
//!
//! Sandboxed: the parser has the standard tags and filters but no partial source, so `{% include %}` and
//! `{% render %}` cannot reach the file system, and nothing in Liquid reaches the network. Parsing reports the
//! line and column of the first error. Sources and rendered output are bounded in size.

use std::sync::LazyLock;

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
/// over the limit). Unlike Shopify's Liquid, a variable that does not exist at all is an error here, even
/// under `| default:`; only nil and empty values take the default.
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

    /// Renders with the given variables.
    pub fn render(&self, variables: &[(&str, &Value)]) -> Result<String, RenderError> {
        let mut globals = liquid::Object::new();
        for (name, value) in variables {
            let value = liquid::model::to_value(value).map_err(|e| RenderError(e.to_string()))?;
            globals.insert((*name).to_owned().into(), value);
        }
        let out = self.template.render(&globals).map_err(|e| RenderError(summary(&e.to_string())))?;
        if out.len() > MAX_OUTPUT_BYTES {
            return Err(RenderError(format!("the output is {} bytes; the limit is {MAX_OUTPUT_BYTES}", out.len())));
        }
        Ok(out)
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
        // `default` applies to nil and empty values. A member that is missing altogether is an error (below):
        // Liquid-rust looks variables up strictly.
        let profile = json!({"traits": {"城市": "上海", "name": null}});
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
    fn unknown_variables_are_errors_and_output_is_bounded() {
        let t = Template::parse("{{ profile.traits.plan }}").unwrap();
        assert!(t.render(&[("profile", &json!({"traits": {}}))]).is_err());
        let big = Template::parse("{% for i in (1..300) %}{{ profile.pad }}{% endfor %}").unwrap();
        let err = big.render(&[("profile", &json!({"pad": "x".repeat(1000)}))]).unwrap_err();
        assert!(err.0.contains("limit"), "{err}");
    }
}
