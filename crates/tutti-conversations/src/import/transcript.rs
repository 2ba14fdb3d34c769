//! One conversation from a transcript: plain text or a chat log (`Speaker: text` lines, optionally after a time
//! in brackets), WebVTT (`<v Speaker>` voice spans or `Speaker:` in the cue) or SRT (`Speaker:` in the cue; a cue
//! without one continues the last speaker). Cues of one speaker in a row are one turn.
//!
//! Whatever is wrong refuses the whole file, with the line: a file that is not UTF-8 text, a time that cannot be
//! read, a speaker whose side cannot be told, more turns or bytes than a conversation may hold.

use std::collections::BTreeMap;

use tutti_core::time::{Millis, parse_timestamp};

use super::{check_name, check_text, roles::role_of_speaker};
use crate::model::{Conversation, Outcome, Role, Turn, limits};

/// What a transcript does not say about itself.
#[derive(Debug, Clone)]
pub struct Options {
    pub id: String,
    pub channel: String,
    pub outcome: Outcome,
    pub started_at: Option<Millis>,
    /// The rep's speaker name, when the labels do not say.
    pub rep: Option<String>,
    pub customer: BTreeMap<String, String>,
    pub value: Option<f64>,
    pub currency: Option<String>,
}

/// A speaker's words, with the time they began (an offset from the start, or a date-time).
struct Said {
    speaker: String,
    at: Option<When>,
    text: String,
    line: usize,
}

#[derive(Clone, Copy)]
enum When {
    Offset(Millis),
    At(Millis),
}

/// Reads a whole transcript in `format` (anything but JSON lines).
pub fn read(format: super::Format, bytes: &[u8], options: &Options) -> Result<Conversation, String> {
    if bytes.len() > limits::CONVERSATION_BYTES {
        return Err(format!(
            "the file is {} bytes, over the {} a conversation may be",
            bytes.len(),
            limits::CONVERSATION_BYTES
        ));
    }
    if bytes.contains(&0) {
        return Err("not text: the file holds NUL bytes (is it a binary file?)".into());
    }
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8 text at byte {}", e.valid_up_to()))?;
    let text = text.trim_start_matches('\u{feff}');
    let said = match format {
        super::Format::Text => plain(text)?,
        super::Format::WebVtt => cues(text, true)?,
        super::Format::Srt => cues(text, false)?,
        super::Format::JsonLines => return Err("JSON lines are read a line at a time, not as a transcript".into()),
    };
    conversation(said, options)
}

/// `Speaker: text` lines; a line without a speaker continues the turn before it.
fn plain(text: &str) -> Result<Vec<Said>, String> {
    let mut said: Vec<Said> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (at, rest) = leading_time(line).map_err(|e| format!("line {n}: {e}"))?;
        match speaker_and_words(rest) {
            Some((speaker, words)) => said.push(Said { speaker, at, text: words.to_owned(), line: n }),
            None => match said.last_mut() {
                Some(last) if at.is_none() => {
                    last.text.push('\n');
                    last.text.push_str(rest);
                }
                _ => return Err(format!("line {n}: no `Speaker: text` here, and no turn before it to continue")),
            },
        }
        check_size(&said, n)?;
    }
    Ok(said)
}

/// A time at the start of a chat line: `[2026-11-02T10:15:00+07:00]`, `[10:15:02]` or `(01:02)` (an offset from
/// the start). Text in brackets that is not a time is left as it is (it may be the speaker's own).
fn leading_time(line: &str) -> Result<(Option<When>, &str), String> {
    let Some(open) = line.chars().next().filter(|c| matches!(c, '[' | '(')) else { return Ok((None, line)) };
    let close = if open == '[' { ']' } else { ')' };
    let Some(end) = line.find(close) else { return Ok((None, line)) };
    let inside = line[1..end].trim();
    let rest = line[end + 1..].trim_start();
    if !inside.starts_with(|c: char| c.is_ascii_digit()) {
        return Ok((None, line));
    }
    if let Some(at) = parse_timestamp(inside) {
        return Ok((Some(When::At(at)), rest));
    }
    if inside.contains('-') || inside.contains('T') {
        return Err(format!(
            "the time [{inside}] is not a date-time with an offset, such as 2026-11-02T10:15:00+07:00"
        ));
    }
    offset(inside).map(|ms| (Some(When::Offset(ms)), rest)).map_err(|e| format!("the time [{inside}]: {e}"))
}

