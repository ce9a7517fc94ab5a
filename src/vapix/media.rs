//! The talk-back and video endpoints a VMS uses, whose open streams count toward VMS calls:
//! `POST /axis-cgi/audio/transmit.cgi` (µ-law audio to the device),
//! `GET /axis-cgi/audio/receive.cgi` (µ-law audio from the device) and
//! `GET /axis-cgi/mjpg/video.cgi` (multipart MJPEG from the device).
//!
//! Each stream holds a [`StreamGuard`] while it flows; when the client goes away the response
//! body (or the request loop) is dropped and the count falls.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use tokio::time::MissedTickBehavior;

use crate::calls::vms::StreamCounts;
use crate::calls::{StreamGuard, StreamKind};
use crate::media::{frame_index, jpeg_frame, jpeg_frames, tone_second, FRAME_SIZE, SAMPLE_RATE, VIDEO_FPS};
use crate::reply::{plain, Body};

/// Audio is sent in 40 ms chunks.
const AUDIO_CHUNK: Duration = Duration::from_millis(40);
/// An upload that sends nothing for this long has stopped.
const UPLOAD_IDLE: Duration = Duration::from_secs(5);
/// Multipart boundary of the MJPEG stream.
const BOUNDARY: &str = "doorsimframe";

/// Largest snapshot side, in pixels.
const MAX_SIDE: u16 = 1920;

/// `GET /axis-cgi/jpg/image.cgi[?resolution=WxH]`: the frame the video is showing now, as one
/// JPEG (the snapshot every VMS takes for thumbnails). 320x240 unless `resolution` says.
pub fn image(query: Option<&str>) -> Response<Body> {
    let resolution = query.and_then(|q| {
        form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "resolution").map(|(_, v)| v.into_owned())
    });
    let size = match resolution {
        None => FRAME_SIZE,
        Some(r) => {
            let parsed = r.split_once('x').and_then(|(w, h)| Some((w.parse::<u16>().ok()?, h.parse::<u16>().ok()?)));
            match parsed {
                Some((w, h)) if (16..=MAX_SIDE).contains(&w) && (16..=MAX_SIDE).contains(&h) => (w, h),
                _ => {
                    return plain(
                        StatusCode::BAD_REQUEST,
                        &format!("Error: resolution={r} is not WIDTHxHEIGHT, each 16 to {MAX_SIDE}"),
                    )
                }
            }
        }
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let Some(jpeg) = jpeg_frame(frame_index(now), size) else {
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "Error: the frame could not be encoded");
    };
    let mut r = Response::new(crate::reply::full(jpeg));
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    r
}

/// `POST /axis-cgi/audio/transmit.cgi`: counts as audio to the device while the audio plays.
/// The body is read at playback pace (8000 bytes of µ-law a second), as the device's speaker
/// consumes it, so a 3-second clip keeps the stream open for 3 seconds however fast it is sent.
pub async fn transmit(req: Request<Incoming>, streams: &Arc<StreamCounts>) -> Response<Body> {
    let content_type = req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !content_type.starts_with("audio/basic") {
        return plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "transmit.cgi takes Content-Type: audio/basic (G.711 mu-law)",
        );
    }
    let _guard = streams.open(StreamKind::AudioToDevice);
    let mut body = req.into_body();
    let mut received = 0u64;
    let started = tokio::time::Instant::now();
    let played_by = |bytes: u64| started + Duration::from_secs_f64(bytes as f64 / SAMPLE_RATE as f64);
    loop {
        tokio::time::sleep_until(played_by(received)).await;
        match tokio::time::timeout(UPLOAD_IDLE, body.frame()).await {
            Ok(Some(Ok(frame))) => received += frame.data_ref().map_or(0, |d| d.len() as u64),
            Ok(Some(Err(e))) => {
                tracing::debug!(error = %e, "audio upload broke off");
                break;
            }
            Ok(None) => break,
            Err(_) => {
                tracing::debug!("audio upload idle, treating it as stopped");
                break;
            }
        }
    }
    tokio::time::sleep_until(played_by(received)).await; // the last of it plays out
    tracing::debug!(bytes = received, "audio upload ended");
    let mut r = plain(StatusCode::OK, "OK");
    r.headers_mut().insert("x-doorsim-received-bytes", HeaderValue::from(received));
    r
}

/// `GET /axis-cgi/audio/receive.cgi`: a 400 Hz tone as µ-law at real-time pace.
pub fn receive(streams: &Arc<StreamCounts>) -> Response<Body> {
    let chunk = SAMPLE_RATE * AUDIO_CHUNK.as_millis() as usize / 1000;
    let guard = streams.open(StreamKind::AudioFromDevice);
    paced(guard, AUDIO_CHUNK, "audio/basic", move |n| {
        let start = (n as usize * chunk) % SAMPLE_RATE;
        tone_second().slice(start..start + chunk)
    })
}

/// `GET /axis-cgi/mjpg/video.cgi`: generated frames as `multipart/x-mixed-replace`.
pub fn video(streams: &Arc<StreamCounts>) -> Response<Body> {
    let guard = streams.open(StreamKind::VideoFromDevice);
    let content_type = format!("multipart/x-mixed-replace; boundary={BOUNDARY}");
    paced(guard, Duration::from_millis(1000 / VIDEO_FPS), &content_type, |n| {
        let frames = jpeg_frames();
        let jpeg = frames.get(n as usize % frames.len().max(1)).cloned().unwrap_or_default();
        let head = format!("--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n", jpeg.len());
        let mut part = Vec::with_capacity(head.len() + jpeg.len() + 2);
        part.extend_from_slice(head.as_bytes());
        part.extend_from_slice(&jpeg);
        part.extend_from_slice(b"\r\n");
        Bytes::from(part)
    })
}

/// An endless response body: `next(n)` every `period`, holding `guard` until it is dropped.
fn paced(
    guard: StreamGuard,
    period: Duration,
    content_type: &str,
    next: impl Fn(u64) -> Bytes + Send + Sync + 'static,
) -> Response<Body> {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let chunks = stream::unfold((guard, ticks, 0u64, next), |(guard, mut ticks, n, next)| async move {
        ticks.tick().await;
        let chunk = next(n);
        Some((Ok(Frame::data(chunk)), (guard, ticks, n + 1, next)))
    });
    let mut r = Response::new(StreamBody::new(chunks).boxed_unsync());
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(CONTENT_TYPE, v);
    }
    r
}
