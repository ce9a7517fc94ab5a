//! `--pcap`: the SIP and RTP traffic a device sends and receives, written as it happens to a
//! pcap file that Wireshark and tshark read.
//!
//! The device works with sockets, not frames, so each datagram or stream write is written as
//! the IP packet that carried it (link type RAW): UDP as it was, SIP over TCP as TCP segments
//! with sequence numbers counted per direction (no handshake; Wireshark follows the stream),
//! and SIP over TLS as the clear text inside it, on the TLS connection's addresses. Packets are
//! built by `etherparse` and encoded by `pcap-file`. Every packet goes to the file in one write,
//! so the file is readable while the device runs; at [`MAX_BYTES`] the capture stops (logged).

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use etherparse::PacketBuilder;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::DataLink;

/// The largest file a capture writes.
pub const MAX_BYTES: u64 = 1 << 30;
/// TCP directions whose sequence numbers are followed at once; more start over.
const MAX_STREAMS: usize = 4096;

/// How a payload travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    /// A UDP datagram.
    Udp,
    /// A write on a TCP (or TLS) connection.
    Tcp,
}

/// A pcap file being written.
#[derive(Debug)]
pub struct Capture {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Encodes records into `encoded`; `None` once the file is full or failed.
    writer: Option<PcapWriter<Encoded>>,
    encoded: Encoded,
    file: File,
    written: u64,
    /// The next sequence number per TCP direction (from, to).
    next_seq: HashMap<(SocketAddr, SocketAddr), u32>,
}

/// Where `pcap-file` encodes a record, taken from there and written to the file in one call
/// (its writer has no flush of its own to call after each record).
#[derive(Debug, Clone, Default)]
struct Encoded(Arc<Mutex<Vec<u8>>>);

impl Encoded {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

impl Write for Encoded {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    /// Creates (or truncates) the pcap file at `path`.
    pub fn create(path: &Path) -> Result<Capture, String> {
        let failed = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| failed(&e))?;
        }
        let mut file = File::create(path).map_err(|e| failed(&e))?;
        let header = PcapHeader { datalink: DataLink::RAW, ..PcapHeader::default() };
        let encoded = Encoded::default();
        let writer = PcapWriter::with_header(encoded.clone(), header).map_err(|e| failed(&e))?;
        let header = encoded.take();
        file.write_all(&header).map_err(|e| failed(&e))?;
        let written = header.len() as u64;
        let inner = Inner { writer: Some(writer), encoded, file, written, next_seq: HashMap::new() };
        Ok(Capture { inner: Mutex::new(inner) })
    }

    /// Writes `payload`, sent from `from` to `to` over `carrier`, as one packet.
    pub fn packet(&self, carrier: Carrier, from: SocketAddr, to: SocketAddr, payload: &[u8]) {
        let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(ip) = ip_builder(from.ip(), to.ip()) else { return };
        let mut frame = Vec::with_capacity(payload.len() + 60);
        let built = match carrier {
            Carrier::Udp => ip.udp(from.port(), to.port()).write(&mut frame, payload).is_ok(),
            Carrier::Tcp => {
                if inner.next_seq.len() >= MAX_STREAMS {
                    inner.next_seq.clear();
                }
                let ack = inner.next_seq.get(&(to, from)).copied().unwrap_or(0);
                let seq = inner.next_seq.entry((from, to)).or_insert(1);
                let this = *seq;
                *seq = seq.wrapping_add(payload.len() as u32);
                ip.tcp(from.port(), to.port(), this, u16::MAX).psh().ack(ack).write(&mut frame, payload).is_ok()
            }
        };
        if built {
            inner.write(&frame); // else too large for one IP packet
        }
    }
}

impl Inner {
    fn write(&mut self, frame: &[u8]) {
        let Some(writer) = self.writer.as_mut() else { return };
        let timestamp = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let len = frame.len() as u32;
        let record = writer.write_packet(&PcapPacket::new(timestamp, len, frame)).map(|_| self.encoded.take());
        let result = record.map_err(|e| e.to_string()).and_then(|r| {
            self.written += r.len() as u64;
            self.file.write_all(&r).map_err(|e| e.to_string())
        });
        if let Err(e) = result {
            tracing::warn!(error = e, "packet capture stopped");
            self.writer = None;
        } else if self.written >= MAX_BYTES {
            tracing::warn!(limit = MAX_BYTES, "packet capture stopped: the file reached its limit");
            self.writer = None;
        }
    }
}

/// A capture seen from one local address (a call's RTP socket).
#[derive(Debug, Clone)]
pub struct Tap {
    capture: Arc<Capture>,
    local: SocketAddr,
}

impl Tap {
    /// `capture` as seen from `local`.
    pub fn new(capture: Arc<Capture>, local: SocketAddr) -> Tap {
        Tap { capture, local }
    }

    /// A datagram sent to `to`.
    pub fn sent(&self, to: SocketAddr, payload: &[u8]) {
        self.capture.packet(Carrier::Udp, self.local, to, payload);
    }

    /// A datagram received from `from`.
    pub fn received(&self, from: SocketAddr, payload: &[u8]) {
        self.capture.packet(Carrier::Udp, from, self.local, payload);
    }
}

/// The IP layer between two addresses of one family (IPv4-mapped IPv6 counts as IPv4).
fn ip_builder(from: IpAddr, to: IpAddr) -> Option<etherparse::PacketBuilderStep<etherparse::IpHeaders>> {
    match (from.to_canonical(), to.to_canonical()) {
        (IpAddr::V4(a), IpAddr::V4(b)) => Some(PacketBuilder::ipv4(a.octets(), b.octets(), 64)),
        (IpAddr::V6(a), IpAddr::V6(b)) => Some(PacketBuilder::ipv6(a.octets(), b.octets(), 64)),
        _ => None,
    }
}
