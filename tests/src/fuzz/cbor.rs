//! Mutations of a CBOR message: on the decoded value tree (wrong types,
//! huge integers, missing, extra and duplicate fields, deep nesting) and on
//! the encoded bytes (item heads rewritten: lengths and counts that lie,
//! indefinite lengths, other major types).

use ciborium::Value;
use ciborium::value::Integer;
use rand::Rng;
use rand::rngs::StdRng;

use super::chunk;
use super::corpus::Pool;
use super::{havoc, interesting_text, interesting_u64};

pub fn decode_value(bytes: &[u8]) -> Option<Value> {
    ciborium::from_reader(bytes).ok()
}

pub fn encode_value(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing a Value into a Vec does not fail; an empty body if it did.
    if ciborium::into_writer(value, &mut out).is_err() {
        out.clear();
    }
    out
}

fn random_int(rng: &mut StdRng) -> Integer {
    match rng.random_range(0..6) {
        0 => Integer::try_from(-(interesting_u64(rng) as i128) - 1)
            .unwrap_or_else(|_| Integer::from(-1)),
        // Past u64: ciborium writes these as bignum tags.
        1 => Integer::try_from(u64::MAX as u128 + 1 + interesting_u64(rng) as u128)
            .unwrap_or_else(|_| Integer::from(0)),
        _ => Integer::from(interesting_u64(rng)),
    }
}

/// A value of any type, nested at most `depth` deep.
pub fn random_value(rng: &mut StdRng, depth: u32) -> Value {
    match rng.random_range(0..11) {
        0 => Value::Integer(random_int(rng)),
        1 => Value::Float([0.0, -0.0, 1.5, f64::NAN, f64::INFINITY, 1e300][rng.random_range(0..6)]),
        2 => Value::Text(interesting_text(rng)),
        3 => {
            let n = [0, 1, 32, 1_000][rng.random_range(0..4)];
            Value::Bytes((0..n).map(|_| rng.random()).collect())
        }
        4 => Value::Null,
        5 => Value::Bool(rng.random()),
        6 if depth > 0 => Value::Array(
            (0..rng.random_range(0..4))
                .map(|_| random_value(rng, depth - 1))
                .collect(),
        ),
        7 if depth > 0 => Value::Map(
            (0..rng.random_range(0..4))
                .map(|_| (random_value(rng, 0), random_value(rng, depth - 1)))
                .collect(),
        ),
        8 if depth > 0 => Value::Tag(
            [0, 1, 2, 3, 24, 55_799, u64::MAX][rng.random_range(0..7)],
            Box::new(random_value(rng, depth - 1)),
        ),
        9 => Value::Text(
            ["chunks", "bundle", "Chunks", "", "data", "format"][rng.random_range(0..6)].into(),
        ),
        _ => Value::Array(Vec::new()),
    }
}

/// `inner` inside `depth` arrays, maps or tags.
fn nested(rng: &mut StdRng, inner: Value, depth: usize) -> Value {
    let style = rng.random_range(0..3);
    let mut v = inner;
    for _ in 0..depth {
        v = match style {
            0 => Value::Array(vec![v]),
            1 => Value::Map(vec![(Value::Text("a".into()), v)]),
            _ => Value::Tag(6, Box::new(v)),
        };
    }
    v
}

/// Paths (child indices) to every node of `v`, the root first.
fn paths(v: &Value, prefix: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
    out.push(prefix.clone());
    let children: Vec<&Value> = match v {
        Value::Array(items) => items.iter().collect(),
        Value::Map(entries) => entries.iter().map(|(_, v)| v).collect(),
        Value::Tag(_, inner) => vec![inner.as_ref()],
        _ => Vec::new(),
    };
    for (i, child) in children.into_iter().enumerate() {
        prefix.push(i);
        paths(child, prefix, out);
        prefix.pop();
    }
}

fn node_mut<'a>(v: &'a mut Value, path: &[usize]) -> Option<&'a mut Value> {
    let Some((&first, rest)) = path.split_first() else {
        return Some(v);
    };
    let child = match v {
        Value::Array(items) => items.get_mut(first)?,
        Value::Map(entries) => &mut entries.get_mut(first)?.1,
        Value::Tag(_, inner) if first == 0 => inner.as_mut(),
        _ => return None,
    };
    node_mut(child, rest)
}

