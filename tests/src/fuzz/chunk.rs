//! Automerge change chunks taken apart, mutated where decoders look, and
//! put back together with a checksum that matches, so the mutation gets
//! past the cheap checks and reaches the column decoders and the merge.
//!
//! A change chunk is `magic (4) | checksum (4) | type (1) | uLEB128 length
//! | data`, the checksum being the first four bytes of SHA-256 over `type |
//! length | data` (the change's hash is all of it). The data is a header
//! (dependencies, actor, seq, start op, time, message, other actors), the
//! column metadata (spec and length of each column), the columns back to
//! back, and extra bytes. Columns are run-length encoded, except booleans
//! (alternating run counts) and raw values.

use rand::Rng;
use rand::rngs::StdRng;
use sha2::{Digest, Sha256};

use super::corpus::Pool;
use super::{havoc, interesting_i64, interesting_text, interesting_u64};

pub const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
pub const CHANGE: u8 = 1;

/// Column types (the low three bits of a column spec).
pub mod kind {
    pub const GROUP: u64 = 0;
    pub const ACTOR: u64 = 1;
    pub const INTEGER: u64 = 2;
    pub const DELTA: u64 = 3;
    pub const BOOLEAN: u64 = 4;
    pub const STRING: u64 = 5;
    pub const VALUE_METADATA: u64 = 6;
    pub const VALUE: u64 = 7;
}

pub fn write_uleb(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

pub fn write_sleb(out: &mut Vec<u8>, mut v: i64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        let done = (v == 0 && b & 0x40 == 0) || (v == -1 && b & 0x40 != 0);
        if done {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// A cursor over bytes that never reads past the end.
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes }
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn rest(&self) -> &'a [u8] {
        self.bytes
    }

    pub fn take(&mut self, n: u64) -> Option<&'a [u8]> {
        let n = usize::try_from(n).ok()?;
        if n > self.bytes.len() {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(head)
    }

    pub fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    pub fn uleb(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    pub fn sleb(&mut self) -> Option<i64> {
        let mut value = 0i64;
        let mut shift = 0u32;
        loop {
            let b = self.byte()?;
            if shift >= 64 {
                return None;
            }
            value |= i64::from(b & 0x7f).wrapping_shl(shift);
            shift += 7;
            if b & 0x80 == 0 {
                if shift < 64 && b & 0x40 != 0 {
                    value |= -1i64 << shift;
                }
                return Some(value);
            }
        }
    }

    pub fn prefixed(&mut self) -> Option<&'a [u8]> {
        let n = self.uleb()?;
        self.take(n)
    }

    /// The raw bytes of one uLEB128 number.
    fn raw_uleb(&mut self) -> Option<&'a [u8]> {
        let start = self.bytes;
        self.uleb()?;
        Some(&start[..start.len() - self.bytes.len()])
    }

    fn raw_sleb(&mut self) -> Option<&'a [u8]> {
        let start = self.bytes;
        self.sleb()?;
        Some(&start[..start.len() - self.bytes.len()])
    }

    fn raw_prefixed(&mut self) -> Option<&'a [u8]> {
        let start = self.bytes;
        self.prefixed()?;
        Some(&start[..start.len() - self.bytes.len()])
    }
}

/// One column: its spec, its bytes, and, when mutated so, a length in the
/// metadata that is not the length of its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub spec: u64,
    pub data: Vec<u8>,
    pub declared_len: Option<u64>,
}

/// Which count or length in the header lies about what follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lie {
    Deps,
    Others,
    Columns,
    ActorLen,
    MessageLen,
}

/// A change chunk, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeChunk {
    pub deps: Vec<Vec<u8>>,
    pub actor: Vec<u8>,
    pub seq: u64,
    pub start_op: u64,
    pub time: i64,
    pub message: Vec<u8>,
    pub others: Vec<Vec<u8>>,
    pub columns: Vec<Column>,
    pub extra: Vec<u8>,
    /// One header count or length written as this number instead.
    pub lie: Option<(Lie, u64)>,
}

