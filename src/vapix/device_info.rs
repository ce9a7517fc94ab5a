//! What a client reads to learn the device: `apidiscovery.cgi`, `basicdeviceinfo.cgi`,
//! `param.cgi` (`action=list`) and `pwdgrp.cgi` (`action=get`), in the shapes real devices use.

use serde_json::{json, Map, Value};

use super::json_api::{answer, ApiError, INVALID_PARAMETER, METHOD_NOT_SUPPORTED};
use crate::io::IoPorts;
use crate::profile::{PortDirection, Profile};
use crate::reply::{plain, text_response, Body};
use hyper::{Response, StatusCode};

/// The APIs this device lists in `getApiList`: id, version, name.
const APIS: [(&str, &str, &str); 6] = [
    ("api-discovery", "1.0", "API Discovery Service"),
    ("basic-device-info", "1.1", "Basic Device Information"),
    ("io-port-management", "1.0", "IO Port Management"),
    ("param-cgi", "1.0", "Legacy Parameter Handling"),
    ("call-service", "1.9", "Call Service"),
    ("event-streaming-over-websocket", "1.0", "Event streaming over WebSocket"),
];

/// `POST /axis-cgi/apidiscovery.cgi`.
pub fn api_discovery(body: &[u8]) -> Response<Body> {
    answer(body, "1.0", |method, _| match method {
        "getApiList" => {
            let list: Vec<Value> = APIS
                .iter()
                .map(|(id, version, name)| {
                    json!({"id": id, "version": version, "name": name,
                        "docLink": "https://www.axis.com/vapix-library/"})
                })
                .collect();
            Ok(json!({ "apiList": list }))
        }
        "getSupportedVersions" => Ok(json!({ "apiVersions": ["1.0"] })),
        other => Err(ApiError::new(METHOD_NOT_SUPPORTED, format!("method {other:?} not supported"))),
    })
}

/// The basic device information properties of `profile`, in the device's order.
fn properties(profile: &Profile) -> Map<String, Value> {
    [
        ("Architecture", profile.architecture.as_str()),
        ("ProdNbr", &profile.prod_nbr),
        ("HardwareID", &profile.hardware_id),
        ("Version", &profile.version),
        ("ProdFullName", &profile.prod_full_name),
        ("Brand", profile.brand.vendor_text()),
        ("ProdType", &profile.prod_type),
        ("Soc", &profile.soc),
        ("SocSerialNumber", ""),
        ("WebURL", &profile.web_url),
        ("ProdVariant", &profile.prod_variant),
        ("SerialNumber", profile.serial()),
        ("ProdShortName", &profile.prod_short_name),
        ("BuildDate", &profile.build_date),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
    .collect()
}

/// `POST /axis-cgi/basicdeviceinfo.cgi`.
pub fn basic_device_info(body: &[u8], profile: &Profile) -> Response<Body> {
    answer(body, "1.1", |method, params| {
        let all = properties(profile);
        match method {
            "getAllProperties" => Ok(json!({ "propertyList": all })),
            "getProperties" => {
                let wanted = params
                    .get("propertyList")
                    .and_then(Value::as_array)
                    .ok_or_else(|| ApiError::new(INVALID_PARAMETER, "getProperties needs params.propertyList"))?;
                let mut out = Map::new();
                for name in wanted {
                    let name = name.as_str().unwrap_or_default();
                    let value = all
                        .get(name)
                        .ok_or_else(|| ApiError::new(INVALID_PARAMETER, format!("unknown property {name:?}")))?;
                    out.insert(name.to_owned(), value.clone());
                }
                Ok(json!({ "propertyList": out }))
            }
            "getSupportedVersions" => Ok(json!({ "apiVersions": ["1.1"] })),
            other => Err(ApiError::new(METHOD_NOT_SUPPORTED, format!("method {other:?} not supported"))),
        }
    })
}

/// Every parameter of the device, as `(name, value)` in `root.Group.Sub=value` order.
pub fn parameters(profile: &Profile, io: &IoPorts) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut put = |k: &str, v: &str| out.push((format!("root.{k}"), v.to_owned()));
    put("Brand.Brand", profile.brand.vendor_text());
    put("Brand.ProdFullName", &profile.prod_full_name);
    put("Brand.ProdNbr", &profile.prod_nbr);
    put("Brand.ProdShortName", &profile.prod_short_name);
    put("Brand.ProdType", &profile.prod_type);
    put("Brand.ProdVariant", &profile.prod_variant);
    put("Brand.WebURL", &profile.web_url);
    let ports = io.ports();
    let inputs = ports.iter().filter(|p| p.direction == PortDirection::Input).count();
    put("Input.NbrOfInputs", &inputs.to_string());
    put("Output.NbrOfOutputs", &(ports.len() - inputs).to_string());
    for p in &ports {
        let i = format!("IOPort.I{}", p.index);
        put(&format!("{i}.Configurable"), "no");
        match p.direction {
            PortDirection::Input => {
                put(&format!("{i}.Direction"), "input");
                put(&format!("{i}.Input.Name"), &p.name);
                put(&format!("{i}.Input.Trig"), if p.normal_state == "open" { "closed" } else { "open" });
            }
            PortDirection::Output => {
                put(&format!("{i}.Direction"), "output");
                put(&format!("{i}.Output.Active"), if p.normal_state == "open" { "closed" } else { "open" });
                put(&format!("{i}.Output.Name"), &p.name);
            }
        }
    }
    for (k, v) in [
        ("API.HTTP.AdminPath", "/"),
        ("API.HTTP.Version", "3"),
        ("API.Metadata.Metadata", "yes"),
        ("API.Metadata.Version", "1.0"),
        ("API.RTSP.RTSPAuth", "yes"),
        ("API.RTSP.Version", "2.01"),
        ("API.SIP.SIP", "yes"),
        ("API.SIP.Version", "2.0"),
        ("API.WebService.WebService", "yes"),
        ("API.WebService.ONVIF.ONVIF", "yes"),
        ("API.WebService.ONVIF.Version", "1.02"),
        ("API.WebSocket.RTSP.RTSP", "yes"),
        ("ApiDiscovery.ApiDiscovery", "yes"),
        ("Audio.Audio", "yes"),
        ("Audio.DuplexMode", "full,half,post,get"),
        ("Audio.Format", "g711"),
        ("Audio.Decoder.Format", "g711,axis-mulaw-128"),
        ("Firmware.BuildDate", &profile.build_date),
        ("Firmware.BuildNumber", &profile.build_number),
        ("Firmware.Version", &profile.version),
        ("HTTPS.HTTPS", "yes"),
        ("Image.Format", "jpeg,mjpeg"),
        ("Image.NbrOfViews", "1"),
        ("Image.Resolution", "320x240"),
        ("IO.ManualTriggerNbr", "0"),
        ("RTC.RTC", "yes"),
        ("RemoteService.RemoteService", "no"),
        ("Serial.Serial", "no"),
        ("System.Architecture", &profile.architecture),
        ("System.HardwareID", &profile.hardware_id),
        ("System.Language", "English"),
        ("System.LanguageType", "default"),
        ("System.SerialNumber", profile.serial()),
        ("System.Soc", &profile.soc),
        ("VirtualInput.VirtualInput", "yes"),
    ] {
        put(&format!("Properties.{k}"), v);
    }
    out
}

