//! The device's configuration store and its invariants.
//!
//! One [`DeviceState`], published whole through an `ArcSwap`. Every change goes through
//! [`Store::update`]: the closure works on a copy, the invariants are checked on the result, and
//! only a valid result replaces the state. All-or-nothing plural Set*/Remove* falls out of this
//! shape (DESIGN.md decision 6). The state is small (at most [`MAX_OBJECTS`] of each kind), so
//! the copy costs microseconds.
//!
//! With a state file ([`Store::open`], `--state`), each change is written durably before it
//! takes effect and before the request is answered; a write that fails changes nothing.

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use indexmap::IndexMap;
use serde::Serialize;
use serde_json::{json, Value};

use crate::model::audio_codec::read_priority_list;
use crate::model::Fields;
use crate::persist::{sections, StateError, StateFile};

use crate::model::audio_codec::supported_codecs;
use crate::model::sip_account::PEER_TO_PEER_ID;
use crate::model::{
    AudioCodec, DtmfConfiguration, DtmfEvent, DtmfTrigger, IdKind, ModelError, ModelResult, SipAccount,
    SipConfiguration, VmsCallConfiguration,
};

/// The spec's upper limit of entities per type, enforced here so a client cannot grow the store
/// without bound.
pub const MAX_OBJECTS: usize = 100;

/// Everything the Call service API configures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeviceState {
    /// The SIP configuration.
    #[serde(rename = "SIPConfiguration")]
    pub sip_configuration: SipConfiguration,
    /// SIP accounts by id, in creation order.
    #[serde(rename = "SIPAccounts")]
    pub sip_accounts: IndexMap<String, SipAccount>,
    /// DTMF configurations by id.
    #[serde(rename = "DTMFConfigurations")]
    pub dtmf_configurations: IndexMap<String, DtmfConfiguration>,
    /// DTMF events by id.
    #[serde(rename = "DTMFEvents")]
    pub dtmf_events: IndexMap<String, DtmfEvent>,
    /// DTMF triggers by id.
    #[serde(rename = "DTMFTriggers")]
    pub dtmf_triggers: IndexMap<String, DtmfTrigger>,
    /// VMS call configuration.
    #[serde(rename = "VMSCallConfiguration")]
    pub vms_call_configuration: VmsCallConfiguration,
    /// Audio codec priority list, highest first.
    pub audio_codecs: Vec<AudioCodec>,
    /// Settings another brand's API keeps that mean nothing to the core (2N's `answerMode`, a
    /// registrar address kept while registration is off), by `brand.field`; at most
    /// [`MAX_VENDOR_SETTINGS`], each value at most [`MAX_VENDOR_TEXT`] bytes.
    pub vendor: std::collections::BTreeMap<String, String>,
}

/// Vendor settings kept at most.
pub const MAX_VENDOR_SETTINGS: usize = 64;
/// Longest vendor setting value.
pub const MAX_VENDOR_TEXT: usize = 256;

impl Default for DeviceState {
    /// The factory default: SIP disabled, one peer-to-peer account, default codecs and VMS settings.
    fn default() -> Self {
        let p2p = SipAccount::peer_to_peer();
        Self {
            sip_configuration: SipConfiguration::default(),
            sip_accounts: IndexMap::from([(p2p.id.clone(), p2p)]),
            dtmf_configurations: IndexMap::new(),
            dtmf_events: IndexMap::new(),
            dtmf_triggers: IndexMap::new(),
            vms_call_configuration: VmsCallConfiguration::default(),
            audio_codecs: supported_codecs(),
            vendor: std::collections::BTreeMap::new(),
        }
    }
}

/// A stored object kind: its id and how new ids are made.
trait Stored {
    const KIND: IdKind;
    const LABEL: &'static str;
    fn id_mut(&mut self) -> &mut String;
}

macro_rules! stored {
    ($ty:ty, $kind:expr, $label:literal) => {
        impl Stored for $ty {
            const KIND: IdKind = $kind;
            const LABEL: &'static str = $label;
            fn id_mut(&mut self) -> &mut String {
                &mut self.id
            }
        }
    };
}
stored!(SipAccount, IdKind::SipAccount, "SIP account");
stored!(DtmfConfiguration, IdKind::DtmfConfiguration, "DTMF configuration");
stored!(DtmfEvent, IdKind::DtmfEvent, "DTMF event");
stored!(DtmfTrigger, IdKind::DtmfTrigger, "DTMF trigger");