/// `hh:mm:ss`, `mm:ss`, with `.mmm` or `,mmm`: milliseconds from the start.
fn offset(text: &str) -> Result<Millis, String> {
    let (clock, fraction) = match text.split_once(['.', ',']) {
        Some((c, f)) => (c, Some(f)),
        None => (text, None),
    };
    let parts: Vec<&str> = clock.split(':').collect();
    let number = |s: &str, most: i64| -> Result<i64, String> {
        let v: i64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
        if !(0..=most).contains(&v) || s.is_empty() || s.len() > 4 {
            return Err(format!("{s} is out of range"));
        }
        Ok(v)
    };
    let (h, m, s) = match parts.as_slice() {
        [h, m, s] => (number(h, 9999)?, number(m, 59)?, number(s, 59)?),
        [m, s] => (0, number(m, 9999)?, number(s, 59)?),
        _ => return Err("not a time such as 00:01:02.500".into()),
    };
    let ms = match fraction {
        None => 0,
        Some(f) if !f.is_empty() && f.len() <= 3 && f.bytes().all(|b| b.is_ascii_digit()) => {
            f.parse::<i64>().unwrap_or(0) * 10i64.pow(3 - f.len() as u32)
        }
        Some(f) => return Err(format!("the fraction {f:?} is not milliseconds")),
    };
    Ok(((h * 60 + m) * 60 + s) * 1000 + ms)
}

/// `Speaker: words`, with an ASCII or full-width colon, a speaker of at most six words and 60 characters.
fn speaker_and_words(line: &str) -> Option<(String, &str)> {
    let (at, colon) = line.char_indices().find(|(_, c)| matches!(c, ':' | '：'))?;
    let speaker = line[..at].trim();
    let words = line[at + colon.len_utf8()..].trim();
    let plausible = !speaker.is_empty()
        && speaker.chars().count() <= 60
        && speaker.split_whitespace().count() <= 6
        && !speaker.contains("://")
        && !speaker.chars().all(|c| c.is_ascii_digit());
    plausible.then(|| (speaker.to_owned(), words))
}

/// WebVTT or SRT cues. Settings after the timing, NOTE, STYLE and REGION blocks and markup tags are skipped.
fn cues(text: &str, vtt: bool) -> Result<Vec<Said>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut n = 0;
    if vtt {
        if !lines.first().is_some_and(|l| l.trim_end().starts_with("WEBVTT")) {
            return Err("line 1: a WebVTT file begins with WEBVTT".into());
        }
        n = 1;
    }
    let mut said: Vec<Said> = Vec::new();
    while n < lines.len() {
        let line = lines[n].trim();
        if line.is_empty() {
            n += 1;
            continue;
        }
        if vtt && (line.starts_with("NOTE") || line.starts_with("STYLE") || line.starts_with("REGION")) {
            while n < lines.len() && !lines[n].trim().is_empty() {
                n += 1;
            }
            continue;
        }
        // An identifier (SRT's number, VTT's optional id) before the timing line.
        let timing_at = if line.contains("-->") { n } else { n + 1 };
        let Some(timing) = lines.get(timing_at).map(|l| l.trim()).filter(|l| l.contains("-->")) else {
            return Err(format!("line {}: a cue's timing (00:00:01.000 --> 00:00:04.000) is missing", timing_at + 1));
        };
        let start = timing.split("-->").next().unwrap_or_default().trim();
        let end = timing.split("-->").nth(1).and_then(|e| e.split_whitespace().next()).unwrap_or_default();
        let at = offset(start).map_err(|e| format!("line {}: the cue's start {start:?}: {e}", timing_at + 1))?;
        let until = offset(end).map_err(|e| format!("line {}: the cue's end {end:?}: {e}", timing_at + 1))?;
        if until < at {
            return Err(format!("line {}: the cue ends before it starts", timing_at + 1));
        }
        n = timing_at + 1;
        let mut payload = Vec::new();
        while n < lines.len() && !lines[n].trim().is_empty() {
            payload.push(lines[n].trim());
            n += 1;
        }
        let payload = payload.join(" ");
        let (speaker, words) =
            match voice(&payload).or_else(|| speaker_and_words(&payload).map(|(s, w)| (s, w.to_owned()))) {
                Some((speaker, words)) => (Some(speaker), words),
                None => (None, payload.clone()),
            };
        let words = strip_tags(&words);
        if words.trim().is_empty() {
            continue;
        }
        let speaker = match speaker {
            Some(s) => s,
            None => match said.last() {
                Some(last) => last.speaker.clone(),
                None => {
                    return Err(format!(
                        "line {}: the first cue names no speaker (`<v Name>` or `Name:`)",
                        timing_at + 2
                    ));
                }
            },
        };
        match said.last_mut() {
            Some(last) if last.speaker == speaker => {
                last.text.push(' ');
                last.text.push_str(words.trim());
            }
            _ => said.push(Said {
                speaker,
                at: Some(When::Offset(at)),
                text: words.trim().to_owned(),
                line: timing_at + 1,
            }),
        }
        check_size(&said, n)?;
    }
    Ok(said)
}

