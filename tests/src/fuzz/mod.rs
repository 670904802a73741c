//! The fuzz harness behind `aidsync-fuzz`: structure-aware mutations of
//! what clients send, run through the code the server runs on it, in this
//! process.
//!
//! - [`corpus`]: real shipment documents and the uploads phones and a
//!   coordinator make to them (receipts, voids, reviews, header edits, from
//!   several actors), as the seeds every sync input starts from.
//! - [`chunk`]: automerge change chunks taken apart and put back together
//!   with a true checksum, so mutations reach the column decoders.
//! - [`cbor`]: mutations of the sync request's CBOR envelope, as values and
//!   as bytes.
//! - [`sync`]: the server's sync path without the database (decode, walk,
//!   decode changes, merge, check, derive).
//! - [`manifest`] and [`query`]: CSV manifests and report query strings
//!   through the server's own parsers.
//! - [`http`]: whole requests through the server's router over a demo
//!   database.
//!
//! Every input is a function of the seed, the target and the case index
//! alone ([`case_rng`]), so one case replays without the ones before it.

pub mod cbor;
pub mod chunk;
pub mod corpus;
pub mod http;
pub mod manifest;
pub mod query;
pub mod sync;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What a case exercises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// Sync requests with mutated CBOR envelopes (and some mutated chunks).
    Sync,
    /// Sync requests with well-formed envelopes around mutated change chunks.
    Chunks,
    /// CSV manifests through the import's parser and the model.
    Csv,
    /// Report names and query strings through the report filter's parser.
    Query,
    /// Whole HTTP requests through the router over a demo database.
    Http,
}

impl Target {
    pub const ALL: [Target; 5] = [
        Target::Sync,
        Target::Chunks,
        Target::Csv,
        Target::Query,
        Target::Http,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Target::Sync => "sync",
            Target::Chunks => "chunks",
            Target::Csv => "csv",
            Target::Query => "query",
            Target::Http => "http",
        }
    }

    pub fn parse(s: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Its share of `--cases` under `--target all`, in percent: the fast
    /// in-process targets get most, the database-backed one the fewest.
    pub fn weight(self) -> u64 {
        match self {
            Target::Sync => 30,
            Target::Chunks => 44,
            Target::Csv => 8,
            Target::Query => 12,
            Target::Http => 6,
        }
    }
}

/// The random source of one case: a function of the seed, the target and
/// the case index only.
pub fn case_rng(seed: u64, target: Target, case: u64) -> StdRng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&(target as u64).to_le_bytes());
    key[16..24].copy_from_slice(&case.to_le_bytes());
    key[24..].copy_from_slice(b"aidsync!");
    StdRng::from_seed(key)
}

/// What became of one case. `results` holds one label per unit the server
/// decided on: per document of a sync request (`accepted`,
/// `refused:corrupt`, `missing_dependencies`…), else per request (`400`,
/// `413`…). Labels of HTTP statuses are the status code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub results: Vec<String>,
    /// A 5xx, or a sync response that is not a sync response: a fault of
    /// the server's, never the client's.
    pub server_error: Option<String>,
}

impl Outcome {
    pub fn one(label: impl Into<String>) -> Outcome {
        Outcome {
            results: vec![label.into()],
            server_error: None,
        }
    }

    /// Whether every unit was accepted (stored, or a 2xx/3xx).
    pub fn accepted(&self) -> bool {
        !self.results.is_empty() && self.results.iter().all(|r| is_accepted(r))
    }
}

pub fn is_accepted(label: &str) -> bool {
    label == "accepted" || label.starts_with('2') || label.starts_with('3')
}

/// Numbers decoders get wrong: zero, one, the edges of every width, and
/// the sizes allocators and length checks care about.
pub const INTERESTING_U64: [u64; 24] = [
    0,
    1,
    2,
    3,
    7,
    16,
    63,
    64,
    127,
    128,
    255,
    256,
    1_000,
    65_535,
    65_536,
    200_000,
    1 << 24,
    (1 << 31) - 1,
    1 << 31,
    u32::MAX as u64,
    1 << 32,
    1 << 53,
    i64::MAX as u64,
    u64::MAX,
];

pub fn interesting_u64(rng: &mut StdRng) -> u64 {
    match rng.random_range(0..10) {
        0..=5 => INTERESTING_U64[rng.random_range(0..INTERESTING_U64.len())],
        6 => INTERESTING_U64[rng.random_range(0..INTERESTING_U64.len())]
            .wrapping_add(rng.random_range(0..3))
            .wrapping_sub(1),
        7 => rng.random_range(0..300),
        8 => rng.random_range(0..100_000),
        _ => rng.random(),
    }
}

pub fn interesting_i64(rng: &mut StdRng) -> i64 {
    let v = interesting_u64(rng) as i64;
    match rng.random_range(0..3) {
        0 => v.wrapping_neg(),
        1 => i64::MIN.wrapping_add(rng.random_range(0..2)),
        _ => v,
    }
}

