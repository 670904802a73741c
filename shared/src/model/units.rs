//! A serialised unit's life after receipt: installed, commissioned,
//! acceptance-tested, staff trained, under warranty, where it stands and who
//! answers for it, whether it works, and when it entered the hospital's asset
//! register.
//!
//! Each step is an immutable event in the document's `unit_events` map
//! (schema 4), like a receipt. An event names the unit (line and serial) and
//! the events of the same step it `supersedes`: those its recorder saw as
//! current. The current value of a step is every event no other supersedes;
//! two phones that recorded the same step offline without seeing each other
//! leave two, which is a conflict shown to people until someone records the
//! step again, superseding both. Nothing recorded is ever overwritten, so a
//! unit's status history is simply all its status events.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::types::*;
use crate::ids::{DeviceId, LineId, UnitEventId, UserId};

/// Most accessories, manuals and certificates one line may list.
pub const MAX_ACCESSORIES: usize = 100;
/// Most events one unit event may supersede.
pub const MAX_SUPERSEDES: usize = 20;
/// Most people one training event may count.
pub const MAX_TRAINED: u64 = 10_000;
/// How far ahead a warranty's end counts as ending soon, in days.
pub const WARRANTY_SOON_DAYS: i64 = 90;

vocabulary! {
    /// The outcome of a unit's acceptance test.
    pub enum TestResult {
        Passed = "passed",
        Failed = "failed",
        /// Nothing to test (a vehicle, a trolley): accepted on inspection.
        NotApplicable = "not_applicable",
    }
}

vocabulary! {
    /// Whether a unit works, as the people using it report it.
    pub enum UnitStatus {
        Functioning = "functioning",
        NeedsAttention = "needs_attention",
        AwaitingRepair = "awaiting_repair",
        NotFunctioning = "not_functioning",
        Decommissioned = "decommissioned",
    }
}

vocabulary! {
    /// The steps of a unit's life a person records, in the order they
    /// usually come.
    pub enum StepKind {
        Checklist = "checklist",
        Installed = "installed",
        Commissioned = "commissioned",
        AcceptanceTest = "acceptance_test",
        Training = "training",
        Warranty = "warranty",
        Location = "location",
        Status = "status",
        HandedOver = "handed_over",
    }
}

/// What one unit event records. Dates are `YYYY-MM-DD`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum UnitStep {
    /// The accessories, manuals and certificates found with the unit, from
    /// those its line lists.
    Checklist {
        checked: Vec<String>,
    },
    Installed {
        on: String,
        installer: String,
    },
    Commissioned {
        on: String,
    },
    /// A failed test says why in the event's note.
    AcceptanceTest {
        result: TestResult,
        on: String,
    },
    Training {
        on: String,
        people: u64,
        trainer: String,
    },
    Warranty {
        starts_on: String,
        ends_on: String,
        service_agent: String,
    },
    Location {
        department: String,
        room: String,
        custodian: String,
    },
    /// Anything but functioning says why in the event's note.
    Status {
        status: UnitStatus,
    },
    /// Taken into the hospital's asset register: a coordinator's step.
    HandedOver {
        on: String,
        asset_number: String,
    },
}

impl UnitStep {
    pub fn kind(&self) -> StepKind {
        match self {
            UnitStep::Checklist { .. } => StepKind::Checklist,
            UnitStep::Installed { .. } => StepKind::Installed,
            UnitStep::Commissioned { .. } => StepKind::Commissioned,
            UnitStep::AcceptanceTest { .. } => StepKind::AcceptanceTest,
            UnitStep::Training { .. } => StepKind::Training,
            UnitStep::Warranty { .. } => StepKind::Warranty,
            UnitStep::Location { .. } => StepKind::Location,
            UnitStep::Status { .. } => StepKind::Status,
            UnitStep::HandedOver { .. } => StepKind::HandedOver,
        }
    }
}

/// One recorded step of one unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitEvent {
    pub id: UnitEventId,
    pub line_id: LineId,
    pub serial: String,
    #[serde(flatten)]
    pub step: UnitStep,
    /// Earlier events of this unit and step that this one replaces.
    pub supersedes: Vec<UnitEventId>,
    pub note: String,
    pub recorded_by: UserId,
    pub device_id: DeviceId,
    pub recorded_at: i64,
}

