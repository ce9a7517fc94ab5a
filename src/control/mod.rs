//! The emulator's own test API under `/emulator/v1/`. Not part of any Axis API.
//!
//! | request | does |
//! |---|---|
//! | `POST reset` | restores the factory defaults of the store |
//! | `GET state` | the whole store, the stream counts and the call statuses |
//! | `GET events[?topic=T]` | the event log, oldest first, and the count of events slow subscribers lost |
//! | `POST button/press` | presses the call button (input port 0): port events and a call to the button's recipient |
//! | `POST io/{port}/activate`, `deactivate` | drives any port, inputs included (a wired sensor, a lock) |
//! | `POST calls/{id}/dtmf` `{"Digits", "Method"}` | sends DTMF on an active SIP call (RFC2833 or RFC2976) |
//! | `GET`, `POST dtmf-actions` `{"DTMFEventId", "Port", "Seconds"}` | binds a DTMF event to "activate output Port for Seconds" |
//! | `POST calls/{id}/answer`, `reject` | answers or declines a ringing incoming call |

use std::sync::Arc;

use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use crate::actions::{BindError, DoorActions};
use crate::calls::{CallEngine, CallError};
use crate::events::EventBus;
use crate::io::IoPorts;
use crate::model::sip_account::SipAccountStatus;
use crate::profile::Brand;
use crate::profile::DtmfAction;
use crate::store::Store;

/// The input port the call button is wired to (the first port of every profile).
pub const CALL_BUTTON_PORT: usize = 0;

/// A control API answer: a JSON body, or a status with a message.
pub type ControlResult = Result<Value, (StatusCode, String)>;

/// The control API of one device.
#[derive(Debug, Clone)]
pub struct Control {
    store: Arc<Store>,
    engine: Arc<CallEngine>,
    bus: Arc<EventBus>,
    io: Arc<IoPorts>,
    actions: Arc<DoorActions>,
    facts: DeviceFacts,
}

/// What the control API tells of the device besides its state.
#[derive(Debug, Clone)]
pub struct DeviceFacts {
    /// Whose API the device serves.
    pub brand: Brand,
    /// The host its SIP URIs show.
    pub device_host: String,
    /// Whom the call button calls.
    pub button_recipient: String,
}

impl Control {
    /// The control API of the device `facts` describe.
    pub fn new(
        store: Arc<Store>,
        engine: Arc<CallEngine>,
        bus: Arc<EventBus>,
        io: Arc<IoPorts>,
        actions: Arc<DoorActions>,
        facts: DeviceFacts,
    ) -> Self {
        Self { store, engine, bus, io, actions, facts }
    }

    /// The device's event bus.
    pub fn bus(&self) -> &Arc<EventBus> {
        &self.bus
    }

