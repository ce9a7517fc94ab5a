//! The `doorsim` binary: parse flags, start one device (or a fleet, or a load test), print the
//! banner, stop on Ctrl-C.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};

use clap::Parser;
use tokio::signal::unix::{Signal, SignalKind};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use std::process::ExitCode;
use std::sync::Arc;

use doorsim::cli::{Cli, FleetArgs, LogFormat, Mode, Placement};

/// mimalloc in place of glibc's allocator: a request, a call and an event allocate many small
/// short-lived values on two worker threads, which glibc's arenas serve slowly (the HTTP and
/// SIP benchmarks showed malloc and free near the top of the profile).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use doorsim::device::{Device, DeviceConfig};
use doorsim::fleet::file::FleetFile;
use doorsim::fleet::manage::Manage;
use doorsim::fleet::{self, Common, Fleet};
use doorsim::profile::{Brand, Profile};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_new(&cli.log).unwrap_or_else(|e| {
        eprintln!("doorsim: bad --log filter {:?} ({e}); using info", cli.log);
        EnvFilter::new("info")
    });
    // Colours only on a terminal: a log file or a pipe gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.with_ansi(ansi).init(),
        LogFormat::Json => logs.json().init(),
    }

    match cli.mode.clone() {
        Some(Mode::Fleet(args)) => run_fleet(&cli, &args).await,
        Some(Mode::Load(args)) => doorsim::load::run(&common(&cli, &args.placement), &args).await,
        None => run_device(&cli).await,
    }
}

/// The device flags, for every device of a fleet or load test.
fn common(cli: &Cli, placement: &Placement) -> Common {
    Common {
        users: cli.users.clone(),
        time_scale: cli.time_scale,
        button_recipient: cli.call_button_recipient.clone(),
        auto_answer: cli.auto_answer,
        tls_cert_and_key: cli.tls_cert.clone().zip(cli.tls_key.clone()),
        max_calls: cli.max_calls as usize,
        sip_port: cli.sip_port,
        grpc_port: cli.grpc.map(|a| a.port()),
        profile: cli.profile.clone(),
        state_dir: cli.state.clone(),
        pcap_dir: cli.pcap.clone(),
        http_port: placement.http_port,
        rtsp_port: placement.rtsp_port,
    }
}

async fn run_fleet(cli: &Cli, args: &FleetArgs) -> ExitCode {
    let mut signals = StopSignals::new();
    let file = match &args.fleet_file {
        Some(path) => match FleetFile::load(path) {
            Ok(f) => f,
            Err(e) => return fail(&e),
        },
        None => FleetFile::default(),
    };
    let plans = match fleet::plan(args.count.unwrap_or(0), &file, args.placement.layout(), &cli.profile) {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    let shutdown = CancellationToken::new();
    let started = std::time::Instant::now();
    let fleet = match Fleet::start(plans, &common(cli, &args.placement), shutdown.clone()).await {
        Ok(f) => f,
        Err(e) => return fail(&e),
    };
    let manage = match tokio::net::TcpListener::bind(args.manage).await {
        Ok(l) => l,
        Err(e) => {
            shutdown.cancel();
            fleet.stopped().await;
            return fail(&format!("cannot listen on --manage {}: {e}", args.manage));
        }
    };
    let manage_addr = manage.local_addr().unwrap_or(args.manage);
    let tracker = tokio_util::task::TaskTracker::new();
    let manage_app = Arc::new(Manage::new(&fleet));
    tracker.spawn(doorsim::http::server::run(manage, manage_app, None, shutdown.clone(), tracker.clone()));
    let (first, last) = (&fleet.members[0], &fleet.members[fleet.members.len() - 1]);
    let (user, pass) = &cli.users[0];
    let banner = format!(
        "doorsim fleet — {n} emulated door stations, started in {ms} ms\n\
         \x20 Devices     {a} ({ai}) … {b} ({bi}), HTTP port {hp}, RTSP port {rp}{step}\n\
         \x20 Management  http://{manage_addr}/emulator/v1/fleet   (listening on {manage_addr})\n\
         \x20 Try         curl --anyauth -u '{user}:{pass}' http://{a}:{hp}/axis-cgi/basicdeviceinfo.cgi -d '{{\"apiVersion\":\"1.0\",\"method\":\"getAllProperties\"}}'\n\
         \x20 Stop with Ctrl-C\n",
        n = fleet.members.len(),
        ms = started.elapsed().as_millis(),
        a = first.address,
        ai = first.index,
        b = last.address,
        bi = last.index,
        hp = args.placement.http_port,
        rp = args.placement.rtsp_port,
        step = match args.placement.port_step {
            0 => String::new(),
            s => format!(" (the first device's; each next device's ports {s} higher)"),
        },
    );
    print(&banner);
    if !stop_gracefully(&mut signals, &shutdown, fleet.wind_down()).await {
        return ExitCode::FAILURE;
    }
    shutdown.cancel();
    fleet.stopped().await;
    tracker.close();
    tracker.wait().await;
    ExitCode::SUCCESS
}

fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("doorsim: {e}");
    ExitCode::FAILURE
}

