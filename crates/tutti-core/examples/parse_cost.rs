//! Prints what parsing and normalising one typical event costs: `cargo run --release -p tutti-core --example parse_cost`.

use std::time::Instant;

use tutti_core::{BatchDefaults, Event};

fn main() {
    let text = r#"{"type":"track","event":"Product Viewed","userId":"user-3-17","messageId":"m-3-1234-17","timestamp":"2026-11-22T10:00:00.000Z","properties":{"product_id":"sku-17","name":"Áo dài lụa tơ tằm","category":"thời trang","price":1250000,"currency":"VND","url":"https://shop.example.vn/p/sku-17","note":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"},"context":{"locale":"vi-VN","timezone":"Asia/Ho_Chi_Minh","library":{"name":"load","version":"1"}}}"#;
    let defaults = BatchDefaults::default();
    let rounds = 200_000;
    let started = Instant::now();
    let mut bytes = 0;
    for _ in 0..rounds {
        let event = Event::parse(text, None, &defaults, 1_800_000_000_000, || "m".into()).expect("valid");
        bytes += event.body.len();
    }
    let intake = started.elapsed();
    let body = Event::parse(text, None, &defaults, 1_800_000_000_000, || "m".into()).expect("valid").body;
    let started = Instant::now();
    for _ in 0..rounds {
        let event = Event::from_stored(body.clone()).expect("valid");
        bytes += event.body.len();
    }
    let replay = started.elapsed();
    println!(
        "event of {} bytes: parse and normalise {:.2} µs, read back from storage {:.2} µs ({bytes} bytes)",
        text.len(),
        intake.as_secs_f64() * 1e6 / rounds as f64,
        replay.as_secs_f64() * 1e6 / rounds as f64
    );
}
