//! What Axis users paste works: the spec's own examples put raw quotation marks in a query
//! (`SIPAccountId="peer-to-peer"`), curl sends them as they are, and the device accepts them.
//! hyper's parser refuses such a request target with an empty 400, so [`LenientTarget`] wraps a
//! connection and percent-encodes, in request targets only, the bytes that the parser refuses
//! (`"`, `<`, `>`, `\`, `^`, `` ` ``, `{`, `|`, `}` and bytes above 0x7E). The query decoder then
//! sees `%22peer-to-peer%22`, which it reads as the quoted value.
//!
//! It follows the HTTP/1.1 framing just enough to find request lines: headers up to the empty
//! line, then a Content-Length body; a chunked body or an upgrade (WebSocket) turns it into a
//! plain pass-through for the rest of the connection.
//!
//! It also holds each request head until it is complete and checks it with `httparse` (the
//! parser hyper uses): a head that would get hyper's empty 400 gets, instead, the answer the
//! [`Refuse`] function builds (a fault body in the device's format), and the connection ends.
//!
//! And it bounds the wait for a request head ([`LenientTarget::with_head_timeout`]), in place
//! of hyper's `header_read_timeout`, which arms and disarms a timer for every request: here one
//! timer per connection is moved only when it fires early.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The bytes a request target may not hold as they are.
fn refused(b: u8) -> bool {
    matches!(b, b'"' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}') || b > 0x7E
}

