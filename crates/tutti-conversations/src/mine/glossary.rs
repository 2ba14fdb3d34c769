//! English names for topics of Vietnamese and Chinese conversations that are not a known objection, from a
//! shipped glossary of what customers ask about (`data/glossary.txt`): "Sản phẩm được bảo hành mấy năm?" is
//! about "Warranty", "发票怎么开？" about "Invoice". Without a model there is no translation; this names the subject,
//! which is what an English reader of the topic list needs.

use std::sync::OnceLock;

use tutti_ai::text;

const GLOSSARY: &str = include_str!("../../data/glossary.txt");

/// Each entry: the words (lower case), the same without Vietnamese marks, and the English name.
fn entries() -> &'static [(String, String, String)] {
    static READ: OnceLock<Vec<(String, String, String)>> = OnceLock::new();
    READ.get_or_init(|| {
        GLOSSARY
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .filter_map(|l| l.split_once('\t'))
            .map(|(words, english)| {
                let words = text::normalize(words.trim());
                let folded = text::fold(&words);
                (words, folded, english.trim().to_owned())
            })
            .collect()
    })
}

/// Whether `entry` stands in `text` as whole words (Latin) or anywhere (Chinese).
fn holds(text: &str, entry: &str) -> bool {
    if entry.chars().next().is_some_and(text::is_han) {
        return text.contains(entry);
    }
    text.match_indices(entry).any(|(start, _)| super::units::whole_word_at(text, start, start + entry.len()))
}

/// The English name of what `sentences` are about: the entry found in most of them, the longest on a tie.
pub fn english_name<'a>(sentences: impl IntoIterator<Item = &'a str>) -> Option<&'static str> {
    let sentences: Vec<(String, String)> = sentences
        .into_iter()
        .map(|s| {
            let lower = text::normalize(s);
            let folded = text::fold(&lower);
            (lower, folded)
        })
        .collect();
    entries()
        .iter()
        .map(|(words, folded, english)| {
            let n = sentences.iter().filter(|(l, f)| holds(l, words) || holds(f, folded)).count();
            (n, words.chars().count(), english.as_str())
        })
        .filter(|(n, _, _)| *n > 0)
        .max_by_key(|(n, len, _)| (*n, *len))
        .map(|(_, _, english)| english)
}

#[cfg(test)]
mod tests {
    use super::english_name;

    #[test]
    fn subjects_in_vietnamese_and_chinese() {
        assert_eq!(
            english_name(["Sản phẩm được bảo hành mấy năm?", "Bảo hành có mất phí không em?"]),
            Some("Warranty")
        );
        assert_eq!(english_name(["bao lau thi giao hang toi da nang"]), Some("Delivery"), "typed without marks");
        assert_eq!(english_name(["数据安全怎么保证", "我们担心数据安全"]), Some("Data security"), "the longest entry");
        assert_eq!(english_name(["售后多久能响应？"]), Some("After-sales service"));
        assert_eq!(english_name(["Giải đấu diễn ra ở đâu?"]), None, "\"giá\" is not in \"giải\"");
    }
}
