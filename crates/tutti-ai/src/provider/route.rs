//! Which provider answers which task, what happens when it cannot, and answers kept for reuse.
//!
//! - **Routing per task**: a task routed to a named provider goes there; an unrouted task goes to the default
//!   provider when one is configured, unless it is one of the cheap, certain tasks that stay local
//!   ([`Task::local_by_default`]: classification, tagging, scoring, clustering).
//! - **Fallback**: when the routed provider fails (unreachable, refused, timed out, a malformed answer) or the
//!   day's budget is spent, the local provider answers, and the completion says why
//!   ([`Completion::fallback_reason`]). Only when the local provider has no implementation of the task is the
//!   provider's error returned.
//! - **The cache**: answers of remote providers, keyed by a SHA-256 of the provider, its model and the whole
//!   request (messages, schema, tools, temperature, seed, max tokens; not `stream`, which changes how an answer
//!   travels, not what it is). Bounded in entries and age; a cached answer costs nothing and says `cached`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::local::Local;
use super::{AiError, Completion, Embeddings, Provider, Request, Task};

/// A day in milliseconds (budgets are per UTC day).
const DAY_MS: i64 = 86_400_000;

pub struct Router {
    local: Arc<Local>,
    providers: BTreeMap<String, Arc<dyn Provider>>,
    routes: BTreeMap<Task, String>,
    default: Option<String>,
    budget: Option<Budget>,
    cache: Cache,
}

/// How a router is set up.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    /// Task to provider name (`local` for the local provider).
    pub tasks: BTreeMap<Task, String>,
    /// The provider of unrouted generation, planning and judging.
    pub default: Option<String>,
    /// What remote calls may cost per UTC day, in millionths of the price table's currency.
    pub budget_per_day_micros: Option<u64>,
    /// Cached answers at most (0: no cache), and how long one stays.
    pub cache_entries: usize,
    pub cache_ttl_ms: i64,
}

impl Router {
    /// A router over `providers` (by name) and the local provider. Unknown provider names in `routes` are an
    /// error naming the task.
    pub fn new(local: Local, providers: Vec<Arc<dyn Provider>>, routes: Routes) -> Result<Router, String> {
        let providers: BTreeMap<String, Arc<dyn Provider>> =
            providers.into_iter().map(|p| (p.name().to_owned(), p)).collect();
        let known = |name: &str| name == "local" || providers.contains_key(name);
        let list = || {
            let mut names: Vec<&str> = providers.keys().map(String::as_str).collect();
            names.insert(0, "local");
            names.join(", ")
        };
        for (task, name) in &routes.tasks {
            if !known(name) {
                return Err(format!(
                    "task `{task}` is routed to `{name}`, which is not a provider; there are {}",
                    list()
                ));
            }
        }
        if let Some(name) = &routes.default
            && !known(name)
        {
            return Err(format!("the default provider `{name}` is not a provider; there are {}", list()));
        }
        Ok(Router {
            local: Arc::new(local),
            providers,
            routes: routes.tasks,
            default: routes.default,
            budget: routes.budget_per_day_micros.map(|limit| Budget { limit, spent: Mutex::new((0, 0)) }),
            cache: Cache::new(routes.cache_entries, routes.cache_ttl_ms),
        })
    }

    /// Only the local provider: what Tutti runs with when no model is configured.
    pub fn local_only(local: Local) -> Router {
        Router::new(local, Vec::new(), Routes::default()).expect("no routes to check")
    }

    pub fn local(&self) -> &Local {
        &self.local
    }

    /// The provider a task goes to first.
    pub fn provider_for(&self, task: Task) -> &str {
        match self.routes.get(&task) {
            Some(name) => name,
            None if task.local_by_default() => "local",
            None => self.default.as_deref().unwrap_or("local"),
        }
    }

    /// Whether `task` is routed to a configured remote provider.
    pub fn has_remote_for(&self, task: Task) -> bool {
        self.providers.contains_key(self.provider_for(task))
    }

    /// Whether any remote provider is configured.
    pub fn has_remote(&self) -> bool {
        !self.providers.is_empty()
    }

