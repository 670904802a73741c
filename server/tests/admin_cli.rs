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
    // The log (stderr) was there to leak it, and stdout carries no log.
    assert!(text(&out.stderr).contains("user added"));
    assert!(!text(&out.stdout).contains("INFO"));

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

// Devices and the audit trail. The CLI cannot create devices (a device is a
// login, made through the server), so these tests seed the database with
// the library first, close it, then run the binary on it.

use aidsync_server::caller::{Caller, token_hash};
use aidsync_server::service::facilities::{self, NewFacility};
use aidsync_server::service::users::{self, NewUser};
use aidsync_server::service::{devices, shipments};
use aidsync_server::storage::{Db, DeviceRow};
use aidsync_shared::ids::{DeviceId, FacilityId, LineId, ShipmentId, UserId};
use aidsync_shared::model::{Line, NewShipment};
use aidsync_shared::roles::Role;

/// 2026-01-01 00:00 UTC, in ms: devices and shipments are seeded at fixed
/// times so the tables' dates are known.
const JAN_1_2026: i64 = 1_767_225_600_000;
const MINUTE: i64 = 60_000;
const DAY: i64 = 24 * 60 * MINUTE;
/// 2100-01-01 00:00 UTC: the seeded tokens' expiry, safely in the future.
const JAN_1_2100: i64 = 4_102_444_800_000;

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

struct Seeded {
    /// Anna's devices, oldest first, with their tokens; both valid until 2100.
    anna: Vec<(DeviceRow, String)>,
    /// Anna's device whose token expired on 2025-01-02.
    expired: DeviceRow,
    /// The coordinator's device, which created the shipments.
    olena: DeviceRow,
}

/// A facility, receiver `anna` with three devices, and coordinator `olena`
/// whose device created shipments `jica-001` then `jica-002`.
async fn seed(url: &str) -> Seeded {
    let db = Db::connect(url).await.unwrap();
    let facility = FacilityId::parse("izium-central").unwrap();
    facilities::add(
        &db,
        NewFacility {
            id: facility.clone(),
            name: "Izium Central City Hospital".into(),
            region: "Kharkiv".into(),
        },
        JAN_1_2026,
    )
    .await
    .unwrap();
    let user = |id: &str, role, facility, region| NewUser {
        id: UserId::parse(id).unwrap(),
        name: format!("{id} (test)"),
        role,
        facility,
        region,
    };
    let password = "a long enough passphrase";
    let anna = users::add(
        &db,
        user("anna", Role::Receiver, Some(facility.clone()), None),
        password,
        JAN_1_2026,
    )
    .await
    .unwrap();
    let olena = users::add(
        &db,
        user("olena", Role::Coordinator, None, Some("Kharkiv".into())),
        password,
        JAN_1_2026,
    )
    .await
    .unwrap();

    let device = |user, name, at: i64, until: i64| devices::create(&db, user, name, until - at, at);
    let expired = device(
        &anna,
        "old phone",
        JAN_1_2026 - 365 * DAY,
        JAN_1_2026 - 364 * DAY,
    )
    .await
    .unwrap()
    .0;
    let mut anna_devices = Vec::new();
    for (day, name) in [(0, "Anna's phone"), (1, "Anna's tablet")] {
        let at = JAN_1_2026 + day * DAY;
        anna_devices.push(device(&anna, name, at, JAN_1_2100).await.unwrap());
    }
    let (olena_device, _) = device(&olena, "Olena's laptop", JAN_1_2026, JAN_1_2100)
        .await
        .unwrap();

    // The coordinator's Caller, as a request with its token would get it.
    let caller = Caller {
        device: DeviceId::parse(&olena_device.id).unwrap(),
        user: UserId::parse(&olena.id).unwrap(),
        role: Role::Coordinator,
        facility: None,
        region: olena.region.clone(),
        actor: automerge::ActorId::try_from(olena_device.actor_id.as_str()).unwrap(),
        expires_at: olena_device.expires_at,
    };
    for (n, id) in ["jica-001", "jica-002"].into_iter().enumerate() {
        let new = NewShipment {
            id: ShipmentId::parse(id).unwrap(),
            donor: "JICA".into(),
            programme: String::new(),
            reference: format!("JICA/UA/{id}"),
            destination_facility: facility.clone(),
            expected_on: None,
            note: String::new(),
            lines: vec![Line {
                id: LineId::parse("line-1").unwrap(),
                item: "Portable ultrasound machine".into(),
                category: "imaging".into(),
                unit: "unit".into(),
                quantity_expected: 1,
                serials_expected: vec![],
                accessories: Vec::new(),
                unit_value: None,
            }],
        };
        // 2026-03-01 09:30, then a day and 75 minutes later.
        let at = JAN_1_2026 + 59 * DAY + 570 * MINUTE + n as i64 * (DAY + 75 * MINUTE);
        shipments::create(&db, &caller, new, at).await.unwrap();
    }
    db.close().await;
    Seeded {
        anna: anna_devices,
        expired,
        olena: olena_device,
    }
}

