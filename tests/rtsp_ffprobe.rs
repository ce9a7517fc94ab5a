//! The RTSP event metadata stream read by ffprobe (FFmpeg's RTSP client, not our code) over
//! RTP/AVP/TCP interleaved, with the XML of every packet parsed. Needs `ffprobe` (Debian
//! `ffmpeg`, installed by scripts/test.sh).

mod common;

use std::process::Command;
use std::time::Duration;

use common::Doorsim;
use serde_json::Value;

/// The bytes of an ffprobe `-show_data` hexdump.
fn unhex(dump: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for line in dump.lines() {
        let Some((_, rest)) = line.split_once(": ") else { continue };
        let hex = rest.get(..39).unwrap_or(rest);
        for group in hex.split_whitespace() {
            for pair in group.as_bytes().chunks(2) {
                if let Ok(b) = u8::from_str_radix(std::str::from_utf8(pair).unwrap_or("zz"), 16) {
                    out.push(b);
                }
            }
        }
    }
    out
}

/// (topic, operation, source value, first data name=value) of a metadata document.
fn read_metadata(xml: &str) -> (String, String, String, String) {
    let doc = roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("not XML ({e}): {xml}"));
    assert_eq!(doc.root_element().tag_name().name(), "MetadataStream");
    let find = |name: &str| doc.descendants().find(|n| n.tag_name().name() == name).expect(name);
    let topic = find("Topic").text().unwrap_or_default().to_owned();
    let message =
        doc.descendants().find(|n| n.tag_name().name() == "Message" && n.has_attribute("UtcTime")).expect("tt:Message");
    let operation = message.attribute("PropertyOperation").unwrap_or("").to_owned();
    let item = |parent: &str| {
        find(parent)
            .children()
            .find(|n| n.tag_name().name() == "SimpleItem")
            .map(|n| format!("{}={}", n.attribute("Name").unwrap_or(""), n.attribute("Value").unwrap_or("")))
            .unwrap_or_default()
    };
    (topic, operation, item("Source"), item("Data"))
}

#[tokio::test]
async fn ffprobe_reads_the_event_stream_over_tcp_interleaved() {
    let d = Doorsim::start(&[]);
    // Eight packets: four current states (the call state and the A8207-VE's three ports), then
    // the button press (port 0 on, StateChange Initiated, State Calling, port 0 off).
    let url = format!("rtsp://root:pass@{}/axis-media/media.amp?video=0&audio=0&event=on", d.rtsp);
    let probe = tokio::task::spawn_blocking(move || {
        Command::new("ffprobe")
            .args(["-v", "error", "-rtsp_transport", "tcp", "-i", &url])
            .args(["-show_packets", "-show_data", "-of", "json", "-read_intervals", "%+#8"])
            .output()
            .expect("ffprobe (Debian package ffmpeg) must be installed")
    });
    // Press once ffprobe is subscribed (it has played the stream), not after a guessed time.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while d.state().await["Events"]["Subscribers"] == 0 {
        assert!(std::time::Instant::now() < deadline, "ffprobe never played the event stream");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let press = d.request("POST", "/emulator/v1/button/press", None).await;
    assert_eq!(press.status, 200, "{}", press.body);
    // FFmpeg's RTP reader holds the latest packet until the next one arrives: press once more.
    tokio::time::sleep(Duration::from_millis(300)).await;
    d.request("POST", "/emulator/v1/button/press", None).await;
    let out = tokio::time::timeout(Duration::from_secs(20), probe).await.expect("ffprobe finishes").expect("ffprobe");
    let json: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("ffprobe output is not JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    let docs: Vec<(String, String, String, String)> = json["packets"]
        .as_array()
        .expect("packets")
        .iter()
        .map(|p| read_metadata(&String::from_utf8_lossy(&unhex(p["data"].as_str().unwrap_or_default()))))
        .collect();
    let has = |topic: &str, op: &str, source: &str, data: &str| {
        docs.iter().any(|(t, o, s, v)| t == topic && o == op && s == source && v == data)
    };
    // The current states first, marked Initialized...
    assert!(has("tnsaxis:Call/State", "Initialized", "Source=0", "CallState=Idle"), "{docs:#?}");
    assert!(has("tns1:Device/tnsaxis:IO/Port", "Initialized", "port=0", "state=0"), "{docs:#?}");
    // ...then changes as they happen.
    assert!(has("tns1:Device/tnsaxis:IO/Port", "Changed", "port=0", "state=1"), "{docs:#?}");
    assert!(has("tnsaxis:Call/StateChange", "", "Source=0", "Reason=Initiated"), "{docs:#?}");
    assert!(has("tnsaxis:Call/State", "Changed", "Source=0", "CallState=Calling"), "{docs:#?}");
}
