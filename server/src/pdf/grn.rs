//! The goods-received note as a PDF: one bilingual document (Ukrainian
//! first, English after each label), so the same paper serves the
//! hospital, the ministry and the donor.

use std::collections::HashMap;
use std::sync::Arc;

use aidsync_shared::grn::GoodsReceivedNote;
use aidsync_shared::model::{Attachment, AttachmentEvent, Condition, Reason, Seal, Stage};

use super::layout::{Column, Layout, PdfError, Picture, Weight};
use crate::clock::format_utc;

/// A thumbnail ready to place: JPEG bytes and their pixel size.
#[derive(Clone)]
pub struct Thumbnail {
    pub jpeg: Arc<Vec<u8>>,
    pub width: u32,
    pub height: u32,
}

/// What the note shows besides the document itself: the facility's name,
/// the thumbnails the server holds (by SHA-256; a file not uploaded yet is
/// absent and said so), and when the note was made.
pub struct GrnContext<'a> {
    pub facility_name: Option<&'a str>,
    pub thumbnails: &'a HashMap<String, Thumbnail>,
    pub now_ms: i64,
}

pub(crate) fn condition(c: Condition) -> &'static str {
    match c {
        Condition::Good => "у належному стані / good",
        Condition::Damaged => "пошкоджено / damaged",
        Condition::MissingParts => "бракує частин / missing parts",
        Condition::WrongItem => "не той товар / wrong item",
    }
}

pub(crate) fn stage(s: Stage) -> &'static str {
    match s {
        Stage::Provisional => "пораховано / counted",
        Stage::Accepted => "прийнято / accepted",
        Stage::Rejected => "відхилено / rejected",
    }
}

/// A reason's name in both languages (also the donor report's).
pub fn reason(r: Reason) -> &'static str {
    match r {
        Reason::Short => "недостача / short",
        Reason::Over => "надлишок / over",
        Reason::DamagedInTransit => "пошкоджено під час перевезення / damaged in transit",
        Reason::MissingParts => "бракує частин / missing parts",
        Reason::WrongItem => "не той товар, заміна / wrong item, substitution",
        Reason::Expired => "прострочено / expired",
        Reason::Other => "інше / other",
    }
}

fn seal(s: Seal) -> &'static str {
    match s {
        Seal::Intact => "ціла / intact",
        Seal::Broken => "порушена / broken",
        Seal::None => "немає / none",
    }
}

fn count(n: Option<u64>) -> String {
    n.map_or_else(|| "—".to_owned(), |n| n.to_string())
}

