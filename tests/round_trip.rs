//! Property: every Call service data structure survives JSON -> simple format -> JSON, and the
//! JSON reader reads back what the JSON writer wrote.

use std::fmt::Debug;

use doorsim::model::attribute::Attribute;
use doorsim::model::audio_codec::{read_priority_list, supported_codecs};
use doorsim::model::sip_account::{MediaEncryption, SipProxy, Transport};
use doorsim::model::sip_configuration::{AccessListPolicy, StunServer, TurnServer};
use doorsim::model::{
    AudioCodec, DtmfConfiguration, DtmfEvent, DtmfTrigger, Fields, ModelResult, SipAccount, SipConfiguration,
    VmsCallConfiguration,
};
use doorsim::vapix::format::simple;
use proptest::prelude::*;
use serde::Serialize;
use serde_json::{json, Value};

/// Writes `value` under `field` as JSON and as simple-format lines, reads both back with `read`.
fn assert_round_trip<T>(value: &T, field: &str, read: impl Fn(&Fields<'_>) -> ModelResult<T>)
where
    T: Serialize + PartialEq + Debug,
{
    let json = json!({ field: value });
    let strict = read(&Fields::new(&json[field], field, false).expect("object")).expect("JSON reads back");
    assert_eq!(&strict, value, "JSON round trip");

    let lines = simple::encode(&json);
    let query = std::iter::once("action=axcall:Any".to_owned())
        .chain(lines.lines().map(str::to_owned))
        .collect::<Vec<_>>()
        .join("&");
    let request = simple::decode(&query).unwrap_or_else(|f| panic!("{f:?} decoding {query}"));
    let params = request.params.get(field).cloned().unwrap_or(Value::Null);
    let lenient =
        read(&Fields::new(&params, field, true).expect("object")).unwrap_or_else(|e| panic!("{e} reading {query}"));
    assert_eq!(&lenient, value, "simple round trip via {query}");
}

fn id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_.-]{1,24}"
}
fn text() -> impl Strategy<Value = String> {
    // Any printable text: spaces, quotes, '&', '=', '%', '+', '_', non-ASCII.
    "\\PC{0,24}"
}
fn host() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[a-z0-9.-]{1,20}(:[0-9]{1,5})?", Just("[fd12:3456:789a:1::90]".to_owned())]
}
fn attributes() -> impl Strategy<Value = Vec<Attribute>> {
    (proptest::option::of(any::<bool>()), proptest::option::of(0i64..=86_400), proptest::option::of(60i64..=86_400))
        .prop_map(|(tcp, max, reg)| {
            let mut out = Vec::new();
            if let Some(b) = tcp {
                out.push(Attribute { name: "DisableTCPSwitch".into(), value: b.to_string() });
            }
            if let Some(n) = max {
                out.push(Attribute { name: "MaxCallDuration".into(), value: n.to_string() });
            }
            if let Some(n) = reg {
                out.push(Attribute { name: "RegistrationInterval".into(), value: n.to_string() });
            }
            out
        })
}

fn sip_configuration() -> impl Strategy<Value = SipConfiguration> {
    (
        (any::<[bool; 9]>(), 1u16..=65_535, 1u16..=65_535, 512u16..=32_500, 1u32..=600),
        proptest::collection::vec("[a-z0-9.-]{1,20}", 0..3),
        proptest::collection::vec(("[a-z0-9.-]{1,20}", text(), text()), 0..3),
        proptest::collection::vec(text(), 0..3),
        proptest::collection::vec("sips?:[a-z0-9]{1,8}@[a-z0-9.]{1,12}", 0..3),
        attributes(),
    )
        .prop_filter("ports differ", |((_, a, b, _, _), ..)| a != b)
        .prop_map(
            |((flags, sip_port, sip_tls_port, rtp_half, calling_timeout), stun, turn, users, uris, attribute)| {
                SipConfiguration {
                    sip_enabled: flags[0],
                    sip_port,
                    sip_tls_port,
                    stun_enabled: flags[1],
                    stun_servers: stun.into_iter().map(|server| StunServer { server }).collect(),
                    turn_enabled: flags[2],
                    turn_servers: turn
                        .into_iter()
                        .map(|(server, username, password)| TurnServer { server, username, password })
                        .collect(),
                    ice_enabled: flags[3],
                    allow_incoming_calls: flags[4],
                    apply_user_authentication: flags[5],
                    allowed_users: users,
                    apply_allowed_uris: flags[6],
                    allowed_uris: uris.clone(),
                    attribute,
                    rtp_start_port: rtp_half * 2,
                    calling_timeout,
                    apply_access_list: flags[7],
                    access_list: uris,
                    access_list_policy: if flags[8] { AccessListPolicy::Block } else { AccessListPolicy::Allow },
                }
            },
        )
}

