//! `aidsync admin`, run as a person would: the real binary on a temporary
//! SQLite file.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

fn aidsync(db: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aidsync"))
        .arg("admin")
        .arg("--database-url")
        .arg(db)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn facilities_are_added_once_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("admin.db").display());
    let add = |id: &str, name: &str| {
        aidsync(
            &db,
            &["facility", "add", id, "--name", name, "--region", "Kharkiv"],
        )
    };

    let out = add("izium-central", "Izium Central City Hospital");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("added facility izium-central"));

    let again = add("izium-central", "Izium again");
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("already exists"),
        "{}",
        text(&again.stderr)
    );

    let bad = add("not an id", "Somewhere");
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("not an id"),
        "{}",
        text(&bad.stderr)
    );

    let unnamed = add("kupiansk-central", " ");
    assert!(!unnamed.status.success());
    assert!(
        text(&unnamed.stderr).contains("name"),
        "{}",
        text(&unnamed.stderr)
    );

    let missing_region = aidsync(&db, &["facility", "add", "x", "--name", "X"]);
    assert_eq!(missing_region.status.code(), Some(2));

    let list = aidsync(&db, &["facility", "list"]);
    assert!(list.status.success());
    let stdout = text(&list.stdout);
    let rows: Vec<&str> = stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{stdout}");
    assert!(rows[0].contains("izium-central") && rows[0].contains("Izium Central City Hospital"));
}
