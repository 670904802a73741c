//! Decoding changes from a peer that may be hostile: the server's side of
//! every upload.
//!
//! automerge's decoders are not hardened against malicious input. Fuzzing
//! found bundles that make it allocate without bound (it sizes vectors and
//! loops from counts in the input) and column data that makes it panic, and
//! run-length encoding lets a few bytes declare billions of operations. So
//! the server accepts one encoding only, plain uncompressed change chunks,
//! and walks each chunk's structure here *before* automerge sees it:
//!
//! - the chunk is one change chunk (not a bundle, a document or a deflated
//!   chunk, whose inflated size the body limit does not bound), with no
//!   bytes after it and a checksum that matches;
//! - every length and count fits in the bytes that are actually there;
//! - every column's run-length encoding is well formed and declares at most
//!   the operations left in the request's [`OpBudget`], and so does the sum
//!   of every group column (an op's list of predecessors).
//!
//! Within those bounds automerge's own decoder and `apply_changes` work on a
//! memory and time proportional to the budget, not to what the bytes claim.
//! This walk is not a second decoder: it checks only what bounds the work;
//! automerge still decides what the ops mean. A panic inside automerge on
//! some other malformation remains possible, so the server also runs the
//! decode and the merge where a panic becomes a `corrupt` refusal.

use automerge::Change;

use super::protocol::Changes;

/// Operations a request's changes may declare in all, counted before
/// decoding. One receipt is about a dozen operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpBudget {
    left: u64,
}

impl OpBudget {
    pub fn new(ops: u64) -> OpBudget {
        OpBudget { left: ops }
    }

    pub fn left(&self) -> u64 {
        self.left
    }

    fn charge(&mut self, ops: u64) -> Result<(), UntrustedError> {
        self.left = self
            .left
            .checked_sub(ops)
            .ok_or(UntrustedError::OverBudget)?;
        Ok(())
    }
}

/// Why untrusted bytes were not decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UntrustedError {
    #[error("changes must be sent as plain change chunks; this app sent a bundle (update the app)")]
    Bundle,
    #[error("change {index}: {reason}")]
    Malformed { index: usize, reason: String },
    #[error("more operations than one sync may carry; sync more often")]
    OverBudget,
}

/// Decodes a peer's changes, refusing anything that is not plain change
/// chunks within `budget` (which it charges).
pub fn decode_untrusted(
    changes: &Changes,
    budget: &mut OpBudget,
) -> Result<Vec<Change>, UntrustedError> {
    let chunks = match changes {
        Changes::Chunks(chunks) => chunks,
        Changes::Bundle(bytes) if bytes.is_empty() => return Ok(Vec::new()),
        Changes::Bundle(_) => return Err(UntrustedError::Bundle),
    };
    // Walk every chunk before decoding any: a request over budget costs
    // no automerge work at all.
    for (index, bytes) in chunks.iter().enumerate() {
        let ops = scan_change_chunk(bytes).map_err(|e| match e {
            ScanError::OverBudget => UntrustedError::OverBudget,
            ScanError::Malformed(reason) => UntrustedError::Malformed {
                index,
                reason: reason.to_owned(),
            },
        })?;
        budget.charge(ops)?;
    }
    chunks
        .iter()
        .enumerate()
        .map(|(index, bytes)| {
            let malformed = |reason: String| UntrustedError::Malformed { index, reason };
            let change =
                Change::from_bytes(bytes.to_vec()).map_err(|e| malformed(e.to_string()))?;
            // automerge hashes what it parses but does not check the
            // chunk's own checksum; a stored change must carry a true one.
            if bytes.get(4..8) != Some(&change.hash().0[..4]) {
                return Err(malformed("checksum does not match".into()));
            }
            // automerge keeps a change's ops, not its bytes: once applied, it
            // hands the change out re-encoded. Bytes it would not have
            // written itself (equal values as literals instead of a run,
            // say) would come back under another hash than the one stored,
            // and phones and server would disagree on history.
            if Change::from(change.decode()).hash() != change.hash() {
                return Err(malformed("not in automerge's own encoding".into()));
            }
            Ok(change)
        })
        .collect()
}

/// The first bytes of every automerge chunk.
const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
/// Chunk type of an uncompressed change.
const CHANGE_CHUNK: u8 = 1;
/// No single count in a change can sensibly exceed this; larger ones are
/// refused before any arithmetic on them.
const MAX_COUNT: u64 = u32::MAX as u64;

