//! The composition root: [`Device::start`] builds and wires one device. Used by `main` and by
//! tests alike.

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::Value;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::actions::{DoorActions, DoorSink};
use crate::auth::Authenticator;
use crate::calls::{CallEngine, EngineConfig};
use crate::capture::Capture;
use crate::control::{Control, DeviceFacts};
use crate::events::EventBus;
use crate::http::{server, App};
use crate::io::IoPorts;
use crate::profile::Profile;
use crate::rtsp::{self, RtspContext};
use crate::sip::{self, tls::Tls, UaConfig};
use crate::store::Store;
use crate::vapix::call_service::{CallService, RequestContext};
use crate::vapix::event_stream::EventStream;

/// How to build a device.
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    /// HTTP listen address (port 0 picks a free one).
    pub http: SocketAddr,
    /// RTSP (event metadata stream) listen address.
    pub rtsp: SocketAddr,
    /// HTTP accounts (name, password).
    pub users: Vec<(String, String)>,
    /// Every device timer runs this many times faster.
    pub time_scale: f64,
    /// Whom the call button calls.
    pub button_recipient: String,
    /// The emulated model.
    pub profile: Profile,
    /// Address the SIP and RTP sockets bind to (`None`: the HTTP address's).
    pub sip_addr: Option<std::net::IpAddr>,
    /// The factory SIP port (TLS on the next one): `None` keeps 5060 (and 5061).
    pub sip_port: Option<u16>,
    /// Where a Suprema device serves its gRPC API (`None`: the HTTP address's IP, port 4000).
    pub grpc: Option<SocketAddr>,
    /// Answer incoming SIP calls after this long (device time), or never.
    pub auto_answer: Option<std::time::Duration>,
    /// PEM certificate chain and private key for SIP over TLS (a self-signed pair when `None`).
    pub tls_cert_and_key: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// Calls that may be in progress at once.
    pub max_calls: usize,
    /// Call service requests (`{"axcall:SetSIPAccount": {...}}`) applied in order before the
    /// device serves anything.
    pub setup: Vec<Value>,
    /// The file the configuration persists in (`--state`), or memory only.
    pub state: Option<std::path::PathBuf>,
    /// Where the device counts what it does (`/metrics`); fleet members share one.
    pub metrics: crate::metrics::DeviceMetrics,
    /// Where the device's SIP and RTP traffic is written as pcap (`--pcap`), if anywhere.
    pub pcap: Option<std::path::PathBuf>,
    /// Where HTTPS serves what HTTP does (`--https`), if anywhere; with the certificate SIP
    /// over TLS uses.
    pub https: Option<SocketAddr>,
}

