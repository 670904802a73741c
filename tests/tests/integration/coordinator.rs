//! What coordinators do: review and settle, import manifests, query the
//! merged picture and download it.

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_DISPOSITION, CONTENT_TYPE};
use serde_json::{Value, json};

use aidsync_shared::model::Condition;
use aidsync_tests::harness::TestDb;

use crate::common::{
    EventStream, FACILITY, FAR_FACILITY, OTHER_FACILITY, SHIPMENT, World, receipt, shipment_id,
};

async fn get(world: &World, token: &str, path: &str) -> (StatusCode, Value) {
    world.api.get(Some(token), path).await.unwrap()
}

/// Raw bytes and headers of a download.
async fn download(world: &World, token: &str, path: &str) -> (StatusCode, String, String, Vec<u8>) {
    let response = world
        .api
        .http
        .get(format!("{}{path}", world.api.base))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let (content_type, disposition) = (header(CONTENT_TYPE), header(CONTENT_DISPOSITION));
    let status = response.status();
    (
        status,
        content_type,
        disposition,
        response.bytes().await.unwrap().to_vec(),
    )
}

async fn post_csv(world: &World, token: &str, csv: &str) -> (StatusCode, Value) {
    let response = world
        .api
        .http
        .post(format!("{}/api/v1/shipments/import", world.api.base))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .header(CONTENT_TYPE, "text/csv")
        .body(csv.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A coordinator's review settles a discrepancy; phones receive it.
pub async fn reviews_settle_discrepancies_and_reach_phones(db: &TestDb) {
    let world = World::new(db).await;
    let coordinator = world.coordinator.token.clone();
    let mut anna = world.receiver("anna", FACILITY).await;
    anna.sync_settled().await.unwrap();
    let damaged = anna
        .record(
            &shipment_id(SHIPMENT),
            receipt("line-2", 1, Condition::Damaged, &[]),
        )
        .await
        .unwrap();
    anna.sync_settled().await.unwrap();

    let open = |rows: &Value| -> Vec<String> {
        rows.as_array()
            .unwrap()
            .iter()
            .filter(|d| d["resolved"] == false)
            .map(|d| {
                format!(
                    "{}/{}",
                    d["line_id"].as_str().unwrap(),
                    d["kind"].as_str().unwrap()
                )
            })
            .collect()
    };
    let path = "/api/v1/reports/discrepancies?status=discrepancy";
    let (status, rows) = get(&world, &coordinator, path).await;
    assert_eq!(status, 200, "{rows}");
    assert!(open(&rows).contains(&"line-2/damaged".to_owned()), "{rows}");

    // A receiver may not review; a review naming an unknown receipt is refused.
    let judged = |id: &str, resolves: &[&str], verdict: &str| {
        json!({ "id": id, "note": "Checked with the driver: crushed in transit.",
                "verdict": verdict, "resolves": resolves })
    };
    let review = |id: &str, resolves: &[&str]| judged(id, resolves, "has_issues");
    let reviews = format!("/api/v1/shipments/{SHIPMENT}/reviews");
    let (status, _) = world
        .api
        .post(
            Some(anna.token()),
            &reviews,
            &review("rv-1", &[damaged.id.as_str()]),
        )
        .await
        .unwrap();
    assert_eq!(status, 403);
    let (status, body) = world
        .api
        .post(
            Some(&coordinator),
            &reviews,
            &review("rv-1", &["no-such-receipt"]),
        )
        .await
        .unwrap();
    assert_eq!(status, 422, "{body}");
    let (status, body) = world
        .api
        .post(
            Some(&coordinator),
            &format!("/api/v1/shipments/{FAR_FACILITY}/reviews"),
            &review("rv-1", &[]),
        )
        .await
        .unwrap();
    assert_eq!(status, 404, "{body}");

    let (status, body) = world
        .api
        .post(
            Some(&coordinator),
            &reviews,
            &review("rv-1", &[damaged.id.as_str()]),
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["reviews"][0]["by"], "olena");
    // "Has issues": seen, still to follow up, so still open.
    let (_, rows) = get(&world, &coordinator, path).await;
    assert!(open(&rows).contains(&"line-2/damaged".to_owned()), "{rows}");
    // Approved later: settled.
    let (status, body) = world
        .api
        .post(
            Some(&coordinator),
            &reviews,
            &judged("rv-2", &[damaged.id.as_str()], "approved"),
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{body}");
    let (_, rows) = get(&world, &coordinator, path).await;
    assert!(
        !open(&rows).contains(&"line-2/damaged".to_owned()),
        "{rows}"
    );

    // The review is a change like any other: the phone gets it.
    anna.sync_settled().await.unwrap();
    let on_phone = anna.engine.shipment(&shipment_id(SHIPMENT)).unwrap();
    assert_eq!(on_phone.reviews.len(), 2);
    let review = on_phone.reviews.values().next().unwrap();
    assert_eq!(review.resolves, std::slice::from_ref(&damaged.id));
    world.server.stop().await.unwrap();
}

const GOOD_MANIFEST: &str = "\u{feff}shipment_id,donor,reference,destination_facility,expected_on,line_id,item,category,unit,quantity_expected,serials_expected\r
who-2026-010,WHO,WB-10,izium-central,2026-12-01,l1,Ультразвуковий сканер,ultrasound,unit,2,US-10;US-11\r
who-2026-010,WHO,WB-10,izium-central,2026-12-01,l2,\"Endoscope, flexible\",endoscopy,unit,1,\r
who-2026-011,WHO,WB-11,kharkiv-regional,,l1,Ambulance,vehicle,vehicle,1,\r
";

/// A manifest with bad rows creates nothing and names every bad row; a
/// good one creates shipments the destination's receivers get on sync.
pub async fn manifests_import_all_or_nothing(db: &TestDb) {
    let world = World::new(db).await;
    let coordinator = world.coordinator.token.clone();
    let mut iryna = world.receiver("iryna", OTHER_FACILITY).await;
    iryna.sync_settled().await.unwrap();
    assert_eq!(iryna.engine.shipment_ids().count(), 0);
    let before = world.server.db().counts().await.unwrap();

    let bad = "shipment_id,donor,destination_facility,line_id,item,category,unit,quantity_expected\n\
               ok-1,WHO,izium-central,l1,Monitor,imaging,unit,1\n\
               bad-2,WHO,izium-central,l1,Monitor,imaging,unit,many\n\
               bad-3,WHO,nowhere,l1,Monitor,imaging,unit,1\n\
               bad-4,WHO,lviv-regional,l1,Monitor,imaging,unit,1\n\
               bad-5,WHO,izium-central,l1,,imaging,unit,1\n\
               ok-1,UNICEF,izium-central,l2,Monitor,imaging,unit,1\n\
               jica-test-001,WHO,kharkiv-regional,l1,Monitor,imaging,unit,1\n";
    let (status, body) = post_csv(&world, &coordinator, bad).await;
    assert_eq!(status, 422, "{body}");
    let problems: Vec<(u64, String)> = body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap(),
                r["column"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        problems,
        [
            (3, "quantity_expected".to_owned()),
            (4, "destination_facility".to_owned()),
            (5, "destination_facility".to_owned()),
            (6, "item".to_owned()),
            (7, "donor".to_owned()),
            (8, "shipment_id".to_owned()),
        ],
        "{body}"
    );
    assert_eq!(
        world.server.db().counts().await.unwrap(),
        before,
        "nothing stored"
    );

    // Every problem of a shipment's fields in one pass, the date among
    // them (it once showed only after the others were fixed), in words for
    // a web user (no command-line tool).
    let dated = "shipment_id,donor,destination_facility,expected_on,line_id,item,category,unit,quantity_expected\n\
                 bad-6,WHO,izium-central,2026-13-01,l1,,imaging,unit,1\n\
                 bad-6,WHO,izium-central,2026-13-01,l2,Monitor,imaging,,2\n\
                 bad-7,WHO,nowhere,,l1,Monitor,imaging,unit,1\n";
    let (status, body) = post_csv(&world, &coordinator, dated).await;
    assert_eq!(status, 422, "{body}");
    let places: Vec<(u64, &str)> = body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap(),
                r["column"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        places,
        [
            (2, "expected_on"),
            (2, "item"),
            (3, "unit"),
            (4, "destination_facility")
        ],
        "{body}"
    );
    let text = body.to_string();
    assert!(!text.contains("aidsync admin"), "{text}");
    assert_eq!(text.matches("nothing was imported").count(), 0, "{text}");
    assert!(text.contains("4 problem(s) in the manifest"), "{text}");

    // Structure: unknown columns and missing ones, wrong type, receivers.
    let (status, body) = post_csv(&world, &coordinator, "shipment_id,colour\nx,red\n").await;
    assert_eq!(status, 422, "{body}");
    assert!(body["rows"].as_array().unwrap().len() >= 2, "{body}");
    let (status, _) = post_csv(&world, iryna.token(), GOOD_MANIFEST).await;
    assert_eq!(status, 403);
    let (status, _) = world
        .api
        .post(Some(&coordinator), "/api/v1/shipments/import", &json!({}))
        .await
        .unwrap();
    assert_eq!(status, 415);

    let (status, body) = post_csv(&world, &coordinator, GOOD_MANIFEST).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["created"], json!(["who-2026-010", "who-2026-011"]));
    assert_eq!(body["lines"], 3);
    // Importing it again creates nothing more.
    let (status, _) = post_csv(&world, &coordinator, GOOD_MANIFEST).await;
    assert_eq!(status, 422);

    iryna.sync_settled().await.unwrap();
    let ids: Vec<String> = iryna
        .engine
        .shipment_ids()
        .map(ToString::to_string)
        .collect();
    assert_eq!(ids, ["who-2026-010"], "only her facility's shipment");
    let shipment = iryna.engine.shipment(&shipment_id("who-2026-010")).unwrap();
    let items: Vec<&str> = shipment.lines.values().map(|l| l.item.as_str()).collect();
    assert_eq!(items, ["Ультразвуковий сканер", "Endoscope, flexible"]);
    world.server.stop().await.unwrap();
}

fn column(rows: &Value, field: &str) -> Vec<String> {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| match &r[field] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

/// Reports filter and scope like the list they describe; CSV and XLSX
/// downloads hold exactly the rows the JSON API returns.
pub async fn reports_filter_scope_and_export(db: &TestDb) {
    let world = World::new(db).await;
    let coordinator = world.coordinator.token.clone();
    // A national coordinator (no region) sends one to the far facility.
    world.add_user("nadia", "coordinator", None, None).await;
    let nadia = world
        .api
        .login("nadia", &crate::common::password("nadia"))
        .await
        .unwrap();
    let far = crate::common::shipment_json("far-001", FAR_FACILITY);
    let (status, body) = world
        .api
        .post(Some(&nadia.token), "/api/v1/shipments", &far)
        .await
        .unwrap();
    assert_eq!(status, 201, "{body}");
    let (status, body) = post_csv(&world, &coordinator, GOOD_MANIFEST).await;
    assert_eq!(status, 201, "{body}");
    let mut anna = world.receiver("anna", FACILITY).await;
    let mut petro = world.receiver("petro", FACILITY).await;
    anna.sync_settled().await.unwrap();
    petro.sync_settled().await.unwrap();
    let id = shipment_id(SHIPMENT);
    let mut note = receipt("line-1", 2, Condition::Good, &["US-1", "US-2"]);
    note.note = "=HYPERLINK(\"http://evil\") — отримано".into();
    anna.record(&id, note).await.unwrap();
    petro
        .record(&id, receipt("line-1", 1, Condition::Good, &["US-2"]))
        .await
        .unwrap();
    anna.sync_settled().await.unwrap();
    petro.sync_settled().await.unwrap();

    // Filters.
    let ids = |rows: &Value| column(rows, "id");
    let (_, all) = get(&world, &coordinator, "/api/v1/shipments").await;
    assert_eq!(ids(&all).len(), 4, "the coordinator's region only: {all}");
    assert!(!ids(&all).contains(&"far-001".to_owned()));
    let (_, who) = get(&world, &coordinator, "/api/v1/shipments?donor=WHO").await;
    assert_eq!(ids(&who), ["who-2026-010", "who-2026-011"]);
    let (_, vehicles) = get(&world, &coordinator, "/api/v1/shipments?category=endoscopy").await;
    assert_eq!(ids(&vehicles), ["who-2026-010"]);
    let (_, late) = get(
        &world,
        &coordinator,
        "/api/v1/shipments?from=2026-11-21&to=2026-12-31",
    )
    .await;
    assert_eq!(ids(&late), ["who-2026-010"]);
    let (_, here) = get(
        &world,
        &coordinator,
        &format!("/api/v1/shipments?facility={FACILITY}&status=partial"),
    )
    .await;
    assert_eq!(
        ids(&here),
        [SHIPMENT],
        "3 of 5 ultrasounds, serials as listed: partial: {here}"
    );
    // Search: a serial number (expected or received), a reference, an item.
    let search = |q: &str| format!("/api/v1/shipments?q={q}");
    let (_, by_serial) = get(&world, &coordinator, &search("us-2")).await;
    assert!(
        ids(&by_serial).contains(&SHIPMENT.to_owned()),
        "{by_serial}"
    );
    assert!(ids(&by_serial).len() < ids(&all).len(), "{by_serial}");
    let (_, by_reference) = get(&world, &coordinator, &search("WB-11")).await;
    assert_eq!(ids(&by_reference), ["who-2026-011"]);
    let (_, by_item) = get(&world, &coordinator, &search("AMBULANCE")).await;
    assert!(
        ids(&by_item).contains(&"who-2026-011".to_owned()),
        "{by_item}"
    );
    // What is typed is matched literally: `%` is no wildcard.
    let (_, literal) = get(&world, &coordinator, &search("%25")).await;
    assert_eq!(ids(&literal), Vec::<String>::new());
    let (status, _) = get(&world, &coordinator, &search(&"x".repeat(101))).await;
    assert_eq!(status, 400);
    let (_, receiver_view) = get(&world, anna.token(), "/api/v1/reports/shipments").await;
    assert!(
        ids(&receiver_view)
            .iter()
            .all(|i| i.starts_with("jica-test") || i == "who-2026-011"),
        "{receiver_view}"
    );

    let (_, duplicates) = get(&world, &coordinator, "/api/v1/reports/duplicates").await;
    assert_eq!(
        column(&duplicates, "reason"),
        ["same_serials"],
        "{duplicates}"
    );
    let (_, by_category) = get(&world, &coordinator, "/api/v1/reports/totals-by-category").await;
    let keys = column(&by_category, "key");
    assert_eq!(
        keys,
        ["endoscopy", "ultrasound", "vehicle"],
        "{by_category}"
    );
    let (_, by_facility) = get(&world, &coordinator, "/api/v1/reports/totals-by-facility").await;
    assert_eq!(column(&by_facility, "key"), [OTHER_FACILITY, FACILITY]);
    assert_eq!(column(&by_facility, "received"), ["0", "3"]);

    // Pages of the same order.
    let (_, first) = get(&world, &coordinator, "/api/v1/shipments?limit=2").await;
    let (_, second) = get(&world, &coordinator, "/api/v1/shipments?limit=2&offset=2").await;
    assert_eq!([ids(&first), ids(&second)].concat(), ids(&all));

    // Bad filters are refused, not ignored.
    for (path, want) in [
        ("/api/v1/shipments?colour=red", 400),
        ("/api/v1/shipments?from=yesterday", 400),
        ("/api/v1/shipments?status=lost", 400),
        ("/api/v1/shipments?facility=Not%20An%20Id", 400),
        ("/api/v1/shipments?limit=0", 400),
        ("/api/v1/shipments?offset=-1", 400),
        ("/api/v1/reports/everything", 404),
        ("/api/v1/reports/receipts.pdf", 404),
    ] {
        let (status, body) = get(&world, &coordinator, path).await;
        assert_eq!(status.as_u16(), want, "{path}: {body}");
        assert!(body["error"].is_string(), "{path}: {body}");
    }
    for path in ["/api/v1/devices?usr=anna", "/api/v1/changes?limit=many"] {
        let (status, body) = get(&world, &world.admin.token, path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body["error"].is_string(), "{path}: {body}");
    }
    let (status, body) = world
        .api
        .post(
            Some(&coordinator),
            "/api/v1/shipments",
            &crate::common::shipment_json("import", FACILITY),
        )
        .await
        .unwrap();
    assert_eq!(
        status, 422,
        "the import route's name is no shipment id: {body}"
    );
    let (status, _) = get(&world, &world.admin.token, "/api/v1/reports/receipts").await;
    assert_eq!(status, 403, "admins manage accounts, not shipments");

    // Downloads: the same rows as the API, for the same filter.
    let filter = format!("?facility={FACILITY}");
    let (_, rows) = get(
        &world,
        &coordinator,
        &format!("/api/v1/reports/receipts{filter}"),
    )
    .await;
    let api_ids = column(&rows, "receipt_id");
    assert_eq!(api_ids.len(), 2);

    let (status, content_type, disposition, bytes) = download(
        &world,
        &coordinator,
        &format!("/api/v1/reports/receipts.csv{filter}"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    assert!(
        disposition.contains("aidsync-receipts-") && disposition.ends_with(".csv\""),
        "{disposition}"
    );
    assert!(
        bytes.starts_with("\u{feff}".as_bytes()),
        "a BOM so Excel reads UTF-8"
    );
    let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let fields: Vec<String> = rows[0].as_object().unwrap().keys().cloned().collect();
    assert_eq!(header, fields, "the same columns as the JSON rows");
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let at = |name: &str| header.iter().position(|h| h == name).unwrap();
    let csv_ids: Vec<String> = records
        .iter()
        .map(|r| r[at("receipt_id")].to_owned())
        .collect();
    assert_eq!(csv_ids, api_ids);
    let notes: Vec<&str> = records
        .iter()
        .map(|r| &r[at("note")])
        .filter(|n| !n.is_empty())
        .collect();
    assert_eq!(
        notes,
        ["'=HYPERLINK(\"http://evil\") — отримано"],
        "formulas defused, Cyrillic intact"
    );
    assert!(
        records.iter().all(|r| r[at("recorded_at")].len() == 19),
        "times as dates"
    );
    assert!(
        records.iter().any(|r| &r[at("serials")] == "US-1; US-2"),
        "lists joined"
    );

    let (status, content_type, _, bytes) = download(
        &world,
        &coordinator,
        &format!("/api/v1/reports/receipts.xlsx{filter}"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(content_type.contains("spreadsheetml"), "{content_type}");
    let mut workbook: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).unwrap();
    let sheet = workbook.worksheet_range("receipts").unwrap();
    let mut sheet_rows = sheet.rows();
    let sheet_header: Vec<String> = sheet_rows
        .next()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(sheet_header, fields);
    let xlsx_ids: Vec<String> = sheet_rows
        .map(|r| r[at("receipt_id")].to_string())
        .collect();
    assert_eq!(xlsx_ids, api_ids);
    let quantities: Vec<Data> = sheet
        .rows()
        .skip(1)
        .map(|r| r[at("quantity")].clone())
        .collect();
    assert!(
        quantities.iter().all(|q| matches!(q, Data::Float(_))),
        "numbers as numbers: {quantities:?}"
    );

    // No rows still names the columns.
    let (status, _, _, bytes) =
        download(&world, &coordinator, "/api/v1/reports/conflicts.csv").await;
    assert_eq!(status, 200);
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        "\u{feff}shipment_id,path,values\r\n"
    );
    // A wrong method is an error like any other.
    let (status, body) = world
        .api
        .send(
            reqwest::Method::DELETE,
            "/api/v1/shipments",
            Some(&coordinator),
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 405);
    assert!(body["error"].is_string(), "{body}");
    let (status, _, _, bytes) = download(
        &world,
        &coordinator,
        "/api/v1/reports/shipments.csv?donor=WHO",
    )
    .await;
    assert_eq!(status, 200);
    let text = String::from_utf8(bytes).unwrap();
    assert_eq!(
        text.lines().count(),
        3,
        "header and the two WHO shipments: {text}"
    );
    world.server.stop().await.unwrap();
}

/// Open dashboards hear of a phone's sync at once, only for shipments they
/// may see; admins get no stream; stopping the server ends the streams.
pub async fn dashboards_hear_of_syncs_live(db: &TestDb) {
    let world = World::new(db).await;
    let (status, _) = EventStream::open(&world, &world.admin.token).await;
    assert_eq!(status, 403);
    let (status, mut coordinator) = EventStream::open(&world, &world.coordinator.token).await;
    assert_eq!(status, 200);
    let mut anna = world.receiver("anna", FACILITY).await;
    let mut vira = world.receiver("vira", OTHER_FACILITY).await;
    let (_, mut vira_events) = EventStream::open(&world, vira.token()).await;

    // Logging in and syncing with nothing new publishes nothing.
    anna.sync_settled().await.unwrap();
    vira.sync_settled().await.unwrap();
    anna.record(
        &shipment_id(SHIPMENT),
        receipt("line-2", 1, Condition::Good, &[]),
    )
    .await
    .unwrap();
    anna.sync_settled().await.unwrap();
    let (event, data) = coordinator.next(5).await.expect("an event within 5 s");
    assert_eq!(event, "changed");
    assert_eq!(data, json!({ "shipments": [SHIPMENT] }));

    // Vira's stream skipped Anna's shipment: the first thing she hears of
    // is a shipment created for her own facility.
    world
        .create_shipment("jica-test-vira", OTHER_FACILITY)
        .await;
    let (event, data) = vira_events.next(5).await.expect("an event within 5 s");
    assert_eq!(
        (event.as_str(), data),
        ("changed", json!({ "shipments": ["jica-test-vira"] }))
    );
    let (_, data) = coordinator
        .next(5)
        .await
        .expect("the coordinator hears of it too");
    assert_eq!(data, json!({ "shipments": ["jica-test-vira"] }));

    tokio::time::timeout(std::time::Duration::from_secs(10), world.server.stop())
        .await
        .expect("open streams do not hold the server up")
        .unwrap();
    assert_eq!(coordinator.next(5).await, None, "the stream ended");
}

/// Seven vehicles where two were expected, and none of the five
/// ultrasounds: the dashboard once read 7 / 7 (100 %) for such a hospital.
/// Each line counts only up to what it expects; the rest is surplus. (The
/// world holds two such shipments to `FACILITY`, `SHIPMENT` among them.)
pub async fn totals_never_let_surplus_fill_a_gap(db: &TestDb) {
    let world = World::new(db).await;
    let coordinator = world.coordinator.token.clone();
    let mut anna = world.receiver("anna", FACILITY).await;
    anna.sync_settled().await.unwrap();
    anna.record(
        &shipment_id(SHIPMENT),
        receipt("line-2", 7, Condition::Good, &[]),
    )
    .await
    .unwrap();
    anna.sync_settled().await.unwrap();

    let (_, by_facility) = get(&world, &coordinator, "/api/v1/reports/totals-by-facility").await;
    let row = &by_facility[0];
    assert_eq!(row["key"], FACILITY, "{by_facility}");
    assert_eq!(
        [
            &row["expected"],
            &row["received"],
            &row["outstanding"],
            &row["surplus"]
        ],
        [14, 2, 12, 5],
        "two shipments of 5 ultrasounds and 2 vehicles each: {by_facility}"
    );
    let (_, by_category) = get(&world, &coordinator, "/api/v1/reports/totals-by-category").await;
    assert_eq!(column(&by_category, "key"), ["ultrasound", "vehicle"]);
    assert_eq!(
        column(&by_category, "received"),
        ["0", "2"],
        "{by_category}"
    );
    assert_eq!(column(&by_category, "surplus"), ["0", "5"], "{by_category}");

    let (_, detail) = get(
        &world,
        &coordinator,
        &format!("/api/v1/shipments/{SHIPMENT}"),
    )
    .await;
    let summary = &detail["summary"];
    assert_eq!(
        [
            &summary["received"],
            &summary["outstanding"],
            &summary["surplus"]
        ],
        [2, 5, 5],
        "{summary}"
    );
    assert_eq!(summary["status"], "discrepancy");
    let vehicles = &summary["lines"][1];
    assert_eq!(
        [
            &vehicles["received"],
            &vehicles["received_against_expected"],
            &vehicles["over_received"]
        ],
        [7, 2, 5],
        "{vehicles}"
    );
}
