//! Suprema's VoIP configuration (BioStation A2, FaceStation 2) as the G-SDK device gateway
//! serves it: a gRPC service `VOIP { GetConfig, SetConfig, SetConfigMulti }` on `--grpc`
//! (port 4000 by default, as the gateway), under both package names G-SDK releases use
//! (`voip.VOIP` and `gsdk.voip.VOIP`). The protos are in `proto/suprema/`, compiled by build.rs.
//!
//! `VOIPConfig` maps to the core: `serverURL`/`serverPort` are account `1`'s Registrar (and the
//! URL its PublicDomain), `userID`/`userPW` its UserId and Password, `enabled` its Enabled flag;
//! `DTMFMode` picks the DTMF method of the account's DTMF configuration (RFC 2833 or SIP INFO),
//! and `exitButton` is the sequence of its one trigger, whose DTMF event the profile binds to the
//! door output: pressed during a call, that key opens the door. `phones` are kept beside the
//! core. The device answers for its own `deviceID` (from the profile) only.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::model::{DtmfConfiguration, DtmfEvent, DtmfTrigger, ModelError};
use crate::store::{DeviceState, Store};

use super::{join_host_port, new_account, split_host_port, valid_host, DEFAULT_SIP_PORT};

/// The types and services generated from `proto/suprema/`.
#[allow(clippy::all, clippy::pedantic, unreachable_pub, missing_docs)]
pub mod proto {
    /// Package `err`.
    pub mod err {
        tonic::include_proto!("err");
    }
    /// Package `voip`.
    pub mod voip {
        tonic::include_proto!("voip");
    }
    /// Package `gsdk.voip` (newer G-SDK releases).
    pub mod gsdk {
        /// Package `gsdk.voip`.
        pub mod voip {
            tonic::include_proto!("gsdk.voip");
        }
    }
}

use proto::err::ErrorResponse;
use proto::voip::{
    GetConfigRequest, GetConfigResponse, SetConfigMultiRequest, SetConfigMultiResponse, SetConfigRequest,
    SetConfigResponse, UserPhone, VoipConfig,
};