#[derive(Debug)]
enum ScanError {
    Malformed(&'static str),
    OverBudget,
}

type Scan<T> = Result<T, ScanError>;

/// Walks a change chunk's structure and returns an upper bound on the
/// operations (and predecessor entries) decoding it will produce.
fn scan_change_chunk(bytes: &[u8]) -> Scan<u64> {
    let mut r = Reader::new(bytes);
    if r.take(4)? != MAGIC {
        return Err(ScanError::Malformed("not an automerge chunk"));
    }
    r.take(4)?; // checksum, verified after decoding
    if r.byte()? != CHANGE_CHUNK {
        return Err(ScanError::Malformed(
            "not an uncompressed change chunk (bundles, documents and deflated changes are refused)",
        ));
    }
    let len = r.count()?;
    let mut data = Reader::new(r.take(len)?);
    if !r.is_empty() {
        return Err(ScanError::Malformed("bytes after the change"));
    }
    // Header: dependencies, actor, seq, start op, time, message, other actors.
    let deps = data.count()?;
    for _ in 0..deps {
        data.take(32)?;
    }
    let mut actors = vec![data.length_prefixed()?];
    let seq = data.uleb()?;
    let start_op = data.uleb()?;
    if seq == 0 || start_op == 0 || seq > MAX_COUNT {
        return Err(ScanError::Malformed("seq or start op out of range"));
    }
    // Milliseconds since 1970, as a phone's clock gives them; automerge's
    // time columns overflow on the extremes.
    if !(0..1i64 << 53).contains(&data.sleb()?) {
        return Err(ScanError::Malformed("time out of range"));
    }
    data.length_prefixed()?;
    let other_actors = data.count()?;
    for _ in 0..other_actors {
        let actor = data.length_prefixed()?;
        if actors.contains(&actor) {
            return Err(ScanError::Malformed("an actor listed twice"));
        }
        actors.push(actor);
    }
    // Column metadata, then the columns' data back to back.
    let columns = data.count()?;
    let mut specs = Vec::new();
    for _ in 0..columns {
        let spec = data.uleb()?;
        let len = data.count()?;
        specs.push((spec, len));
    }
    let mut scanned = Vec::with_capacity(specs.len());
    for (spec, len) in specs {
        if spec & DEFLATE_BIT != 0 {
            return Err(ScanError::Malformed("deflated column in a change"));
        }
        let column = Column {
            spec,
            // The change's own actor is index 0, the others follow.
            actors: actors.len() as u64,
        };
        let bytes = data.take(len)?;
        scanned.push((column, scan_column(column, bytes)?, bytes.len() as u64));
    }
    let find = |spec: u64| scanned.iter().find(|(c, _, _)| c.spec == spec);
    // Only the columns automerge writes in a change: it decodes a missing
    // half of an op id (an actor without its counter, or the reverse) to
    // an actor it then fails to find, and panics.
    if scanned
        .iter()
        .any(|(c, _, _)| !spec::KNOWN.contains(&c.spec))
    {
        return Err(ScanError::Malformed(
            "a column automerge does not write in a change",
        ));
    }
    // An op id's counter without its actor is only the root object or the
    // head of a list (counter 0, no actor), as automerge writes them.
    for (actor, counter) in spec::ID_PAIRS {
        if find(actor).is_none() && find(counter).is_some_and(|(_, s, _)| s.nonzero) {
            return Err(ScanError::Malformed("an op id without its actor"));
        }
    }
    // Every column of an op has one row per op (the action column's rows),
    // and the predecessor columns one per entry of the predecessor groups.
    // automerge reads them in step and panics on some mismatches.
    let ops = find(spec::ACTION).map_or(0, |(_, s, _)| s.rows);
    let preds = find(spec::PRED_GROUP).map_or(0, |(_, s, _)| s.sum);
    if preds > 0 && find(spec::PRED_ACTOR).is_none() {
        return Err(ScanError::Malformed("predecessors without their op ids"));
    }
    for (column, scan, _) in &scanned {
        let want = match column.kind() {
            column::VALUE => continue,
            column::GROUP => ops,
            _ if column.id() == spec::PRED_ID => preds,
            _ => ops,
        };
        if scan.rows != want {
            return Err(ScanError::Malformed(
                "a column's rows differ from the operation count",
            ));
        }
    }
    // The value column holds exactly the bytes its metadata column sizes.
    let value_bytes = find(spec::VALUE).map_or(0, |(_, _, len)| *len);
    if find(spec::VALUE_METADATA).map_or(0, |(_, s, _)| s.sum) != value_bytes {
        return Err(ScanError::Malformed(
            "value lengths differ from the value column",
        ));
    }
    // Operation ids are 32-bit counters in automerge's op set; a change
    // whose ops would count past that panics it.
    if start_op.saturating_add(ops) > MAX_COUNT {
        return Err(ScanError::Malformed("operation counter out of range"));
    }
    // What is left is the change's extra bytes. This server's phones write
    // none, and automerge reads some as an "author" footer with rules of
    // its own that it enforces by panicking.
    if !data.is_empty() {
        return Err(ScanError::Malformed("extra bytes after the operations"));
    }
    Ok(ops.saturating_add(preds))
}

const DEFLATE_BIT: u64 = 0b1000;
const TYPE_MASK: u64 = 0b0111;

/// A column of a change: its spec (id and type), and how many actors its
/// actor indices may name.
#[derive(Debug, Clone, Copy)]
struct Column {
    spec: u64,
    actors: u64,
}

impl Column {
    fn kind(self) -> u64 {
        self.spec & TYPE_MASK
    }

