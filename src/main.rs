//! The `doorsim` binary: parse flags, start one device, print the banner, stop on Ctrl-C.

use std::net::{IpAddr, Ipv4Addr};

use clap::Parser;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use doorsim::cli::Cli;
use doorsim::device::{Device, DeviceConfig};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_new(&cli.log).unwrap_or_else(|e| {
        eprintln!("doorsim: bad --log filter {:?} ({e}); using info", cli.log);
        EnvFilter::new("info")
    });
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();

    let shutdown = CancellationToken::new();
    let config = DeviceConfig { http: cli.http, users: cli.users.clone() };
    let device = match Device::start(config, shutdown.clone()).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("doorsim: cannot listen on {}: {e}", cli.http);
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
    let mut addr = device.http_addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    let (user, pass) = &cli.users[0];
    println!("doorsim {} — an emulated Axis network door station", env!("CARGO_PKG_VERSION"));
    println!("  Call service API  http://{addr}/vapix/call   (listening on {})", device.http_addr);
    println!("  Credentials       {user}:{pass}   (HTTP Digest MD5/SHA-256 or Basic)");
    println!("  Try               curl --anyauth -u '{user}:{pass}' http://{addr}/vapix/call -d '{{\"axcall:GetSIPConfiguration\":{{}}}}'");
    println!("  Simple format     curl --anyauth -u '{user}:{pass}' 'http://{addr}/vapix/call?format=simple&action=axcall:GetSIPConfiguration'");
    println!("  Stop with Ctrl-C");
}
