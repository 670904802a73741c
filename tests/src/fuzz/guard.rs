//! Structural checks proposed for `shared/src/sync/untrusted.rs`, kept
//! here as a reference and measured against the inputs in
//! `tests/fuzz-regressions/automerge/`: each is a property of one change
//! chunk alone, as cheap as the walk already there. (Checks that need the
//! document, such as seq order and known actors, belong in `merge_upload`
//! and are not here.)

use super::chunk::{ChangeChunk, Reader, kind};

/// Why a change would be refused; `None` if it passes every check.
pub fn refuse(bytes: &[u8]) -> Option<&'static str> {
    let c = ChangeChunk::parse(bytes)?;
    if !c.extra.is_empty() {
        return Some("bytes after the columns");
    }
    if !(0..(1i64 << 53)).contains(&c.time) {
        return Some("time out of range");
    }
    if c.others.contains(&c.actor)
        || (1..c.others.len()).any(|i| c.others[..i].contains(&c.others[i]))
    {
        return Some("an actor listed twice");
    }
    let values = |spec: u64| -> Option<Vec<Option<i128>>> {
        let col = c.columns.iter().find(|col| col.spec == spec)?;
        decode(spec & 7, &col.data)
    };
    let rows = |spec: u64| -> Option<usize> { values(spec).map(|v| v.len()) };
    const ACTION: u64 = (4 << 4) | kind::INTEGER;
    const VALUE_META: u64 = (5 << 4) | kind::VALUE_METADATA;
    const VALUE: u64 = (5 << 4) | kind::VALUE;
    const PRED_GROUP: u64 = 7 << 4;
    let ops = rows(ACTION).unwrap_or(0);
    for col in &c.columns {
        let Some(vals) = decode(col.spec & 7, &col.data) else {
            return Some("a column does not decode");
        };
        let id = col.spec >> 4;
        let want = if id == 7 && col.spec != PRED_GROUP {
            values(PRED_GROUP)
                .map(|g| g.iter().flatten().sum::<i128>() as usize)
                .unwrap_or(0)
        } else if col.spec == VALUE {
            continue;
        } else {
            ops
        };
        if vals.len() != want {
            return Some("column rows differ from the op count");
        }
        if col.spec & 7 == kind::ACTOR && vals.iter().flatten().any(|a| *a > c.others.len() as i128)
        {
            return Some("actor index out of range");
        }
        if matches!(col.spec & 7, kind::INTEGER | kind::DELTA)
            && id != 4
            && id != 5
            && vals
                .iter()
                .flatten()
                .any(|v| !(0..=u32::MAX as i128).contains(v))
        {
            return Some("counter out of range");
        }
    }
    if c.start_op == 0 || c.start_op.saturating_add(ops as u64) > u32::MAX as u64 {
        return Some("op ids out of range");
    }
    let meta_len: i128 = values(VALUE_META)
        .unwrap_or_default()
        .iter()
        .flatten()
        .map(|m| m >> 4)
        .sum();
    let value_len = c
        .columns
        .iter()
        .find(|col| col.spec == VALUE)
        .map_or(0, |col| col.data.len());
    if meta_len != value_len as i128 {
        return Some("value lengths differ from the value column");
    }
    None
}

/// A column's values (running sums for delta columns), `None` for nulls.
fn decode(column_kind: u64, data: &[u8]) -> Option<Vec<Option<i128>>> {
    let mut r = Reader::new(data);
    let mut out = Vec::new();
    let cap = 1 << 22;
    if column_kind == kind::BOOLEAN {
        let mut value = false;
        while !r.is_empty() {
            let n = r.uleb()? as usize;
            if out.len() + n > cap {
                return None;
            }
            out.extend(std::iter::repeat_n(Some(i128::from(value)), n));
            value = !value;
        }
        return Some(out);
    }
    if column_kind == kind::VALUE {
        return Some(Vec::new());
    }
    let delta = column_kind == kind::DELTA;
    let read = |r: &mut Reader| -> Option<i128> {
        match column_kind {
            kind::DELTA => r.sleb().map(i128::from),
            kind::STRING => r.prefixed().map(|_| 0),
            _ => r.uleb().map(i128::from),
        }
    };
    // Delta columns hold differences: a value is the running sum.
    let mut sum = 0i128;
    let mut push = |out: &mut Vec<Option<i128>>, v: i128| {
        if delta {
            sum += v;
            out.push(Some(sum));
        } else {
            out.push(Some(v));
        }
    };
    while !r.is_empty() {
        let n = r.sleb()?;
        if n.unsigned_abs() as usize + out.len() > cap {
            return None;
        }
        if n > 0 {
            let v = read(&mut r)?;
            for _ in 0..n {
                push(&mut out, v);
            }
        } else if n < 0 {
            for _ in 0..n.unsigned_abs() {
                let v = read(&mut r)?;
                push(&mut out, v);
            }
        } else {
            let nulls = r.uleb()? as usize;
            if out.len() + nulls > cap {
                return None;
            }
            out.extend(std::iter::repeat_n(None, nulls));
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::fuzz::corpus::world;

    #[test]
    fn every_real_change_passes() {
        for bytes in &world().unwrap().pool.chunks {
            assert_eq!(refuse(bytes), None);
        }
    }
}

#[cfg(test)]
mod regressions {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use aidsync_shared::sync::protocol::{Changes, SyncRequest, decode};

    /// Every input in `tests/fuzz-regressions/automerge/` but two is
    /// refused by these checks alone; those two need the document (a seq
    /// that skips, op ids that overlap another change of the same actor).
    #[test]
    fn the_checks_refuse_every_regression_that_needs_no_document() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz-regressions")
            .join("automerge");
        let mut passed = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let hex: String = text.lines().filter(|l| !l.starts_with('#')).collect();
            let request: SyncRequest = decode(&crate::fuzz::from_hex(&hex).unwrap()).unwrap();
            let refused = request.docs.iter().any(|d| match &d.changes {
                Changes::Chunks(chunks) => chunks.iter().any(|c| refuse(c).is_some()),
                Changes::Bundle(_) => true,
            });
            if !refused {
                passed.push(name);
            }
        }
        passed.sort();
        assert_eq!(
            passed,
            [
                "automerge-change_graph-569--chunks-seed1-case73.hex",
                "automerge-op_set2-change-collector-299--chunks-seed1-case23544.hex",
            ]
        );
    }
}
