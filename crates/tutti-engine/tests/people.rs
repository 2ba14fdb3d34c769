//! The console's people in the real engine: added once, their passwords verified and changed, kept across a
//! restart, and never stored in clear.

use std::sync::Arc;

use tutti_engine::people::{PeopleError, Role};
use tutti_engine::{Clock, Config, Engine, ManualClock};

fn start(data: &std::path::Path) -> Engine {
    let mut config = Config::default();
    config.storage.data_dir = data.to_owned();
    Engine::start(config, Arc::new(ManualClock::new(1_790_000_000_000))).unwrap()
}

#[test]
fn people_sign_in_with_their_own_password_only_and_survive_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let engine = start(data.path());
    let people = engine.people();
    let hoa = people.add(" Hoa@Shop.VN ", "Nguyễn Hoa", Role::Admin, "mật khẩu của Hoa").unwrap();
    assert_eq!((hoa.email.as_str(), hoa.role), ("hoa@shop.vn", Role::Admin));
    assert!(matches!(people.add("hoa@shop.vn", "", Role::Viewer, "another password"), Err(PeopleError::Exists(_))));
    assert!(matches!(people.add("li@shop.cn", "李娜", Role::Approver, "short"), Err(PeopleError::Invalid(_))));
    people.add("li@shop.cn", "李娜", Role::Approver, "李娜的密码很长很长很长").unwrap();

    assert_eq!(people.verify("HOA@shop.vn", "mật khẩu của Hoa").unwrap().map(|p| p.email), Some("hoa@shop.vn".into()));
    assert_eq!(people.verify("hoa@shop.vn", "mật khẩu của hoa").unwrap(), None, "case matters in a password");
    assert_eq!(people.verify("nobody@shop.vn", "mật khẩu của Hoa").unwrap(), None);
    assert_eq!(people.verify("not an email", "mật khẩu của Hoa").unwrap(), None);

    people.set_password("li@shop.cn", "一个新的密码很长很长").unwrap();
    assert_eq!(people.verify("li@shop.cn", "李娜的密码很长很长很长").unwrap(), None, "the old one no longer works");
    people.set_role("li@shop.cn", Role::Marketer).unwrap();
    assert!(matches!(people.set_role("nobody@shop.vn", Role::Admin), Err(PeopleError::NotFound(_))));
    engine.shutdown();
    drop(engine);

    let bytes = std::fs::read(data.path().join(tutti_store::sqlite::PEOPLE_FILE)).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains("mật khẩu của Hoa") && !text.contains("一个新的密码很长很长"), "only hashes are stored");

    let engine = start(data.path());
    let people = engine.people();
    let li = people.verify("li@shop.cn", "一个新的密码很长很长").unwrap().expect("kept across a restart");
    assert_eq!(li.role, Role::Marketer);
    people.remove("hoa@shop.vn").unwrap();
    assert!(matches!(people.remove("hoa@shop.vn"), Err(PeopleError::NotFound(_))));
    assert_eq!(people.list().unwrap().iter().map(|p| p.email.as_str()).collect::<Vec<_>>(), ["li@shop.cn"]);
    engine.shutdown();
}

#[test]
fn a_personal_token_acts_as_its_person_until_it_expires_is_revoked_or_they_go() {
    let data = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.storage.data_dir = data.path().to_owned();
    let clock = Arc::new(ManualClock::new(1_790_000_000_000));
    let engine = Engine::start(config, clock.clone()).unwrap();
    let people = engine.people();
    people.add("mai@shop.vn", "Mai", Role::Approver, "mật khẩu của Mai").unwrap();
    assert!(matches!(people.create_token("mai@shop.vn", "ci", 0), Err(PeopleError::Invalid(_))));
    assert!(matches!(people.create_token("mai@shop.vn", " ", 30), Err(PeopleError::Invalid(_))));
    let (token, info) = people.create_token("mai@shop.vn", "ci", 30).unwrap();
    assert!(token.starts_with(tutti_engine::TOKEN_PREFIX) && token.len() == tutti_engine::TOKEN_PREFIX.len() + 64);
    assert_eq!(people.person_for_token(&token).unwrap().map(|p| p.email), Some("mai@shop.vn".into()));
    assert_eq!(people.tokens("mai@shop.vn").unwrap()[0].last_used, Some(clock.now_ms()), "its use is noted");
    assert_eq!(people.person_for_token(&format!("{token}0")).unwrap(), None);

    // It ends with its expiry...
    clock.advance(30 * 86_400_000);
    assert_eq!(people.person_for_token(&token).unwrap(), None);
    // ...when revoked...
    let (second, second_info) = people.create_token("mai@shop.vn", "laptop", 90).unwrap();
    assert!(!people.revoke_token("mai@shop.vn", &info.id[..6]).unwrap(), "a token is named by its whole id");
    assert!(people.revoke_token("mai@shop.vn", &second_info.id).unwrap());
    assert_eq!(people.person_for_token(&second).unwrap(), None);
    // ...and with its person.
    let (third, _) = people.create_token("mai@shop.vn", "phone", 90).unwrap();
    people.remove("mai@shop.vn").unwrap();
    assert_eq!(people.person_for_token(&third).unwrap(), None);
    engine.shutdown();
    drop(engine);
    let bytes = std::fs::read(data.path().join(tutti_store::sqlite::PEOPLE_FILE)).unwrap();
    assert!(!String::from_utf8_lossy(&bytes).contains(&token[10..]), "only hashes are stored");
}
