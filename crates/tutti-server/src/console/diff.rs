//! A word-level difference between a draft and its edit, for an approver to see what they changed before the
//! edited message goes out. Words and the spaces between them are the units; the longest common subsequence
//! decides what stayed.

/// A run of text and whether it stayed, was taken out or was put in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Same(String),
    Removed(String),
    Added(String),
}

/// Words and the whitespace between them, in order.
fn units(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_space = None;
    for (i, c) in text.char_indices() {
        let space = c.is_whitespace();
        if in_space.is_some_and(|s| s != space) {
            out.push(&text[start..i]);
            start = i;
        }
        in_space = Some(space);
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// The most units compared; a longer text is shown as wholly replaced rather than compared in quadratic time.
const MOST: usize = 2_000;

/// How `after` differs from `before`, with neighbouring pieces of one kind joined.
pub fn words(before: &str, after: &str) -> Vec<Piece> {
    let (a, b) = (units(before), units(after));
    if a.len() > MOST || b.len() > MOST {
        return vec![Piece::Removed(before.to_owned()), Piece::Added(after.to_owned())];
    }
    // lcs[i][j]: the longest common subsequence of a[i..] and b[j..].
    let mut lcs = vec![vec![0u16; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let mut pieces: Vec<Piece> = Vec::new();
    let mut push = |piece: Piece| match (pieces.last_mut(), piece) {
        (Some(Piece::Same(s)), Piece::Same(t))
        | (Some(Piece::Removed(s)), Piece::Removed(t))
        | (Some(Piece::Added(s)), Piece::Added(t)) => s.push_str(&t),
        (_, piece) => pieces.push(piece),
    };
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            push(Piece::Same(a[i].to_owned()));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            push(Piece::Removed(a[i].to_owned()));
            i += 1;
        } else {
            push(Piece::Added(b[j].to_owned()));
            j += 1;
        }
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_word_is_taken_out_and_put_in_and_the_rest_stays() {
        let pieces = words("Cảm ơn chị Lan đã mua ấm trà.", "Cảm ơn chị Lan đã đặt ấm trà!");
        assert_eq!(
            pieces,
            [
                Piece::Same("Cảm ơn chị Lan đã ".into()),
                Piece::Removed("mua".into()),
                Piece::Added("đặt".into()),
                Piece::Same(" ấm ".into()),
                Piece::Removed("trà.".into()),
                Piece::Added("trà!".into()),
            ]
        );
        assert_eq!(words("same", "same"), [Piece::Same("same".into())]);
        assert_eq!(words("", "new"), [Piece::Added("new".into())]);
    }
}