impl ChangeChunk {
    /// Parses an uncompressed change chunk; `None` for anything else.
    pub fn parse(bytes: &[u8]) -> Option<ChangeChunk> {
        let mut r = Reader::new(bytes);
        if r.take(4)? != MAGIC {
            return None;
        }
        r.take(4)?;
        if r.byte()? != CHANGE {
            return None;
        }
        let len = r.uleb()?;
        let mut d = Reader::new(r.take(len)?);
        let ndeps = d.uleb()?;
        let mut deps = Vec::new();
        for _ in 0..ndeps {
            deps.push(d.take(32)?.to_vec());
        }
        let actor = d.prefixed()?.to_vec();
        let seq = d.uleb()?;
        let start_op = d.uleb()?;
        let time = d.sleb()?;
        let message = d.prefixed()?.to_vec();
        let nothers = d.uleb()?;
        let mut others = Vec::new();
        for _ in 0..nothers {
            others.push(d.prefixed()?.to_vec());
        }
        let ncols = d.uleb()?;
        let mut specs = Vec::new();
        for _ in 0..ncols {
            specs.push((d.uleb()?, d.uleb()?));
        }
        let mut columns = Vec::new();
        for (spec, len) in specs {
            columns.push(Column {
                spec,
                data: d.take(len)?.to_vec(),
                declared_len: None,
            });
        }
        Some(ChangeChunk {
            deps,
            actor,
            seq,
            start_op,
            time,
            message,
            others,
            columns,
            extra: d.rest().to_vec(),
            lie: None,
        })
    }

    /// The count or length to write for `field`, whose true value is `real`.
    fn told(&self, field: Lie, real: usize) -> u64 {
        match self.lie {
            Some((f, n)) if f == field => n,
            _ => real as u64,
        }
    }

    /// The chunk's data (what its length prefix covers).
    pub fn data(&self) -> Vec<u8> {
        let mut d = Vec::new();
        write_uleb(&mut d, self.told(Lie::Deps, self.deps.len()));
        for dep in &self.deps {
            d.extend_from_slice(dep);
        }
        write_uleb(&mut d, self.told(Lie::ActorLen, self.actor.len()));
        d.extend_from_slice(&self.actor);
        write_uleb(&mut d, self.seq);
        write_uleb(&mut d, self.start_op);
        write_sleb(&mut d, self.time);
        write_uleb(&mut d, self.told(Lie::MessageLen, self.message.len()));
        d.extend_from_slice(&self.message);
        write_uleb(&mut d, self.told(Lie::Others, self.others.len()));
        for other in &self.others {
            write_uleb(&mut d, other.len() as u64);
            d.extend_from_slice(other);
        }
        write_uleb(&mut d, self.told(Lie::Columns, self.columns.len()));
        for c in &self.columns {
            write_uleb(&mut d, c.spec);
            write_uleb(&mut d, c.declared_len.unwrap_or(c.data.len() as u64));
        }
        for c in &self.columns {
            d.extend_from_slice(&c.data);
        }
        d.extend_from_slice(&self.extra);
        d
    }

    /// The whole chunk, with a true checksum.
    pub fn to_bytes(&self) -> Vec<u8> {
        frame(CHANGE, &self.data())
    }
}

/// SHA-256 over `type | uLEB128(len) | data`: the first four bytes are the
/// checksum, all of it the change's hash.
pub fn chunk_hash(chunk_type: u8, data: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([chunk_type]);
    let mut len = Vec::new();
    write_uleb(&mut len, data.len() as u64);
    h.update(&len);
    h.update(data);
    h.finalize().into()
}

/// A chunk of `chunk_type` around `data`, with a true checksum.
pub fn frame(chunk_type: u8, data: &[u8]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&chunk_hash(chunk_type, data)[..4]);
    out.push(chunk_type);
    write_uleb(&mut out, data.len() as u64);
    out.extend_from_slice(data);
    out
}

/// Recomputes the checksum of whatever chunk `bytes` frames, over the data
/// its length prefix covers (clamped to what is there), as automerge does.
pub fn fix_checksum(bytes: &mut [u8]) {
    if bytes.len() < 10 || bytes[..4] != MAGIC {
        return;
    }
    let chunk_type = bytes[8];
    let mut r = Reader::new(&bytes[9..]);
    let Some(len) = r.uleb() else { return };
    let rest = r.rest();
    let n = usize::try_from(len).unwrap_or(usize::MAX).min(rest.len());
    let sum = chunk_hash(chunk_type, &rest[..n]);
    bytes[4..8].copy_from_slice(&sum[..4]);
}

