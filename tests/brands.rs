//! Other brands' APIs against the real binary (issue: other door-station brands): each profile
//! serves its own vendor's API and 404 on the others'; the factory answer has the spec's shape;
//! a valid write round-trips; every invalid one gets that brand's error and changes nothing
//! (the whole `/emulator/v1/state` store compared before and after); no credentials, no answer;
//! and registration set through the brand's API alone reaches kamailio with digest auth.

mod common;

use std::process::Command;

use common::kamailio::{self, Kamailio};
use common::{free_port, free_sip_ports, Doorsim};
use serde_json::{json, Value};

fn start(profile: &str) -> (Doorsim, u16) {
    let sip = free_sip_ports();
    (Doorsim::start(&["--profile", profile, "--sip-port", &sip.to_string()]), sip)
}

/// `curl` as a user runs it: `--anyauth -u root:pass` plus `args`; the HTTP status and body.
fn curl(d: &Doorsim, path: &str, args: &[&str]) -> (u16, Value) {
    let out = Command::new("curl")
        .args(["-s", "--anyauth", "-u", "root:pass", "-w", "\n%{http_code}"])
        .args(args)
        .arg(format!("{}{path}", d.base))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').expect("status line");
    (status.trim().parse().expect("status"), serde_json::from_str(body).unwrap_or(Value::Null))
}

/// The example of `GET /api/phone/config` in the 2N HTTP API manual (5.6.3), as printed.
const TWO_N_FACTORY: &str = r#"{ "success": true, "result": { "accounts": [ { "account": 1, "enabled": false, "displayName": "", "sipNumber": "", "domain": "", "domainPort": "", "authId": "", "proxyAddress": "", "proxyPort": "", "registrationEnabled": false, "registrarAddress": "", "registrarPort": "", "answerMode": "1" }, { "account": 2, "enabled": false, "displayName": "", "sipNumber": "", "domain": "", "domainPort": "", "authId": "", "proxyAddress": "", "proxyPort": "", "registrationEnabled": false, "registrarAddress": "", "registrarPort": "", "answerMode": "1" } ] } }"#;