/// Renders `note` as PDF bytes.
pub fn render(note: &GoodsReceivedNote, cx: &GrnContext<'_>) -> Result<Vec<u8>, PdfError> {
    let h = &note.header;
    let title = format!(
        "Акт приймання / Goods received note · {}",
        if h.reference.is_empty() {
            h.id.as_str()
        } else {
            &h.reference
        }
    );
    let mut pdf = Layout::new(&title)?;
    pdf.paragraph("Акт приймання товару", 17.0, Weight::Bold);
    pdf.paragraph("Goods received note (GRN)", 13.0, Weight::Bold);
    pdf.space(6.0);
    let facility = match cx.facility_name {
        Some(name) => format!("{name} ({})", h.destination_facility),
        None => h.destination_facility.to_string(),
    };
    pdf.fields(
        &[
            ("Відправлення / Shipment", h.id.to_string()),
            ("Донор / Donor", h.donor.clone()),
            ("Програма / Programme", h.programme.clone()),
            ("Номер донора / Donor reference", h.reference.clone()),
            ("Заклад / Facility", facility),
            (
                "Очікувалося / Expected on",
                h.expected_on.clone().unwrap_or_else(|| "—".into()),
            ),
            (
                "Облікових записів / Receipts counted",
                note.receipts.to_string(),
            ),
        ],
        9.5,
    );

    if note.deliveries.is_empty() {
        pdf.heading("Доставка / Delivery", 12.0);
        pdf.paragraph(
            "Доставку не записано. / No delivery (truck) recorded.",
            9.5,
            Weight::Regular,
        );
    }
    for d in &note.deliveries {
        pdf.heading(
            &format!("Доставка / Delivery {}", format_utc(d.arrived_at)),
            12.0,
        );
        let mut fields = vec![
            ("Накладна / Waybill", d.waybill.clone()),
            ("Перевізник / Transporter", d.transporter.clone()),
            ("Транспорт / Vehicle", d.vehicle.clone()),
            (
                "Пломба / Seal",
                format!("{} {}", seal(d.seal), d.seal_number)
                    .trim()
                    .to_owned(),
            ),
            (
                "Місць отримано / Packages received",
                format!(
                    "{} / {}",
                    count(d.packages_received),
                    count(d.packages_expected)
                ),
            ),
            ("Прибула / Arrived (UTC)", format_utc(d.arrived_at)),
            (
                "Записав / Recorded by",
                format!("{} · {}", d.recorded_by, format_utc(d.recorded_at)),
            ),
        ];
        if !d.note.is_empty() {
            fields.push(("Зауваження / Remarks", d.note.clone()));
        }
        pdf.fields(&fields, 9.5);
    }

    pdf.heading("Позиції / Lines", 12.0);
    let columns = [
        Column {
            heading: "Позиція / Item",
            share: 3.2,
        },
        Column {
            heading: "Очік. / Exp.",
            share: 1.0,
        },
        Column {
            heading: "Отрим. / Recv.",
            share: 1.0,
        },
        Column {
            heading: "Прийн. / Acc.",
            share: 1.0,
        },
        Column {
            heading: "Відхил. / Rej.",
            share: 1.0,
        },
        Column {
            heading: "Не огл. / Not insp.",
            share: 1.0,
        },
        Column {
            heading: "Серійні номери / Serials",
            share: 3.0,
        },
    ];
    let rows: Vec<Vec<String>> = note
        .lines
        .iter()
        .map(|l| {
            vec![
                format!("{} ({}, {})", l.line.item, l.line.unit, l.line.category),
                l.line.quantity_expected.to_string(),
                l.received.to_string(),
                l.accepted.to_string(),
                l.rejected.to_string(),
                l.provisional.to_string(),
                l.serials.join(", "),
            ]
        })
        .collect();
    pdf.table(&columns, &rows, 8.5);

    let exceptions: Vec<Vec<String>> = note
        .lines
        .iter()
        .flat_map(|l| {
            l.exceptions.iter().map(|e| {
                vec![
                    l.line.item.clone(),
                    e.quantity.to_string(),
                    condition(e.condition).to_owned(),
                    stage(e.stage).to_owned(),
                    e.reason
                        .map_or("— (записано до причин / before reasons)", reason)
                        .to_owned(),
                    e.note.clone(),
                ]
            })
        })
        .collect();
    pdf.heading("Розбіжності та причини / Exceptions and reasons", 12.0);
    if exceptions.is_empty() {
        pdf.paragraph(
            "Розбіжностей не записано. / No exceptions recorded.",
            9.5,
            Weight::Regular,
        );
    } else {
        let columns = [
            Column {
                heading: "Позиція / Item",
                share: 2.4,
            },
            Column {
                heading: "К-сть / Qty",
                share: 0.8,
            },
            Column {
                heading: "Стан / Condition",
                share: 1.6,
            },
            Column {
                heading: "Етап / Stage",
                share: 1.4,
            },
            Column {
                heading: "Причина / Reason",
                share: 2.0,
            },
            Column {
                heading: "Примітка / Note",
                share: 2.6,
            },
        ];
        pdf.table(&columns, &exceptions, 8.5);
    }

    // The signatures stay on one page with their heading.
    pdf.need(if note.signatures.is_empty() {
        60.0
    } else {
        240.0
    });
    pdf.heading("Підписи / Signatures", 12.0);
    if note.signatures.is_empty() {
        pdf.paragraph(
            "Не підписано на телефоні. / Not signed on a phone.",
            9.5,
            Weight::Regular,
        );
    } else {
        let pictures = pictures(&note.signatures, cx, |a| match &a.event {
            AttachmentEvent::File {
                signer: Some(s), ..
            } => vec![
                format!("{} — {}", s.name, s.role),
                format_utc(a.recorded_at),
            ],
            _ => vec![format_utc(a.recorded_at)],
        });
        pdf.images(&pictures, 3, 8.0);
    }

    if !note.photos.is_empty() {
        pdf.heading("Фото / Photos", 12.0);
        let pictures = pictures(&note.photos, cx, |a| {
            let mut caption = vec![format!("{} · {}", a.recorded_by, format_utc(a.recorded_at))];
            if !a.note.is_empty() {
                caption.push(a.note.clone());
            }
            caption
        });
        pdf.images(&pictures, 4, 7.0);
    }

    pdf.space(8.0);
    pdf.paragraph(
        &format!(
            "Складено / Generated {} UTC by aidsync from the records synced so far.",
            format_utc(cx.now_ms)
        ),
        7.5,
        Weight::Regular,
    );
    pdf.finish("uk")
}

/// The attachments as pictures; those whose file has not reached the
/// server yet are listed in words instead.
fn pictures(
    attachments: &[Attachment],
    cx: &GrnContext<'_>,
    caption: impl Fn(&Attachment) -> Vec<String>,
) -> Vec<Picture> {
    attachments
        .iter()
        .filter_map(|a| {
            let file = a.file()?;
            let mut lines = caption(a);
            match cx.thumbnails.get(&file.sha256) {
                Some(t) => Some(Picture {
                    jpeg: t.jpeg.clone(),
                    width: t.width,
                    height: t.height,
                    caption: lines,
                }),
                None => {
                    lines.push("файл ще не на сервері".into());
                    lines.push("file not on the server yet".into());
                    Some(Picture {
                        jpeg: Arc::new(Vec::new()),
                        width: 1,
                        height: 1,
                        caption: lines,
                    })
                }
            }
        })
        .collect()
}
