//! A small page layout for the server's PDFs: text that wraps, tables
//! whose header repeats on every page, images in a grid, page numbers.
//!
//! Layout is done first, into a list of drawing operations per page, and
//! written with krilla last: krilla draws but does not lay out, and a page
//! count ("page 2 of 5") is known only at the end. Sizes are in points
//! (1/72 inch), the origin at a page's top left, y growing downwards.

use std::sync::Arc;

use krilla::Document;
use krilla::color::luma;
use krilla::geom::{PathBuilder, Point, Rect, Size, Transform};
use krilla::image::Image;
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};
use krilla::text::{Font, TextDirection};

/// DejaVu Sans cut to Latin and Cyrillic (`server/assets/fonts`).
static REGULAR_TTF: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
static BOLD_TTF: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");

/// A4 portrait.
pub const PAGE_WIDTH: f32 = 595.0;
pub const PAGE_HEIGHT: f32 = 842.0;
pub const MARGIN: f32 = 40.0;
pub const CONTENT_WIDTH: f32 = PAGE_WIDTH - 2.0 * MARGIN;
/// Room kept at the foot of each page for its number.
const FOOTER: f32 = 24.0;
const LINE_GAP: f32 = 1.3;

/// Why a PDF could not be written: only our own mistakes (a broken
/// embedded font, a size out of range), never a caller's input.
#[derive(Debug, thiserror::Error)]
#[error("writing a PDF: {0}")]
pub struct PdfError(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weight {
    Regular,
    Bold,
}

/// Widths of characters, from the embedded fonts.
struct Metrics {
    regular: ttf_parser::Face<'static>,
    bold: ttf_parser::Face<'static>,
}

impl Metrics {
    fn load() -> Result<Metrics, PdfError> {
        let face = |bytes: &'static [u8]| {
            ttf_parser::Face::parse(bytes, 0).map_err(|e| PdfError(format!("embedded font: {e}")))
        };
        Ok(Metrics {
            regular: face(REGULAR_TTF)?,
            bold: face(BOLD_TTF)?,
        })
    }

    fn width(&self, text: &str, size: f32, weight: Weight) -> f32 {
        let face = match weight {
            Weight::Regular => &self.regular,
            Weight::Bold => &self.bold,
        };
        let per_unit = size / f32::from(face.units_per_em());
        let fallback = face.glyph_index('?');
        text.chars()
            .map(|c| {
                face.glyph_index(c)
                    .or(fallback)
                    .and_then(|g| face.glyph_hor_advance(g))
                    .map_or(size * 0.6, |a| f32::from(a) * per_unit)
            })
            .sum()
    }
}

enum Op {
    Text {
        x: f32,
        y: f32,
        size: f32,
        weight: Weight,
        text: String,
    },
    Image {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        jpeg: Arc<Vec<u8>>,
    },
    Rule {
        x1: f32,
        y1: f32,
        x2: f32,
        y2: f32,
        width: f32,
    },
    Shade {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
    },
}

/// One column of a table: its heading and share of the content width.
pub struct Column<'a> {
    pub heading: &'a str,
    pub share: f32,
}

/// A picture for [`Layout::images`]: a JPEG with its pixel size, and the
/// lines of text under it.
pub struct Picture {
    pub jpeg: Arc<Vec<u8>>,
    pub width: u32,
    pub height: u32,
    pub caption: Vec<String>,
}

/// A document being laid out, page by page.
pub struct Layout {
    metrics: Metrics,
    pages: Vec<Vec<Op>>,
    y: f32,
    title: String,
}

impl Layout {
    pub fn new(title: &str) -> Result<Layout, PdfError> {
        Ok(Layout {
            metrics: Metrics::load()?,
            pages: vec![Vec::new()],
            y: MARGIN,
            title: title.to_owned(),
        })
    }

    fn ops(&mut self) -> &mut Vec<Op> {
        if self.pages.is_empty() {
            self.pages.push(Vec::new());
        }
        let last = self.pages.len() - 1;
        &mut self.pages[last]
    }

    fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.y = MARGIN;
    }

    /// Starts a new page unless `height` more fits on this one.
    pub fn need(&mut self, height: f32) {
        if self.y + height > PAGE_HEIGHT - MARGIN - FOOTER && self.y > MARGIN {
            self.new_page();
        }
    }

    pub fn space(&mut self, height: f32) {
        self.y += height;
    }

    /// `text` broken into lines at most `width` wide: at spaces where it
    /// can, inside a word too long for a line where it must. Line breaks
    /// in the text are kept.
    pub fn wrap(&self, text: &str, size: f32, weight: Weight, width: f32) -> Vec<String> {
        let fits = |s: &str| self.metrics.width(s, size, weight) <= width;
        let mut lines = Vec::new();
        for paragraph in text.split('\n') {
            let mut line = String::new();
            for word in paragraph.split_whitespace() {
                let candidate = if line.is_empty() {
                    word.to_owned()
                } else {
                    format!("{line} {word}")
                };
                if fits(&candidate) {
                    line = candidate;
                    continue;
                }
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                }
                // A word wider than the line (a long serial number): cut it.
                for c in word.chars() {
                    let mut next = line.clone();
                    next.push(c);
                    if !fits(&next) && !line.is_empty() {
                        lines.push(std::mem::take(&mut line));
                        next = c.to_string();
                    }
                    line = next;
                }
            }
            lines.push(line);
        }
        lines
    }

    fn line_height(size: f32) -> f32 {
        size * LINE_GAP
    }

    fn text_at(&mut self, x: f32, y: f32, size: f32, weight: Weight, text: &str) {
        if text.is_empty() {
            return;
        }
        // krilla places text by its baseline; `y` is the top of the line.
        self.ops().push(Op::Text {
            x,
            y: y + size,
            size,
            weight,
            text: text.to_owned(),
        });
    }

    /// A paragraph across the content width.
    pub fn paragraph(&mut self, text: &str, size: f32, weight: Weight) {
        for line in self.wrap(text, size, weight, CONTENT_WIDTH) {
            self.need(Self::line_height(size));
            let y = self.y;
            self.text_at(MARGIN, y, size, weight, &line);
            self.y += Self::line_height(size);
        }
    }

    pub fn heading(&mut self, text: &str, size: f32) {
        // Keep a heading with at least a few lines of what follows.
        self.need(Self::line_height(size) + 40.0);
        self.space(size * 0.4);
        self.paragraph(text, size, Weight::Bold);
        self.space(size * 0.2);
    }

    /// Label and value pairs in two columns, the label in bold.
    pub fn fields(&mut self, pairs: &[(&str, String)], size: f32) {
        let label_width = CONTENT_WIDTH * 0.38;
        let value_width = CONTENT_WIDTH - label_width - 8.0;
        for (label, value) in pairs {
            let labels = self.wrap(label, size, Weight::Bold, label_width);
            let values = self.wrap(value, size, Weight::Regular, value_width);
            let rows = labels.len().max(values.len());
            let height = rows as f32 * Self::line_height(size);
            self.need(height);
            let y = self.y;
            for (i, l) in labels.iter().enumerate() {
                let ly = y + i as f32 * Self::line_height(size);
                self.text_at(MARGIN, ly, size, Weight::Bold, l);
            }
            for (i, v) in values.iter().enumerate() {
                let vy = y + i as f32 * Self::line_height(size);
                self.text_at(MARGIN + label_width + 8.0, vy, size, Weight::Regular, v);
            }
            self.y += height;
        }
    }

    /// A table: a shaded heading row (repeated at the top of each page the
    /// table runs onto), then each row, its cells wrapped in their column.
    pub fn table(&mut self, columns: &[Column<'_>], rows: &[Vec<String>], size: f32) {
        let total: f32 = columns
            .iter()
            .map(|c| c.share)
            .sum::<f32>()
            .max(f32::EPSILON);
        let widths: Vec<f32> = columns
            .iter()
            .map(|c| CONTENT_WIDTH * c.share / total)
            .collect();
        let pad = 3.0;
        let heading: Vec<String> = columns.iter().map(|c| c.heading.to_owned()).collect();
        let heading_cells = self.cells(&heading, &widths, size, Weight::Bold, pad);
        let heading_height = row_height(&heading_cells, size, pad);
        self.need(heading_height + Self::line_height(size) * 2.0);
        self.table_row(&heading_cells, &widths, size, Weight::Bold, pad, true);
        for row in rows {
            let cells = self.cells(row, &widths, size, Weight::Regular, pad);
            let height = row_height(&cells, size, pad);
            if self.y + height > PAGE_HEIGHT - MARGIN - FOOTER {
                self.new_page();
                self.table_row(&heading_cells, &widths, size, Weight::Bold, pad, true);
            }
            self.table_row(&cells, &widths, size, Weight::Regular, pad, false);
        }
        self.space(6.0);
    }

    fn cells(
        &self,
        row: &[String],
        widths: &[f32],
        size: f32,
        weight: Weight,
        pad: f32,
    ) -> Vec<Vec<String>> {
        widths
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let text = row.get(i).map_or("", String::as_str);
                self.wrap(text, size, weight, w - 2.0 * pad)
            })
            .collect()
    }

    fn table_row(
        &mut self,
        cells: &[Vec<String>],
        widths: &[f32],
        size: f32,
        weight: Weight,
        pad: f32,
        shaded: bool,
    ) {
        let height = row_height(cells, size, pad);
        let top = self.y;
        if shaded {
            self.ops().push(Op::Shade {
                x: MARGIN,
                y: top,
                w: CONTENT_WIDTH,
                h: height,
            });
        }
        let mut x = MARGIN;
        for (lines, w) in cells.iter().zip(widths) {
            for (i, line) in lines.iter().enumerate() {
                let y = top + pad + i as f32 * Self::line_height(size);
                self.text_at(x + pad, y, size, weight, line);
            }
            x += w;
        }
        self.ops().push(Op::Rule {
            x1: MARGIN,
            y1: top + height,
            x2: MARGIN + CONTENT_WIDTH,
            y2: top + height,
            width: 0.5,
        });
        self.y += height;
    }

    /// Pictures in rows of `per_row`, each scaled to fit its cell, with its
    /// caption below.
    pub fn images(&mut self, pictures: &[Picture], per_row: usize, size: f32) {
        let per_row = per_row.max(1);
        let gap = 10.0;
        let cell = (CONTENT_WIDTH - gap * (per_row as f32 - 1.0)) / per_row as f32;
        for row in pictures.chunks(per_row) {
            let captions: Vec<Vec<String>> = row
                .iter()
                .map(|p| {
                    p.caption
                        .iter()
                        .flat_map(|c| self.wrap(c, size, Weight::Regular, cell))
                        .collect()
                })
                .collect();
            let caption_lines = captions.iter().map(Vec::len).max().unwrap_or(0);
            let height = cell + 4.0 + caption_lines as f32 * Self::line_height(size);
            self.need(height + gap);
            let top = self.y;
            for (i, (picture, caption)) in row.iter().zip(&captions).enumerate() {
                let x = MARGIN + i as f32 * (cell + gap);
                let (w, h) = fit(picture.width, picture.height, cell);
                self.ops().push(Op::Image {
                    x: x + (cell - w) / 2.0,
                    y: top + (cell - h),
                    w,
                    h,
                    jpeg: picture.jpeg.clone(),
                });
                for (j, line) in caption.iter().enumerate() {
                    let y = top + cell + 4.0 + j as f32 * Self::line_height(size);
                    self.text_at(x, y, size, Weight::Regular, line);
                }
            }
            self.y = top + height + gap;
        }
    }

    /// Writes the PDF: every page, each with "title · page n / N" at its foot.
    pub fn finish(mut self, language: &str) -> Result<Vec<u8>, PdfError> {
        let bad = |what: &str| PdfError(what.to_owned());
        let regular = Font::new(REGULAR_TTF.to_vec().into(), 0).ok_or_else(|| bad("font"))?;
        let bold = Font::new(BOLD_TTF.to_vec().into(), 0).ok_or_else(|| bad("bold font"))?;
        let total = self.pages.len();
        for n in 0..total {
            let footer = format!("{} · {} / {}", self.title, n + 1, total);
            let y = PAGE_HEIGHT - MARGIN;
            if let Some(page) = self.pages.get_mut(n) {
                page.push(Op::Text {
                    x: MARGIN,
                    y,
                    size: 7.5,
                    weight: Weight::Regular,
                    text: footer,
                });
            }
        }
        let mut doc = Document::new();
        doc.set_metadata(
            krilla::metadata::Metadata::new()
                .title(self.title.clone())
                .language(language.to_owned())
                .creator("aidsync".to_owned()),
        );
        let settings =
            PageSettings::from_wh(PAGE_WIDTH, PAGE_HEIGHT).ok_or_else(|| bad("page size"))?;
        for ops in &self.pages {
            let mut page = doc.start_page_with(settings.clone());
            let mut surface = page.surface();
            for op in ops {
                match op {
                    Op::Text {
                        x,
                        y,
                        size,
                        weight,
                        text,
                    } => {
                        let font = match weight {
                            Weight::Regular => regular.clone(),
                            Weight::Bold => bold.clone(),
                        };
                        surface.draw_text(
                            Point::from_xy(*x, *y),
                            font,
                            *size,
                            text,
                            false,
                            TextDirection::Auto,
                        );
                    }
                    Op::Image { x, y, w, h, jpeg } => {
                        // A thumbnail the server made itself; one that
                        // will not read is left out, not the whole note.
                        let Ok(image) = Image::from_jpeg(jpeg.as_ref().clone().into(), true) else {
                            continue;
                        };
                        let Some(size) = Size::from_wh(*w, *h) else {
                            continue;
                        };
                        surface.push_transform(&Transform::from_translate(*x, *y));
                        surface.draw_image(image, size);
                        surface.pop();
                    }
                    Op::Rule {
                        x1,
                        y1,
                        x2,
                        y2,
                        width,
                    } => {
                        let mut path = PathBuilder::new();
                        path.move_to(*x1, *y1);
                        path.line_to(*x2, *y2);
                        if let Some(path) = path.finish() {
                            surface.set_fill(None);
                            surface.set_stroke(Some(Stroke {
                                paint: luma::Color::new(150).into(),
                                width: *width,
                                ..Stroke::default()
                            }));
                            surface.draw_path(&path);
                            surface.set_stroke(None);
                        }
                    }
                    Op::Shade { x, y, w, h } => {
                        let mut path = PathBuilder::new();
                        if let Some(rect) = Rect::from_xywh(*x, *y, *w, *h) {
                            path.push_rect(rect);
                        }
                        if let Some(path) = path.finish() {
                            surface.set_stroke(None);
                            surface.set_fill(Some(Fill {
                                paint: luma::Color::new(232).into(),
                                ..Fill::default()
                            }));
                            surface.draw_path(&path);
                            surface.set_fill(Some(Fill::default()));
                        }
                    }
                }
            }
            surface.finish();
            page.finish();
        }
        doc.finish().map_err(|e| PdfError(format!("{e:?}")))
    }
}

fn row_height(cells: &[Vec<String>], size: f32, pad: f32) -> f32 {
    let lines = cells.iter().map(Vec::len).max().unwrap_or(1).max(1);
    lines as f32 * size * LINE_GAP + 2.0 * pad
}

/// `width` × `height` pixels scaled to fit a `side`-point square.
fn fit(width: u32, height: u32, side: f32) -> (f32, f32) {
    let (w, h) = (width.max(1) as f32, height.max(1) as f32);
    let scale = side / w.max(h);
    (w * scale, h * scale)
}
