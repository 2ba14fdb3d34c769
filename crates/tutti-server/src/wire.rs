//! The JSON error body on the answers hyper writes by itself.
//!
//! When a request cannot be read as HTTP (a URI past 64 KiB, headers past hyper's buffer, a malformed request
//! line), hyper answers 400, 414 or 431 with an empty body before any handler runs, and closes the connection.
//! Every other error Tutti gives carries `{"error": {"code", "message"}}`; so do these: [`JsonErrors`] wraps
//! the connection, recognises such an answer as it is written (one of those statuses, `content-length: 0`,
//! nothing after the head) and writes it with the JSON body instead. Tutti's own answers always have a body,
//! so none of them matches.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tutti_core::ErrorCode;

/// A connection whose empty-bodied automatic error answers get the JSON error body.
pub struct JsonErrors<S> {
    inner: S,
    /// The rewritten answer still to be written.
    pending: Vec<u8>,
    written: usize,
}

impl<S> JsonErrors<S> {
    pub fn new(inner: S) -> JsonErrors<S> {
        JsonErrors { inner, pending: Vec::new(), written: 0 }
    }
}

/// The code and message of an automatic answer with this status, if it is one Tutti dresses.
fn error_for(status: &[u8]) -> Option<(ErrorCode, &'static str)> {
    match status {
        b"400" => Some((ErrorCode::InvalidRequest, "the request is not valid HTTP/1.1")),
        b"414" => Some((ErrorCode::UriTooLong, "the request's URI is longer than 65,534 bytes")),
        b"431" => Some((ErrorCode::HeadersTooLarge, "the request's headers are too large or too many (at most 100)")),
        _ => None,
    }
}

/// The same answer with the JSON error body, if `head` is an automatic error answer (a whole head, no body).
fn dress(head: &[u8]) -> Option<Vec<u8>> {
    let rest = head.strip_prefix(b"HTTP/1.1 ")?;
    let (code, message) = error_for(rest.get(..3)?)?;
    if !head.ends_with(b"\r\n\r\n") || head.len() > 4096 {
        return None;
    }
    let text = std::str::from_utf8(head).ok()?;
    let lines: Vec<&str> = text.trim_end_matches("\r\n").split("\r\n").collect();
    if !lines.iter().any(|l| l.eq_ignore_ascii_case("content-length: 0")) {
        return None;
    }
    let body = serde_json::json!({"error": {"code": code.as_str(), "message": message}}).to_string();
    let mut out = String::with_capacity(head.len() + body.len() + 64);
    for line in lines {
        if line.eq_ignore_ascii_case("content-length: 0") {
            out.push_str(&format!("content-type: application/json\r\ncontent-length: {}\r\n", body.len()));
        } else {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("\r\n");
    out.push_str(&body);
    Some(out.into_bytes())
}

impl<S: AsyncWrite + Unpin> JsonErrors<S> {
    /// Writes what is pending; ready once it is all out.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let n = std::task::ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.pending.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for JsonErrors<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for JsonErrors<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        std::task::ready!(self.drain(cx))?;
        if let Some(dressed) = dress(buf) {
            self.pending = dressed;
            // The caller's bytes are taken whole; the dressed answer goes out in their place.
            let _ = self.drain(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn automatic_error_heads_get_the_json_body_and_nothing_else_changes() {
        let head = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Sat, 05 Dec 2026 22:00:00 GMT\r\n\r\n";
        let dressed = String::from_utf8(dress(head).unwrap()).unwrap();
        let (top, body) = dressed.split_once("\r\n\r\n").unwrap();
        assert!(top.starts_with("HTTP/1.1 431 "));
        assert!(top.contains("content-type: application/json") && top.contains("date: Sat"));
        assert!(top.contains(&format!("content-length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["code"], "headers_too_large");
        let uri = dress(b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n\r\n").unwrap();
        assert!(String::from_utf8(uri).unwrap().contains("uri_too_long"));
        // Tutti's own answers have a body; a 200 is never touched.
        assert!(dress(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 57\r\n\r\n").is_none());
        assert!(dress(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(dress(b"HTTP/1.1 431 X\r\ncontent-length: 0\r\n\r\n{}").is_none());
    }
}