/// The data rows of a table (every line after the header).
fn rows(out: &Output) -> Vec<String> {
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .skip(1)
        .map(str::to_owned)
        .collect()
}

#[test]
fn devices_are_listed_and_revoked_and_their_tokens_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("admin.db").display());
    let seeded = block_on(seed(&db));
    let [(phone, phone_token), (tablet, tablet_token)] = &seeded.anna[..] else {
        panic!("two devices seeded");
    };

    // Anna's three devices, newest first, and the coordinator's.
    let all = rows(&aidsync(&db, &["device", "list"]));
    assert_eq!(all.len(), 4, "{all:#?}");
    let anna = rows(&aidsync(&db, &["device", "list", "--user", "anna"]));
    assert_eq!(anna.len(), 3, "{anna:#?}");
    for (row, device, created, status, name) in [
        (
            &anna[0],
            tablet,
            "2026-01-02 00:00",
            "until 2100-01-01 00:00",
            "Anna's tablet",
        ),
        (
            &anna[1],
            phone,
            "2026-01-01 00:00",
            "until 2100-01-01 00:00",
            "Anna's phone",
        ),
        (
            &anna[2],
            &seeded.expired,
            "2025-01-01 00:00",
            "expired 2025-01-02 00:00",
            "old phone",
        ),
    ] {
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cols[..2], [device.id.as_str(), "anna"], "{row}");
        assert!(row.contains(&format!(" {created} ")), "{row}");
        assert!(row.contains(&format!(" {status} ")), "{row}");
        assert!(row.ends_with(name), "{row}");
    }
    let olena = rows(&aidsync(&db, &["device", "list", "--user", "olena"]));
    assert_eq!(olena.len(), 1, "{olena:#?}");
    assert!(olena[0].starts_with(&seeded.olena.id), "{}", olena[0]);
    assert!(!olena.iter().any(|r| r.contains("anna")), "{olena:#?}");
    assert!(rows(&aidsync(&db, &["device", "list", "--user", "nobody"])).is_empty());

    // Revoking the phone: a confirmation, the list says so, its token is
    // refused from now on and the tablet's is not.
    let out = aidsync(&db, &["device", "revoke", &phone.id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // (Log lines go to stdout too, so look for the line.)
    let confirmation = format!(
        "revoked device {} of anna (Anna's phone); its synced records stay",
        phone.id
    );
    assert!(
        text(&out.stdout).lines().any(|l| l == confirmation),
        "{}",
        text(&out.stdout)
    );
    let anna = rows(&aidsync(&db, &["device", "list", "--user", "anna"]));
    let phone_row = anna.iter().find(|r| r.starts_with(&phone.id)).unwrap();
    assert!(phone_row.contains(" revoked 20"), "{phone_row}");
    let tablet_row = anna.iter().find(|r| r.starts_with(&tablet.id)).unwrap();
    assert!(
        tablet_row.contains(" until 2100-01-01 00:00 "),
        "{tablet_row}"
    );

    let revoked_at = |token: &str| {
        block_on(async {
            let db = Db::connect(&db).await.unwrap();
            let row = db.caller_by_token_hash(&token_hash(token)).await.unwrap();
            db.close().await;
            row.unwrap().revoked_at
        })
    };
    let first = revoked_at(phone_token);
    assert!(first.is_some(), "the revoked phone's token still works");
    assert_eq!(revoked_at(tablet_token), None);

    // Revoking again is harmless and keeps the first time.
    let again = aidsync(&db, &["device", "revoke", &phone.id]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(
        text(&again.stdout).contains("(already, since "),
        "{}",
        text(&again.stdout)
    );
    assert_eq!(revoked_at(phone_token), first);

    let unknown = aidsync(&db, &["device", "revoke", "no-such-device"]);
    assert!(!unknown.status.success());
    assert!(
        text(&unknown.stderr).contains("no device no-such-device"),
        "{}",
        text(&unknown.stderr)
    );
}

#[test]
fn changes_show_who_sent_what_from_which_device_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("admin.db").display());
    let seeded = block_on(seed(&db));
    let olena = &seeded.olena.id;

    let out = aidsync(&db, &["changes", "--user", "olena"]);
    let header = text(&out.stdout).lines().next().map(str::to_owned);
    assert_eq!(
        header
            .as_deref()
            .map(|h| h.split_whitespace().collect::<Vec<_>>()),
        Some(vec!["RECEIVED", "USER", "DEVICE", "SHIPMENT", "CHANGE"])
    );
    let changes = rows(&out);
    // One change per created shipment, the latest on top.
    assert_eq!(changes.len(), 2, "{changes:#?}");
    let mut hashes = Vec::new();
    for (row, shipment, received) in [
        (&changes[0], "jica-002", "2026-03-02 10:45"),
        (&changes[1], "jica-001", "2026-03-01 09:30"),
    ] {
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cols.len(), 6, "{row}");
        assert_eq!(format!("{} {}", cols[0], cols[1]), received, "{row}");
        assert_eq!(&cols[2..5], ["olena", olena.as_str(), shipment], "{row}");
        assert!(
            cols[5].len() == 16 && cols[5].bytes().all(|b| b.is_ascii_hexdigit()),
            "{row}"
        );
        hashes.push(cols[5]);
    }
    assert_ne!(hashes[0], hashes[1]);

    // The same rows by device; none by anna or her devices.
    assert_eq!(
        rows(&aidsync(&db, &["changes", "--device", olena])),
        changes
    );
    assert_eq!(
        rows(&aidsync(
            &db,
            &["changes", "--user", "anna", "--device", olena]
        )),
        Vec::<String>::new()
    );
    let anna = aidsync(&db, &["changes", "--user", "anna"]);
    assert_eq!(rows(&anna), Vec::<String>::new());
    assert!(text(&anna.stdout).starts_with("RECEIVED"));
    let phone = &seeded.anna[0].0.id;
    assert!(rows(&aidsync(&db, &["changes", "--device", phone])).is_empty());

    // --limit keeps the newest; out of range is refused.
    let newest = rows(&aidsync(&db, &["changes", "--limit", "1"]));
    assert_eq!(newest, changes[..1]);
    for limit in ["0", "10001"] {
        let out = aidsync(&db, &["changes", "--limit", limit]);
        assert!(!out.status.success(), "--limit {limit}");
        assert!(
            text(&out.stderr).contains("limit: between 1 and 10000"),
            "--limit {limit}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn projections_are_rebuilt_from_the_documents() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("aidsync.db").display());
    block_on(seed(&url));
    // Wipe one shipment's rows, as a bug or an older build might leave them.
    block_on(async {
        let db = Db::connect(&url).await.unwrap();
        let mut tx = db.begin_write().await.unwrap();
        tx.clear_projection("jica-001").await.unwrap();
        tx.commit().await.unwrap();
        let lines = |db: Db| async move {
            let filter = aidsync_server::storage::ReportFilter::default();
            db.list_lines(&aidsync_server::storage::Scope::All, &filter)
                .await
                .unwrap()
                .len()
        };
        assert_eq!(lines(db.clone()).await, 1, "only jica-002's line is left");
        db.close().await;
    });

    let out = aidsync(&url, &["rebuild-projections"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("rebuilt the projections of 2 shipments in "),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("rebuilt 2/2 shipments"),
        "progress on stderr"
    );
    block_on(async {
        let db = Db::connect(&url).await.unwrap();
        let filter = aidsync_server::storage::ReportFilter::default();
        let lines = db
            .list_lines(&aidsync_server::storage::Scope::All, &filter)
            .await
            .unwrap();
        let ids: Vec<&str> = lines.iter().map(|l| l.shipment_id.as_str()).collect();
        assert_eq!(ids, ["jica-001", "jica-002"]);
        assert_eq!(
            db.projection_version().await.unwrap(),
            aidsync_server::storage::PROJECTION_VERSION
        );
        db.close().await;
    });
}

#[test]
fn backup_writes_a_copy_that_opens_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("live.db").display());
    let add = aidsync(
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
    );
    assert!(add.status.success(), "{}", text(&add.stderr));

    let copy = dir.path().join("copy.db");
    let copy_s = copy.to_str().unwrap();
    let out = aidsync(&db, &["backup", copy_s]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("backed up to"),
        "{}",
        text(&out.stdout)
    );

    let listed = aidsync(&format!("sqlite:{copy_s}"), &["facility", "list"]);
    assert!(
        text(&listed.stdout).contains("izium-central"),
        "{}",
        text(&listed.stdout)
    );

    let again = aidsync(&db, &["backup", copy_s]);
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("exists"),
        "{}",
        text(&again.stderr)
    );

    let marked = aidsync(&db, &["mark-restored"]);
    assert!(marked.status.success(), "{}", text(&marked.stderr));
    assert!(
        text(&marked.stdout).contains("re-sends"),
        "{}",
        text(&marked.stdout)
    );
}