/// `target` as [`LenientTarget`] hands it on: the refused bytes percent-encoded. Digest auth
/// compares a client's `uri` with the request target through this.
pub fn lenient(target: &str) -> std::borrow::Cow<'_, str> {
    if !target.bytes().any(refused) {
        return std::borrow::Cow::Borrowed(target);
    }
    let mut out = String::with_capacity(target.len() + 8);
    for b in target.bytes() {
        if refused(b) {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(char::from(b));
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The longest header line it follows; a longer one turns it into a pass-through (hyper then
/// refuses the request as it would have).
const MAX_LINE: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In a request line, after this many spaces.
    RequestLine { spaces: u8 },
    /// In the headers.
    Headers,
    /// In a body with this many bytes left.
    Body(u64),
    /// Everything passes unchanged.
    PassThrough,
}

/// Builds the complete HTTP response for a request head that cannot be parsed: the request
/// target (as far as it was read) and why.
pub type Refuse = fn(target: &str, why: &str) -> Vec<u8>;

/// The largest request head held for checking; a longer one passes to hyper as it is (which
/// answers 431).
const MAX_HEAD: usize = 64 * 1024;
/// Headers a head may have, as hyper allows.
const MAX_HEADERS: usize = 100;

/// A connection whose request targets are made acceptable to hyper.
#[derive(Debug)]
pub struct LenientTarget<S> {
    inner: S,
    refuse: Refuse,
    /// The request head being read (already rewritten), until it is complete.
    head: Vec<u8>,
    /// The refusal still to be written; the reader then sees the end of the stream.
    refusal: Option<(Vec<u8>, usize)>,
    state: State,
    /// The header line being read, to find Content-Length and friends.
    line: Vec<u8>,
    content_length: u64,
    chunked_or_upgrade: bool,
    /// Transformed bytes not yet handed to the reader.
    pending: Vec<u8>,
    pending_at: usize,
    /// What each read from the connection lands in (kept, so it is not zeroed per read).
    raw: Box<[u8]>,
    /// How long the client has for a request head, counted from the connection's start or
    /// the last bytes written to it (the previous answer); `None`: no limit.
    head_timeout: Option<Duration>,
    /// When the wait for the next head started.
    quiet_since: Instant,
    /// A head was read and nothing has been written since: the request is being answered, no
    /// head is awaited.
    answering: bool,
    /// Fires at or before the head's deadline (made on the first wait).
    head_timer: Option<Pin<Box<Sleep>>>,
}

impl<S> LenientTarget<S> {
    /// Wraps `inner`; a malformed head is answered with what `refuse` builds.
    pub fn new(inner: S, refuse: Refuse) -> Self {
        Self {
            inner,
            refuse,
            head: Vec::new(),
            refusal: None,
            state: State::RequestLine { spaces: 0 },
            line: Vec::new(),
            content_length: 0,
            chunked_or_upgrade: false,
            pending: Vec::new(),
            pending_at: 0,
            raw: vec![0; 8192].into_boxed_slice(),
            head_timeout: None,
            quiet_since: Instant::now(),
            answering: false,
            head_timer: None,
        }
    }

    /// Ends the connection (a read error for the reader) when a request head is not complete
    /// `limit` after the connection started or after the last answer was written.
    pub fn with_head_timeout(self, limit: Duration) -> Self {
        Self { head_timeout: Some(limit), ..self }
    }

    /// Whether the head awaited now is overdue; otherwise the timer wakes `cx` at its deadline.
    fn head_overdue(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(limit) = self.head_timeout else { return false };
        if self.answering || matches!(self.state, State::Body(_) | State::PassThrough) {
            return false;
        }
        let deadline = self.quiet_since + limit;
        let timer = self.head_timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        // The timer keeps an older (earlier) deadline until it fires; then it is moved on.
        while timer.as_mut().poll(cx).is_ready() {
            if timer.deadline() >= deadline {
                return true;
            }
            timer.as_mut().reset(deadline);
        }
        false
    }

    /// Bytes were written (an answer): the wait for the next head starts now.
    fn wrote(&mut self, written: &Poll<io::Result<usize>>) {
        if matches!(written, Poll::Ready(Ok(n)) if *n > 0) {
            self.answering = false;
            if self.head_timeout.is_some() {
                self.quiet_since = Instant::now();
            }
        }
    }

    /// Moves `input` through the state machine into `pending`.
    fn transform(&mut self, mut input: &[u8]) {
        while !input.is_empty() {
            if self.state == State::PassThrough {
                self.pending.append(&mut self.head);
                self.pending.extend_from_slice(input);
                return;
            }
            let unchanged = self.follow_unchanged(input);
            if unchanged > 0 {
                self.pending.extend_from_slice(&input[..unchanged]);
                input = &input[unchanged..];
                continue;
            }
            match self.state {
                // Followed above: a body is never held back.
                State::PassThrough | State::Body(_) => {}
                State::RequestLine { spaces } => {
                    // A run of bytes that need no decision goes over in one copy.
                    let plain = input
                        .iter()
                        .position(|&b| matches!(b, b'\n' | b' ' | b'\r') || (spaces == 1 && refused(b)))
                        .unwrap_or(input.len());
                    if plain > 0 {
                        self.head.extend_from_slice(&input[..plain]);
                        input = &input[plain..];
                        self.check_head_size();
                        continue;
                    }
                    let b = input[0];
                    input = &input[1..];
                    match b {
                        b'\n' if spaces == 0 => self.pending.push(b), // a blank line before a request
                        b'\n' => {
                            self.head.push(b);
                            // A blank line before a request is allowed; otherwise the headers follow.
                            if spaces > 0 {
                                self.state = State::Headers;
                                self.line.clear();
                                self.content_length = 0;
                                self.chunked_or_upgrade = false;
                            }
                        }
                        b' ' => {
                            self.head.push(b);
                            self.state = State::RequestLine { spaces: spaces.saturating_add(1) };
                        }
                        b if spaces == 1 && refused(b) => {
                            self.head.extend_from_slice(format!("%{b:02X}").as_bytes());
                        }
                        b'\r' if spaces == 0 && self.head.is_empty() => self.pending.push(b),
                        b => self.head.push(b),
                    }
                    self.check_head_size();
                }
                State::Headers => {
                    // A line at a time (or what of it this read holds).
                    let end = input.iter().position(|&b| b == b'\n');
                    let (chunk, rest) = input.split_at(end.map_or(input.len(), |i| i + 1));
                    input = rest;
                    self.head.extend_from_slice(chunk);
                    self.check_head_size();
                    if self.state == State::PassThrough {
                        continue;
                    }
                    if self.line.len() + chunk.len() > MAX_LINE {
                        self.state = State::PassThrough;
                        continue;
                    }
                    self.line.extend_from_slice(chunk);
                    if end.is_none() {
                        continue;
                    }
                    // Taken for the borrow checker and put back after: the buffer is reused.
                    let mut taken = std::mem::take(&mut self.line);
                    let line = taken.strip_suffix(b"\n").unwrap_or(&taken);
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    let blank = line.is_empty();
                    if !blank {
                        self.follow_header_line(line);
                    }
                    taken.clear();
                    self.line = taken;
                    if blank {
                        self.release_head();
                        if self.refusal.is_some() {
                            return;
                        }
                        self.follow_body();
                        continue;
                    }
                }
            }
        }
    }

    /// How much of the start of `input` goes to hyper as it is: body bytes, and whole request
    /// heads that hyper will parse unchanged (their targets need no rewriting), with their
    /// framing followed. It stops where the byte-wise path must take over (a head split over
    /// reads, a target to rewrite, a head to refuse) or at a pass-through.
    fn follow_unchanged(&mut self, input: &[u8]) -> usize {
        let mut used = 0;
        while used < input.len() {
            match self.state {
                State::Body(left) => {
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(input.len() - used);
                    used += n;
                    let left = left - n as u64;
                    self.state = if left == 0 { State::RequestLine { spaces: 0 } } else { State::Body(left) };
                    // The request is whole (an interim 100 Continue may have been written).
                    self.answering |= left == 0;
                }
                State::RequestLine { spaces: 0 } if self.head.is_empty() => {
                    match self.follow_whole_head(&input[used..]) {
                        Some(len) => used += len,
                        None => break,
                    }
                }
                _ => break,
            }
        }
        used
    }

    /// The common case in one step: `input` starts with a whole request head that hyper will
    /// parse as it is. Its framing is followed; returns its length.
    fn follow_whole_head(&mut self, input: &[u8]) -> Option<usize> {
        let mut headers = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut []);
        let httparse::Status::Complete(len) = request.parse_with_uninit_headers(input, &mut headers).ok()? else {
            return None;
        };
        // httparse lets bytes through in a target that hyper's URI parser refuses.
        if request.path?.bytes().any(refused) {
            return None;
        }
        self.content_length = 0;
        self.chunked_or_upgrade = false;
        for header in request.headers.iter() {
            self.follow_header(header.name.as_bytes(), header.value);
        }
        self.follow_body();
        Some(len)
    }

    /// After a head: its body, or the next request line (or pass-through for framing it does
    /// not follow).
    fn follow_body(&mut self) {
        self.answering = true;
        self.state = if self.chunked_or_upgrade {
            State::PassThrough
        } else if self.content_length > 0 {
            State::Body(self.content_length)
        } else {
            State::RequestLine { spaces: 0 }
        };
    }

    /// Notes the framing headers of one header line.
    fn follow_header_line(&mut self, line: &[u8]) {
        let Some(colon) = line.iter().position(|&b| b == b':') else { return };
        self.follow_header(&line[..colon], &line[colon + 1..]);
    }

    /// Notes the framing header `name: value`.
    fn follow_header(&mut self, name: &[u8], value: &[u8]) {
        let (name, value) = (name.trim_ascii(), value.trim_ascii());
        if name.eq_ignore_ascii_case(b"content-length") {
            match std::str::from_utf8(value).ok().and_then(|v| v.parse::<u64>().ok()) {
                Some(n) => self.content_length = n,
                None => self.chunked_or_upgrade = true, // hyper refuses it; stop following
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") || name.eq_ignore_ascii_case(b"upgrade") {
            self.chunked_or_upgrade = true;
        }
    }
}

impl<S> LenientTarget<S> {
    /// A head too long to hold goes to hyper as it is.
    fn check_head_size(&mut self) {
        if self.head.len() > MAX_HEAD {
            self.pending.append(&mut self.head);
            self.state = State::PassThrough;
        }
    }

    /// The head is complete: hand it on if it parses, else prepare the refusal.
    fn release_head(&mut self) {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&self.head) {
            // Usually nothing is pending: hand the head over without copying it.
            Ok(_) if self.pending.is_empty() => std::mem::swap(&mut self.pending, &mut self.head),
            Ok(_) => self.pending.append(&mut self.head),
            Err(e) => {
                let line = self.head.split(|b| *b == b'\n').next().unwrap_or_default();
                let target = String::from_utf8_lossy(line).split(' ').nth(1).unwrap_or_default().to_owned();
                let why = format!("malformed HTTP request: {e}");
                tracing::info!(target, why, "HTTP request refused");
                self.refusal = Some(((self.refuse)(&target, &why), 0));
                self.head.clear();
                self.pending.clear();
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for LenientTarget<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if let Some((answer, written)) = &mut this.refusal {
                while *written < answer.len() {
                    match Pin::new(&mut this.inner).poll_write(cx, &answer[*written..]) {
                        Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Poll::Ready(Ok(())),
                        Poll::Ready(Ok(n)) => *written += n,
                        Poll::Pending => return Poll::Pending,
                    }
                }
                let _ = Pin::new(&mut this.inner).poll_flush(cx);
                return Poll::Ready(Ok(())); // the end of the stream, for hyper
            }
            if this.pending_at < this.pending.len() {
                let n = (this.pending.len() - this.pending_at).min(buf.remaining());
                buf.put_slice(&this.pending[this.pending_at..this.pending_at + n]);
                this.pending_at += n;
                if this.pending_at == this.pending.len() {
                    this.pending.clear();
                    this.pending_at = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.state == State::PassThrough {
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            if this.head.is_empty() && this.pending.is_empty() {
                // Nothing held back: read straight into the reader's buffer, and take out only
                // what must be rewritten or held (rare).
                let before = buf.filled().len();
                if Pin::new(&mut this.inner).poll_read(cx, buf)?.is_pending() {
                    return this.pending_read(cx);
                }
                let read = &buf.filled()[before..];
                let unchanged = this.follow_unchanged(read);
                if unchanged == read.len() {
                    return Poll::Ready(Ok(())); // also the end of the stream (nothing read)
                }
                let rest = read[unchanged..].to_vec();
                buf.set_filled(before + unchanged);
                this.transform(&rest);
                if unchanged > 0 {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            let mut raw = std::mem::take(&mut this.raw);
            let mut read = ReadBuf::new(&mut raw);
            let polled = Pin::new(&mut this.inner).poll_read(cx, &mut read);
            let n = read.filled().len();
            let result = match polled {
                Poll::Ready(Ok(())) if n == 0 => Some(Poll::Ready(Ok(()))), // end of stream
                Poll::Ready(Ok(())) => {
                    this.transform(&raw[..n]);
                    None
                }
                other => Some(other),
            };
            this.raw = raw;
            match result {
                Some(Poll::Pending) => return this.pending_read(cx),
                Some(r) => return r,
                None => {}
            }
        }
    }
}

impl<S> LenientTarget<S> {
    /// The connection has nothing to read now: pending, or the end of it when a head is overdue.
    fn pending_read(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.head_overdue(cx) {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "request head not complete in time")));
        }
        Poll::Pending
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for LenientTarget<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, data);
        self.wrote(&written);
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.wrote(&written);
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refuse(target: &str, why: &str) -> Vec<u8> {
        format!("REFUSED {target} {why}").into_bytes()
    }

    fn through(chunks: &[&[u8]]) -> String {
        let mut t = LenientTarget::new((), refuse);
        for c in chunks {
            t.transform(c);
        }
        String::from_utf8_lossy(&t.pending).into_owned()
    }

    #[test]
    fn quotes_in_targets_are_encoded_and_nothing_else_changes() {
        let get = b"GET /vapix/call?format=simple&SIPAccountId=\"peer-to-peer\" HTTP/1.1\r\nHost: \"x\"\r\n\r\n";
        assert_eq!(
            through(&[get]),
            "GET /vapix/call?format=simple&SIPAccountId=%22peer-to-peer%22 HTTP/1.1\r\nHost: \"x\"\r\n\r\n"
        );
        // Split anywhere, with a body that holds quotes, then a second request on the connection.
        let two = b"POST /a?b=\"1\" HTTP/1.1\r\nContent-Length: 5\r\n\r\n\"x\"{}GET /c?d={e} HTTP/1.1\r\n\r\n";
        let whole = through(&[two]);
        let split: Vec<&[u8]> = two.chunks(3).collect();
        assert_eq!(through(&split), whole);
        assert_eq!(
            whole,
            "POST /a?b=%221%22 HTTP/1.1\r\nContent-Length: 5\r\n\r\n\"x\"{}GET /c?d=%7Be%7D HTTP/1.1\r\n\r\n"
        );
    }

    #[test]
    fn chunked_bodies_and_upgrades_pass_through() {
        let chunked =
            b"POST /t HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n\"\"\"\r\n0\r\n\r\nGET /\" HTTP/1.1\r\n";
        assert!(through(&[chunked]).ends_with("GET /\" HTTP/1.1\r\n"), "no rewriting after a chunked body");
        let upgrade = b"GET /ws?x=\"1\" HTTP/1.1\r\nUpgrade: websocket\r\n\r\n\x81\x05\"{}\"|";
        assert_eq!(through(&[upgrade]), "GET /ws?x=%221%22 HTTP/1.1\r\nUpgrade: websocket\r\n\r\n\u{fffd}\u{5}\"{}\"|");
    }

    /// The head deadline counts from the last answer written, never while a request is being
    /// answered, and ends the connection with a read error once passed.
    #[tokio::test(start_paused = true)]
    async fn a_late_head_ends_the_connection_but_a_slow_answer_does_not() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut client, server) = tokio::io::duplex(4096);
        let mut server = LenientTarget::new(server, refuse).with_head_timeout(Duration::from_secs(10));
        let mut buf = [0u8; 256];
        client.write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
        let n = server.read(&mut buf).await.expect("the head");
        assert!(buf[..n].starts_with(b"GET /a "));
        // Being answered: 30 s with nothing to read is not a late head.
        let waited = tokio::time::timeout(Duration::from_secs(30), server.read(&mut buf)).await;
        assert!(waited.is_err(), "still waiting after 30 s while answering: {waited:?}");
        server.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").await.expect("answer");
        let answered = Instant::now();
        let late = server.read(&mut buf).await.expect_err("the next head is late");
        assert_eq!(late.kind(), io::ErrorKind::TimedOut);
        assert_eq!(answered.elapsed(), Duration::from_secs(10), "10 s after the answer");
    }

    #[test]
    fn a_malformed_head_is_refused_with_the_builders_answer() {
        let mut t = LenientTarget::new((), refuse);
        t.transform(b"GET /vapix/call?x=1 HTTP/1.1\r\nHost a\r\n\r\n");
        let (answer, _) = t.refusal.clone().expect("refused");
        let answer = String::from_utf8_lossy(&answer).into_owned();
        assert!(answer.starts_with("REFUSED /vapix/call?x=1 malformed HTTP request"), "{answer}");
        assert!(t.pending.is_empty(), "nothing reaches hyper");
    }
}