    fn id(self) -> u64 {
        self.spec >> 4
    }
}

/// What walking a column found.
#[derive(Debug, Clone, Copy, Default)]
struct ColumnScan {
    rows: u64,
    /// A group column: the sum of its values (the rows of the columns it
    /// groups). A value-metadata column: the bytes the values take.
    sum: u64,
    /// An integer or delta column: some value (a delta's running value)
    /// is not zero.
    nonzero: bool,
}

/// The change columns the walk checks against each other, as in
/// automerge's change format (spec = id << 4 | type).
mod spec {
    use super::column;

    pub const ACTION: u64 = 4 << 4 | column::INTEGER;
    pub const VALUE_METADATA: u64 = 5 << 4 | column::VALUE_METADATA;
    pub const VALUE: u64 = 5 << 4 | column::VALUE;
    pub const PRED_ID: u64 = 7;
    pub const PRED_GROUP: u64 = PRED_ID << 4 | column::GROUP;
    pub const PRED_ACTOR: u64 = PRED_ID << 4 | column::ACTOR;
    const fn spec(id: u64, kind: u64) -> u64 {
        id << 4 | kind
    }
    /// Every column of a change's ops, as automerge 0.12 writes them: the
    /// object, key, insert, action, value, predecessors, expand and mark
    /// name.
    pub const KNOWN: [u64; 14] = [
        spec(0, column::ACTOR),
        spec(0, column::INTEGER),
        spec(1, column::ACTOR),
        spec(1, column::DELTA),
        spec(1, column::STRING),
        spec(3, column::BOOLEAN),
        ACTION,
        VALUE_METADATA,
        VALUE,
        PRED_GROUP,
        PRED_ACTOR,
        spec(PRED_ID, column::DELTA),
        spec(9, column::BOOLEAN),
        spec(10, column::STRING),
    ];
    /// The actor and counter columns of one kind of op id: object, key
    /// (a list element), predecessor.
    pub const ID_PAIRS: [(u64, u64); 3] = [
        (spec(0, column::ACTOR), spec(0, column::INTEGER)),
        (spec(1, column::ACTOR), spec(1, column::DELTA)),
        (PRED_ACTOR, spec(PRED_ID, column::DELTA)),
    ];
    /// Columns holding action codes and value metadata, not counters.
    pub fn holds_counters(id: u64) -> bool {
        id != 4 && id != 5
    }
}

/// Column types, as in automerge's storage format.
mod column {
    pub const GROUP: u64 = 0;
    pub const ACTOR: u64 = 1;
    pub const INTEGER: u64 = 2;
    pub const DELTA: u64 = 3;
    pub const BOOLEAN: u64 = 4;
    pub const STRING: u64 = 5;
    pub const VALUE_METADATA: u64 = 6;
    pub const VALUE: u64 = 7;
}

/// Walks one column: its rows, and the sum of its values where that
/// matters ([`ColumnScan::sum`]). Both are capped by [`MAX_COUNT`], past
/// which the change is refused: no real change comes near. Values are
/// checked where automerge would panic on them rather than refuse: an actor
/// index must name one of the change's actors, and counters (integer and
/// delta columns but the action and value ones; a delta column's running
/// value) must stay within 0..2^32.
fn scan_column(column: Column, bytes: &[u8]) -> Scan<ColumnScan> {
    let kind = column.kind();
    let counters = spec::holds_counters(column.id());
    let mut r = Reader::new(bytes);
    let mut scan = ColumnScan::default();
    let mut running = 0i64;
    let add = |total: &mut u64, n: u64| -> Scan<()> {
        *total = total.saturating_add(n);
        if *total > MAX_COUNT {
            return Err(ScanError::OverBudget);
        }
        Ok(())
    };
    let out_of_range = || ScanError::Malformed("operation counter out of range");
    // One value of the column; `n` is how many rows it stands for.
    let mut value = |r: &mut Reader, n: u64, scan: &mut ColumnScan| -> Scan<()> {
        match kind {
            column::DELTA => {
                let delta = r.sleb()?;
                // A run repeats the delta: the running value moves in a
                // straight line, so checking where it ends is enough.
                let moved = i128::from(delta) * i128::from(n) + i128::from(running);
                if !(0..=i128::from(u32::MAX)).contains(&moved) {
                    return Err(out_of_range());
                }
                running = moved as i64;
                scan.nonzero |= running != 0;
            }
            column::STRING => {
                r.length_prefixed()?;
            }
            _ => {
                let v = r.uleb()?;
                match kind {
                    column::ACTOR if v >= column.actors => {
                        return Err(ScanError::Malformed("actor index past the change's actors"));
                    }
                    column::INTEGER if counters && v > MAX_COUNT => return Err(out_of_range()),
                    column::INTEGER if v != 0 => scan.nonzero = true,
                    column::GROUP => add(&mut scan.sum, n.saturating_mul(v))?,
                    column::VALUE_METADATA => add(&mut scan.sum, n.saturating_mul(v >> 4))?,
                    _ => {}
                }
            }
        }
        Ok(())
    };
    match kind {
        column::VALUE => {}
        column::BOOLEAN => {
            while !r.is_empty() {
                add(&mut scan.rows, r.uleb()?)?;
            }
        }
        // GROUP, ACTOR, INTEGER, DELTA, STRING and VALUE_METADATA.
        _ => {
            // Run-length encoding: a positive count repeats one value, a
            // negative one is followed by that many literal values, zero by
            // a count of nulls.
            while !r.is_empty() {
                let run = r.sleb()?;
                if run > 0 {
                    let n = run.unsigned_abs();
                    add(&mut scan.rows, n)?;
                    value(&mut r, n, &mut scan)?;
                } else if run < 0 {
                    let n = run.unsigned_abs();
                    add(&mut scan.rows, n)?;
                    // Each literal takes at least one byte, so this loop is
                    // bounded by the input however large `n` claims to be.
                    for _ in 0..n {
                        value(&mut r, 1, &mut scan)?;
                    }
                } else {
                    add(&mut scan.rows, r.uleb()?)?;
                }
            }
        }
    }
    Ok(scan)
}

/// A cursor over bytes that never reads past the end.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes }
    }

    fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn take(&mut self, n: u64) -> Scan<&'a [u8]> {
        let n = usize::try_from(n).map_err(|_| ScanError::Malformed("length out of range"))?;
        if n > self.bytes.len() {
            return Err(ScanError::Malformed("a length runs past the end"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Scan<u8> {
        Ok(self.take(1)?[0])
    }

    fn uleb(&mut self) -> Scan<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(ScanError::Malformed("integer overflow"));
            }
            value |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ScanError::Malformed("integer overflow"))
    }

    fn sleb(&mut self) -> Scan<i64> {
        let mut value = 0i64;
        let mut shift = 0u32;
        loop {
            let b = self.byte()?;
            if shift >= 64 {
                return Err(ScanError::Malformed("integer overflow"));
            }
            value |= i64::from(b & 0x7f).wrapping_shl(shift);
            shift += 7;
            if b & 0x80 == 0 {
                if shift < 64 && b & 0x40 != 0 {
                    value |= -1i64 << shift;
                }
                return Ok(value);
            }
        }
    }

    /// A count that must also be plausible before anything loops on it.
    fn count(&mut self) -> Scan<u64> {
        let n = self.uleb()?;
        if n > MAX_COUNT {
            return Err(ScanError::Malformed("count out of range"));
        }
        Ok(n)
    }

    fn length_prefixed(&mut self) -> Scan<&'a [u8]> {
        let n = self.count()?;
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leb128_round_trips_edges() {
        for v in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            let mut x = v;
            loop {
                let b = (x & 0x7f) as u8;
                x >>= 7;
                if x == 0 {
                    out.push(b);
                    break;
                }
                out.push(b | 0x80);
            }
            assert_eq!(Reader::new(&out).uleb().ok(), Some(v));
        }
        // -1, -64, 63, -65 in signed LEB128.
        for (bytes, want) in [
            (&[0x7f][..], -1i64),
            (&[0x40][..], -64),
            (&[0x3f][..], 63),
            (&[0xbf, 0x7f][..], -65),
        ] {
            assert_eq!(Reader::new(bytes).sleb().ok(), Some(want));
        }
        assert!(Reader::new(&[0xff; 11]).uleb().is_err());
        assert!(Reader::new(&[0x80]).uleb().is_err());
    }

    #[test]
    fn a_run_of_billions_is_refused_in_a_few_bytes() {
        // Integer column: a run of 2^40 copies of the value 1.
        let column = [0x80, 0x80, 0x80, 0x80, 0x80, 0x20, 0x01];
        assert!(matches!(
            scan_column(
                Column {
                    spec: spec::ACTION,
                    actors: 1
                },
                &column
            ),
            Err(ScanError::OverBudget)
        ));
        // A literal run claiming 1,000 values with two present runs out of input.
        let column = [0x98, 0x78, 0x01, 0x02];
        assert!(matches!(
            scan_column(
                Column {
                    spec: spec::ACTION,
                    actors: 1
                },
                &column
            ),
            Err(ScanError::Malformed(_))
        ));
    }
}
