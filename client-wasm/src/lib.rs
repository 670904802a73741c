//! The browser side of aidsync: a wasm-bindgen facade over
//! `aidsync_shared`'s client engine, for the mobile web app.
//!
//! # Layout
//!
//! - [`views`]: what the screens show, derived with `shared` (native code,
//!   tested natively).
//! - `store` (wasm32 only): the engine's storage over a JavaScript object
//!   the page provides (IndexedDB in the app).
//! - `engine` (wasm32 only): the exported `Engine` class.
//!
//! The network stays in JavaScript: `syncRequest()` returns the CBOR body
//! the page POSTs to `/api/v1/sync` with `fetch`, and `applyResponse()`
//! takes the answer. So does the clock and randomness (ids and `nowMs` are
//! arguments), as everywhere in `shared`. The page must not start an
//! engine call before the previous one settled: `web/aidsync.js` queues
//! them.

pub mod views;

#[cfg(target_arch = "wasm32")]
mod engine;
#[cfg(target_arch = "wasm32")]
mod store;

/// The sync protocol version this build speaks.
#[cfg_attr(target_arch = "wasm32", wasm_bindgen::prelude::wasm_bindgen(js_name = protocolVersion))]
pub fn protocol_version() -> u32 {
    aidsync_shared::sync::protocol::PROTOCOL_VERSION
}

#[cfg(test)]
mod tests {
    #[test]
    fn speaks_the_shared_protocol() {
        assert_eq!(
            super::protocol_version(),
            aidsync_shared::sync::protocol::PROTOCOL_VERSION
        );
    }
}
