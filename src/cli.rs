//! Command-line flags; each also reads a `DOORSIM_*` environment variable.

use std::net::SocketAddr;

use clap::Parser;

/// An emulator of an Axis network door station.
#[derive(Debug, Clone, Parser)]
#[command(name = "doorsim", version, about)]
pub struct Cli {
    /// HTTP API listen address.
    #[arg(long, env = "DOORSIM_HTTP", default_value = "0.0.0.0:8080")]
    pub http: SocketAddr,

    /// RTSP event-stream listen address.
    #[arg(long, env = "DOORSIM_RTSP", default_value = "0.0.0.0:8554")]
    pub rtsp: SocketAddr,

    /// An account for HTTP auth as NAME:PASS; repeatable.
    #[arg(long = "user", env = "DOORSIM_USER", value_delimiter = ',', default_value = "root:pass", value_parser = parse_user)]
    pub users: Vec<(String, String)>,

    /// Address the SIP and RTP sockets bind to (default: the HTTP address's IP).
    #[arg(long, env = "DOORSIM_SIP_ADDR")]
    pub sip_addr: Option<std::net::IpAddr>,

    /// Answer incoming SIP calls after SECS seconds (default: never; the control API can answer).
    #[arg(long, env = "DOORSIM_AUTO_ANSWER", value_name = "SECS", value_parser = parse_seconds)]
    pub auto_answer: Option<std::time::Duration>,

    /// PEM certificate chain for SIP over TLS (default: a self-signed certificate made at start).
    #[arg(long, env = "DOORSIM_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,

    /// PEM private key for `--tls-cert`.
    #[arg(long, env = "DOORSIM_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,

    /// Run every device timer N times faster (CallingTimeout, VMS Timeout, retention...).
    #[arg(long, env = "DOORSIM_TIME_SCALE", default_value_t = 1.0, value_parser = parse_time_scale)]
    pub time_scale: f64,

    /// Whom the call button (input port 0) calls: `VMS_CALL` or a SIP URI.
    #[arg(long, env = "DOORSIM_CALL_BUTTON_RECIPIENT", default_value = "VMS_CALL")]
    pub call_button_recipient: String,

    /// Device model: a built-in profile (A8207-VE, A8105-E, I8116-E) or a JSON file path.
    #[arg(long, env = "DOORSIM_PROFILE", default_value = crate::profile::DEFAULT_PROFILE)]
    pub profile: String,

    /// Tracing filter, e.g. `info` or `doorsim=debug`.
    #[arg(long, env = "DOORSIM_LOG", default_value = "info")]
    pub log: String,
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
    }
}