#[tokio::test]
async fn a_2n_device_serves_its_api_as_the_manual_shows_and_no_other() {
    let (d, _) = start("2N-IP-Verso");
    let factory = d.request("GET", "/api/phone/config", None).await;
    assert_eq!(factory.status, 200);
    let expected: Value = serde_json::from_str(TWO_N_FACTORY).expect("the manual's example");
    assert_eq!(factory.json(), expected, "field by field, order included");
    let text = serde_json::to_string(&factory.json()).expect("text");
    assert_eq!(text, serde_json::to_string(&expected).expect("text"), "the manual's field order");

    let one = d.request("GET", "/api/phone/config?account=2", None).await.json();
    assert_eq!(one["result"]["accounts"], json!([expected["result"]["accounts"][1]]));
    let bad = d.request("GET", "/api/phone/config?account=3", None).await.json();
    assert_eq!((bad["success"].clone(), bad["error"]["code"].clone()), (json!(false), json!(12)));
    assert_eq!(bad["error"]["param"], "account");
    let wrong_method = d.request("POST", "/api/phone/config", Some("{}")).await.json();
    assert_eq!(wrong_method["error"]["code"], 3);

    assert_eq!(d.request("POST", "/vapix/call", Some(r#"{"axcall:GetSIPConfiguration":{}}"#)).await.status, 404);
    assert_eq!(d.request("GET", "/api/v1.cgi/intercom/sip/config", None).await.status, 404);
    let state = d.state().await;
    assert_eq!(state["Brand"], "2N");
    assert_eq!(state["Store"]["SIPConfiguration"]["SIPEnabled"], true, "a 2N device listens from the start");

    let anonymous = reqwest::get(format!("{}/api/phone/config", d.base)).await.expect("request");
    assert_eq!(anonymous.status(), 401);
    let (status, _) = curl(&d, "/api/phone/config", &["-u", "root:wrong"]);
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_2n_upload_round_trips_and_a_bad_one_changes_nothing() {
    let (d, _) = start("2N-IP-Verso");
    let file = std::env::temp_dir().join(format!("doorsim-2n-{}.json", std::process::id()));
    let upload = json!({"accounts": [{"account": 1, "enabled": true, "displayName": "Front door", "sipNumber": "4001",
        "password": "secret", "domain": "pbx.example.com", "domainPort": "5062", "authId": "auth4001",
        "proxyAddress": "proxy.example.com", "proxyPort": "5064", "registrationEnabled": false,
        "registrarAddress": "reg.example.com", "registrarPort": "5066", "answerMode": "0"}]});
    std::fs::write(&file, upload.to_string()).expect("file");
    // What the manual says a user runs: a multipart upload of the file.
    let blob = format!("blob-json=@{}", file.display());
    let (status, put) = curl(&d, "/api/phone/config", &["-X", "PUT", "-F", &blob]);
    assert_eq!((status, put), (200, json!({"success": true})));
    let got = d.request("GET", "/api/phone/config?account=1", None).await.json();
    let mut expected = upload["accounts"][0].clone();
    expected.as_object_mut().expect("object").remove("password");
    assert_eq!(got["result"]["accounts"][0], expected, "everything but the password comes back");
    assert!(!got.to_string().contains("secret"), "GET never shows the password");
    let store = d.store().await;
    let core = &store["SIPAccounts"]["1"];
    assert_eq!((core["UserId"].clone(), core["Password"].clone()), (json!("4001"), json!("secret")));
    assert_eq!(core["Registrar"], Value::Null, "registration off: the core account does not register");

    // The whole GET answer is accepted too, as a plain JSON body.
    let mut whole = got.clone();
    whole["result"]["accounts"][0]["sipNumber"] = json!("4002");
    let (status, put) =
        curl(&d, "/api/phone/config", &["-X", "PUT", "-H", "Content-Type: application/json", "-d", &whole.to_string()]);
    assert_eq!((status, put["success"].clone()), (200, json!(true)));
    assert_eq!(d.store().await["SIPAccounts"]["1"]["UserId"], "4002");

    let before = d.store().await;
    let refused = [
        (json!({"accounts": [{"account": 1, "registrarPort": "70000"}]}), 12, "registrarPort"),
        (json!({"accounts": [{"account": 3, "enabled": true}]}), 12, "account"),
        (json!({"accounts": [{"enabled": true}]}), 11, "account"),
        (json!({"accounts": [{"account": 2}]}), 11, "account parameters"),
        (json!({"accounts": [{"account": 1, "enabled": "maybe"}]}), 12, "enabled"),
        (json!({"accounts": [{"account": 1, "sipNumber": "a b"}]}), 12, "sipNumber"),
        (json!({"accounts": [{"account": 1, "answerMode": "9"}]}), 12, "answerMode"),
        (json!({"accounts": [{"account": 1, "colour": "red"}]}), 12, "colour"),
        // The first account is valid: the second's error still refuses the whole upload.
        (json!({"accounts": [{"account": 1, "sipNumber": "5000"}, {"account": 2, "proxyPort": "x"}]}), 12, "proxyPort"),
        (json!({"nothing": []}), 11, "accounts"),
    ];
    for (body, code, param) in refused {
        let (status, answer) = curl(&d, "/api/phone/config", &["-X", "PUT", "-d", &body.to_string()]);
        assert_eq!(status, 200, "2N answers errors with HTTP 200: {body}");
        assert_eq!(answer["success"], false, "{body}");
        assert_eq!(
            (answer["error"]["code"].clone(), answer["error"]["param"].clone()),
            (json!(code), json!(param)),
            "{body}"
        );
        assert!(answer["error"]["description"].is_string());
    }
    let (_, answer) = curl(&d, "/api/phone/config", &["-X", "PUT", "-d", "{not json"]);
    assert_eq!((answer["error"]["code"].clone(), answer["error"]["param"].clone()), (json!(12), json!("blob-json")));
    let (_, answer) = curl(&d, "/api/phone/config", &["-X", "PUT", "-F", "other=1"]);
    assert_eq!((answer["error"]["code"].clone(), answer["error"]["param"].clone()), (json!(11), json!("blob-json")));
    assert_eq!(d.store().await, before, "no refused upload changed anything");
    let _ = std::fs::remove_file(file);
}

#[tokio::test]
async fn a_v1cgi_panel_serves_its_settings_and_refuses_bad_ones_whole() {
    let (d, _) = start("V1CGI-Panel");
    let factory = d.request("GET", "/api/v1.cgi/intercom/sip/config", None).await;
    assert_eq!(factory.status, 200);
    let keys: Vec<String> = factory.json().as_object().expect("object").keys().cloned().collect();
    assert_eq!(keys, ["iPort", "sDomain", "sPassword", "sProtocol", "sProxy", "sRealm", "sUser"], "the spec's fields");
    assert_eq!(factory.json()["iPort"], 5060);
    assert_eq!(d.state().await["Brand"], "V1CGI");
    assert_eq!(d.request("GET", "/api/phone/config", None).await.status, 404);
    assert_eq!(d.request("POST", "/vapix/call", Some("{}")).await.status, 404);

    let example = json!({"oSip": {"sUser": "alice", "sPassword": "secret", "sDomain": "example.com", "sProxy": "",
        "sRealm": "*", "sProtocol": "tcp", "iPort": 5062}});
    let set = d.request("POST", "/api/v1.cgi/intercom/sip/config", Some(&example.to_string())).await;
    assert_eq!(set.status, 200);
    let got = d.request("GET", "/api/v1.cgi/intercom/sip/config", None).await.json();
    assert_eq!(got, example["oSip"], "the spec's example round-trips");
    // A partial object changes only what it names.
    let partial = json!({"oSip": {"sUser": "bob"}});
    d.request("POST", "/api/v1.cgi/intercom/sip/config", Some(&partial.to_string())).await;
    let mut expected = example["oSip"].clone();
    expected["sUser"] = json!("bob");
    assert_eq!(d.request("GET", "/api/v1.cgi/intercom/sip/config", None).await.json(), expected);

    let before = d.store().await;
    for (body, field) in [
        (json!({"oSip": {"iPort": 0}}), "iPort"),
        (json!({"oSip": {"iPort": 65536}}), "iPort"),
        (json!({"oSip": {"iPort": "5060"}}), "iPort"),
        (json!({"oSip": {"sProtocol": "sctp"}}), "sProtocol"),
        (json!({"oSip": {"sUser": 7}}), "sUser"),
        (json!({"oSip": {"sUser": "carol", "sDomain": "a b"}}), "sDomain"),
        (json!({"oSip": {"sColour": "red"}}), "sColour"),
        (json!({"sip": {}}), "oSip"),
    ] {
        let a = d.request("POST", "/api/v1.cgi/intercom/sip/config", Some(&body.to_string())).await;
        assert_eq!(a.status, 400, "{body}");
        let error = a.json()["error"].as_str().unwrap_or_default().to_owned();
        assert!(error.contains(field), "the error names {field}: {error}");
    }
    let a = d.request("POST", "/api/v1.cgi/intercom/sip/config", Some("{oops")).await;
    assert_eq!(a.status, 400);
    assert_eq!(d.store().await, before, "no refused request changed anything");
    let anonymous = reqwest::get(format!("{}/api/v1.cgi/intercom/sip/config", d.base)).await.expect("request");
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn an_axis_device_has_no_other_brands_api() {
    let d = Doorsim::start(&[]);
    assert_eq!(d.request("GET", "/api/phone/config", None).await.status, 404);
    assert_eq!(d.request("GET", "/api/v1.cgi/intercom/sip/config", None).await.status, 404);
    assert_eq!(d.state().await["Brand"], "Axis");
}

async fn wait_held(registrar: u16, user: &str, held: bool) {
    let what = format!("kamailio {} {user}", if held { "holding" } else { "dropping" });
    common::wait_for(&what, async || kamailio::holds(registrar, user).await == held).await;
}

#[tokio::test]
async fn registration_set_through_the_2n_api_reaches_kamailio_and_is_withdrawn() {
    let registrar = free_port();
    let _kamailio = Kamailio::start(include_str!("kamailio/fleet.cfg"), registrar, "secure");
    let (d, _) = start("2N-IP-Verso");
    let account = |enabled: bool| {
        json!({"accounts": [{"account": 1, "enabled": true, "sipNumber": "7001", "password": "secure",
            "domain": "127.0.0.1", "registrationEnabled": enabled, "registrarAddress": "127.0.0.1",
            "registrarPort": registrar.to_string()}]})
    };
    let (_, put) = curl(&d, "/api/phone/config", &["-X", "PUT", "-d", &account(true).to_string()]);
    assert_eq!(put["success"], true);
    wait_held(registrar, "7001", true).await;
    let status =
        d.state().await["SipAccounts"].as_array().expect("accounts").iter().find(|a| a["SIPAccountId"] == "1").cloned();
    assert_eq!(status.map(|s| s["Status"].clone()), Some(json!(200)), "the state shows the registration");
    // Registration off through the same API: the device un-registers.
    let (_, put) = curl(&d, "/api/phone/config", &["-X", "PUT", "-d", &account(false).to_string()]);
    assert_eq!(put["success"], true);
    wait_held(registrar, "7001", false).await;
}

#[tokio::test]
async fn registration_set_through_the_v1cgi_api_reaches_kamailio() {
    let registrar = free_port();
    let _kamailio = Kamailio::start(include_str!("kamailio/fleet.cfg"), registrar, "secure");
    let (d, _) = start("V1CGI-Panel");
    let settings =
        json!({"oSip": {"sUser": "7002", "sPassword": "secure", "sDomain": "127.0.0.1", "iPort": registrar}});
    assert_eq!(d.request("POST", "/api/v1.cgi/intercom/sip/config", Some(&settings.to_string())).await.status, 200);
    wait_held(registrar, "7002", true).await;
    let clear = json!({"oSip": {"sDomain": ""}});
    assert_eq!(d.request("POST", "/api/v1.cgi/intercom/sip/config", Some(&clear.to_string())).await.status, 200);
    wait_held(registrar, "7002", false).await;
}

/// BAS-IP's login: the MD5 hex of the first user's password (`pass`) for a bearer token.
async fn bas_ip_token(d: &Doorsim) -> String {
    let hashed = "1a1dc91c907325c69271ddf0c944bc72"; // md5("pass")
    let login = reqwest::get(format!("{}/api/v0/login?username=admin&password={hashed}", d.base)).await.expect("login");
    assert_eq!(login.status(), 200);
    let body: Value = login.json().await.expect("json");
    assert_eq!(body["account_type"], "admin");
    body["token"].as_str().expect("a token").to_owned()
}

async fn bas_ip(d: &Doorsim, token: &str, body: Option<&Value>) -> (u16, Value) {
    let client = reqwest::Client::new();
    let url = format!("{}/api/v0/sip/settings", d.base);
    let request = match body {
        Some(b) => client.post(url).body(b.to_string()),
        None => client.get(url),
    };
    let answer = request.bearer_auth(token).send().await.expect("request");
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

/// The second example of the BAS-IP schema, as printed.
const BAS_IP_EXAMPLE: &str = r#"{"proxy": "sip:sip.bas-ip.com", "realm": "sip.bas-ip.com", "user": "101", "password": "123abc", "timeout": 120, "transport": "udp", "enable": true, "user_id": "user123", "is_enable_ring_code": false, "registration_interval": 30, "stun": {"ip": "stun.l.google.com", "port": 19302}}"#;

#[tokio::test]
async fn a_bas_ip_panel_logs_in_like_the_device_and_enforces_its_schema() {
    let (d, _) = start("BAS-IP-AA-07");
    let wrong =
        reqwest::get(format!("{}/api/v0/login?username=admin&password=00000000000000000000000000000000", d.base))
            .await
            .expect("login");
    assert_eq!(wrong.status(), 401);
    let (status, body) = bas_ip(&d, "not-a-token", None).await;
    assert_eq!((status, body), (401, json!({"error": "Log In"})));
    let digest = d.request("GET", "/api/v0/sip/settings", None).await;
    assert_eq!(digest.status, 401, "HTTP credentials are not a login");
    assert_eq!(d.request("POST", "/vapix/call", Some("{}")).await.status, 404);
    assert_eq!(d.state().await["Brand"], "BAS-IP");

    let token = bas_ip_token(&d).await;
    let (status, factory) = bas_ip(&d, &token, None).await;
    assert_eq!(status, 200);
    let keys: Vec<&str> = factory.as_object().expect("object").keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "enable",
            "proxy",
            "realm",
            "user",
            "password",
            "transport",
            "user_id",
            "is_enable_ring_code",
            "timeout",
            "registration_interval",
            "stun"
        ],
        "the schema's fields in the first example's order"
    );
    assert_eq!((factory["timeout"].clone(), factory["stun"]["ip"].clone()), (json!(120), json!("")));

    let example: Value = serde_json::from_str(BAS_IP_EXAMPLE).expect("the example");
    let (status, _) = bas_ip(&d, &token, Some(&example)).await;
    assert_eq!(status, 200);
    let (_, got) = bas_ip(&d, &token, None).await;
    assert_eq!(got, example, "the example round-trips, password included");
    let store = d.store().await;
    assert_eq!(store["SIPAccounts"]["1"]["Registrar"], "sip.bas-ip.com");

    let before = d.store().await;
    let with = |name: &str, value: Value| {
        let mut body = example.clone();
        body[name] = value;
        body
    };
    let without = |name: &str| {
        let mut body = example.clone();
        body.as_object_mut().expect("object").remove(name);
        body
    };
    let refused = [
        (without("user"), "Wrong JSON body: no value for `user`"),
        (without("enable"), "Wrong JSON body: no value for `enable`"),
        (without("transport"), "Wrong JSON body: no value for `transport`"),
        (with("enable", json!("yes")), "Wrong JSON body: value `enable` was of the wrong type"),
        (with("timeout", json!("120")), "Wrong JSON body: value `timeout` was of the wrong type"),
        (with("timeout", json!(100)), "Wrong `timeout` value"),
        (with("registration_interval", json!(20)), "Wrong `registration_interval` value"),
        (with("registration_interval", json!(901)), "Wrong `registration_interval` value"),
        (with("password", json!("12345")), "Wrong `password` value"),
        (with("password", json!("pässword")), "Wrong `password` value"),
        (with("user", json!("x".repeat(32))), "Wrong `user` value"),
        (with("user", json!("a:b")), "Wrong `user` value"),
        (with("transport", json!("sctp")), "Wrong `transport` value"),
        (with("stun", json!({"ip": "stun.example.com", "port": 70000})), "Wrong `stun` value"),
    ];
    for (body, error) in refused {
        let (status, answer) = bas_ip(&d, &token, Some(&body)).await;
        assert_eq!((status, answer), (400, json!({ "error": error })), "{body}");
    }
    let client = reqwest::Client::new();
    let garbage = client.post(format!("{}/api/v0/sip/settings", d.base)).bearer_auth(&token).body("{oops").send().await;
    let garbage = garbage.expect("request");
    assert_eq!(garbage.status(), 400);
    assert_eq!(garbage.json::<Value>().await.expect("json"), json!({"error": "Wrong JSON body"}));
    assert_eq!(d.store().await, before, "no refused request changed anything");
}

#[tokio::test]
async fn registration_set_through_the_bas_ip_api_reaches_kamailio() {
    let registrar = free_port();
    let _kamailio = Kamailio::start(include_str!("kamailio/fleet.cfg"), registrar, "secure");
    let (d, _) = start("BAS-IP-AA-07");
    let token = bas_ip_token(&d).await;
    let settings = |enable: bool| {
        json!({"enable": enable, "user": "7003", "password": "secure", "transport": "udp",
            "realm": format!("127.0.0.1:{registrar}"), "registration_interval": 30})
    };
    assert_eq!(bas_ip(&d, &token, Some(&settings(true))).await.0, 200);
    wait_held(registrar, "7003", true).await;
    assert_eq!(bas_ip(&d, &token, Some(&settings(false))).await.0, 200);
    wait_held(registrar, "7003", false).await;
}
