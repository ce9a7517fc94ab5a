//! The RTSP server of `rtsp://HOST/axis-media/media.amp?...`: H.264 video of the generated
//! picture, µ-law audio (a tone, or what the far end of a call says while one is up), the event
//! metadata stream and the ONVIF audio back channel, in one session, over RTP/AVP/UDP or
//! RTP/AVP/TCP interleaved, with RTCP sender reports. OPTIONS, DESCRIBE (SDP), SETUP, PLAY,
//! TEARDOWN, GET_PARAMETER, SET_PARAMETER. Which tracks a URL asks for is [`stream`]'s business.
//!
//! While a session plays, its video counts as one video-from-device stream and its audio as
//! one audio-from-device stream toward VMS calls, as `video.cgi` and `receive.cgi` do; a back
//! channel counts as audio to the device. Metadata: after PLAY the current property events go
//! out first (`PropertyOperation="Initialized"`), then every event, one `tt:MetadataStream`
//! document per RTP packet, payload type 98, marker set.
//!
//! One task per connection owns its session; it waits on requests, bus events, encoded
//! pictures and its audio and report clocks in one `select!` and is the only writer of its
//! socket, so interleaved frames never tear a response. Pictures are drawn and encoded on a
//! thread per video stream ([`crate::video`]).

pub mod message;
pub mod metadata;
pub mod rtcp;
pub mod stream;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Buf, Bytes, BytesMut};
use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::Interval;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Authenticator;
use crate::calls::{CallEngine, StreamGuard, StreamKind};
use crate::events::{Event, EventBus};
use crate::listener::next_admitted;
use crate::media::{tone_second, SAMPLE_RATE};
use crate::rtp::RtpHeader;
use crate::video::{spawn_stream, EncodedPicture, Overlay, VideoCodec};
use message::{parse, response, Parsed, RtspRequest};
use metadata::{metadata_xml, Operation};
use stream::{StreamSpec, TrackKind, BACKCHANNEL, METADATA_PAYLOAD_TYPE, PCMU_PAYLOAD_TYPE};

/// The path of the media stream.
pub const STREAM_PATH: &str = "/axis-media/media.amp";
/// Session timeout announced to clients, in seconds.
const SESSION_TIMEOUT: u32 = 60;
/// Most RTSP connections at once.
const MAX_CONNECTIONS: usize = 64;
/// Most video streams a device encodes at once; PLAY beyond it is answered 453.
pub const MAX_VIDEO_STREAMS: usize = 16;
/// Most buffered, unparsed bytes per connection.
const MAX_BUFFER: usize = message::MAX_HEAD + message::MAX_BODY;
/// Audio goes out in 20 ms packets.
const AUDIO_PACKET: Duration = Duration::from_millis(20);
/// How often each playing track sends an RTCP sender report.
const REPORT_INTERVAL: Duration = Duration::from_secs(5);
/// Encoded pictures waiting for the connection to send them.
const PICTURE_BACKLOG: usize = 2;

/// What every RTSP connection of a device shares.
#[derive(Debug)]
pub struct RtspContext {
    /// Credentials.
    pub auth: Arc<Authenticator>,
    /// The device's events.
    pub bus: Arc<EventBus>,
    /// The calls: stream counts, the call state drawn into the picture, the far end's audio.
    pub engine: Arc<CallEngine>,
    /// The device's name, drawn into the picture.
    pub name: String,
    /// Video streams that may play at once.
    video_slots: Arc<Semaphore>,
}

impl RtspContext {
    /// The context of a device called `name`.
    pub fn new(auth: Arc<Authenticator>, bus: Arc<EventBus>, engine: Arc<CallEngine>, name: String) -> Self {
        Self { auth, bus, engine, name, video_slots: Arc::new(Semaphore::new(MAX_VIDEO_STREAMS)) }
    }
}

/// Serves RTSP on `listener` until `shutdown`; connections are tracked by `tracker`.
pub async fn run(listener: TcpListener, ctx: Arc<RtspContext>, shutdown: CancellationToken, tracker: TaskTracker) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Some((stream, peer, permit)) = next_admitted(&listener, &permits, &shutdown, "RTSP").await else {
            return;
        };
        let ctx = ctx.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let _permit = permit;
            if let Err(e) = Connection::new(stream, peer, ctx).serve(shutdown).await {
                tracing::debug!(%peer, error = %e, "RTSP connection ended");
            }
        });
    }
}

