//! Hostile templates and conditions: each one parses to a located error or renders to a clear error within
//! its limits; none panics, aborts or runs on. Written by Tutti's developers from the ways the engine was
//! stopped before (ranges from event data, string doubling, division overflow, `cols: 0`, nested loops and
//! comprehensions) and their relatives; nothing here tunes the limits.

use std::time::Instant;

use serde_json::{Value, json};
use tutti_core::budget::Limits;
use tutti_core::condition::Condition;
use tutti_core::template::Template;

/// The shared corpus (tests/hostile/expressions.json).
struct Corpus {
    event: Value,
    render: Vec<String>,
    parse: Vec<String>,
    conditions: Vec<String>,
}

fn corpus() -> Corpus {
    let raw: Value = serde_json::from_str(include_str!("../../../tests/hostile/expressions.json")).unwrap();
    let mut properties = raw["event_properties"].clone();
    properties["text"] = json!("x".repeat(raw["text_bytes"].as_u64().unwrap() as usize));
    let list = |k: &str| raw[k].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
    Corpus {
        event: json!({"properties": properties}),
        render: list("render"),
        parse: list("parse"),
        conditions: list("conditions"),
    }
}

fn data() -> (Value, Value) {
    let profile = json!({"traits": {"name": "Lan", "tags": (0..100).map(|i| format!("t{i}")).collect::<Vec<_>>()}});
    (corpus().event, profile)
}

fn render(source: &str) -> Result<String, String> {
    let (event, profile) = data();
    let template = Template::parse(source).map_err(|e| format!("parse: {e}"))?;
    template.render(&[("event", &event), ("profile", &profile)]).map_err(|e| e.to_string())
}

#[test]
fn hostile_templates_fail_with_a_reason_within_the_limits() {
    let corpus = corpus();
    assert!(corpus.render.len() + corpus.parse.len() + corpus.conditions.len() >= 40);
    for source in &corpus.render {
        let started = Instant::now();
        let result = render(source);
        let took = started.elapsed();
        let error = result.expect_err(source);
        assert!(!error.starts_with("parse:"), "{source} should parse and fail while rendering: {error}");
        assert!(!error.is_empty(), "{source}: an error says why");
        // A limit stops each of these; catching a panic is only the last line of defence.
        assert!(!error.contains("inside Liquid") && !error.contains("failed:"), "{source}: {error}");
        // The time limit is a backstop; each of these stops on a step, size or arithmetic limit well before
        // it. Generous to allow for a loaded machine and a debug build: a stall would take minutes.
        assert!(took.as_secs() < 10, "{source} took {took:?}");
    }
}

#[test]
fn hostile_templates_visible_in_the_source_are_refused_when_parsing() {
    let corpus = corpus();
    for source in &corpus.parse {
        let error = Template::parse(source).expect_err(source);
        assert!(error.line >= 1 && error.column >= 1, "{source}: {error}");
        assert!(!error.message.is_empty(), "{source}");
    }
    let nested = Template::parse(&corpus.parse[2]).unwrap_err();
    assert!(nested.message.contains("nested loops would run 1000000 times"), "{nested}");
    let cols = Template::parse(&corpus.parse[3]).unwrap_err();
    assert!(cols.message.contains("cols"), "{cols}");
}

#[test]
fn limit_errors_name_the_limit() {
    // The wall clock is lifted here so the steps are what stops it, however slow the build.
    let (event, profile) = data();
    let unhurried = Limits { time: std::time::Duration::from_secs(600), ..Limits::default() };
    let t = Template::parse(&corpus().render[0]).unwrap();
    let steps = t.render_with(&[("event", &event), ("profile", &profile)], unhurried).unwrap_err().to_string();
    assert!(steps.contains("step limit of 100000"), "{steps}");
    let size = render("{% for i in (1..300) %}{{ event.properties.text }}{% endfor %}").unwrap_err();
    assert!(size.contains("size limit of 262144 bytes"), "{size}");
    let overflow = render("{{ event.properties.min | divided_by: -1 }}").unwrap_err();
    assert!(overflow.contains("overflow in divided_by"), "{overflow}");
    let t = Template::parse("{% for i in (1..event.properties.big) %}{% endfor %}").unwrap();
    let lowered = t.render_with(&[("event", &event), ("profile", &profile)], Limits { steps: 50, ..Limits::default() });
    let e = lowered.unwrap_err();
    assert!(e.to_string().contains("step limit of 50"), "{e}");
    assert!(e.limit.is_some());
}