    /// Answers `method path` with its JSON `body`; `None` for a path that is not one of
    /// [`OPERATIONS`].
    pub async fn handle(&self, method: &Method, path: &str, query: Option<&str>, body: &[u8]) -> Option<ControlResult> {
        if let Err(refused) = operation(method, path)? {
            return Some(Err(refused));
        }
        let segments: Vec<&str> = path.trim_start_matches("/emulator/v1/").split('/').collect();
        Some(match (method.as_str(), segments.as_slice()) {
            ("GET", ["openapi.json"]) => {
                serde_json::from_str(OPENAPI).map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
            }
            ("POST", ["reset"]) => Ok(self.reset().await),
            ("GET", ["state"]) => Ok(self.state()),
            ("GET", ["events"]) => self.events(query),
            ("POST", ["button", "press"]) => self.press_button(),
            ("POST", ["io", port, action]) => {
                let index = port.parse::<usize>().map_err(|_| (StatusCode::NOT_FOUND, format!("no port {port}")));
                index.and_then(|index| {
                    let changed = self
                        .io
                        .set_active(index, *action == "activate", false)
                        .map_err(|e| (StatusCode::NOT_FOUND, e.to_string()))?;
                    Ok(json!({ "Changed": changed }))
                })
            }
            ("POST", ["calls", id, "dtmf"]) => digits_of(body).and_then(|(digits, request)| {
                let over_rtp = match request["Method"].as_str().unwrap_or("RFC2833") {
                    "RFC2833" => true,
                    "RFC2976" => false,
                    other => {
                        return Err((StatusCode::BAD_REQUEST, format!("Method {other:?} is not RFC2833 or RFC2976")))
                    }
                };
                self.engine.send_dtmf(id, &digits, over_rtp).map(|()| json!({})).map_err(call_error)
            }),
            ("POST", ["calls", id, "keypad"]) => digits_of(body)
                .and_then(|(digits, _)| self.engine.keyed(id, &digits).map(|()| json!({})).map_err(call_error)),
            ("GET", ["dtmf-actions"]) => Ok(json!({ "DtmfActions": self.actions.list() })),
            ("POST", ["dtmf-actions"]) => {
                let action: Result<DtmfAction, _> = serde_json::from_slice(body);
                action.map_err(|e| (StatusCode::BAD_REQUEST, format!("body: {e}"))).and_then(|action| {
                    self.actions.bind(action).map(|()| json!({})).map_err(|e| match e {
                        BindError::Storage(why) => (StatusCode::INTERNAL_SERVER_ERROR, why),
                        BindError::NoPort(_) => (StatusCode::NOT_FOUND, e.to_string()),
                        BindError::Input(_) | BindError::TooMany => (StatusCode::CONFLICT, e.to_string()),
                        other => (StatusCode::BAD_REQUEST, other.to_string()),
                    })
                })
            }
            ("POST", ["calls", id, action]) => {
                let result = if *action == "answer" { self.engine.answer(id) } else { self.engine.reject(id) };
                result.map(|()| json!({})).map_err(call_error)
            }
            _ => return None, // every operation has its arm above
        })
    }

    fn state(&self) -> Value {
        let counts = self.engine.streams().current();
        let snapshot = self.store.snapshot();
        let problem = self.store.sip_listener_problem();
        // Every brand's accounts in one shape: the Call service's account status.
        let accounts: Vec<_> = snapshot
            .sip_accounts
            .values()
            .map(|a| {
                let registration = self.store.registration(&a.id);
                let config = &snapshot.sip_configuration;
                SipAccountStatus::of(a, config, &self.facts.device_host, registration.as_ref(), problem.as_deref())
            })
            .collect();
        json!({
            "Brand": self.facts.brand.name(),
            "SipAccounts": accounts,
            "Store": serde_json::to_value(&snapshot).unwrap_or(Value::Null),
            "SipListener": {"Problem": self.store.sip_listener_problem()},
            "Sip": {
                "Transactions": self.store.sip_load().transactions.load(std::sync::atomic::Ordering::Relaxed),
                "Dialogs": self.store.sip_load().dialogs.load(std::sync::atomic::Ordering::Relaxed),
            },
            "Events": {"Subscribers": self.bus.subscribers(), "Dropped": self.bus.dropped()},
            // Every brand's I/O, the door output among it (port 1 of the built-in profiles).
            "Ports": self.io.ports().iter().map(|p| json!({
                "Port": p.index, "Name": p.name, "Direction": p.direction, "Active": p.active,
            })).collect::<Vec<_>>(),
            "Streams": {"AudioFromDevice": counts[0], "AudioToDevice": counts[1], "VideoFromDevice": counts[2]},
            "Calls": serde_json::to_value(self.engine.statuses(&[])).unwrap_or(Value::Null),
            "Media": self.engine.statuses(&[]).iter().filter_map(|s| {
                let (sent, received, transport) = self.engine.media_counts(&s.call_id)?;
                Some((s.call_id.clone(), json!({"RtpSent": sent, "RtpReceived": received, "SipTransport": transport})))
            }).collect::<serde_json::Map<String, Value>>(),
        })
    }

    /// Back to the power-on state: calls ended on the wire (BYE, CANCEL, decline) and
    /// forgotten with their counters, the store at factory defaults (registrations dropped with
    /// SIP off), I/O ports and virtual inputs as the profile has them, runtime door actions gone,
    /// and the event log emptied. Answers the cursor events after the reset will follow.
    async fn reset(&self) -> Value {
        self.engine.reset().await;
        self.store.reset();
        self.io.reset();
        self.actions.reset();
        self.bus.clear_log();
        tracing::info!("device reset to its power-on state");
        json!({ "Cursor": self.bus.cursor() })
    }