/// What a person supplies to record a step; who and when come from the
/// [`Recorder`] and the clock. `supersedes` is filled in from the document
/// when recorded: whatever the recorder sees as current is replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewUnitEvent {
    pub id: UnitEventId,
    pub line_id: LineId,
    pub serial: String,
    #[serde(flatten)]
    pub step: UnitStep,
    #[serde(default)]
    pub note: String,
}

impl From<&UnitEvent> for NewUnitEvent {
    fn from(e: &UnitEvent) -> Self {
        NewUnitEvent {
            id: e.id.clone(),
            line_id: e.line_id.clone(),
            serial: e.serial.clone(),
            step: e.step.clone(),
            note: e.note.clone(),
        }
    }
}

/// Which unit: a line and a serial number on it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct UnitKey {
    pub line_id: LineId,
    pub serial: String,
}

impl UnitEvent {
    pub fn unit(&self) -> UnitKey {
        UnitKey {
            line_id: self.line_id.clone(),
            serial: self.serial.clone(),
        }
    }

    /// Checks the event on its own and against the shipment: its line
    /// exists and what it supersedes is another event of the same unit and
    /// step. Lines and events are never removed, so an event that passes
    /// once passes on every replica after any merge. (Whether the serial is
    /// one the line expects or a receipt counted is checked only when a
    /// step is recorded, [`ShipmentDoc::record_unit_event`](super::ShipmentDoc::record_unit_event):
    /// a coordinator may correct a mistyped serial on the manifest while a
    /// phone offline records a step on it, and neither should then be
    /// refused; the unit simply shows under the serial it was recorded on.)
    pub(crate) fn check(
        &self,
        lines: &BTreeMap<LineId, Line>,
        events: &BTreeMap<UnitEventId, UnitEvent>,
    ) -> Result<(), ModelError> {
        let p = format!("unit_events/{}", self.id);
        if !lines.contains_key(&self.line_id) {
            return Err(ModelError::invalid(
                format!("{p}/line_id"),
                format!("no line {} in this shipment", self.line_id),
            ));
        }
        check_serials(&format!("{p}/serial"), std::slice::from_ref(&self.serial))?;
        check_text(&format!("{p}/note"), &self.note, MAX_NOTE_CHARS)?;
        check_time(&format!("{p}/recorded_at"), self.recorded_at)?;
        self.check_step(&p)?;
        if self.supersedes.len() > MAX_SUPERSEDES {
            return Err(ModelError::invalid(
                format!("{p}/supersedes"),
                format!("more than {MAX_SUPERSEDES} events"),
            ));
        }
        for earlier in &self.supersedes {
            let fits = earlier != &self.id
                && events.get(earlier).is_some_and(|e| {
                    e.line_id == self.line_id
                        && e.serial == self.serial
                        && e.step.kind() == self.step.kind()
                });
            if !fits {
                return Err(ModelError::invalid(
                    format!("{p}/supersedes"),
                    format!(
                        "{earlier} is not another {} event of this unit",
                        self.step.kind().as_str()
                    ),
                ));
            }
        }
        Ok(())
    }

