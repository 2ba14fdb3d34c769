//! Importing real export layouts into the store: every kept row lands once, a second import of the same file
//! changes nothing, text in Vietnamese and Chinese arrives intact, and rejected rows say where and why.

use tutti_core::creative::{Date, Owner, TagSource};
use tutti_insights::import::{ImportOptions, Importer, Layout};
use tutti_store::CreativeStore;
use tutti_store::sqlite::SqliteCreativeStore;

struct Summary {
    layout: Layout,
    creatives: tutti_store::Changes,
    performance: tutti_store::Changes,
    rejected: Vec<(u64, String)>,
    skipped: u64,
}

fn import(store: &SqliteCreativeStore, bytes: Vec<u8>, options: ImportOptions) -> Summary {
    let mut importer = Importer::new(std::io::Cursor::new(bytes), options).unwrap();
    let mut s = Summary {
        layout: importer.layout(),
        creatives: Default::default(),
        performance: Default::default(),
        rejected: Vec::new(),
        skipped: 0,
    };
    // Small chunks, so that a creative spanning chunks is exercised.
    while let Some(chunk) = importer.next_chunk(2) {
        s.creatives.add(store.put_creatives(&chunk.creatives).unwrap());
        s.performance.add(store.put_performance(&chunk.performance).unwrap());
        s.rejected.extend(chunk.rejected.into_iter().map(|r| (r.line, r.reason)));
        s.skipped += chunk.skipped;
    }
    s
}

fn store() -> (tempfile::TempDir, SqliteCreativeStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteCreativeStore::open(&dir.path().join("creatives.db")).unwrap();
    (dir, store)
}

#[test]
fn meta_ads_manager_export() {
    let (_dir, store) = store();
    let file = include_bytes!("fixtures/meta_ads_manager.csv").to_vec();
    let first = import(&store, file.clone(), ImportOptions::default());
    assert_eq!(first.layout, Layout::Meta);
    assert_eq!(first.performance.inserted, 3);
    assert_eq!(first.creatives.inserted, 2);
    assert_eq!(first.rejected.len(), 2, "{:?}", first.rejected);
    assert_eq!(first.rejected[0].0, 5);
    assert!(first.rejected[0].1.contains("impressions") && first.rejected[0].1.contains("abc"));
    assert!(first.rejected[1].1.contains("not a daily row"), "{}", first.rejected[1].1);
    let vi = store.creative("120210000000001").unwrap().unwrap();
    assert_eq!(vi.channel, "facebook");
    assert_eq!(vi.headline, "Mệt mỏi vì mất ngủ?");
    assert_eq!(vi.body, "Nệm cao su ôm trọn cơ thể, giảm 30% tuần này.");
    assert_eq!(store.creative("120210000000002").unwrap().unwrap().body, "传统广式月饼, 中秋前下单享8折");
    let totals = store.totals(None, None).unwrap();
    assert_eq!(totals["120210000000001"].impressions, 24_350);
    assert_eq!(totals["120210000000001"].spend_micros, 2_448_000 * 1_000_000);
    // The same file again: nothing changes.
    let again = import(&store, file, ImportOptions::default());
    assert_eq!((again.creatives.inserted, again.creatives.updated), (0, 0));
    assert_eq!((again.performance.inserted, again.performance.updated, again.performance.unchanged), (0, 0, 3));
    assert_eq!(store.count_performance().unwrap(), 3);
}

#[test]
fn google_ads_export_in_utf8_and_in_utf16_with_tabs() {
    let csv = include_str!("fixtures/google_ads.csv");
    // Google's "CSV for Excel": UTF-16LE with a byte-order mark, tab-separated.
    let mut utf16 = vec![0xFF, 0xFE];
    let tabbed = csv
        .lines()
        .map(|l| {
            let mut fields = Vec::new();
            let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(l.as_bytes());
            for record in reader.records() {
                fields.extend(record.unwrap().iter().map(str::to_owned));
            }
            fields.join("\t")
        })
        .collect::<Vec<_>>()
        .join("\r\n");
    for unit in tabbed.encode_utf16() {
        utf16.extend(unit.to_le_bytes());
    }
    for bytes in [csv.as_bytes().to_vec(), utf16] {
        let (_dir, store) = store();
        let s = import(&store, bytes, ImportOptions::default());
        assert_eq!(s.layout, Layout::Google);
        assert!(s.rejected.is_empty(), "{:?}", s.rejected);
        assert_eq!(s.skipped, 1, "the Total row");
        assert_eq!(s.performance.inserted, 3);
        let totals = store.totals(None, None).unwrap();
        assert_eq!(totals["6911111"].impressions, 2_334);
        assert_eq!(totals["6911111"].spend_micros, 230_750_000);
        assert_eq!(totals["6911111"].revenue_micros, 640_000_000);
        let c = store.creative("6922222").unwrap().unwrap();
        assert_eq!((c.channel.as_str(), c.headline.as_str()), ("google", "Why do your knees hurt after runs?"));
        assert_eq!(c.campaign, "Spring | Search");
    }
}

