//! Meta's Marketing API for campaigns and ad sets
//! (<https://developers.facebook.com/docs/marketing-api/reference/ad-campaign-group>,
//! <https://developers.facebook.com/docs/marketing-api/reference/ad-campaign>): `GET /{id}?fields=name,status,
//! daily_budget` reads one, `POST /{id}` with `status` (`ACTIVE`, `PAUSED`) or `daily_budget` changes it
//! (answering `{"success": true}`), with the access token as a bearer. A daily budget is written in the ad
//! account currency's minor units: its offset is 100 for most currencies and 1 for those without minor units
//! (<https://developers.facebook.com/docs/marketing-api/currencies>: VND, JPY, KRW, IDR, CLP, COP, CRC, HUF,
//! ISK, PYG, TWD).

use serde_json::{Value, json};

use super::config::Meta;
use super::{Change, Target, answer};
use crate::Failure;
use crate::http::Http;

/// Currencies whose amounts Meta writes without minor units.
const WHOLE: [&str; 11] = ["CLP", "COP", "CRC", "HUF", "ISK", "IDR", "JPY", "KRW", "PYG", "TWD", "VND"];

/// A money amount as Meta's `daily_budget`.
pub fn minor_units(money: &tutti_core::money::Money) -> i64 {
    let offset = if WHOLE.contains(&money.currency.as_str()) { 1 } else { 100 };
    ((money.micros as i128 * offset as i128 + 500_000) / 1_000_000) as i64
}

pub(super) async fn read(http: &Http, m: &Meta, target: &Target, now: i64) -> Result<Value, Failure> {
    let url = format!("{}/{}?fields=name,status,daily_budget", m.api_base, target.id);
    let got = http.json(hyper::Method::GET, &url, &[("authorization", m.auth.expose())], None).await?;
    let v = answer(&got, "Meta", now)?;
    Ok(json!({"status": v["status"], "daily_budget": v["daily_budget"], "name": v["name"]}))
}

pub(super) async fn apply(http: &Http, m: &Meta, target: &Target, change: &Change, now: i64) -> Result<Value, Failure> {
    let before = read(http, m, target, now).await?;
    let budget;
    let field: (&str, &str) = match change {
        Change::Pause => ("status", "PAUSED"),
        Change::Resume => ("status", "ACTIVE"),
        Change::DailyBudget(money) => {
            if let Some(account) = &m.currency
                && *account != money.currency
            {
                return Err(Failure::permanent(format!(
                    "the ad account's currency is {account}; the budget is in {}",
                    money.currency
                )));
            }
            budget = minor_units(money).to_string();
            ("daily_budget", budget.as_str())
        }
    };
    let url = format!("{}/{}", m.api_base, target.id);
    let got = http.form(hyper::Method::POST, &url, &[("authorization", m.auth.expose())], &[field]).await?;
    let v = answer(&got, "Meta", now)?;
    if v["success"] != true {
        return Err(Failure::permanent(format!("Meta did not confirm the change: {v}")));
    }
    let after = read(http, m, target, now).await?;
    Ok(json!({"before": before, "after": after}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tutti_core::money::Money;

    #[test]
    fn budgets_are_written_in_the_currency_minor_units() {
        assert_eq!(minor_units(&Money::new(2_000_000 * 1_000_000, "VND")), 2_000_000);
        assert_eq!(minor_units(&Money::new(12_340_000, "USD")), 1_234);
        assert_eq!(minor_units(&Money::new(1_005_000, "CNY")), 101, "rounded to the nearest minor unit");
    }
}
