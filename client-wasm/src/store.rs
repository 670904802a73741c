//! The engine's storage over a JavaScript object the page provides (the
//! web app's IndexedDB store). Documents and meta cross the boundary as
//! opaque CBOR bytes, so the JavaScript side is a plain key-value store and
//! every rule about what the bytes mean stays in Rust.

use js_sys::{Array, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use aidsync_shared::sync::client::{ClientStore, DocRecord, Meta, Stored};
use aidsync_shared::sync::protocol::{decode, encode};

#[wasm_bindgen(typescript_custom_section)]
const STORE_TS: &str = r#"
/** Durable storage the engine writes through. Each promise must resolve
 *  only once the write is durable (an IndexedDB transaction's `complete`). */
export interface EngineStore {
  /** Everything stored: the meta record (or null) and every document. */
  load(): Promise<{ meta: Uint8Array | null; docs: Uint8Array[] }>;
  putDoc(id: string, bytes: Uint8Array): Promise<void>;
  putMeta(bytes: Uint8Array): Promise<void>;
}
"#;

#[wasm_bindgen]
extern "C" {
    /// See the `EngineStore` TypeScript interface.
    #[wasm_bindgen(typescript_type = "EngineStore")]
    pub type JsStore;

    #[wasm_bindgen(method, catch)]
    fn load(this: &JsStore) -> Result<Promise, JsValue>;

    // `Vec<u8>` rather than `&[u8]`: JavaScript gets its own copy, not a
    // view into wasm memory that the next allocation may move.
    #[wasm_bindgen(method, catch, js_name = putDoc)]
    fn put_doc(this: &JsStore, id: &str, bytes: Vec<u8>) -> Result<Promise, JsValue>;

    #[wasm_bindgen(method, catch, js_name = putMeta)]
    fn put_meta(this: &JsStore, bytes: Vec<u8>) -> Result<Promise, JsValue>;
}

/// Why the page's store failed, as the engine reports it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(String);

fn store_error(e: JsValue) -> StoreError {
    StoreError(
        e.dyn_ref::<js_sys::Error>()
            .map(|e| String::from(e.message()))
            .or_else(|| e.as_string())
            .unwrap_or_else(|| format!("{e:?}")),
    )
}

async fn settle(promise: Result<Promise, JsValue>) -> Result<JsValue, StoreError> {
    JsFuture::from(promise.map_err(store_error)?)
        .await
        .map_err(store_error)
}

fn bytes(value: &JsValue, what: &str) -> Result<Vec<u8>, StoreError> {
    value
        .dyn_ref::<Uint8Array>()
        .map(Uint8Array::to_vec)
        .ok_or_else(|| StoreError(format!("{what} is not a Uint8Array")))
}

/// [`ClientStore`] over a [`JsStore`].
pub struct PageStore(pub JsStore);

impl ClientStore for PageStore {
    type Error = StoreError;

    async fn load(&mut self) -> Result<Stored, StoreError> {
        let value = settle(self.0.load()).await?;
        let field =
            |name: &str| Reflect::get(&value, &JsValue::from_str(name)).map_err(store_error);
        let meta = match field("meta")? {
            m if m.is_null() || m.is_undefined() => Meta::default(),
            m => decode(&bytes(&m, "meta")?).map_err(|e| StoreError(format!("meta: {e}")))?,
        };
        let docs = field("docs")?
            .dyn_into::<Array>()
            .map_err(|_| StoreError("docs is not an array".into()))?
            .iter()
            .map(|d| {
                decode::<DocRecord>(&bytes(&d, "a document")?)
                    .map_err(|e| StoreError(format!("a document: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Stored { meta, docs })
    }

    async fn put_doc(&mut self, record: &DocRecord) -> Result<(), StoreError> {
        settle(self.0.put_doc(record.id.as_str(), encode(record))).await?;
        Ok(())
    }

    async fn put_meta(&mut self, meta: &Meta) -> Result<(), StoreError> {
        settle(self.0.put_meta(encode(meta))).await?;
        Ok(())
    }
}