/// Adds or replaces `items` in `map`, generating ids for those without; returns the ids in order.
fn upsert<T: Stored>(map: &mut IndexMap<String, T>, items: Vec<T>) -> ModelResult<Vec<String>> {
    let mut ids = Vec::with_capacity(items.len());
    for mut item in items {
        if item.id_mut().is_empty() {
            *item.id_mut() = T::KIND.generate(|id| map.contains_key(id));
        }
        let id = item.id_mut().clone();
        if ids.contains(&id) {
            return Err(ModelError::Invalid(format!("{} '{id}' appears twice in the request", T::LABEL)));
        }
        map.insert(id.clone(), item);
        ids.push(id);
    }
    if map.len() > MAX_OBJECTS {
        return Err(ModelError::Invalid(format!("at most {MAX_OBJECTS} of each kind ({}s)", T::LABEL)));
    }
    Ok(ids)
}

impl DeviceState {
    /// Adds or replaces SIP accounts. An account set with IsDefault takes the default from the
    /// others (the last one in the request wins, as the spec says). While the factory
    /// peer-to-peer account is the default, the first account a user creates takes it
    /// (DESIGN.md decision 2; the spec's example shows a new `sip_account_0` as the default).
    pub fn set_sip_accounts(&mut self, accounts: Vec<SipAccount>) -> ModelResult<Vec<String>> {
        let new_default = accounts.iter().rev().position(|a| a.is_default).map(|i| accounts.len() - 1 - i);
        let factory_default = self.default_account().is_some_and(|a| a.id == PEER_TO_PEER_ID);
        let existing: Vec<String> = self.sip_accounts.keys().cloned().collect();
        let ids = upsert(&mut self.sip_accounts, accounts)?;
        let first_created = ids.iter().position(|id| !existing.contains(id));
        let new_default = new_default.or(first_created.filter(|_| factory_default));
        if let Some(i) = new_default {
            for (id, account) in &mut self.sip_accounts {
                account.is_default = *id == ids[i];
            }
        }
        self.repair_accounts();
        Ok(ids)
    }

    /// Removes SIP accounts; unknown ids are ignored. Removing the last account re-creates the
    /// peer-to-peer account.
    pub fn remove_sip_accounts(&mut self, ids: &[String]) -> ModelResult<()> {
        for id in ids {
            self.sip_accounts.shift_remove(id);
        }
        self.repair_accounts();
        Ok(())
    }

    /// Keeps exactly one default account and never zero accounts.
    fn repair_accounts(&mut self) {
        if self.sip_accounts.is_empty() {
            let p2p = SipAccount::peer_to_peer();
            self.sip_accounts.insert(p2p.id.clone(), p2p);
        }
        let mut seen_default = false;
        for account in self.sip_accounts.values_mut() {
            account.is_default &= !seen_default;
            seen_default |= account.is_default;
        }
        if !seen_default {
            if let Some((_, first)) = self.sip_accounts.first_mut() {
                first.is_default = true;
            }
        }
    }

    /// Adds or replaces DTMF configurations.
    pub fn set_dtmf_configurations(&mut self, items: Vec<DtmfConfiguration>) -> ModelResult<Vec<String>> {
        upsert(&mut self.dtmf_configurations, items)
    }

    /// Adds or replaces DTMF events.
    pub fn set_dtmf_events(&mut self, items: Vec<DtmfEvent>) -> ModelResult<Vec<String>> {
        upsert(&mut self.dtmf_events, items)
    }

    /// Adds or replaces DTMF triggers. A sequence another trigger already has is refused,
    /// naming that trigger (or the request, when two of its items share one).
    pub fn set_dtmf_triggers(&mut self, items: Vec<DtmfTrigger>) -> ModelResult<Vec<String>> {
        for (i, t) in items.iter().enumerate() {
            let replaced = |id: &str| items.iter().any(|x| !x.id.is_empty() && x.id == id);
            if let Some(other) = self
                .dtmf_triggers
                .values()
                .find(|o| o.dtmf_sequence == t.dtmf_sequence && o.id != t.id && !replaced(&o.id))
            {
                return Err(ModelError::Invalid(format!(
                    "DTMF sequence '{}' already triggers through '{}': a sequence triggers one event",
                    t.dtmf_sequence, other.id
                )));
            }
            if items[..i].iter().any(|o| o.dtmf_sequence == t.dtmf_sequence) {
                return Err(ModelError::Invalid(format!(
                    "DTMF sequence '{}' appears twice in the request: a sequence triggers one event",
                    t.dtmf_sequence
                )));
            }
        }
        upsert(&mut self.dtmf_triggers, items)
    }