/// Ctrl-C and SIGTERM, as one stream of stop requests.
struct StopSignals {
    interrupt: Option<Signal>,
    terminate: Option<Signal>,
}

impl StopSignals {
    fn new() -> Self {
        let listen =
            |kind| tokio::signal::unix::signal(kind).map_err(|e| eprintln!("doorsim: no signal handler: {e}")).ok();
        Self { interrupt: listen(SignalKind::interrupt()), terminate: listen(SignalKind::terminate()) }
    }

    /// The next Ctrl-C or SIGTERM (pending forever without handlers).
    async fn next(&mut self) {
        tokio::select! {
            () = next_of(self.interrupt.as_mut()) => {}
            () = next_of(self.terminate.as_mut()) => {}
        }
    }
}

/// The next delivery of `signal`, or never without a handler.
async fn next_of(signal: Option<&mut Signal>) {
    match signal {
        Some(s) => drop(s.recv().await),
        None => std::future::pending().await,
    }
}

/// Waits for a stop request, then winds down gracefully with `wind_down` (calls ended,
/// accounts un-registered); a second request during that exits at once. Returns false when the
/// stop was forced.
async fn stop_gracefully(
    signals: &mut StopSignals,
    shutdown: &CancellationToken,
    wind_down: impl std::future::Future<Output = ()>,
) -> bool {
    tokio::select! {
        () = signals.next() => {}
        () = shutdown.cancelled() => {}
    }
    tokio::select! {
        () = wind_down => true,
        () = signals.next() => {
            eprintln!("doorsim: second stop request, exiting now");
            false
        }
    }
}

/// Writes to stdout; a closed stdout (a pipe whose reader went away) must not stop anything.
fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