/// The hash a chunk's change would have, for use as a dependency.
pub fn hash_of(bytes: &[u8]) -> Option<[u8; 32]> {
    let mut r = Reader::new(bytes);
    if r.take(4)? != MAGIC {
        return None;
    }
    r.take(4)?;
    let chunk_type = r.byte()?;
    let len = r.uleb()?;
    Some(chunk_hash(chunk_type, r.take(len)?))
}

/// One run of a run-length encoded column, with its values as raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Run {
    Repeat(i64, Vec<u8>),
    Literal(Vec<Vec<u8>>),
    Null(u64),
    /// Bytes that are not a run (a mutation put them there).
    Raw(Vec<u8>),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ValueKind {
    Uleb,
    Sleb,
    Str,
}

fn value_kind(k: u64) -> Option<ValueKind> {
    match k {
        kind::GROUP | kind::ACTOR | kind::INTEGER | kind::VALUE_METADATA => Some(ValueKind::Uleb),
        kind::DELTA => Some(ValueKind::Sleb),
        kind::STRING => Some(ValueKind::Str),
        _ => None,
    }
}

fn read_value<'a>(r: &mut Reader<'a>, vk: ValueKind) -> Option<&'a [u8]> {
    match vk {
        ValueKind::Uleb => r.raw_uleb(),
        ValueKind::Sleb => r.raw_sleb(),
        ValueKind::Str => r.raw_prefixed(),
    }
}

fn parse_runs(vk: ValueKind, data: &[u8]) -> Option<Vec<Run>> {
    let mut r = Reader::new(data);
    let mut runs = Vec::new();
    while !r.is_empty() {
        let n = r.sleb()?;
        if n > 0 {
            runs.push(Run::Repeat(n, read_value(&mut r, vk)?.to_vec()));
        } else if n < 0 {
            let mut values = Vec::new();
            for _ in 0..n.unsigned_abs().min(data.len() as u64) {
                values.push(read_value(&mut r, vk)?.to_vec());
            }
            runs.push(Run::Literal(values));
        } else {
            runs.push(Run::Null(r.uleb()?));
        }
    }
    Some(runs)
}

fn write_runs(runs: &[Run]) -> Vec<u8> {
    let mut out = Vec::new();
    for run in runs {
        match run {
            Run::Repeat(n, v) => {
                write_sleb(&mut out, *n);
                out.extend_from_slice(v);
            }
            Run::Literal(values) => {
                write_sleb(&mut out, -(values.len() as i64));
                for v in values {
                    out.extend_from_slice(v);
                }
            }
            Run::Null(n) => {
                out.push(0);
                write_uleb(&mut out, *n);
            }
            Run::Raw(bytes) => out.extend_from_slice(bytes),
        }
    }
    out
}

/// A new value of the column's kind: interesting numbers, or text that is
/// long, empty or not UTF-8.
fn new_value(rng: &mut StdRng, vk: ValueKind, column: u64) -> Vec<u8> {
    let mut out = Vec::new();
    match vk {
        ValueKind::Uleb if column == kind::VALUE_METADATA => {
            // (length << 4) | type: any type, any length.
            let len = interesting_u64(rng) & ((1 << 59) - 1);
            write_uleb(&mut out, (len << 4) | rng.random_range(0..16));
        }
        ValueKind::Uleb => write_uleb(&mut out, interesting_u64(rng)),
        ValueKind::Sleb => write_sleb(&mut out, interesting_i64(rng)),
        ValueKind::Str => {
            let text = match rng.random_range(0..4) {
                0 => vec![0xff, 0xfe, 0xc0, 0x80],
                1 => Vec::new(),
                _ => interesting_text(rng).into_bytes(),
            };
            write_uleb(&mut out, text.len() as u64);
            out.extend_from_slice(&text);
        }
    }
    out
}

fn run_count(rng: &mut StdRng, old: i64) -> i64 {
    match rng.random_range(0..6) {
        0 => old.saturating_mul(rng.random_range(2..1_000)),
        1 => old.saturating_add(rng.random_range(-2..=2)),
        2 => rng.random_range(1..200_001),
        _ => interesting_i64(rng),
    }
}

