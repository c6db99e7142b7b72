//! "Never edit a shipped migration", enforced: every file in `src/store/sql/` is pinned here by
//! the MD5 of its bytes (what `md5sum` prints), and `MIGRATIONS` lists exactly these files in
//! order with their exact text.
//!
//! Adding migration 00N: add the file, its entry in `MIGRATIONS`, and one line below with the
//! output of `md5sum src/store/sql/00N_name.sql`. A failing pin means a shipped file changed:
//! put it back and add a new migration instead.

use md5::{Digest, Md5};
use missedcalld::store::migrations::MIGRATIONS;

/// (file name, md5 of its bytes), in migration order.
const PINS: &[(&str, &str)] = &[
    ("001_tables.sql", "c394587ecc478fb701e25728b7f7b5db"),
    ("002_views.sql", "72c24fdd20e60d5fc23acb79529a93de"),
    ("003_forwards.sql", "f60ad73c5eb6d60d2ad12b88bffaf51b"),
    ("004_gap_window.sql", "06455ac329f6fd00738e9748fffda715"),
    ("005_local_day.sql", "3d189baa99c272019d0b7461b844106d"),
    ("006_outbox.sql", "a34a46a0379165002330b926fa3de207"),
    ("007_gap_in_views.sql", "fa23253246c2b42d24031b067fc89b31"),
];

fn sql_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store/sql")
}

fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn every_shipped_migration_file_keeps_its_pinned_hash() {
    let mut files: Vec<String> = std::fs::read_dir(sql_dir())
        .expect("src/store/sql")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sql"))
        .collect();
    files.sort();
    let mut problems = Vec::new();
    for name in &files {
        let bytes = std::fs::read(sql_dir().join(name)).expect("read migration");
        let got = md5_hex(&bytes);
        match PINS.iter().find(|(pinned, _)| pinned == name) {
            None => problems.push(format!(
                "{name} is not pinned: add (\"{name}\", \"{got}\") to PINS"
            )),
            Some((_, want)) if *want != got => problems.push(format!(
                "{name} changed (md5 {got}, pinned {want}): shipped migrations are never edited; \
                 restore it and add a new migration"
            )),
            Some(_) => {}
        }
    }
    for (name, _) in PINS {
        if !files.iter().any(|f| f == name) {
            problems.push(format!("{name} is pinned but missing"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn migrations_list_the_pinned_files_in_order_with_their_exact_text() {
    assert_eq!(
        MIGRATIONS.len(),
        PINS.len(),
        "every pinned file has one MIGRATIONS entry"
    );
    for ((name, sql), (file, _)) in MIGRATIONS.iter().zip(PINS) {
        assert_eq!(format!("{name}.sql"), *file, "MIGRATIONS order");
        let text = std::fs::read_to_string(sql_dir().join(file)).expect("read migration");
        assert_eq!(*sql, text, "{file}: MIGRATIONS holds other text");
    }
}
