//! Topics named by a model: each topic's most said sentences sent to the model routed for naming, which answers
//! a label in the topic's language and one in English. Every name is checked before it replaces the local one
//! (a sentence or a taxonomy label): one line, at most [`MAX_LABEL_CHARS`] characters, in the right script (a
//! Chinese topic's label has Han characters; an English label has none). A name that fails keeps the local one.

use super::Mined;
use super::space::{Model, ToLabel};

/// Topics named per request.
const PER_REQUEST: usize = 40;
/// The longest label kept.
pub const MAX_LABEL_CHARS: usize = 80;

/// What naming did: the model's `<provider>/<model>` when it named any topic, and why names were not used.
#[derive(Debug, Default)]
pub struct Named {
    pub method: Option<String>,
    pub notes: Vec<String>,
}

/// Names `mined`'s topics by `model`, [`PER_REQUEST`] a request. A failed request keeps its topics' local names
/// and says why; it does not stop the rest.
pub fn name_topics(mined: &mut Mined, model: &mut dyn Model) -> Named {
    let mut named = Named::default();
    let asked: Vec<ToLabel> = mined
        .topics
        .iter()
        .filter(|t| !t.examples.is_empty())
        .map(|t| ToLabel { id: t.id.clone(), language: t.language.clone(), kind: t.kind, examples: t.examples.clone() })
        .collect();
    let mut refused = 0usize;
    for chunk in asked.chunks(PER_REQUEST) {
        let labels = match model.label(chunk) {
            Ok(Some(labels)) => labels,
            Ok(None) => return named,
            Err(why) => {
                named.notes.push(format!("topics were named locally: {why}"));
                continue;
            }
        };
        for topic in chunk {
            let Some((_, label, label_en)) = labels.names.iter().find(|(id, _, _)| *id == topic.id) else {
                refused += 1;
                continue;
            };
            let (Some(label), Some(label_en)) = (fit(label, &topic.language), fit(label_en, "en")) else {
                refused += 1;
                continue;
            };
            if let Some(t) = mined.topics.iter_mut().find(|t| t.id == topic.id) {
                t.label = label;
                t.label_en = label_en;
            }
            named.method = Some(labels.method.clone());
        }
    }
    if refused > 0 {
        named.notes.push(format!("{refused} topics kept their local names: the model's were missing or unfit"));
    }
    named
}

/// A model's label made fit to show, or `None`: trimmed, without wrapping quotes, one line of at most
/// [`MAX_LABEL_CHARS`] characters, in `language`'s script.
pub fn fit(label: &str, language: &str) -> Option<String> {
    let trimmed = label.trim().trim_matches(['"', '\'', '“', '”', '「', '」', '«', '»']).trim();
    let chars = trimmed.chars().count();
    if chars == 0 || chars > MAX_LABEL_CHARS || trimmed.chars().any(char::is_control) {
        return None;
    }
    let han = trimmed.chars().any(tutti_ai::text::is_han);
    let fits = match language {
        "zh" => han,
        "en" | "vi" => !han,
        _ => true,
    };
    fits.then(|| trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_fit_their_script_and_length() {
        assert_eq!(fit("  \"Data security\" ", "en").as_deref(), Some("Data security"));
        assert_eq!(fit("数据安全顾虑", "zh").as_deref(), Some("数据安全顾虑"));
        assert_eq!(fit("Lo ngại bảo mật dữ liệu", "vi").as_deref(), Some("Lo ngại bảo mật dữ liệu"));
        assert_eq!(fit("Data security", "zh"), None, "a Chinese topic named without Chinese");
        assert_eq!(fit("数据安全", "en"), None, "an English name in Chinese");
        assert_eq!(fit("two\nlines", "en"), None);
        assert_eq!(fit("", "en"), None);
        assert_eq!(fit(&"x".repeat(MAX_LABEL_CHARS + 1), "en"), None);
    }
}
