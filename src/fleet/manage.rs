//! The fleet's management face (`--manage`, default `127.0.0.1:8079`):
//! - `GET /emulator/v1/fleet`: every device with its index, address, profile, serial, HTTP
//!   URL, registration status per account, and calls in progress;
//! - `POST /emulator/v1/fleet/press` `{"Devices": [0, 3]}` or `{"Range": "0-9"}` (`{}`: all):
//!   presses the call button of those devices, as each one's own `/emulator/v1/button/press`.
//!
//! Per-device control stays on each device's own `/emulator/v1/`.

use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::Fleet;
use crate::calls::{CallEngine, CallState};
use crate::control::Control;
use crate::http::server::Handler;
use crate::reply::{json_response, response, text_response, Body};
use crate::store::Store;

/// Largest request body accepted.
const MAX_BODY: usize = 64 * 1024;

/// What the management face keeps of one device.
#[derive(Debug, Clone)]
struct Managed {
    index: usize,
    address: std::net::Ipv4Addr,
    profile: String,
    serial: String,
    http: SocketAddr,
    store: Arc<Store>,
    engine: Arc<CallEngine>,
    control: Arc<Control>,
}

/// The management face of a running fleet.
#[derive(Debug)]
pub struct Manage {
    devices: Vec<Managed>,
    /// Every device's metrics (`/metrics` here shows them all).
    metrics: std::sync::Arc<crate::metrics::Metrics>,
}

/// Why a press request was refused.
#[derive(Debug, thiserror::Error)]
enum PressError {
    /// Not the JSON shape.
    #[error("expected {{\"Devices\": [...]}} or {{\"Range\": \"A-B\"}}: {0}")]
    Body(String),
    /// A range that is not `FIRST-LAST`.
    #[error("range {0:?} is not FIRST-LAST")]
    Range(String),
    /// Both ways at once.
    #[error("give Devices or Range, not both")]
    Both,
}

/// The devices a press names.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct Press {
    devices: Option<Vec<usize>>,
    range: Option<String>,
}

impl Manage {
    /// The management face of `fleet`.
    pub fn new(fleet: &Fleet) -> Manage {
        let devices = fleet
            .members
            .iter()
            .map(|m| Managed {
                index: m.index,
                address: m.address,
                profile: m.profile.clone(),
                serial: m.device.serial.clone(),
                http: m.device.http_addr,
                store: m.device.store.clone(),
                engine: m.device.engine.clone(),
                control: m.device.control.clone(),
            })
            .collect();
        Manage { devices, metrics: fleet.metrics.clone() }
    }

    /// Every device with the address of its page.
    fn pages(&self) -> Vec<crate::web::Listed> {
        self.devices
            .iter()
            .map(|d| crate::web::Listed {
                index: d.index,
                serial: d.serial.clone(),
                model: d.profile.clone(),
                url: format!("http://{}/emulator/", d.http),
            })
            .collect()
    }

    fn list(&self) -> Value {
        let devices: Vec<Value> = self
            .devices
            .iter()
            .map(|d| {
                let accounts: Vec<String> = d.store.read(|s| s.sip_accounts.keys().cloned().collect());
                let registrations: Vec<Value> = accounts
                    .iter()
                    .filter_map(|id| {
                        let r = d.store.registration(id)?;
                        Some(json!({"SIPAccountId": id, "RegURI": r.reg_uri, "Status": r.status, "StatusText": r.status_text}))
                    })
                    .collect();
                let in_progress =
                    d.engine.statuses(&[]).iter().filter(|c| c.call_state != CallState::Terminated).count();
                json!({
                    "Index": d.index,
                    "Address": d.address.to_string(),
                    "Profile": d.profile,
                    "Serial": d.serial,
                    "Http": format!("http://{}", d.http),
                    "Registrations": registrations,
                    "CallsInProgress": in_progress,
                })
            })
            .collect();
        json!({ "Devices": devices })
    }

    fn press(&self, body: &[u8]) -> Result<Value, PressError> {
        let press: Press = if body.iter().all(u8::is_ascii_whitespace) {
            Press::default()
        } else {
            serde_json::from_slice(body).map_err(|e| PressError::Body(e.to_string()))?
        };
        let wanted: Box<dyn Fn(usize) -> bool> = match (press.devices, press.range) {
            (Some(list), None) => Box::new(move |i| list.contains(&i)),
            (None, Some(range)) => {
                let (a, b) = range
                    .split_once('-')
                    .and_then(|(a, b)| Some((a.trim().parse::<usize>().ok()?, b.trim().parse::<usize>().ok()?)))
                    .ok_or(PressError::Range(range))?;
                Box::new(move |i| (a..=b).contains(&i))
            }
            (None, None) => Box::new(|_| true),
            (Some(_), Some(_)) => return Err(PressError::Both),
        };
        let (mut pressed, mut failed) = (Vec::new(), Vec::new());
        for d in self.devices.iter().filter(|d| wanted(d.index)) {
            match d.control.press_button() {
                Ok(v) => pressed.push(json!({"Index": d.index, "CallId": v["CallId"]})),
                Err((_, why)) => failed.push(json!({"Index": d.index, "Error": why})),
            }
        }
        Ok(json!({ "Pressed": pressed, "Failed": failed }))
    }
}

impl Handler for Manage {
    async fn handle(&self, req: Request<Incoming>, _local: SocketAddr) -> Response<Body> {
        let (method, path) = (req.method().clone(), req.uri().path().to_owned());
        match (method, path.as_str()) {
            (Method::GET, "/emulator/v1/fleet") => json_response(StatusCode::OK, &self.list()),
            (Method::GET, "/emulator/" | "/emulator") => {
                response(StatusCode::OK, "text/html; charset=utf-8", crate::web::fleet_page(&self.pages()))
            }
            (Method::GET, "/metrics") => {
                for d in &self.devices {
                    self.metrics.device(Some(d.index)).observe_bus(d.control.bus());
                }
                text_response(self.metrics.render())
            }
            (Method::POST, "/emulator/v1/fleet/press") => {
                let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
                    Ok(b) => b.to_bytes(),
                    Err(_) => return json_response(StatusCode::PAYLOAD_TOO_LARGE, &json!({"Error": "body too large"})),
                };
                match self.press(&body) {
                    Ok(v) => json_response(StatusCode::OK, &v),
                    Err(why) => json_response(StatusCode::BAD_REQUEST, &json!({ "Error": why.to_string() })),
                }
            }
            (_, "/emulator/v1/fleet" | "/emulator/v1/fleet/press") => {
                json_response(StatusCode::METHOD_NOT_ALLOWED, &json!({"Error": "method not allowed"}))
            }
            _ => json_response(StatusCode::NOT_FOUND, &json!({"Error": "no such path"})),
        }
    }
}