#[test]
fn ordinary_templates_keep_working() {
    for (source, expected) in [
        ("{% for i in (1..3) %}{{ i }}{% endfor %}", "123"),
        ("{{ '2026-12-06 10:00:00 +0700' | date: '%Y-%m-%d %-d %010d %%' }}", "2026-12-06 6 0000000006 %"),
        ("{{ '2026-12-06 10:00:00 +0700' | date: '%64d' }}", &format!("{:0>64}", 6)),
        ("{{ 'not a date' | date: '%Y' }}", "not a date"),
        ("{% for i in (1..5) offset: 1 limit: 2 %}{{ i }}{% endfor %}", "23"),
        ("{% for i in (1..3) reversed %}{{ i }}{% endfor %}", "321"),
        ("{% for i in (1..9) %}{% if i == 3 %}{% break %}{% endif %}{{ i }}{% endfor %}", "12"),
        ("{% for i in (1..4) %}{% if i == 2 %}{% continue %}{% endif %}{{ i }}{% endfor %}", "134"),
        (
            "{% for t in profile.traits.tags limit: 2 %}{{ t }}{% unless forloop.last %},{% endunless %}{% endfor %}",
            "t0,t1",
        ),
        (
            "{% for i in (1..2) %}{% for j in (1..2) %}{{ forloop.parentloop.index }}{{ forloop.index }} {% endfor %}{% endfor %}",
            "11 12 21 22 ",
        ),
        ("{% for x in profile.nothing %}x{% else %}empty{% endfor %}", "empty"),
        (
            "{% tablerow i in (1..3) cols: 2 %}{{ i }}{% endtablerow %}",
            "<tr class=\"row1\"><td class=\"col1\">1</td><td class=\"col2\">2</td></tr><tr class=\"row2\"><td class=\"col1\">3</td></tr>",
        ),
        ("{% capture greeting %}Chào {{ profile.traits.name }}{% endcapture %}{{ greeting }}!", "Chào Lan!"),
        ("{% for i in (1..3) %}{% ifchanged %}{{ i | divided_by: 2 }}{% endifchanged %}{% endfor %}", "01"),
        (
            "{{ 7 | divided_by: 2 }} {{ -7 | divided_by: 2 }} {{ 7 | modulo: 3 }} {{ -7 | modulo: 3 }} {{ 7.0 | divided_by: 2 }}",
            "3 -4 1 2 3.5",
        ),
        ("{{ 2 | plus: 3 }} {{ 2 | minus: 3 }} {{ 2 | times: 3 }} {{ -2 | abs }} {{ 1.5 | plus: 1 }}", "5 -1 6 2 2.5"),
        (
            "{{ 'a-b-c' | replace: '-', '+' }} {{ 'a-b-c' | replace_first: '-', '+' }} {{ 'abc' | replace: '', '.' }}",
            "a+b+c a+b-c .a.b.c.",
        ),
        (
            "{{ profile.traits.tags | slice: 0, 3 | join: ', ' }} {{ profile.traits.tags | slice: 0, 2 | join }}",
            "t0, t1, t2 t0 t1",
        ),
        (
            "Mã đơn 123456789012345678901234 {{ '99999999999999999999' }}",
            "Mã đơn 123456789012345678901234 99999999999999999999",
        ),
        ("{{ 'Xin chào' | upcase }} {{ '你好' | size }} {{ 'a,b' | split: ',' | last }}", "XIN CHÀO 2 b"),
        ("{% for p in event.properties %}{% if p[0] == 'word' %}{{ p[1] }}{% endif %}{% endfor %}", "ab"),
    ] {
        assert_eq!(render(source).as_deref(), Ok(expected), "{source}");
    }
}

#[test]
fn hostile_conditions_fail_with_a_reason_within_the_limits() {
    let (event, profile) = data();
    let corpus = corpus();
    for source in &corpus.conditions {
        let condition = Condition::compile(source).unwrap_or_else(|e| panic!("{source} should compile: {e}"));
        let started = Instant::now();
        let result = condition.evaluate(&[("event", &event), ("profile", &profile)]);
        assert!(result.is_err(), "{source} gave {result:?}");
        assert!(started.elapsed().as_secs() < 10, "{source} took {:?}", started.elapsed());
    }
    let deep = Condition::compile(&corpus.conditions[0]).unwrap();
    let unhurried = Limits { time: std::time::Duration::from_secs(600), ..Limits::default() };
    let e = deep.evaluate_with(&[("event", &event), ("profile", &profile)], unhurried).unwrap_err();
    assert!(e.message.contains("step limit of 100000") && e.limit.is_some(), "{e}");
}

#[test]
fn nested_comprehensions_compile_read_only_their_free_variables_and_work() {
    let c = Condition::compile("a.all(x, b.all(y, x + y > 0))").unwrap();
    assert_eq!(c.variables(), ["a", "b"]);
    assert_eq!(c.evaluate(&[("a", &json!([1, 2])), ("b", &json!([3, 4]))]), Ok(true));
    assert_eq!(c.evaluate(&[("a", &json!([1, -9])), ("b", &json!([3, 4]))]), Ok(false));
    let m =
        Condition::compile("event.items.map(i, i.price * i.qty).exists(t, t > 100) && x.filter(y, y > 1).size() == 1")
            .unwrap();
    assert_eq!(m.variables(), ["event", "x"]);
    let items = json!({"items": [{"price": 30, "qty": 2}, {"price": 60, "qty": 2}]});
    assert_eq!(m.evaluate(&[("event", &items), ("x", &json!([1, 2]))]), Ok(true));
}
