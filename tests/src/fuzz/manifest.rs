//! CSV manifests: valid donor manifests mutated as a grid (fields, rows,
//! columns, header) and then as bytes, through the import's parser
//! ([`aidsync_server::service::import::parse_manifest`]) and the model's
//! check of each shipment it yields (`ShipmentDoc::create`, as the import
//! prepares one).

use automerge::ActorId;
use rand::Rng;
use rand::rngs::StdRng;

use aidsync_server::service::import::{COLUMNS, parse_manifest};
use aidsync_shared::derive::summarize;
use aidsync_shared::ids::UserId;
use aidsync_shared::model::ShipmentDoc;

use super::{Outcome, havoc, interesting_text, interesting_u64};

/// The demo region's facilities: imports name them, so the `http` target's
/// imports can succeed.
pub const FACILITIES: [&str; 4] = [
    "kharkiv-regional",
    "kharkiv-emergency",
    "izium-central",
    "chuhuiv-central",
];

/// A manifest as a grid of text.
#[derive(Debug, Clone)]
struct Grid {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    bom: bool,
    crlf: bool,
}

fn row(fields: &[&str]) -> Vec<String> {
    fields.iter().map(|f| (*f).to_owned()).collect()
}

/// A valid manifest of one of a few shapes; shipment ids start with `sid`.
fn seed(rng: &mut StdRng, sid: &str) -> Grid {
    let facility = FACILITIES[rng.random_range(0..FACILITIES.len())];
    let full = COLUMNS.iter().map(|c| (*c).to_owned()).collect::<Vec<_>>();
    match rng.random_range(0..4) {
        0 => Grid {
            header: full,
            rows: vec![
                row(&[
                    sid,
                    "JICA",
                    "Emergency medical equipment",
                    "JICA-2026-07",
                    facility,
                    "2026-03-01",
                    "two pallets",
                    "l1",
                    "Portable ultrasound",
                    "imaging",
                    "unit",
                    "2",
                    "US-1;US-2",
                ]),
                row(&[
                    sid,
                    "JICA",
                    "Emergency medical equipment",
                    "JICA-2026-07",
                    facility,
                    "2026-03-01",
                    "two pallets",
                    "l2",
                    "Nitrile gloves",
                    "consumables",
                    "box",
                    "500",
                    "",
                ]),
            ],
            bom: false,
            crlf: false,
        },
        1 => Grid {
            header: row(&[
                "Shipment_ID",
                " donor ",
                "DESTINATION_FACILITY",
                "line_id",
                "item",
                "category",
                "unit",
                "quantity_expected",
            ]),
            rows: vec![
                row(&[
                    sid,
                    "USAID",
                    facility,
                    "a",
                    "Bed",
                    "furniture",
                    "unit",
                    "10",
                ]),
                row(&[
                    &format!("{sid}-b"),
                    "USAID",
                    facility,
                    "a",
                    "Oxygen concentrator",
                    "respiratory",
                    "unit",
                    "3",
                ]),
            ],
            bom: true,
            crlf: true,
        },
        2 => Grid {
            header: full,
            rows: vec![row(&[
                sid,
                "ECHO",
                "Winter, 2026",
                "ECHO/\"UA\"/1",
                facility,
                "",
                "fragile\nkeep upright",
                "gen",
                "Generator, 5 kW",
                "power",
                "unit",
                "3",
                "G-1\nG-2\nG-3",
            ])],
            bom: rng.random(),
            crlf: false,
        },
        _ => {
            let mut rows = Vec::new();
            for i in 0..rng.random_range(3..20) {
                rows.push(row(&[
                    sid,
                    "WHO",
                    "",
                    "",
                    facility,
                    "2026-12-31",
                    "",
                    &format!("line-{i}"),
                    "Surgical kit",
                    "surgery",
                    "kit",
                    &format!("{}", i + 1),
                    "",
                ]));
            }
            Grid {
                header: COLUMNS.iter().map(|c| (*c).to_owned()).collect(),
                rows,
                bom: false,
                crlf: rng.random(),
            }
        }
    }
}

