//! The browser side of aidsync: a wasm-bindgen facade over
//! `aidsync_shared`'s client engine for the mobile web app.
//!
//! For now this crate proves that `aidsync_shared` builds for
//! `wasm32-unknown-unknown` (nothing native may creep into the shared core)
//! and exposes the protocol version, so the app can refuse to talk to a
//! server that speaks another one. The JavaScript API over the engine and
//! IndexedDB arrives with the phone app.

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
