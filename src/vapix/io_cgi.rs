//! The I/O CGIs: `io/portmanagement.cgi` (JSON `getPorts`, `setPorts`), `io/port.cgi`
//! (`checkactive=N`, `action=N:/` and `N:\`, `monitor=N`) and `virtualinput/activate.cgi` /
//! `deactivate.cgi`. `port.cgi` numbers ports from 1, the JSON API from 0, as on devices.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde_json::{json, Map, Value};
use tokio::sync::broadcast::error::RecvError;

use super::json_api::{answer, ApiError, INTERNAL_ERROR, INVALID_PARAMETER, METHOD_NOT_SUPPORTED};
use crate::events::{topics, EventBus};
use crate::io::{IoError, IoPorts, PortChange};
use crate::profile::PortDirection;
use crate::reply::{plain, text_response, Body};

/// `POST /axis-cgi/io/portmanagement.cgi`.
pub fn port_management(body: &[u8], io: &IoPorts) -> Response<Body> {
    answer(body, "1.0", |method, params| match method {
        "getPorts" => {
            let items: Vec<Value> = io
                .ports()
                .iter()
                .map(|p| {
                    json!({"port": p.index.to_string(), "configurable": false, "usage": p.usage, "name": p.name,
                        "direction": match p.direction { PortDirection::Input => "input", PortDirection::Output => "output" },
                        "state": p.state(), "normalState": p.normal_state})
                })
                .collect();
            Ok(json!({ "numberOfPorts": items.len(), "items": items }))
        }
        "setPorts" => set_ports(params, io).map(|()| json!({})),
        "getSupportedVersions" => Ok(json!({ "apiVersions": ["1.0"] })),
        other => Err(ApiError::new(METHOD_NOT_SUPPORTED, format!("method {other:?} not supported"))),
    })
}

fn set_ports(params: &Map<String, Value>, io: &IoPorts) -> Result<(), ApiError> {
    let invalid = |m: String| ApiError::new(INVALID_PARAMETER, m);
    let ports =
        params.get("ports").and_then(Value::as_array).ok_or_else(|| invalid("setPorts needs params.ports".into()))?;
    let mut changes = Vec::new();
    for p in ports {
        let index = p
            .get("port")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<usize>().ok())
            .ok_or_else(|| invalid(format!("each port needs a \"port\" number as text: {p}")))?;
        let text = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_owned);
        changes.push((
            index,
            PortChange {
                name: text("name"),
                usage: text("usage"),
                normal_state: text("normalState"),
                state: text("state"),
            },
        ));
    }
    io.change(&changes).map_err(|e| match e {
        IoError::Storage(why) => ApiError::new(INTERNAL_ERROR, why),
        other => invalid(other.to_string()),
    })
}

/// The 1-based port number of `port.cgi` as a 0-based index.
fn index_of(number: &str) -> Result<usize, IoError> {
    match number.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n - 1),
        _ => Err(IoError::NoSuchPort(number.to_owned())),
    }
}

/// `GET /axis-cgi/io/port.cgi`.
pub fn port_cgi(pairs: &[(String, String)], io: &Arc<IoPorts>, bus: &Arc<EventBus>) -> Response<Body> {
    let get = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    if let Some(list) = get("checkactive") {
        let mut out = String::new();
        for number in list.split(',') {
            match index_of(number).and_then(|i| io.port(i).ok_or_else(|| IoError::NoSuchPort(number.to_owned()))) {
                Ok(p) => {
                    out.push_str(&format!("port{}={}\n", p.index + 1, if p.active { "active" } else { "inactive" }))
                }
                Err(e) => return plain(StatusCode::BAD_REQUEST, &format!("Error: {e}")),
            }
        }
        return text_response(out);
    }
    if let Some(action) = get("action") {
        return match run_action(action, io) {
            Ok(()) => text_response("OK\n".to_owned()),
            Err(e) => plain(StatusCode::BAD_REQUEST, &format!("Error: {e}")),
        };
    }
    if let Some(number) = get("monitor") {
        return match index_of(number)
            .and_then(|i| io.port(i).map(|_| i).ok_or_else(|| IoError::NoSuchPort(number.to_owned())))
        {
            Ok(index) => monitor(index, bus),
            Err(e) => plain(StatusCode::BAD_REQUEST, &format!("Error: {e}")),
        };
    }
    plain(StatusCode::BAD_REQUEST, "Error: use checkactive=N, action=N:/ or N:\\, or monitor=N")
}

