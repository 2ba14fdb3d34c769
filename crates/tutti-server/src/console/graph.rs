//! A flow drawn as SVG on the server, from its compiled steps: the trigger on top, one box per step in the
//! order written, the end at the bottom, and an arrow for every way a step can go on (named for the arm,
//! event or timeout that takes it). Each box shows how many runs reached the step. No script, no styles in
//! attributes: the classes are the console stylesheet's, and every text is escaped here.

use std::collections::BTreeMap;
use std::fmt::Write;

use tutti_flows::def::{StepKind, Trigger};
use tutti_flows::{Flow, Step};

const BOX_W: usize = 300;
const BOX_H: usize = 46;
const GAP: usize = 34;
const LEFT: usize = 20;
/// Room on the right for arrows that skip steps or go back.
const LANES: usize = 220;

pub(super) use tutti_core::html::escape;

fn clip(text: &str, most: usize) -> String {
    if text.chars().count() <= most {
        return text.to_owned();
    }
    text.chars().take(most.saturating_sub(1)).collect::<String>() + "…"
}

/// What a step does, in a few words.
pub fn step_label(step: &Step) -> String {
    match &step.kind {
        StepKind::Action(a) => format!("{}.{}", a.connector, a.operation),
        StepKind::Wait(_) => "wait".into(),
        StepKind::WaitFor { event, .. } => format!("wait_for {}", event.name.as_deref().unwrap_or("any event")),
        StepKind::Branch(_) => "branch".into(),
        StepKind::Split(_) => "split".into(),
        StepKind::UpdateProfile(_) => "update_profile".into(),
        StepKind::Exit(_) => "exit".into(),
        StepKind::Generate(_) => "ai.generate".into(),
        StepKind::Approve(_) => "approve".into(),
    }
}

/// What starts a run, in a few words.
pub fn trigger_label(flow: &Flow) -> String {
    match &flow.trigger {
        Trigger::Event(m) => format!("event {}", m.name.as_deref().unwrap_or("any")),
        Trigger::Segment { id, leave: false, .. } => format!("enters segment {id}"),
        Trigger::Segment { id, leave: true, .. } => format!("leaves segment {id}"),
        Trigger::Schedule { .. } => "schedule".into(),
        Trigger::Signal { name, .. } => format!("signal {name}"),
    }
}

/// What a branch's arm is called where people read it: its condition, or `else`. Decisions name arms by
/// their index (`0`, `1`...); this is what the index stands for.
pub fn arm_label(step: &Step, recorded: &str) -> String {
    let StepKind::Branch(arms) = &step.kind else { return recorded.to_owned() };
    match recorded.parse::<usize>().ok().and_then(|i| arms.get(i)) {
        Some(arm) => arm.when.as_ref().map_or_else(|| "else".to_owned(), |c| c.source().to_owned()),
        None => recorded.to_owned(),
    }
}

/// Where a step goes on: (label, target step, or `None` for the end).
fn exits(step: &Step) -> Vec<(String, Option<usize>)> {
    match &step.kind {
        StepKind::Branch(arms) => {
            arms.iter().enumerate().map(|(i, arm)| (arm_label(step, &i.to_string()), arm.next)).collect()
        }
        StepKind::Split(arms) => arms
            .iter()
            .map(|arm| {
                let label = format!("{} {}%", arm.name, arm.percent);
                (label, if arm.holdout { None } else { arm.next })
            })
            .collect(),
        StepKind::WaitFor { on_event, on_timeout, .. } => {
            vec![("event".into(), *on_event), ("timeout".into(), *on_timeout)]
        }
        StepKind::Approve(a) => {
            let mut out = vec![("approved".into(), step.next)];
            if a.on_reject != step.next {
                out.push(("rejected".into(), a.on_reject));
            }
            out
        }
        StepKind::Exit(_) => vec![("exit".into(), None)],
        _ => vec![(String::new(), step.next)],
    }
}

