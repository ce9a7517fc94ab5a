//! The Call service commands (`/vapix/call`): one table from action name to handler.
//!
//! Handlers read the decoded parameters through [`Fields`], act on the store and answer through
//! [`Render`], which writes the response body in the request's format: typed answers (a stored
//! object) are serialized straight into it, with no `Value` in between. Handlers know nothing
//! of HTTP.

use std::net::SocketAddr;
use std::sync::Arc;

use indexmap::IndexMap;
use serde::Serialize;
use serde_json::{json, Value};

use super::fault::Fault;
use super::format::{Format, ACTION_PREFIX};
use crate::calls::CallEngine;
use crate::model::audio_codec::{read_priority_list, supported_codecs};
use crate::model::ids::{validate_id, MAX_ID_LEN};
use crate::model::sip_account::MediaEncryption;
use crate::model::{
    DtmfConfiguration, DtmfEvent, DtmfTrigger, Fields, ModelResult, ServiceCapabilities, SipAccount, SipAccountStatus,
    SipConfiguration, VmsCallConfiguration, SUPPORTED_ATTRIBUTES,
};
use crate::store::{DeviceState, Store};

/// What a handler knows about the request besides its parameters.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext<'a> {
    /// The address peer-to-peer SIP URIs show, when one is set (`--sip-addr`).
    pub sip_host: Option<&'a str>,
    /// The device address the request arrived on, shown when `sip_host` is not set.
    pub local: SocketAddr,
}

impl<'a> RequestContext<'a> {
    /// A context whose peer-to-peer SIP URIs show `host` (requests not from the network).
    pub fn at_host(host: &'a str) -> Self {
        Self { sip_host: Some(host), local: SocketAddr::from(([127, 0, 0, 1], 0)) }
    }

    /// The device's host in peer-to-peer SIP URIs (IPv6 in brackets). Only the commands that
    /// show such URIs pay for formatting it.
    pub fn device_host(&self) -> String {
        match (self.sip_host, self.local) {
            (Some(host), _) => host.to_owned(),
            (None, SocketAddr::V4(a)) => a.ip().to_string(),
            (None, SocketAddr::V6(a)) => match a.ip().to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => format!("[{}]", a.ip()),
            },
        }
    }
}

/// Every command [`CallService::handle`] answers (keep in step with it; a test checks that
/// each is handled). Metrics label commands with these names only.
pub const COMMANDS: [&str; 42] = [
    "GetServiceCapabilities",
    "Call",
    "TerminateCall",
    "GetCallStatus",
    "GetCallStatuses",
    "GetSupportedSIPConfigurationAttributes",
    "GetSupportedSIPAccountAttributes",
    "GetSIPConfiguration",
    "SetSIPConfiguration",
    "GetSupportedMediaEncryptionModes",
    "GetSIPAccount",
    "GetSIPAccounts",
    "SetSIPAccount",
    "SetSIPAccounts",
    "RemoveSIPAccount",
    "RemoveSIPAccounts",
    "GetSIPAccountStatus",
    "GetSIPAccountStatuses",
    "GetDTMFConfiguration",
    "GetDTMFConfigurations",
    "SetDTMFConfiguration",
    "SetDTMFConfigurations",
    "RemoveDTMFConfiguration",
    "RemoveDTMFConfigurations",
    "GetDTMFEvent",
    "GetDTMFEvents",
    "SetDTMFEvent",
    "SetDTMFEvents",
    "RemoveDTMFEvent",
    "RemoveDTMFEvents",
    "GetDTMFTrigger",
    "GetDTMFTriggers",
    "SetDTMFTrigger",
    "SetDTMFTriggers",
    "RemoveDTMFTrigger",
    "RemoveDTMFTriggers",
    "GetVMSCallConfiguration",
    "SetVMSCallConfiguration",
    "GetDefaultAudioCodecs",
    "GetSupportedAudioCodecs",
    "GetAudioCodecs",
    "SetAudioCodecs",
];

/// The command an `action` (`axcall:<Command>`) names, if the service has it.
pub fn command_of(action: &str) -> Option<&'static str> {
    let name = action.strip_prefix(ACTION_PREFIX)?;
    COMMANDS.iter().find(|c| **c == name).copied()
}

/// The Call service of one device.
#[derive(Debug, Clone)]
pub struct CallService {
    store: Arc<Store>,
    engine: Arc<CallEngine>,
}