/// Mutates a run-length encoded column; `false` if it did not parse.
fn mutate_runs(rng: &mut StdRng, column: u64, data: &mut Vec<u8>) -> bool {
    let Some(vk) = value_kind(column) else {
        return false;
    };
    let Some(mut runs) = parse_runs(vk, data) else {
        return false;
    };
    let n = runs.len();
    let pick = |rng: &mut StdRng| rng.random_range(0..n.max(1));
    match rng.random_range(0..9) {
        // Inflate or shrink a run's count: RLE declares rows cheaply.
        0 | 1 if n > 0 => {
            let i = pick(rng);
            runs[i] = match std::mem::replace(&mut runs[i], Run::Null(0)) {
                Run::Repeat(c, v) => {
                    let c = run_count(rng, c);
                    if c > 0 {
                        Run::Repeat(c, v)
                    } else {
                        let mut raw = Vec::new();
                        write_sleb(&mut raw, c);
                        raw.extend_from_slice(&v);
                        Run::Raw(raw)
                    }
                }
                Run::Null(c) => Run::Null(run_count(rng, c as i64).unsigned_abs()),
                Run::Literal(mut values) if !values.is_empty() => {
                    // A literal run declaring more (or fewer) values than it has.
                    let mut raw = Vec::new();
                    let lie = -(run_count(rng, values.len() as i64).max(1));
                    write_sleb(&mut raw, lie);
                    for v in values.drain(..) {
                        raw.extend_from_slice(&v);
                    }
                    Run::Raw(raw)
                }
                other => other,
            };
        }
        // A new value where one was.
        2 | 3 if n > 0 => {
            let i = pick(rng);
            let value = new_value(rng, vk, column);
            match &mut runs[i] {
                Run::Repeat(_, v) => *v = value,
                Run::Literal(values) if !values.is_empty() => {
                    let j = rng.random_range(0..values.len());
                    values[j] = value;
                }
                run => *run = Run::Literal(vec![value]),
            }
        }
        4 => {
            let at = rng.random_range(0..=n);
            let run = match rng.random_range(0..4) {
                0 => Run::Repeat(run_count(rng, 1).max(1), new_value(rng, vk, column)),
                1 => Run::Null(interesting_u64(rng)),
                2 => Run::Literal(
                    (0..rng.random_range(1..5))
                        .map(|_| new_value(rng, vk, column))
                        .collect(),
                ),
                _ => Run::Raw(vec![0]),
            };
            runs.insert(at, run);
        }
        5 if n > 0 => {
            runs.remove(pick(rng));
        }
        6 if n > 0 => {
            let i = pick(rng);
            let copy = runs[i].clone();
            runs.insert(i, copy);
        }
        7 if n > 1 => {
            let (i, j) = (pick(rng), pick(rng));
            runs.swap(i, j);
        }
        _ => {
            // Two adjacent repeats of one value, or a literal of repeats:
            // encodings automerge's writer never makes.
            if let Some(i) = (0..n).find(|&i| matches!(runs[i], Run::Repeat(..)))
                && let Run::Repeat(c, v) = runs[i].clone()
            {
                runs[i] = Run::Literal(vec![v; c.clamp(1, 4) as usize]);
            }
        }
    }
    *data = write_runs(&runs);
    true
}

/// Mutates a boolean column: alternating run counts, false first.
fn mutate_booleans(rng: &mut StdRng, data: &mut Vec<u8>) {
    let mut r = Reader::new(data);
    let mut counts = Vec::new();
    while let Some(c) = r.uleb() {
        counts.push(c);
    }
    let n = counts.len();
    match rng.random_range(0..4) {
        0 if n > 0 => {
            let i = rng.random_range(0..n);
            counts[i] = run_count(rng, counts[i] as i64).unsigned_abs();
        }
        1 => counts.insert(rng.random_range(0..=n), interesting_u64(rng)),
        2 if n > 0 => {
            counts.remove(rng.random_range(0..n));
        }
        _ => counts.push(0),
    }
    data.clear();
    for c in counts {
        write_uleb(data, c);
    }
}

fn random_bytes(rng: &mut StdRng, n: usize) -> Vec<u8> {
    (0..n).map(|_| rng.random()).collect()
}

/// The column with `spec` in some pool chunk, to splice in.
fn donor_column(rng: &mut StdRng, pool: &Pool, spec: u64) -> Option<Vec<u8>> {
    for _ in 0..4 {
        let bytes = pool
            .chunks
            .get(rng.random_range(0..pool.chunks.len().max(1)))?;
        let chunk = ChangeChunk::parse(bytes)?;
        if let Some(c) = chunk.columns.iter().find(|c| c.spec == spec) {
            return Some(c.data.clone());
        }
    }
    None
}