/// The flow as an SVG document. `reached` is how many runs reached each step (by id).
pub fn draw(flow: &Flow, reached: &BTreeMap<String, u64>, entered: u64) -> String {
    let n = flow.steps.len();
    let top = |row: usize| 10 + row * (BOX_H + GAP);
    let height = top(n + 2);
    let width = LEFT + BOX_W + LANES;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="flow-graph" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="{}">"#,
        escape(&flow.id)
    );
    svg.push_str(r#"<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0 0 L10 5 L0 10 z" class="head"/></marker></defs>"#);
    let node = |svg: &mut String, row: usize, class: &str, title: &str, line: &str| {
        let y = top(row);
        let _ = write!(
            svg,
            r#"<g class="{class}"><rect x="{LEFT}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="6"/><text x="{}" y="{}" class="title">{}</text><text x="{}" y="{}" class="count">{}</text></g>"#,
            LEFT + 10,
            y + 19,
            escape(&clip(title, 40)),
            LEFT + 10,
            y + 37,
            escape(line)
        );
    };
    node(&mut svg, 0, "node trigger", &trigger_label(flow), &format!("entered {entered}"));
    for (i, step) in flow.steps.iter().enumerate() {
        let count = reached.get(&step.id).copied().unwrap_or(0);
        node(&mut svg, i + 1, "node step", &format!("{} · {}", step.id, step_label(step)), &format!("reached {count}"));
    }
    node(&mut svg, n + 1, "node end", "end", "");
    // Arrows: straight down to the next row; otherwise around on the right, one lane further out each.
    let mut lane = 0;
    let mut arrow = |svg: &mut String, from_row: usize, to_row: usize, label: &str| {
        let x_mid = LEFT + BOX_W / 2;
        let (label_x, label_y) = if to_row == from_row + 1 {
            let (y1, y2) = (top(from_row) + BOX_H, top(to_row));
            let _ = write!(svg, r#"<path class="edge" d="M{x_mid} {y1} L{x_mid} {y2}" marker-end="url(#arrow)"/>"#);
            (x_mid + 6, y1 + 20)
        } else {
            lane += 1;
            let x = LEFT + BOX_W;
            let out = x + 16 + (lane % 8) * 24;
            let (y1, y2) = (top(from_row) + BOX_H / 2 + 6, top(to_row) + BOX_H / 2 - 6);
            let _ = write!(
                svg,
                r#"<path class="edge" d="M{x} {y1} C{out} {y1} {out} {y2} {x} {y2}" fill="none" marker-end="url(#arrow)"/>"#
            );
            (x + 8, y1 + 14)
        };
        if !label.is_empty() {
            let text = escape(&clip(label, 24));
            let _ = write!(svg, r#"<text class="edge-label" x="{label_x}" y="{label_y}">{text}</text>"#);
        }
    };
    arrow(&mut svg, 0, 1, "");
    for (i, step) in flow.steps.iter().enumerate() {
        let from_row = i + 1;
        let mut seen: Vec<Option<usize>> = Vec::new();
        for (label, target) in exits(step) {
            if seen.contains(&target) && label.is_empty() {
                continue;
            }
            seen.push(target);
            let to_row = target.map_or(n + 1, |t| t + 1);
            arrow(&mut svg, from_row, to_row, &label);
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(yaml: &str) -> Box<Flow> {
        let connectors = tutti_engine::connectors::all();
        match tutti_flows::compile(yaml, &connectors).expect("the flow compiles") {
            tutti_flows::Definition::Flow(flow) => flow,
            _ => unreachable!(),
        }
    }

    #[test]
    fn every_step_is_a_box_every_way_on_an_arrow_and_names_are_text() {
        let f = flow(
            "flow: welcome\ntrigger: { event: '<Signed Up>' }\nsteps:\n  - id: wait\n    wait_for: { event: Order Completed, timeout: 1d }\n    on_event: done\n  - id: nudge\n    action: log.write\n    with: { message: hi }\n  - id: done\n    exit: bought\n",
        );
        let reached = BTreeMap::from([("nudge".to_owned(), 7)]);
        let svg = draw(&f, &reached, 9);
        assert_eq!(svg.matches("<rect").count(), 5, "trigger, three steps, end");
        assert!(svg.contains("event &lt;Signed Up&gt;") && !svg.contains("<Signed"), "{svg}");
        assert!(svg.contains("reached 7") && svg.contains("entered 9"));
        // wait: event (to done) and timeout (to nudge); nudge to done; done to the end; the trigger's arrow.
        assert_eq!(svg.matches("class=\"edge\"").count(), 5, "{svg}");
        assert!(svg.contains(">event<") && svg.contains(">timeout<") && svg.contains(">exit<"));
    }
}