/// One kind of stored object and the names its commands use.
struct Kind<T: 'static> {
    /// Field holding one id or a list of ids: `SIPAccountId`.
    id_field: &'static str,
    /// Field holding one object or a list of objects: `SIPAccount`.
    object_field: &'static str,
    /// Reads one object; the second argument is the whole request.
    read: fn(&Fields<'_>, &Fields<'_>) -> ModelResult<T>,
    /// The stored objects.
    map: fn(&DeviceState) -> &IndexMap<String, T>,
    /// Adds or replaces objects, returning their ids.
    set: fn(&mut DeviceState, Vec<T>) -> ModelResult<Vec<String>>,
    /// Removes objects by id; unknown ids are ignored.
    remove: fn(&mut DeviceState, &[String]) -> ModelResult<()>,
}

const SIP_ACCOUNTS: Kind<SipAccount> = Kind {
    id_field: "SIPAccountId",
    object_field: "SIPAccount",
    read: |item, request| SipAccount::read(item, request.opt_text("StreamParameters")?),
    map: |s| &s.sip_accounts,
    set: DeviceState::set_sip_accounts,
    remove: DeviceState::remove_sip_accounts,
};

const DTMF_CONFIGURATIONS: Kind<DtmfConfiguration> = Kind {
    id_field: "DTMFConfigurationId",
    object_field: "DTMFConfiguration",
    read: |item, _| DtmfConfiguration::read(item),
    map: |s| &s.dtmf_configurations,
    set: DeviceState::set_dtmf_configurations,
    remove: DeviceState::remove_dtmf_configurations,
};

const DTMF_EVENTS: Kind<DtmfEvent> = Kind {
    id_field: "DTMFEventId",
    object_field: "DTMFEvent",
    read: |item, _| DtmfEvent::read(item),
    map: |s| &s.dtmf_events,
    set: DeviceState::set_dtmf_events,
    remove: DeviceState::remove_dtmf_events,
};

const DTMF_TRIGGERS: Kind<DtmfTrigger> = Kind {
    id_field: "DTMFTriggerId",
    object_field: "DTMFTrigger",
    read: |item, _| DtmfTrigger::read(item),
    map: |s| &s.dtmf_triggers,
    set: DeviceState::set_dtmf_triggers,
    remove: DeviceState::remove_dtmf_triggers,
};

/// Writes answers in one format.
#[derive(Debug, Clone, Copy)]
pub struct Render(pub Format);

/// `{name: value}` without building a `Value`: one map entry serialized as it goes.
struct Member<'a, T>(&'a str, &'a T);

impl<T: Serialize> Serialize for Member<'_, T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(self.0, self.1)?;
        map.end()
    }
}

impl Render {
    /// The answer `{name: value}`. In JSON the value is serialized directly into the body (the
    /// hot path of every Get* command); the simple format flattens a `Value`.
    pub fn member<T: Serialize>(self, name: &str, value: &T) -> String {
        match self.0 {
            Format::Json => super::format::json::encode_typed(&Member(name, value)),
            Format::Simple => self.value(&serde_json::to_value(Member(name, value)).unwrap_or(Value::Null)),
        }
    }

    /// The answer `value`.
    pub fn value(self, value: &Value) -> String {
        self.0.encode(value)
    }
}

/// Reads the mandatory `CallId`: text of at most 64 characters (the spec's `CallId` type).
fn call_id(f: &Fields<'_>) -> Result<String, Fault> {
    let id = f.req_text("CallId")?;
    if id.chars().count() > MAX_ID_LEN {
        return Err(Fault::invalid_arg_val(format!("CallId: longer than {MAX_ID_LEN} characters")));
    }
    Ok(id)
}

/// Reads the single id of `field`, which must be present and well-formed.
fn one_id(f: &Fields<'_>, field: &str) -> Result<String, Fault> {
    let id = f.req_text(field)?;
    validate_id(&id, &f.path_of(field))?;
    Ok(id)
}

/// Reads the optional id list of `field` (empty when absent). Ids are text of bounded length;
/// ids of a valid shape that resolve to nothing are the caller's business.
fn id_list(f: &Fields<'_>, field: &str) -> Result<Vec<String>, Fault> {
    let items = f.opt_list(field)?.unwrap_or_default();
    Ok(items.into_iter().map(|i| f.item_text(field, i, MAX_ID_LEN)).collect::<ModelResult<_>>()?)
}

impl<T: Clone + Serialize> Kind<T> {
    // Get* answers are serialized under the store's lock, straight from the stored objects:
    // no copy of them is made.
    fn get(&self, r: Render, store: &Store, f: &Fields<'_>) -> Result<String, Fault> {
        let id = one_id(f, self.id_field)?;
        let found = store.read(|s| (self.map)(s).get(&id).map(|object| r.member(self.object_field, object)));
        found.ok_or_else(|| Fault::not_found(format!("no {} {id:?}", self.object_field)))
    }