    fn events(&self, query: Option<&str>) -> ControlResult {
        let pairs: Vec<(String, String)> =
            query.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let after = match get("after") {
            None => 0,
            Some(a) => {
                a.parse::<u64>().map_err(|_| (StatusCode::BAD_REQUEST, format!("after={a:?} is not a cursor")))?
            }
        };
        let events = self.bus.log(get("topic"), after);
        Ok(json!({
            "Events": serde_json::to_value(events).unwrap_or(Value::Null),
            "Cursor": self.bus.cursor(),
            "Dropped": self.bus.dropped(),
        }))
    }

    /// The call button, like the A8004/A8207 action rule: input port 0 goes active, a call to the
    /// button's recipient starts, the port goes inactive again.
    pub fn press_button(&self) -> ControlResult {
        let press = |active| {
            self.io.set_active(CALL_BUTTON_PORT, active, false).map_err(|e| (StatusCode::CONFLICT, e.to_string()))
        };
        press(true)?;
        let call = self.engine.place_call(&self.facts.button_recipient, None);
        press(false)?;
        call.map(|id| json!({ "CallId": id })).map_err(call_error)
    }
}

/// The OpenAPI document of the control API (also served at `/emulator/v1/openapi.json`).
pub const OPENAPI: &str = include_str!("../../openapi/control.json");

/// Every operation of the control API: method and path, `{name}` standing for one segment.
/// `openapi/control.json` documents exactly these (a test checks both ways), and a request
/// that is none of them never reaches a handler, so the two cannot drift apart.
pub const OPERATIONS: [(&str, &str); 13] = [
    ("GET", "/emulator/v1/openapi.json"),
    ("POST", "/emulator/v1/reset"),
    ("GET", "/emulator/v1/state"),
    ("GET", "/emulator/v1/events"),
    ("POST", "/emulator/v1/button/press"),
    ("POST", "/emulator/v1/io/{port}/activate"),
    ("POST", "/emulator/v1/io/{port}/deactivate"),
    ("POST", "/emulator/v1/calls/{id}/answer"),
    ("POST", "/emulator/v1/calls/{id}/reject"),
    ("POST", "/emulator/v1/calls/{id}/dtmf"),
    ("POST", "/emulator/v1/calls/{id}/keypad"),
    ("GET", "/emulator/v1/dtmf-actions"),
    ("POST", "/emulator/v1/dtmf-actions"),
];

/// The methods [`OPERATIONS`] has for `path` (none: not a control API path).
pub fn allowed_methods(path: &str) -> Vec<&'static str> {
    let fits = |pattern: &str| {
        let (mut p, mut s) = (pattern.split('/'), path.split('/'));
        loop {
            match (p.next(), s.next()) {
                (None, None) => return true,
                (Some(want), Some(got)) if want == got || (want.starts_with('{') && !got.is_empty()) => {}
                _ => return false,
            }
        }
    };
    OPERATIONS.iter().filter(|(_, p)| fits(p)).map(|(m, _)| *m).collect()
}

/// Whether `method path` is one of [`OPERATIONS`]: `None` for a path none has, a 405 naming
/// the allowed methods for a path with other methods.
fn operation(method: &Method, path: &str) -> Option<Result<(), (StatusCode, String)>> {
    let allowed = allowed_methods(path);
    if allowed.is_empty() {
        return None;
    }
    Some(if allowed.contains(&method.as_str()) {
        Ok(())
    } else {
        Err((StatusCode::METHOD_NOT_ALLOWED, format!("use {}", allowed.join(" or "))))
    })
}

/// The `Digits` of a JSON request body, and the body.
fn digits_of(body: &[u8]) -> Result<(String, Value), (StatusCode, String)> {
    let request: Value = serde_json::from_slice(body).map_err(|e| (StatusCode::BAD_REQUEST, format!("body: {e}")))?;
    let digits = request["Digits"].as_str().ok_or((StatusCode::BAD_REQUEST, "Digits is missing".to_owned()))?;
    Ok((digits.to_owned(), request))
}

fn call_error(e: CallError) -> (StatusCode, String) {
    let status = match e {
        CallError::NotFound(_) => StatusCode::NOT_FOUND,
        CallError::Invalid(_) => StatusCode::BAD_REQUEST,
        CallError::Failed(_) => StatusCode::CONFLICT,
    };
    (status, e.to_string())
}