    fn check_step(&self, p: &str) -> Result<(), ModelError> {
        let needs_note = |why: &str| -> Result<(), ModelError> {
            if self.note.trim().is_empty() {
                Err(ModelError::invalid(format!("{p}/note"), why))
            } else {
                Ok(())
            }
        };
        match &self.step {
            UnitStep::Checklist { checked } => {
                if checked.len() > MAX_ACCESSORIES {
                    return Err(ModelError::invalid(
                        format!("{p}/checked"),
                        format!("more than {MAX_ACCESSORIES} items"),
                    ));
                }
                for (i, item) in checked.iter().enumerate() {
                    check_label(&format!("{p}/checked/{i}"), item, true)?;
                }
            }
            UnitStep::Installed { on, installer } => {
                check_date(&format!("{p}/on"), on)?;
                check_label(&format!("{p}/installer"), installer, true)?;
            }
            UnitStep::Commissioned { on } => check_date(&format!("{p}/on"), on)?,
            UnitStep::AcceptanceTest { result, on } => {
                check_date(&format!("{p}/on"), on)?;
                if *result == TestResult::Failed {
                    needs_note("a failed test needs a note saying what failed")?;
                }
            }
            UnitStep::Training {
                on,
                people,
                trainer,
            } => {
                check_date(&format!("{p}/on"), on)?;
                if *people == 0 || *people > MAX_TRAINED {
                    return Err(ModelError::invalid(
                        format!("{p}/people"),
                        format!("must be between 1 and {MAX_TRAINED}"),
                    ));
                }
                check_label(&format!("{p}/trainer"), trainer, true)?;
            }
            UnitStep::Warranty {
                starts_on,
                ends_on,
                service_agent,
            } => {
                check_date(&format!("{p}/starts_on"), starts_on)?;
                check_date(&format!("{p}/ends_on"), ends_on)?;
                if ends_on < starts_on {
                    return Err(ModelError::invalid(
                        format!("{p}/ends_on"),
                        "the warranty ends before it starts",
                    ));
                }
                check_label(&format!("{p}/service_agent"), service_agent, false)?;
            }
            UnitStep::Location {
                department,
                room,
                custodian,
            } => {
                check_label(&format!("{p}/department"), department, true)?;
                check_label(&format!("{p}/room"), room, false)?;
                check_label(&format!("{p}/custodian"), custodian, true)?;
            }
            UnitStep::Status { status } => {
                if *status != UnitStatus::Functioning {
                    needs_note("a unit that is not functioning needs a reason in the note")?;
                }
            }
            UnitStep::HandedOver { on, asset_number } => {
                check_date(&format!("{p}/on"), on)?;
                check_label(&format!("{p}/asset_number"), asset_number, true)?;
            }
        }
        Ok(())
    }
}

/// Checks every unit event once all are known (one may supersede an event
/// that sorts after it), then that no chain of them supersedes itself.
pub(crate) fn check_unit_events(
    lines: &BTreeMap<LineId, Line>,
    events: &BTreeMap<UnitEventId, UnitEvent>,
) -> Result<(), ModelError> {
    events.values().try_for_each(|e| e.check(lines, events))?;
    check_no_cycle(events)
}