/// The gateway's port.
pub const DEFAULT_GRPC_PORT: u16 = 4000;
/// The core account the VoIP settings are.
const ACCOUNT: &str = "1";
/// The DTMF event the profile binds to the door output.
pub const EXIT_EVENT: &str = "exit";
const EXIT_TRIGGER: &str = "suprema-exit";
const DTMF_CONFIGURATION: &str = "suprema";
/// Extension numbers at most.
const MAX_PHONES: usize = 32;
/// Longest phone number or description.
const MAX_PHONE_TEXT: usize = 48;
const PHONES_KEY: &str = "Suprema.phones";
/// The exit button keys by `exitButton` value: `*`, `#`, then `0` to `9`.
const EXIT_KEYS: [char; 12] = ['*', '#', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

/// The DTMF set-up a Suprema device starts with: `#` opens the door, over RFC 2833.
pub fn factory_dtmf(state: &mut DeviceState) -> Result<(), ModelError> {
    state.set_dtmf_events(vec![DtmfEvent { id: EXIT_EVENT.into(), name: "Exit button".into() }])?;
    set_exit(state, 1, 0)?;
    for account in state.sip_accounts.values_mut() {
        account.dtmf_configuration_id = DTMF_CONFIGURATION.into();
    }
    Ok(())
}

/// Sets the exit key (`exitButton`) and the DTMF method (`DTMFMode`) of the DTMF set-up.
fn set_exit(state: &mut DeviceState, exit_button: u32, dtmf_mode: u32) -> Result<(), ModelError> {
    let key = EXIT_KEYS.get(exit_button as usize).copied().unwrap_or('#');
    state.set_dtmf_triggers(vec![DtmfTrigger {
        id: EXIT_TRIGGER.into(),
        dtmf_sequence: key.to_string(),
        dtmf_event_id: EXIT_EVENT.into(),
    }])?;
    state
        .set_dtmf_configurations(vec![DtmfConfiguration {
            id: DTMF_CONFIGURATION.into(),
            name: "Exit button".into(),
            dtmf_trigger_id: vec![EXIT_TRIGGER.into()],
            rfc2833: dtmf_mode == 0,
            rfc2976: dtmf_mode == 1,
        }])
        .map(drop)
}

/// The VoIP configuration the core holds.
fn config_of(state: &DeviceState) -> VoipConfig {
    let core = state.sip_accounts.get(ACCOUNT);
    let (url, port) = split_host_port(core.map_or("", |a| a.registrar.as_str()));
    let key = state.dtmf_triggers.get(EXIT_TRIGGER).and_then(|t| t.dtmf_sequence.chars().next());
    let sip_info = state.dtmf_configurations.get(DTMF_CONFIGURATION).is_some_and(|c| c.rfc2976 && !c.rfc2833);
    let phones: Vec<(String, String)> =
        state.vendor.get(PHONES_KEY).and_then(|p| serde_json::from_str(p).ok()).unwrap_or_default();
    VoipConfig {
        server_url: url.to_owned(),
        server_port: port.parse().unwrap_or(u32::from(DEFAULT_SIP_PORT)),
        user_id: core.map(|a| a.user_id.clone()).unwrap_or_default(),
        user_pw: core.map(|a| a.password.clone()).unwrap_or_default(),
        enabled: core.is_some_and(|a| a.enabled),
        exit_button: key.and_then(|k| EXIT_KEYS.iter().position(|e| *e == k)).unwrap_or(1) as u32,
        dtmf_mode: u32::from(sip_info),
        phones: phones.into_iter().map(|(phone_number, description)| UserPhone { phone_number, description }).collect(),
    }
}

/// Every rule of a `VOIPConfig`; the first broken one is the error.
fn check(config: &VoipConfig) -> Result<(), Status> {
    let invalid = |why: String| Err(Status::invalid_argument(why));
    if config.exit_button as usize >= EXIT_KEYS.len() {
        return invalid(format!("exitButton {} is not 0-11", config.exit_button));
    }
    if config.dtmf_mode > 1 {
        return invalid(format!("DTMFMode {} is not 0 (RFC 2833) or 1 (SIP INFO)", config.dtmf_mode));
    }
    if config.phones.len() > MAX_PHONES {
        return invalid(format!("{} phones: at most {MAX_PHONES}", config.phones.len()));
    }
    if config.server_port == 0 || config.server_port > 65535 {
        return invalid(format!("serverPort {} is not 1-65535", config.server_port));
    }
    if !valid_host(&config.server_url) {
        return invalid("serverURL is not a host name or address".into());
    }
    let user_part = |s: &str| s.len() <= 64 && !s.bytes().any(|b| b.is_ascii_whitespace() || b"@:;<>\"".contains(&b));
    if !user_part(&config.user_id) {
        return invalid("userID is not a SIP user name".into());
    }
    if config.user_pw.len() > 64 || config.user_pw.chars().any(char::is_control) {
        return invalid("userPW: at most 64 printable characters".into());
    }
    let text_ok = |s: &str| s.len() <= MAX_PHONE_TEXT && !s.chars().any(char::is_control);
    if !config.phones.iter().all(|p| text_ok(&p.phone_number) && text_ok(&p.description)) {
        return invalid(format!("phones: numbers and descriptions of at most {MAX_PHONE_TEXT} characters"));
    }
    Ok(())
}

/// Writes a checked `config` into the core.
fn store(state: &mut DeviceState, config: &VoipConfig) -> Result<(), ModelError> {
    let mut core = state.sip_accounts.get(ACCOUNT).cloned().unwrap_or_else(|| new_account(ACCOUNT));
    core.enabled = config.enabled;
    core.user_id = config.user_id.clone();
    core.password = config.user_pw.clone();
    let server = join_host_port(&config.server_url, &config.server_port.to_string());
    core.registrar = server;
    core.public_domain = config.server_url.clone();
    core.dtmf_configuration_id = DTMF_CONFIGURATION.into();
    // Calls to the device take the default account's DTMF set-up: this one.
    core.is_default = true;
    set_exit(state, config.exit_button, config.dtmf_mode)?;
    let phones: Vec<(&str, &str)> =
        config.phones.iter().map(|p| (p.phone_number.as_str(), p.description.as_str())).collect();
    let phones = serde_json::to_string(&phones).map_err(|e| ModelError::Invalid(e.to_string()))?;
    state.vendor.insert(PHONES_KEY.into(), phones);
    state.set_sip_accounts(vec![core]).map(drop)
}

/// The VoIP service of one device.
#[derive(Debug, Clone)]
pub struct VoipService {
    store: Arc<Store>,
    device_id: u32,
}

impl VoipService {
    /// The service of the device `device_id` whose state is `store`.
    pub fn new(store: Arc<Store>, device_id: u32) -> Self {
        Self { store, device_id }
    }

    fn known(&self, device_id: u32) -> Result<(), Status> {
        match device_id == self.device_id {
            true => Ok(()),
            false => Err(Status::not_found(format!("no device {device_id} (this one is {})", self.device_id))),
        }
    }

    fn apply(&self, config: Option<VoipConfig>) -> Result<(), Status> {
        let config = config.ok_or_else(|| Status::invalid_argument("config is required"))?;
        check(&config)?;
        self.store.update(|state| store(state, &config)).map_err(|e| Status::invalid_argument(e.to_string()))
    }

    fn get_config(&self, request: GetConfigRequest) -> Result<GetConfigResponse, Status> {
        self.known(request.device_id)?;
        Ok(GetConfigResponse { config: Some(self.store.read(config_of)) })
    }

    fn set_config(&self, request: SetConfigRequest) -> Result<SetConfigResponse, Status> {
        self.known(request.device_id)?;
        self.apply(request.config)?;
        Ok(SetConfigResponse {})
    }

    /// Applies the configuration to this device if it is among `deviceIDs`; the others are
    /// answered NOT_FOUND each in `deviceErrors`.
    fn set_config_multi(&self, request: SetConfigMultiRequest) -> Result<SetConfigMultiResponse, Status> {
        if request.device_i_ds.contains(&self.device_id) {
            self.apply(request.config)?;
        }
        let device_errors = request
            .device_i_ds
            .iter()
            .filter(|id| **id != self.device_id)
            .map(|id| ErrorResponse {
                device_id: *id,
                code: tonic::Code::NotFound as i32,
                msg: format!("no device {id}"),
            })
            .collect();
        Ok(SetConfigMultiResponse { device_errors })
    }
}

/// Implements a generated `Voip` service trait (both package names have one) over
/// [`VoipService`]'s methods.
macro_rules! voip_service {
    ($($trait_path:tt)+) => {
        #[tonic::async_trait]
        impl $($trait_path)+ for VoipService {
            async fn get_config(&self, r: Request<GetConfigRequest>) -> Result<Response<GetConfigResponse>, Status> {
                self.get_config(r.into_inner()).map(Response::new)
            }
            async fn set_config(&self, r: Request<SetConfigRequest>) -> Result<Response<SetConfigResponse>, Status> {
                self.set_config(r.into_inner()).map(Response::new)
            }
            async fn set_config_multi(
                &self,
                r: Request<SetConfigMultiRequest>,
            ) -> Result<Response<SetConfigMultiResponse>, Status> {
                self.set_config_multi(r.into_inner()).map(Response::new)
            }
        }
    };
}
voip_service!(proto::voip::voip_server::Voip);
voip_service!(proto::gsdk::voip::voip_server::Voip);

/// Serves `service` on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, service: VoipService, shutdown: CancellationToken) {
    let local: Option<SocketAddr> = listener.local_addr().ok();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let served = tonic::transport::Server::builder()
        .add_service(proto::voip::voip_server::VoipServer::new(service.clone()))
        .add_service(proto::gsdk::voip::voip_server::VoipServer::new(service))
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
        .await;
    if let Err(e) = served {
        tracing::error!(error = %e, address = ?local, "the Suprema gRPC service stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> VoipConfig {
        VoipConfig {
            server_url: "10.0.0.5".into(),
            server_port: 5060,
            user_id: "7004".into(),
            user_pw: "secret".into(),
            enabled: true,
            exit_button: 1,
            dtmf_mode: 0,
            phones: vec![UserPhone { phone_number: "100".into(), description: "Lobby".into() }],
        }
    }

    #[test]
    fn a_configuration_round_trips_through_the_core() {
        let mut state = DeviceState::default();
        factory_dtmf(&mut state).expect("factory");
        let mut config = valid();
        config.exit_button = 11; // '9'
        config.dtmf_mode = 1;
        store(&mut state, &config).expect("stored");
        assert_eq!(config_of(&state), config);
        assert_eq!(state.dtmf_triggers[EXIT_TRIGGER].dtmf_sequence, "9");
        assert!(state.dtmf_configurations[DTMF_CONFIGURATION].rfc2976);
    }

    #[test]
    fn the_rules_of_a_configuration() {
        assert!(check(&valid()).is_ok());
        for broken in [
            VoipConfig { exit_button: 12, ..valid() },
            VoipConfig { dtmf_mode: 2, ..valid() },
            VoipConfig { server_port: 0, ..valid() },
            VoipConfig { server_port: 65536, ..valid() },
            VoipConfig { phones: vec![UserPhone::default(); 33], ..valid() },
        ] {
            assert_eq!(check(&broken).map_err(|s| s.code()), Err(tonic::Code::InvalidArgument), "{broken:?}");
        }
    }
}