async fn run_device(cli: &Cli) -> ExitCode {
    let mut signals = StopSignals::new();
    // Room for the HTTP connection limit (clients, streams, slow clients): as far as the hard
    // limit allows.
    if let Err(e) = rlimit::increase_nofile_limit(8192) {
        tracing::warn!(error = %e, "could not raise the open-files limit");
    }
    let profile = match Profile::load(&cli.profile) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("doorsim: {e}");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = CancellationToken::new();
    let config = DeviceConfig {
        http: cli.http,
        rtsp: cli.rtsp.unwrap_or_else(|| std::net::SocketAddr::new(cli.http.ip(), 8554)),
        users: cli.users.clone(),
        time_scale: cli.time_scale,
        button_recipient: cli.call_button_recipient.clone(),
        profile: profile.clone(),
        sip_addr: cli.sip_addr,
        sip_port: cli.sip_port,
        grpc: cli.grpc,
        auto_answer: cli.auto_answer,
        tls_cert_and_key: cli.tls_cert.clone().zip(cli.tls_key.clone()),
        max_calls: cli.max_calls as usize,
        setup: Vec::new(),
        state: cli.state.clone(),
        pcap: cli.pcap.clone(),
        https: cli.https,
        metrics: doorsim::metrics::DeviceMetrics::default(),
    };
    let device = match Device::start(config, shutdown.clone()).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("doorsim: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    print_banner(cli, &device, &profile);
    if !stop_gracefully(&mut signals, &shutdown, device.wind_down()).await {
        return ExitCode::FAILURE;
    }
    shutdown.cancel();
    device.stopped().await;
    ExitCode::SUCCESS
}

fn print_banner(cli: &Cli, device: &Device, profile: &Profile) {
    let reachable = |mut addr: std::net::SocketAddr| {
        if addr.ip().is_unspecified() {
            addr.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        addr
    };
    let (addr, rtsp) = (reachable(device.http_addr), reachable(device.rtsp_addr));
    let (user, pass) = &cli.users[0];
    let curl = format!("curl --anyauth -u '{user}:{pass}'");
    let api = match profile.brand {
        Brand::Axis => format!(
            "\x20 Call service API  http://{addr}/vapix/call   (listening on {listen})\n\
             \x20 Try               {curl} http://{addr}/vapix/call -d '{{\"axcall:GetSIPConfiguration\":{{}}}}'\n\
             \x20 Simple format     {curl} 'http://{addr}/vapix/call?format=simple&action=axcall:GetSIPConfiguration'\n",
            listen = device.http_addr,
        ),
        Brand::TwoN => format!(
            "\x20 2N HTTP API       http://{addr}/api/phone/config\n\
             \x20 Try               {curl} http://{addr}/api/phone/config\n\
             \x20 Upload            {curl} -X PUT http://{addr}/api/phone/config -d '{{\"accounts\":[{{\"account\":1,\"enabled\":true,\"sipNumber\":\"4001\"}}]}}'\n"
        ),
        Brand::BasIp => {
            let hashed = doorsim::facades::bas_ip::password_hash(pass);
            format!(
                "\x20 BAS-IP API v0     http://{addr}/api/v0/sip/settings   (a login token, not HTTP auth)\n\
                 \x20 Log in            curl 'http://{addr}/api/v0/login?username=admin&password={hashed}'\n\
                 \x20 Then              curl -H 'Authorization: Bearer TOKEN' http://{addr}/api/v0/sip/settings\n"
            )
        }
        Brand::V1Cgi => format!(
            "\x20 v1.cgi API        http://{addr}/api/v1.cgi/intercom/sip/config\n\
             \x20 Try               {curl} http://{addr}/api/v1.cgi/intercom/sip/config\n"
        ),
        Brand::Suprema => format!(
            "\x20 G-SDK VoIP gRPC   {grpc}   (voip.VOIP and gsdk.voip.VOIP; protos in proto/suprema)\n\
             \x20 Try               grpcurl -plaintext -import-path proto/suprema -proto voip.proto -d '{{\"deviceID\":{id}}}' {grpc} voip.VOIP/GetConfig\n",
            grpc = device.grpc_addr.map(reachable).map(|a| a.to_string()).unwrap_or_default(),
            id = profile.device_id.unwrap_or_default(),
        ),
    };
    let sip = match profile.brand {
        Brand::Axis => String::new(),
        _ => format!(
            "\x20 HTTP              http://{addr}   (listening on {listen})\n\
             \x20 SIP               port {}, listening from the start\n",
            cli.sip_port.unwrap_or(5060),
            listen = device.http_addr,
        ),
    };
    let https = match device.https_addr {
        Some(at) => format!(
            "\x20 HTTPS             https://{}   (the same API; curl -k: self-signed unless --tls-cert)\n",
            reachable(at)
        ),
        None => String::new(),
    };
    let banner = format!(
        "doorsim {version} — an emulated {model}\n\
         {api}{sip}\
         \x20 Video and audio   rtsp://{rtsp}/axis-media/media.amp   (H.264 and G.711 mu-law)\n\
         \x20 Event stream      rtsp://{rtsp}/axis-media/media.amp?video=0&audio=0&event=on   (listening on {rtsp_listen})\n\
         {https}\
         \x20 Control API       {curl} http://{addr}/emulator/v1/state\n\
         \x20 Credentials       {user}:{pass}   (HTTP Digest MD5/SHA-256 or Basic)\n\
         \x20 Stop with Ctrl-C\n",
        version = env!("CARGO_PKG_VERSION"),
        model = profile.prod_full_name,
        rtsp_listen = device.rtsp_addr,
    );
    print(&banner);
}