    /// Answers `request` by its route, falling back to the local provider. `now_ms`: the engine's clock (the
    /// budget's day, the cache's age).
    pub async fn complete(&self, request: &Request, now_ms: i64) -> Result<Completion, AiError> {
        let name = self.provider_for(request.task);
        let Some(provider) = self.providers.get(name) else { return self.local.answer(request) };
        if let Some(budget) = &self.budget
            && let Some(reason) = budget.exhausted(now_ms)
        {
            return self.fallback(request, AiError::Budget(reason));
        }
        let key = self.cache.enabled().then(|| cache_key(provider.as_ref(), request));
        if let Some(key) = &key
            && let Some(mut hit) = self.cache.get(key, now_ms)
        {
            hit.cached = true;
            hit.cost_micros = 0;
            hit.latency_ms = 0;
            return Ok(hit);
        }
        match provider.complete(request).await {
            Ok(completion) => {
                if let Some(budget) = &self.budget {
                    budget.spend(now_ms, completion.cost_micros);
                }
                if let Some(key) = key {
                    self.cache.put(key, completion.clone(), now_ms);
                }
                Ok(completion)
            }
            Err(e) => self.fallback(request, e),
        }
    }

    /// Embeds `texts` by the route of [`Task::Embed`] (local unless routed); the provider batches them as its
    /// endpoint allows. When the provider fails or the budget is spent, every text is embedded locally and the
    /// answer says why: vectors of one answer always share one space. Not cached.
    pub async fn embed(&self, texts: &[String], now_ms: i64) -> Embeddings {
        let name = self.provider_for(Task::Embed);
        let Some(provider) = self.providers.get(name) else { return self.local.embeddings(texts) };
        let error = match self.budget.as_ref().and_then(|b| b.exhausted(now_ms)) {
            Some(reason) => AiError::Budget(reason),
            None => match provider.embed(texts).await {
                Ok(e) => {
                    if let Some(budget) = &self.budget {
                        budget.spend(now_ms, e.cost_micros);
                    }
                    return e;
                }
                Err(e) => e,
            },
        };
        let mut local = self.local.embeddings(texts);
        local.fallback_reason = Some(error.to_string());
        local
    }

    fn fallback(&self, request: &Request, error: AiError) -> Result<Completion, AiError> {
        match self.local.answer(request) {
            Ok(mut c) => {
                c.fallback_reason = Some(error.to_string());
                Ok(c)
            }
            Err(AiError::Unsupported(_)) => Err(error),
            Err(other) => Err(other),
        }
    }
}

/// The cache key: provider, model and the request as JSON, without `stream`.
fn cache_key(provider: &dyn Provider, request: &Request) -> [u8; 32] {
    let mut r = request.clone();
    r.stream = false;
    let mut h = Sha256::new();
    h.update(provider.name().as_bytes());
    h.update([0]);
    h.update(provider.model().as_bytes());
    h.update([0]);
    h.update(serde_json::to_vec(&r).expect("requests serialise"));
    h.finalize().into()
}

struct Budget {
    limit: u64,
    /// (UTC day, spent that day).
    spent: Mutex<(i64, u64)>,
}

impl Budget {
    fn exhausted(&self, now_ms: i64) -> Option<String> {
        let mut s = self.spent.lock().expect("never poisoned");
        let day = now_ms.div_euclid(DAY_MS);
        if s.0 != day {
            *s = (day, 0);
        }
        (s.1 >= self.limit).then(|| format!("{} of {} micro-units spent today", s.1, self.limit))
    }

    fn spend(&self, now_ms: i64, micros: u64) {
        let mut s = self.spent.lock().expect("never poisoned");
        let day = now_ms.div_euclid(DAY_MS);
        if s.0 != day {
            *s = (day, 0);
        }
        s.1 = s.1.saturating_add(micros);
    }
}

/// A request's SHA-256.
type Key = [u8; 32];

struct Cache {
    capacity: usize,
    ttl_ms: i64,
    inner: Mutex<Entries>,
}