/// One structure-aware mutation of a parsed change.
pub fn mutate_change(rng: &mut StdRng, c: &mut ChangeChunk, pool: &Pool) {
    let ncols = c.columns.len();
    match rng.random_range(0..100) {
        // Column contents: where automerge's decoders work.
        0..=29 if ncols > 0 => {
            let i = rng.random_range(0..ncols);
            let column = c.columns[i].spec & 7;
            let data = &mut c.columns[i].data;
            let done = match column {
                kind::BOOLEAN => {
                    mutate_booleans(rng, data);
                    true
                }
                kind::VALUE => false,
                k => mutate_runs(rng, k, data),
            };
            if !done {
                let rounds = rng.random_range(1..4);
                havoc(rng, data, rounds);
            }
        }
        30..=37 if ncols > 0 => {
            let i = rng.random_range(0..ncols);
            let rounds = rng.random_range(1..4);
            havoc(rng, &mut c.columns[i].data, rounds);
        }
        // Column metadata.
        38..=41 if ncols > 0 => {
            let i = rng.random_range(0..ncols);
            let spec = &mut c.columns[i].spec;
            *spec = match rng.random_range(0..5) {
                0 => *spec ^ rng.random_range(1..8),
                1 => *spec | 8,
                2 => spec.wrapping_add(16 * rng.random_range(1..4)),
                3 => interesting_u64(rng),
                _ => rng.random_range(0..256),
            };
        }
        42..=44 if ncols > 0 => {
            let i = rng.random_range(0..ncols);
            let real = c.columns[i].data.len() as u64;
            c.columns[i].declared_len = Some(match rng.random_range(0..3) {
                0 => real.saturating_add(1),
                1 => real.saturating_sub(1),
                _ => interesting_u64(rng),
            });
        }
        45..=47 if ncols > 0 => {
            let i = rng.random_range(0..ncols);
            match rng.random_range(0..4) {
                0 => {
                    c.columns.remove(i);
                }
                1 => {
                    let copy = c.columns[i].clone();
                    c.columns.insert(i, copy);
                }
                2 => {
                    let j = rng.random_range(0..ncols);
                    c.columns.swap(i, j);
                }
                _ => c.columns[i].data.clear(),
            }
        }
        48..=51 if ncols > 0 => {
            let i = rng.random_range(0..ncols);
            if let Some(data) = donor_column(rng, pool, c.columns[i].spec) {
                c.columns[i].data = data;
            }
        }
        // Header fields.
        52..=55 => {
            c.seq = match rng.random_range(0..3) {
                0 => c.seq.wrapping_add(rng.random_range(1..3)),
                1 => c.seq.wrapping_sub(1),
                _ => interesting_u64(rng),
            }
        }
        56..=59 => {
            c.start_op = match rng.random_range(0..3) {
                0 => c.start_op.wrapping_add(rng.random_range(1..100)),
                1 => c.start_op.wrapping_sub(1),
                _ => interesting_u64(rng),
            }
        }
        60..=61 => c.time = interesting_i64(rng),
        62..=65 => {
            c.actor = match rng.random_range(0..6) {
                0 => Vec::new(),
                1 => vec![rng.random()],
                2 => {
                    let n = [16, 32, 64, 1_000][rng.random_range(0..4)];
                    random_bytes(rng, n)
                }
                3 => c.others.first().cloned().unwrap_or_default(),
                _ => pool
                    .chunks
                    .get(rng.random_range(0..pool.chunks.len().max(1)))
                    .and_then(|b| ChangeChunk::parse(b))
                    .map(|o| o.actor)
                    .unwrap_or_default(),
            }
        }
        66..=67 => {
            c.message = match rng.random_range(0..3) {
                0 => vec![0xff, 0xc3, 0x28],
                1 => "m".repeat(rng.random_range(1..100_000)).into_bytes(),
                _ => interesting_text(rng).into_bytes(),
            }
        }
        68..=75 => match rng.random_range(0..6) {
            0 if !c.deps.is_empty() => {
                let i = rng.random_range(0..c.deps.len());
                c.deps.remove(i);
            }
            1 if !c.deps.is_empty() => {
                let i = rng.random_range(0..c.deps.len());
                let copy = c.deps[i].clone();
                c.deps.push(copy);
            }
            2 => c.deps.push(random_bytes(rng, 32)),
            3 => {
                let n = [0, 31, 33][rng.random_range(0..3)];
                c.deps.push(random_bytes(rng, n))
            }
            _ => {
                let donor = pool
                    .chunks
                    .get(rng.random_range(0..pool.chunks.len().max(1)))
                    .and_then(|b| hash_of(b));
                if let Some(h) = donor {
                    c.deps.push(h.to_vec());
                }
            }
        },
        76..=79 => match rng.random_range(0..4) {
            0 => c.others.push(c.actor.clone()),
            1 => c.others.push(Vec::new()),
            2 => {
                for i in 0..rng.random_range(2..300u32) {
                    c.others.push(i.to_be_bytes().to_vec());
                }
            }
            _ => {
                c.others.pop();
            }
        },
        80..=83 => {
            let n = rng.random_range(1..64);
            c.extra.extend(random_bytes(rng, n));
        }
        84..=87 => {
            let field = [
                Lie::Deps,
                Lie::Others,
                Lie::Columns,
                Lie::ActorLen,
                Lie::MessageLen,
            ][rng.random_range(0..5)];
            c.lie = Some((field, interesting_u64(rng)));
        }
        // Another change's columns under this header (or the reverse).
        88..=91 => {
            let donor = pool
                .chunks
                .get(rng.random_range(0..pool.chunks.len().max(1)))
                .and_then(|b| ChangeChunk::parse(b));
            if let Some(d) = donor {
                if rng.random() {
                    c.columns = d.columns;
                } else {
                    c.seq = d.seq;
                    c.start_op = d.start_op;
                    c.deps = d.deps;
                }
            }
        }
        _ if ncols > 0 => {
            // A column of a type automerge would not put there, with data
            // of the type it claims.
            let i = rng.random_range(0..ncols);
            let id = c.columns[i].spec >> 4;
            let k = rng.random_range(0..8);
            c.columns[i].spec = (id << 4) | k;
        }
        _ => {}
    }
}

