//! Text made safe for HTML and SVG: element content and quoted attribute values. For the pages Tutti writes
//! without a template engine (the insights report, the playbook, the flow graph), whose text comes from
//! imported files and people's input.

/// `text` with `& < > " '` escaped and control characters other than line breaks and tabs dropped (XML, and so
/// SVG, forbids them).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\r' | '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn markup_is_text_and_controls_are_dropped() {
        assert_eq!(
            escape("<a href=\"x\">Tom & 'Jerry'</a>"),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;"
        );
        assert_eq!(escape("giá\u{0}\u{7} cao\nquá"), "giá cao\nquá");
    }
}