/// `aidsync serve` says where to open the phone app and the dashboard, and
/// its log (not a terminal here) carries no colour codes.
#[test]
fn serve_prints_where_to_open_the_apps_and_logs_plain_text() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("serve.db").display());
    let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../web");
    let mut child = Command::new(env!("CARGO_BIN_EXE_aidsync"))
        .args(["serve", "--bind", "127.0.0.1:0", "--database-url", &db])
        .arg("--web-root")
        .arg(&web)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Until the dashboard's line, or a few seconds of silence.
    let mut printed = Vec::new();
    while let Ok(line) = rx.recv_timeout(std::time::Duration::from_secs(10)) {
        let last = line.contains("dashboard");
        printed.push(line);
        if last {
            break;
        }
    }
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let serving = printed
        .iter()
        .find_map(|l| l.strip_prefix("aidsync: serving "))
        .unwrap_or_else(|| panic!("{printed:?}"))
        .to_owned();
    assert!(
        printed.contains(&format!("aidsync: phone app: {serving}/")),
        "{printed:?}"
    );
    assert!(
        printed.contains(&format!(
            "aidsync: coordinators' dashboard: {serving}/coordinator/"
        )),
        "{printed:?}"
    );
    let log = text(&out.stderr);
    assert!(log.contains("aidsync listening"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a log file: {log:?}"
    );
}