/// Mutations of a chunk as bytes, after it was put back together.
pub fn mutate_framed(rng: &mut StdRng, bytes: &mut Vec<u8>, pool: &Pool) {
    match rng.random_range(0..10) {
        0 => {
            // Another chunk type, with a checksum that matches it.
            if bytes.len() > 8 {
                bytes[8] = [0, 2, 3, 7, 0x7f, 0xff][rng.random_range(0..6)];
                fix_checksum(bytes);
            }
        }
        1 => {
            let n = rng.random_range(0..bytes.len().max(1));
            bytes.truncate(n);
        }
        2 => {
            if bytes.len() > 8 {
                bytes[4..8].copy_from_slice(&random_bytes(rng, 4));
            }
        }
        3 => {
            if let Some(other) = pool
                .chunks
                .get(rng.random_range(0..pool.chunks.len().max(1)))
            {
                bytes.extend_from_slice(other);
            }
        }
        4 => {
            // The chunk's length prefix, rewritten.
            let Some(chunk_data) = bytes.get(9..).map(|rest| {
                let mut r = Reader::new(rest);
                r.uleb().map(|_| r.rest().to_vec())
            }) else {
                return;
            };
            let Some(data) = chunk_data else { return };
            let mut out = bytes[..9].to_vec();
            write_uleb(&mut out, interesting_u64(rng));
            out.extend_from_slice(&data);
            *bytes = out;
            fix_checksum(bytes);
        }
        _ => {
            // Anywhere in the data, then a true checksum again.
            let head = bytes.len().min(10);
            let mut tail = bytes.split_off(head);
            let rounds = rng.random_range(1..4);
            havoc(rng, &mut tail, rounds);
            bytes.extend(tail);
            fix_checksum(bytes);
        }
    }
}

/// One mutation of a chunk's bytes: structural when it parses (most of
/// the time), else as framed bytes.
pub fn mutate_chunk(rng: &mut StdRng, bytes: &mut Vec<u8>, pool: &Pool) {
    match ChangeChunk::parse(bytes) {
        Some(mut c) if rng.random_range(0..10) < 8 => {
            mutate_change(rng, &mut c, pool);
            *bytes = c.to_bytes();
        }
        _ => mutate_framed(rng, bytes, pool),
    }
}

