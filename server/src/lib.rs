//! The aidsync server: one sync endpoint, a small REST API, storage on
//! SQLite or PostgreSQL.
//!
//! # Layout
//!
//! - [`app`]: configuration, building the application, serving with
//!   graceful shutdown.
//! - [`http`]: routes and middleware (compression, body limits, tracing);
//!   thin handlers.
//! - [`caller`]: the request context, who is calling (a device token today).
//! - [`service`]: what the server does — sync, shipments, devices — over
//!   storage, with the model and merge rules from `aidsync_shared`.
//! - [`storage`]: the database: migrations, the append-only change log,
//!   document snapshots and the shipments projection.
//! - [`demo`]: the demo data set behind `aidsync serve --demo`.
//! - [`error`]: the one error type at the HTTP boundary.

pub mod app;
pub mod caller;
pub mod demo;
pub mod error;
pub mod http;
pub mod service;
pub mod storage;