/// A phone's hand-carried file, imported on the server's machine: stored as
/// the phone's sync once, nothing the second time, refused whole if changed.
#[test]
fn a_hand_carried_file_is_imported_once_and_refused_if_changed() {
    use aidsync_shared::model::{Condition, NewReceipt, Recorder, ShipmentDoc};
    use aidsync_shared::sync::carry::{CarriedFile, signing_key};
    use aidsync_shared::sync::protocol::{
        Changes, DocUpload, PROTOCOL_VERSION, SyncRequest, encode,
    };

    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("admin.db").display());
    let seeded = block_on(seed(&db));
    let (device, token) = &seeded.anna[0];
    // Anna's phone, offline, counts the one ultrasound of jica-001.
    let request = block_on(async {
        let store = Db::connect(&db).await.unwrap();
        let mut tx = store.begin_read().await.unwrap();
        let stored = tx.load_document("jica-001", false).await.unwrap().unwrap();
        tx.commit().await.unwrap();
        store.close().await;
        let mut doc = ShipmentDoc::from_automerge(stored.doc);
        let before = doc.heads();
        doc.set_actor(automerge::ActorId::try_from(device.actor_id.as_str()).unwrap());
        let who = Recorder {
            user: UserId::parse("anna").unwrap(),
            device: DeviceId::parse(&device.id).unwrap(),
        };
        let receipt = NewReceipt {
            id: aidsync_shared::ids::ReceiptId::parse("r-carried").unwrap(),
            line_id: LineId::parse("line-1").unwrap(),
            quantity: 1,
            condition: Condition::Good,
            serials: Vec::new(),
            note: String::new(),
            voids: None,
            stage: None,
            reason: None,
            delivery_id: None,
        };
        doc.record_receipt(receipt, &who, JAN_1_2026 + 70 * DAY)
            .unwrap();
        let changes = doc.automerge_mut().get_changes(&before);
        encode(&SyncRequest {
            protocol: PROTOCOL_VERSION,
            cursor: 0,
            docs: vec![DocUpload {
                id: ShipmentId::parse("jica-001").unwrap(),
                changes: Changes::chunks(&changes),
            }],
        })
    });
    let file = CarriedFile::write(
        DeviceId::parse(&device.id).unwrap(),
        UserId::parse("anna").unwrap(),
        JAN_1_2026 + 70 * DAY,
        1,
        request,
        &signing_key(token),
    );
    let path = dir.path().join("anna.aidsync");
    std::fs::write(&path, &file).unwrap();
    let path = path.to_str().unwrap();

    let out = aidsync(&db, &["import-changes", path]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(said.contains("written by anna"), "{said}");
    assert!(
        said.contains("1 shipment(s) accepted (1 new change(s)), 0 refused"),
        "{said}"
    );
    let out = aidsync(&db, &["import-changes", path]);
    assert!(
        text(&out.stdout).contains("1 shipment(s) accepted (0 new change(s))"),
        "{}",
        text(&out.stdout)
    );

    let mut changed = file.clone();
    let at = changed.len() / 2;
    changed[at] ^= 0x20;
    std::fs::write(dir.path().join("changed.aidsync"), &changed).unwrap();
    let out = aidsync(
        &db,
        &[
            "import-changes",
            dir.path().join("changed.aidsync").to_str().unwrap(),
        ],
    );
    assert!(!out.status.success(), "a changed file is refused");
    let out = aidsync(&db, &["changes", "--user", "anna"]);
    assert_eq!(rows(&out).len(), 1, "the receipt stored once, nothing else");
}
