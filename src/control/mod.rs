//! The emulator's own test API under `/emulator/v1/`: reset to factory defaults, read the
//! whole state. Not part of any Axis API.

use std::sync::Arc;

use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use crate::store::Store;

/// The control API of one device.
#[derive(Debug, Clone)]
pub struct Control {
    store: Arc<Store>,
}

impl Control {
    /// The control API over `store`.
    pub fn new(store: Arc<Store>) -> Self {
        Self { store }
    }

    /// Answers `method path`: `Some(Ok(body))`, `Some(Err(status))` for a known path with the
    /// wrong method, `None` for an unknown path.
    pub fn handle(&self, method: &Method, path: &str) -> Option<Result<Value, StatusCode>> {
        let allow = |m: Method| {
            if *method == m {
                Ok(())
            } else {
                Err(StatusCode::METHOD_NOT_ALLOWED)
            }
        };
        Some(match path {
            "/emulator/v1/reset" => allow(Method::POST).map(|()| {
                self.store.reset();
                tracing::info!("store reset to factory defaults");
                json!({})
            }),
            "/emulator/v1/state" => allow(Method::GET)
                .map(|()| json!({ "Store": serde_json::to_value(self.store.snapshot()).unwrap_or(Value::Null) })),
            _ => return None,
        })
    }
}
