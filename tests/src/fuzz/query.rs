//! Report names and query strings: valid filters mutated as key/value
//! pairs and as text, through what `GET /api/v1/reports/{name}?…` runs
//! before it touches the database: the name's format and kind, axum's
//! query deserializer into the server's `FilterQuery`, and its checks.
//!
//! An input is `NAME?QUERY`.

use axum::extract::Query;
use axum::http::Uri;
use rand::Rng;
use rand::rngs::StdRng;

use aidsync_server::service::export::FileFormat;
use aidsync_server::service::reports::{FilterQuery, Kind};

use super::{Outcome, interesting_i64, interesting_text};

const NAMES: [&str; 8] = [
    "shipments",
    "lines",
    "receipts",
    "discrepancies",
    "duplicates",
    "conflicts",
    "totals-by-facility",
    "totals-by-category",
];

const KEYS: [&str; 9] = [
    "facility", "region", "donor", "category", "status", "from", "to", "limit", "offset",
];

const SEEDS: [&str; 6] = [
    "",
    "facility=kharkiv-regional",
    "region=Kharkiv&status=partial",
    "donor=JICA&category=imaging&from=2026-01-01&to=2026-12-31",
    "limit=100&offset=200",
    "facility=&region=&donor=&category=&status=&from=&to=",
];

fn value_for(rng: &mut StdRng, key: &str) -> String {
    match (key, rng.random_range(0..3)) {
        ("limit" | "offset", 0 | 1) => match rng.random_range(0..4) {
            0 => interesting_i64(rng).to_string(),
            1 => "9223372036854775808".to_owned(),
            2 => ["1e3", "+5", " 5", "0x10", "NaN", "１"][rng.random_range(0..6)].to_owned(),
            _ => ["0", "1", "100000", "100001", "-1"][rng.random_range(0..5)].to_owned(),
        },
        ("from" | "to", 0 | 1) => [
            "2026-02-30",
            "2026-1-01",
            "٢٠٢٦-01-01",
            "2026-01-01T00:00",
            "----------",
            "2026-01-0",
        ][rng.random_range(0..6)]
        .to_owned(),
        ("status", 0 | 1) => ["awaiting", "PARTIAL", "complete ", "discrepancy", "open"]
            [rng.random_range(0..5)]
        .to_owned(),
        _ => percent_encode(&interesting_text(rng)),
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A mutated report name and query string.
pub fn generate(rng: &mut StdRng) -> String {
    let mut name = NAMES[rng.random_range(0..NAMES.len())].to_owned();
    match rng.random_range(0..12) {
        0 => name.push_str(".csv"),
        1 => name.push_str(".xlsx"),
        2 => name.push_str([".json", ".CSV", ".csv.xlsx", "."][rng.random_range(0..4)]),
        3 => name = interesting_text(rng),
        4 => name = name.to_uppercase(),
        _ => {}
    }
    let mut pairs: Vec<(String, Option<String>)> = SEEDS[rng.random_range(0..SEEDS.len())]
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
            None => (p.to_owned(), None),
        })
        .collect();
    for _ in 0..rng.random_range(1..=4) {
        let n = pairs.len();
        match rng.random_range(0..10) {
            0..=3 => {
                let key = KEYS[rng.random_range(0..KEYS.len())];
                let value = value_for(rng, key);
                pairs.push((key.to_owned(), Some(value)));
            }
            4 if n > 0 => {
                // The same key twice.
                let copy = pairs[rng.random_range(0..n)].clone();
                pairs.push(copy);
            }
            5 => pairs.push((percent_encode(&interesting_text(rng)), Some("1".into()))),
            6 if n > 0 => pairs[rng.random_range(0..n)].1 = None,
            7 if n > 0 => {
                let i = rng.random_range(0..n);
                pairs[i].0 = pairs[i].0.to_uppercase();
            }
            8 if n > 0 => {
                pairs.remove(rng.random_range(0..n));
            }
            _ => {
                let raw = ["%", "%zz", "%ff%fe", "%C3%28", "+", "&&", ";", "=", "=="]
                    [rng.random_range(0..9)];
                pairs.push((raw.to_owned(), None));
            }
        }
    }
    let query: Vec<String> = pairs
        .into_iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => k,
        })
        .collect();
    format!("{name}?{}", query.join("&"))
}

/// Runs a `NAME?QUERY` input through the report handler's parsing.
pub fn run(input: &[u8]) -> Outcome {
    let Ok(text) = std::str::from_utf8(input) else {
        return Outcome::one("400:utf8");
    };
    let (name, query) = text.split_once('?').unwrap_or((text, ""));
    // A query hyper would not have parsed never reaches the handler.
    let Ok(uri) = format!("/r?{query}").parse::<Uri>() else {
        return Outcome::one("400:uri");
    };
    let label = |e: aidsync_server::error::AppError| {
        let status = e.status();
        Outcome {
            results: vec![status.as_u16().to_string()],
            server_error: status.is_server_error().then(|| e.to_string()),
        }
    };
    let stem = match FileFormat::split(name) {
        Ok((stem, _)) => stem,
        Err(e) => return label(e),
    };
    if let Err(e) = Kind::parse(stem) {
        return label(e);
    }
    let Ok(Query(filter)) = Query::<FilterQuery>::try_from_uri(&uri) else {
        return Outcome::one("400:query");
    };
    match filter.parse() {
        Ok(_) => Outcome::one("accepted"),
        Err(e) => label(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_queries_are_accepted_and_mistakes_are_400s() {
        for seed in SEEDS {
            assert!(
                run(format!("lines.csv?{seed}").as_bytes()).accepted(),
                "{seed}"
            );
        }
        assert_eq!(run(b"lines?limit=0"), Outcome::one("400"));
        assert_eq!(run(b"lines?colour=red"), Outcome::one("400:query"));
        assert_eq!(run(b"nope?"), Outcome::one("404"));
        assert_eq!(run(b"lines.pdf?"), Outcome::one("404"));
    }
}