/// How many copies of `chunk` fit in a request body the server would
/// read (8 MiB): more is a 413 before any decoding, and slow to make.
fn fits(chunk: &[u8]) -> usize {
    (8 << 20) / chunk.len().max(1)
}

/// Mutations of one document's list of chunks: the chunks themselves most
/// of the time, else which chunks there are.
pub fn mutate_chunk_list(rng: &mut StdRng, chunks: &mut Vec<Vec<u8>>, pool: &Pool) {
    let n = chunks.len();
    match rng.random_range(0..100) {
        0..=79 if n > 0 => {
            let i = rng.random_range(0..n);
            mutate_chunk(rng, &mut chunks[i], pool);
        }
        80..=83 if n > 0 => {
            let i = rng.random_range(0..n);
            let copy = chunks[i].clone();
            chunks.insert(rng.random_range(0..=n), copy);
        }
        84..=86 if n > 0 => {
            chunks.remove(rng.random_range(0..n));
        }
        87..=88 => chunks.reverse(),
        89..=91 => {
            if let Some(c) = pool
                .chunks
                .get(rng.random_range(0..pool.chunks.len().max(1)))
            {
                chunks.insert(rng.random_range(0..=n), c.clone());
            }
        }
        92..=94 => {
            let other = if rng.random() {
                &pool.other_chunks
            } else {
                &pool.bundles
            };
            if let Some(c) = other.get(rng.random_range(0..other.len().max(1))) {
                chunks.insert(rng.random_range(0..=n), c.clone());
            }
        }
        95 => chunks.clear(),
        96 => chunks.push(Vec::new()),
        97 => {
            let n = rng.random_range(1..64);
            chunks.push(random_bytes(rng, n));
        }
        98 if n > 0 => {
            // Many copies: the budget and the per-document change limit.
            let c = chunks[rng.random_range(0..n)].clone();
            let copies = [100, 1_000, 10_001][rng.random_range(0..3)].min(fits(&c));
            chunks.extend(std::iter::repeat_n(c, copies));
        }
        _ => {
            // Distinct valid changes by the thousand: seq and start op
            // bumped in each copy, so every one is new to the merge.
            if let Some(base) = chunks.first().and_then(|b| ChangeChunk::parse(b)) {
                let copies = rng.random_range(10..2_000).min(fits(&chunks[0]) as u64);
                for k in 1..=copies {
                    let mut c = base.clone();
                    c.seq = c.seq.wrapping_add(k);
                    c.start_op = c.start_op.wrapping_add(k * 1_000);
                    chunks.push(c.to_bytes());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::fuzz::corpus::world;
    use automerge::Change;

    #[test]
    fn real_chunks_come_apart_and_back_byte_for_byte() {
        let w = world().unwrap();
        assert!(w.pool.chunks.len() > 20);
        for bytes in &w.pool.chunks {
            let chunk = ChangeChunk::parse(bytes).unwrap();
            assert_eq!(&chunk.to_bytes(), bytes);
            let change = Change::from_bytes(bytes.clone()).unwrap();
            assert_eq!(hash_of(bytes).unwrap(), change.hash().0);
            let mut copy = bytes.clone();
            copy[4] ^= 0xff;
            fix_checksum(&mut copy);
            assert_eq!(&copy, bytes);
        }
    }

    #[test]
    fn runs_parse_and_write_back_unchanged() {
        let w = world().unwrap();
        for bytes in &w.pool.chunks {
            for c in ChangeChunk::parse(bytes).unwrap().columns {
                if let Some(vk) = value_kind(c.spec & 7) {
                    let runs = parse_runs(vk, &c.data).unwrap();
                    assert_eq!(write_runs(&runs), c.data, "column {}", c.spec);
                }
            }
        }
    }

    #[test]
    fn leb128_writers_match_the_readers() {
        for v in [0u64, 1, 127, 128, 16_383, 16_384, u64::MAX] {
            let mut out = Vec::new();
            write_uleb(&mut out, v);
            assert_eq!(Reader::new(&out).uleb(), Some(v));
        }
        for v in [0i64, 1, -1, 63, 64, -64, -65, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            write_sleb(&mut out, v);
            assert_eq!(Reader::new(&out).sleb(), Some(v), "{v}");
        }
    }
}