/// Why a device did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not be bound: the address, the flag that sets it, why.
    #[error("cannot listen on {0} ({1}): {2}")]
    Bind(SocketAddr, &'static str, std::io::Error),
    /// TLS material could not be loaded or made.
    #[error("TLS: {0}")]
    Tls(#[from] crate::sip::tls::TlsError),
    /// The state file cannot be used.
    #[error("{0}")]
    State(#[from] crate::persist::StateError),
    /// The packet capture file cannot be written.
    #[error("--pcap {0}")]
    Capture(String),
    /// A set-up request is not one object with one `axcall:` action.
    #[error("set-up request {0}: expected one {{\"axcall:Action\": {{...}}}} object")]
    SetupShape(usize),
    /// A set-up request faulted.
    #[error("set-up request {0} ({1}): {2}")]
    Setup(usize, String, String),
}

impl DeviceConfig {
    /// A device on loopback with free ports, `root:pass`, real time, the call button calling the
    /// VMS, and `profile`: what tests and benchmarks start from.
    pub fn on_loopback(profile: Profile) -> DeviceConfig {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        DeviceConfig {
            http: any,
            rtsp: any,
            users: vec![("root".into(), "pass".into())],
            time_scale: 1.0,
            button_recipient: crate::calls::VMS_CALL.into(),
            profile,
            sip_addr: None,
            sip_port: None,
            grpc: None,
            auto_answer: None,
            tls_cert_and_key: None,
            max_calls: 16,
            setup: Vec::new(),
            state: None,
            pcap: None,
            https: None,
            metrics: crate::metrics::DeviceMetrics::default(),
        }
    }
}

/// A running device.
#[derive(Debug)]
pub struct Device {
    /// The address the HTTP API listens on.
    pub http_addr: SocketAddr,
    /// The address HTTPS listens on, if it does.
    pub https_addr: Option<SocketAddr>,
    /// The address the RTSP event stream listens on.
    pub rtsp_addr: SocketAddr,
    /// The address a Suprema device serves its gRPC API on.
    pub grpc_addr: Option<SocketAddr>,
    /// The device's configuration store.
    pub store: Arc<Store>,
    /// The device's event bus.
    pub bus: Arc<EventBus>,
    /// The device's serial number.
    pub serial: String,
    /// The device's calls.
    pub engine: Arc<CallEngine>,
    /// The emulator's control API (the call button among it).
    pub control: Arc<Control>,
    /// Every task the device spawns (listeners, connections, the SIP agent, RTP sessions).
    tracker: TaskTracker,
}

/// How long [`Device::wind_down`] waits for calls to end and un-registrations to be answered.
pub const WIND_DOWN: std::time::Duration = std::time::Duration::from_millis(1500);

/// How long [`Device::stopped`] waits for the device's tasks after shutdown.
const STOP_DEADLINE: std::time::Duration = std::time::Duration::from_secs(2);

impl Device {
    /// Binds the device's listeners and starts serving until `shutdown` is cancelled.
    pub async fn start(config: DeviceConfig, shutdown: CancellationToken) -> Result<Device, StartError> {
        let bind = |at: SocketAddr, flag: &'static str| async move {
            let listener = TcpListener::bind(at).await.map_err(|e| StartError::Bind(at, flag, e))?;
            let local = listener.local_addr().map_err(|e| StartError::Bind(at, flag, e))?;
            Ok::<_, StartError>((listener, local))
        };
        let (listener, http_addr) = bind(config.http, "--http").await?;
        let (rtsp_listener, rtsp_addr) = bind(config.rtsp, "--rtsp").await?;
        let https = match config.https {
            Some(at) => Some(bind(at, "--https").await?),
            None => None,
        };
        let grpc = match config.profile.brand {
            crate::profile::Brand::Suprema => {
                let port = crate::facades::suprema::DEFAULT_GRPC_PORT;
                Some(bind(config.grpc.unwrap_or_else(|| SocketAddr::new(http_addr.ip(), port)), "--grpc").await?)
            }
            _ => None,
        };
        // The address SIP URIs and events show: --sip-addr's, else the HTTP address's.
        let sip_host = config.sip_addr.filter(|a| !a.is_unspecified()).map(|a| match a {
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        });
        let device_host = sip_host.clone().unwrap_or_else(|| {
            if http_addr.ip().is_unspecified() {
                "127.0.0.1".to_owned()
            } else {
                http_addr.ip().to_string()
            }
        });

        let tracker = TaskTracker::new();
        let capture = match &config.pcap {
            Some(path) => Some(Arc::new(Capture::create(path).map_err(StartError::Capture)?)),
            None => None,
        };
        let state_file = match &config.state {
            Some(path) => Some(Arc::new(crate::persist::StateFile::open(path)?)),
            None => None,
        };
        let factory = crate::facades::factory(config.profile.brand, config.sip_port);
        let store = Arc::new(match &state_file {
            Some(file) => Store::open(file.clone(), factory)?,
            None => Store::with_factory(factory),
        });
        let bus = Arc::new(EventBus::new());
        let io = Arc::new(IoPorts::new(&config.profile.ports, bus.clone()));
        if let Some(file) = &state_file {
            io.keep_in(file.clone())?;
        }
        let actions = DoorActions::new(
            io.clone(),
            config.time_scale,
            &config.profile.dtmf_actions,
            shutdown.clone(),
            tracker.clone(),
        );
        if let Some(file) = &state_file {
            actions.keep_in(file.clone())?;
        }
        let engine_config = EngineConfig {
            time_scale: config.time_scale,
            device_host: device_host.clone(),
            auto_answer: config.auto_answer,
            tracker: tracker.clone(),
            max_calls: config.max_calls,
            metrics: config.metrics.clone(),
            ..EngineConfig::default()
        };
        let engine = CallEngine::start(engine_config, store.clone(), bus.clone(), shutdown.clone());
        let call_service = CallService::new(store.clone(), engine.clone());
        apply_setup(&call_service, &config.setup, &device_host)?;
        let sip_bind = config.sip_addr.unwrap_or_else(|| http_addr.ip());
        let sip_address = if sip_bind.is_unspecified() { std::net::IpAddr::from([127, 0, 0, 1]) } else { sip_bind };
        let tls = Tls::new(
            config.tls_cert_and_key.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
            vec![sip_address.to_string(), "doorsim".to_owned()],
        )?;
        // HTTPS shows the certificate SIP over TLS does.
        let https_acceptor = tls.acceptor.clone();
        let ua_config = UaConfig {
            bind: sip_bind,
            address: sip_address,
            tls,
            inter_digit: engine.scaled(crate::dtmf::INTER_DIGIT),
            door: Some(Arc::new(DoorSink(actions.clone()))),
            capture,
        };
        sip::start(ua_config, store.clone(), engine.clone(), bus.clone(), tracker.clone(), shutdown.clone());
        let user_names = config.users.iter().map(|(name, _)| name.clone()).collect();
        // BAS-IP logins take the first user's password.
        let (first_user, first_password) = config.users.first().cloned().unwrap_or_default();
        let bas_ip = crate::facades::bas_ip::Sessions::new(&first_user, &first_password);
        // Devices use `AXIS_<serial>` as their HTTP auth realm.
        let serial = config.profile.serial().to_owned();
        let realm = format!("AXIS_{serial}");
        let auth = Arc::new(Authenticator::new(config.users, realm));
        let name = format!("{} {serial}", config.profile.prod_short_name);
        let rtsp = Arc::new(RtspContext::new(auth.clone(), bus.clone(), engine.clone(), name));
        tracker.spawn(rtsp::run(rtsp_listener, rtsp, shutdown.clone(), tracker.clone()));
        let control = Arc::new(Control::new(
            store.clone(),
            engine.clone(),
            bus.clone(),
            io.clone(),
            actions,
            DeviceFacts {
                brand: config.profile.brand,
                device_host: device_host.clone(),
                button_recipient: config.button_recipient,
            },
        ));
        let app = Arc::new(App {
            auth,
            call_service,
            event_stream: EventStream::new(bus.clone(), shutdown.clone(), tracker.clone()),
            control: control.clone(),
            engine: engine.clone(),
            profile: Arc::new(config.profile),
            io,
            store: store.clone(),
            user_names,
            sip_host,
            bas_ip,
            metrics: config.metrics,
        });
        let grpc_addr = grpc.map(|(listener, local)| {
            let device_id = app.profile.device_id.unwrap_or_default();
            let service = crate::facades::suprema::VoipService::new(store.clone(), device_id);
            tracker.spawn(crate::facades::suprema::serve(listener, service, shutdown.clone()));
            local
        });
        let https_addr = https.map(|(listener, local)| {
            let (app, shutdown) = (app.clone(), shutdown.clone());
            tracker.spawn(server::run(listener, app, Some(https_acceptor), shutdown, tracker.clone()));
            local
        });
        tracker.spawn(server::run(listener, app, None, shutdown, tracker.clone()));
        Ok(Device { http_addr, https_addr, rtsp_addr, grpc_addr, store, bus, serial, engine, control, tracker })
    }

    /// The first step of a graceful stop: ends every call on the wire (BYE, CANCEL, 480) and
    /// un-registers every account (`Expires: 0`), waiting for that at most [`WIND_DOWN`].
    pub async fn wind_down(&self) {
        self.engine.wind_down(WIND_DOWN).await;
    }

    /// Waits until every task of the device has stopped (after its shutdown token was
    /// cancelled), at most [`STOP_DEADLINE`]; returns whether they all did.
    pub async fn stopped(self) -> bool {
        self.tracker.close();
        let done = tokio::time::timeout(STOP_DEADLINE, self.tracker.wait()).await.is_ok();
        if !done {
            tracing::warn!(left = self.tracker.len(), "device tasks still running at the stop deadline");
        }
        done
    }
}

/// Runs the set-up requests in order; the first fault stops the start.
fn apply_setup(service: &CallService, setup: &[Value], device_host: &str) -> Result<(), StartError> {
    let ctx = RequestContext::at_host(device_host);
    for (i, request) in setup.iter().enumerate() {
        let (action, params) = request
            .as_object()
            .filter(|o| o.len() == 1)
            .and_then(|o| o.iter().next())
            .ok_or(StartError::SetupShape(i))?;
        service.handle(action, params, crate::vapix::format::Format::Json, &ctx).map_err(|fault| {
            let why = fault.msg.clone().unwrap_or_else(|| fault.reason.to_owned());
            StartError::Setup(i, action.clone(), format!("{} {}: {why}", fault.fault, fault.code))
        })?;
    }
    Ok(())
}
