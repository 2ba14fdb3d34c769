//! `cargo xtask ai`: the AI layer's local work timed (the review gate, and generate + review).

use std::time::Instant;

#[derive(clap::Args)]
pub(crate) struct AiArgs {
    /// Reviews timed (the labelled set's messages, over and over).
    #[arg(long, default_value_t = 200_000)]
    pub(crate) reviews: usize,
}

/// The review gate over the labelled set's messages (three languages, every built-in pack and a brand pack),
/// on one thread, then on every core.
pub(crate) fn ai(args: AiArgs) -> anyhow::Result<()> {
    use tutti_ai::review::{Gate, read_labelled};
    let set = read_labelled(include_str!("../../crates/tutti-ai/data/review/labelled.jsonl"))
        .map_err(|e| anyhow::anyhow!(e))?;
    let brand = include_str!("../../crates/tutti-ai/data/review/acme.yaml");
    let compiled = Instant::now();
    let gate = Gate::from_sources(&[("acme.yaml".into(), brand.into())])?;
    let compile_ms = compiled.elapsed().as_secs_f64() * 1000.0;
    let mut cases = Vec::new();
    for m in &set {
        cases.push((m.draft(), m.recipient(), gate.select(&m.packs)?));
    }
    let chars: usize = cases.iter().map(|(d, _, _)| d.fields.iter().map(|f| f.1.chars().count()).sum::<usize>()).sum();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("# Tutti AI benchmark");
    println!(
        "machine: {cores} cores; review gate: {} packs compiled in {compile_ms:.1} ms; {} labelled messages, {:.0} characters on average, each with its own packs",
        gate.packs().len(),
        cases.len(),
        chars as f64 / cases.len() as f64
    );
    let run = |n: usize| {
        let mut failed = 0usize;
        for (draft, recipient, packs) in cases.iter().cycle().take(n) {
            failed += usize::from(!gate.review(draft, recipient, *packs).passed);
        }
        failed
    };
    let started = Instant::now();
    let failed = run(args.reviews);
    let one = args.reviews as f64 / started.elapsed().as_secs_f64();
    println!("review, one thread: {} reviews ({failed} failed) at {one:.0} reviews/s", args.reviews);
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..cores {
            s.spawn(|| run(args.reviews / cores));
        }
    });
    let every = (args.reviews / cores * cores) as f64 / started.elapsed().as_secs_f64();
    println!("review, {cores} threads: {every:.0} reviews/s");
    generate_bench(args.reviews / 5, cores)
}

/// The `generate` step's work with no model: the personalisation context, three variants from the local
/// provider, review of each until one passes (revising with the gate's feedback), over profiles in Vietnamese,
/// Chinese and English and triggers of every kind (a cart, an order, a complaint, a lapsed customer); a third
/// of the asks carry an offer that fails review, so a third of the messages are revised.
pub(crate) fn generate_bench(messages: usize, cores: usize) -> anyhow::Result<()> {
    use serde_json::json;
    use std::future::Future;
    use std::sync::Arc;
    use tutti_ai::generate::{self, Stats};
    use tutti_ai::provider::{Task, local::Local, route::Router};
    use tutti_ai::review::Gate;
    let now = 1_795_000_000_000i64;
    let day = 86_400_000i64;
    let people = [
        json!({"name": "Nguyễn Văn Minh", "gender": "male", "language": "vi", "email": "minh@example.vn"}),
        json!({"name": "Trần Thị Lan", "gender": "female", "language": "vi"}),
        json!({"name": "王伟", "gender": "male", "language": "zh"}),
        json!({"name": "李娜", "gender": "female", "language": "zh", "last_order_at": tutti_core::time::format_timestamp(now - 40 * day)}),
        json!({"first_name": "Emma", "language": "en"}),
        json!({"name": "Sam Lee", "language": "en", "last_order_at": tutti_core::time::format_timestamp(now - 31 * day)}),
    ];
    let events = [
        json!({"type": "track", "event": "Cart Abandoned", "properties": {"item": "Áo dài lụa"}}),
        json!({"type": "track", "event": "Order Completed", "properties": {"item": "茶具", "order_id": "o-1"}}),
        json!({"type": "track", "event": "Ticket Created", "properties": {"text": "Đơn hàng bị hỏng, tôi muốn hoàn tiền"}}),
        json!({"type": "track", "event": "Product Viewed", "properties": {"product": "linen shirt"}}),
    ];
    let asks = [
        json!({"prompt": "x", "channel": "email", "variants": 3, "brief": {"offer": "10%", "link": "https://shop.example/c"}}),
        json!({"prompt": "x", "channel": "sms", "variants": 2}),
    ];
    // An offer no brand may send (an unproven superlative, in the person's language): the copy that carries it
    // fails review and is revised (the sentence dropped), so revision is part of what is measured.
    let boast = |p: &serde_json::Value| match p["language"].as_str() {
        Some("vi") => "giá rẻ nhất thị trường",
        Some("zh") => "全网最低价",
        _ => "the lowest price ever",
    };
    let mut inputs = Vec::new();
    for (i, p) in people.iter().enumerate() {
        for (j, e) in events.iter().enumerate() {
            let failing = json!({"prompt": "x", "channel": "email", "variants": 1, "brief": {"offer": boast(p)}});
            for (k, a) in asks.iter().chain([&failing]).enumerate() {
                inputs.push(json!({
                    "request": a, "event": e,
                    "profile": {"id": format!("{i}{j}{k}"), "traits": p, "identities": [{"type": "user_id", "value": format!("u-{i}")}],
                                "event_counts": {"Product Viewed": 3 + i, "Order Completed": j}, "last_seen": tutti_core::time::format_timestamp(now - (i as i64) * 9 * day)},
                    "run": {"id": "r", "flow": "bench", "version": 1, "step": "copy", "steps": {}, "last_event": null},
                }));
            }
        }
    }
    let router = Router::local_only(Local::new().with(Task::Generate, Arc::new(generate::local_skill)));
    let gate = Gate::builtin();
    let stats = Stats::default();
    let run = |n: usize| {
        for input in inputs.iter().cycle().take(n) {
            let mut f = std::pin::pin!(generate::generate(input, &router, &gate, &stats, now));
            match f.as_mut().poll(&mut std::task::Context::from_waker(std::task::Waker::noop())) {
                std::task::Poll::Ready(r) => {
                    r.expect("the local provider generates");
                }
                std::task::Poll::Pending => unreachable!("the local provider answers at once"),
            }
        }
    };
    let started = Instant::now();
    run(messages);
    let one = messages as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..cores {
            s.spawn(|| run(messages / cores));
        }
    });
    let every = (messages / cores * cores) as f64 / started.elapsed().as_secs_f64();
    let c = stats.snapshot()["bench"];
    println!(
        "generate + review (local provider, {} distinct inputs in vi, zh, en): one thread {one:.0} messages/s; {cores} threads {every:.0} messages/s",
        inputs.len()
    );
    println!(
        "  {} messages: first-pass {:.1}%, final pass {:.1}%, {} revisions",
        c.messages,
        100.0 * c.first_pass as f64 / c.messages as f64,
        100.0 * c.final_pass as f64 / c.messages as f64,
        c.revisions
    );
    Ok(())
}
