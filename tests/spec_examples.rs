//! The examples of the Call service API spec ("JSON and simplified key-value requests",
//! "Common examples", and each command's section), sent as written to a running doorsim.

mod common;

use common::{assert_fault, Doorsim};
use serde_json::{json, Value};

#[tokio::test]
async fn key_value_requests_get_sip_configuration_json() {
    let d = Doorsim::start_on_own_address(&[]);
    let a = d.call("GetSIPConfiguration", json!({})).await;
    assert_eq!(a.status, 200);
    assert!(a.content_type.starts_with("application/json"));
    let c = &a.json()["SIPConfiguration"];
    for (k, v) in [
        ("SIPEnabled", json!(false)),
        ("TURNServers", json!([])),
        ("STUNServers", json!([])),
        ("ICEEnabled", json!(false)),
        ("AllowIncomingCalls", json!(false)),
        ("TURNEnabled", json!(false)),
        ("STUNEnabled", json!(false)),
        ("ApplyUserAuthentication", json!(false)),
        ("AllowedUsers", json!([])),
        ("SIPPort", json!(5060)),
        ("SIPTLSPort", json!(5061)),
        ("ApplyAllowedURIs", json!(false)),
        ("AllowedURIs", json!([])),
        ("RTPStartPort", json!(4000)),
        ("CallingTimeout", json!(60)),
    ] {
        assert_eq!(c[k], v, "{k}");
    }
}

#[tokio::test]
async fn key_value_requests_get_sip_configuration_simple() {
    let d = Doorsim::start_on_own_address(&[]);
    let a = d.simple("GetSIPConfiguration", "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    for (k, v) in [
        ("SIPConfiguration_SIPEnabled", "false"),
        ("SIPConfiguration_SIPPort", "5060"),
        ("SIPConfiguration_SIPTLSPort", "5061"),
        ("SIPConfiguration_STUNEnabled", "false"),
        ("SIPConfiguration_TURNEnabled", "false"),
        ("SIPConfiguration_ICEEnabled", "false"),
        ("SIPConfiguration_AllowIncomingCalls", "false"),
        ("SIPConfiguration_ApplyUserAuthentication", "false"),
        ("SIPConfiguration_ApplyAllowedURIs", "false"),
    ] {
        assert_eq!(a.line(k).as_deref(), Some(v), "{k} in\n{}", a.body);
    }
    // Empty lists write no line, as in the spec's example.
    assert!(a.line("SIPConfiguration_TURNServers").is_none());
    assert!(!a.body.contains("AllowedURIs_"));
}

