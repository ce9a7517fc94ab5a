//! Command-line flags; each also reads a `DOORSIM_*` environment variable. `doorsim` alone runs
//! one device; `doorsim fleet` runs many, `doorsim load` drives call flows against a system under
//! test. The device flags (`--profile`, `--user`, `--auto-answer`, `--time-scale`, ...) apply to
//! every mode and may come before or after the mode's name.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// An emulator of an Axis network door station.
#[derive(Debug, Clone, Parser)]
#[command(name = "doorsim", version, about)]
pub struct Cli {
    /// `fleet` or `load`; one device when absent.
    #[command(subcommand)]
    pub mode: Option<Mode>,

    /// HTTP API listen address (`HOST:PORT`; host names resolve).
    #[arg(long, env = "DOORSIM_HTTP", default_value = "0.0.0.0:8080", value_parser = parse_address)]
    pub http: SocketAddr,

    /// RTSP event-stream listen address (default: port 8554 of the HTTP address's IP).
    #[arg(long, env = "DOORSIM_RTSP", value_parser = parse_address)]
    pub rtsp: Option<SocketAddr>,

    /// An account for HTTP auth as NAME:PASS; repeatable.
    #[arg(global = true, long = "user", env = "DOORSIM_USER", value_delimiter = ',', default_value = "root:pass", value_parser = parse_user)]
    pub users: Vec<(String, String)>,

    /// Address the SIP and RTP sockets bind to (default: the HTTP address's IP).
    #[arg(long, env = "DOORSIM_SIP_ADDR")]
    pub sip_addr: Option<std::net::IpAddr>,

    /// The factory SIP port, TLS on the next (default 5060 and 5061). Devices of other brands
    /// than Axis listen there from the start; an Axis device once its SIP is enabled.
    #[arg(global = true, long, env = "DOORSIM_SIP_PORT", value_parser = clap::value_parser!(u16).range(1..=65534))]
    pub sip_port: Option<u16>,

    /// Where a Suprema device serves the G-SDK VoIP gRPC API (default: the HTTP address's IP,
    /// port 4000); in a fleet only the port counts.
    #[arg(global = true, long, env = "DOORSIM_GRPC", value_name = "ADDR:PORT")]
    pub grpc: Option<std::net::SocketAddr>,

    /// Answer incoming SIP calls after SECS seconds (default: never; the control API can answer).
    #[arg(global = true, long, env = "DOORSIM_AUTO_ANSWER", value_name = "SECS", value_parser = parse_seconds)]
    pub auto_answer: Option<std::time::Duration>,

    /// PEM certificate chain for SIP over TLS (default: a self-signed certificate made at start).
    #[arg(global = true, long, env = "DOORSIM_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,

    /// PEM private key for `--tls-cert`.
    #[arg(global = true, long, env = "DOORSIM_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,

    /// Run every device timer N times faster (CallingTimeout, VMS Timeout, retention...).
    #[arg(global = true, long, env = "DOORSIM_TIME_SCALE", default_value_t = 1.0, value_parser = parse_time_scale)]
    pub time_scale: f64,

    /// Whom the call button (input port 0) calls: `VMS_CALL` or a SIP URI.
    #[arg(global = true, long, env = "DOORSIM_CALL_BUTTON_RECIPIENT", default_value = "VMS_CALL", value_parser = parse_recipient)]
    pub call_button_recipient: String,

    /// Device model: a built-in profile (A8207-VE, A8105-E, I8116-E) or a JSON file path.
    #[arg(global = true, long, env = "DOORSIM_PROFILE", default_value = crate::profile::DEFAULT_PROFILE)]
    pub profile: String,

    /// Calls that may be in progress at once on each device.
    #[arg(global = true, long, env = "DOORSIM_MAX_CALLS", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_calls: u32,

    /// Also serve everything the HTTP port serves over HTTPS here (e.g. `0.0.0.0:8443`), with
    /// the certificate SIP over TLS uses (`--tls-cert`/`--tls-key`, else a self-signed one).
    #[arg(long, env = "DOORSIM_HTTPS", value_name = "ADDR:PORT")]
    pub https: Option<SocketAddr>,

    /// Keep the configuration in this file across restarts (a fleet: in this directory, one
    /// `device-<i>.json` per device). Memory only when absent.
    #[arg(global = true, long, env = "DOORSIM_STATE")]
    pub state: Option<PathBuf>,

    /// Write the SIP and RTP traffic the device sends and receives to this pcap file (a fleet:
    /// in this directory, one `device-<i>.pcap` per device).
    #[arg(global = true, long, env = "DOORSIM_PCAP", value_name = "PATH")]
    pub pcap: Option<PathBuf>,

    /// Tracing filter, e.g. `info` or `doorsim=debug`.
    #[arg(global = true, long, env = "DOORSIM_LOG", default_value = "info")]
    pub log: String,