/// `<v Speaker>words</v>` (WebVTT's voice span), with optional classes (`<v.loud Speaker>`).
fn voice(payload: &str) -> Option<(String, String)> {
    let rest = payload.trim_start().strip_prefix("<v")?;
    let close = rest.find('>')?;
    let tag = &rest[..close];
    let name = if tag.starts_with('.') { tag.split_once(' ').map_or("", |(_, name)| name) } else { tag };
    let name = name.trim();
    (!name.is_empty()).then(|| (name.to_owned(), rest[close + 1..].replace("</v>", "")))
}

/// Markup tags (`<i>`, `<b>`, `<c.yellow>`, timestamps `<00:01.000>`) taken out of a cue's words.
fn strip_tags(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

fn check_size(said: &[Said], line: usize) -> Result<(), String> {
    if said.len() > limits::TURNS {
        return Err(format!("line {line}: more than {} turns, over what a conversation may have", limits::TURNS));
    }
    if said.last().is_some_and(|s| s.text.len() > limits::TURN_BYTES) {
        return Err(format!("line {line}: one turn is over {} bytes", limits::TURN_BYTES));
    }
    Ok(())
}

/// The turns with their roles: named rep or labels first; with two speakers, one told, the other is the other side.
fn conversation(said: Vec<Said>, options: &Options) -> Result<Conversation, String> {
    if said.is_empty() {
        return Err("no turns: the file has no `Speaker: text` lines or cues".into());
    }
    let mut speakers: Vec<&str> = said.iter().map(|s| s.speaker.as_str()).collect();
    speakers.sort_unstable();
    speakers.dedup();
    let mut roles: BTreeMap<&str, Role> =
        speakers.iter().filter_map(|s| role_of_speaker(s, options.rep.as_deref()).map(|r| (*s, r))).collect();
    if speakers.len() == 2
        && roles.len() == 1
        && let Some((known, role)) = roles.iter().next().map(|(s, r)| (*s, *r))
    {
        let other = if speakers[0] == known { speakers[1] } else { speakers[0] };
        roles.insert(other, if role == Role::Rep { Role::Customer } else { Role::Rep });
    }
    if let Some(unknown) = speakers.iter().find(|s| !roles.contains_key(*s)) {
        let line = said.iter().find(|s| s.speaker == *unknown).map_or(0, |s| s.line);
        return Err(format!(
            "line {line}: cannot tell whether {unknown:?} is the customer or the rep; name the rep (--rep) or label the speakers"
        ));
    }
    let roles: BTreeMap<String, Role> = roles.into_iter().map(|(s, r)| (s.to_owned(), r)).collect();
    let turns = said
        .into_iter()
        .map(|s| {
            let at = match s.at {
                Some(When::At(at)) => Some(at),
                Some(When::Offset(offset)) => options.started_at.map(|start| start + offset),
                None => None,
            };
            let text = check_text(&s.text).map_err(|e| format!("line {}: {e}", s.line))?;
            let speaker = check_name("speaker", &s.speaker).map_err(|e| format!("line {}: {e}", s.line))?;
            Ok(Turn { role: roles[s.speaker.as_str()], speaker, at, text })
        })
        .collect::<Result<Vec<Turn>, String>>()?;
    Ok(Conversation {
        id: check_name("id", &options.id)?,
        started_at: options.started_at.or_else(|| turns.iter().find_map(|t| t.at)),
        channel: options.channel.clone(),
        outcome: options.outcome,
        value: options.value,
        currency: options.currency.clone(),
        rep: options.rep.clone(),
        customer: options.customer.clone(),
        turns,
        extra: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::Format;

    fn options() -> Options {
        Options {
            id: "call-1".into(),
            channel: "call".into(),
            outcome: Outcome::Won,
            started_at: parse_timestamp("2026-11-02T09:00:00+07:00"),
            rep: None,
            customer: BTreeMap::new(),
            value: None,
            currency: None,
        }
    }

    #[test]
    fn a_chat_log_with_times_and_continued_lines() {
        let log = "[00:00:05] Agent: Chào anh, em là Lan bên Shop.\n[00:00:12] Minh: Giá gói này bao nhiêu vậy em?\n\
                   Anh thấy hơi đắt.\n\n[00:01:00] Agent: Dạ gói này đang giảm 10% anh ạ.";
        let c = read(Format::Text, log.as_bytes(), &options()).unwrap();
        assert_eq!(c.turns.len(), 3);
        assert_eq!((c.turns[1].role, c.turns[1].speaker.as_str()), (Role::Customer, "Minh"), "the other speaker");
        assert!(c.turns[1].text.ends_with("Anh thấy hơi đắt."));
        assert_eq!(c.turns[2].at, parse_timestamp("2026-11-02T09:01:00+07:00"));
    }

    #[test]
    fn webvtt_voices_and_srt_labels() {
        let vtt = "WEBVTT\n\nNOTE made by the recorder\n\n1\n00:00:01.000 --> 00:00:03.500 align:start\n<v 客服>您好，<i>请问</i>有什么可以帮您？\n\n\
                   00:00:04.000 --> 00:00:06.000\n<v 客户>这个太贵了\n\n00:00:06.000 --> 00:00:07.000\n<v 客户>能便宜点吗？";
        let c = read(Format::WebVtt, vtt.as_bytes(), &options()).unwrap();
        assert_eq!(c.turns.len(), 2, "the customer's two cues are one turn");
        assert_eq!(c.turns[0].text, "您好，请问有什么可以帮您？");
        assert_eq!(c.turns[1].text, "这个太贵了 能便宜点吗？");
        let srt = "1\n00:00:01,000 --> 00:00:02,000\nRep: Hi, this is Sam.\n\n2\n00:00:02,500 --> 00:00:04,000\nCustomer: I'm worried about security.\n\n\
                   3\n00:00:04,000 --> 00:00:05,000\nWho can see our data?";
        let c = read(Format::Srt, srt.as_bytes(), &options()).unwrap();
        assert_eq!(c.turns[1].text, "I'm worried about security. Who can see our data?");
        assert_eq!(c.turns[1].at, parse_timestamp("2026-11-02T02:00:02.500Z"));
    }

    #[test]
    fn hostile_transcripts_are_refused_with_the_line() {
        for (format, text, reason) in [
            (Format::Text, &b"\x00\x01\x02binary"[..], "NUL bytes"),
            (Format::Text, &b"\xff\xfe\xfd"[..], "not UTF-8"),
            (Format::Srt, &b"1\n00:00:01,000 --> 00:99:02,000\nA: hi"[..], "line 2: the cue's end"),
            (Format::WebVtt, &b"1\n00:00:01.000 --> 00:00:02.000\n<v A>hi"[..], "begins with WEBVTT"),
            (Format::Text, &b"[2026-13-45 25:00] Agent: hi"[..], "line 1: the time"),
            (Format::Text, &b"hello there"[..], "no `Speaker: text`"),
            (Format::Text, &b"Ann: hi\nBob: hello"[..], "cannot tell whether"),
            (Format::Srt, &b"1\n00:00:02,000 --> 00:00:01,000\nA: hi"[..], "ends before it starts"),
        ] {
            let e = read(format, text, &options()).unwrap_err();
            assert!(e.contains(reason), "{reason}: {e}");
        }
        let many: String =
            (0..100_000).map(|i| format!("{}: word\n", if i % 2 == 0 { "Agent" } else { "Customer" })).collect();
        let e = read(Format::Text, many.as_bytes(), &options()).unwrap_err();
        assert!(e.contains("more than 20000 turns"), "{e}");
    }

    #[test]
    fn a_transcript_over_a_megabyte_imports() {
        let sentence = "Tôi đang cân nhắc giữa gói cơ bản và gói nâng cao, nhưng lo là chi phí triển khai sẽ cao. ";
        let mut text = String::new();
        for i in 0..400 {
            let who = if i % 2 == 0 { "Khách hàng" } else { "Nhân viên" };
            text.push_str(&format!("{who}: {}\n", sentence.repeat(30)));
        }
        assert!(text.len() > 1_000_000);
        let c = read(Format::Text, text.as_bytes(), &options()).unwrap();
        assert_eq!(c.turns.len(), 400);
    }
}
