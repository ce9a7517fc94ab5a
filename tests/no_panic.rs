//! Property: no input from the network makes the Call service panic, and a refused request
//! changes nothing. Arbitrary query strings go through the simple decoder, arbitrary JSON
//! parameters through every command.

use std::sync::Arc;

use doorsim::calls::{CallEngine, EngineConfig};
use doorsim::events::EventBus;
use doorsim::store::Store;
use doorsim::vapix::call_service::{CallService, RequestContext, COMMANDS};
use doorsim::vapix::format::{json, simple, Format};
use proptest::prelude::*;
use serde_json::Value;

/// JSON values shaped like requests: objects whose keys are the spec's field names.
fn request_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("SIPConfiguration"),
        Just("SIPAccount"),
        Just("SIPAccountId"),
        Just("UserId"),
        Just("Id"),
        Just("Name"),
        Just("DTMFSequence"),
        Just("DTMFEventId"),
        Just("DTMFTriggerId"),
        Just("DTMFConfiguration"),
        Just("DTMFEvent"),
        Just("DTMFTrigger"),
        Just("DTMFConfigurationId"),
        Just("AudioCodec"),
        Just("Transport"),
        Just("SIPPort"),
        Just("CallingTimeout"),
        Just("KeepCurrent"),
        Just("VMSCallConfiguration"),
        Just("Enabled"),
        Just("Attribute"),
        Just("Value"),
        Just("Server"),
        Just("IsDefault"),
        Just("MediaEncryption"),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
        "[0-9A-D#*]{0,6}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((key.clone(), inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_simple_decoder_never_panics(query in "[A-Za-z0-9_=&%\"+:.-]{0,80}") {
        let _ = simple::decode(&query);
    }

    #[test]
    fn the_json_decoder_never_panics(body in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = json::decode(&body);
    }

    #[test]
    fn no_command_panics_and_faults_change_nothing(
        command in proptest::sample::select(&COMMANDS[..]),
        params in request_value(),
        lenient in any::<bool>(),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
        let _entered = runtime.enter();
        let store = Arc::new(Store::new());
        let engine = CallEngine::start(EngineConfig::default(), store.clone(), Arc::new(EventBus::new()), Default::default());
        let service = CallService::new(store.clone(), engine);
        let ctx = RequestContext::at_host("127.0.0.1");
        let before = store.snapshot();
        let format = if lenient { Format::Simple } else { Format::Json };
        if service.handle(&format!("axcall:{command}"), &params, format, &ctx).is_err() {
            prop_assert_eq!(store.snapshot(), before);
        }
    }
}

/// The command list the fuzzing and the metrics labels take is the one the service answers.
#[test]
fn every_listed_command_is_handled() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
    let _entered = runtime.enter();
    let store = Arc::new(Store::new());
    let engine =
        CallEngine::start(EngineConfig::default(), store.clone(), Arc::new(EventBus::new()), Default::default());
    let service = CallService::new(store, engine);
    let ctx = RequestContext::at_host("127.0.0.1");
    for command in COMMANDS {
        let answer = service.handle(&format!("axcall:{command}"), &serde_json::json!({}), Format::Json, &ctx);
        assert!(answer.as_ref().err().is_none_or(|f| f.code != "ter:ActionNotSupported"), "{command}: {answer:?}");
    }
}
