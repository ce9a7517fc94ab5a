//! The RTSP server of the event metadata stream
//! (`rtsp://HOST/axis-media/media.amp?video=0&audio=0&event=on`): OPTIONS, DESCRIBE (SDP),
//! SETUP over RTP/AVP/UDP or RTP/AVP/TCP interleaved, PLAY, TEARDOWN, GET_PARAMETER. After PLAY
//! the current property events go out first (`PropertyOperation="Initialized"`), then every
//! event as one `tt:MetadataStream` document per RTP packet, payload type 98, marker set.
//!
//! One task per connection owns its session; it reads requests and bus events in one `select!`
//! and is the only writer of its socket, so interleaved frames never tear a response.

pub mod message;
pub mod metadata;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, BytesMut};
use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Authenticator;
use crate::events::{Event, EventBus};
use crate::listener::next_admitted;
use crate::rtp::RtpHeader;
use message::{parse, response, Parsed, RtspRequest};
use metadata::{metadata_xml, Operation};

/// The path of the event stream.
pub const STREAM_PATH: &str = "/axis-media/media.amp";
/// RTP payload type of the metadata.
const PAYLOAD_TYPE: u8 = 98;
/// Session timeout announced to clients, in seconds.
const SESSION_TIMEOUT: u32 = 60;
/// Most RTSP connections at once.
const MAX_CONNECTIONS: usize = 64;
/// Most buffered, unparsed bytes per connection.
const MAX_BUFFER: usize = message::MAX_HEAD + message::MAX_BODY;

/// What every RTSP connection of a device shares.
#[derive(Debug)]
pub struct RtspContext {
    /// Credentials.
    pub auth: Arc<Authenticator>,
    /// The device's events.
    pub bus: Arc<EventBus>,
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

/// Where RTP goes.
enum Delivery {
    /// To the client's UDP port.
    Udp { socket: UdpSocket, to: SocketAddr },
    /// Inside the RTSP connection, on this channel.
    Interleaved { channel: u8 },
}

struct Session {
    id: String,
    delivery: Delivery,
    ssrc: u32,
    sequence: u16,
    started: Instant,
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
        let public = "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER, SET_PARAMETER".to_owned();
        if r.method == "OPTIONS" {
            return (ok(&[("Public", public)], ""), After::Nothing);
        }
        if self.ctx.auth.check_rtsp(&r.method, r.header("Authorization")).is_err() {
            let challenge = self.ctx.auth.rtsp_challenge();
            return (response(401, "Unauthorized", cseq, &[("WWW-Authenticate", challenge)], ""), After::Nothing);
        }
        let Some((base, query)) = stream_url(&r.uri) else {
            return (response(404, "Not Found", cseq, &[], ""), After::Nothing);
        };
        let session_header = |s: &Session| format!("{};timeout={SESSION_TIMEOUT}", s.id);
        match r.method.as_str() {
            "DESCRIBE" if !events_on(&query) => (response(404, "Not Found", cseq, &[], ""), After::Nothing),
            "DESCRIBE" => {
                let control = format!("{base}/trackID=1?{query}");
                let host = base
                    .split('/')
                    .nth(2)
                    .unwrap_or("0.0.0.0")
                    .rsplit_once(':')
                    .map_or("0.0.0.0", |(h, _)| h)
                    .to_owned();
                let sdp = format!(
                    "v=0\r\no=- 1 1 IN IP4 {host}\r\ns=Session streamed with doorsim\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n\
                     a=control:*\r\na=range:npt=0.000000-\r\nm=application 0 RTP/AVP {PAYLOAD_TYPE}\r\n\
                     a=rtpmap:{PAYLOAD_TYPE} vnd.onvif.metadata/90000\r\na=control:{control}\r\n"
                );
                let headers = [("Content-Type", "application/sdp".to_owned()), ("Content-Base", format!("{base}/"))];
                (ok(&headers, &sdp), After::Nothing)
            }
            "SETUP" => match self.setup(r.header("Transport").unwrap_or_default()).await {
                Ok(transport) => {
                    let session = self.session.as_ref().map(session_header).unwrap_or_default();
                    (ok(&[("Session", session), ("Transport", transport)], ""), After::Nothing)
                }
                Err(()) => (response(461, "Unsupported Transport", cseq, &[], ""), After::Nothing),
            },
            "PLAY" => match &self.session {
                Some(s) => {
                    let headers = [
                        ("Session", session_header(s)),
                        ("Range", "npt=0.000000-".to_owned()),
                        ("RTP-Info", format!("url={base}/trackID=1;seq={};rtptime=0", s.sequence)),
                    ];
                    (ok(&headers, ""), After::Play)
                }
                None => (response(455, "Method Not Valid in This State", cseq, &[], ""), After::Nothing),
            },
            "TEARDOWN" => (ok(&[], ""), After::Close),
            "GET_PARAMETER" | "SET_PARAMETER" => {
                let session = self.session.as_ref().map(session_header).unwrap_or_default();
                (ok(&[("Session", session)], ""), After::Nothing)
            }
            _ => (response(405, "Method Not Allowed", cseq, &[("Allow", public)], ""), After::Nothing),
        }
    }

