//! Every string the console shows, in English, Vietnamese and Chinese. A person's language is the one they
//! chose (the `tutti_lang` cookie), else the first of their browser's `Accept-Language` that Tutti speaks,
//! else English.

use axum::http::HeaderMap;

/// The languages the console speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Vi,
    Zh,
}

impl Lang {
    pub const ALL: [Lang; 3] = [Lang::En, Lang::Vi, Lang::Zh];

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Vi => "vi",
            Lang::Zh => "zh",
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        let primary = code.trim().split(['-', '_']).next().unwrap_or("").to_ascii_lowercase();
        Lang::ALL.into_iter().find(|l| l.code() == primary)
    }

    /// The person's choice, else their browser's first language Tutti speaks (by `q`), else English.
    pub fn of(headers: &HeaderMap) -> Lang {
        if let Some(lang) = crate::sessions::cookie(headers, "tutti_lang").and_then(Lang::parse) {
            return lang;
        }
        let accept = headers.get(axum::http::header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let mut offered: Vec<(f32, Lang)> = accept
            .split(',')
            .filter_map(|part| {
                let mut pieces = part.split(';');
                let lang = Lang::parse(pieces.next()?)?;
                let q =
                    pieces.find_map(|p| p.trim().strip_prefix("q=")).and_then(|q| q.parse::<f32>().ok()).unwrap_or(1.0);
                Some((q, lang))
            })
            .collect();
        // Stable: among equal weights the browser's order stands.
        offered.sort_by(|a, b| b.0.total_cmp(&a.0));
        offered.first().map_or(Lang::En, |(_, lang)| *lang)
    }

    pub fn words(self) -> &'static Words {
        match self {
            Lang::En => &en::EN,
            Lang::Vi => &vi::VI,
            Lang::Zh => &zh::ZH,
        }
    }
}

mod en;
mod vi;
mod zh;

impl Words {
    /// How an action stands (`pending`, `done`, `dead`, `skipped`), in words.
    pub fn outcome(&self, state: &str) -> &'static str {
        match state {
            "pending" => self.outcome_pending,
            "done" => self.outcome_done,
            "dead" => self.outcome_dead,
            "skipped" => self.outcome_skipped,
            _ => "?",
        }
    }
}

