//! The Call service commands (`/vapix/call`): one table from action name to handler.
//!
//! Handlers read the decoded parameters through [`Fields`], act on the store and return the
//! response value; the HTTP layer encodes it in the request's format. Handlers know nothing of
//! formats or HTTP.

use std::sync::Arc;

use indexmap::IndexMap;
use serde::Serialize;
use serde_json::{json, Value};

use super::fault::Fault;
use super::format::ACTION_PREFIX;
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
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The device address the request arrived on, used in peer-to-peer SIP URIs.
    pub device_host: String,
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

fn to_value<T: Serialize>(v: T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
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
    fn get(&self, store: &Store, f: &Fields<'_>) -> Result<Value, Fault> {
        let id = one_id(f, self.id_field)?;
        let found = store.read(|s| (self.map)(s).get(&id).cloned());
        let object = found.ok_or_else(|| Fault::not_found(format!("no {} {id:?}", self.object_field)))?;
        Ok(json!({ self.object_field: to_value(object) }))
    }

    fn get_many(&self, store: &Store, f: &Fields<'_>) -> Result<Value, Fault> {
        let ids = id_list(f, self.id_field)?;
        let objects: Vec<T> = store.read(|s| {
            let map = (self.map)(s);
            if ids.is_empty() {
                map.values().cloned().collect()
            } else {
                ids.iter().filter_map(|id| map.get(id).cloned()).collect()
            }
        });
        Ok(json!({ self.object_field: to_value(objects) }))
    }

    fn set(&self, store: &Store, f: &Fields<'_>) -> Result<Value, Fault> {
        let object = (self.read)(&f.req_object(self.object_field)?, f)?;
        let ids = store.update(|s| (self.set)(s, vec![object]))?;
        Ok(json!({ self.id_field: ids.into_iter().next() }))
    }

    fn set_many(&self, store: &Store, f: &Fields<'_>) -> Result<Value, Fault> {
        let items = f.req_list(self.object_field)?;
        let objects = items
            .into_iter()
            .map(|i| (self.read)(&f.item(self.object_field, i)?, f))
            .collect::<ModelResult<Vec<T>>>()?;
        let ids = store.update(|s| (self.set)(s, objects))?;
        Ok(json!({ self.id_field: ids }))
    }

    fn remove(&self, store: &Store, f: &Fields<'_>) -> Result<Value, Fault> {
        let id = f.req_text(self.id_field)?;
        store.update(|s| (self.remove)(s, &[id]))?;
        Ok(json!({}))
    }

    fn remove_many(&self, store: &Store, f: &Fields<'_>) -> Result<Value, Fault> {
        f.req_list(self.id_field)?;
        let ids = id_list(f, self.id_field)?;
        store.update(|s| (self.remove)(s, &ids))?;
        Ok(json!({}))
    }
}

impl CallService {
    /// The Call service over `store` and the call engine.
    pub fn new(store: Arc<Store>, engine: Arc<CallEngine>) -> Self {
        Self { store, engine }
    }

