//! Checks across a flow's steps: results read only where awaited, no unknown or unreachable steps, no loop
//! that never waits.

use super::{Step, StepKind, successors};
use tutti_core::condition::Condition;
use tutti_core::decode::Cx;
use tutti_core::yaml::push_token;

/// A later step reading `run.steps.<id>` of an action must be able to: that action has to `await` its result.
pub(super) fn check_results_awaited(cx: &mut Cx<'_>, steps: &[Step], pointer: &str) {
    for (i, step) in steps.iter().enumerate() {
        let mut sources = Vec::new();
        match &step.kind {
            StepKind::Action(a) => a.with.sources(&mut sources),
            StepKind::UpdateProfile(p) => p.sources(&mut sources),
            StepKind::Branch(arms) => {
                sources.extend(arms.iter().filter_map(|a| a.when.as_ref()).map(Condition::source))
            }
            StepKind::WaitFor { event, .. } => sources.extend(event.when.as_ref().map(Condition::source)),
            StepKind::Generate(p) => p.sources(&mut sources),
            StepKind::Approve(a) => {
                sources.extend(a.when.as_ref().map(Condition::source));
                if let Some(d) = &a.default {
                    d.sources(&mut sources);
                }
            }
            _ => {}
        }
        for source in sources {
            for (at, _) in source.match_indices("steps.") {
                let rest = &source[at + 6..];
                let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-')).unwrap_or(rest.len());
                let name = &rest[..end];
                let Some(target) = steps.iter().find(|s| s.id == name) else { continue };
                if let StepKind::Action(a) = &target.kind
                    && !a.await_result
                {
                    cx.problem(
                        &push_token(pointer, &i.to_string()),
                        format!("step `{}` reads the result of `{name}`, which does not wait for it", step.id),
                        format!("add `await: true` to step `{name}`"),
                    );
                }
            }
        }
    }
}

/// Unreachable steps, and loops a run could go round without ever waiting.
pub(super) fn check_graph(cx: &mut Cx<'_>, steps: &[Step]) {
    let n = steps.len();
    // No step was read (each had a problem, already reported): there is no graph to check.
    if n == 0 {
        return;
    }
    let mut reached = vec![false; n];
    let mut stack = vec![0usize];
    while let Some(i) = stack.pop() {
        if std::mem::replace(&mut reached[i], true) {
            continue;
        }
        stack.extend(successors(steps, i));
    }
    for (i, step) in steps.iter().enumerate() {
        if !reached[i] {
            cx.problem(
                &format!("/steps/{i}"),
                format!("step `{}` can never be reached", step.id),
                "no earlier step leads here: name it in a `next`, or remove it",
            );
        }
    }
    // A cycle among steps that do not wait runs forever in one go.
    let waits = |i: usize| matches!(steps[i].kind, StepKind::Wait(_) | StepKind::WaitFor { .. });
    // 0 = unseen, 1 = on the current path, 2 = done.
    let mut state = vec![0u8; n];
    for start in 0..n {
        if state[start] != 0 || waits(start) {
            continue;
        }
        let mut path: Vec<(usize, Vec<usize>)> = vec![(start, successors(steps, start))];
        state[start] = 1;
        while let Some((node, pending)) = path.last_mut() {
            let node = *node;
            match pending.pop() {
                Some(next) if waits(next) => {}
                Some(next) if state[next] == 1 => {
                    let from = path.iter().position(|(s, _)| *s == next).unwrap_or(0);
                    let cycle: Vec<&str> = path[from..].iter().map(|(s, _)| steps[*s].id.as_str()).collect();
                    cx.problem(
                        &format!("/steps/{next}"),
                        format!("the steps {} -> {} loop without a wait", cycle.join(" -> "), steps[next].id),
                        "a loop must pass a `wait` or `wait_for`, or it would run forever at once",
                    );
                    state[next] = 2;
                }
                Some(next) if state[next] == 0 => {
                    state[next] = 1;
                    path.push((next, successors(steps, next)));
                }
                Some(_) => {}
                None => {
                    state[node] = 2;
                    path.pop();
                }
            }
        }
    }
}