/// `GET|POST /axis-cgi/param.cgi?action=list[&group=a,b]`: `root.X=Y` lines.
pub fn param_cgi(pairs: &[(String, String)], profile: &Profile, io: &IoPorts) -> Response<Body> {
    let get = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    if get("action") != Some("list") {
        return plain(StatusCode::OK, "# Error: this device only answers action=list");
    }
    let all = parameters(profile, io);
    let groups: Vec<String> = get("group")
        .map(|g| {
            g.split(',')
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(|g| if g.starts_with("root.") || g == "root" { g.to_owned() } else { format!("root.{g}") })
                .collect()
        })
        .unwrap_or_else(|| vec!["root".to_owned()]);
    let mut text = String::new();
    for group in &groups {
        let prefix = format!("{group}.");
        let lines: Vec<&(String, String)> =
            all.iter().filter(|(k, _)| group == "root" || k.starts_with(&prefix) || k == group).collect();
        if lines.is_empty() {
            text.push_str(&format!("# Error: Error -1 getting param in group '{group}'\n"));
        }
        for (k, v) in lines {
            text.push_str(&format!("{k}={v}\n"));
        }
    }
    text_response(text)
}

/// `/axis-cgi/pwdgrp.cgi?action=get`: the user groups, every configured user an administrator.
pub fn pwdgrp(pairs: &[(String, String)], users: &[String]) -> Response<Body> {
    if !pairs.iter().any(|(k, v)| k == "action" && v == "get") {
        return plain(StatusCode::OK, "Error: this device only answers action=get");
    }
    let list = users.join(",");
    let text = format!(
        "admin=\"{list}\"\nanonymous=\"\"\napi-discovery=\"\"\naudio=\"streamer\"\nbasic-device-info=\"\"\n\
         operator=\"{list}\"\nptz=\"{list}\"\nroot=\"root\"\nusers=\"{list}\"\nviewer=\"{list}\"\ndigusers=\"{list}\"\n"
    );
    text_response(text)
}