/// The spec's list example: five accounts, read back in both formats.
#[tokio::test]
async fn key_value_requests_list_of_sip_accounts() {
    let d = Doorsim::start_on_own_address(&[]);
    for id in ["internal_config", "remote_config"] {
        d.ok("SetDTMFConfiguration", json!({"DTMFConfiguration": {"Id": id, "Name": id, "DTMFTriggerId": []}})).await;
    }
    let accounts = json!([
        {"Id": "sip_account_0", "Username": "local_account_ipv4_udp", "Password": null, "Registrar": null,
         "PublicDomain": null, "IsDefault": false, "Transport": "udp", "CallerId": "local_account_ipv4_udp"},
        {"Id": "sip_account_1", "Username": "1234", "Password": "password", "Registrar": "192.168.0.91",
         "PublicDomain": "exampledomain.com", "IsDefault": true, "Transport": "udp", "CallerId": "Entrance Door",
         "DTMFConfigurationId": "internal_config"},
        {"Id": "sip_account_2", "Username": "987654", "Password": "password2", "Registrar": null,
         "PublicDomain": "examplesecurity.se", "IsDefault": false, "Transport": "udp",
         "CallerId": "Entrance Door (Axis)", "DTMFConfigurationId": "remote_config"},
        {"Id": "sip_account_3", "Username": "12309", "Password": "password3", "Registrar": null,
         "PublicDomain": "[fd12:3456:789a:1::90]", "SecondaryRegistrar": "", "SecondaryPublicDomain": "",
         "PrioritizeIPv6": true, "IsDefault": false, "Transport": "udp", "CallerId": "Entrance Door (Axis)",
         "DTMFConfigurationId": "remote_config"},
        {"Id": "sip_account_4", "Username": "local_account_ipv6_tcp", "Password": null, "Registrar": null,
         "PublicDomain": null, "PrioritizeIPv6": true, "IsDefault": false, "Transport": "tcp",
         "CallerId": "local_account_ipv6_tcp"}
    ]);
    let ids = d.ok("SetSIPAccounts", json!({"SIPAccount": accounts})).await;
    assert_eq!(
        ids["SIPAccountId"],
        json!(["sip_account_0", "sip_account_1", "sip_account_2", "sip_account_3", "sip_account_4"])
    );
    d.ok("RemoveSIPAccount", json!({"SIPAccountId": "peer-to-peer"})).await;

    let simple = d.simple("GetSIPAccounts", "").await;
    assert_eq!(simple.status, 200);
    for (k, v) in [
        ("SIPAccount_0_Id", "\"sip_account_0\""),
        ("SIPAccount_0_UserId", "\"local_account_ipv4_udp\""),
        ("SIPAccount_0_Password", "null"),
        ("SIPAccount_0_Registrar", "null"),
        ("SIPAccount_0_PublicDomain", "null"),
        ("SIPAccount_0_IsDefault", "false"),
        ("SIPAccount_0_Transport", "\"udp\""),
        ("SIPAccount_1_Registrar", "\"192.168.0.91\""),
        ("SIPAccount_1_IsDefault", "true"),
        ("SIPAccount_1_CallerId", "\"Entrance+Door\""),
        ("SIPAccount_1_DTMFConfigurationId", "\"internal_config\""),
        ("SIPAccount_2_CallerId", "\"Entrance+Door+(Axis)\""),
        ("SIPAccount_3_PublicDomain", "\"[fd12:3456:789a:1::90]\""),
        ("SIPAccount_3_PrioritizeIPv6", "true"),
        ("SIPAccount_4_Transport", "\"tcp\""),
    ] {
        assert_eq!(simple.line(k).as_deref(), Some(v), "{k} in\n{}", simple.body);
    }
    // The same data in JSON, with `UserId` written (never the `Username` alias).
    let list = d.ok("GetSIPAccounts", json!({})).await["SIPAccount"].clone();
    assert_eq!(list.as_array().map(Vec::len), Some(5));
    assert_eq!(list[0]["Password"], json!(null));
    assert_eq!(list[1]["UserId"], "1234");
    assert_eq!(list[1]["PublicDomain"], "exampledomain.com");
    assert!(list[1].get("Username").is_none());
    assert_eq!(list[4]["PrioritizeIPv6"], true);
}

#[tokio::test]
async fn fault_example_has_the_spec_fields_in_both_formats() {
    let d = Doorsim::start_on_own_address(&[]);
    let a = d.call("PerformSpeakerTest", json!({})).await;
    assert_fault(&a, "ter:ActionNotSupported", Some("ter:NotSupported"));
    let keys: Vec<String> = a.json().as_object().expect("object").keys().cloned().collect();
    assert_eq!(keys, ["Fault", "FaultCode", "FaultSubCode", "FaultReason", "FaultMsg"]);
    let s = d.simple("PerformSpeakerTest", "").await;
    assert_eq!(s.status, 400);
    let keys: Vec<String> = s.lines().into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["Fault", "FaultCode", "FaultSubCode", "FaultReason", "FaultMsg"]);
    assert_eq!(s.line("Fault").as_deref(), Some("\"env:Receiver\""));
}

#[tokio::test]
async fn common_examples_enable_sip() {
    let d = Doorsim::start_on_own_address(&[]);
    let mut config = d.ok("GetSIPConfiguration", json!({})).await["SIPConfiguration"].clone();
    config["SIPEnabled"] = json!(true);
    assert_eq!(d.ok("SetSIPConfiguration", json!({"SIPConfiguration": config})).await, json!({}));
    // The request exactly as the spec writes it.
    let written = json!({"SIPConfiguration": {"SIPEnabled": true, "TURNServers": [], "STUNServers": [],
        "ICEEnabled": false, "AllowIncomingCalls": false, "TURNEnabled": false, "STUNEnabled": false,
        "ApplyUserAuthentication": false, "AllowedUsers": [], "SIPPort": 5060, "SIPTLSPort": 5061,
        "ApplyAllowedURIs": false, "AllowedURIs": []}});
    assert_eq!(d.ok("SetSIPConfiguration", written).await, json!({}));
    assert_eq!(d.ok("GetSIPConfiguration", json!({})).await["SIPConfiguration"]["SIPEnabled"], true);
}

