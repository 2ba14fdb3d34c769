//! Budgets in money through the real binary: each SMS costs the connector's price per part, the dispatcher
//! stops at the flow's budget (the rest skipped, saying why), the report shows the spend, and after a `kill -9`
//! the spend is what was settled, so the budget still holds.

mod common;

use common::{ADMIN_TOKEN, Server, wait_until};
use serde_json::json;
use tutti_connectors::testing::{self, Vendors};

const FLOW: &str = "flow: winback-sms
category: promotional
budget: { amount: 3500, currency: VND }
trigger: { event: Winback Due }
steps:
  - id: text
    action: sms.send
    with:
      to: '{{ profile.traits.phone }}'
      body: '[QC] Acme: giam 20% ao khoac den Chu nhat. Tu choi QC soan TC gui 789'
";

fn start(vendors: &Vendors, data: &std::path::Path) -> Server {
    let mut sms = vendors.sms_table("esms");
    sms["price"] = json!({"amount": 1000, "currency": "VND"});
    let mut connectors = toml::Table::new();
    connectors.insert("sms".into(), toml::Value::try_from(sms).unwrap());
    let mut config = toml::Table::new();
    config.insert("connectors".into(), toml::Value::Table(connectors));
    std::fs::write(data.join("tutti.toml"), toml::to_string(&config).unwrap()).unwrap();
    let flows = data.join("flows");
    std::fs::create_dir_all(&flows).unwrap();
    std::fs::write(flows.join("winback.yaml"), FLOW).unwrap();
    let flows = flows.to_str().unwrap().to_owned();
    let mut env: Vec<(&str, &str)> = vec![("TUTTI_FLOWS__DIR", flows.as_str())];
    env.extend_from_slice(testing::ENV);
    Server::start_in(data, &env)
}

fn settled(server: &Server) -> (usize, usize, Vec<String>) {
    let (_, list) = server.request("GET", "/api/v1/deliveries?connector=sms&limit=100", Some(ADMIN_TOKEN));
    let rows = list["deliveries"].as_array().cloned().unwrap_or_default();
    let state = |s: &str| rows.iter().filter(|r| r["outcome"] == s).count();
    let reasons =
        rows.iter().filter(|r| r["outcome"] == "skipped").map(|r| r["error"].as_str().unwrap_or("").to_owned());
    (state("done"), state("skipped"), reasons.collect())
}

fn due(server: &Server, person: usize) {
    let (status, _) = server.track(
        "/v1/identify",
        &json!({"userId": format!("c{person}"), "traits": {"phone": format!("09123456{person:02}")}}),
    );
    assert_eq!(status, 200);
    let (status, _) = server.track("/v1/track", &json!({"userId": format!("c{person}"), "event": "Winback Due"}));
    assert_eq!(status, 200);
}

#[test]
fn a_flow_stops_spending_at_its_budget_and_a_restart_remembers_the_spend() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let vendors = runtime.block_on(Vendors::start());
    let data = tempfile::tempdir().unwrap();
    let mut server = start(&vendors, data.path());
    for person in 0..6 {
        due(&server, person);
    }
    wait_until("six deliveries settled", || {
        let (done, skipped, _) = settled(&server);
        done + skipped == 6
    });
    let (done, skipped, reasons) = settled(&server);
    assert_eq!((done, skipped), (3, 3), "3 × 1,000 VND fit in 3,500 VND; a fourth would not");
    assert_eq!(vendors.sms().len(), 3, "the provider got three messages");
    assert!(reasons.iter().all(|r| r.starts_with("over budget") && r.contains("3,500 VND")), "{reasons:?}");
    let (status, report) = server.request("GET", "/api/v1/flows/winback-sms/report", Some(ADMIN_TOKEN));
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["spend"], json!([{"amount": 3000.0, "currency": "VND", "micros": 3_000_000_000i64}]), "{report}");
    assert_eq!(report["budget"]["amount"], json!(3500.0));
    let (ok, out) = common::cli(&server, &["analytics", "flow", "winback-sms"]);
    assert!(ok && out.contains("spend: 3,000 VND of the budget 3,500 VND"), "{out}");

    // Killed and started again: the spend settled is the ledger's start, and the budget still holds.
    server.kill9();
    let server = start(&vendors, data.path());
    wait_until("the spend read back", || {
        let (_, r) = server.request("GET", "/api/v1/flows/winback-sms/report", Some(ADMIN_TOKEN));
        r["spend"][0]["micros"] == json!(3_000_000_000i64)
    });
    due(&server, 7);
    wait_until("the seventh settled", || {
        let (done, skipped, _) = settled(&server);
        done + skipped == 7
    });
    assert_eq!(settled(&server).0, 3, "nothing more was spent");
    assert_eq!(vendors.sms().len(), 3);
}