    fn get_many(&self, r: Render, store: &Store, f: &Fields<'_>) -> Result<String, Fault> {
        let ids = id_list(f, self.id_field)?;
        Ok(store.read(|s| {
            let map = (self.map)(s);
            let objects: Vec<&T> =
                if ids.is_empty() { map.values().collect() } else { ids.iter().filter_map(|id| map.get(id)).collect() };
            r.member(self.object_field, &objects)
        }))
    }

    fn set(&self, r: Render, store: &Store, f: &Fields<'_>) -> Result<String, Fault> {
        let object = (self.read)(&f.req_object(self.object_field)?, f)?;
        let ids = store.update(|s| (self.set)(s, vec![object]))?;
        Ok(r.member(self.id_field, &ids.into_iter().next()))
    }

    fn set_many(&self, r: Render, store: &Store, f: &Fields<'_>) -> Result<String, Fault> {
        let items = f.req_list(self.object_field)?;
        let objects = items
            .into_iter()
            .map(|i| (self.read)(&f.item(self.object_field, i)?, f))
            .collect::<ModelResult<Vec<T>>>()?;
        let ids = store.update(|s| (self.set)(s, objects))?;
        Ok(r.member(self.id_field, &ids))
    }

    fn remove(&self, r: Render, store: &Store, f: &Fields<'_>) -> Result<String, Fault> {
        let id = f.req_text(self.id_field)?;
        store.update(|s| (self.remove)(s, &[id]))?;
        Ok(r.value(&json!({})))
    }

    fn remove_many(&self, r: Render, store: &Store, f: &Fields<'_>) -> Result<String, Fault> {
        f.req_list(self.id_field)?;
        let ids = id_list(f, self.id_field)?;
        store.update(|s| (self.remove)(s, &ids))?;
        Ok(r.value(&json!({})))
    }
}

impl CallService {
    /// The Call service over `store` and the call engine.
    pub fn new(store: Arc<Store>, engine: Arc<CallEngine>) -> Self {
        Self { store, engine }
    }

    /// Runs `action` (with its `axcall:` prefix) on `params` and answers in `format` (the simple
    /// format's values are all text, so its parameters are read leniently).
    pub fn handle(
        &self,
        action: &str,
        params: &Value,
        format: Format,
        ctx: &RequestContext<'_>,
    ) -> Result<String, Fault> {
        let command = action.strip_prefix(ACTION_PREFIX).ok_or_else(|| Fault::not_supported(action))?;
        let f = Fields::new(params, "", format == Format::Simple)?;
        let r = Render(format);
        let store = &*self.store;
        match command {
            "GetServiceCapabilities" => Ok(r.member("Capabilities", &ServiceCapabilities::emulated())),

            "Call" => {
                let to = f.req_text("To")?;
                let account = f.opt_text("SIPAccountId")?;
                if let Some(a) = &account {
                    validate_id(a, &f.path_of("SIPAccountId"))?;
                }
                Ok(r.member("CallId", &self.engine.place_call(&to, account.as_deref())?))
            }
            "TerminateCall" => {
                self.engine.terminate(&call_id(&f)?)?;
                Ok(r.value(&json!({})))
            }
            "GetCallStatus" => {
                let id = call_id(&f)?;
                let status = self.engine.status(&id).ok_or_else(|| Fault::not_found(format!("no call {id:?}")))?;
                Ok(r.member("CallStatus", &status))
            }
            "GetCallStatuses" => Ok(r.member("CallStatus", &self.engine.statuses(&id_list(&f, "CallId")?))),

            "GetSupportedSIPConfigurationAttributes" | "GetSupportedSIPAccountAttributes" => {
                Ok(r.member("AttributeInfo", &SUPPORTED_ATTRIBUTES))
            }
            "GetSIPConfiguration" => Ok(store.read(|s| r.member("SIPConfiguration", &s.sip_configuration))),
            "SetSIPConfiguration" => self.set_sip_configuration(r, &f),

            "GetSupportedMediaEncryptionModes" => Ok(r.member("MediaEncryption", &MediaEncryption::ALL)),
            "GetSIPAccount" => SIP_ACCOUNTS.get(r, store, &f),
            "GetSIPAccounts" => SIP_ACCOUNTS.get_many(r, store, &f),
            "SetSIPAccount" => SIP_ACCOUNTS.set(r, store, &f),
            "SetSIPAccounts" => SIP_ACCOUNTS.set_many(r, store, &f),
            "RemoveSIPAccount" => SIP_ACCOUNTS.remove(r, store, &f),
            "RemoveSIPAccounts" => SIP_ACCOUNTS.remove_many(r, store, &f),
            "GetSIPAccountStatus" => self.sip_account_status(r, &f, ctx),
            "GetSIPAccountStatuses" => self.sip_account_statuses(r, &f, ctx),

            "GetDTMFConfiguration" => DTMF_CONFIGURATIONS.get(r, store, &f),
            "GetDTMFConfigurations" => DTMF_CONFIGURATIONS.get_many(r, store, &f),
            "SetDTMFConfiguration" => DTMF_CONFIGURATIONS.set(r, store, &f),
            "SetDTMFConfigurations" => DTMF_CONFIGURATIONS.set_many(r, store, &f),
            "RemoveDTMFConfiguration" => DTMF_CONFIGURATIONS.remove(r, store, &f),
            "RemoveDTMFConfigurations" => DTMF_CONFIGURATIONS.remove_many(r, store, &f),

            "GetDTMFEvent" => DTMF_EVENTS.get(r, store, &f),
            "GetDTMFEvents" => DTMF_EVENTS.get_many(r, store, &f),
            "SetDTMFEvent" => DTMF_EVENTS.set(r, store, &f),
            "SetDTMFEvents" => DTMF_EVENTS.set_many(r, store, &f),
            "RemoveDTMFEvent" => DTMF_EVENTS.remove(r, store, &f),
            "RemoveDTMFEvents" => DTMF_EVENTS.remove_many(r, store, &f),

            "GetDTMFTrigger" => DTMF_TRIGGERS.get(r, store, &f),
            "GetDTMFTriggers" => DTMF_TRIGGERS.get_many(r, store, &f),
            "SetDTMFTrigger" => DTMF_TRIGGERS.set(r, store, &f),
            "SetDTMFTriggers" => DTMF_TRIGGERS.set_many(r, store, &f),
            "RemoveDTMFTrigger" => DTMF_TRIGGERS.remove(r, store, &f),
            "RemoveDTMFTriggers" => DTMF_TRIGGERS.remove_many(r, store, &f),

            "GetVMSCallConfiguration" => {
                Ok(store.read(|s| r.member("VMSCallConfiguration", &s.vms_call_configuration)))
            }
            "SetVMSCallConfiguration" => {
                let config = VmsCallConfiguration::read(&f.req_object("VMSCallConfiguration")?)?;
                store.update(|s| {
                    s.vms_call_configuration = config;
                    Ok(())
                })?;
                Ok(r.value(&json!({})))
            }

            "GetDefaultAudioCodecs" | "GetSupportedAudioCodecs" => Ok(r.member("AudioCodec", &supported_codecs())),
            "GetAudioCodecs" => Ok(store.read(|s| r.member("AudioCodec", &s.audio_codecs))),
            "SetAudioCodecs" => {
                let codecs = read_priority_list(&f)?;
                store.update(|s| {
                    s.audio_codecs = codecs;
                    Ok(())
                })?;
                Ok(r.value(&json!({})))
            }

            _ => Err(Fault::not_supported(action)),
        }
    }

