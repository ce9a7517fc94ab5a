//! Fleets: many devices in one process, each a separate box on its own loopback address with
//! the single-device ports. Device `i` listens on `base + i`, counting through the octets
//! (127.1.0.255 is followed by 127.1.1.0; every 127.x.y.z address is loopback on Linux), unless
//! the fleet file gives it an address. Each has its own identity (MAC and serial from its
//! index), store, call engine, SIP user agent and event stream.

pub mod file;
pub mod manage;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde_json::Value;
use std::sync::Arc;
use thiserror::Error;
use tokio_util::sync::CancellationToken;

use crate::device::{Device, DeviceConfig, StartError};
use crate::metrics::{DeviceMetrics, Metrics};
use crate::profile::{Profile, ProfileError};
use file::FleetFile;

/// File descriptors one device may hold at rest: HTTP and RTSP listeners, SIP over UDP, TCP
/// and TLS, and room for a few connections and RTP sockets.
const DESCRIPTORS_PER_DEVICE: u64 = 12;

/// Why a fleet did not start.
#[derive(Debug, Error)]
pub enum FleetError {
    /// Device `index`'s address is not a loopback address (the base plus the index ran out).
    #[error("device {0}: {1} is past the loopback range 127.0.0.0/8; use a lower --base")]
    Address(usize, Ipv4Addr),
    /// Two devices would share an address.
    #[error("devices {0} and {1} would both listen on {2}")]
    SameAddress(usize, usize, Ipv4Addr),
    /// A profile could not be loaded.
    #[error("device {0}: {1}")]
    Profile(usize, ProfileError),
    /// A device did not start.
    #[error("device {0} at {1}: {2}")]
    Start(usize, Ipv4Addr, StartError),
    /// The open-files limit cannot hold the fleet.
    #[error(
        "a fleet of {0} devices needs about {1} open files; the hard limit is {2} (raise it with `ulimit -Hn` as root)"
    )]
    Descriptors(usize, u64, u64),
    /// No devices.
    #[error("a fleet needs N or a --fleet-file with devices")]
    Empty,
    /// A device's ports run past 65535.
    #[error("device {0}: its ports (--port-step apart) run past 65535")]
    Ports(usize),
    /// SIP over TLS takes the port after SIP's: devices sharing an address need two apart.
    #[error("--port-step must be 0 (an address per device) or at least 2")]
    PortStep,
}

/// How a fleet's devices are placed: indices from `first_index`, and either an address of
/// their own each (`port_step` 0: `base` plus the device's slot) or all on `base`, each with
/// its ports `port_step` apart (slot j adds j·step to every port), as in a container whose
/// only address is the pod's.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// The first device's address, or every device's with a port step.
    pub base: Ipv4Addr,
    /// The index (identity: serial, state file) of the first device.
    pub first_index: usize,
    /// 0, or how far apart the ports of devices sharing `base` are.
    pub port_step: u16,
}

/// What every device of a fleet shares: the device flags.
#[derive(Debug, Clone)]
pub struct Common {
    /// HTTP accounts.
    pub users: Vec<(String, String)>,
    /// Timer speed.
    pub time_scale: f64,
    /// Whom the call button calls.
    pub button_recipient: String,
    /// Auto-answer delay.
    pub auto_answer: Option<std::time::Duration>,
    /// TLS material.
    pub tls_cert_and_key: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// Call limit per device.
    pub max_calls: usize,
    /// The factory SIP port on each address (`None`: 5060).
    pub sip_port: Option<u16>,
    /// The gRPC port of Suprema devices on each address (`None`: 4000).
    pub grpc_port: Option<u16>,
    /// The profile of devices the file says nothing of.
    pub profile: String,
    /// The directory of the devices' state files (`device-<i>.json`), or memory only.
    pub state_dir: Option<std::path::PathBuf>,
    /// The directory of the devices' packet captures (`device-<i>.pcap`), or none.
    pub pcap_dir: Option<std::path::PathBuf>,
    /// HTTP port on each address.
    pub http_port: u16,
    /// RTSP port on each address.
    pub rtsp_port: u16,
}

/// One device of the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Its index.
    pub index: usize,
    /// Its address.
    pub address: Ipv4Addr,
    /// What is added to each of its ports (0 unless devices share an address).
    pub port_offset: u16,
    /// Its profile name or path.
    pub profile: String,
    /// Its set-up requests.
    pub setup: Vec<Value>,
}

/// Device `index`'s address: `base + index`, carrying across octets, within 127.0.0.0/8.
pub fn address_of(base: Ipv4Addr, index: usize) -> Result<Ipv4Addr, FleetError> {
    let address = u32::from(base).checked_add(u32::try_from(index).unwrap_or(u32::MAX)).map(Ipv4Addr::from);
    match address {
        Some(a) if a.octets()[0] == 127 => Ok(a),
        Some(a) => Err(FleetError::Address(index, a)),
        None => Err(FleetError::Address(index, Ipv4Addr::BROADCAST)),
    }
}

