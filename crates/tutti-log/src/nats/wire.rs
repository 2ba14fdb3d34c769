//! The NATS client protocol on the wire: reading what the server sends, writing what the client sends.
//!
//! Pure and incremental: [`Parser`] takes bytes as they arrive (any split, any size) and yields whole
//! operations, so a read timeout in the middle of a message loses nothing. The protocol is text control lines
//! ending in CRLF, some followed by a payload of a length given on the line (the "Client Protocol" page of the
//! NATS documentation); headers are an HTTP-like block that starts with `NATS/1.0` and an optional status.

/// The longest control line accepted. The server's own `max_control_line` defaults to 4 KB; an `INFO` that
/// lists many cluster URLs is the longest line a client receives.
pub const MAX_CONTROL_LINE: usize = 64 * 1024;

/// The largest payload accepted from the server, whatever its `INFO` claims: a guard against a corrupt length.
pub const MAX_PAYLOAD: usize = 64 * 1024 * 1024;

/// A message as delivered to a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub subject: String,
    pub sid: u64,
    pub reply: Option<String>,
    /// The status of a header block (`404` of "No Messages", `503` of "no responders"); `None` without one.
    pub status: Option<u16>,
    /// The words after the status, such as `No Messages`.
    pub description: String,
    pub headers: Vec<(String, String)>,
    pub payload: Vec<u8>,
}

impl Message {
    /// The first value of a header, its name matched without regard to case.
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

/// The first value of a header in a list, its name matched without regard to case (as NATS matches them).
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// One operation sent by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerOp {
    /// The server's description of itself (JSON).
    Info(Vec<u8>),
    Msg(Message),
    Ping,
    Pong,
    Ok,
    /// `-ERR` with the server's reason, quotes removed.
    Err(String),
}

/// The server sent something that is not the protocol: the connection cannot be trusted past it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("NATS protocol: {0}")]
pub struct ProtocolError(pub String);

/// Reads server operations out of a growing buffer.
#[derive(Debug, Default)]
pub struct Parser {
    buf: Vec<u8>,
    /// Where the next operation starts in `buf`.
    at: usize,
}

impl Parser {
    pub fn new() -> Parser {
        Parser::default()
    }