#[test]
fn generic_layout_with_competitors_and_manual_tags() {
    let (_dir, store) = store();
    let s = import(&store, include_bytes!("fixtures/generic.csv").to_vec(), ImportOptions::default());
    assert_eq!(s.layout, Layout::Generic);
    assert_eq!(s.rejected.len(), 1);
    assert_eq!(s.rejected[0], (5, "no channel (a `channel` column, or --channel)".to_owned()));
    assert_eq!(s.performance.inserted, 2);
    let g1 = store.creative("g-1").unwrap().unwrap();
    assert_eq!(g1.tags["tone"].value, "emotional");
    assert_eq!(g1.tags["tone"].source, TagSource::Manual);
    assert_eq!(g1.launched, Some(Date::constant(2026, 2, 20)));
    let rival = store.creative("r-1").unwrap().unwrap();
    assert_eq!(rival.owner, Owner::Competitor("Rival Co".to_owned()));
    assert_eq!(rival.headline, "Giảm 50% hôm nay");
    // --channel fills the gap on a second run; the rest is unchanged.
    let s = import(
        &store,
        include_bytes!("fixtures/generic.csv").to_vec(),
        ImportOptions { channel: Some("email".to_owned()), ..ImportOptions::default() },
    );
    assert!(s.rejected.is_empty());
    assert_eq!((s.creatives.inserted, s.creatives.unchanged), (1, 2));
    assert_eq!(store.creative("g-2").unwrap().unwrap().channel, "email");
}

#[test]
fn a_file_without_a_known_header_is_refused_whole() {
    let err = Importer::new(std::io::Cursor::new(b"a,b,c\n1,2,3\n".to_vec()), ImportOptions::default()).unwrap_err();
    assert!(err.to_string().contains("no header row found"), "{err}");
    let err = Importer::new(std::io::Cursor::new(Vec::new()), ImportOptions::default()).unwrap_err();
    assert_eq!(err.to_string(), "the file is empty");
}

mod hostile {
    use proptest::prelude::*;
    use tutti_insights::import::{ImportOptions, Importer};

    /// Cells that exports and attackers both produce: numbers in odd shapes, quotes, separators, CJK, control
    /// characters, huge values.
    fn cell() -> impl Strategy<Value = String> {
        prop_oneof![
            "[0-9]{0,20}",
            "-?[0-9]{1,3}(,[0-9]{3}){0,3}(\\.[0-9]{0,8})?",
            "(2026|1999|0000)[-/](0[0-9]|1[0-9])[-/][0-3][0-9]",
            "[\"',;\t\r\n]{0,4}",
            "[a-zA-Zđăơư中文价格]{0,12}",
            Just("--".to_owned()),
            Just("99999999999999999999999".to_owned()),
            Just("\u{0}\u{feff}".to_owned()),
        ]
    }

    fn quoted(c: &str) -> String {
        format!("\"{}\"", c.replace('"', "\"\""))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Any bytes at all: an error naming the problem, or rows read; never a panic.
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2_000)) {
            if let Ok(mut importer) = Importer::new(std::io::Cursor::new(bytes), ImportOptions::default()) {
                while importer.next_chunk(7).is_some() {}
            }
        }

        /// A valid generic header over random cells: every row is kept, rejected with a reason, or skipped.
        #[test]
        fn every_row_is_accounted_for(rows in proptest::collection::vec(proptest::collection::vec(cell(), 8), 0..40)) {
            let mut csv = String::from("creative_id,channel,date,impressions,clicks,conversions,spend,revenue\n");
            for row in &rows {
                let cells: Vec<String> = row.iter().map(|c| quoted(c)).collect();
                csv.push_str(&cells.join(","));
                csv.push('\n');
            }
            let mut importer = Importer::new(std::io::Cursor::new(csv.into_bytes()), ImportOptions::default()).unwrap();
            let (mut kept, mut rejected, mut skipped) = (0usize, 0usize, 0u64);
            while let Some(chunk) = importer.next_chunk(5) {
                kept += chunk.performance.len();
                rejected += chunk.rejected.len();
                skipped += chunk.skipped;
                for r in &chunk.rejected {
                    prop_assert!(!r.reason.is_empty());
                    prop_assert!(r.line >= 2);
                }
                for p in &chunk.performance {
                    prop_assert!(p.numbers.spend_micros >= 0);
                }
            }
            // Every row is a performance row, rejected or skipped, except rows without a date, which may stand for a
            // creative alone; nothing else may vanish.
            let accounted = kept + rejected + skipped as usize;
            let dateless = rows.iter().filter(|r| r[2].trim().is_empty()).count();
            prop_assert!(accounted <= rows.len());
            prop_assert!(rows.len() - accounted <= dateless, "{} rows unaccounted, {dateless} without a date", rows.len() - accounted);
        }
    }
}
