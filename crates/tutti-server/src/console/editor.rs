//! The YAML editors' one job beyond the textarea: a definition's problems shown at their line and column, on a
//! numbered copy of the text as the person wrote it (no script can mark the textarea itself).

use std::collections::BTreeMap;

use tutti_flows::Problem;

/// One line of the source, with the problems found on it.
pub(crate) struct SourceLine {
    pub number: usize,
    pub text: String,
    pub problems: Vec<String>,
}

/// The source's lines with their problems (none when there are no problems), and the problems that are on no
/// line of it.
pub(crate) fn mark(source: &str, problems: &[Problem]) -> (Vec<SourceLine>, Vec<String>) {
    if problems.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let mut on_line: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for p in problems {
        let hint = p.hint.as_ref().map(|h| format!(" ({h})")).unwrap_or_default();
        on_line.entry(p.pos.line).or_default().push(format!("{}: {}{hint}", p.pos, p.message));
    }
    let count = source.lines().count();
    let lines = source
        .lines()
        .enumerate()
        .map(|(i, line)| SourceLine {
            number: i + 1,
            text: line.to_owned(),
            problems: on_line.remove(&(i + 1)).unwrap_or_default(),
        })
        .collect();
    // A problem at no line of the text (a document that is not YAML at all, a save that failed otherwise).
    let elsewhere =
        problems.iter().filter(|p| p.pos.line == 0 || p.pos.line > count).map(ToString::to_string).collect();
    (lines, elsewhere)
}

/// A problem that is not about a place in the text.
pub(crate) fn unplaced(message: String) -> Problem {
    Problem { pos: Default::default(), pointer: String::new(), message, hint: None }
}