/// Refuses events that supersede each other in a circle, which would leave
/// a step with no current value (a way to blank a failing status without
/// recording another). A phone supersedes only what it has already seen,
/// so an honest document never has one, and an event recorded later can
/// never close a circle among earlier ones: the rule holds after any merge.
pub(crate) fn check_no_cycle(events: &BTreeMap<UnitEventId, UnitEvent>) -> Result<(), ModelError> {
    // Depth-first over "supersedes" edges, iteratively (a hostile chain may
    // be long): 1 = on the current path, 2 = done.
    let mut state: BTreeMap<&UnitEventId, u8> = BTreeMap::new();
    for start in events.keys() {
        if state.contains_key(start) {
            continue;
        }
        let mut stack: Vec<(&UnitEventId, usize)> = vec![(start, 0)];
        state.insert(start, 1);
        while let Some((id, next)) = stack.pop() {
            let targets = events
                .get(id)
                .map(|e| e.supersedes.as_slice())
                .unwrap_or(&[]);
            match targets.get(next) {
                None => {
                    state.insert(id, 2);
                }
                Some(target) => {
                    stack.push((id, next + 1));
                    match state.get(target) {
                        Some(1) => {
                            return Err(ModelError::invalid(
                                format!("unit_events/{id}/supersedes"),
                                format!("{target} supersedes it in turn: a circle of records"),
                            ));
                        }
                        Some(_) => {}
                        None => {
                            state.insert(target, 1);
                            stack.push((target, 0));
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// A line's estimated value per unit, as the manifest gives it: an amount
/// with at most two decimals and an ISO 4217 currency, e.g. `125000.00 EUR`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitValue {
    pub amount: String,
    pub currency: String,
}

impl UnitValue {
    /// Parses `AMOUNT CUR`, exactly (no padding); `None` if it is not that.
    pub fn parse(s: &str) -> Option<UnitValue> {
        let (amount, currency) = s.split_once(' ')?;
        let (whole, cents) = match amount.split_once('.') {
            Some((w, c)) => (w, Some(c)),
            None => (amount, None),
        };
        let digits = |t: &str, max: usize| {
            !t.is_empty() && t.len() <= max && t.bytes().all(|b| b.is_ascii_digit())
        };
        let ok = digits(whole, 12)
            && cents.is_none_or(|c| digits(c, 2))
            && currency.len() == 3
            && currency.bytes().all(|b| b.is_ascii_uppercase());
        ok.then(|| UnitValue {
            amount: amount.to_owned(),
            currency: currency.to_owned(),
        })
    }
}

pub(crate) fn check_unit_value(path: &str, value: Option<&str>) -> Result<(), ModelError> {
    if let Some(v) = value {
        check_label(path, v, true)?;
    }
    match value {
        Some(v) if UnitValue::parse(v).is_none() => Err(ModelError::invalid(
            path,
            "expected an amount and a currency, e.g. \"125000.00 EUR\"",
        )),
        _ => Ok(()),
    }
}

/// The current value of one step of one unit: the events no other
/// supersedes, latest first. More than one is a conflict to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepState {
    pub current: Vec<UnitEvent>,
    /// Every event of this step, oldest first (the status history).
    pub history: Vec<UnitEvent>,
}

impl StepState {
    /// The value shown when there is one to show: the latest current event.
    pub fn latest(&self) -> Option<&UnitEvent> {
        self.current.first()
    }

    pub fn in_conflict(&self) -> bool {
        self.current.len() > 1
    }
}

/// Everything recorded about one serialised unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitRecord {
    pub line_id: LineId,
    pub serial: String,
    pub item: String,
    pub category: String,
    /// What the line lists to check with the unit.
    pub accessories: Vec<String>,
    /// The latest active receipt that counted this serial, if any.
    pub received: Option<ReceivedAs>,
    /// By step, for the steps recorded.
    pub steps: BTreeMap<StepKind, StepState>,
}

/// How a unit arrived, from the receipt that counted it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivedAs {
    pub receipt_id: crate::ids::ReceiptId,
    pub condition: Condition,
    pub stage: Stage,
    pub reason: Option<Reason>,
    pub recorded_at: i64,
}

impl UnitRecord {
    pub fn step(&self, kind: StepKind) -> Option<&UnitEvent> {
        self.steps.get(&kind).and_then(StepState::latest)
    }

    pub fn installed(&self) -> bool {
        self.step(StepKind::Installed).is_some()
    }

    /// Accepted: its latest acceptance test passed, or it had none to pass.
    pub fn accepted(&self) -> bool {
        matches!(
            self.step(StepKind::AcceptanceTest).map(|e| &e.step),
            Some(UnitStep::AcceptanceTest {
                result: TestResult::Passed | TestResult::NotApplicable,
                ..
            })
        )
    }

    pub fn status(&self) -> Option<UnitStatus> {
        match self.step(StepKind::Status).map(|e| &e.step) {
            Some(UnitStep::Status { status }) => Some(*status),
            _ => None,
        }
    }

    pub fn handed_over(&self) -> bool {
        self.step(StepKind::HandedOver).is_some()
    }

    /// The warranty's end date, if one is recorded.
    pub fn warranty_ends_on(&self) -> Option<&str> {
        match self.step(StepKind::Warranty).map(|e| &e.step) {
            Some(UnitStep::Warranty { ends_on, .. }) => Some(ends_on),
            _ => None,
        }
    }

    /// Whether the warranty ends between `today` and `WARRANTY_SOON_DAYS`
    /// after it (both `YYYY-MM-DD`).
    pub fn warranty_ends_soon(&self, today: &str) -> bool {
        let (Some(end), Some(today)) = (
            self.warranty_ends_on().and_then(day_number),
            day_number(today),
        ) else {
            return false;
        };
        (today..=today + WARRANTY_SOON_DAYS).contains(&end)
    }
}

impl Shipment {
    /// Every serialised unit of the shipment, by line then serial: each
    /// serial a line expects or an active receipt counted, with every step
    /// recorded for it.
    pub fn units(&self) -> Vec<UnitRecord> {
        let mut units: BTreeMap<UnitKey, UnitRecord> = BTreeMap::new();
        let mut slot = |line: &Line, serial: &str| -> UnitKey {
            let key = UnitKey {
                line_id: line.id.clone(),
                serial: serial.to_owned(),
            };
            units.entry(key.clone()).or_insert_with(|| UnitRecord {
                line_id: line.id.clone(),
                serial: serial.to_owned(),
                item: line.item.clone(),
                category: line.category.clone(),
                accessories: line.accessories.clone(),
                received: None,
                steps: BTreeMap::new(),
            });
            key
        };
        for line in self.lines.values() {
            for serial in &line.serials_expected {
                slot(line, serial);
            }
        }
        let mut keys = Vec::new();
        for r in self.active_receipts() {
            let Some(line) = self.lines.get(&r.line_id) else {
                continue;
            };
            for serial in &r.serials {
                keys.push((slot(line, serial), r));
            }
        }
        for e in self.unit_events.values() {
            if let Some(line) = self.lines.get(&e.line_id) {
                slot(line, &e.serial);
            }
        }
        for (key, r) in keys {
            if let Some(unit) = units.get_mut(&key) {
                let later = unit.received.as_ref().is_none_or(|seen| {
                    (seen.recorded_at, &seen.receipt_id) < (r.recorded_at, &r.id)
                });
                if later {
                    unit.received = Some(ReceivedAs {
                        receipt_id: r.id.clone(),
                        condition: r.condition,
                        stage: r.stage(),
                        reason: r.reason,
                        recorded_at: r.recorded_at,
                    });
                }
            }
        }
        let superseded: BTreeSet<&UnitEventId> = self
            .unit_events
            .values()
            .flat_map(|e| &e.supersedes)
            .collect();
        let mut events: Vec<&UnitEvent> = self.unit_events.values().collect();
        events.sort_by(|a, b| (a.recorded_at, &a.id).cmp(&(b.recorded_at, &b.id)));
        for e in events {
            let Some(unit) = units.get_mut(&e.unit()) else {
                continue;
            };
            let state = unit
                .steps
                .entry(e.step.kind())
                .or_insert_with(|| StepState {
                    current: Vec::new(),
                    history: Vec::new(),
                });
            state.history.push(e.clone());
            if !superseded.contains(&e.id) {
                state.current.insert(0, e.clone());
            }
        }
        units.into_values().collect()
    }

    /// The rules for recording a step that depend on what the recorder
    /// sees, so they are checked where it is recorded, not where documents
    /// merge (like a short count's reason): the serial is one the line
    /// expects or a receipt on it counted, and only an accepted unit is
    /// handed over.
    pub(crate) fn check_new_unit_event(&self, event: &UnitEvent) -> Result<(), ModelError> {
        let p = format!("unit_events/{}", event.id);
        let known = self
            .lines
            .get(&event.line_id)
            .is_some_and(|l| l.serials_expected.contains(&event.serial))
            || self
                .receipts
                .values()
                .any(|r| r.line_id == event.line_id && r.serials.contains(&event.serial))
            || self
                .unit_events
                .values()
                .any(|e| e.line_id == event.line_id && e.serial == event.serial);
        if !known {
            return Err(ModelError::invalid(
                format!("{p}/serial"),
                format!(
                    "line {} neither expects nor has received a unit with this serial number",
                    event.line_id
                ),
            ));
        }
        if event.step.kind() == StepKind::HandedOver {
            let accepted = self
                .units()
                .iter()
                .any(|u| u.line_id == event.line_id && u.serial == event.serial && u.accepted());
            if !accepted {
                return Err(ModelError::invalid(
                    format!("{p}/step"),
                    "only an accepted unit (acceptance test passed or not applicable) is handed over",
                ));
            }
        }
        Ok(())
    }

    /// The events of `unit`'s `kind` step that nothing supersedes: what a
    /// new event of that step replaces.
    pub fn current_unit_events(&self, unit: &UnitKey, kind: StepKind) -> Vec<UnitEventId> {
        let superseded: BTreeSet<&UnitEventId> = self
            .unit_events
            .values()
            .flat_map(|e| &e.supersedes)
            .collect();
        self.unit_events
            .values()
            .filter(|e| {
                e.line_id == unit.line_id
                    && e.serial == unit.serial
                    && e.step.kind() == kind
                    && !superseded.contains(&e.id)
            })
            .map(|e| e.id.clone())
            .collect()
    }
}

/// Counts of a set of units for coordinators: how far they have come.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitCounts {
    pub units: u64,
    pub received: u64,
    pub installed: u64,
    pub commissioned: u64,
    pub accepted: u64,
    pub functioning: u64,
    /// Reported as anything but functioning (decommissioned included).
    pub not_functioning: u64,
    pub handed_over: u64,
    /// Units with a step in conflict (two current values).
    pub in_conflict: u64,
    pub warranty_ends_soon: u64,
}

impl UnitCounts {
    /// Adds one unit, judged on `today` (`YYYY-MM-DD`).
    pub fn add(&mut self, unit: &UnitRecord, today: &str) {
        self.units += 1;
        // A rejected unit went back: not received into the hospital.
        self.received += u64::from(
            unit.received
                .as_ref()
                .is_some_and(|r| r.stage != Stage::Rejected),
        );
        self.installed += u64::from(unit.installed());
        self.commissioned += u64::from(unit.step(StepKind::Commissioned).is_some());
        self.accepted += u64::from(unit.accepted());
        match unit.status() {
            Some(UnitStatus::Functioning) => self.functioning += 1,
            Some(_) => self.not_functioning += 1,
            None => {}
        }
        self.handed_over += u64::from(unit.handed_over());
        self.in_conflict += u64::from(unit.steps.values().any(StepState::in_conflict));
        self.warranty_ends_soon += u64::from(unit.warranty_ends_soon(today));
    }

    pub fn merge(&mut self, other: &UnitCounts) {
        self.units += other.units;
        self.received += other.received;
        self.installed += other.installed;
        self.commissioned += other.commissioned;
        self.accepted += other.accepted;
        self.functioning += other.functioning;
        self.not_functioning += other.not_functioning;
        self.handed_over += other.handed_over;
        self.in_conflict += other.in_conflict;
        self.warranty_ends_soon += other.warranty_ends_soon;
    }
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date (proleptic Gregorian), or
/// `None` if it is not one.
pub fn day_number(date: &str) -> Option<i64> {
    check_date("date", date).ok()?;
    let y: i64 = date[0..4].parse().ok()?;
    let m: i64 = date[5..7].parse().ok()?;
    let d: i64 = date[8..10].parse().ok()?;
    // Howard Hinnant's days_from_civil: years start in March so the leap
    // day is the last of the year.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// The `YYYY-MM-DD` date of a time in milliseconds since the epoch (UTC).
pub fn date_of(ms: i64) -> String {
    let z = ms.div_euclid(86_400_000) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_count_days_both_ways() {
        assert_eq!(day_number("1970-01-01"), Some(0));
        assert_eq!(day_number("2000-03-01"), Some(11_017));
        assert_eq!(day_number("2026-12-06"), Some(20_793));
        assert_eq!(day_number("26-12-06"), None);
        for ms in [0, 951_868_800_000, 1_796_515_200_000, 1_709_164_800_000] {
            let date = date_of(ms);
            assert_eq!(day_number(&date), Some(ms / 86_400_000), "{date}");
        }
        assert_eq!(date_of(1_709_164_800_000), "2024-02-29");
    }

    #[test]
    fn unit_values_are_an_amount_and_a_currency() {
        let v = UnitValue::parse("125000.00 EUR");
        assert_eq!(
            v.map(|v| (v.amount, v.currency)),
            Some(("125000.00".into(), "EUR".into()))
        );
        for bad in [
            "125000",
            "12.345 EUR",
            "1e5 EUR",
            "100 eur",
            "100 EURO",
            " EUR",
            "-5 USD",
        ] {
            assert_eq!(UnitValue::parse(bad), None, "{bad}");
        }
    }
}