/// One mutation somewhere in the tree.
pub fn mutate_value(rng: &mut StdRng, root: &mut Value, pool: &Pool) {
    let mut all = Vec::new();
    paths(root, &mut Vec::new(), &mut all);
    let path = all[rng.random_range(0..all.len())].clone();
    let Some(node) = node_mut(root, &path) else {
        return;
    };
    if rng.random_range(0..10) == 0 {
        *node = random_value(rng, 2);
        return;
    }
    match node {
        Value::Map(entries) => {
            let n = entries.len();
            match rng.random_range(0..7) {
                0 if n > 0 => {
                    entries.remove(rng.random_range(0..n));
                }
                1 if n > 0 => {
                    // The same key twice, maybe with another value.
                    let (k, v) = entries[rng.random_range(0..n)].clone();
                    let v = if rng.random() {
                        v
                    } else {
                        random_value(rng, 1)
                    };
                    entries.push((k, v));
                }
                2 => {
                    let key = match rng.random_range(0..3) {
                        0 => Value::Text(interesting_text(rng)),
                        1 => Value::Integer(random_int(rng)),
                        _ => random_value(rng, 1),
                    };
                    let depth = [1, 2, 300, 1_000][rng.random_range(0..4)];
                    let inner = random_value(rng, 1);
                    entries.push((key, nested(rng, inner, depth)));
                }
                3 if n > 0 => {
                    let i = rng.random_range(0..n);
                    entries[i].0 = match &entries[i].0 {
                        Value::Text(t) => Value::Text(if rng.random() {
                            t.to_uppercase()
                        } else {
                            format!("{t}\u{0}")
                        }),
                        _ => Value::Text(interesting_text(rng)),
                    };
                }
                4 if n > 1 => entries.reverse(),
                _ if n > 0 => {
                    let i = rng.random_range(0..n);
                    entries[i].1 = random_value(rng, 2);
                }
                _ => {}
            }
        }
        Value::Array(items) => {
            let n = items.len();
            match rng.random_range(0..7) {
                0 if n > 0 => {
                    items.remove(rng.random_range(0..n));
                }
                1 if n > 0 => {
                    let copy = items[rng.random_range(0..n)].clone();
                    items.insert(rng.random_range(0..=n), copy);
                }
                2 => items.insert(rng.random_range(0..=n), random_value(rng, 2)),
                3 => items.clear(),
                4 if n > 0 => {
                    // Past the document limit (1,000), or just many.
                    let copy = items[rng.random_range(0..n)].clone();
                    let copies = [2, 999, 1_001][rng.random_range(0..3)];
                    items.extend(std::iter::repeat_n(copy, copies));
                }
                5 if n > 1 => items.swap(rng.random_range(0..n), rng.random_range(0..n)),
                _ => {
                    let depth = rng.random_range(1..400);
                    let inner = std::mem::replace(node, Value::Null);
                    *node = nested(rng, inner, depth);
                }
            }
        }
        Value::Bytes(bytes) => match rng.random_range(0..6) {
            0..=2 => chunk::mutate_chunk(rng, bytes, pool),
            3 => havoc(rng, bytes, 3),
            4 => {
                // A byte string as an array of small integers, which
                // serde_bytes also accepts.
                let items = bytes
                    .iter()
                    .map(|b| Value::Integer(Integer::from(*b)))
                    .collect();
                *node = Value::Array(items);
            }
            _ => *node = Value::Text(String::from_utf8_lossy(bytes).into_owned()),
        },
        Value::Text(text) => {
            *text = match rng.random_range(0..4) {
                0 => text.to_uppercase(),
                1 => format!("{text}{}", interesting_text(rng)),
                2 => text.chars().rev().collect(),
                _ => interesting_text(rng),
            }
        }
        Value::Integer(_) => *node = Value::Integer(random_int(rng)),
        Value::Tag(_, inner) => {
            let inner = std::mem::replace(inner.as_mut(), Value::Null);
            *node = inner;
        }
        _ => {
            let inner = std::mem::replace(node, Value::Null);
            *node = Value::Tag(interesting_u64(rng), Box::new(inner));
        }
    }
}

