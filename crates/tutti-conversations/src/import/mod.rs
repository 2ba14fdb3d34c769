//! Reading conversations from what teams have: JSON lines (one conversation a line), plain transcripts and chat
//! logs (`Speaker: text` lines), and WebVTT or SRT subtitles with speaker labels.
//!
//! A JSON lines file is read in chunks with a bounded line length, so a 10,000-conversation export is never held
//! whole; a bad line is rejected with its number and reason and the others are kept. A transcript is one
//! conversation: any problem in it (not text, a broken time, a speaker whose side cannot be told, too many turns)
//! refuses the whole file with the line where it is.

pub mod hook;
pub mod jsonl;
pub mod roles;
pub mod transcript;

use std::io::BufRead;

use crate::model::{Conversation, limits};

/// The shapes a file of conversations comes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    JsonLines,
    Text,
    WebVtt,
    Srt,
}

impl Format {
    /// From a name given on the command line: `jsonl`, `text`, `vtt`, `srt`.
    pub fn parse(name: &str) -> Option<Format> {
        match name.to_ascii_lowercase().as_str() {
            "jsonl" | "ndjson" | "json" => Some(Format::JsonLines),
            "text" | "txt" | "chat" => Some(Format::Text),
            "vtt" | "webvtt" => Some(Format::WebVtt),
            "srt" => Some(Format::Srt),
            _ => None,
        }
    }

    /// From a file's extension, else from its first bytes.
    pub fn detect(extension: Option<&str>, start: &[u8]) -> Format {
        if let Some(format) = extension.and_then(Format::parse) {
            return format;
        }
        let start = String::from_utf8_lossy(&start[..start.len().min(512)]);
        let start = start.trim_start_matches('\u{feff}').trim_start();
        if start.starts_with("WEBVTT") {
            Format::WebVtt
        } else if start.starts_with('{') {
            Format::JsonLines
        } else if start.lines().nth(1).is_some_and(|l| l.contains("-->")) {
            Format::Srt
        } else {
            Format::Text
        }
    }
}

/// A line or file that was not imported, and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Rejected {
    /// The line of a JSON lines file (1-based); 0 for a whole file.
    pub line: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub reason: String,
}

/// Conversations read from JSON lines, a chunk at a time.
pub struct JsonLines<R> {
    input: R,
    line: u64,
    bytes: u64,
    done: bool,
}

/// What one chunk of a JSON lines file gave.
#[derive(Debug, Default)]
pub struct Chunk {
    pub conversations: Vec<Conversation>,
    pub rejected: Vec<Rejected>,
}

impl<R: BufRead> JsonLines<R> {
    pub fn new(input: R) -> JsonLines<R> {
        JsonLines { input, line: 0, bytes: 0, done: false }
    }

    /// Bytes read so far, for a progress bar.
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// The next `n` lines that hold something, or `None` at the end. An unreadable input ends the reading with a
    /// rejection that says why.
    pub fn next_chunk(&mut self, n: usize) -> Option<Chunk> {
        if self.done {
            return None;
        }
        let mut chunk = Chunk::default();
        let mut buffer = Vec::new();
        while chunk.conversations.len() + chunk.rejected.len() < n {
            buffer.clear();
            self.line += 1;
            match read_bounded_line(&mut self.input, &mut buffer, limits::CONVERSATION_BYTES) {
                Ok(Line::End) => {
                    self.done = true;
                    break;
                }
                Ok(Line::TooLong(read)) => {
                    self.bytes += read;
                    let reason =
                        format!("the line is over the {} bytes a conversation may be", limits::CONVERSATION_BYTES);
                    chunk.rejected.push(Rejected { line: self.line, id: None, reason });
                }
                Ok(Line::Read(read)) => {
                    self.bytes += read;
                    let Ok(text) = std::str::from_utf8(&buffer) else {
                        let reason = "not UTF-8 text (is this a binary file?)".to_owned();
                        chunk.rejected.push(Rejected { line: self.line, id: None, reason });
                        continue;
                    };
                    let text = text.trim_start_matches('\u{feff}').trim();
                    if text.is_empty() {
                        continue;
                    }
                    match jsonl::conversation(text) {
                        Ok(c) => chunk.conversations.push(c),
                        Err(reason) => chunk.rejected.push(Rejected { line: self.line, id: id_of(text), reason }),
                    }
                }
                Err(e) => {
                    chunk.rejected.push(Rejected { line: self.line, id: None, reason: format!("cannot read: {e}") });
                    self.done = true;
                    break;
                }
            }
        }
        Some(chunk)
    }
}

