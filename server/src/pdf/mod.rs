//! PDFs the server writes: a small page layout over krilla, and the
//! documents laid out with it (the goods-received note, the donor's
//! discrepancy report).

pub mod donor;
pub mod grn;
pub mod layout;

pub use layout::PdfError;
