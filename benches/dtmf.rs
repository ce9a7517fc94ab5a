//! DTMF benchmarks, printed with ratios against baselines measured in the same run:
//! 1. the RFC 4733 decoder, per packet, against parsing the RTP header alone;
//! 2. RTP-packet-to-event latency through a running device (an in-process doorsim, a call set up
//!    by a raw SIP peer on loopback, one telephone-event end packet per digit, time until the
//!    `tnsaxis:Call/DTMF` event is on the bus), p50/p99, against a raw UDP loopback hop.
//!
//! Run: `cargo bench --bench dtmf` (target: p99 under 1 ms on loopback).

mod common;

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use doorsim::dtmf::rfc4733::{Decoder, TelephoneEvent};
use doorsim::events::topics;
use doorsim::rtp::RtpHeader;
use tokio::net::UdpSocket;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn decoder_bench() {
    let packets: Vec<Vec<u8>> = (0..10_000u32)
        .flat_map(|i| {
            let ts = i * 1600;
            (0..8u16).map(move |k| {
                let event = TelephoneEvent { event: (i % 12) as u8, end: k >= 5, volume: 10, duration: (k + 1) * 160 };
                RtpHeader {
                    marker: k == 0,
                    payload_type: 101,
                    sequence: (i * 8 + u32::from(k)) as u16,
                    timestamp: ts,
                    ssrc: 7,
                }
                .packet(&event.to_bytes())
            })
        })
        .collect();
    let now = Instant::now();
    let start = Instant::now();
    let mut parsed = 0usize;
    for p in &packets {
        parsed += black_box(RtpHeader::parse(black_box(p))).map_or(0, |(_, payload)| payload.len());
    }
    let baseline = start.elapsed();
    let start = Instant::now();
    let mut decoder = Decoder::new();
    let mut digits = 0usize;
    for p in &packets {
        if let Some((h, payload)) = RtpHeader::parse(p) {
            digits += decoder.packet(h.ssrc, h.timestamp, black_box(payload), now).len();
        }
    }
    let decoding = start.elapsed();
    assert_eq!(digits, 10_000, "{parsed}");
    let n = packets.len() as u32;
    println!(
        "decoder: {} packets, {:?}/packet (RTP header parse alone {:?}/packet), ratio {:.2}",
        n,
        decoding / n,
        baseline / n,
        decoding.as_secs_f64() / baseline.as_secs_f64()
    );
}

async fn latency_bench() {
    let (device, stop, sip_port) = common::dtmf_device(16).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A raw SIP peer: INVITE with telephone-event, wait for the 200, ACK.
    let sip = UdpSocket::bind("127.0.0.1:0").await.expect("sip");
    let rtp = UdpSocket::bind("127.0.0.1:0").await.expect("rtp");
    let (me, media) = (sip.local_addr().expect("addr").port(), rtp.local_addr().expect("addr").port());
    let sdp = format!("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {media} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n");
    let invite = format!(
        "INVITE sip:door@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bKb1\r\nFrom: <sip:b@127.0.0.1>;tag=b\r\n\
         To: <sip:door@127.0.0.1>\r\nCall-ID: bench\r\nCSeq: 1 INVITE\r\nContact: <sip:b@127.0.0.1:{me}>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    let device_sip: SocketAddr = format!("127.0.0.1:{sip_port}").parse().expect("addr");
    sip.send_to(invite.as_bytes(), device_sip).await.expect("invite");
    let mut buf = vec![0u8; 65536];
    let answer = loop {
        let (n, _) =
            tokio::time::timeout(Duration::from_secs(3), sip.recv_from(&mut buf)).await.expect("answer").expect("recv");
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if text.starts_with("SIP/2.0 200") {
            break text;
        }
    };
    let to = answer.lines().find(|l| l.starts_with("To:")).expect("To").to_owned();
    let device_media: u16 = answer
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|l| l.split(' ').next()?.parse().ok())
        .expect("port");
    let ack = format!("ACK sip:door@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bKb2\r\nFrom: <sip:b@127.0.0.1>;tag=b\r\n{to}\r\nCall-ID: bench\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n");
    sip.send_to(ack.as_bytes(), device_sip).await.expect("ack");
    let rtp_to: SocketAddr = format!("127.0.0.1:{device_media}").parse().expect("addr");

    let mut events = device.bus.subscribe().live;
    let mut latencies = Vec::new();
    for i in 0..2000u32 {
        let end = TelephoneEvent { event: 1, end: true, volume: 10, duration: 800 };
        let packet =
            RtpHeader { marker: true, payload_type: 101, sequence: i as u16, timestamp: 1000 + i * 1600, ssrc: 9 }
                .packet(&end.to_bytes());
        let sent = Instant::now();
        rtp.send_to(&packet, rtp_to).await.expect("rtp");
        loop {
            let e =
                tokio::time::timeout(Duration::from_secs(2), events.recv()).await.expect("event in time").expect("bus");
            if e.topic == topics::CALL_DTMF {
                break;
            }
        }
        latencies.push(sent.elapsed());
    }
    // Baseline: the same packet over a raw loopback UDP hop, socket to socket.
    let a = UdpSocket::bind("127.0.0.1:0").await.expect("a");
    let b = UdpSocket::bind("127.0.0.1:0").await.expect("b");
    let b_addr = b.local_addr().expect("addr");
    let mut hops = Vec::new();
    for _ in 0..2000 {
        let sent = Instant::now();
        a.send_to(&[0u8; 16], b_addr).await.expect("send");
        b.recv_from(&mut buf).await.expect("recv");
        hops.push(sent.elapsed());
    }
    latencies.sort();
    hops.sort();
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
    let (b50, b99) = (percentile(&hops, 0.5), percentile(&hops, 0.99));
    println!("RTP end packet -> tnsaxis:Call/DTMF on the bus: p50 {p50:?}, p99 {p99:?} (2000 digits)");
    println!("raw UDP loopback hop:                            p50 {b50:?}, p99 {b99:?}");
    println!(
        "ratio p50 {:.1}, p99 {:.1}; target p99 < 1 ms: {}",
        p50.as_secs_f64() / b50.as_secs_f64(),
        p99.as_secs_f64() / b99.as_secs_f64(),
        if p99 < Duration::from_millis(1) { "met" } else { "NOT met" }
    );
    stop.cancel();
}

fn main() {
    decoder_bench();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(latency_bench());
}