    /// Log lines as readable text, or as one JSON object per line for log shippers.
    #[arg(global = true, long, env = "DOORSIM_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// How log lines are written (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `2026-11-29T18:00:00Z  INFO doorsim::calls::engine: call state call=… state=Ringing`.
    Text,
    /// `{"timestamp":…,"level":"INFO","fields":{"message":"call state",…},"target":…}`.
    Json,
}

/// What `doorsim` runs besides one device.
#[derive(Debug, Clone, Subcommand)]
pub enum Mode {
    /// Run many devices in one process, each on its own loopback address.
    Fleet(FleetArgs),
    /// Door stations that drive call flows against a system under test.
    Load(LoadArgs),
}

/// Where the devices of a fleet live.
#[derive(Debug, Clone, Args)]
pub struct Placement {
    /// The first device's address; device i is this address plus i (carrying across octets).
    #[arg(long, env = "DOORSIM_BASE", default_value = "127.1.0.1")]
    pub base: Ipv4Addr,

    /// The HTTP port every device listens on, on its own address.
    #[arg(long, env = "DOORSIM_HTTP_PORT", default_value_t = 8080)]
    pub http_port: u16,

    /// The RTSP port every device listens on, on its own address.
    #[arg(long, env = "DOORSIM_RTSP_PORT", default_value_t = 8554)]
    pub rtsp_port: u16,

    /// The index of the first device: its identity (serial, state file) and the others' count
    /// on from it, so a slice of a larger site keeps its devices' identities across restarts.
    #[arg(long, env = "DOORSIM_FIRST_INDEX", default_value_t = 0)]
    pub first_index: usize,

    /// Put every device on --base (any IPv4 address, e.g. a pod's), each device's ports this
    /// far apart from the previous one's (HTTP, RTSP, SIP, gRPC); at least 2. 0: an address per
    /// device.
    #[arg(long, env = "DOORSIM_PORT_STEP", default_value_t = 0)]
    pub port_step: u16,
}

impl Placement {
    /// The fleet layout these flags describe.
    pub fn layout(&self) -> crate::fleet::Layout {
        crate::fleet::Layout { base: self.base, first_index: self.first_index, port_step: self.port_step }
    }
}

/// `doorsim fleet`.
#[derive(Debug, Clone, Args)]
pub struct FleetArgs {
    /// How many devices (with `--fleet-file`: at least those the file names).
    #[arg(value_name = "N")]
    pub count: Option<usize>,

    /// A JSON or TOML file describing the site: per device or range, profile, address, set-up.
    #[arg(long, env = "DOORSIM_FLEET_FILE")]
    pub fleet_file: Option<PathBuf>,

    /// Where the fleet's management API listens.
    #[arg(long, env = "DOORSIM_MANAGE", default_value = "127.0.0.1:8079")]
    pub manage: SocketAddr,

    #[command(flatten)]
    pub placement: Placement,
}

/// `doorsim load`.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Door stations placing the calls.
    #[arg(long, default_value_t = 1)]
    pub doors: usize,

    /// The SIP URI every call goes to (`sip:USER@HOST:PORT`).
    #[arg(long, required_unless_present = "vms")]
    pub target: Option<String>,

    /// Raise VMS calls instead, answered by the VMS under test streaming audio.
    #[arg(long)]
    pub vms: bool,

    /// New calls per second.
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,

    /// Calls in total.
    #[arg(long, default_value_t = 1)]
    pub calls: u64,

    /// How long each answered call stays up (`1s`, `500ms`, `2m`).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub hold: Duration,

    /// DTMF digits each call sends (RFC 4733) once answered.
    #[arg(long)]
    pub dtmf: Option<String>,

    /// Register every door at this registrar (`HOST[:PORT]`) as user `door<i>`.
    #[arg(long)]
    pub register: Option<String>,

    /// The password for `--register`.
    #[arg(long, default_value = "")]
    pub password: String,

    /// Write every call's outcome here (`.json` or `.csv`).
    #[arg(long)]
    pub report: Option<PathBuf>,

    /// Fail (exit status 1) when more calls than this fail.
    #[arg(long, default_value_t = 0)]
    pub max_failures: u64,

    /// Give up on a call that is not answered within this time.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub answer_timeout: Duration,

    #[command(flatten)]
    pub placement: Placement,
}

/// A flag value clap refuses, with what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    /// `--auto-answer`.
    #[error("{0:?} is not a number of seconds between 0 and 3600")]
    Seconds(String),
    /// `--time-scale`.
    #[error("{0:?} is not a time scale between 0.001 and 1000000")]
    TimeScale(String),
    /// `--user`.
    #[error("{0:?} is not NAME:PASS")]
    User(String),
    /// `--http`, `--rtsp`: not `HOST:PORT`, or the host does not resolve.
    #[error("{0:?} is not HOST:PORT with a host that resolves ({1})")]
    Address(String, String),
    /// `--call-button-recipient`.
    #[error("{0:?} is neither VMS_CALL nor a SIP URI ({1})")]
    Recipient(String, String),
}