/// The devices to start: `count` devices from the layout's first index and whatever the file
/// names besides.
pub fn plan(count: usize, file: &FleetFile, layout: Layout, default_profile: &str) -> Result<Vec<Plan>, FleetError> {
    if layout.port_step == 1 {
        return Err(FleetError::PortStep);
    }
    let first = layout.first_index;
    let mut indices: BTreeMap<usize, Option<&file::DeviceEntry>> = (first..first + count).map(|i| (i, None)).collect();
    for (i, entry) in &file.devices {
        indices.insert(*i, Some(entry));
    }
    if indices.is_empty() {
        return Err(FleetError::Empty);
    }
    let mut plans = Vec::with_capacity(indices.len());
    let mut taken: HashMap<(Ipv4Addr, u16), usize> = HashMap::new();
    for (index, entry) in indices {
        let slot = index.saturating_sub(first);
        let (address, port_offset) = match (entry.and_then(|e| e.address), layout.port_step) {
            (Some(a), _) => (a, 0),
            (None, 0) => (address_of(layout.base, slot)?, 0),
            (None, step) => {
                let offset =
                    u16::try_from(slot).ok().and_then(|s| s.checked_mul(step)).ok_or(FleetError::Ports(index))?;
                (layout.base, offset)
            }
        };
        if let Some(other) = taken.insert((address, port_offset), index) {
            return Err(FleetError::SameAddress(other, index, address));
        }
        plans.push(Plan {
            index,
            address,
            port_offset,
            profile: entry.and_then(|e| e.profile.clone()).unwrap_or_else(|| default_profile.to_owned()),
            setup: entry.map(|e| e.setup.clone()).unwrap_or_default(),
        });
    }
    Ok(plans)
}