    /// Sets up delivery from the client's `Transport` header; returns the answer's Transport.
    async fn setup(&mut self, transport: &str) -> Result<String, ()> {
        let param = |name: &str| transport.split(';').find_map(|p| p.trim().strip_prefix(name));
        let ports = |v: &str| -> Option<(u16, u16)> {
            let (a, b) = v.split_once('-').unwrap_or((v, v));
            Some((a.parse().ok()?, b.parse().ok()?))
        };
        let ssrc: u32 = rand::thread_rng().gen();
        let (delivery, answer) = if transport.starts_with("RTP/AVP/TCP") {
            let (rtp, rtcp) = param("interleaved=").and_then(ports).unwrap_or((0, 1));
            let channel = u8::try_from(rtp).map_err(|_| ())?;
            (Delivery::Interleaved { channel }, format!("RTP/AVP/TCP;unicast;interleaved={rtp}-{rtcp};ssrc={ssrc:08X}"))
        } else if transport.starts_with("RTP/AVP") {
            let (rtp, rtcp) = param("client_port=").and_then(ports).ok_or(())?;
            let local = self.stream.local_addr().map_err(|_| ())?;
            let socket = UdpSocket::bind(SocketAddr::new(local.ip(), 0)).await.map_err(|_| ())?;
            let server = socket.local_addr().map_err(|_| ())?.port();
            let to = SocketAddr::new(self.peer.ip(), rtp);
            let answer = format!(
                "RTP/AVP;unicast;client_port={rtp}-{rtcp};server_port={server}-{};ssrc={ssrc:08X}",
                server.wrapping_add(1)
            );
            (Delivery::Udp { socket, to }, answer)
        } else {
            return Err(());
        };
        let id =
            self.session.as_ref().map_or_else(|| format!("{:08X}", rand::thread_rng().gen::<u32>()), |s| s.id.clone());
        self.session =
            Some(Session { id, delivery, ssrc, sequence: rand::thread_rng().gen(), started: Instant::now() });
        Ok(answer)
    }

    /// Starts the stream: current property values first, then live events.
    async fn play(&mut self) -> std::io::Result<()> {
        if self.live.is_some() {
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
        let Some(session) = self.session.as_mut() else { return Ok(()) };
        let header = RtpHeader {
            marker: true,
            payload_type: PAYLOAD_TYPE,
            sequence: session.sequence,
            timestamp: (session.started.elapsed().as_micros() * 9 / 100) as u32,
            ssrc: session.ssrc,
        };
        session.sequence = session.sequence.wrapping_add(1);
        let packet = header.packet(metadata_xml(event, operation).as_bytes());
        match &session.delivery {
            Delivery::Udp { socket, to } => {
                if let Err(e) = socket.send_to(&packet, to).await {
                    tracing::debug!(error = %e, "RTP send failed");
                }
                Ok(())
            }
            Delivery::Interleaved { channel } => {
                let len = u16::try_from(packet.len()).unwrap_or(u16::MAX);
                let mut frame = vec![b'$', *channel];
                frame.extend_from_slice(&len.to_be_bytes());
                frame.extend_from_slice(&packet[..usize::from(len)]);
                self.stream.write_all(&frame).await
            }
        }
    }
}

/// Splits `rtsp://host[:port]/axis-media/media.amp[/][trackID=1][?query]` into the stream's base
/// URL and its query; `None` for other paths.
fn stream_url(uri: &str) -> Option<(String, String)> {
    let rest = uri.strip_prefix("rtsp://")?;
    let (path_and_host, query) = rest.split_once('?').unwrap_or((rest, ""));
    let slash = path_and_host.find('/')?;
    let (host, path) = path_and_host.split_at(slash);
    let path = path.strip_suffix("trackID=1").unwrap_or(path);
    let path = path.strip_suffix('/').unwrap_or(path);
    (path == STREAM_PATH).then(|| (format!("rtsp://{host}{STREAM_PATH}"), query.to_owned()))
}

/// Whether a stream query asks for events: this device serves only the event stream.
fn events_on(query: &str) -> bool {
    form_urlencoded::parse(query.as_bytes()).any(|(k, v)| k == "event" && v == "on")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_urls() {
        let (base, query) =
            stream_url("rtsp://10.0.0.5/axis-media/media.amp?video=0&audio=0&event=on").expect("events");
        assert_eq!(base, "rtsp://10.0.0.5/axis-media/media.amp");
        assert_eq!(query, "video=0&audio=0&event=on");
        assert!(stream_url("rtsp://h:8554/axis-media/media.amp/trackID=1?event=on").is_some());
        assert!(stream_url("rtsp://h:8554/axis-media/media.amp/").is_some());
        assert!(events_on("video=0&event=on") && !events_on("video=1"));
        assert!(stream_url("rtsp://h/other?event=on").is_none());
        assert!(stream_url("http://h/axis-media/media.amp?event=on").is_none());
    }
}