    /// Removes DTMF configurations; unknown ids are ignored. One that an account uses is
    /// refused (`ter:Action ter:Failure`).
    pub fn remove_dtmf_configurations(&mut self, ids: &[String]) -> ModelResult<()> {
        if let Some(a) = self.sip_accounts.values().find(|a| ids.contains(&a.dtmf_configuration_id)) {
            return Err(ModelError::InUse(format!(
                "DTMF configuration '{}' is used by SIP account '{}'",
                a.dtmf_configuration_id, a.id
            )));
        }
        ids.iter().for_each(|id| drop(self.dtmf_configurations.shift_remove(id)));
        Ok(())
    }

    /// Removes DTMF events; unknown ids are ignored. One that a trigger fires (and that
    /// trigger stays) is refused (`ter:Action ter:Failure`).
    pub fn remove_dtmf_events(&mut self, ids: &[String]) -> ModelResult<()> {
        if let Some(t) = self.dtmf_triggers.values().find(|t| ids.contains(&t.dtmf_event_id)) {
            return Err(ModelError::InUse(format!(
                "DTMF event '{}' is fired by DTMF trigger '{}'",
                t.dtmf_event_id, t.id
            )));
        }
        ids.iter().for_each(|id| drop(self.dtmf_events.shift_remove(id)));
        Ok(())
    }

    /// Removes DTMF triggers; unknown ids are ignored. One that a configuration lists is
    /// refused (`ter:Action ter:Failure`).
    pub fn remove_dtmf_triggers(&mut self, ids: &[String]) -> ModelResult<()> {
        for c in self.dtmf_configurations.values() {
            if let Some(t) = c.dtmf_trigger_id.iter().find(|t| ids.contains(t)) {
                return Err(ModelError::InUse(format!(
                    "DTMF trigger '{t}' is listed by DTMF configuration '{}'",
                    c.id
                )));
            }
        }
        ids.iter().for_each(|id| drop(self.dtmf_triggers.shift_remove(id)));
        Ok(())
    }

    /// The state in the Get* commands' shapes, for the state file.
    pub fn to_file(&self) -> Value {
        let state = self;
        json!({
            "SIPConfiguration": state.sip_configuration,
            "SIPAccount": state.sip_accounts.values().collect::<Vec<_>>(),
            "DTMFEvent": state.dtmf_events.values().collect::<Vec<_>>(),
            "DTMFTrigger": state.dtmf_triggers.values().collect::<Vec<_>>(),
            "DTMFConfiguration": state.dtmf_configurations.values().collect::<Vec<_>>(),
            "VMSCallConfiguration": state.vms_call_configuration,
            "AudioCodec": state.audio_codecs,
            "Vendor": state.vendor,
        })
    }

