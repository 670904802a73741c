//! Sync: one HTTP round trip moves every document a phone touched, both ways.
//!
//! - [`protocol`]: the wire types and their CBOR encoding.
//! - [`server`]: the server's sans-IO step that checks and merges what a
//!   phone sent, and decides what to send back.
//! - [`untrusted`]: decoding what a phone sent as the hostile input it may
//!   be, within bounded memory and time.
//! - [`lineage`]: checking that uploaded changes continue their actors'
//!   histories as automerge assumes, so they replay in any order.
//! - [`carry`]: hand-carried sync: the phone's waiting records as a signed
//!   file a courier takes to a coordinator when there is no network.
//! - [`client`]: the phone's engine (local documents, outbox, cursor) over a
//!   [`ClientStore`](client::ClientStore) the platform provides.
//!
//! The protocol in one paragraph: the phone remembers a *cursor* (the
//! server's commit counter when it last synced) and, per document, the server
//! heads it last saw. A request carries the cursor and, for each document
//! with local changes, every change the server has not acknowledged. The
//! server stores the new ones (duplicates are no-ops, so a retry after a lost
//! response is harmless), then answers with every change committed after the
//! cursor to documents the phone may see (whole documents when new to it),
//! the new heads and a new cursor. Commits are numbered under a lock, so the
//! cursor never skips a change that commits late.

pub mod carry;
pub mod client;
pub mod lineage;
pub mod protocol;
pub mod server;
pub mod untrusted;