/// Where a track's RTP and RTCP go.
enum Delivery {
    /// To the client's UDP ports, from a pair of ours.
    Udp { rtp: UdpSocket, rtcp: UdpSocket, to: SocketAddr, to_rtcp: SocketAddr },
    /// Inside the RTSP connection, on this channel (RTCP on the next).
    Interleaved { channel: u8 },
}

/// A track the client has set up.
struct Track {
    kind: TrackKind,
    delivery: Delivery,
    ssrc: u32,
    sequence: u16,
    /// The RTP timestamp of the session's start (PLAY).
    timestamp_base: u32,
    packets: u32,
    octets: u32,
}

impl Track {
    /// The RTP timestamp `elapsed` after the session's start.
    fn timestamp_at(&self, elapsed: Duration) -> u32 {
        let ticks = elapsed.as_micros() * u128::from(self.kind.clock_rate()) / 1_000_000;
        self.timestamp_base.wrapping_add(ticks as u32)
    }
}

/// What runs while a session plays.
struct Playing {
    /// The VMS call stream counts this session holds.
    _streams: Vec<StreamGuard>,
    _video_slot: Option<OwnedSemaphorePermit>,
    /// Encoded pictures of the video track.
    pictures: Option<mpsc::Receiver<EncodedPicture>>,
    /// The audio clock, the far end's audio, and the samples sent so far.
    audio: Option<(Interval, broadcast::Receiver<Bytes>, u64)>,
    reports: Interval,
}

struct Session {
    id: String,
    /// Every track the URL offers, numbered from 1.
    offered: Vec<TrackKind>,
    /// The tracks set up, by index into `offered`.
    tracks: Vec<(usize, Track)>,
    /// When the session was set up, then when it started playing: media time 0.
    started: Instant,
    playing: Option<Playing>,
}

struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    ctx: Arc<RtspContext>,
    session: Option<Session>,
    live: Option<broadcast::Receiver<Arc<Event>>>,
}

/// What a request asks the connection to do after its response is written.
enum After {
    Nothing,
    Play,
    Close,
}

/// What a playing session has to do next.
enum Due {
    /// Send this encoded picture (`None`: the video thread has ended).
    Picture(Option<EncodedPicture>),
    /// Send the next audio packet.
    Audio,
    /// Send sender reports.
    Reports,
}

