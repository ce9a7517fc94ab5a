//! Video and audio over RTSP as a VMS pulls them: FFmpeg's RTSP client (ffprobe, ffmpeg; Debian
//! `ffmpeg`, installed by scripts/test.sh) reads and decodes H.264, Motion JPEG and PCMU over
//! TCP and UDP; a
//! small raw client checks what FFmpeg does not show (RTCP sender reports, the ONVIF back
//! channel, stream counts); a VMS call is answered by an RTSP session alone; and while a sipp
//! caller talks (A-law from Debian sip-tester's capture), the RTSP audio is what it says.

mod common;

use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use common::{scenario, sipp, wait_for, Doorsim};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Runs ffprobe (or ffmpeg) with `args`; returns its exit status, stdout and stderr.
async fn ff(program: &'static str, args: Vec<String>) -> (bool, String, String) {
    let out = tokio::task::spawn_blocking(move || {
        Command::new(program).args(&args).output().expect("ffprobe/ffmpeg (Debian ffmpeg) must be installed")
    });
    let out = tokio::time::timeout(Duration::from_secs(60), out).await.expect("ffmpeg finishes").expect("thread");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

/// ffprobe's JSON about `url` with `args` before the input.
async fn probe(url: &str, args: &[&str]) -> Value {
    let mut all = strings(&["-v", "error"]);
    all.extend(strings(args));
    all.extend(strings(&["-of", "json", "-i", url]));
    let (ok, out, err) = ff("ffprobe", all).await;
    assert!(ok && err.is_empty(), "ffprobe failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("ffprobe output is not JSON ({e}): {out}"))
}

fn url(d: &Doorsim, query: &str) -> String {
    format!("rtsp://root:pass@{}/axis-media/media.amp{query}", d.rtsp)
}

#[tokio::test]
async fn ffprobe_sees_h264_and_pcmu_and_decodes_five_seconds_with_an_idr_every_two() {
    let d = Doorsim::start(&[]);
    let streams = probe(&url(&d, ""), &["-rtsp_transport", "tcp", "-show_streams"]).await;
    let streams = streams["streams"].as_array().expect("streams").clone();
    let video = streams.iter().find(|s| s["codec_type"] == "video").expect("a video stream");
    let audio = streams.iter().find(|s| s["codec_type"] == "audio").expect("an audio stream");
    assert_eq!(
        (video["codec_name"].as_str(), video["width"].as_u64(), video["height"].as_u64()),
        (Some("h264"), Some(640), Some(480))
    );
    assert_eq!(video["avg_frame_rate"], "15/1", "{video}");
    assert_eq!((audio["codec_name"].as_str(), audio["sample_rate"].as_str()), (Some("pcm_mulaw"), Some("8000")));

    // Five seconds of pictures decoded (over UDP this time): every one whole, IDRs within 2 s.
    let frames = probe(
        &url(&d, ""),
        &["-rtsp_transport", "udp", "-select_streams", "v", "-show_frames", "-read_intervals", "%+5"],
    )
    .await;
    let frames = frames["frames"].as_array().expect("frames").clone();
    assert!(!frames.is_empty(), "no picture decoded");
    assert!(frames.iter().all(|f| f["width"] == 640 && f["height"] == 480), "every picture is whole");
    let times = |key: bool| -> Vec<f64> {
        frames
            .iter()
            .filter(|f| (f["key_frame"] == 1) == key)
            .filter_map(|f| f["pts_time"].as_str().and_then(|t| t.parse().ok()))
            .collect()
    };
    let keys = times(true);
    assert!(keys.len() >= 2, "an IDR at the start and within 2 s: {keys:?}");
    assert!(keys.windows(2).all(|w| w[1] - w[0] <= 2.0 + 1e-6), "{keys:?}");
    assert!(!times(false).is_empty(), "P pictures between IDRs");

    // And ffmpeg decodes 5 s of both streams, without a single error.
    let args = strings(&["-v", "error", "-rtsp_transport", "tcp", "-i", &url(&d, ""), "-t", "5", "-f", "null", "-"]);
    let (ok, _, err) = ff("ffmpeg", args).await;
    assert!(ok && err.is_empty(), "ffmpeg: {err}");
}

#[tokio::test]
async fn url_parameters_shape_the_stream_and_bad_ones_are_refused() {
    let d = Doorsim::start(&[]);
    let query = "?videocodec=h264&resolution=320x240&fps=10&audio=0";
    let streams = probe(&url(&d, query), &["-rtsp_transport", "tcp", "-show_streams"]).await;
    let streams = streams["streams"].as_array().expect("streams").clone();
    assert_eq!(streams.len(), 1, "audio=0: video alone: {streams:?}");
    assert_eq!((streams[0]["width"].as_u64(), streams[0]["height"].as_u64()), (Some(320), Some(240)));
    assert_eq!(streams[0]["avg_frame_rate"], "10/1");

    let mut rtsp = RtspClient::connect(&d).await;
    for (bad, names) in [("fps=99", "fps"), ("videocodec=mpeg4", "videocodec"), ("resolution=641x480", "resolution")] {
        let (status, _, body) = rtsp.request("DESCRIBE", &format!("?{bad}"), &[]).await;
        assert_eq!(status, 400, "{bad}");
        assert!(body.contains(names), "{bad}: {body}");
    }
    let (status, headers, _) = rtsp.request("DESCRIBE", "", &[("Require", "com.example.other")]).await;
    assert_eq!(status, 551, "an option we do not have");
    assert!(headers.contains("Unsupported: com.example.other"), "{headers}");
}

#[tokio::test]
async fn videocodec_jpeg_is_motion_jpeg_that_ffmpeg_decodes() {
    let d = Doorsim::start(&[]);
    let jpeg = url(&d, "?videocodec=jpeg&resolution=320x240&audio=0");
    let streams = probe(&jpeg, &["-rtsp_transport", "tcp", "-show_streams"]).await;
    let video = &streams["streams"][0];
    assert_eq!((video["codec_name"].as_str(), video["width"].as_u64()), (Some("mjpeg"), Some(320)), "{streams}");
    let args = strings(&["-v", "error", "-rtsp_transport", "udp", "-i", &jpeg, "-t", "3", "-f", "null", "-"]);
    let (ok, _, err) = ff("ffmpeg", args).await;
    assert!(ok && err.is_empty(), "ffmpeg: {err}");
}

#[tokio::test]
async fn every_track_gets_rtp_and_sender_reports_and_counts_as_a_vms_stream() {
    let d = Doorsim::start(&[]);
    let mut rtsp = RtspClient::connect(&d).await;
    let (status, _, sdp) = rtsp.request("DESCRIBE", "?event=on", &[("Require", BACKCHANNEL)]).await;
    assert_eq!(status, 200);
    let media: Vec<&str> = sdp.lines().filter(|l| l.starts_with("m=")).collect();
    assert_eq!(
        media,
        ["m=video 0 RTP/AVP 96", "m=audio 0 RTP/AVP 0", "m=application 0 RTP/AVP 98", "m=audio 0 RTP/AVP 0"]
    );
    assert!(sdp.contains("a=sendonly\r\na=control:"), "the back channel: {sdp}");
    assert!(sdp.contains("sprop-parameter-sets="), "{sdp}");
    for track in 1..=4 {
        let transport = format!("RTP/AVP/TCP;unicast;interleaved={}-{}", 2 * (track - 1), 2 * track - 1);
        let (status, headers, _) =
            rtsp.request("SETUP", &format!("/trackID={track}?event=on"), &[("Transport", &transport)]).await;
        assert_eq!(status, 200, "SETUP track {track}");
        assert!(headers.contains(&transport), "{headers}");
    }
    assert_eq!(d.state().await["Streams"], json!({"AudioFromDevice": 0, "AudioToDevice": 0, "VideoFromDevice": 0}));
    let (status, headers, _) = rtsp.request("PLAY", "?event=on", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(headers.matches("trackID=").count(), 4, "RTP-Info names every track: {headers}");
    let streams = json!({"AudioFromDevice": 1, "AudioToDevice": 1, "VideoFromDevice": 1});
    assert_eq!(d.state().await["Streams"], streams, "video, audio and the back channel count");

    // RTP on channels 0 (H.264, a picture ends with the marker), 2 (160-byte µ-law) and 4
    // (metadata), sender reports on 1, 3 and 5; nothing on the back channel's 6-7.
    let (mut video_end, mut audio, mut metadata, mut reports) = (false, false, false, [false; 3]);
    while !(video_end && audio && metadata && reports == [true; 3]) {
        let (channel, packet) = rtsp.frame().await;
        match channel {
            0 => video_end |= packet[1] == 0x80 | 96,
            2 => audio |= packet[1] & 0x7F == 0 && packet.len() == 12 + 160,
            4 => metadata |= packet[1] & 0x7F == 98,
            1 | 3 | 5 => {
                assert_eq!(packet[1], 200, "a sender report first in the compound packet");
                reports[usize::from(channel / 2)] = true;
            }
            other => panic!("nothing was set up on channel {other}"),
        }
    }
    rtsp.request("TEARDOWN", "", &[]).await;
    wait_for("the streams stop counting", async || d.state().await["Streams"]["VideoFromDevice"] == 0).await;
    assert_eq!(d.state().await["Streams"], json!({"AudioFromDevice": 0, "AudioToDevice": 0, "VideoFromDevice": 0}));
}

#[tokio::test]
async fn a_vms_call_is_answered_by_an_rtsp_session_alone() {
    let d = Doorsim::start(&[]);
    let thresholds = json!({"Enabled": true, "AudioFromDeviceToNetworkStreams": 1,
        "AudioFromNetworkToDeviceStreams": 0, "VideoFromDeviceToNetworkStreams": 1});
    d.ok("SetVMSCallConfiguration", json!({ "VMSCallConfiguration": thresholds })).await;
    let id = d.ok("Call", json!({"To": "VMS_CALL"})).await["CallId"].as_str().expect("CallId").to_owned();
    let status = async || d.ok("GetCallStatus", json!({"CallId": id})).await["CallStatus"]["CallState"].clone();
    assert_eq!(status().await, "Calling");
    let mut rtsp = RtspClient::connect(&d).await;
    rtsp.play_interleaved("", 2).await;
    wait_for("the VMS call answered by the RTSP session", async || status().await == "Active").await;
    let reason = d.ok("GetCallStatus", json!({"CallId": id})).await["CallStatus"]["CallStateReason"].clone();
    assert_eq!(reason, "AcceptedByRemote");
    drop(rtsp);
    wait_for("the call ends with the session", async || status().await == "Terminated").await;
}

#[tokio::test]
async fn rtsp_audio_is_what_the_caller_says_while_a_call_is_up() {
    let pcap = "/usr/share/sip-tester/g711a.pcap";
    assert!(std::path::Path::new(pcap).exists(), "{pcap} comes with Debian's sip-tester");
    let d = Doorsim::start(&["--auto-answer", "0"]);
    let (port, _) = d.enable_sip(json!({})).await;
    let mut rtsp = RtspClient::connect(&d).await;
    rtsp.play_interleaved("?video=0", 1).await;
    let tone = doorsim::media::tone_second().to_vec();
    let is_tone = |payload: &[u8]| tone.windows(payload.len()).any(|w| w == payload);
    let mut packets = 0;
    while packets < 10 {
        let (channel, packet) = rtsp.frame().await;
        if channel == 0 {
            assert!(is_tone(&packet[12..]), "with no call the audio is the tone");
            packets += 1;
        }
    }
    let caller =
        tokio::spawn(async move { sipp(port, "u1", &["-sf", &scenario("uac_speak.xml"), "-mi", "127.0.0.1"]).await });
    // Read while the caller talks, until its speech is heard (the call lasts 4 s).
    let mut heard = 0;
    while heard < 25 {
        let (channel, packet) = tokio::time::timeout(Duration::from_secs(20), rtsp.frame()).await.expect("audio flows");
        if channel == 0 && !is_tone(&packet[12..]) {
            heard += 1;
        }
    }
    let (ok, out) = caller.await.expect("sipp");
    assert!(ok, "{out}");
}

/// The ONVIF back channel option.
const BACKCHANNEL: &str = "www.onvif.org/ver20/backchannel";

/// A raw RTSP client: requests with Basic auth, and interleaved frames after PLAY.
struct RtspClient {
    stream: TcpStream,
    base: String,
    buf: Vec<u8>,
    cseq: u32,
    session: Option<String>,
}

impl RtspClient {
    async fn connect(d: &Doorsim) -> RtspClient {
        let stream = TcpStream::connect(&d.rtsp).await.expect("connect RTSP");
        let base = format!("rtsp://{}/axis-media/media.amp", d.rtsp);
        RtspClient { stream, base, buf: Vec::new(), cseq: 0, session: None }
    }

    /// Sends `method` for the stream URL plus `suffix`; returns status, response head and body.
    async fn request(&mut self, method: &str, suffix: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
        self.cseq += 1;
        let auth = base64::engine::general_purpose::STANDARD.encode("root:pass");
        let mut text = format!(
            "{method} {}{suffix} RTSP/1.0\r\nCSeq: {}\r\nAuthorization: Basic {auth}\r\n",
            self.base, self.cseq
        );
        if let Some(s) = &self.session {
            text.push_str(&format!("Session: {s}\r\n"));
        }
        for (k, v) in headers {
            text.push_str(&format!("{k}: {v}\r\n"));
        }
        text.push_str("\r\n");
        self.stream.write_all(text.as_bytes()).await.expect("send");
        loop {
            // Interleaved frames may come before the answer once the session plays.
            if self.buf.first() == Some(&b'$') {
                self.frame().await;
                continue;
            }
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .and_then(|n| n.parse::<usize>().ok())
                    .unwrap_or(0);
                if self.buf.len() >= end + 4 + length {
                    let body = String::from_utf8_lossy(&self.buf[end + 4..end + 4 + length]).into_owned();
                    self.buf.drain(..end + 4 + length);
                    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status");
                    if let Some(s) = head.lines().find_map(|l| l.strip_prefix("Session: ")) {
                        self.session = Some(s.split(';').next().unwrap_or(s).to_owned());
                    }
                    return (status, head, body);
                }
            }
            self.fill().await;
        }
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 65536];
        let n = tokio::time::timeout(Duration::from_secs(20), self.stream.read(&mut chunk))
            .await
            .expect("the server answers")
            .expect("read");
        assert!(n > 0, "the server closed the connection");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    /// The next interleaved frame: its channel and packet.
    async fn frame(&mut self) -> (u8, Vec<u8>) {
        loop {
            if self.buf.len() >= 4 {
                assert_eq!(self.buf[0], b'$', "an interleaved frame: {:?}", String::from_utf8_lossy(&self.buf));
                let len = usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]]));
                if self.buf.len() >= 4 + len {
                    let channel = self.buf[1];
                    let packet = self.buf[4..4 + len].to_vec();
                    self.buf.drain(..4 + len);
                    return (channel, packet);
                }
            }
            self.fill().await;
        }
    }

    /// DESCRIBE, SETUP of the first `tracks` tracks on channels 0-1, 2-3, ..., and PLAY.
    async fn play_interleaved(&mut self, query: &str, tracks: u8) {
        assert_eq!(self.request("DESCRIBE", query, &[]).await.0, 200);
        for track in 1..=tracks {
            let transport = format!("RTP/AVP/TCP;unicast;interleaved={}-{}", 2 * (track - 1), 2 * track - 1);
            let (status, ..) =
                self.request("SETUP", &format!("/trackID={track}{query}"), &[("Transport", &transport)]).await;
            assert_eq!(status, 200);
        }
        assert_eq!(self.request("PLAY", query, &[]).await.0, 200);
    }
}

#[tokio::test]
async fn a_device_encodes_at_most_sixteen_video_streams_and_the_next_play_gets_453() {
    let d = Doorsim::start(&[]);
    let small = "?resolution=160x90&fps=1&audio=0";
    let mut playing = Vec::new();
    for _ in 0..16 {
        let mut rtsp = RtspClient::connect(&d).await;
        rtsp.play_interleaved(small, 1).await;
        playing.push(rtsp);
    }
    assert_eq!(d.state().await["Streams"]["VideoFromDevice"], 16);
    let mut one_more = RtspClient::connect(&d).await;
    assert_eq!(one_more.request("DESCRIBE", small, &[]).await.0, 200);
    let transport = [("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1")];
    assert_eq!(one_more.request("SETUP", &format!("/trackID=1{small}"), &transport).await.0, 200);
    assert_eq!(one_more.request("PLAY", small, &[]).await.0, 453, "Not Enough Bandwidth");
    // A stream that ends frees its slot.
    drop(playing.pop());
    wait_for("a slot is free again", async || d.state().await["Streams"]["VideoFromDevice"] == 15).await;
    assert_eq!(one_more.request("PLAY", small, &[]).await.0, 200);
}