/// `HOST:PORT`, resolving a host name (`localhost:8080`) to its first address.
fn parse_address(s: &str) -> Result<SocketAddr, FlagError> {
    use std::net::ToSocketAddrs;
    let mut addresses = s.to_socket_addrs().map_err(|e| FlagError::Address(s.to_owned(), e.to_string()))?;
    addresses.next().ok_or_else(|| FlagError::Address(s.to_owned(), "no address".to_owned()))
}

/// `VMS_CALL` or a SIP URI the device could call.
fn parse_recipient(s: &str) -> Result<String, FlagError> {
    if s == crate::calls::VMS_CALL {
        return Ok(s.to_owned());
    }
    crate::model::address::validate_sip_uri(s, "--call-button-recipient")
        .map(|()| s.to_owned())
        .map_err(|e| FlagError::Recipient(s.to_owned(), e.to_string()))
}

fn parse_seconds(s: &str) -> Result<std::time::Duration, FlagError> {
    match s.parse::<f64>() {
        Ok(n) if n.is_finite() && (0.0..=3600.0).contains(&n) => Ok(std::time::Duration::from_secs_f64(n)),
        _ => Err(FlagError::Seconds(s.to_owned())),
    }
}

fn parse_time_scale(s: &str) -> Result<f64, FlagError> {
    match s.parse::<f64>() {
        Ok(n) if n.is_finite() && (0.001..=1_000_000.0).contains(&n) => Ok(n),
        _ => Err(FlagError::TimeScale(s.to_owned())),
    }
}

fn parse_user(s: &str) -> Result<(String, String), FlagError> {
    match s.split_once(':') {
        Some((name, pass)) if !name.is_empty() => Ok((name.to_owned(), pass.to_owned())),
        _ => Err(FlagError::User(s.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_repeated_users() {
        let c = Cli::try_parse_from(["doorsim"]).expect("defaults");
        assert_eq!(c.http.port(), 8080);
        assert_eq!(c.users, vec![("root".to_owned(), "pass".to_owned())]);
        let c = Cli::try_parse_from(["doorsim", "--user", "a:b", "--user", "c:d:e"]).expect("users");
        assert_eq!(c.users[1], ("c".to_owned(), "d:e".to_owned()));
        assert!(Cli::try_parse_from(["doorsim", "--user", "nopass"]).is_err());
        assert!(Cli::try_parse_from(["doorsim", "--http", "nonsense"]).is_err());
        assert_eq!(Cli::try_parse_from(["doorsim", "--time-scale", "100"]).expect("scale").time_scale, 100.0);
        assert!(Cli::try_parse_from(["doorsim", "--time-scale", "0"]).is_err());
        assert!(Cli::try_parse_from(["doorsim", "--time-scale", "NaN"]).is_err());
        assert!(c.mode.is_none());
        let c = Cli::try_parse_from(["doorsim", "--http", "localhost:8081"]).expect("a host name");
        assert!(c.http.ip().is_loopback() && c.http.port() == 8081);
        assert!(Cli::try_parse_from(["doorsim", "--call-button-recipient", "sip:guard@127.0.0.1"]).is_ok());
        assert!(Cli::try_parse_from(["doorsim", "--call-button-recipient", "guard"]).is_err());
    }

    #[test]
    fn modes_take_the_device_flags_on_either_side() {
        let c = Cli::try_parse_from(["doorsim", "fleet", "50", "--profile", "I8116-E", "--max-calls", "40"])
            .expect("fleet");
        let Some(Mode::Fleet(f)) = &c.mode else { panic!("fleet") };
        assert_eq!((f.count, f.placement.base, f.placement.http_port), (Some(50), Ipv4Addr::new(127, 1, 0, 1), 8080));
        assert_eq!((c.profile.as_str(), c.max_calls), ("I8116-E", 40));
        let c = Cli::try_parse_from([
            "doorsim",
            "--auto-answer",
            "0",
            "load",
            "--doors",
            "5",
            "--target",
            "sip:a@127.0.0.1",
            "--hold",
            "500ms",
        ])
        .expect("load");
        let Some(Mode::Load(l)) = &c.mode else { panic!("load") };
        assert_eq!((l.doors, l.hold), (5, Duration::from_millis(500)));
        assert!(Cli::try_parse_from(["doorsim", "load"]).is_err(), "a target or --vms is required");
        assert!(Cli::try_parse_from(["doorsim", "--max-calls", "0"]).is_err());
    }
}
