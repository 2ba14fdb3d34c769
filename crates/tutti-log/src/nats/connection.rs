//! One connection to a NATS server: the handshake, a reader thread that routes what arrives, and blocking
//! calls to publish and to ask.
//!
//! Answers come back on one wildcard inbox subscription (`_INBOX.<random>.*`); the last token of the subject
//! says which call is waiting for it. The reader thread also keeps the connection honest: when nothing has
//! arrived for a while it sends `PING`, and a second quiet spell without the `PONG` closes the connection.
//!
//! A connection that fails stays failed: every waiting and later call gets [`NatsError::Lost`] with the reason,
//! and its owner connects again. Reconnection is the owner's choice because only the owner knows what an
//! unanswered publish means for it (the event log, say, does not acknowledge it and lets the client retry).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};

use super::wire::{self, Message, Parser, ServerOp};
use super::{NatsError, Options, Server};

/// Quiet time after which the reader sends `PING`; twice this without an answer closes the connection.
const KEEPALIVE: Duration = Duration::from_secs(5);

/// What the server said about itself in `INFO`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct ServerInfo {
    pub server_id: String,
    pub version: String,
    pub max_payload: usize,
    pub headers: bool,
    pub jetstream: bool,
    pub tls_required: bool,
    pub auth_required: bool,
}

/// Where the reader sends messages: answers by inbox token, subscriptions by sid.
#[derive(Default)]
struct Routes {
    answers: HashMap<u64, mpsc::Sender<Message>>,
    subscriptions: HashMap<u64, mpsc::Sender<Message>>,
    /// Why the connection ended, once it has.
    closed: Option<String>,
    /// `PONG`s received, for [`Connection::flush`].
    pongs: u64,
}

struct Shared {
    routes: Mutex<Routes>,
    pong: Condvar,
    /// The socket, for writing; the reader thread reads a clone of it.
    writer: Mutex<TcpStream>,
    inbox: String,
    info: ServerInfo,
    address: String,
}

impl Shared {
    fn close(&self, reason: String) {
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        if routes.closed.is_none() {
            tracing::warn!(server = %self.address, %reason, "the connection to NATS ended");
            routes.closed = Some(reason);
        }
        // Dropping the senders wakes every waiting call.
        routes.answers.clear();
        routes.subscriptions.clear();
        drop(routes);
        self.pong.notify_all();
        if let Ok(socket) = self.writer.lock() {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }

    fn lost(&self) -> NatsError {
        let routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        NatsError::Lost(routes.closed.clone().unwrap_or_else(|| "closed".into()))
    }

    fn write(&self, bytes: &[u8]) -> Result<(), NatsError> {
        if self.routes.lock().unwrap_or_else(|e| e.into_inner()).closed.is_some() {
            return Err(self.lost());
        }
        let result = self.writer.lock().unwrap_or_else(|e| e.into_inner()).write_all(bytes);
        result.map_err(|e| {
            self.close(format!("writing failed: {e}"));
            self.lost()
        })
    }
}

/// A live connection. Dropping it closes the socket and ends its reader thread.
pub struct Connection {
    shared: Arc<Shared>,
    tokens: AtomicU64,
    sids: AtomicU64,
}

/// The sid of the inbox subscription every answer arrives on.
const INBOX_SID: u64 = 1;

impl Connection {
    /// Connects to the first of `options.servers` that answers, and completes the handshake.
    pub fn connect(options: &Options) -> Result<Connection, NatsError> {
        let mut reasons = Vec::new();
        for server in &options.servers {
            match Connection::connect_one(server, options) {
                Ok(connection) => return Ok(connection),
                Err(NatsError::Connect(why)) => reasons.push(format!("{}: {why}", server.address())),
                Err(e) => reasons.push(format!("{}: {e}", server.address())),
            }
        }
        Err(NatsError::Connect(reasons.join("; ")))
    }

