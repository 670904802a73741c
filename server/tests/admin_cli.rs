//! `aidsync admin`, run as a person would: the real binary on a temporary
//! SQLite file.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn aidsync(db: &str, args: &[&str]) -> Output {
    aidsync_with_stdin(db, args, "")
}

fn aidsync_with_stdin(db: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_aidsync"))
        .arg("admin")
        .arg("--database-url")
        .arg(db)
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
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

#[test]
fn users_are_added_with_a_role_and_passwords_never_shown_twice() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("admin.db").display());
    let ok = |out: &Output| assert!(out.status.success(), "{}", text(&out.stderr));
    ok(&aidsync(
        &db,
        &[
            "facility",
            "add",
            "izium-central",
            "--name",
            "Izium",
            "--region",
            "Kharkiv",
        ],
    ));

    // Generated password: printed once, on stdout only.
    let out = aidsync(
        &db,
        &[
            "user",
            "add",
            "olena",
            "--name",
            "Olena K.",
            "--role",
            "coordinator",
            "--region",
            "Kharkiv",
        ],
    );
    ok(&out);
    let stdout = text(&out.stdout);
    let password = stdout
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .expect("a generated password is printed")
        .to_owned();
    assert_eq!(password.len(), 20);
    assert!(
        !text(&out.stderr).contains(&password),
        "password in the log"
    );

    // A password from stdin is never echoed or logged.
    let secret = "a long enough passphrase";
    let out = aidsync_with_stdin(
        &db,
        &[
            "user",
            "add",
            "anna",
            "--name",
            "Anna",
            "--role",
            "receiver",
            "--facility",
            "izium-central",
            "--password-stdin",
        ],
        &format!("{secret}\n"),
    );
    ok(&out);
    assert!(!text(&out.stdout).contains(secret) && !text(&out.stderr).contains(secret));
    let short = aidsync_with_stdin(
        &db,
        &[
            "user",
            "add",
            "bohdan",
            "--name",
            "B",
            "--role",
            "admin",
            "--password-stdin",
        ],
        "short\n",
    );
    assert!(!short.status.success());
    assert!(
        text(&short.stderr).contains("at least 12"),
        "{}",
        text(&short.stderr)
    );

    // Role rules.
    for (args, complaint) in [
        (
            vec!["user", "add", "x1", "--name", "X", "--role", "receiver"],
            "facility",
        ),
        (
            vec![
                "user",
                "add",
                "x2",
                "--name",
                "X",
                "--role",
                "admin",
                "--facility",
                "izium-central",
            ],
            "facility",
        ),
        (
            vec![
                "user",
                "add",
                "x3",
                "--name",
                "X",
                "--role",
                "receiver",
                "--facility",
                "nowhere",
            ],
            "no facility",
        ),
        (
            vec!["user", "add", "x4", "--name", "X", "--role", "boss"],
            "role",
        ),
        (
            vec!["user", "add", "olena", "--name", "X", "--role", "admin"],
            "already exists",
        ),
    ] {
        let out = aidsync(&db, &args);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            text(&out.stderr).contains(complaint),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }

    let out = aidsync(&db, &["user", "reset-password", "anna"]);
    ok(&out);
    assert!(text(&out.stdout).contains("password: "));
    let out = aidsync(&db, &["user", "reset-password", "nobody"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no user nobody"));

    let list = aidsync(&db, &["user", "list"]);
    ok(&list);
    let stdout = text(&list.stdout);
    let rows: Vec<&str> = stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    assert!(
        rows.iter().any(|r| r.starts_with("anna")
            && r.contains("receiver")
            && r.contains("izium-central"))
    );
    assert!(
        rows.iter()
            .any(|r| r.starts_with("olena") && r.contains("coordinator") && r.contains("Kharkiv"))
    );
    assert!(!stdout.contains("argon2") && !stdout.contains(&password));
}