/// Text that trips parsers and validators: empty, blank, long, control
/// characters, right-to-left overrides, emoji, formula prefixes, quotes.
pub fn interesting_text(rng: &mut StdRng) -> String {
    const TEXTS: [&str; 22] = [
        "",
        " ",
        "\t",
        "0",
        "-1",
        "null",
        "\u{0}",
        "\u{feff}",
        "\u{202e}gnp.exe",
        "Ω≈ç√∫",
        "🩺🚑",
        "=HYPERLINK(\"http://x\")",
        "+1",
        "@SUM(A1)",
        "\"",
        "'",
        ",",
        ";",
        "\r\n",
        "a\nb",
        "../../etc/passwd",
        "%00",
    ];
    match rng.random_range(0..10) {
        0..=5 => TEXTS[rng.random_range(0..TEXTS.len())].to_owned(),
        6 => "A".repeat(rng.random_range(60..70)),
        7 => "x".repeat([255, 256, 1_000, 4_096, 10_001, 100_000][rng.random_range(0..6)]),
        8 => {
            let n = rng.random_range(1..20);
            (0..n)
                .map(|_| char::from_u32(rng.random_range(0..0x11_0000)).unwrap_or('\u{fffd}'))
                .collect()
        }
        _ => format!("id-{}", rng.random_range(0..1000)),
    }
}

/// Byte-level havoc on any input: flips, inserts, deletions, duplicated
/// slices, truncation. Used sparingly on top of structure-aware mutations.
pub fn havoc(rng: &mut StdRng, bytes: &mut Vec<u8>, rounds: usize) {
    for _ in 0..rounds {
        let len = bytes.len();
        match rng.random_range(0..8) {
            0 if len > 0 => {
                let i = rng.random_range(0..len);
                bytes[i] ^= 1 << rng.random_range(0..8);
            }
            1 if len > 0 => {
                let i = rng.random_range(0..len);
                bytes[i] = rng.random();
            }
            2 => {
                let i = rng.random_range(0..=len);
                let n = rng.random_range(1..8);
                let fill: Vec<u8> = (0..n).map(|_| rng.random()).collect();
                bytes.splice(i..i, fill);
            }
            3 if len > 0 => {
                let i = rng.random_range(0..len);
                let n = rng.random_range(1..=(len - i).min(16));
                bytes.drain(i..i + n);
            }
            4 if len > 1 => {
                let i = rng.random_range(0..len);
                let n = rng.random_range(1..=(len - i).min(64));
                let copy = bytes[i..i + n].to_vec();
                let at = rng.random_range(0..=len);
                bytes.splice(at..at, copy);
            }
            5 if len > 0 => {
                bytes.truncate(rng.random_range(0..len));
            }
            6 if len > 0 => {
                let i = rng.random_range(0..len);
                bytes[i] = [0x00, 0x7f, 0x80, 0xff, 0x1f, 0x20, 0x3f, 0x40][rng.random_range(0..8)];
            }
            _ => {}
        }
    }
}

/// Hex, two digits a byte.
pub fn to_hex(bytes: &[u8]) -> String {
    aidsync_shared::ids::to_hex(bytes)
}

/// A saved input (`--out`'s files, `tests/fuzz-regressions/`): its target,
/// from the `# … target=NAME` comment, and its bytes, from the hex lines.
pub fn read_saved(text: &str) -> Result<(Target, Vec<u8>), &'static str> {
    let target = text
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .flat_map(|l| l.split_whitespace())
        .find_map(|w| w.strip_prefix("target="))
        .and_then(Target::parse)
        .ok_or("no `# … target=NAME` line in the file")?;
    let hex: String = text.lines().filter(|l| !l.starts_with('#')).collect();
    let input = from_hex(&hex).ok_or("the input is not hex")?;
    Ok((target, input))
}

/// Bytes from hex, ignoring whitespace; `None` if not hex.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(s, 16).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_are_a_function_of_seed_target_and_index() {
        let draw = |seed, target, case| case_rng(seed, target, case).random::<u64>();
        assert_eq!(draw(1, Target::Sync, 7), draw(1, Target::Sync, 7));
        assert_ne!(draw(1, Target::Sync, 7), draw(1, Target::Sync, 8));
        assert_ne!(draw(1, Target::Sync, 7), draw(1, Target::Chunks, 7));
        assert_ne!(draw(1, Target::Sync, 7), draw(2, Target::Sync, 7));
    }

    #[test]
    fn hex_round_trips() {
        let bytes = [0u8, 1, 0x7f, 0x80, 0xff];
        assert_eq!(from_hex(&to_hex(&bytes)).as_deref(), Some(&bytes[..]));
        assert_eq!(from_hex("0a 0B\n"), Some(vec![10, 11]));
        assert_eq!(from_hex("0"), None);
        assert_eq!(from_hex("zz"), None);
    }
}
