//! The aidsync server: one sync endpoint, a small REST API, storage on
//! SQLite or PostgreSQL.
//!
//! # Layout
//!
//! - [`app`]: configuration, building the application, serving with
//!   graceful shutdown.
//! - [`connections`]: the accept loop and what one connection may cost
//!   (request head deadline, connection cap, open-files limit).
//! - [`tls`]: HTTPS served by the server itself (`--tls-cert`, `--tls-key`).
//! - [`http`]: routes and middleware (compression, body limits, request
//!   ids, metrics, tracing);
//!   thin handlers.
//! - [`metrics`]: what the server counts for Prometheus (`/metrics`).
//! - [`caller`]: the request context: which device, which user, what role.
//! - [`clock`]: the one clock handlers read (tests move it forward).
//! - [`rate_limit`]: sans-IO keyed token buckets behind the 429s.
//! - [`service`]: what the server does — sync, shipments, accounts, login,
//!   devices, audit — over storage, with the model and the merge and
//!   permission rules from `aidsync_shared`.
//! - [`storage`]: the database: migrations, the append-only change log,
//!   document snapshots and the shipments projection.
//! - [`pdf`]: PDFs the server writes (the goods-received note): a small
//!   page layout over krilla, with a Cyrillic font embedded.
//! - [`demo`]: the demo data set behind `aidsync serve --demo`.
//! - [`error`]: the one error type at the HTTP boundary.

pub mod app;
pub mod caller;
pub mod clock;
pub mod connections;
pub mod demo;
pub mod error;
pub mod events;
pub mod http;
pub mod metrics;
pub mod pdf;
pub mod rate_limit;
pub mod service;
pub mod storage;
pub mod tls;
