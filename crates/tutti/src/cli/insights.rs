//! `tutti insights`: creatives and their performance.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;

#[derive(Subcommand)]
pub(crate) enum InsightsCommand {
    /// Import creatives and daily performance from a CSV export (Meta Ads Manager, Google Ads or the generic
    /// layout of docs/insights.md). Re-importing the same file changes nothing. New creatives are tagged.
    Import {
        file: PathBuf,
        /// meta, google or generic (default: told from the header).
        #[arg(long)]
        layout: Option<String>,
        /// Channel for rows that do not name one.
        #[arg(long)]
        channel: Option<String>,
        /// The creatives are this competitor's, not ours.
        #[arg(long)]
        competitor: Option<String>,
    },
    /// Tag creatives with the local tagger: those missing a tag, or with --all every one (manual tags stay).
    Tag {
        #[arg(long)]
        all: bool,
    },
    /// Set a tag by hand (it wins and is kept), or with --clear hand the trait back to the tagger.
    SetTag {
        creative: String,
        #[arg(name = "TRAIT")]
        trait_name: String,
        /// The value; omitted with --clear.
        value: Option<String>,
        #[arg(long)]
        clear: bool,
    },
    /// Which traits win on which channel, and how sure the data lets us be.
    Creatives {
        /// First day (YYYY-MM-DD).
        #[arg(long)]
        from: Option<String>,
        /// Last day (YYYY-MM-DD).
        #[arg(long)]
        to: Option<String>,
        /// table, json, or html (a self-contained page with charts; see --out).
        #[arg(long, default_value = "table", value_parser = ["table", "json", "html"])]
        format: String,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Comparisons whose verdict changed since the last time this was asked (the first time: every call).
    Alerts {
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
    },
    /// Expected click-through of a creative not yet launched, from its tags or its text, with an interval.
    Predict {
        #[arg(long)]
        channel: String,
        /// A tag as trait=value; repeat for several.
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Text to tag with the local tagger (tags given with --tag win).
        #[arg(long)]
        headline: Option<String>,
        #[arg(long)]
        body: Option<String>,
        #[arg(long)]
        call_to_action: Option<String>,
    },
    /// Split a budget across a channel's creatives by Thompson sampling; a proposal for a person to approve.
    Budget {
        #[arg(long)]
        channel: String,
        /// The amount to split, in the account's currency.
        #[arg(long)]
        budget: f64,
        #[arg(long)]
        campaign: Option<String>,
        /// The least share any creative keeps.
        #[arg(long, default_value_t = 0.02)]
        floor: f64,
        /// clicks or conversions.
        #[arg(long, default_value = "conversions", value_parser = ["clicks", "conversions"])]
        objective: String,
    },
    /// The share of each trait value in our creatives and each competitor's, by month of launch.
    Competitors,
    /// Accuracy of the local tagger per trait and language on a labelled file (default: the shipped
    /// evaluation set).
    EvaluateTagger { file: Option<PathBuf> },
    /// Print the taxonomy in use (the default unless --taxonomy) as JSON, with its cue phrases: a starting
    /// point for a taxonomy of one's own.
    Taxonomy,
    /// Write story S6's synthetic campaign (three channels, a planted effect) into the data directory, to try
    /// the commands on.
    Demo {
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

/// The shipped evaluation set of the local tagger, for `tutti insights evaluate-tagger`.
pub(crate) const TAGGER_EVALUATION_SET: &str = include_str!("../../../tutti-ai/data/creatives/eval.jsonl");

pub(crate) fn insights(
    command: InsightsCommand,
    data_dir: &std::path::Path,
    postgres: Option<&str>,
    config: &tutti_engine::config::InsightsConfig,
) -> anyhow::Result<()> {
    let tagger = || tutti_engine::load_tagger(config);
    use tutti_insights::service;
    use tutti_store::CreativeStore;
    let open = || -> anyhow::Result<Box<dyn CreativeStore>> {
        if let Some(url) = postgres {
            return Ok(Box::new(tutti_store::postgres::creatives::PgCreativeStore::new(super::shared_database(url)?)));
        }
        tutti_store::sqlite::private_dir(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
        Ok(Box::new(tutti_store::sqlite::SqliteCreativeStore::open(
            &data_dir.join(tutti_store::sqlite::CREATIVES_FILE),
        )?))
    };
    match command {
        InsightsCommand::Import { file, layout, channel, competitor } => {
            let layout = layout.map(|l| l.parse()).transpose().map_err(anyhow::Error::msg)?;
            let size = std::fs::metadata(&file).with_context(|| format!("reading {}", file.display()))?.len();
            let input = std::fs::File::open(&file).with_context(|| format!("reading {}", file.display()))?;
            let store = open()?;
            let tagger = tagger()?;
            let options = tutti_insights::import::ImportOptions { layout, channel, competitor };
            let mut bar = Progress::new(size);
            let summary = service::import(&*store, Some(&tagger), input, options, &mut |read| bar.show(read))?;
            bar.finish();
            let (c, p) = (&summary.creatives, &summary.performance);
            say!(
                "{:?} layout: {} rows of performance and {} creatives read",
                summary.layout,
                p.inserted + p.updated + p.unchanged,
                c.inserted + c.updated + c.unchanged
            );
            say!(
                "  creatives: {} new, {} changed, {} unchanged; {} tagged",
                c.inserted,
                c.updated,
                c.unchanged,
                summary.tagged
            );
            say!("  performance rows: {} new, {} changed, {} unchanged", p.inserted, p.updated, p.unchanged);
            if summary.skipped > 0 {
                say!("  {} summary or blank row(s) skipped", summary.skipped);
            }
            if summary.rejected_count > 0 {
                say!("  {} row(s) rejected:", summary.rejected_count);
                for r in &summary.rejected {
                    say!("    line {}: {}", r.line, r.reason);
                }
                if summary.rejected_count > summary.rejected.len() as u64 {
                    say!("    ... and {} more", summary.rejected_count - summary.rejected.len() as u64);
                }
            }
            Ok(())
        }
        InsightsCommand::Tag { all } => {
            let store = open()?;
            let n = service::tag(&*store, &tagger()?, all)?;
            say!("{n} creative(s) tagged by the local tagger");
            Ok(())
        }
        InsightsCommand::SetTag { creative, trait_name, value, clear } => {
            let store = open()?;
            match (value, clear) {
                (_, true) => {
                    if store.clear_manual_tag(&creative, &trait_name)? {
                        say!("{creative}: manual {trait_name} cleared; the tagger decides it again");
                    } else {
                        say!("{creative}: no manual {trait_name} to clear");
                    }
                }
                (Some(value), false) => {
                    service::set_manual_tag(&*store, &creative, &trait_name, &value)?;
                    say!("{creative}: {trait_name} = {value} (manual)");
                }
                (None, false) => bail!("give a value, or --clear"),
            }
            Ok(())
        }
        InsightsCommand::Creatives { from, to, format, out } => {
            let options = window(from, to)?;
            let store = open()?;
            let report = service::analyze(&*store, &options)?;
            let text = match format.as_str() {
                "json" => serde_json::to_string_pretty(&report)? + "\n",
                "html" => tutti_insights::render::html(&report, &service::competitors(&*store)?),
                _ => tutti_insights::render::text(&report),
            };
            match out {
                Some(path) => {
                    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
                    say!("written to {}", path.display());
                }
                None => say!("{}", text.strip_suffix('\n').unwrap_or(&text)),
            }
            Ok(())
        }
        InsightsCommand::Alerts { from, to } => {
            let found = service::alerts(&*open()?, &window(from, to)?)?;
            if found.is_empty() {
                say!("nothing changed since the last look");
            }
            for a in found {
                say!("{}", a.message);
            }
            Ok(())
        }
        InsightsCommand::Predict { channel, tags, headline, body, call_to_action } => {
            let mut given = std::collections::BTreeMap::new();
            for t in tags {
                let (k, v) = t.split_once('=').with_context(|| format!("--tag {t}: expected trait=value"))?;
                given.insert(k.trim().to_owned(), v.trim().to_owned());
            }
            let tagger = tagger()?;
            let (h, b, c) =
                (headline.unwrap_or_default(), body.unwrap_or_default(), call_to_action.unwrap_or_default());
            let text = (!(h.is_empty() && b.is_empty() && c.is_empty())).then_some(tutti_ai::Text {
                headline: &h,
                body: &b,
                call_to_action: &c,
            });
            let p = service::predict(&*open()?, &tagger, &channel, given, text, &Default::default())?;
            let pct = |x: f64| format!("{:.2}%", x * 100.0);
            say!(
                "{}: expected click-through {} (one such creative: {} to {}); the channel as a whole: {}",
                p.channel,
                pct(p.click_through.mean),
                pct(p.click_through.low),
                pct(p.click_through.high),
                pct(p.channel_click_through)
            );
            for part in &p.parts {
                say!(
                    "  {}={}: x{:.2} ({:.2} to {:.2}) from {} creatives",
                    part.name,
                    part.value,
                    part.multiplier.mean,
                    part.multiplier.low,
                    part.multiplier.high,
                    part.creatives
                );
            }
            if !p.unknown.is_empty() {
                say!("  not counted (unknown here or too few creatives): {}", p.unknown.join(", "));
            }
            Ok(())
        }
        InsightsCommand::Budget { channel, budget, campaign, floor, objective } => {
            let objective = if objective == "clicks" {
                tutti_insights::budget::Objective::Clicks
            } else {
                tutti_insights::budget::Objective::Conversions
            };
            let options = tutti_insights::budget::BudgetOptions {
                channel,
                campaign,
                budget_micros: (budget * 1e6).round() as i64,
                floor,
                objective,
                draws: 4_000,
                seed: 1,
            };
            let p = service::budget(&*open()?, &options, &Default::default())?;
            say!(
                "PROPOSED, for a person to approve: {budget} on {} for {:?}, at least {:.1}% each",
                p.channel,
                p.objective,
                p.floor * 100.0
            );
            say!("  {:<32} {:>9} {:>9} {:>12} {:>9}", "creative", "now", "proposed", "amount", "P(best)");
            for a in &p.allocations {
                say!(
                    "  {:<32} {:>8.1}% {:>8.1}% {:>12.2} {:>8.1}%",
                    a.creative,
                    a.current_share * 100.0,
                    a.share * 100.0,
                    a.budget_micros as f64 / 1e6,
                    a.probability_best * 100.0
                );
            }
            Ok(())
        }
        InsightsCommand::Competitors => {
            for view in service::competitors(&*open()?)? {
                say!("{}", view.name);
                for row in view.rows.iter().filter(|r| r.period == "all") {
                    let shares: Vec<String> =
                        row.shares.iter().map(|(v, s)| format!("{v} {:.0}%", s * 100.0)).collect();
                    say!("  {:<16} ({:>4} creatives) {}", row.owner, row.creatives, shares.join(", "));
                }
            }
            Ok(())
        }
        InsightsCommand::EvaluateTagger { file } => {
            let text = match &file {
                Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
                None => TAGGER_EVALUATION_SET.to_owned(),
            };
            let examples = tutti_ai::tagger::read_examples(&text)?;
            let result = tutti_ai::tagger::evaluate(&tagger()?, &examples);
            let languages: std::collections::BTreeSet<&String> =
                result.by_trait.values().flat_map(|m| m.keys()).collect();
            let mut header = format!("{:<10} {:>8}", "trait", "all");
            for l in &languages {
                header.push_str(&format!(" {l:>14}"));
            }
            say!("{header}");
            for (name, per) in &result.by_trait {
                let mut row = format!("{name:<10} {:>7.1}%", 100.0 * result.accuracy(name, None).unwrap_or(0.0));
                for l in &languages {
                    row.push_str(&match per.get(*l) {
                        Some((c, t)) => format!(" {:>6.1}% {:>7}", 100.0 * *c as f64 / *t as f64, format!("{c}/{t}")),
                        None => format!(" {:>14}", "-"),
                    });
                }
                say!("{row}");
            }
            say!("\nconfidence   tags  accuracy  (learned traits: tone, purpose, structure, offer, ...)");
            for (n, (c, t)) in result.by_confidence.iter().enumerate() {
                let range = if n == 0 {
                    "below 0.6".to_owned()
                } else if n == 4 {
                    "0.9-1.0".to_owned()
                } else {
                    format!("{:.1}-{:.1}", 0.5 + n as f64 / 10.0, 0.6 + n as f64 / 10.0)
                };
                if *t > 0 {
                    say!("{range:<10} {t:>6}  {:>7.1}%", 100.0 * *c as f64 / *t as f64);
                }
            }
            Ok(())
        }
        InsightsCommand::Taxonomy => {
            say!("{}", serde_json::to_string_pretty(tagger()?.taxonomy())?);
            Ok(())
        }
        InsightsCommand::Demo { seed } => {
            let store = open()?;
            let campaign = tutti_insights::synth::generate(&tutti_insights::synth::Spec::s6(seed));
            let c = store.put_creatives(&campaign.creatives)?;
            let p = store.put_performance(&campaign.performance)?;
            say!(
                "S6 demo campaign (seed {seed}): {} creatives ({} new), {} performance rows ({} new) in {}",
                campaign.creatives.len(),
                c.inserted,
                campaign.performance.len(),
                p.inserted,
                data_dir.display()
            );
            say!(
                "planted: on facebook, emotional creatives are clicked 30% more often than rational ones; nothing else \
                 has an effect. Expect a few other calls all the same: a value held by a handful of creatives can \
                 lean rational or emotional by chance and inherit the difference (an association, not a cause), and \
                 a 95% bar calls about one comparison in ten that has nothing behind it. Try `tutti insights creatives`."
            );
            Ok(())
        }
    }
}

/// `--from` and `--to` as analysis options.
pub(crate) fn window(from: Option<String>, to: Option<String>) -> anyhow::Result<tutti_insights::Options> {
    tutti_insights::Options::for_days(from.as_deref(), to.as_deref())
        .map_err(|(which, e)| anyhow::Error::msg(e).context(format!("--{which}")))
}

/// A progress bar on standard error, drawn only when it is a terminal.
pub(crate) struct Progress {
    total: u64,
    unit: &'static str,
    tty: bool,
    drawn: bool,
}

impl Progress {
    pub(crate) fn new(total: u64) -> Progress {
        Progress::with_unit(total, "bytes")
    }

    pub(crate) fn with_unit(total: u64, unit: &'static str) -> Progress {
        use std::io::IsTerminal;
        Progress { total: total.max(1), unit, tty: std::io::stderr().is_terminal(), drawn: false }
    }

    pub(crate) fn show(&mut self, done: u64) {
        if !self.tty {
            return;
        }
        let share = (done as f64 / self.total as f64).min(1.0);
        let filled = (share * 30.0) as usize;
        eprint!(
            "\r[{}{}] {:>3.0}%  {} / {} {}",
            "#".repeat(filled),
            " ".repeat(30 - filled),
            share * 100.0,
            done.min(self.total),
            self.total,
            self.unit
        );
        self.drawn = true;
    }

    pub(crate) fn finish(&mut self) {
        if self.drawn {
            eprintln!();
        }
    }
}