#[tokio::test]
async fn set_sip_configuration_keep_current() {
    let d = Doorsim::start_on_own_address(&[]);
    d.ok("SetSIPConfiguration", json!({"SIPConfiguration": {"SIPEnabled": true, "CallingTimeout": 120}})).await;
    d.ok("SetSIPConfiguration", json!({"SIPConfiguration": {"AllowIncomingCalls": true}})).await;
    let c = d.ok("GetSIPConfiguration", json!({})).await["SIPConfiguration"].clone();
    assert_eq!((c["SIPEnabled"].clone(), c["CallingTimeout"].clone()), (json!(true), json!(120)));
    d.ok("SetSIPConfiguration", json!({"KeepCurrent": false, "SIPConfiguration": {"AllowIncomingCalls": true}})).await;
    let c = d.ok("GetSIPConfiguration", json!({})).await["SIPConfiguration"].clone();
    assert_eq!((c["SIPEnabled"].clone(), c["CallingTimeout"].clone()), (json!(false), json!(60)));
    assert_eq!(c["AllowIncomingCalls"], true);
    // Access list with policy, in the simple format.
    let a = d
        .simple(
            "SetSIPConfiguration",
            "SIPConfiguration_ApplyAccessList=true&SIPConfiguration_AccessList_0=sip:6002@pbx.local\
             &SIPConfiguration_AccessListPolicy=Block&SIPConfiguration_CallingTimeout=600",
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let c = d.ok("GetSIPConfiguration", json!({})).await["SIPConfiguration"].clone();
    assert_eq!(c["AccessList"], json!(["sip:6002@pbx.local"]));
    assert_eq!(c["AccessListPolicy"], "Block");
    assert_eq!(c["CallingTimeout"], 600);
}

/// A fresh device with SIP enabled.
async fn sip_enabled_device() -> Doorsim {
    let d = Doorsim::start_on_own_address(&[]);
    d.ok("SetSIPConfiguration", json!({"SIPConfiguration": {"SIPEnabled": true}})).await;
    d
}

#[tokio::test]
async fn common_examples_add_a_peer_to_peer_account() {
    let d = sip_enabled_device().await;
    let r = d.ok("SetSIPAccount", json!({"SIPAccount": {"UserId": "peer-to-peer"}})).await;
    assert_eq!(r, json!({"SIPAccountId": "sip_account_0"}));
    // The spec's device had no other account; remove the factory one so the new one is default.
    d.ok("RemoveSIPAccount", json!({"SIPAccountId": "peer-to-peer"})).await;
    let s = d.ok("GetSIPAccountStatus", json!({"SIPAccountId": "sip_account_0"})).await;
    assert_eq!(
        s,
        json!({"SIPAccountStatus": {"SIPAccountId": "sip_account_0", "SIPURI": format!("sip:{}:5060", d.ip()),
            "IsDefault": true, "RegURI": "", "Status": 0, "StatusText": "Does not register"}})
    );

    let d = sip_enabled_device().await;
    let r = d
        .request("GET", "/vapix/call?format=simple&action=axcall:SetSIPAccount&SIPAccount_UserId=peer-to-peer", None)
        .await;
    assert_eq!(r.body, "SIPAccountId=\"sip_account_0\"\n");
    let s = d.simple("GetSIPAccountStatus", "SIPAccountId=sip_account_0").await;
    assert_eq!(s.line("SIPAccountStatus_SIPAccountId").as_deref(), Some("\"sip_account_0\""));
    assert_eq!(s.line("SIPAccountStatus_SIPURI"), Some(format!("\"sip:{}:5060\"", d.ip())));
    assert_eq!(s.line("SIPAccountStatus_RegURI").as_deref(), Some("null"));
    assert_eq!(s.line("SIPAccountStatus_Status").as_deref(), Some("0"));
    assert_eq!(s.line("SIPAccountStatus_StatusText").as_deref(), Some("\"Does+not+register\""));
}

#[tokio::test]
async fn sip_account_status_sip_disabled() {
    let d = Doorsim::start_on_own_address(&[]);
    let s = d.ok("GetSIPAccountStatuses", json!({})).await;
    assert_eq!(s["SIPAccountStatus"][0]["StatusText"], "SIP disabled");
    assert_eq!(s["SIPAccountStatus"][0]["SIPAccountId"], "peer-to-peer");
}

#[tokio::test]
async fn common_examples_add_a_registered_sip_account() {
    let d = Doorsim::start_on_own_address(&[]);
    let r = d
        .ok(
            "SetSIPAccount",
            json!({"SIPAccount": {"UserId": "6001", "Password": "secure",
            "Registrar": "192.168.0.1", "PublicDomain": "example.axis.com"}}),
        )
        .await;
    assert_eq!(r, json!({"SIPAccountId": "sip_account_0"}));
    let s = d.ok("GetSIPAccountStatus", json!({"SIPAccountId": "sip_account_0"})).await["SIPAccountStatus"].clone();
    assert_eq!(s["SIPAccountId"], "sip_account_0");
    assert_eq!(s["SIPURI"], "sip:6001@example.axis.com");
    // The spec's example: the new account is the default (the factory account yields it).
    assert_eq!(s["IsDefault"], true);
    let p2p = d.ok("GetSIPAccountStatus", json!({"SIPAccountId": "peer-to-peer"})).await["SIPAccountStatus"].clone();
    assert_eq!(p2p["IsDefault"], false);
    // Status 200 "OK" needs a real registration (SIP user agent); SIP is disabled here.
    assert_eq!(s["StatusText"], "SIP disabled");
    // A second account does not take the default; an explicit IsDefault does.
    d.ok("SetSIPAccount", json!({"SIPAccount": {"UserId": "6002"}})).await;
    let default = |v: Value| {
        v["SIPAccount"].as_array().and_then(|a| a.iter().find(|x| x["IsDefault"] == true).map(|x| x["Id"].clone()))
    };
    assert_eq!(default(d.ok("GetSIPAccounts", json!({})).await), Some(json!("sip_account_0")));
    d.ok("SetSIPAccount", json!({"SIPAccount": {"Id": "sip_account_1", "UserId": "6002", "IsDefault": true}})).await;
    assert_eq!(default(d.ok("GetSIPAccounts", json!({})).await), Some(json!("sip_account_1")));
}

#[tokio::test]
async fn common_examples_registered_account_with_stream_parameters() {
    let d = Doorsim::start_on_own_address(&[]);
    let r = d
        .ok(
            "SetSIPAccount",
            json!({"SIPAccount": {"UserId": "6001", "Password": "secure",
            "Registrar": "192.168.0.1", "PublicDomain": "example.axis.com"},
            "StreamParameters": "resolution=640x480&fps=25"}),
        )
        .await;
    assert_eq!(r, json!({"SIPAccountId": "sip_account_0"}));
    let a = d.ok("GetSIPAccount", json!({"SIPAccountId": "sip_account_0"})).await["SIPAccount"].clone();
    assert_eq!(a["StreamParameters"], "resolution=640x480&fps=25");
}

#[tokio::test]
async fn common_examples_registered_account_with_sip_proxies() {
    let d = Doorsim::start_on_own_address(&[]);
    let r = d
        .ok(
            "SetSIPAccount",
            json!({"SIPAccount": {"UserId": "6001", "Password": "secure",
            "Registrar": "272.25.25.3", "SIPAccount": [
                {"Server": "192.168.0.1", "Username": "username_proxy1", "Password": "password_proxy1"},
                {"Server": "10.23.23.2", "Username": "username_proxy2", "Password": "password_proxy2"}]}}),
        )
        .await;
    assert_eq!(r, json!({"SIPAccountId": "sip_account_0"}));
    let a = d.ok("GetSIPAccount", json!({"SIPAccountId": "sip_account_0"})).await["SIPAccount"].clone();
    assert_eq!(a["SIPProxies"][0]["Server"], "192.168.0.1");
    assert_eq!(a["SIPProxies"][1]["Username"], "username_proxy2");
    assert!(a.get("SIPAccount").is_none());
}

#[tokio::test]
async fn common_examples_set_up_a_dtmf_event() {
    let d = Doorsim::start_on_own_address(&[]);
    let ev = d.ok("SetDTMFEvent", json!({"DTMFEvent": {"Name": "OpenDoorEvent", "Enabled": true}})).await;
    assert_eq!(ev, json!({"DTMFEventId": "dtmf_event_0"}));
    let tr =
        d.ok("SetDTMFTrigger", json!({"DTMFTrigger": {"DTMFSequence": "#1234#", "DTMFEventId": "dtmf_event_0"}})).await;
    assert_eq!(tr, json!({"DTMFTriggerId": "dtmf_trigger_0"}));
    let conf = d
        .ok(
            "SetDTMFConfiguration",
            json!({"DTMFConfiguration": {"Name": "OpenDoorDTMFConf", "DTMFTriggerId": ["dtmf_trigger_0"]}}),
        )
        .await;
    assert_eq!(conf, json!({"DTMFConfigurationId": "dtmf_config_0"}));
    let mut account = d.ok("GetSIPAccount", json!({"SIPAccountId": "peer-to-peer"})).await["SIPAccount"].clone();
    account["DTMFConfigurationId"] = json!("dtmf_config_0");
    d.ok("SetSIPAccount", json!({"SIPAccount": account})).await;

    let state = d.state().await["Store"].clone();
    assert_eq!(state["SIPAccounts"]["peer-to-peer"]["DTMFConfigurationId"], "dtmf_config_0");
    assert_eq!(
        d.ok("GetDTMFConfiguration", json!({"DTMFConfigurationId": "dtmf_config_0"})).await,
        json!({"DTMFConfiguration": {"Id": "dtmf_config_0", "Name": "OpenDoorDTMFConf",
            "DTMFTriggerId": ["dtmf_trigger_0"], "RFC2833": true, "RFC2976": true}})
    );
    assert_eq!(
        d.ok("GetDTMFTrigger", json!({"DTMFTriggerId": "dtmf_trigger_0"})).await,
        json!({"DTMFTrigger": {"Id": "dtmf_trigger_0", "DTMFSequence": "#1234#", "DTMFEventId": "dtmf_event_0"}})
    );
    assert_eq!(
        d.ok("GetDTMFEvent", json!({"DTMFEventId": "dtmf_event_0"})).await,
        json!({"DTMFEvent": {"Id": "dtmf_event_0", "Name": "OpenDoorEvent"}})
    );
}

#[tokio::test]
async fn common_examples_limited_and_full_access_configurations() {
    let d = Doorsim::start_on_own_address(&[]);
    let evs = d.ok("SetDTMFEvents", json!({"DTMFEvent": [{"Name": "Event A"}, {"Name": "Event B"}]})).await;
    assert_eq!(evs, json!({"DTMFEventId": ["dtmf_event_0", "dtmf_event_1"]}));
    let trs = d
        .ok(
            "SetDTMFTriggers",
            json!({"DTMFTrigger": [
            {"DTMFSequence": "1", "DTMFEventId": "dtmf_event_0"},
            {"DTMFSequence": "2", "DTMFEventId": "dtmf_event_1"}]}),
        )
        .await;
    assert_eq!(trs, json!({"DTMFTriggerId": ["dtmf_trigger_0", "dtmf_trigger_1"]}));
    let confs = d
        .ok(
            "SetDTMFConfigurations",
            json!({"DTMFConfiguration": [
            {"Name": "Full Access", "DTMFTriggerId": ["dtmf_trigger_0", "dtmf_trigger_1"]},
            {"Name": "Limited", "DTMFTriggerId": ["dtmf_trigger_0"]}]}),
        )
        .await;
    assert_eq!(confs, json!({"DTMFConfigurationId": ["dtmf_config_0", "dtmf_config_1"]}));
    let all = d.ok("GetDTMFConfigurations", json!({})).await;
    assert_eq!(all["DTMFConfiguration"][1]["DTMFTriggerId"], json!(["dtmf_trigger_0"]));
    // Unknown ids in a plural Get are skipped.
    let some = d.ok("GetDTMFConfigurations", json!({"DTMFConfigurationId": ["nope", "dtmf_config_1"]})).await;
    assert_eq!(some["DTMFConfiguration"].as_array().map(Vec::len), Some(1));
    let none = d.ok("GetDTMFEvents", json!({"DTMFEventId": ["nope"]})).await;
    assert_eq!(none, json!({"DTMFEvent": []}));
}

#[tokio::test]
async fn common_examples_change_the_event_of_a_sequence() {
    let d = Doorsim::start_on_own_address(&[]);
    d.ok("SetDTMFEvents", json!({"DTMFEvent": [{"Name": "Event A"}, {"Name": "Event B"}]})).await;
    d.ok(
        "SetDTMFTriggers",
        json!({"DTMFTrigger": [
        {"DTMFSequence": "1234", "DTMFEventId": "dtmf_event_0"},
        {"DTMFSequence": "5678", "DTMFEventId": "dtmf_event_1"}]}),
    )
    .await;
    let before = d.state().await;
    let refused =
        d.call("SetDTMFTrigger", json!({"DTMFTrigger": {"DTMFSequence": "1234", "DTMFEventId": "dtmf_event_1"}})).await;
    assert_fault(&refused, "ter:InvalidArgVal", Some("ter:InvalidArgVal"));
    assert_eq!(d.state().await, before);
    // Update the trigger that holds 1234 (a Set replaces the whole trigger, so the sequence is restated).
    d.ok(
        "SetDTMFTrigger",
        json!({"DTMFTrigger": {"Id": "dtmf_trigger_0", "DTMFSequence": "1234", "DTMFEventId": "dtmf_event_1"}}),
    )
    .await;
    let t = d.ok("GetDTMFTriggers", json!({})).await["DTMFTrigger"].clone();
    assert_eq!(t[0]["DTMFEventId"], "dtmf_event_1");
    assert_eq!(t[1]["DTMFEventId"], "dtmf_event_1");
}

#[tokio::test]
async fn common_examples_configure_the_audio_codec_priority_list() {
    let d = Doorsim::start_on_own_address(&[]);
    let all = d.ok("GetSupportedAudioCodecs", json!({})).await["AudioCodec"].clone();
    let default = d.ok("GetDefaultAudioCodecs", json!({})).await["AudioCodec"].clone();
    let current = d.ok("GetAudioCodecs", json!({})).await["AudioCodec"].clone();
    assert_eq!(all, default);
    assert_eq!(current, default);
    let names: Vec<&str> = all.as_array().expect("list").iter().filter_map(|c| c["Name"].as_str()).collect();
    assert!(names.contains(&"PCMU") && names.contains(&"PCMA"), "{names:?}");
    let mut list = current.as_array().expect("list").clone();
    list.reverse();
    d.ok("SetAudioCodecs", json!({"AudioCodec": list})).await;
    assert_eq!(d.ok("GetAudioCodecs", json!({})).await["AudioCodec"], json!(list));
    // Simple format: SampleRate is optional on input.
    let a = d.simple("SetAudioCodecs", "AudioCodec_0_Name=PCMA&AudioCodec_1_Name=PCMU").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let s = d.simple("GetAudioCodecs", "").await;
    assert_eq!(s.line("AudioCodec_0_Name").as_deref(), Some("\"PCMA\""));
    assert_eq!(s.line("AudioCodec_1_SampleRate").as_deref(), Some("8000"));
    assert!(s.line("AudioCodec_2_Name").is_none());
}

#[tokio::test]
async fn vms_call_configuration_defaults_and_the_four_examples() {
    let d = Doorsim::start_on_own_address(&[]);
    assert_eq!(
        d.ok("GetVMSCallConfiguration", json!({})).await,
        json!({"VMSCallConfiguration": {"Enabled": true, "AudioFromDeviceToNetworkStreams": 0,
            "AudioFromNetworkToDeviceStreams": 1, "VideoFromDeviceToNetworkStreams": 0, "Timeout": 30}})
    );
    for (from, to, video) in [(0, 1, 0), (1, 1, 0), (0, 2, 0), (-1, 0, 3)] {
        let config = json!({"Enabled": true, "AudioFromDeviceToNetworkStreams": from,
            "AudioFromNetworkToDeviceStreams": to, "VideoFromDeviceToNetworkStreams": video, "Timeout": 45});
        d.ok("SetVMSCallConfiguration", json!({"VMSCallConfiguration": config})).await;
        assert_eq!(d.ok("GetVMSCallConfiguration", json!({})).await["VMSCallConfiguration"], config);
    }
}

#[tokio::test]
async fn service_capabilities_and_supported_lists() {
    let d = Doorsim::start_on_own_address(&[]);
    let c = d.ok("GetServiceCapabilities", json!({})).await["Capabilities"].clone();
    assert_eq!((c["SIP"].clone(), c["DTMF"].clone(), c["AudioCodec"].clone()), (json!(true), json!(true), json!(true)));
    assert_eq!(c["MediaEncryption"], true, "SRTP is done (SDES over TLS)");
    let modes = d.ok("GetSupportedMediaEncryptionModes", json!({})).await;
    assert_eq!(modes, json!({"MediaEncryption": ["None", "SRTPBestEffort", "SRTPMandatory"]}));
    for cmd in ["GetSupportedSIPAccountAttributes", "GetSupportedSIPConfigurationAttributes"] {
        let info = d.ok(cmd, json!({})).await["AttributeInfo"].clone();
        let names: Vec<&str> = info.as_array().expect("list").iter().filter_map(|a| a["Name"].as_str()).collect();
        assert_eq!(names, ["DisableTCPSwitch", "MaxCallDuration", "RegistrationInterval"], "{cmd}");
        assert_eq!(info[1]["Type"], "int");
    }
}

#[tokio::test]
async fn sip_accounts_attributes_defaults_and_removal() {
    let d = Doorsim::start_on_own_address(&[]);
    d.ok(
        "SetSIPAccount",
        json!({"SIPAccount": {"UserId": "a", "IsDefault": true,
        "Attribute": [{"Name": "MaxCallDuration", "Value": "300"}, {"Name": "Unknown", "Value": "x"}]}}),
    )
    .await;
    let a = d.ok("GetSIPAccount", json!({"SIPAccountId": "sip_account_0"})).await["SIPAccount"].clone();
    assert_eq!(a["Attribute"], json!([{"Name": "MaxCallDuration", "Value": "300"}]));
    assert_eq!(a["IsDefault"], true);
    let p2p = d.ok("GetSIPAccount", json!({"SIPAccountId": "peer-to-peer"})).await["SIPAccount"].clone();
    assert_eq!(p2p["IsDefault"], false, "only one account is the default");
    // Removing the default hands the default to the first remaining account; removing them all
    // brings back the factory peer-to-peer account. Unknown ids are ignored.
    d.ok("RemoveSIPAccounts", json!({"SIPAccountId": ["sip_account_0", "nope"]})).await;
    assert_eq!(d.ok("GetSIPAccount", json!({"SIPAccountId": "peer-to-peer"})).await["SIPAccount"]["IsDefault"], true);
    d.ok("RemoveSIPAccount", json!({"SIPAccountId": "peer-to-peer"})).await;
    let all = d.ok("GetSIPAccounts", json!({})).await["SIPAccount"].clone();
    assert_eq!(all.as_array().map(Vec::len), Some(1));
    assert_eq!(all[0]["Id"], "peer-to-peer");
}

#[tokio::test]
async fn control_api_reset_restores_factory_defaults() {
    let d = Doorsim::start_on_own_address(&[]);
    let factory = d.state().await;
    d.ok("SetDTMFEvent", json!({"DTMFEvent": {"Name": "x"}})).await;
    d.ok("SetSIPConfiguration", json!({"SIPConfiguration": {"SIPEnabled": true}})).await;
    assert_ne!(d.state().await, factory);
    let r = d.request("POST", "/emulator/v1/reset", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(d.state().await, factory);
    assert_eq!(d.request("GET", "/emulator/v1/reset", None).await.status, 405);
}

#[tokio::test]
async fn raw_quotation_marks_in_a_pasted_query_are_accepted() {
    // The spec writes `SIPAccountId="peer-to-peer"`; curl sends the quotes as they are.
    let d = Doorsim::start_on_own_address(&[]);
    let url =
        format!("{}/vapix/call?format=simple&action=axcall:GetSIPAccountStatus&SIPAccountId=\"peer-to-peer\"", d.base);
    let out = std::process::Command::new("curl")
        .args(["-s", "-S", "--anyauth", "-u", "root:pass", "-w", "\n%{http_code}", &url])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.ends_with("\n200"), "{text}");
    assert!(text.contains("SIPAccountStatus_SIPAccountId=\"peer-to-peer\""), "{text}");
}

#[tokio::test]
async fn a_free_text_name_may_hold_a_line_break_as_the_spec_example_shows() {
    let d = Doorsim::start_on_own_address(&[]);
    let r = d.simple("SetDTMFEvent", "DTMFEvent_Name=\"a+string%0A\"").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let e = d.ok("GetDTMFEvents", json!({})).await["DTMFEvent"][0].clone();
    assert_eq!(e["Name"], "a string\n");
    // Where a value lands in a SIP header, line breaks stay refused.
    let a = d.call("SetSIPAccount", json!({"SIPAccount": {"UserId": "6001", "CallerId": "x\r\nVia: evil"}})).await;
    assert_eq!(a.status, 400, "{}", a.body);
}