    /// The state from the Get* shapes, through the Set* readers and the store's rules: a file
    /// passes exactly the checks a client's requests would.
    pub fn from_file(value: &Value) -> ModelResult<DeviceState> {
        let f = Fields::new(value, "", false)?;
        let mut s = DeviceState {
            sip_configuration: SipConfiguration::read(
                &f.req_object("SIPConfiguration")?,
                &SipConfiguration::default(),
            )?,
            ..DeviceState::default()
        };
        let list = |name: &str| -> Result<Vec<Fields<'_>>, ModelError> {
            f.req_list(name)?.into_iter().map(|i| f.item(name, i)).collect()
        };
        let events = list("DTMFEvent")?.iter().map(DtmfEvent::read).collect::<Result<Vec<_>, _>>()?;
        let triggers = list("DTMFTrigger")?.iter().map(DtmfTrigger::read).collect::<Result<Vec<_>, _>>()?;
        let configurations =
            list("DTMFConfiguration")?.iter().map(DtmfConfiguration::read).collect::<Result<Vec<_>, _>>()?;
        let accounts = list("SIPAccount")?.iter().map(|a| SipAccount::read(a, None)).collect::<Result<Vec<_>, _>>()?;
        s.set_dtmf_events(events)?;
        s.set_dtmf_triggers(triggers)?;
        s.set_dtmf_configurations(configurations)?;
        s.sip_accounts.clear();
        s.set_sip_accounts(accounts)?;
        s.vms_call_configuration = VmsCallConfiguration::read(&f.req_object("VMSCallConfiguration")?)?;
        s.audio_codecs = read_priority_list(&f)?;
        if let Some(vendor) = value.get("Vendor") {
            s.vendor =
                serde_json::from_value(vendor.clone()).map_err(|e| ModelError::Invalid(format!("Vendor: {e}")))?;
        }
        s.check_invariants()?;
        Ok(s)
    }

    /// Checks the vendor settings' bounds.
    fn check_vendor(&self) -> ModelResult<()> {
        if self.vendor.len() > MAX_VENDOR_SETTINGS
            || self.vendor.iter().any(|(k, v)| k.len() > MAX_VENDOR_TEXT || v.len() > MAX_VENDOR_TEXT)
        {
            return Err(ModelError::Invalid(format!(
                "at most {MAX_VENDOR_SETTINGS} vendor settings of at most {MAX_VENDOR_TEXT} bytes"
            )));
        }
        Ok(())
    }

    /// The default account (there is always exactly one).
    pub fn default_account(&self) -> Option<&SipAccount> {
        self.sip_accounts.values().find(|a| a.is_default)
    }

    /// The cross-object rules (DESIGN.md decision 7): account -> configuration -> triggers ->
    /// event never dangles, and no DTMF sequence triggers two events.
    fn check_invariants(&self) -> ModelResult<()> {
        self.check_vendor()?;
        let dangling = |from: &str, from_id: &str, to: &str, to_id: &str| {
            ModelError::Invalid(format!(
                "{from} '{from_id}' refers to {to} '{to_id}', which does not exist (or this request removes it)"
            ))
        };
        for a in self.sip_accounts.values() {
            let c = &a.dtmf_configuration_id;
            if !c.is_empty() && !self.dtmf_configurations.contains_key(c) {
                return Err(dangling("SIP account", &a.id, "DTMF configuration", c));
            }
        }
        for c in self.dtmf_configurations.values() {
            if let Some(t) = c.dtmf_trigger_id.iter().find(|t| !self.dtmf_triggers.contains_key(*t)) {
                return Err(dangling("DTMF configuration", &c.id, "DTMF trigger", t));
            }
        }
        for (i, t) in self.dtmf_triggers.values().enumerate() {
            if !self.dtmf_events.contains_key(&t.dtmf_event_id) {
                return Err(dangling("DTMF trigger", &t.id, "DTMF event", &t.dtmf_event_id));
            }
            if let Some(other) = self.dtmf_triggers.values().skip(i + 1).find(|o| o.dtmf_sequence == t.dtmf_sequence) {
                return Err(ModelError::Invalid(format!(
                    "DTMF sequence '{}' would trigger through both '{}' and '{}': a sequence triggers one event",
                    t.dtmf_sequence, t.id, other.id
                )));
            }
        }
        Ok(())
    }
}

/// How much state the SIP user agent holds, reported by it after each thing it handles (relaxed
/// counters: a reader sees recent values, never torn ones).
#[derive(Debug, Default)]
pub struct SipLoad {
    /// Transactions, both sides, lingering ones included.
    pub transactions: std::sync::atomic::AtomicUsize,
    /// Dialogs (calls on the wire).
    pub dialogs: std::sync::atomic::AtomicUsize,
}

/// The store: one device's state, which requests on every worker read at once without a lock
/// (a read-write lock's count would be written by every core on every read), and the
/// registration status the SIP user agent reports per account.
#[derive(Debug)]
pub struct Store {
    /// The committed state; a reader holds the one it loaded, an update publishes a new one.
    state: ArcSwap<DeviceState>,
    /// Held by an update (or reset) from its copy to its swap, and with a state file also for
    /// the write, so updates apply one after another and the file always holds the latest
    /// committed state (writes are rare and small).
    updating: Mutex<()>,
    /// Where the state persists (`--state`), if anywhere.
    file: Option<Arc<StateFile>>,
    /// Last registration result per account id; held only to read or write one entry.
    registrations: Mutex<std::collections::HashMap<String, crate::model::sip_account::Registration>>,
    /// Bumped on every registration status change.
    registration_revision: tokio::sync::watch::Sender<u64>,
    /// Why the SIP listeners are not running although SIP is enabled (a port in use).
    sip_listener_problem: Mutex<Option<String>>,
    /// What the SIP user agent holds now, as it last reported it.
    sip_load: SipLoad,
    /// The state a reset (and a fresh state file) starts from: the brand's factory settings.
    factory: DeviceState,
    /// A revision number bumped on every committed change, for components that follow the
    /// configuration (the SIP listeners).
    revision: tokio::sync::watch::Sender<u64>,
}

