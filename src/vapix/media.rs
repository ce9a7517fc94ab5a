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
use crate::media::{jpeg_frames, tone_second, SAMPLE_RATE};
use crate::reply::{plain, Body};

/// Audio is sent in 40 ms chunks.
const AUDIO_CHUNK: Duration = Duration::from_millis(40);
/// Video frames per second.
const VIDEO_FPS: u64 = 10;
/// An upload that sends nothing for this long has stopped.
const UPLOAD_IDLE: Duration = Duration::from_secs(5);
/// Multipart boundary of the MJPEG stream.
const BOUNDARY: &str = "doorsimframe";

/// `POST /axis-cgi/audio/transmit.cgi`: counts as audio to the device while the body streams.
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
    loop {
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
