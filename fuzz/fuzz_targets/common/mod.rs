//! What the targets share.

/// The input split at its first NUL: the source to compile, then the event's JSON (empty when none).
pub fn source_and_data(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}
