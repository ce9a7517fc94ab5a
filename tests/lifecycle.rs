//! The device's tasks are supervised: with a call up (SIP agent, listeners, the call's timers,
//! its RTP session) and a client connected, cancelling the shutdown token ends every task the
//! device spawned within the stop deadline, and the sockets are free again.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use doorsim::device::{Device, DeviceConfig};
use doorsim::profile::Profile;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

// Ports free for UDP and TCP both (`common::free_port`): the SIP port listens on both and the
// TLS port on TCP. A port checked for UDP only was once a TCP client's port of a test running
// beside this one, and SIP never came up (two of nine fresh-clone runs failed so).
use common::free_port;

#[tokio::test]
async fn stopping_ends_every_task_with_a_call_up() {
    let stop = CancellationToken::new();
    let config = DeviceConfig {
        auto_answer: Some(Duration::ZERO),
        ..DeviceConfig::on_loopback(Profile::load("A8207-VE").expect("profile"))
    };
    let device = Device::start(config, stop.clone()).await.expect("device");
    let (sip_port, tls_port) = (free_port(), free_port());
    device
        .store
        .update(|s| {
            s.sip_configuration.sip_enabled = true;
            s.sip_configuration.sip_port = sip_port;
            s.sip_configuration.sip_tls_port = tls_port;
            s.sip_configuration.allow_incoming_calls = true;
            Ok(())
        })
        .expect("configure");
    let sip = UdpSocket::bind("127.0.0.1:0").await.expect("sip");
    let rtp = UdpSocket::bind("127.0.0.1:0").await.expect("rtp");
    let (me, media) = (sip.local_addr().expect("addr").port(), rtp.local_addr().expect("addr").port());
    let sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {media} RTP/AVP 0\r\n"
    );
    let invite = format!(
        "INVITE sip:door@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bKlife\r\nFrom: <sip:b@127.0.0.1>;tag=b\r\n\
         To: <sip:door@127.0.0.1>\r\nCall-ID: life\r\nCSeq: 1 INVITE\r\nContact: <sip:b@127.0.0.1:{me}>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    let device_sip: SocketAddr = format!("127.0.0.1:{sip_port}").parse().expect("addr");
    let mut buf = vec![0u8; 65536];
    // The listeners follow the store: send until the INVITE is answered (reading every answer
    // that comes, 100 Trying first; the 20 s are a bound for a loaded machine).
    let answered = async {
        loop {
            sip.send_to(invite.as_bytes(), device_sip).await.expect("invite");
            while let Ok(Ok((n, _))) = tokio::time::timeout(Duration::from_millis(200), sip.recv_from(&mut buf)).await {
                if buf[..n].starts_with(b"SIP/2.0 200") {
                    return;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), answered).await.expect("the call is answered");
    tokio::time::timeout(Duration::from_secs(20), rtp.recv(&mut buf)).await.expect("RTP flows").expect("recv");
    let _client = tokio::net::TcpStream::connect(device.http_addr).await.expect("an HTTP client");

    stop.cancel();
    assert!(device.stopped().await, "every task ended within the stop deadline");
    UdpSocket::bind(device_sip).await.expect("the SIP port is free again");
}
