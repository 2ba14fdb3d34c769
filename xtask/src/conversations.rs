//! `cargo xtask conversations`: the conversation miner's benchmark. Generates conversations with planted topics
//! (`tutti_conversations::synth`), imports them as JSON lines into a fresh `conversations.db`, mines them, and
//! prints the time of each stage, the turns per second, the peak memory, and how the planted topics were found.

use std::collections::BTreeSet;
use std::time::Instant;

use clap::Args;
use tutti_conversations::mine;
use tutti_conversations::mine::space::Model;
use tutti_conversations::service;
use tutti_conversations::store::{CONVERSATIONS_FILE, ConversationStore};
use tutti_conversations::synth::{self, Shape, TOPICS};

#[derive(Args)]
pub struct ConversationsArgs {
    #[arg(long, default_value_t = 10_000)]
    conversations: usize,
    /// Turns per conversation (10,000 of 100 is about a million turns).
    #[arg(long, default_value_t = 100)]
    turns: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Questions per conversation worded from a large vocabulary (near all distinct), for grouping's cost.
    #[arg(long, default_value_t = 10)]
    noise: usize,
}

pub fn conversations(args: ConversationsArgs) -> anyhow::Result<()> {
    let shape = Shape {
        conversations: args.conversations,
        turns: args.turns,
        seed: args.seed,
        start: 1_790_000_000_000,
        weeks: 12,
        noise: args.noise,
    };
    let started = Instant::now();
    let (conversations, truth) = synth::generate(&shape);
    let turns: usize = conversations.iter().map(|c| c.turns.len()).sum();
    let lines: String =
        conversations.iter().map(|c| serde_json::to_string(c).map(|l| l + "\n")).collect::<Result<_, _>>()?;
    println!(
        "generated {} conversations, {turns} turns, {:.1} MB of JSON lines in {:.2} s",
        conversations.len(),
        lines.len() as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    drop(conversations);

    let dir = tempfile_dir()?;
    let store = ConversationStore::open(&dir.join(CONVERSATIONS_FILE))?;
    let started = Instant::now();
    let summary = service::import_lines(&store, std::io::Cursor::new(lines.as_bytes()), &mut |_| {})?;
    let import = started.elapsed().as_secs_f64();
    println!(
        "import: {} inserted, {} rejected in {import:.2} s ({:.0} turns/s)",
        summary.changes.inserted,
        summary.rejected_count,
        turns as f64 / import
    );
    drop(lines);

    let started = Instant::now();
    let report = service::mine(
        &store,
        &Default::default(),
        &Default::default(),
        &mut tutti_conversations::mine::space::Offline,
        0,
        &mut |_, _| {},
    )?;
    let mined = started.elapsed().as_secs_f64();
    println!(
        "mine (read the store, topics, scripts, keep the report): {mined:.2} s ({:.0} turns/s); {} topics; {} of {} questions and objections in none",
        turns as f64 / mined,
        report.topics.len(),
        report.unassigned,
        report.sentences
    );
    println!("peak memory (VmHWM): {}", peak_memory());

    // How the planted topics were found, by their conversations (the report does not keep sentences).
    let conversations = store.all()?;
    let index: std::collections::HashMap<&str, u32> =
        conversations.iter().enumerate().map(|(i, c)| (c.id.as_str(), i as u32)).collect();
    let mined = mine::mine(&conversations, &Default::default(), &mut |_| {});
    let mut found = 0;
    for (p, planted) in TOPICS.iter().enumerate() {
        let truth: BTreeSet<(u32, u32)> =
            truth.raised[p].iter().map(|(c, t)| (index[format!("conv-{c:06}").as_str()], *t)).collect();
        let planted_in = truth.iter().map(|(c, _)| *c).collect::<BTreeSet<_>>().len();
        let best = mined
            .topics
            .iter()
            .map(|t| (t, t.raised.iter().filter(|r| truth.contains(r)).count()))
            .max_by_key(|(_, n)| *n);
        if let Some((topic, overlap)) = best {
            let close = (topic.conversations as f64 - planted_in as f64).abs() <= 0.1 * planted_in as f64;
            let pure = overlap as f64 >= 0.9 * topic.raised.len() as f64;
            found += usize::from(close && pure);
            println!(
                "  {:<16} planted in {planted_in:>5}, found {:?} in {:>5}{}",
                planted.id,
                topic.label,
                topic.conversations,
                if close && pure { "" } else { "  (MISSED)" }
            );
        }
    }
    println!("planted topics found: {found} of {}", TOPICS.len());

    // The same mining with a provider's space: what placing the sentences costs here, without the network.
    let mut space = HashedSpace { texts: 0 };
    let started = Instant::now();
    let spaced = mine::mine_with(&conversations, &Default::default(), &mut space, &mut |_| {});
    println!(
        "mine in a provider's space ({DIMENSIONS} dimensions, {} sentences embedded, the network not counted): {:.2} s; {} topics",
        space.texts,
        started.elapsed().as_secs_f64(),
        spaced.topics.len()
    );
    // The worst case the cap allows: every one of the embedded sentences compared with every other.
    let cap = mine::Options::default().embedding_texts;
    let vectors = HashedSpace { texts: 0 }
        .embed(&(0..cap).map(|i| format!("sentence {i}")).collect::<Vec<_>>())
        .map_err(anyhow::Error::msg)?
        .expect("vectors")
        .vectors;
    let started = Instant::now();
    let mut sum = 0f32;
    for (i, a) in vectors.iter().enumerate() {
        for b in &vectors[..i] {
            sum += tutti_ai::embed::dot(a, b);
        }
    }
    println!(
        "worst case at the cap: {} comparisons of {cap} sentences in {:.2} s (checksum {sum:.1})",
        cap * (cap - 1) / 2,
        started.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The length of OpenAI's `text-embedding-3-small` vectors.
const DIMENSIONS: usize = 1536;

/// A stand-in provider: each text a pseudo-random unit vector seeded by its words, so that texts point apart, as
/// unrelated sentences do in a real space (nothing joins: the cost measured is the comparisons').
struct HashedSpace {
    texts: usize,
}

impl Model for HashedSpace {
    fn embed(&mut self, texts: &[String]) -> Result<Option<mine::space::Embedded>, String> {
        self.texts += texts.len();
        let vectors = texts
            .iter()
            .map(|t| {
                let mut state = tutti_core::hash::fnv1a(t.as_bytes()) | 1;
                let v = (0..DIMENSIONS)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
                    })
                    .collect();
                tutti_ai::embed::unit(v)
            })
            .collect();
        Ok(Some(mine::space::Embedded { vectors, method: "bench/hashed".into() }))
    }

    fn label(&mut self, _: &[mine::space::ToLabel]) -> Result<Option<mine::space::Labels>, String> {
        Ok(None)
    }
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("tutti-conversations-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn peak_memory() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM")).map(|l| l.trim_start_matches("VmHWM:").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}