/// Raises the soft open-files limit to what `devices` need, up to the hard limit; says so.
pub fn raise_descriptor_limit(devices: usize) -> Result<(), FleetError> {
    let needed = devices as u64 * DESCRIPTORS_PER_DEVICE + 256;
    let Ok((soft, hard)) = rlimit::Resource::NOFILE.get() else { return Ok(()) };
    if soft >= needed {
        return Ok(());
    }
    if hard < needed {
        return Err(FleetError::Descriptors(devices, needed, hard));
    }
    match rlimit::Resource::NOFILE.set(needed, hard) {
        Ok(()) => tracing::info!(from = soft, to = needed, "raised the open-files limit for the fleet"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open-files limit"),
    }
    Ok(())
}

/// One running device of a fleet.
#[derive(Debug)]
pub struct Member {
    /// Its index.
    pub index: usize,
    /// Its address.
    pub address: Ipv4Addr,
    /// Its profile name (or path).
    pub profile: String,
    /// The device.
    pub device: Device,
}

/// A running fleet.
#[derive(Debug)]
pub struct Fleet {
    /// The devices, by index order.
    pub members: Vec<Member>,
    /// Every device's metrics, each with its `device` label.
    pub metrics: Arc<Metrics>,
}

impl Fleet {
    /// Starts every planned device; if one fails, those already started are stopped and the
    /// error names the device.
    pub async fn start(plans: Vec<Plan>, common: &Common, shutdown: CancellationToken) -> Result<Fleet, FleetError> {
        raise_descriptor_limit(plans.len())?;
        let mut profiles: HashMap<String, Profile> = HashMap::new();
        let mut members = Vec::with_capacity(plans.len());
        let metrics = Arc::new(Metrics::new());
        for plan in plans {
            let device_metrics = metrics.device(Some(plan.index));
            let result = Self::start_one(&plan, common, &mut profiles, device_metrics, shutdown.clone()).await;
            match result {
                Ok(device) => {
                    members.push(Member { index: plan.index, address: plan.address, profile: plan.profile, device })
                }
                Err(e) => {
                    shutdown.cancel();
                    for m in members {
                        m.device.stopped().await;
                    }
                    return Err(e);
                }
            }
        }
        Ok(Fleet { members, metrics })
    }

    async fn start_one(
        plan: &Plan,
        common: &Common,
        profiles: &mut HashMap<String, Profile>,
        metrics: DeviceMetrics,
        shutdown: CancellationToken,
    ) -> Result<Device, FleetError> {
        let profile = match profiles.get(&plan.profile) {
            Some(p) => p.clone(),
            None => {
                let p = Profile::load(&plan.profile).map_err(|e| FleetError::Profile(plan.index, e))?;
                profiles.insert(plan.profile.clone(), p.clone());
                p
            }
        };
        let ip = IpAddr::V4(plan.address);
        let port = |base: u16| base.checked_add(plan.port_offset).ok_or(FleetError::Ports(plan.index));
        let shifted = |base: Option<u16>, default: u16| match plan.port_offset {
            0 => Ok(base),
            _ => port(base.unwrap_or(default)).map(Some),
        };
        let config = DeviceConfig {
            http: SocketAddr::new(ip, port(common.http_port)?),
            rtsp: SocketAddr::new(ip, port(common.rtsp_port)?),
            users: common.users.clone(),
            time_scale: common.time_scale,
            button_recipient: common.button_recipient.clone(),
            profile: profile.member(plan.index),
            sip_addr: Some(ip),
            sip_port: shifted(common.sip_port, 5060)?,
            grpc: shifted(common.grpc_port, crate::facades::suprema::DEFAULT_GRPC_PORT)?
                .map(|p| SocketAddr::new(ip, p)),
            auto_answer: common.auto_answer,
            tls_cert_and_key: common.tls_cert_and_key.clone(),
            max_calls: common.max_calls,
            setup: plan.setup.clone(),
            state: common.state_dir.as_ref().map(|d| d.join(format!("device-{}.json", plan.index))),
            https: None,
            pcap: common.pcap_dir.as_ref().map(|d| d.join(format!("device-{}.pcap", plan.index))),
            metrics,
        };
        Device::start(config, shutdown).await.map_err(|e| FleetError::Start(plan.index, plan.address, e))
    }

    /// Winds every device down at once (calls ended, accounts un-registered).
    pub async fn wind_down(&self) {
        futures_util::future::join_all(self.members.iter().map(|m| m.device.wind_down())).await;
    }

    /// Waits until every device has stopped (after the shutdown token was cancelled).
    pub async fn stopped(self) {
        for m in self.members {
            m.device.stopped().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> Layout {
        Layout { base: Ipv4Addr::new(127, 1, 0, 1), first_index: 0, port_step: 0 }
    }

    #[test]
    fn a_slice_shares_one_address_with_ports_a_step_apart() {
        let layout = Layout { base: Ipv4Addr::new(10, 0, 0, 7), first_index: 250, port_step: 10 };
        let plans = plan(3, &FleetFile::default(), layout, "A8207-VE").expect("plan");
        let placed: Vec<_> = plans.iter().map(|p| (p.index, p.address, p.port_offset)).collect();
        let at = Ipv4Addr::new(10, 0, 0, 7);
        assert_eq!(placed, [(250, at, 0), (251, at, 10), (252, at, 20)]);
        let one = Layout { port_step: 1, ..layout };
        assert!(matches!(plan(3, &FleetFile::default(), one, "A8207-VE"), Err(FleetError::PortStep)));
        let far = Layout { port_step: 40_000, ..layout };
        assert!(matches!(plan(3, &FleetFile::default(), far, "A8207-VE"), Err(FleetError::Ports(252))));
    }

    #[test]
    fn addresses_count_through_the_octets_and_stay_on_loopback() {
        let base = Ipv4Addr::new(127, 1, 0, 1);
        assert_eq!(address_of(base, 0).expect("first"), base);
        assert_eq!(address_of(base, 254).expect("255"), Ipv4Addr::new(127, 1, 0, 255));
        assert_eq!(address_of(base, 255).expect("carry"), Ipv4Addr::new(127, 1, 1, 0));
        assert_eq!(address_of(base, 999).expect("1000th"), Ipv4Addr::new(127, 1, 3, 232));
        assert!(address_of(Ipv4Addr::new(127, 255, 255, 250), 10).is_err());
    }

    #[tokio::test]
    async fn the_plan_merges_the_count_and_the_file_and_refuses_shared_addresses() {
        let file = FleetFile::parse(r#"{"devices": [{"index": 1, "profile": "I8116-E"}, {"index": 5}]}"#, false)
            .expect("file");
        let plans = plan(3, &file, loopback(), "A8207-VE").expect("plan");
        let summary: Vec<(usize, String)> = plans.iter().map(|p| (p.index, p.profile.clone())).collect();
        assert_eq!(
            summary,
            [(0, "A8207-VE".into()), (1, "I8116-E".into()), (2, "A8207-VE".into()), (5, "A8207-VE".into())]
        );
        let clash = FleetFile::parse(r#"{"devices": [{"index": 3, "address": "127.1.0.1"}]}"#, false).expect("file");
        assert!(matches!(plan(1, &clash, loopback(), "A8207-VE"), Err(FleetError::SameAddress(..))));
        assert!(matches!(plan(0, &FleetFile::default(), loopback(), "A"), Err(FleetError::Empty)));
    }
}