impl Default for Store {
    fn default() -> Self {
        Self {
            state: ArcSwap::default(),
            updating: Mutex::default(),
            file: None,
            registrations: Mutex::default(),
            registration_revision: tokio::sync::watch::Sender::new(0),
            sip_listener_problem: Mutex::default(),
            sip_load: SipLoad::default(),
            factory: DeviceState::default(),
            revision: tokio::sync::watch::Sender::new(0),
        }
    }
}

impl Store {
    /// A store with the factory-default state.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store that starts from (and resets to) `factory`, in memory.
    pub fn with_factory(factory: DeviceState) -> Self {
        Self { state: ArcSwap::from_pointee(factory.clone()), factory, ..Self::default() }
    }

    /// A store kept in `file`: what the file holds (refused, and left untouched, when it does
    /// not parse or breaks a rule), or `factory`, written there, when there is no file.
    pub fn open(file: Arc<StateFile>, factory: DeviceState) -> Result<Self, StateError> {
        let state = if file.is_fresh() {
            file.save(sections(factory.to_file()))?;
            factory.clone()
        } else {
            DeviceState::from_file(&file.document()).map_err(|e| file.refused(e))?
        };
        Ok(Self { state: ArcSwap::from_pointee(state), file: Some(file), factory, ..Self::default() })
    }

    /// Taken for a whole update. A panic while holding it cannot leave a half-applied state
    /// (updates swap whole states), so a poisoned lock is still consistent.
    fn updating(&self) -> std::sync::MutexGuard<'_, ()> {
        self.updating.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reads the state.
    pub fn read<T>(&self, f: impl FnOnce(&DeviceState) -> T) -> T {
        f(&self.state.load())
    }

    /// A copy of the whole state.
    pub fn snapshot(&self) -> DeviceState {
        DeviceState::clone(&self.state.load())
    }

    /// Applies `f` to a copy of the state; commits it only if `f` succeeds and every invariant
    /// holds afterwards. A refused update changes nothing.
    pub fn update<T>(&self, f: impl FnOnce(&mut DeviceState) -> ModelResult<T>) -> ModelResult<T> {
        let guard = self.updating();
        let mut next = DeviceState::clone(&self.state.load());
        let out = f(&mut next)?;
        next.check_invariants()?;
        self.save(&next)?;
        self.state.store(Arc::new(next));
        drop(guard);
        self.revision.send_modify(|r| *r += 1);
        Ok(out)
    }

    /// Restores the factory defaults.
    pub fn reset(&self) {
        let guard = self.updating();
        let factory = self.factory.clone();
        if let Err(e) = self.save(&factory) {
            tracing::error!(error = %e, "the state file could not be reset");
        }
        self.state.store(Arc::new(factory));
        drop(guard);
        self.set_sip_listener_problem(None); // the listeners follow the factory state afresh
        self.revision.send_modify(|r| *r += 1);
    }

    /// Writes `state` to the state file, if there is one.
    fn save(&self, state: &DeviceState) -> ModelResult<()> {
        match &self.file {
            Some(file) => file.save(sections(state.to_file())).map_err(|e| ModelError::Storage(e.to_string())),
            None => Ok(()),
        }
    }

    /// Records (or with `None` forgets) an account's registration status.
    pub fn set_registration(&self, account: &str, registration: Option<crate::model::sip_account::Registration>) {
        let mut map = self.registrations.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match registration {
            Some(r) => map.insert(account.to_owned(), r),
            None => map.remove(account),
        };
        drop(map);
        self.registration_revision.send_modify(|r| *r += 1);
    }

    /// Records why the SIP listeners cannot run (`None`: they run, or SIP is off).
    pub fn set_sip_listener_problem(&self, problem: Option<String>) {
        *self.sip_listener_problem.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = problem;
    }

    /// What the SIP user agent holds now: its state is bounded, and this shows it.
    pub fn sip_load(&self) -> &SipLoad {
        &self.sip_load
    }

    /// Why the SIP listeners cannot run, if they cannot.
    pub fn sip_listener_problem(&self) -> Option<String> {
        self.sip_listener_problem.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Follows registration status changes.
    pub fn registration_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.registration_revision.subscribe()
    }

    /// An account's last registration status.
    pub fn registration(&self, account: &str) -> Option<crate::model::sip_account::Registration> {
        self.registrations.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(account).cloned()
    }

