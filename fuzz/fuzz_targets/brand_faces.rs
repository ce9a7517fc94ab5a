//! The other brands' faces, which read whatever a network client sends: a 2N upload (as a body
//! and as a multipart form), BAS-IP and v1.cgi settings, a Suprema SetConfig message. Each runs
//! against a store and must answer, never panic.
#![no_main]

use std::sync::{Arc, OnceLock};

use doorsim::facades::suprema::proto::voip::{voip_server::Voip, SetConfigRequest};
use doorsim::facades::{bas_ip, suprema, two_n, v1cgi};
use doorsim::store::Store;
use prost::Message;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| tokio::runtime::Builder::new_current_thread().build().expect("runtime"))
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let store = Arc::new(Store::new());
    let (post, put) = (hyper::Method::POST, hyper::Method::PUT);
    let _ = v1cgi::handle(&post, data, &store);
    let _ = bas_ip::sip_settings(&post, data, &store);
    let body = bytes::Bytes::copy_from_slice(data);
    runtime().block_on(async {
        let _ = two_n::handle(&put, None, None, body.clone(), &store).await;
        let _ = two_n::handle(&put, None, Some("multipart/form-data; boundary=X"), body, &store).await;
        if let Ok(request) = SetConfigRequest::decode(data) {
            let service = suprema::VoipService::new(store.clone(), request.device_id);
            let _ = Voip::set_config(&service, tonic::Request::new(request)).await;
        }
    });
});
