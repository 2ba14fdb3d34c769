//! Reading a streamed answer: `chat.completion.chunk` server-sent events, as OpenAI's API reference describes
//! them (`stream` with `stream_options.include_usage`).

use serde_json::Value;

use super::{Answer, MAX_ANSWER_BYTES, error_message, usage};
use crate::provider::{AiError, ToolCall};

/// A `chat.completion.chunk` stream being read: feed it bytes as they come, then [`Stream::finish`].
#[derive(Debug, Default)]
pub struct Stream {
    line: Vec<u8>,
    data: Vec<u8>,
    answer: Answer,
    /// Tool calls by the index the chunks give.
    calls: Vec<ToolCall>,
    done: bool,
    read: usize,
}

impl Stream {
    pub fn new() -> Stream {
        Stream::default()
    }

    /// Whether `data: [DONE]` arrived.
    pub fn done(&self) -> bool {
        self.done
    }

    /// Takes the next bytes of the body (split anywhere, even inside a character).
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), AiError> {
        self.read += bytes.len();
        if self.read > MAX_ANSWER_BYTES {
            return Err(AiError::Malformed(format!("the stream ran past {MAX_ANSWER_BYTES} bytes")));
        }
        for &b in bytes {
            if b == b'\n' {
                let line = std::mem::take(&mut self.line);
                self.line_done(&line)?;
            } else {
                self.line.push(b);
            }
        }
        Ok(())
    }

    /// One line of the event stream (text/event-stream: `data:` lines, a blank line ends an event; comments
    /// and other fields are skipped).
    fn line_done(&mut self, line: &[u8]) -> Result<(), AiError> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            let data = std::mem::take(&mut self.data);
            return if data.is_empty() { Ok(()) } else { self.event(&data) };
        }
        if let Some(rest) = line.strip_prefix(b"data:") {
            if !self.data.is_empty() {
                self.data.push(b'\n');
            }
            self.data.extend_from_slice(rest.strip_prefix(b" ").unwrap_or(rest));
        }
        Ok(())
    }

    fn event(&mut self, data: &[u8]) -> Result<(), AiError> {
        if self.done {
            return Ok(());
        }
        if data == b"[DONE]" {
            self.done = true;
            return Ok(());
        }
        let v: Value = serde_json::from_slice(data)
            .map_err(|e| AiError::Malformed(format!("event {} is not JSON: {e}", self.answer.chunks + 1)))?;
        if let Some(message) = error_message(&v) {
            return Err(AiError::Malformed(format!("the stream carried an error: {message}")));
        }
        self.answer.chunks += 1;
        if self.answer.model.is_none() {
            self.answer.model = v.get("model").and_then(Value::as_str).map(str::to_owned);
        }
        if let Some(u) = usage(&v) {
            self.answer.usage = Some(u);
        }
        let Some(choice) = v.get("choices").and_then(Value::as_array).and_then(|c| c.first()) else { return Ok(()) };
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.answer.finish_reason = Some(reason.to_owned());
        }
        let Some(delta) = choice.get("delta") else { return Ok(()) };
        if let Some(text) = delta.get("content").and_then(Value::as_str) {
            self.answer.text.push_str(text);
        }
        for (n, part) in delta.get("tool_calls").and_then(Value::as_array).into_iter().flatten().enumerate() {
            let i = part.get("index").and_then(Value::as_u64).map_or(n, |i| i as usize);
            if i > 64 {
                return Err(AiError::Malformed(format!("tool call index {i}")));
            }
            while self.calls.len() <= i {
                let k = self.calls.len();
                self.calls.push(ToolCall { id: format!("call_{k}"), name: String::new(), arguments: String::new() });
            }
            let call = &mut self.calls[i];
            if let Some(id) = part.get("id").and_then(Value::as_str) {
                call.id = id.to_owned();
            }
            if let Some(f) = part.get("function") {
                // OpenAI names the function in the call's first chunk only; llama.cpp's Python server repeats
                // the whole name in every chunk. Either way the first name given is the name.
                if let Some(name) = f.get("name").and_then(Value::as_str)
                    && call.name.is_empty()
                {
                    call.name = name.to_owned();
                }
                if let Some(args) = f.get("arguments").and_then(Value::as_str) {
                    call.arguments.push_str(args);
                }
            }
        }
        Ok(())
    }

    /// The answer the stream built. A stream cut off before it said it was done is malformed.
    pub fn finish(mut self) -> Result<Answer, AiError> {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.line_done(&line)?;
        }
        if !self.data.is_empty() {
            let data = std::mem::take(&mut self.data);
            self.event(&data)?;
        }
        if !self.done && self.answer.finish_reason.is_none() {
            return Err(AiError::Malformed(format!(
                "the stream ended after {} event(s) without a finish reason or [DONE]",
                self.answer.chunks
            )));
        }
        self.answer.tool_calls = self.calls;
        Ok(self.answer)
    }
}