/// Waits for the next thing a playing session must send; pending while it does not play.
async fn session_due(session: &mut Option<Session>) -> Due {
    let Some(Playing { pictures, audio, reports, .. }) = session.as_mut().and_then(|s| s.playing.as_mut()) else {
        return std::future::pending().await;
    };
    let picture = async {
        match pictures.as_mut() {
            Some(pictures) => pictures.recv().await,
            None => std::future::pending().await,
        }
    };
    let audio = async {
        match audio.as_mut() {
            Some((clock, _, _)) => clock.tick().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        picture = picture => Due::Picture(picture),
        _ = audio => Due::Audio,
        _ = reports.tick() => Due::Reports,
    }
}

impl Connection {
    fn new(stream: TcpStream, peer: SocketAddr, ctx: Arc<RtspContext>) -> Self {
        Self { stream, peer, ctx, session: None, live: None }
    }

    async fn serve(mut self, shutdown: CancellationToken) -> std::io::Result<()> {
        let mut buf = BytesMut::with_capacity(4096);
        loop {
            let live = async {
                match self.live.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                read = self.stream.read_buf(&mut buf) => {
                    if read? == 0 {
                        return Ok(());
                    }
                    if !self.handle_buffer(&mut buf).await? {
                        return Ok(());
                    }
                }
                event = live => match event {
                    Ok(e) => self.send_event(&e, Operation::Changed).await?,
                    Err(RecvError::Lagged(n)) => self.ctx.bus.count_dropped(n),
                    Err(RecvError::Closed) => return Ok(()),
                },
                due = session_due(&mut self.session) => match due {
                    Due::Picture(Some(picture)) => self.send_picture(&picture).await?,
                    Due::Picture(None) => self.stop_video(),
                    Due::Audio => self.send_audio().await?,
                    Due::Reports => self.send_reports().await?,
                },
            }
        }
    }
    /// Answers every whole request in `buf`; returns false when the connection should close.
    async fn handle_buffer(&mut self, buf: &mut BytesMut) -> std::io::Result<bool> {
        loop {
            match parse(buf) {
                Parsed::Incomplete if buf.len() > MAX_BUFFER => {
                    self.stream.write_all(response(400, "Bad Request", None, &[], "").as_bytes()).await?;
                    return Ok(false);
                }
                Parsed::Incomplete => return Ok(true),
                Parsed::Interleaved(used) => buf.advance(used),
                Parsed::Invalid(why) => {
                    tracing::debug!(peer = %self.peer, %why, "bad RTSP request");
                    self.stream.write_all(response(400, "Bad Request", None, &[], "").as_bytes()).await?;
                    return Ok(false);
                }
                Parsed::Request(request, used) => {
                    buf.advance(used);
                    let (text, after) = self.answer(&request).await;
                    self.stream.write_all(text.as_bytes()).await?;
                    match after {
                        After::Nothing => {}
                        After::Close => return Ok(false),
                        After::Play => self.play().await?,
                    }
                }
            }
        }
    }

    async fn answer(&mut self, r: &RtspRequest) -> (String, After) {
        let cseq = r.header("CSeq");
        let ok = |headers: &[(&str, String)], body: &str| response(200, "OK", cseq, headers, body);
        let fail = |status: u16, reason: &str| (response(status, reason, cseq, &[], ""), After::Nothing);
        let public = "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER, SET_PARAMETER".to_owned();
        if r.method == "OPTIONS" {
            return (ok(&[("Public", public)], ""), After::Nothing);
        }
        if self.ctx.auth.check_rtsp(&r.method, r.header("Authorization")).is_err() {
            let challenge = self.ctx.auth.rtsp_challenge();
            return (response(401, "Unauthorized", cseq, &[("WWW-Authenticate", challenge)], ""), After::Nothing);
        }
        if let Some(options) = r.header("Require").filter(|o| o.split(',').any(|o| o.trim() != BACKCHANNEL)) {
            let unsupported = [("Unsupported", options.to_owned())];
            return (response(551, "Option not supported", cseq, &unsupported, ""), After::Nothing);
        }
        let Some(url) = StreamUrl::parse(&r.uri) else {
            return fail(404, "Not Found");
        };
        let spec = match StreamSpec::from_query(&url.query) {
            Ok(spec) => spec,
            Err(why) => {
                tracing::debug!(peer = %self.peer, %why, "RTSP stream refused");
                let body = format!("{why}\r\n");
                let text = response(400, "Bad Request", cseq, &[("Content-Type", "text/plain".to_owned())], &body);
                return (text, After::Nothing);
            }
        };
        let session_header = |s: &Session| format!("{};timeout={SESSION_TIMEOUT}", s.id);
        match r.method.as_str() {
            "DESCRIBE" => {
                let tracks = spec.tracks(r.header("Require").is_some());
                let h264 = match spec.video.filter(|v| v.codec == VideoCodec::H264) {
                    Some(format) => {
                        let sets =
                            tokio::task::spawn_blocking(move || crate::video::h264::parameter_sets(format)).await;
                        match sets.map_err(|e| e.to_string()).and_then(|r| r) {
                            Ok(sets) => Some(sets),
                            Err(e) => {
                                tracing::error!(error = %e, "no H.264 parameter sets");
                                return fail(500, "Internal Server Error");
                            }
                        }
                    }
                    None => None,
                };
                let sdp = stream::sdp(&url.host, &url.base, &url.query, &tracks, h264.as_ref());
                let headers =
                    [("Content-Type", "application/sdp".to_owned()), ("Content-Base", format!("{}/", url.base))];
                (ok(&headers, &sdp), After::Nothing)
            }
            "SETUP" => match self.setup(&spec, url.track, r.header("Transport").unwrap_or_default()).await {
                Ok(transport) => {
                    let session = self.session.as_ref().map(session_header).unwrap_or_default();
                    (ok(&[("Session", session), ("Transport", transport)], ""), After::Nothing)
                }
                Err(SetupError::NoTrack) => fail(404, "Not Found"),
                Err(SetupError::Transport) => fail(461, "Unsupported Transport"),
            },
            "PLAY" => {
                let Some(s) = self.session.as_mut().filter(|s| !s.tracks.is_empty()) else {
                    return fail(455, "Method Not Valid in This State");
                };
                if s.playing.is_none() {
                    match start_playing(s, &self.ctx) {
                        Ok(playing) => (s.playing, s.started) = (Some(playing), Instant::now()),
                        Err(PlayError::NoVideoSlot) => return fail(453, "Not Enough Bandwidth"),
                        Err(PlayError::Encoder(e)) => {
                            tracing::error!(error = %e, "cannot start the video stream");
                            return fail(500, "Internal Server Error");
                        }
                    }
                }
                let elapsed = s.started.elapsed();
                let info: Vec<String> = s
                    .tracks
                    .iter()
                    .map(|(i, t)| {
                        format!(
                            "url={}/trackID={};seq={};rtptime={}",
                            url.base,
                            i + 1,
                            t.sequence,
                            t.timestamp_at(elapsed)
                        )
                    })
                    .collect();
                let headers = [
                    ("Session", session_header(s)),
                    ("Range", "npt=0.000000-".to_owned()),
                    ("RTP-Info", info.join(",")),
                ];
                (ok(&headers, ""), After::Play)
            }
            "TEARDOWN" => (ok(&[], ""), After::Close),
            "GET_PARAMETER" | "SET_PARAMETER" => {
                let session = self.session.as_ref().map(session_header).unwrap_or_default();
                (ok(&[("Session", session)], ""), After::Nothing)
            }
            _ => (response(405, "Method Not Allowed", cseq, &[("Allow", public)], ""), After::Nothing),
        }
    }

    /// Sets up track `track` (1-based; the first when the URL names none) of the stream `spec`
    /// describes, from the client's `Transport` header; returns the answer's Transport.
    async fn setup(&mut self, spec: &StreamSpec, track: Option<usize>, transport: &str) -> Result<String, SetupError> {
        let offered = match &self.session {
            Some(s) => s.offered.clone(),
            None => spec.tracks(true),
        };
        let index = track.unwrap_or(1).checked_sub(1).filter(|i| *i < offered.len()).ok_or(SetupError::NoTrack)?;
        let param = |name: &str| transport.split(';').find_map(|p| p.trim().strip_prefix(name));
        let ports = |v: &str| -> Option<(u16, u16)> {
            let (a, b) = v.split_once('-').unwrap_or((v, v));
            Some((a.parse().ok()?, b.parse().ok()?))
        };
        let ssrc: u32 = rand::thread_rng().gen();
        let (delivery, answer) = if transport.starts_with("RTP/AVP/TCP") {
            let default = u16::try_from(2 * index).unwrap_or(0);
            let (rtp, rtcp) = param("interleaved=").and_then(ports).unwrap_or((default, default + 1));
            let channel = u8::try_from(rtp).map_err(|_| SetupError::Transport)?;
            (Delivery::Interleaved { channel }, format!("RTP/AVP/TCP;unicast;interleaved={rtp}-{rtcp};ssrc={ssrc:08X}"))
        } else if transport.starts_with("RTP/AVP") {
            let (rtp_port, rtcp_port) = param("client_port=").and_then(ports).ok_or(SetupError::Transport)?;
            let local = self.stream.local_addr().map_err(|_| SetupError::Transport)?;
            let (rtp, rtcp) = bind_pair(local.ip()).await.map_err(|_| SetupError::Transport)?;
            let server = rtp.local_addr().map_err(|_| SetupError::Transport)?.port();
            let (to, to_rtcp) = (SocketAddr::new(self.peer.ip(), rtp_port), SocketAddr::new(self.peer.ip(), rtcp_port));
            let answer = format!(
                "RTP/AVP;unicast;client_port={rtp_port}-{rtcp_port};server_port={server}-{};ssrc={ssrc:08X}",
                server + 1
            );
            (Delivery::Udp { rtp, rtcp, to, to_rtcp }, answer)
        } else {
            return Err(SetupError::Transport);
        };
        let mut rng = rand::thread_rng();
        let track = Track {
            kind: offered[index],
            delivery,
            ssrc,
            sequence: rng.gen(),
            timestamp_base: rng.gen(),
            packets: 0,
            octets: 0,
        };
        let session = self.session.get_or_insert_with(|| Session {
            id: format!("{:08X}", rand::thread_rng().gen::<u32>()),
            offered,
            tracks: Vec::new(),
            started: Instant::now(),
            playing: None,
        });
        session.tracks.retain(|(i, _)| *i != index);
        session.tracks.push((index, track));
        Ok(answer)
    }

    /// After PLAY's response: the current property values first, then live events, when the
    /// metadata track plays.
    async fn play(&mut self) -> std::io::Result<()> {
        let metadata =
            self.session.as_ref().is_some_and(|s| s.tracks.iter().any(|(_, t)| t.kind == TrackKind::Metadata));
        if self.live.is_some() || !metadata {
            return Ok(());
        }
        let subscription = self.ctx.bus.subscribe();
        self.live = Some(subscription.live);
        for event in &subscription.current {
            self.send_event(event, Operation::Initialized).await?;
        }
        Ok(())
    }

    async fn send_event(&mut self, event: &Event, operation: Operation) -> std::io::Result<()> {
        let xml = metadata_xml(event, operation);
        self.send(TrackKind::Metadata, &[(true, METADATA_PAYLOAD_TYPE, None, xml.as_bytes())]).await
    }

    async fn send_picture(&mut self, picture: &EncodedPicture) -> std::io::Result<()> {
        let video =
            self.session.as_ref().and_then(|s| s.tracks.iter().find(|(_, t)| matches!(t.kind, TrackKind::Video(_))));
        let Some(kind @ TrackKind::Video(format)) = video.map(|(_, t)| t.kind) else { return Ok(()) };
        let (count, payload_type) = (picture.payloads.len(), stream::video_payload_type(format.codec));
        let packets: Vec<_> = picture
            .payloads
            .iter()
            .enumerate()
            .map(|(i, p)| (i + 1 == count, payload_type, Some(picture.at), p.as_slice()))
            .collect();
        self.send(kind, &packets).await
    }

    /// The video thread ended (its encoder failed): the session goes on without video.
    fn stop_video(&mut self) {
        if let Some(playing) = self.session.as_mut().and_then(|s| s.playing.as_mut()) {
            playing.pictures = None;
        }
    }

    /// One 20 ms audio packet: the far end's latest audio while a call sends some, else the tone.
    async fn send_audio(&mut self) -> std::io::Result<()> {
        let Some((_, speech, sent)) =
            self.session.as_mut().and_then(|s| s.playing.as_mut()).and_then(|p| p.audio.as_mut())
        else {
            return Ok(());
        };
        let heard = loop {
            match speech.try_recv() {
                Ok(frame) => break Some(frame),
                Err(TryRecvError::Lagged(_)) => continue,
                Err(TryRecvError::Empty | TryRecvError::Closed) => break None,
            }
        };
        let frame = heard.unwrap_or_else(|| {
            let samples = SAMPLE_RATE * AUDIO_PACKET.as_millis() as usize / 1000;
            let start = (*sent as usize) % SAMPLE_RATE;
            tone_second().slice(start..(start + samples).min(SAMPLE_RATE))
        });
        let offset = Duration::from_micros(*sent * 1_000_000 / SAMPLE_RATE as u64);
        *sent += frame.len() as u64;
        self.send(TrackKind::Audio, &[(false, PCMU_PAYLOAD_TYPE, Some(offset), &frame)]).await
    }

    /// A sender report on every playing track that sends.
    async fn send_reports(&mut self) -> std::io::Result<()> {
        let Some(session) = self.session.as_mut() else { return Ok(()) };
        let (elapsed, now) = (session.started.elapsed(), SystemTime::now());
        for (_, track) in session.tracks.iter().filter(|(_, t)| t.kind != TrackKind::Backchannel) {
            let state = rtcp::SenderState {
                ssrc: track.ssrc,
                rtp_timestamp: track.timestamp_at(elapsed),
                at: now,
                packets: track.packets,
                octets: track.octets,
            };
            let report = rtcp::sender_report(&state, &self.ctx.name);
            match &track.delivery {
                Delivery::Udp { rtcp, to_rtcp, .. } => {
                    if let Err(e) = rtcp.send_to(&report, to_rtcp).await {
                        tracing::debug!(error = %e, "RTCP send failed");
                    }
                }
                Delivery::Interleaved { channel } => {
                    write_interleaved(&mut self.stream, channel.wrapping_add(1), &[report]).await?;
                }
            }
        }
        Ok(())
    }

    /// Sends RTP packets (marker, payload type, media time since PLAY or `None` for now,
    /// payload) on the track of `kind`.
    async fn send(&mut self, kind: TrackKind, packets: &[(bool, u8, Option<Duration>, &[u8])]) -> std::io::Result<()> {
        let Some(session) = self.session.as_mut() else { return Ok(()) };
        let started = session.started;
        let Some((_, track)) = session.tracks.iter_mut().find(|(_, t)| t.kind == kind) else { return Ok(()) };
        let mut out = Vec::with_capacity(packets.len());
        for (marker, payload_type, at, payload) in packets {
            let elapsed = at.unwrap_or_else(|| started.elapsed());
            let header = RtpHeader {
                marker: *marker,
                payload_type: *payload_type,
                sequence: track.sequence,
                timestamp: track.timestamp_at(elapsed),
                ssrc: track.ssrc,
            };
            track.sequence = track.sequence.wrapping_add(1);
            track.packets = track.packets.wrapping_add(1);
            track.octets = track.octets.wrapping_add(payload.len() as u32);
            out.push(header.packet(payload));
        }
        match &track.delivery {
            Delivery::Udp { rtp, to, .. } => {
                for packet in &out {
                    if let Err(e) = rtp.send_to(packet, to).await {
                        tracing::debug!(error = %e, "RTP send failed");
                    }
                }
                Ok(())
            }
            Delivery::Interleaved { channel } => write_interleaved(&mut self.stream, *channel, &out).await,
        }
    }
}

/// Why a track could not be set up.
enum SetupError {
    /// The URL names no track the stream has.
    NoTrack,
    /// The client's Transport is not one we serve.
    Transport,
}

/// Why a session could not start playing.
enum PlayError {
    /// The device already encodes [`MAX_VIDEO_STREAMS`] video streams.
    NoVideoSlot,
    /// The encoder could not start.
    Encoder(std::io::Error),
}

/// Starts what a session's set-up tracks need: the encoder thread, the audio clock, the report
/// clock, and the stream counts.
fn start_playing(session: &Session, ctx: &RtspContext) -> Result<Playing, PlayError> {
    let kinds: Vec<TrackKind> = session.tracks.iter().map(|(_, t)| t.kind).collect();
    let video = kinds.iter().find_map(|k| match k {
        TrackKind::Video(format) => Some(*format),
        _ => None,
    });
    let (video_slot, pictures) = match video {
        Some(format) => {
            let slot = ctx.video_slots.clone().try_acquire_owned().map_err(|_| PlayError::NoVideoSlot)?;
            let (to, pictures) = mpsc::channel(PICTURE_BACKLOG);
            let (engine, name) = (ctx.engine.clone(), ctx.name.clone());
            let overlay: Overlay = Box::new(move || {
                let now = humantime::format_rfc3339_seconds(SystemTime::now());
                vec![name.clone(), now.to_string(), format!("Call: {}", engine.call_state().as_str())]
            });
            spawn_stream(format, overlay, to).map_err(PlayError::Encoder)?;
            (Some(slot), Some(pictures))
        }
        None => (None, None),
    };
    let audio =
        kinds.contains(&TrackKind::Audio).then(|| (tokio::time::interval(AUDIO_PACKET), ctx.engine.speech(), 0));
    let streams = kinds
        .iter()
        .filter_map(|k| match k {
            TrackKind::Video(_) => Some(StreamKind::VideoFromDevice),
            TrackKind::Audio => Some(StreamKind::AudioFromDevice),
            TrackKind::Backchannel => Some(StreamKind::AudioToDevice),
            TrackKind::Metadata => None,
        })
        .map(|kind| ctx.engine.streams().open(kind))
        .collect();
    Ok(Playing {
        _streams: streams,
        _video_slot: video_slot,
        pictures,
        audio,
        reports: tokio::time::interval(REPORT_INTERVAL),
    })
}

/// RTP or RTCP packets framed for TCP interleaving (RFC 2326 section 10.12), in one write.
async fn write_interleaved(stream: &mut TcpStream, channel: u8, packets: &[Vec<u8>]) -> std::io::Result<()> {
    let mut frames = Vec::with_capacity(packets.iter().map(|p| p.len() + 4).sum());
    for packet in packets {
        let len = u16::try_from(packet.len()).unwrap_or(u16::MAX);
        frames.extend_from_slice(&[b'$', channel]);
        frames.extend_from_slice(&len.to_be_bytes());
        frames.extend_from_slice(&packet[..usize::from(len)]);
    }
    stream.write_all(&frames).await
}

/// A pair of UDP sockets on `ip`, RTP on an even port and RTCP on the next (RFC 3550 11).
async fn bind_pair(ip: IpAddr) -> std::io::Result<(UdpSocket, UdpSocket)> {
    for _ in 0..32 {
        let rtp = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
        let port = rtp.local_addr()?.port();
        if port % 2 == 0 && port < u16::MAX {
            if let Ok(rtcp) = UdpSocket::bind(SocketAddr::new(ip, port + 1)).await {
                return Ok((rtp, rtcp));
            }
        }
    }
    Err(std::io::Error::new(std::io::ErrorKind::AddrInUse, "no free even/odd UDP port pair"))
}

/// A stream URL: `rtsp://host[:port]/axis-media/media.amp[/][trackID=N][?query]`.
#[derive(Debug, PartialEq, Eq)]
struct StreamUrl {
    /// `rtsp://host[:port]/axis-media/media.amp`.
    base: String,
    /// The host as the URL names it (for the SDP's origin).
    host: String,
    /// The track the URL names, if any.
    track: Option<usize>,
    query: String,
}

impl StreamUrl {
    /// `None` for any other path.
    fn parse(uri: &str) -> Option<StreamUrl> {
        let rest = uri.strip_prefix("rtsp://")?;
        let (path_and_host, query) = rest.split_once('?').unwrap_or((rest, ""));
        let slash = path_and_host.find('/')?;
        let (authority, path) = path_and_host.split_at(slash);
        let (path, track) = match path.rsplit_once("/trackID=") {
            Some((p, n)) => (p, Some(n.parse().ok()?)),
            None => (path, None),
        };
        let path = path.strip_suffix('/').unwrap_or(path);
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host =
            host.rsplit_once(':').filter(|(h, _)| !h.ends_with(']') || h.starts_with('[')).map_or(host, |(h, _)| h);
        (path == STREAM_PATH).then(|| StreamUrl {
            base: format!("rtsp://{authority}{STREAM_PATH}"),
            host: host.to_owned(),
            track,
            query: query.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_urls() {
        let url = StreamUrl::parse("rtsp://10.0.0.5/axis-media/media.amp?video=0&audio=0&event=on").expect("events");
        assert_eq!(url.base, "rtsp://10.0.0.5/axis-media/media.amp");
        assert_eq!(url.query, "video=0&audio=0&event=on");
        assert_eq!((url.host.as_str(), url.track), ("10.0.0.5", None));
        let track = StreamUrl::parse("rtsp://h:8554/axis-media/media.amp/trackID=2?event=on").expect("track");
        assert_eq!((track.host.as_str(), track.track), ("h", Some(2)));
        assert!(StreamUrl::parse("rtsp://h:8554/axis-media/media.amp/").is_some());
        assert!(StreamUrl::parse("rtsp://h/axis-media/media.amp/trackID=x").is_none());
        assert!(StreamUrl::parse("rtsp://h/other?event=on").is_none());
        assert!(StreamUrl::parse("http://h/axis-media/media.amp?event=on").is_none());
    }
}