/// Where one data item's head is in the encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub offset: usize,
    pub len: usize,
    pub major: u8,
    pub arg: u64,
}

/// Every item head of `bytes`, in order, as far as they parse.
pub fn heads(bytes: &[u8]) -> Vec<Head> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while let Some(&first) = bytes.get(at) {
        let major = first >> 5;
        let ai = first & 0x1f;
        let (len, arg) = match ai {
            0..=23 => (1, u64::from(ai)),
            24..=27 => {
                let n = 1usize << (ai - 24);
                let Some(arg_bytes) = bytes.get(at + 1..at + 1 + n) else {
                    break;
                };
                let arg = arg_bytes
                    .iter()
                    .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
                (1 + n, arg)
            }
            31 => (1, 0),
            _ => break,
        };
        out.push(Head {
            offset: at,
            len,
            major,
            arg,
        });
        at += len;
        if (major == 2 || major == 3) && ai != 31 {
            let Some(next) = usize::try_from(arg).ok().and_then(|a| at.checked_add(a)) else {
                break;
            };
            at = next;
        }
    }
    out
}

/// The head of an item of `major` with `arg`, in `width` argument bytes
/// (0: in the first byte if it fits), not necessarily the shortest.
pub fn encode_head(major: u8, arg: u64, width: usize) -> Vec<u8> {
    let m = major << 5;
    match width {
        0 if arg < 24 => vec![m | arg as u8],
        0 | 1 if arg <= 0xff => vec![m | 24, arg as u8],
        0..=2 if arg <= 0xffff => {
            let mut v = vec![m | 25];
            v.extend_from_slice(&(arg as u16).to_be_bytes());
            v
        }
        0..=4 if arg <= 0xffff_ffff => {
            let mut v = vec![m | 26];
            v.extend_from_slice(&(arg as u32).to_be_bytes());
            v
        }
        _ => {
            let mut v = vec![m | 27];
            v.extend_from_slice(&arg.to_be_bytes());
            v
        }
    }
}

/// One mutation of the encoded bytes, aimed at item heads.
pub fn mutate_bytes(rng: &mut StdRng, bytes: &mut Vec<u8>) {
    let hs = heads(bytes);
    if hs.is_empty() || rng.random_range(0..8) == 0 {
        let rounds = rng.random_range(1..4);
        havoc(rng, bytes, rounds);
        return;
    }
    let h = hs[rng.random_range(0..hs.len())];
    let replacement = match rng.random_range(0..6) {
        // A length or count that lies (a byte string claiming 2^62 bytes).
        0..=2 => encode_head(h.major, interesting_u64(rng), rng.random_range(0..5)),
        // The same argument, written longer than it needs to be.
        3 => encode_head(h.major, h.arg, 8),
        // Indefinite length (valid for strings, arrays, maps).
        4 => vec![(h.major << 5) | 31],
        // Another major type with the same argument.
        _ => encode_head(rng.random_range(0..8), h.arg, 0),
    };
    bytes.splice(h.offset..h.offset + h.len, replacement);
    if rng.random_range(0..4) == 0 {
        // A stray break, or items left unterminated.
        let at = rng.random_range(0..=bytes.len());
        bytes.insert(at, 0xff);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn heads_walk_a_real_message() {
        let v = Value::Map(vec![
            (Value::Text("protocol".into()), Value::Integer(1.into())),
            (
                Value::Text("docs".into()),
                Value::Array(vec![Value::Bytes(vec![7; 300])]),
            ),
        ]);
        let bytes = encode_value(&v);
        let hs = heads(&bytes);
        let majors: Vec<u8> = hs.iter().map(|h| h.major).collect();
        assert_eq!(majors, vec![5, 3, 0, 3, 4, 2]);
        assert_eq!(hs[5].arg, 300);
        for width in 0..5 {
            let mut copy = bytes.clone();
            let h = hs[5];
            copy.splice(h.offset..h.offset + h.len, encode_head(2, 300, width));
            assert_eq!(decode_value(&copy), Some(v.clone()), "width {width}");
        }
    }
}