    fn connect_one(server: &Server, options: &Options) -> Result<Connection, NatsError> {
        let io = |e: std::io::Error| NatsError::Connect(e.to_string());
        let address = server.address();
        let mut last = None;
        let mut socket = None;
        for addr in address.to_socket_addrs().map_err(io)? {
            match TcpStream::connect_timeout(&addr, options.connect_timeout) {
                Ok(s) => {
                    socket = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let Some(mut socket) = socket else {
            return Err(NatsError::Connect(last.map_or_else(|| "no address".into(), |e| e.to_string())));
        };
        socket.set_nodelay(true).map_err(io)?;
        socket.set_read_timeout(Some(options.connect_timeout)).map_err(io)?;
        let mut parser = Parser::new();
        let info = match read_op(&mut socket, &mut parser)? {
            ServerOp::Info(json) => serde_json::from_slice::<ServerInfo>(&json)
                .map_err(|e| NatsError::Protocol(format!("the server's INFO: {e}")))?,
            other => return Err(NatsError::Protocol(format!("expected INFO, got {other:?}"))),
        };
        if info.tls_required {
            return Err(NatsError::Connect(
                "the server requires TLS, which this client does not speak; reach it through a TLS-terminating \
                 proxy or a private network"
                    .into(),
            ));
        }
        if !info.headers {
            return Err(NatsError::Connect(format!(
                "NATS {} does not support headers (2.2 or later does)",
                info.version
            )));
        }
        let mut connect = serde_json::json!({
            "verbose": false, "pedantic": false, "tls_required": false, "name": options.name,
            "lang": "rust-tutti", "version": env!("CARGO_PKG_VERSION"), "protocol": 1,
            "headers": true, "no_responders": true, "echo": true,
        });
        if let Some(user) = &server.user {
            connect["user"] = user.clone().into();
            connect["pass"] = server.password.clone().unwrap_or_default().into();
        }
        if let Some(token) = &server.token {
            connect["auth_token"] = token.clone().into();
        }
        let mut inbox_id = [0u8; 12];
        getrandom::fill(&mut inbox_id).map_err(|e| NatsError::Connect(e.to_string()))?;
        let inbox = format!("_INBOX.{}", inbox_id.iter().map(|b| format!("{b:02x}")).collect::<String>());
        let hello = format!("CONNECT {connect}\r\nSUB {inbox}.* {INBOX_SID}\r\nPING\r\n");
        socket.write_all(hello.as_bytes()).map_err(io)?;
        loop {
            match read_op(&mut socket, &mut parser)? {
                ServerOp::Pong => break,
                ServerOp::Err(reason) => return Err(NatsError::Server(reason)),
                ServerOp::Ping => socket.write_all(b"PONG\r\n").map_err(io)?,
                _ => {}
            }
        }
        socket.set_read_timeout(Some(KEEPALIVE)).map_err(io)?;
        let reader = socket.try_clone().map_err(io)?;
        let shared = Arc::new(Shared {
            routes: Mutex::default(),
            pong: Condvar::new(),
            writer: Mutex::new(socket),
            inbox,
            info,
            address: address.clone(),
        });
        let for_reader = shared.clone();
        std::thread::Builder::new()
            .name("tutti-nats".into())
            .spawn(move || read_loop(for_reader, reader, parser))
            .map_err(io)?;
        tracing::info!(server = %address, version = %shared.info.version, "connected to NATS");
        Ok(Connection { shared, tokens: AtomicU64::new(0), sids: AtomicU64::new(INBOX_SID) })
    }

    pub fn info(&self) -> &ServerInfo {
        &self.shared.info
    }

    /// Why the connection ended, or `None` while it is up.
    pub fn closed(&self) -> Option<String> {
        self.shared.routes.lock().unwrap_or_else(|e| e.into_inner()).closed.clone()
    }

    /// Publishes without waiting for anything.
    pub fn publish(&self, subject: &str, headers: &[(&str, &str)], payload: &[u8]) -> Result<(), NatsError> {
        let mut out = Vec::with_capacity(payload.len() + 64);
        self.check(subject, payload)?;
        if let Some((name, _)) = headers.iter().find(|(n, v)| !wire::valid_header(n, v)) {
            return Err(NatsError::Protocol(format!("the header {name:?} cannot be sent as it is")));
        }
        wire::write_pub(&mut out, subject, None, headers, payload);
        self.shared.write(&out)
    }

    fn check(&self, subject: &str, payload: &[u8]) -> Result<(), NatsError> {
        if !wire::valid_subject(subject) {
            return Err(NatsError::Protocol(format!("{subject:?} is not a subject")));
        }
        let max = self.shared.info.max_payload;
        if max > 0 && payload.len() > max {
            return Err(NatsError::TooLarge { size: payload.len(), max });
        }
        Ok(())
    }

    /// Sends requests in one write and waits for one answer to each, until `timeout` after the write. The
    /// answers are in the order of the requests; one not answered in time is [`NatsError::Timeout`].
    pub fn request_all(
        &self,
        requests: &[Request<'_>],
        timeout: Duration,
    ) -> Result<Vec<Result<Message, NatsError>>, NatsError> {
        let answers = self.exchange(requests, |_| true, timeout)?;
        Ok(answers.into_iter().map(|a| a.unwrap_or(Err(NatsError::Timeout(timeout)))).collect())
    }

    /// Sends messages in one write, in order: those `wants_answer` picks as requests (each with its own reply
    /// subject), the rest as plain publishes. Waits until every request is answered or `timeout` has passed
    /// since the write. One entry per message: `None` for a plain publish.
    pub fn exchange(
        &self,
        messages: &[Request<'_>],
        wants_answer: impl Fn(usize) -> bool,
        timeout: Duration,
    ) -> Result<Vec<Option<Result<Message, NatsError>>>, NatsError> {
        let (tx, rx) = mpsc::channel();
        let first = self.tokens.fetch_add(messages.len() as u64, Ordering::Relaxed) + 1;
        let tokens = first..first + messages.len() as u64;
        let mut out = Vec::new();
        let mut missing = 0;
        for (i, message) in messages.iter().enumerate() {
            self.check(message.subject, message.payload)?;
            if let Some((name, _)) = message.headers.iter().find(|(n, v)| !wire::valid_header(n, v)) {
                return Err(NatsError::Protocol(format!("the header {name:?} cannot be sent as it is")));
            }
            let reply = wants_answer(i).then(|| format!("{}.{}", self.shared.inbox, first + i as u64));
            missing += usize::from(reply.is_some());
            wire::write_pub(&mut out, message.subject, reply.as_deref(), message.headers, message.payload);
        }
        self.register(tokens.clone(), &tx)?;
        drop(tx);
        let written = self.shared.write(&out);
        let mut answers: Vec<Option<Message>> = vec![None; messages.len()];
        if written.is_ok() {
            let deadline = Instant::now() + timeout;
            while missing > 0 {
                let left = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok(message) => {
                        let Some(i) = self.token_of(&message).and_then(|t| t.checked_sub(first)) else { continue };
                        if let Some(slot) = answers.get_mut(i as usize).filter(|slot| slot.is_none()) {
                            *slot = Some(message);
                            missing -= 1;
                        }
                    }
                    Err(_) => break,
                }
            }
        }
        self.unregister(tokens);
        written?;
        if missing > 0 && self.closed().is_some() {
            return Err(self.shared.lost());
        }
        Ok(answers
            .into_iter()
            .enumerate()
            .map(|(i, answer)| wants_answer(i).then(|| answer.ok_or(NatsError::Timeout(timeout))))
            .collect())
    }

    /// One request, one answer.
    pub fn request(&self, request: Request<'_>, timeout: Duration) -> Result<Message, NatsError> {
        self.request_all(&[request], timeout)?.pop().unwrap_or(Err(NatsError::Timeout(timeout)))
    }

    /// Sends one request and hands each answer to `each` until it returns `false`, or no answer comes for
    /// `quiet` (which ends the call without an error: the server had nothing more to say).
    pub fn request_many(
        &self,
        request: Request<'_>,
        quiet: Duration,
        mut each: impl FnMut(Message) -> bool,
    ) -> Result<(), NatsError> {
        self.check(request.subject, request.payload)?;
        let (tx, rx) = mpsc::channel();
        let token = self.tokens.fetch_add(1, Ordering::Relaxed) + 1;
        self.register(token..token + 1, &tx)?;
        drop(tx);
        let mut out = Vec::new();
        let reply = format!("{}.{token}", self.shared.inbox);
        wire::write_pub(&mut out, request.subject, Some(&reply), request.headers, request.payload);
        let result = self.shared.write(&out).and_then(|()| {
            loop {
                match rx.recv_timeout(quiet) {
                    Ok(message) => {
                        if !each(message) {
                            break Ok(());
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => break Ok(()),
                    Err(mpsc::RecvTimeoutError::Disconnected) => break Err(self.shared.lost()),
                }
            }
        });
        self.unregister(token..token + 1);
        result
    }

    /// Subscribes to a subject; messages arrive on the receiver until [`Connection::unsubscribe`] or the end
    /// of the connection.
    pub fn subscribe(&self, subject: &str) -> Result<(u64, mpsc::Receiver<Message>), NatsError> {
        if !wire::valid_subject(subject) {
            return Err(NatsError::Protocol(format!("{subject:?} is not a subject")));
        }
        let sid = self.sids.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = mpsc::channel();
        {
            let mut routes = self.shared.routes.lock().unwrap_or_else(|e| e.into_inner());
            if routes.closed.is_some() {
                drop(routes);
                return Err(self.shared.lost());
            }
            routes.subscriptions.insert(sid, tx);
        }
        self.shared.write(format!("SUB {subject} {sid}\r\n").as_bytes())?;
        Ok((sid, rx))
    }

    pub fn unsubscribe(&self, sid: u64) -> Result<(), NatsError> {
        self.shared.routes.lock().unwrap_or_else(|e| e.into_inner()).subscriptions.remove(&sid);
        self.shared.write(format!("UNSUB {sid}\r\n").as_bytes())
    }

    /// Waits until the server has read everything written before this call (a `PING` answered).
    pub fn flush(&self, timeout: Duration) -> Result<(), NatsError> {
        let seen = self.shared.routes.lock().unwrap_or_else(|e| e.into_inner()).pongs;
        self.shared.write(b"PING\r\n")?;
        let routes = self.shared.routes.lock().unwrap_or_else(|e| e.into_inner());
        let (routes, wait) = self
            .shared
            .pong
            .wait_timeout_while(routes, timeout, |r| r.pongs == seen && r.closed.is_none())
            .unwrap_or_else(|e| e.into_inner());
        if routes.closed.is_some() {
            drop(routes);
            return Err(self.shared.lost());
        }
        if wait.timed_out() { Err(NatsError::Timeout(timeout)) } else { Ok(()) }
    }

    fn register(&self, tokens: std::ops::Range<u64>, tx: &mpsc::Sender<Message>) -> Result<(), NatsError> {
        let mut routes = self.shared.routes.lock().unwrap_or_else(|e| e.into_inner());
        if routes.closed.is_some() {
            drop(routes);
            return Err(self.shared.lost());
        }
        for token in tokens {
            routes.answers.insert(token, tx.clone());
        }
        Ok(())
    }

    fn unregister(&self, tokens: std::ops::Range<u64>) {
        let mut routes = self.shared.routes.lock().unwrap_or_else(|e| e.into_inner());
        for token in tokens {
            routes.answers.remove(&token);
        }
    }

    fn token_of(&self, message: &Message) -> Option<u64> {
        inbox_token(&self.shared.inbox, &message.subject)
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.shared.close("closed by its owner".into());
    }
}

/// A request to send: a subject, headers and a payload.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub subject: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub payload: &'a [u8],
}

impl<'a> Request<'a> {
    pub fn new(subject: &'a str, payload: &'a [u8]) -> Request<'a> {
        Request { subject, headers: &[], payload }
    }
}

fn inbox_token(inbox: &str, subject: &str) -> Option<u64> {
    subject.strip_prefix(inbox)?.strip_prefix('.')?.parse().ok()
}

/// Reads until one whole operation is parsed (during the handshake, before the reader thread exists).
fn read_op(socket: &mut TcpStream, parser: &mut Parser) -> Result<ServerOp, NatsError> {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(op) = parser.next_op().map_err(|e| NatsError::Protocol(e.0))? {
            return Ok(op);
        }
        let n = socket.read(&mut buf).map_err(|e| NatsError::Connect(e.to_string()))?;
        if n == 0 {
            return Err(NatsError::Connect("the server closed the connection during the handshake".into()));
        }
        parser.feed(&buf[..n]);
    }
}

fn read_loop(shared: Arc<Shared>, mut socket: TcpStream, mut parser: Parser) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut pinged = false;
    let mut last_error = String::new();
    let reason = loop {
        loop {
            match parser.next_op() {
                Ok(Some(op)) => {
                    if let Some(reason) = handle(&shared, op, &mut last_error) {
                        shared.close(reason);
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    shared.close(e.to_string());
                    return;
                }
            }
        }
        match socket.read(&mut buf) {
            Ok(0) if last_error.is_empty() => break "the server closed the connection".to_owned(),
            Ok(0) => break format!("the server closed the connection: {last_error}"),
            Ok(n) => {
                pinged = false;
                parser.feed(&buf[..n]);
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                if pinged {
                    break format!("no answer to PING in {} s", 2 * KEEPALIVE.as_secs());
                }
                pinged = true;
                if shared.write(b"PING\r\n").is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => break format!("reading failed: {e}"),
        }
    };
    shared.close(reason);
}

/// Handles one operation; `Some(reason)` ends the connection.
fn handle(shared: &Shared, op: ServerOp, last_error: &mut String) -> Option<String> {
    match op {
        ServerOp::Msg(message) => {
            let mut routes = shared.routes.lock().unwrap_or_else(|e| e.into_inner());
            if message.sid == INBOX_SID {
                if let Some(token) = inbox_token(&shared.inbox, &message.subject)
                    && let Some(tx) = routes.answers.get(&token)
                    && tx.send(message).is_err()
                {
                    routes.answers.remove(&token);
                }
            } else if let Some(tx) = routes.subscriptions.get(&message.sid) {
                let sid = message.sid;
                if tx.send(message).is_err() {
                    routes.subscriptions.remove(&sid);
                }
            }
        }
        ServerOp::Ping => {
            if shared.write(b"PONG\r\n").is_err() {
                return Some("writing PONG failed".into());
            }
        }
        ServerOp::Pong => {
            shared.routes.lock().unwrap_or_else(|e| e.into_inner()).pongs += 1;
            shared.pong.notify_all();
        }
        ServerOp::Err(reason) => {
            // Most errors are followed by the server closing the connection; the reason is kept for that moment.
            tracing::warn!(server = %shared.address, %reason, "NATS reported an error");
            *last_error = reason;
        }
        ServerOp::Info(_) | ServerOp::Ok => {}
    }
    None
}
