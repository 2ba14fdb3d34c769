//! Clients that open connections and send slowly (slowloris, slow bodies) cannot hold the server: headers must
//! arrive within the header read timeout or the connection is closed; a body must arrive within the body read
//! timeout or the request gets 408 with a JSON error. Meanwhile other clients are served.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::Server;
use serde_json::json;

fn connect(server: &Server) -> TcpStream {
    let addr = server.url.trim_start_matches("http://");
    let stream = TcpStream::connect(addr).unwrap();
    // Only a guard against a hanging test: the server must act long before this.
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    stream
}

/// Reads until the server closes the connection; panics if it does not.
fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return seen,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return seen,
            Err(e) => panic!("the server kept the connection open: {e}"),
        }
    }
}

#[test]
fn slow_headers_and_slow_bodies_are_cut_off_and_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(
        dir.path(),
        &[("TUTTI_SERVER__HEADER_READ_TIMEOUT", "1s"), ("TUTTI_SERVER__BODY_READ_TIMEOUT", "1s")],
    );

    // Headers that never end.
    let mut slowloris = connect(&server);
    slowloris.write_all(b"POST /v1/track HTTP/1.1\r\nHost: tutti\r\nX-Padding: a").unwrap();

    // Complete headers, then part of the body, then nothing.
    let mut slow_body = connect(&server);
    let body = json!({"userId": "u1", "event": "Trickled"}).to_string();
    let head = format!(
        "POST /v1/track HTTP/1.1\r\nHost: tutti\r\nAuthorization: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        Server::basic_auth(),
        body.len()
    );
    slow_body.write_all(head.as_bytes()).unwrap();
    slow_body.write_all(&body.as_bytes()[..5]).unwrap();

    // Others are served meanwhile.
    let (status, answer) = server.track("/v1/track", &json!({"userId": "u2", "event": "Prompt"}));
    assert_eq!(status, 200, "{answer}");

    let cut = read_until_closed(&mut slowloris);
    assert!(!String::from_utf8_lossy(&cut).contains("200 OK"), "{}", String::from_utf8_lossy(&cut));

    let answer = String::from_utf8(read_until_closed(&mut slow_body)).unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""code":"request_timeout""#), "{answer}");

    // Nothing of the trickled event was stored; the prompt one was.
    let events = server.all_events();
    let names: Vec<&str> = events.iter().filter_map(|e| e["event"]["event"].as_str()).collect();
    assert_eq!(names, ["Prompt"], "{events:?}");
}