/// The console's strings in one language.
pub struct Words {
    pub sign_in: &'static str,
    pub email: &'static str,
    pub password: &'static str,
    pub sign_in_failed: &'static str,
    pub too_many_attempts: &'static str,
    pub sign_out: &'static str,
    pub overview: &'static str,
    pub signed_in_as: &'static str,
    pub events_accepted: &'static str,
    pub events_processed: &'static str,
    pub processor_lag: &'static str,
    pub actions_queued: &'static str,
    pub actions_delivered: &'static str,
    pub actions_retried: &'static str,
    pub actions_dead: &'static str,
    pub actions_skipped: &'static str,
    pub approvals_waiting: &'static str,
    pub dead_letters: &'static str,
    pub deliveries_by_connector: &'static str,
    pub connector: &'static str,
    pub outcomes: [&'static str; 5],
    pub nothing_delivered: &'static str,
    pub updated: &'static str,
    pub approvals: &'static str,
    pub nothing_waits: &'static str,
    pub profile: &'static str,
    pub why: &'static str,
    pub expires: &'static str,
    pub then: &'static str,
    pub subject: &'static str,
    pub body: &'static str,
    pub approve: &'static str,
    pub reject: &'static str,
    pub reason: &'static str,
    pub approvers_only: &'static str,
    pub approved: &'static str,
    pub rejected: &'static str,
    pub closed: &'static str,
    pub profiles: &'static str,
    pub search_profiles: &'static str,
    pub search: &'static str,
    pub search_help: &'static str,
    pub no_profile_matches: &'static str,
    pub erased: &'static str,
    pub first_seen: &'static str,
    pub last_seen: &'static str,
    pub identities: &'static str,
    pub consent: &'static str,
    pub subscribed: &'static str,
    pub unsubscribed: &'static str,
    pub segments: &'static str,
    pub in_no_segment: &'static str,
    pub traits: &'static str,
    pub trait_name: &'static str,
    pub value: &'static str,
    pub updated_at: &'static str,
    pub timeline: &'static str,
    pub nothing_yet: &'static str,
    pub when: &'static str,
    pub what: &'static str,
    pub detail: &'static str,
    pub outcome_heading: &'static str,
    pub runs: &'static str,
    pub flow: &'static str,
    pub state: &'static str,
    pub started: &'static str,
    pub run: &'static str,
    pub merges: &'static str,
    pub erase: &'static str,
    pub erase_warning: &'static str,
    pub type_to_confirm: &'static str,
    pub not_found: &'static str,
    pub event: &'static str,
    pub action: &'static str,
    pub outcome_pending: &'static str,
    pub outcome_done: &'static str,
    pub outcome_dead: &'static str,
    pub outcome_skipped: &'static str,
    pub deliveries: &'static str,
    pub any: &'static str,
    pub profile_key: &'static str,
    pub since: &'static str,
    pub until: &'static str,
    pub filter: &'static str,
    pub attempts: &'static str,
    pub replay: &'static str,
    pub replay_chosen: &'static str,
    pub replay_all: &'static str,
    pub replayed: &'static str,
    pub older: &'static str,
    pub audit: &'static str,
    pub kind: &'static str,
    pub by: &'static str,
    pub export: &'static str,
    pub audit_help: &'static str,
    pub not_a_time: &'static str,
    pub not_a_profile_id: &'static str,
    pub flows: &'static str,
    pub no_flows: &'static str,
    pub version: &'static str,
    pub category: &'static str,
    pub trigger: &'static str,
    pub status: &'static str,
    pub retired: &'static str,
    pub live: &'static str,
    pub entered: &'static str,
    pub unique_profiles: &'static str,
    pub goal_reached: &'static str,
    pub completed: &'static str,
    pub failed: &'static str,
    pub going_now: &'static str,
    pub graph: &'static str,
    pub steps: &'static str,
    pub step: &'static str,
    pub reached: &'static str,
    pub acted: &'static str,
    pub skipped: &'static str,
    pub arms: &'static str,
    pub exited_why: &'static str,
    pub not_entered_why: &'static str,
    pub recent_runs: &'static str,
    pub yaml: &'static str,
    pub problems_found: &'static str,
    pub preview_as: &'static str,
    pub events_to_play: &'static str,
    pub preview: &'static str,
    pub save_version: &'static str,
    pub saved_version: &'static str,
    pub preview_result: &'static str,
    pub preview_note: &'static str,
    pub preview_nothing: &'static str,
    pub decision: &'static str,
    pub fix_problems_first: &'static str,
    pub settings: &'static str,
    pub your_zone: &'static str,
    pub zone: &'static str,
    pub save: &'static str,
    pub unknown_zone: &'static str,
    pub connectors: &'static str,
    pub channel: &'static str,
    pub operations: &'static str,
    pub configured: &'static str,
    pub not_configured: &'static str,
    pub needed_by: &'static str,
    pub check: &'static str,
    pub check_ok: &'static str,
    pub check_failed: &'static str,
    pub flows_lacking: &'static str,
    pub connectors_help: &'static str,
    pub people: &'static str,
    pub name: &'static str,
    pub role: &'static str,
    pub sign_out_everywhere: &'static str,
    pub remove: &'static str,
    pub add_person: &'static str,
    pub first_password: &'static str,
    pub add: &'static str,
    pub done: &'static str,
    pub started_by: &'static str,
    pub review_gate: &'static str,
    pub passed_first: &'static str,
    pub passed_after: &'static str,
    pub did_not_pass: &'static str,
    pub rule: &'static str,
    pub severity: &'static str,
    pub field: &'static str,
    pub rule_says: &'static str,
    pub your_changes: &'static str,
    pub show_changes: &'static str,
    pub segment: &'static str,
    pub members: &'static str,
    pub backfill: &'static str,
    pub backfill_done: &'static str,
    pub backfill_going: &'static str,
    pub backfill_finished_over: &'static str,
    pub backfill_help: &'static str,
    pub no_segments: &'static str,
    pub new_segment: &'static str,
    pub segment_id: &'static str,
    pub more: &'static str,
    pub your_tokens: &'static str,
    pub token_once: &'static str,
    pub created: &'static str,
    pub last_used: &'static str,
    pub expires_on: &'static str,
    pub revoke: &'static str,
    pub token_name: &'static str,
    pub token_days: &'static str,
    pub make_token: &'static str,
    pub tokens_help: &'static str,
    pub four_eyes: &'static str,
    pub creatives: &'static str,
    pub creatives_help: &'static str,
    pub no_performance: &'static str,
    pub creatives_count: &'static str,
    pub impressions: &'static str,
    pub clicks: &'static str,
    pub conversions: &'static str,
    pub findings: &'static str,
    pub click_through: &'static str,
    pub conversion_rate: &'static str,
    pub budget_proposals: &'static str,
    pub proposed: &'static str,
    pub decided: &'static str,
    pub creative: &'static str,
    pub share: &'static str,
    pub amount: &'static str,
    pub budget_amount: &'static str,
    pub objective: &'static str,
    pub propose_budget: &'static str,
    pub not_a_budget: &'static str,
    pub not_enough_data: &'static str,
    pub events_per_second: &'static str,
    pub runs_started: &'static str,
    pub runs_ended: &'static str,
    pub broadcasts: &'static str,
    pub send_at: &'static str,
    pub sent_to: &'static str,
    pub cancel: &'static str,
    pub new_broadcast: &'static str,
    pub message_fields: &'static str,
    pub review: &'static str,
    pub schedule: &'static str,
    pub reaches: &'static str,
    pub now: &'static str,
    pub members_over_time: &'static str,
    pub paused: &'static str,
    pub pause: &'static str,
    pub resume: &'static str,
    pub pause_help: &'static str,
    pub trait_search_partial: &'static str,
    pub messages_30_days: &'static str,
    pub sent: &'static str,
    pub delivered: &'static str,
    pub opened: &'static str,
    pub clicked: &'static str,
    pub of_opens: &'static str,
    pub day: &'static str,
    pub report: &'static str,
    pub report_help: &'static str,
    pub attribution_window: &'static str,
    pub report_partial: &'static str,
    pub goal_conversion: &'static str,
    pub revenue_in_window: &'static str,
    pub copilot: &'static str,
    pub copilot_help: &'static str,
    pub plan_goal: &'static str,
    pub make_plan: &'static str,
    pub plan_word: &'static str,
    pub audience_now: &'static str,
    pub people_word: &'static str,
    pub budget_split: &'static str,
    pub cost_estimate: &'static str,
    pub plan_steps: &'static str,
    pub sample_messages: &'static str,
    pub review_passes: &'static str,
    pub review_fails: &'static str,
    pub changed_from_before: &'static str,
    pub yaml_created: &'static str,
    pub change_plan: &'static str,
    pub change_button: &'static str,
    pub approve_plan: &'static str,
    pub reject_plan: &'static str,
    pub recent_plans: &'static str,
    pub spend_of_budget: &'static str,
    pub of_budget: &'static str,
    pub no_spend: &'static str,
    pub split: &'static str,
    pub arm: &'static str,
    pub lift_vs_control: &'static str,
    pub control: &'static str,
    pub ask: &'static str,
    pub ask_help: &'static str,
    pub ask_button: &'static str,
    pub ask_failed: &'static str,
    pub assumed: &'static str,
    pub the_query: &'static str,
    pub try_asking: &'static str,
    pub conversations_page: &'static str,
    pub conversations_help: &'static str,
    pub no_conversations: &'static str,
    pub conversations_count: &'static str,
    pub questions_and_objections: &'static str,
    pub in_no_topic: &'static str,
    /// What grouped and named the topics: the words, or a model.
    pub grouped_by: &'static str,
    pub named_by: &'static str,
    pub topic: &'static str,
    pub mentions: &'static str,
    pub won: &'static str,
    pub weekly: &'static str,
    pub customers_said: &'static str,
    pub best_reply: &'static str,
    pub no_winning_reply: &'static str,
    pub kind_objection: &'static str,
    pub kind_question: &'static str,
    pub workers_page: &'static str,
    pub workers_help: &'static str,
    pub workers_alone: &'static str,
    pub partition: &'static str,
    pub lease_owner: &'static str,
    pub fencing_token: &'static str,
    pub lease_until: &'static str,
    pub worker_id: &'static str,
    pub worker_role: &'static str,
    pub worker_started: &'static str,
    pub worker_seen: &'static str,
    pub worker_live: &'static str,
    pub worker_gone: &'static str,
    pub this_process: &'static str,
    pub partitions_held: &'static str,
    pub unowned: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_choice_then_the_browser_then_english() {
        assert_eq!(Lang::of(&headers(&[])), Lang::En);
        assert_eq!(Lang::of(&headers(&[("accept-language", "vi-VN,vi;q=0.9,en;q=0.8")])), Lang::Vi);
        assert_eq!(Lang::of(&headers(&[("accept-language", "fr-FR, zh-CN;q=0.7, en;q=0.5")])), Lang::Zh);
        assert_eq!(Lang::of(&headers(&[("accept-language", "fr, de")])), Lang::En);
        let chosen = headers(&[("accept-language", "vi"), ("cookie", "a=b; tutti_lang=zh")]);
        assert_eq!(Lang::of(&chosen), Lang::Zh);
    }
}