    /// Follows committed changes.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.revision.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Fields;
    use serde_json::json;

    fn account(v: serde_json::Value) -> SipAccount {
        SipAccount::read(&Fields::new(&v, "SIPAccount", false).expect("object"), None).expect("valid")
    }

    #[test]
    fn factory_default_has_one_default_peer_to_peer_account() {
        let s = DeviceState::default();
        assert_eq!(s.sip_accounts.len(), 1);
        assert_eq!(s.default_account().map(|a| a.id.as_str()), Some("peer-to-peer"));
    }

    #[test]
    fn ids_are_generated_and_the_last_default_wins() {
        let store = Store::new();
        let ids = store
            .update(|s| {
                s.set_sip_accounts(vec![
                    account(json!({"UserId": "a", "IsDefault": true})),
                    account(json!({"UserId": "b", "IsDefault": true})),
                ])
            })
            .expect("valid");
        assert_eq!(ids, ["sip_account_0", "sip_account_1"]);
        assert_eq!(store.read(|s| s.default_account().map(|a| a.id.clone())), Some("sip_account_1".into()));
    }

    #[test]
    fn removing_every_account_recreates_peer_to_peer() {
        let store = Store::new();
        store.update(|s| s.remove_sip_accounts(&["peer-to-peer".into()])).expect("valid");
        assert_eq!(store.snapshot(), DeviceState::default());
    }

    #[test]
    fn a_refused_update_changes_nothing() {
        let store = Store::new();
        let before = store.snapshot();
        let r =
            store.update(|s| s.set_sip_accounts(vec![account(json!({"UserId": "a", "DTMFConfigurationId": "nope"}))]));
        assert!(matches!(r, Err(ModelError::Invalid(_))));
        assert_eq!(store.snapshot(), before);
    }

    #[test]
    fn references_and_unique_sequences_hold() {
        let store = Store::new();
        let ev = |id: &str| DtmfEvent { id: id.into(), name: id.into() };
        let tr = |id: &str, seq: &str, ev: &str| DtmfTrigger {
            id: id.into(),
            dtmf_sequence: seq.into(),
            dtmf_event_id: ev.into(),
        };
        store.update(|s| s.set_dtmf_events(vec![ev("a"), ev("b")])).expect("events");
        store.update(|s| s.set_dtmf_triggers(vec![tr("t1", "1234", "a"), tr("t2", "5678", "b")])).expect("triggers");
        // The spec's example: the same sequence may not point at another event through a new
        // trigger; the fault names the trigger that holds it, not the id the new one would get.
        let refused = store.update(|s| s.set_dtmf_triggers(vec![tr("", "1234", "b")]));
        assert!(matches!(&refused, Err(ModelError::Invalid(m)) if m.contains("'t1'") && !m.contains("dtmf_trigger_")));
        // ...but updating the trigger that holds it is fine.
        store.update(|s| s.set_dtmf_triggers(vec![tr("t1", "1234", "b")])).expect("update");
        // An event named by a trigger cannot be removed: the Remove* tables' fault, nothing changed.
        let before = store.snapshot();
        let in_use = store.update(|s| s.remove_dtmf_events(&["b".into()]));
        assert!(matches!(&in_use, Err(ModelError::InUse(m)) if m.contains("'t1'")), "{in_use:?}");
        assert_eq!(store.snapshot(), before);
        store.update(|s| s.remove_dtmf_events(&["a".into(), "unknown".into()])).expect("unused event");
    }

    #[test]
    fn the_state_file_shape_reads_back_equal_and_breaking_a_rule_is_refused() {
        let factory = DeviceState::default();
        assert_eq!(DeviceState::from_file(&factory.to_file()).expect("factory"), factory);
        let store = Store::new();
        store
            .update(|s| s.set_dtmf_events(vec![DtmfEvent { id: "open".into(), name: "Open\nthe door".into() }]))
            .expect("event");
        store.update(|s| s.set_sip_accounts(vec![account(json!({"UserId": "6001"}))])).expect("account");
        let configured = store.snapshot();
        assert_eq!(DeviceState::from_file(&configured.to_file()).expect("configured"), configured);
        let mut broken = configured.to_file();
        broken["DTMFTrigger"] = json!([{"Id": "t", "DTMFSequence": "1", "DTMFEventId": "missing"}]);
        assert!(DeviceState::from_file(&broken).is_err());
        assert!(DeviceState::from_file(&json!({})).is_err());
    }
}