/// The id of a line that was refused, when it has one that can be read, so the summary can name it.
fn id_of(line: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    value.get("id")?.as_str().filter(|s| s.chars().count() <= limits::NAME_CHARS).map(str::to_owned)
}

enum Line {
    End,
    /// The bytes it took, newline included.
    Read(u64),
    /// Longer than the bound: skipped to its end.
    TooLong(u64),
}

/// One line into `buffer` (without its newline), never holding more than `bound` bytes of it.
fn read_bounded_line(input: &mut impl BufRead, buffer: &mut Vec<u8>, bound: usize) -> std::io::Result<Line> {
    let mut total = 0u64;
    let mut too_long = false;
    loop {
        let available = input.fill_buf()?;
        if available.is_empty() {
            return Ok(if total == 0 {
                Line::End
            } else if too_long {
                Line::TooLong(total)
            } else {
                Line::Read(total)
            });
        }
        let (used, ended) = match memchr::memchr(b'\n', available) {
            Some(at) => (at + 1, true),
            None => (available.len(), false),
        };
        let piece = &available[..if ended { used - 1 } else { used }];
        if !too_long {
            if buffer.len() + piece.len() > bound {
                too_long = true;
                buffer.clear();
            } else {
                buffer.extend_from_slice(piece);
            }
        }
        input.consume(used);
        total += used as u64;
        if ended {
            return Ok(if too_long { Line::TooLong(total) } else { Line::Read(total) });
        }
    }
}

/// A name (id, speaker, channel, identifier): trimmed, bounded, without control characters.
pub(crate) fn check_name(what: &str, text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.chars().count() > limits::NAME_CHARS {
        return Err(format!("`{what}` is longer than {} characters", limits::NAME_CHARS));
    }
    if text.chars().any(char::is_control) {
        return Err(format!("`{what}` has a control character"));
    }
    Ok(text.to_owned())
}

/// A turn's words: bounded, without control characters other than line breaks and tabs.
pub(crate) fn check_text(text: &str) -> Result<String, String> {
    if text.len() > limits::TURN_BYTES {
        return Err(format!("the text is {} bytes, over the {} a turn may be", text.len(), limits::TURN_BYTES));
    }
    if text.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Err("the text has a control character".into());
    }
    Ok(text.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_and_bad_lines_are_counted_apart() {
        let input = "{\"id\":\"a\",\"turns\":[{\"role\":\"customer\",\"text\":\"hi\"}]}\n\nnot json\n\
                     {\"id\":\"b\",\"turns\":[]}\n{\"id\":\"c\",\"turns\":[{\"role\":\"rep\",\"text\":\"ok\"}]}";
        let mut reader = JsonLines::new(std::io::Cursor::new(input.as_bytes()));
        let chunk = reader.next_chunk(100).unwrap();
        assert_eq!(chunk.conversations.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["a", "c"]);
        assert_eq!(chunk.rejected.iter().map(|r| r.line).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(chunk.rejected[1].id.as_deref(), Some("b"));
        assert_eq!(reader.bytes_read(), input.len() as u64);
        assert!(reader.next_chunk(100).is_none());
    }

    #[test]
    fn a_line_past_the_bound_is_skipped_without_being_held() {
        let mut input = Vec::new();
        input.extend(std::iter::repeat_n(b'x', 100));
        input.extend_from_slice(b"\nyy\n");
        let mut cursor = std::io::Cursor::new(input);
        let mut buffer = Vec::new();
        assert!(matches!(read_bounded_line(&mut cursor, &mut buffer, 10).unwrap(), Line::TooLong(101)));
        assert!(buffer.is_empty());
        assert!(matches!(read_bounded_line(&mut cursor, &mut buffer, 10).unwrap(), Line::Read(3)));
        assert_eq!(buffer, b"yy");
    }

    #[test]
    fn binary_input_is_refused_line_by_line() {
        let mut reader = JsonLines::new(std::io::Cursor::new(&[0xff, 0xfe, 0x00, 0x9c, b'\n'][..]));
        let chunk = reader.next_chunk(10).unwrap();
        assert!(chunk.rejected[0].reason.contains("not UTF-8"), "{:?}", chunk.rejected);
    }

    #[test]
    fn formats_from_extension_or_content() {
        assert_eq!(Format::detect(Some("vtt"), b""), Format::WebVtt);
        assert_eq!(Format::detect(None, b"\xef\xbb\xbfWEBVTT\n\n"), Format::WebVtt);
        assert_eq!(Format::detect(None, b"1\n00:00:01,000 --> 00:00:02,000\nA: hi"), Format::Srt);
        assert_eq!(Format::detect(None, b"{\"id\":1}"), Format::JsonLines);
        assert_eq!(Format::detect(None, b"Agent: hello"), Format::Text);
    }
}
