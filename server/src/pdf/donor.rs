//! The donor's discrepancy report as a PDF: bilingual like the
//! goods-received note, one section per shipment, one table row per
//! discrepancy with what was recorded, reviewed and photographed.

use aidsync_shared::donor::DonorDiscrepancy;
use aidsync_shared::model::{Header, Verdict};

use super::grn::{condition, reason, stage};
use super::layout::{Column, Layout, PdfError, Weight};
use crate::clock::format_utc;

/// One shipment of the report.
pub struct DonorShipment {
    pub header: Header,
    pub facility_name: Option<String>,
    pub discrepancies: Vec<DonorDiscrepancy>,
    /// Each discrepancy's files, by their names in the attachments ZIP.
    pub file_names: Vec<Vec<String>>,
}

fn kind(k: &str) -> &str {
    match k {
        "missing" => "бракує / missing",
        "damaged" => "пошкоджено / damaged",
        "wrong_item" => "не той товар / wrong item",
        "over_received" => "надлишок / over-received",
        "serials_unexpected" => "зайві серійні номери / unexpected serials",
        "serials_missing" => "бракує серійних номерів / missing serials",
        other => other,
    }
}

fn verdict(v: Option<Verdict>) -> &'static str {
    match v {
        Some(Verdict::Approved) => "схвалено / approved",
        Some(Verdict::HasIssues) => "є питання / has issues",
        Some(Verdict::Rejected) => "відхилено / rejected",
        None => "примітка / note",
    }
}

/// Renders the report as PDF bytes.
pub fn render(shipments: &[DonorShipment], now_ms: i64) -> Result<Vec<u8>, PdfError> {
    let mut pdf = Layout::new("Звіт про розбіжності / Donor discrepancy report")?;
    pdf.paragraph("Звіт про розбіжності для донора", 17.0, Weight::Bold);
    pdf.paragraph("Donor discrepancy report", 13.0, Weight::Bold);
    pdf.space(6.0);
    let all: Vec<&DonorDiscrepancy> = shipments.iter().flat_map(|s| &s.discrepancies).collect();
    let open = all.iter().filter(|d| !d.settled).count();
    pdf.fields(
        &[
            ("Відправлень / Shipments", shipments.len().to_string()),
            (
                "Розбіжностей / Discrepancies",
                format!(
                    "{} (відкритих / open {open}, врегульованих / settled {})",
                    all.len(),
                    all.len() - open
                ),
            ),
            ("Складено / Generated (UTC)", format_utc(now_ms)),
        ],
        9.5,
    );
    let columns = [
        Column {
            heading: "Позиція / Item",
            share: 2.0,
        },
        Column {
            heading: "Розбіжність / Discrepancy",
            share: 2.2,
        },
        Column {
            heading: "Стан / Status",
            share: 1.7,
        },
        Column {
            heading: "Записано / Recorded",
            share: 3.6,
        },
        Column {
            heading: "Огляди / Reviews",
            share: 2.4,
        },
        Column {
            heading: "Файли / Files",
            share: 2.3,
        },
    ];
    let mut clean = Vec::new();
    for s in shipments {
        let h = &s.header;
        if s.discrepancies.is_empty() {
            clean.push(if h.reference.is_empty() {
                h.id.to_string()
            } else {
                h.reference.clone()
            });
            continue;
        }
        let facility = s
            .facility_name
            .clone()
            .unwrap_or_else(|| h.destination_facility.to_string());
        pdf.heading(
            &format!(
                "{} · {} · {}",
                if h.reference.is_empty() {
                    h.id.as_str()
                } else {
                    &h.reference
                },
                h.donor,
                facility
            ),
            11.5,
        );
        if !h.programme.is_empty() {
            pdf.paragraph(&h.programme, 8.5, Weight::Regular);
        }
        let rows: Vec<Vec<String>> = s
            .discrepancies
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let mut what = format!("{}: {} {}", kind(&d.kind), d.quantity, d.unit);
                if !d.serials.is_empty() {
                    what.push_str(&format!("\n{}", d.serials.join(", ")));
                }
                let recorded = d
                    .evidence
                    .iter()
                    .map(|e| {
                        let mut text = format!(
                            "{} {}: {} × {}; {}",
                            e.recorded_by,
                            format_utc(e.recorded_at),
                            e.quantity,
                            condition(e.condition),
                            stage(e.stage)
                        );
                        if let Some(r) = e.reason {
                            text.push_str(&format!("; {}", reason(r)));
                        }
                        if !e.note.is_empty() {
                            text.push_str(&format!(" — {}", e.note));
                        }
                        text
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
                let reviews = d
                    .reviews
                    .iter()
                    .map(|r| {
                        format!(
                            "{} {}: {} — {}",
                            r.by,
                            format_utc(r.at),
                            verdict(r.verdict),
                            r.note
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
                let files = d
                    .files
                    .iter()
                    .zip(s.file_names.get(i).into_iter().flatten())
                    .map(|(f, name)| {
                        if f.caption.is_empty() {
                            name.clone()
                        } else {
                            format!("{name}: {}", f.caption)
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
                vec![
                    d.item.clone(),
                    what,
                    if d.settled {
                        "врегульовано / settled".into()
                    } else {
                        "відкрита / open".into()
                    },
                    if recorded.is_empty() {
                        "— (нічого не надійшло / nothing arrived)".into()
                    } else {
                        recorded
                    },
                    if reviews.is_empty() {
                        "—".into()
                    } else {
                        reviews
                    },
                    if files.is_empty() {
                        "—".into()
                    } else {
                        files
                    },
                ]
            })
            .collect();
        pdf.table(&columns, &rows, 7.5);
    }
    if !clean.is_empty() {
        pdf.heading("Без розбіжностей / No discrepancies", 11.5);
        pdf.paragraph(&clean.join(", "), 8.5, Weight::Regular);
    }
    pdf.space(8.0);
    pdf.paragraph(
        "Файли: назви як в архіві вкладень (attachments.zip). / Files: named as in the attachments ZIP.",
        7.5,
        Weight::Regular,
    );
    pdf.finish("uk")
}