/// Answers with when they were stored, and the keys in the order stored (the oldest goes first).
type Entries = (HashMap<Key, (Completion, i64)>, VecDeque<Key>);

impl Cache {
    fn new(capacity: usize, ttl_ms: i64) -> Cache {
        Cache { capacity, ttl_ms, inner: Mutex::new((HashMap::new(), VecDeque::new())) }
    }

    fn enabled(&self) -> bool {
        self.capacity > 0
    }

    fn get(&self, key: &[u8; 32], now_ms: i64) -> Option<Completion> {
        let inner = self.inner.lock().expect("never poisoned");
        let (c, at) = inner.0.get(key)?;
        (self.ttl_ms <= 0 || now_ms - at < self.ttl_ms).then(|| c.clone())
    }

    fn put(&self, key: [u8; 32], completion: Completion, now_ms: i64) {
        let mut inner = self.inner.lock().expect("never poisoned");
        let (map, order) = &mut *inner;
        if map.insert(key, (completion, now_ms)).is_none() {
            order.push_back(key);
        }
        while map.len() > self.capacity {
            match order.pop_front() {
                Some(old) => {
                    map.remove(&old);
                }
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{Message, Pending, Usage};
    use serde_json::json;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A remote provider that answers from a script: Ok with a cost, or an error.
    struct Scripted {
        calls: AtomicU32,
        fail: Option<AiError>,
    }

    impl Provider for Scripted {
        fn name(&self) -> &str {
            "big"
        }
        fn model(&self) -> &str {
            "big-model"
        }
        fn complete<'a>(&'a self, _: &'a Request) -> Pending<'a> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let answer = match &self.fail {
                Some(e) => Err(e.clone()),
                None => Ok(Completion {
                    provider: "big".into(),
                    model: "big-model".into(),
                    local: false,
                    text: "from the model".into(),
                    structured: None,
                    tool_calls: Vec::new(),
                    finish_reason: Some("stop".into()),
                    usage: Usage { prompt_tokens: 10, completion_tokens: 5, estimated: false },
                    cost_micros: 400,
                    latency_ms: 30,
                    cached: false,
                    chunks: 0,
                    attempts: 1,
                    fallback_reason: None,
                }),
            };
            Box::pin(std::future::ready(answer))
        }
    }

    fn now<F: std::future::Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        match f.as_mut().poll(&mut std::task::Context::from_waker(std::task::Waker::noop())) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("the scripted providers answer at once"),
        }
    }

    fn local() -> Local {
        Local::new()
            .with(Task::Generate, Arc::new(|r: &Request| Ok(json!(format!("local: {}", r.messages[0].content)))))
            .with(Task::Classify, Arc::new(|_: &Request| Ok(json!("neutral"))))
    }

    fn router(fail: Option<AiError>, routes: Routes) -> (Router, Arc<Scripted>) {
        let big = Arc::new(Scripted { calls: AtomicU32::new(0), fail });
        (Router::new(local(), vec![big.clone()], routes).unwrap(), big)
    }

    fn ask(task: Task, text: &str) -> Request {
        Request::new(task, vec![Message::user(text)])
    }

    #[test]
    fn cheap_tasks_stay_local_and_generation_goes_to_the_default() {
        let (r, big) = router(None, Routes { default: Some("big".into()), ..Routes::default() });
        assert_eq!((r.provider_for(Task::Classify), r.provider_for(Task::Generate)), ("local", "big"));
        assert!(now(r.complete(&ask(Task::Classify, "x"), 0)).unwrap().local);
        assert_eq!(now(r.complete(&ask(Task::Generate, "x"), 0)).unwrap().text, "from the model");
        assert_eq!(big.calls.load(Ordering::SeqCst), 1);
        let routed = Routes { tasks: BTreeMap::from([(Task::Classify, "big".into())]), ..Routes::default() };
        let (r, _) = router(None, routed);
        assert_eq!((r.provider_for(Task::Classify), r.provider_for(Task::Generate)), ("big", "local"));
        assert!(
            Router::new(local(), vec![], Routes { default: Some("gpt".into()), ..Routes::default() })
                .is_err_and(|e| e.contains("`gpt`") && e.contains("local"))
        );
    }

