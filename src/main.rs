//! The `doorsim` binary: parse flags, start one device, print the banner, stop on Ctrl-C.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};

use clap::Parser;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use doorsim::cli::Cli;
use doorsim::device::{Device, DeviceConfig};
use doorsim::profile::Profile;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_new(&cli.log).unwrap_or_else(|e| {
        eprintln!("doorsim: bad --log filter {:?} ({e}); using info", cli.log);
        EnvFilter::new("info")
    });
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();

    let profile = match Profile::load(&cli.profile) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("doorsim: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let shutdown = CancellationToken::new();
    let config = DeviceConfig {
        http: cli.http,
        rtsp: cli.rtsp,
        users: cli.users.clone(),
        time_scale: cli.time_scale,
        button_recipient: cli.call_button_recipient.clone(),
        profile,
        sip_addr: cli.sip_addr,
        auto_answer: cli.auto_answer,
        tls_cert_and_key: cli.tls_cert.clone().zip(cli.tls_key.clone()),
    };
    let device = match Device::start(config, shutdown.clone()).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("doorsim: cannot start: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    print_banner(&cli, &device);

    tokio::select! {
        r = tokio::signal::ctrl_c() => if let Err(e) = r { eprintln!("doorsim: signal handler failed: {e}") },
        () = shutdown.cancelled() => {}
    }
    shutdown.cancel();
    device.stopped().await;
    std::process::ExitCode::SUCCESS
}

fn print_banner(cli: &Cli, device: &Device) {
    let reachable = |mut addr: std::net::SocketAddr| {
        if addr.ip().is_unspecified() {
            addr.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        addr
    };
    let (addr, rtsp) = (reachable(device.http_addr), reachable(device.rtsp_addr));
    let (user, pass) = &cli.users[0];
    let curl = format!("curl --anyauth -u '{user}:{pass}'");
    let banner = format!(
        "doorsim {version} — an emulated Axis network door station\n\
         \x20 Call service API  http://{addr}/vapix/call   (listening on {listen})\n\
         \x20 Event stream      rtsp://{rtsp}/axis-media/media.amp?video=0&audio=0&event=on   (listening on {rtsp_listen})\n\
         \x20 Credentials       {user}:{pass}   (HTTP Digest MD5/SHA-256 or Basic)\n\
         \x20 Try               {curl} http://{addr}/vapix/call -d '{{\"axcall:GetSIPConfiguration\":{{}}}}'\n\
         \x20 Simple format     {curl} 'http://{addr}/vapix/call?format=simple&action=axcall:GetSIPConfiguration'\n\
         \x20 Stop with Ctrl-C\n",
        version = env!("CARGO_PKG_VERSION"),
        listen = device.http_addr,
        rtsp_listen = device.rtsp_addr,
    );
    // A closed stdout (a pipe whose reader went away) must not stop the device.
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(banner.as_bytes()).and_then(|()| out.flush());
}