/// Runs `N:<sequence>`: `/` activates output N, `\` deactivates it, a number waits that many
/// milliseconds (at most 60 000 in all). Waits run in the background, as on the device.
fn run_action(action: &str, io: &Arc<IoPorts>) -> Result<(), IoError> {
    let (number, sequence) =
        action.split_once(':').ok_or_else(|| IoError::Invalid(format!("{action:?} is not N:/ or N:\\")))?;
    let index = index_of(number)?;
    let mut steps = Vec::new();
    let mut digits = String::new();
    let mut total_wait = 0u64;
    for c in sequence.chars() {
        if c.is_ascii_digit() && digits.len() < 6 {
            digits.push(c);
            continue;
        }
        if !digits.is_empty() {
            let ms: u64 = digits.parse().unwrap_or(0);
            total_wait += ms;
            steps.push(Step::Wait(ms));
            digits.clear();
        }
        match c {
            '/' => steps.push(Step::Set(true)),
            '\\' => steps.push(Step::Set(false)),
            other => return Err(IoError::Invalid(format!("{other:?} is not /, \\ or a wait in ms"))),
        }
    }
    if steps.is_empty() || !digits.is_empty() || total_wait > 60_000 {
        return Err(IoError::Invalid(format!("{sequence:?} is not a valid action sequence")));
    }
    let port = io.port(index).ok_or_else(|| IoError::NoSuchPort(number.to_owned()))?;
    if port.direction == PortDirection::Input {
        return Err(IoError::NotAnOutput(index));
    }
    let io = io.clone();
    let run = async move {
        for step in steps {
            match step {
                Step::Set(active) => drop(io.set_active(index, active, true)),
                Step::Wait(ms) => tokio::time::sleep(std::time::Duration::from_millis(ms)).await,
            }
        }
    };
    tokio::spawn(run);
    Ok(())
}

enum Step {
    Set(bool),
    Wait(u64),
}

/// `monitor=N`: a multipart stream with one part per state change of port N, current state first.
fn monitor(index: usize, bus: &Arc<EventBus>) -> Response<Body> {
    let subscription = bus.subscribe();
    let port = index.to_string();
    let is_port = move |e: &crate::events::Event| e.topic == topics::IO_PORT && e.source.get("port") == Some(&port);
    let first: Vec<Bytes> =
        subscription.current.iter().filter(|e| is_port(e)).map(|e| part(index, &e.data["state"])).collect();
    let initial = stream::iter(first.into_iter().map(|b| Ok(Frame::data(b))));
    let live = stream::unfold((subscription.live, is_port, bus.clone()), move |(mut rx, is_port, bus)| async move {
        loop {
            match rx.recv().await {
                Ok(e) if is_port(&e) => {
                    let state = e.data.get("state").cloned().unwrap_or_default();
                    return Some((Ok(Frame::data(part(index, &state))), (rx, is_port, bus)));
                }
                Ok(_) => continue,
                Err(RecvError::Lagged(n)) => bus.count_dropped(n),
                Err(RecvError::Closed) => return None,
            }
        }
    });
    let body = StreamBody::new(futures_util::StreamExt::chain(initial, live)).boxed_unsync();
    let mut r = Response::new(body);
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("multipart/x-mixed-replace; boundary=ioboundary"));
    r
}

fn part(index: usize, state: &str) -> Bytes {
    let value = if state == "1" { "active" } else { "inactive" };
    Bytes::from(format!("--ioboundary\r\nContent-Type: text/plain\r\n\r\nport{}={value}\r\n", index + 1))
}

/// `GET /axis-cgi/virtualinput/activate.cgi` and `deactivate.cgi` (`schemaversion=1&port=N`).
pub fn virtual_input(pairs: &[(String, String)], active: bool, io: &IoPorts) -> Response<Body> {
    let verb = if active { "Activate" } else { "Deactivate" };
    let port = pairs.iter().find(|(k, _)| k == "port").and_then(|(_, v)| v.parse::<usize>().ok());
    let body = match port.map(|n| io.set_virtual(n, active)) {
        Some(Ok(changed)) => format!("<Success><{verb}Success><StateChanged>{changed}</StateChanged></{verb}Success></Success>"),
        Some(Err(e)) => format!("<Error><GeneralError><ErrorCode>10</ErrorCode><ErrorDescription>{e}</ErrorDescription></GeneralError></Error>"),
        None => "<Error><GeneralError><ErrorCode>10</ErrorCode><ErrorDescription>missing port=N (1..=32)</ErrorDescription></GeneralError></Error>".to_owned(),
    };
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<VirtualInputResponse xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
         xmlns=\"http://www.axis.com/vapix/http_cgi/virtualinput1\" SchemaVersion=\"1.0\">{body}</VirtualInputResponse>\n"
    );
    let mut r = text_response(xml);
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    r
}