    fn set_sip_configuration(&self, r: Render, f: &Fields<'_>) -> Result<String, Fault> {
        let fields = f.req_object("SIPConfiguration")?;
        let keep_current = f.opt_bool("KeepCurrent")?.unwrap_or(true);
        self.store.update(|s| {
            let base = if keep_current { s.sip_configuration.clone() } else { SipConfiguration::default() };
            s.sip_configuration = SipConfiguration::read(&fields, &base)?;
            Ok(())
        })?;
        Ok(r.value(&json!({})))
    }

    fn sip_account_status(&self, r: Render, f: &Fields<'_>, ctx: &RequestContext<'_>) -> Result<String, Fault> {
        let id = one_id(f, "SIPAccountId")?;
        let problem = self.store.sip_listener_problem();
        let device_host = ctx.device_host();
        let status = self.store.read(|s| {
            s.sip_accounts.get(&id).map(|a| {
                SipAccountStatus::of(
                    a,
                    &s.sip_configuration,
                    &device_host,
                    self.store.registration(&a.id).as_ref(),
                    problem.as_deref(),
                )
            })
        });
        let status = status.ok_or_else(|| Fault::not_found(format!("no SIPAccount {id:?}")))?;
        Ok(r.member("SIPAccountStatus", &status))
    }

    fn sip_account_statuses(&self, r: Render, f: &Fields<'_>, ctx: &RequestContext<'_>) -> Result<String, Fault> {
        let ids = id_list(f, "SIPAccountId")?;
        let problem = self.store.sip_listener_problem();
        let device_host = ctx.device_host();
        let statuses: Vec<SipAccountStatus> = self.store.read(|s| {
            s.sip_accounts
                .values()
                .filter(|a| ids.is_empty() || ids.contains(&a.id))
                .map(|a| {
                    SipAccountStatus::of(
                        a,
                        &s.sip_configuration,
                        &device_host,
                        self.store.registration(&a.id).as_ref(),
                        problem.as_deref(),
                    )
                })
                .collect()
        });
        Ok(r.member("SIPAccountStatus", &statuses))
    }
}
