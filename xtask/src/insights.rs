//! `cargo xtask insights`: the creative analysis timed over a synthetic campaign.

use std::time::Instant;

#[derive(clap::Args)]
pub(crate) struct InsightsArgs {
    /// Our creatives, spread over three channels.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) creatives: usize,
    /// Days of performance per creative (creatives x days = performance rows).
    #[arg(long, default_value_t = 100)]
    pub(crate) days: u32,
    /// Timed repetitions; the median is reported.
    #[arg(long, default_value_t = 5)]
    pub(crate) runs: usize,
}

/// The creative analysis over `creatives` x `days` synthetic performance rows, timed end to end (summing the rows
/// per creative, fitting the channel priors, the posterior draws, the comparisons).
pub(crate) fn insights(args: InsightsArgs) -> anyhow::Result<()> {
    use tutti_insights::synth::{Spec, generate};
    let mut spec = Spec::s6(42);
    let channels = spec.channels.len();
    for (i, c) in spec.channels.iter_mut().enumerate() {
        c.creatives = args.creatives / channels + usize::from(i < args.creatives % channels);
    }
    spec.days = args.days;
    let made = Instant::now();
    let campaign = generate(&spec);
    println!("# Tutti insights benchmark");
    println!(
        "machine: {} cores; {} creatives ({} ours), {} performance rows, generated in {:.2} s",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        campaign.creatives.len(),
        args.creatives,
        campaign.performance.len(),
        made.elapsed().as_secs_f64()
    );
    // Local tagging: the shipped evaluation set's texts (three languages), over and over, on one thread.
    let trained = Instant::now();
    let tagger = tutti_ai::LocalTagger::new_default();
    println!("local tagger trained in {:.0} ms", trained.elapsed().as_secs_f64() * 1000.0);
    let examples = tutti_ai::tagger::read_examples(include_str!("../../crates/tutti-ai/data/creatives/eval.jsonl"))?;
    let count = 50_000;
    let started = Instant::now();
    let mut tags = 0usize;
    for e in examples.iter().cycle().take(count) {
        tags += tutti_ai::tagger::LocalTagger::tag(&tagger, e.text()).len();
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "local tagging: {count} creatives ({tags} tags) in {elapsed:.2} s on one thread: {:.0} creatives/s",
        count as f64 / elapsed
    );
    let options = tutti_insights::Options::default();
    let mut times = Vec::new();
    let mut report = None;
    for _ in 0..args.runs.max(1) {
        let started = Instant::now();
        report = Some(tutti_insights::analyze(&campaign.creatives, &campaign.performance, &options));
        times.push(started.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let report = report.expect("at least one run");
    let comparisons: usize = report.channels.iter().flat_map(|c| &c.traits).map(|t| t.comparisons.len()).sum();
    println!(
        "analysis ({} draws, {} channels, {comparisons} comparisons): median {:.3} s, min {:.3} s, max {:.3} s over {} runs",
        options.draws,
        report.channels.len(),
        times[times.len() / 2],
        times[0],
        times[times.len() - 1],
        times.len()
    );
    // The same from the embedded store: rows written to creatives.db (not part of the timing), then each
    // creative's sums in SQL and the analysis, as `tutti insights creatives` and the API run it.
    let dir = std::env::temp_dir().join(format!("tutti-insights-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let store = tutti_store::sqlite::SqliteCreativeStore::open(&dir.join("creatives.db"))?;
    let written = Instant::now();
    {
        use tutti_store::CreativeStore;
        store.put_creatives(&campaign.creatives)?;
        for rows in campaign.performance.chunks(10_000) {
            store.put_performance(rows)?;
        }
    }
    println!(
        "stored {} rows in creatives.db in {:.1} s ({:.0} rows/s)",
        campaign.performance.len(),
        written.elapsed().as_secs_f64(),
        campaign.performance.len() as f64 / written.elapsed().as_secs_f64()
    );
    let mut stored_times = Vec::new();
    for _ in 0..args.runs.max(1) {
        let started = Instant::now();
        let r = tutti_insights::service::analyze(&store, &options)?;
        stored_times.push(started.elapsed().as_secs_f64());
        assert_eq!(r.channels.len(), report.channels.len());
    }
    stored_times.sort_by(f64::total_cmp);
    println!(
        "from the store (sums in SQL, then the analysis): median {:.3} s, min {:.3} s, max {:.3} s over {} runs",
        stored_times[stored_times.len() / 2],
        stored_times[0],
        stored_times[stored_times.len() - 1],
        stored_times.len()
    );
    let summed = Instant::now();
    let sums = {
        use tutti_store::CreativeStore;
        (store.creatives()?.len(), store.totals(None, None)?.len())
    };
    println!(
        "  of which reading {} creatives with their tags and summing {} creatives' rows in SQL: {:.3} s",
        sums.0,
        sums.1,
        summed.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