    #[test]
    fn a_failing_model_falls_back_to_local_and_says_why() {
        for e in
            [AiError::Timeout(2000), AiError::Malformed("not JSON".into()), AiError::Unavailable("HTTP 503".into())]
        {
            let (r, _) = router(Some(e.clone()), Routes { default: Some("big".into()), ..Routes::default() });
            let c = now(r.complete(&ask(Task::Generate, "Chào chị Lan"), 0)).unwrap();
            assert!(c.local && c.text == "local: Chào chị Lan", "{c:?}");
            assert_eq!(c.fallback_reason, Some(e.to_string()));
            // A task the local provider cannot do returns the model's error.
            assert_eq!(now(r.complete(&ask(Task::Plan, "x"), 0)).unwrap_err(), e);
        }
    }

    #[test]
    fn the_budget_stops_remote_calls_for_the_rest_of_the_day() {
        let routes = Routes { default: Some("big".into()), budget_per_day_micros: Some(1000), ..Routes::default() };
        let (r, big) = router(None, routes);
        let day = 20_000 * DAY_MS;
        let sources: Vec<bool> =
            (0..4).map(|i| now(r.complete(&ask(Task::Generate, &format!("{i}")), day + i)).unwrap().local).collect();
        // 400 + 400 + 400 passes 1000 after the third call.
        assert_eq!(sources, [false, false, false, true]);
        let c = now(r.complete(&ask(Task::Generate, "4"), day + 5)).unwrap();
        assert!(c.fallback_reason.unwrap().contains("over budget"));
        assert!(!now(r.complete(&ask(Task::Generate, "5"), day + DAY_MS)).unwrap().local, "a new day, a new budget");
        assert_eq!(big.calls.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn embeddings_are_local_unless_routed_and_fall_back_whole() {
        let texts = vec!["lo ngại bảo mật dữ liệu".to_owned(), "担心数据安全".to_owned()];
        let (r, _) = router(None, Routes { default: Some("big".into()), ..Routes::default() });
        let e = now(r.embed(&texts, 0));
        assert!(e.local && e.fallback_reason.is_none() && e.vectors.len() == 2, "the default does not take embed");
        assert_eq!(e.vectors[0].len(), crate::embed::DIM);
        // Routed to a provider that cannot embed: every text is embedded locally, and the answer says why.
        let routed = Routes { tasks: BTreeMap::from([(Task::Embed, "big".into())]), ..Routes::default() };
        let (r, _) = router(None, routed);
        let e = now(r.embed(&texts, 0));
        assert!(e.local && e.fallback_reason.as_deref().is_some_and(|w| w.contains("no embeddings")), "{e:?}");
        assert_eq!(e.vectors.len(), 2);
    }

    #[test]
    fn the_cache_answers_the_same_request_once_per_model_and_parameters() {
        let routes = Routes { default: Some("big".into()), cache_entries: 2, cache_ttl_ms: 1000, ..Routes::default() };
        let (r, big) = router(None, routes);
        let a = ask(Task::Generate, "a");
        let first = now(r.complete(&a, 0)).unwrap();
        let mut streamed = a.clone();
        streamed.stream = true;
        let again = now(r.complete(&streamed, 10)).unwrap();
        assert!(!first.cached && again.cached && again.cost_micros == 0 && again.text == first.text);
        assert_eq!(big.calls.load(Ordering::SeqCst), 1);
        let mut warmer = a.clone();
        warmer.temperature = Some(0.9);
        assert!(!now(r.complete(&warmer, 20)).unwrap().cached, "other parameters, another answer");
        assert!(!now(r.complete(&a, 2000)).unwrap().cached, "too old");
        now(r.complete(&ask(Task::Generate, "b"), 2001)).unwrap();
        now(r.complete(&ask(Task::Generate, "c"), 2002)).unwrap();
        assert!(!now(r.complete(&warmer, 2003)).unwrap().cached, "evicted: two entries at most");
    }
}