/// A field value a manifest might carry, or should not.
fn field_value(rng: &mut StdRng, column: &str) -> String {
    match (column, rng.random_range(0..4)) {
        ("quantity_expected", 0 | 1) => match rng.random_range(0..6) {
            0 => interesting_u64(rng).to_string(),
            1 => "18446744073709551616".to_owned(),
            2 => "-1".to_owned(),
            3 => ["1e3", "0x10", "+5", " 7 ", "1,000", "٣"][rng.random_range(0..6)].to_owned(),
            _ => "0".to_owned(),
        },
        ("expected_on", 0 | 1) => [
            "2026-02-30",
            "2026-13-01",
            "0000-00-00",
            "99999-01-01",
            "2026-1-1",
            "２０２６-01-01",
            "2026/01/01",
        ][rng.random_range(0..7)]
        .to_owned(),
        ("serials_expected", 0 | 1) => {
            let n = [1, 2, 100, 1_000][rng.random_range(0..4)];
            let sep = [";", ",", "\n", ";;", " ; "][rng.random_range(0..5)];
            (0..n)
                .map(|i| format!("SN-{}", i % 50))
                .collect::<Vec<_>>()
                .join(sep)
        }
        ("shipment_id" | "line_id" | "destination_facility", 0 | 1) => match rng.random_range(0..5)
        {
            0 => "import".to_owned(),
            1 => "a".repeat(64),
            2 => "a".repeat(65),
            3 => "bad id".to_owned(),
            _ => FACILITIES[rng.random_range(0..FACILITIES.len())].to_owned(),
        },
        _ => interesting_text(rng),
    }
}

fn mutate_grid(rng: &mut StdRng, g: &mut Grid) {
    let cols = g.header.len();
    let n = g.rows.len();
    match rng.random_range(0..40) {
        0..=6 | 20..=35 if n > 0 && cols > 0 => {
            let r = rng.random_range(0..n);
            let c = rng.random_range(0..cols);
            let name = g.header[c].trim().to_lowercase();
            if let Some(field) = g.rows[r].get_mut(c) {
                *field = field_value(rng, &name);
            }
        }
        7 if n > 0 => {
            let copy = g.rows[rng.random_range(0..n)].clone();
            g.rows.insert(rng.random_range(0..=n), copy);
        }
        8 if n > 0 => {
            g.rows.remove(rng.random_range(0..n));
        }
        9 if cols > 0 => {
            // Drop a column everywhere.
            let c = rng.random_range(0..cols);
            g.header.remove(c);
            for r in &mut g.rows {
                if c < r.len() {
                    r.remove(c);
                }
            }
        }
        10 if cols > 0 => {
            let c = rng.random_range(0..cols);
            g.header.push(g.header[c].to_uppercase());
            for r in &mut g.rows {
                let v = r.get(c).cloned().unwrap_or_default();
                r.push(v);
            }
        }
        11 => {
            g.header.push(interesting_text(rng));
            for r in &mut g.rows {
                r.push("x".to_owned());
            }
        }
        12 if cols > 1 => {
            // The same permutation of every row.
            let (a, b) = (rng.random_range(0..cols), rng.random_range(0..cols));
            g.header.swap(a, b);
            for r in &mut g.rows {
                if a < r.len() && b < r.len() {
                    r.swap(a, b);
                }
            }
        }
        13 if n > 0 => {
            let r = rng.random_range(0..n);
            if rng.random() {
                g.rows[r].push(interesting_text(rng));
            } else {
                g.rows[r].pop();
            }
        }
        14 => g.rows.insert(rng.random_range(0..=n), Vec::new()),
        15 if n > 0 => {
            // Many rows: many shipments, or one shipment of many lines.
            let copies = [20, 200, 1_000][rng.random_range(0..3)];
            let template = g.rows[rng.random_range(0..n)].clone();
            let distinct = rng.random();
            for i in 0..copies {
                let mut r = template.clone();
                for (c, name) in g.header.iter().enumerate() {
                    let name = name.trim().to_lowercase();
                    let vary = (name == "shipment_id" && distinct) || name == "line_id";
                    if vary && let Some(v) = r.get_mut(c) {
                        v.push_str(&format!("-{i}"));
                    }
                }
                g.rows.push(r);
            }
        }
        16 => g.rows.clear(),
        17 if cols > 0 => {
            let c = rng.random_range(0..cols);
            g.header[c] = match rng.random_range(0..3) {
                0 => format!("  {}  ", g.header[c].to_uppercase()),
                1 => String::new(),
                _ => interesting_text(rng),
            };
        }
        _ => g.bom = !g.bom,
    }
}

fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

fn to_bytes(g: &Grid) -> Vec<u8> {
    let end = if g.crlf { "\r\n" } else { "\n" };
    let mut out = String::new();
    if g.bom {
        out.push('\u{feff}');
    }
    for r in std::iter::once(&g.header).chain(&g.rows) {
        let line: Vec<String> = r.iter().map(|f| quote(f)).collect();
        out.push_str(&line.join(","));
        out.push_str(end);
    }
    out.into_bytes()
}

/// A mutated manifest whose shipment ids start with `sid`.
pub fn generate(rng: &mut StdRng, sid: &str) -> Vec<u8> {
    let mut grid = seed(rng, sid);
    for _ in 0..rng.random_range(0..=4) {
        mutate_grid(rng, &mut grid);
    }
    let mut bytes = to_bytes(&grid);
    match rng.random_range(0..10) {
        0 => {
            let rounds = rng.random_range(1..4);
            havoc(rng, &mut bytes, rounds)
        }
        1 => {
            let at = rng.random_range(0..=bytes.len());
            let stray: &[u8] =
                [&b"\""[..], b"\r", b"\xff", b"\0", b"\xef\xbb\xbf"][rng.random_range(0..5)];
            bytes.splice(at..at, stray.iter().copied());
        }
        _ => {}
    }
    bytes
}

/// The import's parse of a manifest, then the model's check of each
/// shipment in it, as a coordinator's import runs them.
pub fn run(bytes: &[u8]) -> Outcome {
    // The router refuses a (decompressed) body over the limit unread.
    if bytes.len() > aidsync_server::service::Limits::default().max_body_bytes {
        return Outcome::one("413:body");
    }
    let shipments = match parse_manifest(bytes) {
        Ok(s) => s,
        Err(e) => {
            let status = e.status();
            return Outcome {
                results: vec![status.as_u16().to_string()],
                server_error: status
                    .is_server_error()
                    .then(|| format!("manifest parse: {e}")),
            };
        }
    };
    let Ok(olena) = UserId::parse("olena") else {
        return Outcome::one("harness");
    };
    let actor = ActorId::from(vec![0xc1u8; 16]);
    // The import prepares every shipment before it stores any: all of
    // them are in memory at once, here too.
    let mut prepared = Vec::new();
    let mut results = Vec::new();
    for new in &shipments {
        let made = ShipmentDoc::create(new, &olena, actor.clone(), super::corpus::T0)
            .and_then(|doc| doc.read().map(|shipment| (doc, shipment)));
        match made {
            Ok((doc, shipment)) => {
                let summary = summarize(&shipment);
                prepared.push((doc, shipment, summary));
                results.push("accepted".to_owned());
            }
            Err(_) => results.push("422:model".to_owned()),
        }
    }
    std::hint::black_box(prepared);
    Outcome {
        results,
        server_error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::{Target, case_rng};

    #[test]
    fn every_seed_manifest_imports() {
        for case in 0..40 {
            let mut rng = case_rng(1, Target::Csv, case);
            let bytes = to_bytes(&seed(&mut rng, "imp-1"));
            let outcome = run(&bytes);
            assert!(
                outcome.accepted(),
                "{outcome:?}\n{}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }
}