    /// Adds bytes as read from the socket.
    pub fn feed(&mut self, data: &[u8]) {
        // Drop what was consumed before growing, so the buffer stays the size of one message plus a read.
        if self.at > 0 && (self.at == self.buf.len() || self.at > 64 * 1024) {
            self.buf.drain(..self.at);
            self.at = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// The next whole operation, or `None` until more bytes arrive.
    pub fn next_op(&mut self) -> Result<Option<ServerOp>, ProtocolError> {
        let rest = &self.buf[self.at..];
        let Some(end) = memchr::memmem::find(rest, b"\r\n") else {
            if rest.len() > MAX_CONTROL_LINE {
                return Err(ProtocolError(format!("a control line longer than {MAX_CONTROL_LINE} bytes")));
            }
            return Ok(None);
        };
        if end > MAX_CONTROL_LINE {
            return Err(ProtocolError(format!("a control line longer than {MAX_CONTROL_LINE} bytes")));
        }
        let line =
            std::str::from_utf8(&rest[..end]).map_err(|_| ProtocolError("a control line that is not UTF-8".into()))?;
        let (verb, args) = line.split_once([' ', '\t']).unwrap_or((line, ""));
        let args = args.trim();
        let after_line = self.at + end + 2;
        let op = match verb.to_ascii_uppercase().as_str() {
            "PING" => ServerOp::Ping,
            "PONG" => ServerOp::Pong,
            "+OK" => ServerOp::Ok,
            "-ERR" => ServerOp::Err(args.trim_matches('\'').to_owned()),
            "INFO" => ServerOp::Info(args.as_bytes().to_vec()),
            "MSG" | "HMSG" => {
                let headed = verb.eq_ignore_ascii_case("HMSG");
                let head = MsgLine::read(args, headed)?;
                let payload_end = after_line + head.total;
                if self.buf.len() < payload_end + 2 {
                    return Ok(None);
                }
                if &self.buf[payload_end..payload_end + 2] != b"\r\n" {
                    return Err(ProtocolError("a payload not followed by CRLF".into()));
                }
                let body = &self.buf[after_line..payload_end];
                let (status, description, headers) =
                    if headed { read_headers(&body[..head.header])? } else { (None, String::new(), Vec::new()) };
                let message = Message {
                    subject: head.subject,
                    sid: head.sid,
                    reply: head.reply,
                    status,
                    description,
                    headers,
                    payload: body[head.header..].to_vec(),
                };
                self.at = payload_end + 2;
                return Ok(Some(ServerOp::Msg(message)));
            }
            _ => return Err(ProtocolError(format!("unknown operation {:?}", truncate(verb)))),
        };
        self.at = after_line;
        Ok(Some(op))
    }
}

fn truncate(text: &str) -> &str {
    let mut end = text.len().min(32);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The arguments of a `MSG` or `HMSG` line.
struct MsgLine {
    subject: String,
    sid: u64,
    reply: Option<String>,
    /// Bytes of headers at the start of the payload (0 for `MSG`).
    header: usize,
    /// Bytes of headers and payload together.
    total: usize,
}

impl MsgLine {
    fn read(args: &str, headed: bool) -> Result<MsgLine, ProtocolError> {
        let parts: Vec<&str> = args.split_ascii_whitespace().collect();
        let bad = || ProtocolError(format!("a malformed message line {:?}", truncate(args)));
        let number = |text: &str| text.parse::<usize>().map_err(|_| bad());
        let (subject, sid, reply, header, total) = match (headed, parts.as_slice()) {
            (false, [subject, sid, size]) => (subject, sid, None, 0, number(size)?),
            (false, [subject, sid, reply, size]) => (subject, sid, Some(reply), 0, number(size)?),
            (true, [subject, sid, header, total]) => (subject, sid, None, number(header)?, number(total)?),
            (true, [subject, sid, reply, header, total]) => {
                (subject, sid, Some(reply), number(header)?, number(total)?)
            }
            _ => return Err(bad()),
        };
        if header > total || total > MAX_PAYLOAD {
            return Err(bad());
        }
        Ok(MsgLine {
            subject: (*subject).to_owned(),
            sid: sid.parse().map_err(|_| bad())?,
            reply: reply.map(|r| (*r).to_owned()),
            header,
            total,
        })
    }
}

type Headers = (Option<u16>, String, Vec<(String, String)>);

/// Reads a header block: `NATS/1.0[ status[ description]]`, then `Name: value` lines, then an empty line.
fn read_headers(block: &[u8]) -> Result<Headers, ProtocolError> {
    let text = std::str::from_utf8(block).map_err(|_| ProtocolError("headers that are not UTF-8".into()))?;
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let Some(rest) = first.strip_prefix("NATS/1.0") else {
        return Err(ProtocolError(format!("a header block that starts {:?}", truncate(first))));
    };
    let rest = rest.trim();
    let (status, description) = if rest.is_empty() {
        (None, String::new())
    } else {
        let (code, words) = rest.split_once(' ').unwrap_or((rest, ""));
        let code = code.parse::<u16>().map_err(|_| ProtocolError(format!("a header status {:?}", truncate(code))))?;
        (Some(code), words.trim().to_owned())
    };
    let mut headers = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            return Err(ProtocolError(format!("a header line {:?}", truncate(line))));
        };
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    Ok((status, description, headers))
}

/// Whether a subject can be written on a control line: tokens of visible characters separated by dots.
pub fn valid_subject(subject: &str) -> bool {
    !subject.is_empty()
        && subject.len() <= 1024
        && subject.split('.').all(|token| !token.is_empty())
        && subject.bytes().all(|b| b.is_ascii_graphic())
}

/// Whether a header can be written into a header block: a name of visible characters without `:`, and a value
/// without CR or LF (which would end the header early and let the rest be read as other headers).
pub fn valid_header(name: &str, value: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':') && !value.contains(['\r', '\n'])
}

/// Appends a `PUB` (no headers) or `HPUB` operation.
pub fn write_pub(out: &mut Vec<u8>, subject: &str, reply: Option<&str>, headers: &[(&str, &str)], payload: &[u8]) {
    use std::io::Write;
    if headers.is_empty() {
        out.extend_from_slice(b"PUB ");
        out.extend_from_slice(subject.as_bytes());
        if let Some(reply) = reply {
            out.push(b' ');
            out.extend_from_slice(reply.as_bytes());
        }
        let _ = write!(out, " {}\r\n", payload.len());
    } else {
        let mut block = b"NATS/1.0\r\n".to_vec();
        for (name, value) in headers {
            let _ = write!(block, "{name}: {value}\r\n");
        }
        block.extend_from_slice(b"\r\n");
        out.extend_from_slice(b"HPUB ");
        out.extend_from_slice(subject.as_bytes());
        if let Some(reply) = reply {
            out.push(b' ');
            out.extend_from_slice(reply.as_bytes());
        }
        let _ = write!(out, " {} {}\r\n", block.len(), block.len() + payload.len());
        out.extend_from_slice(&block);
    }
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(parser: &mut Parser) -> Vec<ServerOp> {
        std::iter::from_fn(|| parser.next_op().unwrap()).collect()
    }

    #[test]
    fn operations_split_anywhere_come_out_whole() {
        let wire: &[u8] = b"INFO {\"max_payload\":1048576}\r\nPING\r\nMSG a.b 7 _INBOX.x 5\r\nhello\r\n\
            HMSG a.c 8 20 22\r\nNATS/1.0\r\nK: v 1\r\n\r\nhi\r\n+OK\r\n-ERR 'Authorization Violation'\r\n\
            HMSG _INBOX.y 1 28 28\r\nNATS/1.0 404 No Messages\r\n\r\n\r\n";
        let expected = {
            let mut p = Parser::new();
            p.feed(wire);
            all(&mut p)
        };
        assert_eq!(expected.len(), 7);
        assert_eq!(expected[0], ServerOp::Info(b"{\"max_payload\":1048576}".to_vec()));
        assert_eq!(expected[1], ServerOp::Ping);
        let ServerOp::Msg(m) = &expected[2] else { panic!("{:?}", expected[2]) };
        assert_eq!(
            (m.subject.as_str(), m.sid, m.reply.as_deref(), &m.payload[..]),
            ("a.b", 7, Some("_INBOX.x"), &b"hello"[..])
        );
        let ServerOp::Msg(m) = &expected[3] else { panic!("{:?}", expected[3]) };
        assert_eq!((m.header("k"), &m.payload[..], m.status), (Some("v 1"), &b"hi"[..], None));
        assert_eq!(expected[5], ServerOp::Err("Authorization Violation".into()));
        let ServerOp::Msg(m) = &expected[6] else { panic!("{:?}", expected[6]) };
        assert_eq!((m.status, m.description.as_str(), m.payload.len()), (Some(404), "No Messages", 0));
        // Byte by byte, and in every two-piece split, the same operations come out.
        let mut p = Parser::new();
        let mut got = Vec::new();
        for b in wire {
            p.feed(std::slice::from_ref(b));
            got.extend(all(&mut p));
        }
        assert_eq!(got, expected);
        for cut in 0..wire.len() {
            let mut p = Parser::new();
            p.feed(&wire[..cut]);
            let mut got = all(&mut p);
            p.feed(&wire[cut..]);
            got.extend(all(&mut p));
            assert_eq!(got, expected, "split at {cut}");
        }
    }

    #[test]
    fn what_is_not_the_protocol_is_refused() {
        for bad in [
            &b"BOGUS x\r\n"[..],
            b"MSG a 1 notanumber\r\n",
            b"MSG a 1 3\r\nabcXY",
            b"HMSG a 1 9 3\r\n",
            b"HMSG a 1 5 5\r\nHTTP/\r\n",
            b"MSG a 1 999999999999\r\n",
        ] {
            let mut p = Parser::new();
            p.feed(bad);
            assert!(p.next_op().is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let mut p = Parser::new();
        p.feed(&vec![b'A'; MAX_CONTROL_LINE + 1]);
        assert!(p.next_op().is_err());
    }

    #[test]
    fn published_operations_read_back() {
        let mut out = Vec::new();
        write_pub(&mut out, "s.1", Some("_INBOX.r"), &[], b"abc");
        write_pub(&mut out, "s.2", None, &[("Nats-Msg-Id", "m-1")], b"xyz");
        assert_eq!(
            String::from_utf8_lossy(&out),
            "PUB s.1 _INBOX.r 3\r\nabc\r\nHPUB s.2 30 33\r\nNATS/1.0\r\nNats-Msg-Id: m-1\r\n\r\nxyz\r\n"
        );
        // The server sends the same shapes back as MSG and HMSG.
        let echoed = String::from_utf8_lossy(&out).replace("HPUB s.2", "HMSG s.2 9").replace("PUB s.1", "MSG s.1 4");
        let mut p = Parser::new();
        p.feed(echoed.as_bytes());
        let ops = all(&mut p);
        let ServerOp::Msg(m) = &ops[1] else { panic!() };
        assert_eq!((m.header("nats-msg-id"), &m.payload[..]), (Some("m-1"), &b"xyz"[..]));
        assert!(
            valid_subject("tutti.events.3") && !valid_subject("a b") && !valid_subject("a..b") && !valid_subject("")
        );
    }
}
