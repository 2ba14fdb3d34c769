//! `tutti conversations`: import calls and chats, and see what customers ask and object to, and the replies that
//! win. Works on the data directory's `conversations.db` directly, like `tutti insights`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Subcommand;
use tutti_conversations::import::{Format, transcript};
use tutti_conversations::mine::space::Offline;
use tutti_conversations::service::{self, ImportSummary, Report};
use tutti_conversations::store::{CONVERSATIONS_FILE, ConversationStore, TopicEdit};
use tutti_conversations::{Outcome, playbook};

use super::insights::Progress;

#[derive(Subcommand)]
pub(crate) enum ConversationsCommand {
    /// Import conversations: JSON lines (one conversation a line), or transcripts (text or chat logs with
    /// `Speaker: text` lines, WebVTT, SRT), one conversation per file. Importing again changes nothing.
    Import {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// jsonl, text, vtt or srt (default: told from the extension, then the content).
        #[arg(long)]
        format: Option<String>,
        /// For a transcript: its id (default: the file's name without extension).
        #[arg(long)]
        id: Option<String>,
        /// For a transcript: won, lost or open.
        #[arg(long, default_value = "open")]
        outcome: String,
        /// For a transcript: call, chat, meeting...
        #[arg(long, default_value = "call")]
        channel: String,
        /// For a transcript: the rep's speaker name, when the labels do not say who the rep is.
        #[arg(long)]
        rep: Option<String>,
        /// For a transcript: when it started (2026-11-02T09:30:00+07:00); cue times count from it.
        #[arg(long)]
        started_at: Option<String>,
        /// For a transcript: the customer's identifier as kind=value (email=an@example.vn); repeat for several.
        #[arg(long = "customer")]
        customer: Vec<String>,
    },
    /// The questions and objections customers raise, counted, with their weekly trend and win rate.
    Topics {
        #[arg(long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
    },
    /// The rep replies that followed each topic, ranked by their lift in win rate: a playbook for agents.
    Scripts {
        /// Only this topic (its id from `topics`).
        #[arg(long)]
        topic: Option<String>,
        #[arg(long, default_value = "table", value_parser = ["table", "json", "markdown", "html"])]
        format: String,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The best replies for a customer's words, from the last mining.
    Suggest {
        text: String,
        #[arg(long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
    },
    /// Rename a topic; kept on every later mining.
    Rename {
        topic: String,
        #[arg(long)]
        label: Option<String>,
        #[arg(long)]
        label_en: Option<String>,
    },
    /// Merge a topic into another; kept on every later mining.
    Merge { topic: String, into: String },
    /// Split a topic: its sentences holding WORD become a topic of their own; kept on every later mining.
    Split { topic: String, word: String },
}

/// The store in the data directory, or on the Postgres database the workers share.
fn open(data_dir: &Path, postgres: Option<&str>) -> anyhow::Result<ConversationStore> {
    if let Some(url) = postgres {
        let tables = tutti_conversations::store::PgConversationTables::new(super::shared_database(url)?);
        return Ok(ConversationStore::on(Box::new(tables)));
    }
    tutti_store::sqlite::private_dir(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    Ok(ConversationStore::open(&data_dir.join(CONVERSATIONS_FILE))?)
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Mines everything stored, with a progress bar, and keeps the report.
fn mine(store: &ConversationStore) -> anyhow::Result<Report> {
    let (conversations, _) = store.count()?;
    let mut bar = Progress::with_unit(conversations, "conversations");
    let report =
        service::mine(store, &Default::default(), &Default::default(), &mut Offline, now(), &mut |done, _| {
            bar.show(done as u64)
        })?;
    bar.finish();
    Ok(report)
}

fn print_summary(summary: &ImportSummary) -> anyhow::Result<()> {
    let c = &summary.changes;
    say!("conversations: {} new, {} changed, {} unchanged", c.inserted, c.updated, c.unchanged);
    if summary.rejected_count > 0 {
        say!("rejected: {}", summary.rejected_count);
        for r in summary.rejected.iter().take(20) {
            let at = if r.line > 0 { format!("line {}", r.line) } else { "file".to_owned() };
            say!("  {at}{}: {}", r.id.as_ref().map(|i| format!(" ({i})")).unwrap_or_default(), r.reason);
        }
        if summary.rejected_count > 20 {
            say!("  ... and {} more", summary.rejected_count - 20);
        }
    }
    Ok(())
}

pub(crate) fn conversations(
    command: ConversationsCommand,
    data_dir: &Path,
    postgres: Option<&str>,
) -> anyhow::Result<()> {
    match command {
        ConversationsCommand::Import { files, format, id, outcome, channel, rep, started_at, customer } => {
            let store = open(data_dir, postgres)?;
            let outcome =
                Outcome::parse(&outcome).with_context(|| format!("--outcome {outcome:?}: won, lost or open"))?;
            let started_at = started_at
                .map(|t| {
                    tutti_core::time::parse_timestamp(&t)
                        .with_context(|| format!("--started-at {t:?}: a date-time with an offset"))
                })
                .transpose()?;
            let mut ids = BTreeMap::new();
            for pair in customer {
                let Some((kind, value)) = pair.split_once('=') else { bail!("--customer {pair:?}: write kind=value") };
                ids.insert(kind.trim().to_owned(), value.trim().to_owned());
            }
            if id.is_some() && files.len() > 1 {
                bail!("--id names one transcript; {} files were given", files.len());
            }
            let forced = format
                .map(|f| Format::parse(&f).with_context(|| format!("--format {f:?}: jsonl, text, vtt or srt")))
                .transpose()?;
            let mut total = ImportSummary::default();
            for file in &files {
                let mut input = std::fs::File::open(file).with_context(|| format!("reading {}", file.display()))?;
                let mut start = [0u8; 512];
                let n = std::io::Read::read(&mut input, &mut start)
                    .with_context(|| format!("reading {}", file.display()))?;
                let format =
                    forced.unwrap_or_else(|| Format::detect(file.extension().and_then(|e| e.to_str()), &start[..n]));
                let summary = if format == Format::JsonLines {
                    let size = std::fs::metadata(file)?.len();
                    let input = std::io::BufReader::new(std::fs::File::open(file)?);
                    let mut bar = Progress::new(size);
                    let summary = service::import_lines(&store, input, &mut |read| bar.show(read))?;
                    bar.finish();
                    summary
                } else {
                    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
                    let options = transcript::Options {
                        id: id.clone().unwrap_or_else(|| {
                            file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
                        }),
                        channel: channel.clone(),
                        outcome,
                        started_at,
                        rep: rep.clone(),
                        customer: ids.clone(),
                        value: None,
                        currency: None,
                    };
                    service::import_transcript(&store, format, &bytes, &options)?
                };
                total.absorb(summary);
            }
            print_summary(&total)?;
        }
        ConversationsCommand::Topics { format } => {
            let report = mine(&open(data_dir, postgres)?)?;
            if format == "json" {
                say!("{}", serde_json::to_string_pretty(&report.topics)?);
                return Ok(());
            }
            say!(
                "{} conversations, {} questions and objections, {} in no topic",
                report.conversations,
                report.sentences,
                report.unassigned
            );
            say!(
                "{:<14} {:<5} {:<9} {:>6} {:>6} {:>6}  label (English)",
                "id",
                "lang",
                "kind",
                "convs",
                "turns",
                "won"
            );
            for t in &report.topics {
                let won = t.win_rate.map(|r| format!("{:.0}%", r * 100.0)).unwrap_or_else(|| "-".into());
                say!(
                    "{:<14} {:<5} {:<9} {:>6} {:>6} {:>6}  {} ({})",
                    t.id,
                    t.language,
                    t.kind.as_str(),
                    t.conversations,
                    t.turns,
                    won,
                    t.label,
                    t.label_en
                );
            }
        }
        ConversationsCommand::Scripts { topic, format, out } => {
            let mut report = mine(&open(data_dir, postgres)?)?;
            if let Some(id) = &topic {
                if !report.topics.iter().any(|t| &t.id == id) {
                    bail!("no topic {id:?}; `tutti conversations topics` lists them");
                }
                report.topics.retain(|t| &t.id == id);
                report.scripts.retain(|s| &s.topic == id);
            }
            let text = match format.as_str() {
                "json" => serde_json::to_string_pretty(&report.scripts)? + "\n",
                "markdown" => playbook::markdown(&report),
                "html" => playbook::html(&report),
                _ => table(&report),
            };
            match out {
                Some(path) => std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?,
                None => print!("{text}"),
            }
        }
        ConversationsCommand::Suggest { text, format } => {
            let store = open(data_dir, postgres)?;
            let report = match service::kept_report(&store)? {
                Some(r) => r,
                None => mine(&store)?,
            };
            let suggestions = service::suggest(&report, &text);
            if format == "json" {
                say!("{}", serde_json::to_string_pretty(&suggestions)?);
                return Ok(());
            }
            if suggestions.is_empty() {
                say!("no question or objection of a known topic in these words");
            }
            for s in &suggestions {
                say!("{:?}: {} ({})", s.sentence, s.topic.label, s.topic.id);
                for r in &s.replies {
                    let verdict = if r.winner { "wins" } else { "no clear effect" };
                    say!("  {:+.0} pt  {verdict:<15} {}", r.lift * 100.0, r.reply);
                }
            }
        }
        ConversationsCommand::Rename { topic, label, label_en } => {
            if label.is_none() && label_en.is_none() {
                bail!("give --label, --label-en or both");
            }
            let by = std::env::var("USER").unwrap_or_else(|_| "cli".into());
            open(data_dir, postgres)?.put_edit(&TopicEdit {
                topic: topic.clone(),
                label,
                label_en,
                merged_into: None,
                split_on: None,
                by,
                at: now(),
            })?;
            say!("{topic} renamed; the next mining shows it");
        }
        ConversationsCommand::Merge { topic, into } => {
            if topic == into {
                bail!("a topic cannot be merged into itself");
            }
            let by = std::env::var("USER").unwrap_or_else(|_| "cli".into());
            let edit = TopicEdit {
                topic: topic.clone(),
                label: None,
                label_en: None,
                merged_into: Some(into.clone()),
                split_on: None,
                by,
                at: now(),
            };
            open(data_dir, postgres)?.put_edit(&edit)?;
            say!("{topic} merged into {into}; the next mining shows it");
        }
        ConversationsCommand::Split { topic, word } => {
            if word.trim().is_empty() || word.chars().count() > 100 || word.chars().any(char::is_control) {
                bail!("the word: 1 to 100 characters, no control characters");
            }
            let by = std::env::var("USER").unwrap_or_else(|_| "cli".into());
            let edit = TopicEdit {
                topic: topic.clone(),
                label: None,
                label_en: None,
                merged_into: None,
                split_on: Some(word.clone()),
                by,
                at: now(),
            };
            open(data_dir, postgres)?.put_edit(&edit)?;
            say!("{topic}'s sentences with {word:?} split off; the next mining shows it");
        }
    }
    Ok(())
}

fn table(report: &Report) -> String {
    let mut out = String::new();
    for s in &report.scripts {
        out.push_str(&format!("{} ({}): {} conversations\n", s.label, s.topic, s.conversations));
        if s.scripts.is_empty() {
            out.push_str("  no reply given often enough to judge\n");
        }
        for r in &s.scripts {
            let verdict = if r.winner { "wins" } else { "no clear effect" };
            out.push_str(&format!(
                "  {:+4.0} pt [{:+.0}, {:+.0}]  {verdict:<15} {:>4} convs  {}\n",
                r.lift * 100.0,
                r.lift_low * 100.0,
                r.lift_high * 100.0,
                r.conversations,
                r.reply
            ));
        }
    }
    out
}