fn sip_account() -> impl Strategy<Value = SipAccount> {
    (
        (prop_oneof![Just(String::new()), id()], id(), prop_oneof![Just(String::new()), id()], text(), text(), text()),
        (host(), host(), host(), host()),
        (any::<[bool; 6]>(), 0usize..3, 0usize..3),
        (proptest::collection::vec(("[a-z0-9.-]{1,20}", text(), text()), 0..3), attributes(), text(), text(), text()),
        proptest::sample::subsequence(vec!["TLSv1", "TLSv11", "TLSv12"], 0..=3),
    )
        .prop_map(
            |(names, hosts, (flags, transport, encryption), (proxies, attribute, stream, cert, dtmf), protocols)| {
                let (id, user_id, authentication_id, name, password, caller_id) = names;
                let (registrar, public_domain, secondary_registrar, secondary_public_domain) = hosts;
                let media_encryption =
                    [MediaEncryption::None, MediaEncryption::SrtpBestEffort, MediaEncryption::SrtpMandatory]
                        [encryption];
                let transport = if flags[0] || media_encryption != MediaEncryption::None {
                    Transport::Tls
                } else {
                    [Transport::Udp, Transport::Tcp, Transport::Tls][transport]
                };
                SipAccount {
                    id,
                    enabled: flags[1],
                    name,
                    user_id,
                    authentication_id,
                    password,
                    caller_id,
                    registrar,
                    public_domain,
                    secondary_registrar,
                    secondary_public_domain,
                    is_default: flags[2],
                    sips_enabled: flags[0],
                    transport,
                    prioritize_ipv6: flags[3],
                    sip_proxies: proxies
                        .into_iter()
                        .map(|(server, username, password)| SipProxy { server, username, password })
                        .collect(),
                    attribute,
                    stream_parameters: stream,
                    allow_mwi: flags[4],
                    dtmf_configuration_id: if dtmf.is_empty() { String::new() } else { "conf_1".to_owned() },
                    media_encryption,
                    certificate: cert,
                    encryption_protocols: protocols.join(","),
                    verify_server_certificate: flags[5],
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn sip_configuration_round_trips(c in sip_configuration()) {
        assert_round_trip(&c, "SIPConfiguration", |f| SipConfiguration::read(f, &SipConfiguration::default()));
    }

    #[test]
    fn sip_account_round_trips(a in sip_account()) {
        assert_round_trip(&a, "SIPAccount", |f| SipAccount::read(f, None));
    }

    #[test]
    fn dtmf_objects_round_trip(
        ids in (id(), id(), id()),
        names in (text(), text()),
        sequence in "[0-9A-D*#]{1,64}",
        triggers in proptest::collection::vec(id(), 0..4),
        methods in any::<(bool, bool)>(),
    ) {
        let mut triggers = triggers;
        triggers.dedup();
        triggers.sort();
        triggers.dedup();
        assert_round_trip(&DtmfEvent { id: ids.0.clone(), name: names.0 }, "DTMFEvent", DtmfEvent::read);
        assert_round_trip(
            &DtmfTrigger { id: ids.1, dtmf_sequence: sequence, dtmf_event_id: ids.0 },
            "DTMFTrigger",
            DtmfTrigger::read,
        );
        assert_round_trip(
            &DtmfConfiguration { id: ids.2, name: names.1, dtmf_trigger_id: triggers, rfc2833: methods.0, rfc2976: methods.1 },
            "DTMFConfiguration",
            DtmfConfiguration::read,
        );
    }

    #[test]
    fn vms_call_configuration_round_trips(enabled in any::<bool>(), t in any::<(i16, i16, i16)>(), timeout in 1u32..=3600) {
        let c = VmsCallConfiguration {
            enabled,
            audio_from_device_to_network_streams: t.0.into(),
            audio_from_network_to_device_streams: t.1.into(),
            video_from_device_to_network_streams: t.2.into(),
            timeout,
        };
        assert_round_trip(&c, "VMSCallConfiguration", VmsCallConfiguration::read);
    }

    #[test]
    fn audio_codec_list_round_trips(order in Just(supported_codecs()).prop_shuffle(), n in 1usize..=3, options in text()) {
        let mut list: Vec<AudioCodec> = order.into_iter().take(n).collect();
        list[0].options = options;
        assert_round_trip(&json!({"AudioCodec": list}), "Request", |f| {
            read_priority_list(f).map(|l| json!({"AudioCodec": l}))
        });
    }
}