    /// Runs `action` (with its `axcall:` prefix) on `params`. `lenient` is set for the simple
    /// format, whose values are all text.
    pub fn handle(&self, action: &str, params: &Value, lenient: bool, ctx: &RequestContext) -> Result<Value, Fault> {
        let command = action.strip_prefix(ACTION_PREFIX).ok_or_else(|| Fault::not_supported(action))?;
        let f = Fields::new(params, "", lenient)?;
        let store = &*self.store;
        match command {
            "GetServiceCapabilities" => Ok(json!({ "Capabilities": to_value(ServiceCapabilities::emulated()) })),

            "Call" => {
                let to = f.req_text("To")?;
                let account = f.opt_text("SIPAccountId")?;
                if let Some(a) = &account {
                    validate_id(a, &f.path_of("SIPAccountId"))?;
                }
                Ok(json!({ "CallId": self.engine.place_call(&to, account.as_deref())? }))
            }
            "TerminateCall" => {
                self.engine.terminate(&call_id(&f)?)?;
                Ok(json!({}))
            }
            "GetCallStatus" => {
                let id = call_id(&f)?;
                let status = self.engine.status(&id).ok_or_else(|| Fault::not_found(format!("no call {id:?}")))?;
                Ok(json!({ "CallStatus": to_value(status) }))
            }
            "GetCallStatuses" => Ok(json!({ "CallStatus": to_value(self.engine.statuses(&id_list(&f, "CallId")?)) })),

            "GetSupportedSIPConfigurationAttributes" | "GetSupportedSIPAccountAttributes" => {
                Ok(json!({ "AttributeInfo": to_value(SUPPORTED_ATTRIBUTES) }))
            }
            "GetSIPConfiguration" => {
                Ok(json!({ "SIPConfiguration": to_value(store.read(|s| s.sip_configuration.clone())) }))
            }
            "SetSIPConfiguration" => self.set_sip_configuration(&f),

            "GetSupportedMediaEncryptionModes" => Ok(json!({ "MediaEncryption": MediaEncryption::ALL })),
            "GetSIPAccount" => SIP_ACCOUNTS.get(store, &f),
            "GetSIPAccounts" => SIP_ACCOUNTS.get_many(store, &f),
            "SetSIPAccount" => SIP_ACCOUNTS.set(store, &f),
            "SetSIPAccounts" => SIP_ACCOUNTS.set_many(store, &f),
            "RemoveSIPAccount" => SIP_ACCOUNTS.remove(store, &f),
            "RemoveSIPAccounts" => SIP_ACCOUNTS.remove_many(store, &f),
            "GetSIPAccountStatus" => self.sip_account_status(&f, ctx),
            "GetSIPAccountStatuses" => self.sip_account_statuses(&f, ctx),

            "GetDTMFConfiguration" => DTMF_CONFIGURATIONS.get(store, &f),
            "GetDTMFConfigurations" => DTMF_CONFIGURATIONS.get_many(store, &f),
            "SetDTMFConfiguration" => DTMF_CONFIGURATIONS.set(store, &f),
            "SetDTMFConfigurations" => DTMF_CONFIGURATIONS.set_many(store, &f),
            "RemoveDTMFConfiguration" => DTMF_CONFIGURATIONS.remove(store, &f),
            "RemoveDTMFConfigurations" => DTMF_CONFIGURATIONS.remove_many(store, &f),

            "GetDTMFEvent" => DTMF_EVENTS.get(store, &f),
            "GetDTMFEvents" => DTMF_EVENTS.get_many(store, &f),
            "SetDTMFEvent" => DTMF_EVENTS.set(store, &f),
            "SetDTMFEvents" => DTMF_EVENTS.set_many(store, &f),
            "RemoveDTMFEvent" => DTMF_EVENTS.remove(store, &f),
            "RemoveDTMFEvents" => DTMF_EVENTS.remove_many(store, &f),

            "GetDTMFTrigger" => DTMF_TRIGGERS.get(store, &f),
            "GetDTMFTriggers" => DTMF_TRIGGERS.get_many(store, &f),
            "SetDTMFTrigger" => DTMF_TRIGGERS.set(store, &f),
            "SetDTMFTriggers" => DTMF_TRIGGERS.set_many(store, &f),
            "RemoveDTMFTrigger" => DTMF_TRIGGERS.remove(store, &f),
            "RemoveDTMFTriggers" => DTMF_TRIGGERS.remove_many(store, &f),

            "GetVMSCallConfiguration" => {
                Ok(json!({ "VMSCallConfiguration": to_value(store.read(|s| s.vms_call_configuration.clone())) }))
            }
            "SetVMSCallConfiguration" => {
                let config = VmsCallConfiguration::read(&f.req_object("VMSCallConfiguration")?)?;
                store.update(|s| {
                    s.vms_call_configuration = config;
                    Ok(())
                })?;
                Ok(json!({}))
            }

            "GetDefaultAudioCodecs" | "GetSupportedAudioCodecs" => {
                Ok(json!({ "AudioCodec": to_value(supported_codecs()) }))
            }
            "GetAudioCodecs" => Ok(json!({ "AudioCodec": to_value(store.read(|s| s.audio_codecs.clone())) })),
            "SetAudioCodecs" => {
                let codecs = read_priority_list(&f)?;
                store.update(|s| {
                    s.audio_codecs = codecs;
                    Ok(())
                })?;
                Ok(json!({}))
            }

            _ => Err(Fault::not_supported(action)),
        }
    }

    fn set_sip_configuration(&self, f: &Fields<'_>) -> Result<Value, Fault> {
        let fields = f.req_object("SIPConfiguration")?;
        let keep_current = f.opt_bool("KeepCurrent")?.unwrap_or(true);
        self.store.update(|s| {
            let base = if keep_current { s.sip_configuration.clone() } else { SipConfiguration::default() };
            s.sip_configuration = SipConfiguration::read(&fields, &base)?;
            Ok(())
        })?;
        Ok(json!({}))
    }

    fn sip_account_status(&self, f: &Fields<'_>, ctx: &RequestContext) -> Result<Value, Fault> {
        let id = one_id(f, "SIPAccountId")?;
        let problem = self.store.sip_listener_problem();
        let status = self.store.read(|s| {
            s.sip_accounts.get(&id).map(|a| {
                SipAccountStatus::of(
                    a,
                    &s.sip_configuration,
                    &ctx.device_host,
                    self.store.registration(&a.id).as_ref(),
                    problem.as_deref(),
                )
            })
        });
        let status = status.ok_or_else(|| Fault::not_found(format!("no SIPAccount {id:?}")))?;
        Ok(json!({ "SIPAccountStatus": to_value(status) }))
    }

    fn sip_account_statuses(&self, f: &Fields<'_>, ctx: &RequestContext) -> Result<Value, Fault> {
        let ids = id_list(f, "SIPAccountId")?;
        let problem = self.store.sip_listener_problem();
        let statuses: Vec<SipAccountStatus> = self.store.read(|s| {
            s.sip_accounts
                .values()
                .filter(|a| ids.is_empty() || ids.contains(&a.id))
                .map(|a| {
                    SipAccountStatus::of(
                        a,
                        &s.sip_configuration,
                        &ctx.device_host,
                        self.store.registration(&a.id).as_ref(),
                        problem.as_deref(),
                    )
                })
                .collect()
        });
        Ok(json!({ "SIPAccountStatus": to_value(statuses) }))
    }
}
