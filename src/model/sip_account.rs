//! `SIPAccount`, `SIPProxy` and `SIPAccountStatus` (spec: "SIP accounts", "SIP account status").

use serde::{Serialize, Serializer};

use super::address::{validate_host, validate_sip_user};
use super::attribute::{read_attributes, Attribute};
use super::error::{ModelError, ModelResult};
use super::fields::Fields;
use super::ids::validate_id;
use super::sip_configuration::SipConfiguration;

/// Id of the factory-default account (DESIGN.md decision 2).
pub const PEER_TO_PEER_ID: &str = "peer-to-peer";

/// Most SIP proxies one account may route through.
const MAX_PROXIES: usize = 10;

/// SIP transport of an account (`SIPTransport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// UDP.
    #[default]
    Udp,
    /// TCP.
    Tcp,
    /// TLS.
    Tls,
}

/// Media encryption preference (`MediaEncryption`), ordered from the loosest to the strictest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default, PartialOrd, Ord)]
pub enum MediaEncryption {
    /// Plain RTP.
    #[default]
    None,
    /// SRTP when the remote supports it.
    #[serde(rename = "SRTPBestEffort")]
    SrtpBestEffort,
    /// SRTP or no call.
    #[serde(rename = "SRTPMandatory")]
    SrtpMandatory,
}

impl MediaEncryption {
    /// Every mode, as GetSupportedMediaEncryptionModes lists them.
    pub const ALL: [&'static str; 3] = ["None", "SRTPBestEffort", "SRTPMandatory"];

    fn parse(s: &str, path: &str) -> ModelResult<Self> {
        match s {
            "None" => Ok(Self::None),
            "SRTPBestEffort" => Ok(Self::SrtpBestEffort),
            "SRTPMandatory" => Ok(Self::SrtpMandatory),
            other => Err(ModelError::invalid(path, format!("{other:?} is not one of {:?}", Self::ALL))),
        }
    }
}

/// The TLS versions `EncryptionProtocols` may list.
const ENCRYPTION_PROTOCOLS: [&str; 3] = ["TLSv1", "TLSv11", "TLSv12"];

/// A SIP proxy on the route of outgoing calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SipProxy {
    /// Proxy address.
    pub server: String,
    /// User name at the proxy.
    pub username: String,
    /// Password at the proxy.
    pub password: String,
}

/// A SIP account. Field order is the order the device writes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SipAccount {
    /// Identifier.
    #[serde(rename = "Id")]
    pub id: String,
    /// Whether the account is in use.
    #[serde(rename = "Enabled")]
    pub enabled: bool,
    /// Descriptive name.
    #[serde(rename = "Name")]
    pub name: String,
    /// User part of the AOR and registration user.
    #[serde(rename = "UserId")]
    pub user_id: String,
    /// Authentication user; empty means `UserId`.
    #[serde(rename = "AuthenticationId")]
    pub authentication_id: String,
    /// Password for `UserId`.
    #[serde(rename = "Password", serialize_with = "empty_as_null")]
    pub password: String,
    /// Caller id (display name).
    #[serde(rename = "CallerId")]
    pub caller_id: String,
    /// Registrar address; empty means use `PublicDomain`.
    #[serde(rename = "Registrar", serialize_with = "empty_as_null")]
    pub registrar: String,
    /// Public domain of the AOR.
    #[serde(rename = "PublicDomain", serialize_with = "empty_as_null")]
    pub public_domain: String,
    /// Backup registrar.
    #[serde(rename = "SecondaryRegistrar")]
    pub secondary_registrar: String,
    /// Public domain of the backup registrar.
    #[serde(rename = "SecondaryPublicDomain")]
    pub secondary_public_domain: String,
    /// The default account for calls that name none.
    #[serde(rename = "IsDefault")]
    pub is_default: bool,
    /// SIPS; forces TLS.
    #[serde(rename = "SIPSEnabled")]
    pub sips_enabled: bool,
    /// Transport for this account's calls.
    #[serde(rename = "Transport")]
    pub transport: Transport,
    /// Prefer IPv6.
    #[serde(rename = "PrioritizeIPv6")]
    pub prioritize_ipv6: bool,
    /// Outgoing proxies, first hop first.
    #[serde(rename = "SIPProxies")]
    pub sip_proxies: Vec<SipProxy>,
    /// Supported attributes.
    #[serde(rename = "Attribute")]
    pub attribute: Vec<Attribute>,
    /// Percent-encoded video stream parameters.
    #[serde(rename = "StreamParameters")]
    pub stream_parameters: String,
    /// Allow MWI.
    #[serde(rename = "AllowMWI")]
    pub allow_mwi: bool,
    /// The DTMF configuration in force for this account's calls; empty for none.
    #[serde(rename = "DTMFConfigurationId")]
    pub dtmf_configuration_id: String,
    /// Media encryption preference.
    #[serde(rename = "MediaEncryption")]
    pub media_encryption: MediaEncryption,
    /// TLS certificate id.
    #[serde(rename = "Certificate")]
    pub certificate: String,
    /// Comma-separated TLS versions.
    #[serde(rename = "EncryptionProtocols")]
    pub encryption_protocols: String,
    /// Verify the remote certificate.
    #[serde(rename = "VerifyServerCertificate")]
    pub verify_server_certificate: bool,
}

fn empty_as_null<S: Serializer>(value: &str, s: S) -> Result<S::Ok, S::Error> {
    if value.is_empty() {
        s.serialize_none()
    } else {
        s.serialize_str(value)
    }
}

impl SipAccount {
    /// The factory-default peer-to-peer account.
    pub fn peer_to_peer() -> Self {
        Self {
            id: PEER_TO_PEER_ID.to_owned(),
            enabled: true,
            name: String::new(),
            user_id: PEER_TO_PEER_ID.to_owned(),
            authentication_id: String::new(),
            password: String::new(),
            caller_id: String::new(),
            registrar: String::new(),
            public_domain: String::new(),
            secondary_registrar: String::new(),
            secondary_public_domain: String::new(),
            is_default: true,
            sips_enabled: false,
            transport: Transport::Udp,
            prioritize_ipv6: false,
            sip_proxies: Vec::new(),
            attribute: Vec::new(),
            stream_parameters: String::new(),
            allow_mwi: false,
            dtmf_configuration_id: String::new(),
            media_encryption: MediaEncryption::None,
            certificate: String::new(),
            encryption_protocols: String::new(),
            verify_server_certificate: false,
        }
    }

    /// Reads an account. `Id` may be empty (create with a generated id). `request_stream_parameters`
    /// is the request-level `StreamParameters` that one spec example puts beside the account.
    ///
    /// Accepted aliases, written by spec examples: `Username` for `UserId` and `SIPAccount` for
    /// `SIPProxies`. They are never written back.
    pub fn read(f: &Fields<'_>, request_stream_parameters: Option<String>) -> ModelResult<Self> {
        let text = |name: &str| -> ModelResult<String> { Ok(f.opt_text(name)?.unwrap_or_default()) };
        let host = |name: &str| -> ModelResult<String> {
            let v = text(name)?;
            if !v.is_empty() {
                validate_host(&v, &f.path_of(name))?;
            }
            Ok(v)
        };
        let flag = |name: &str, default: bool| -> ModelResult<bool> { Ok(f.opt_bool(name)?.unwrap_or(default)) };

        let id = text("Id")?;
        if !id.is_empty() {
            validate_id(&id, &f.path_of("Id"))?;
        }
        let user_field = if f.has("UserId") || !f.has("Username") { "UserId" } else { "Username" };
        let user_id = f.req_text(user_field)?;
        validate_sip_user(&user_id, &f.path_of(user_field))?;
        let authentication_id = text("AuthenticationId")?;
        if !authentication_id.is_empty() {
            validate_sip_user(&authentication_id, &f.path_of("AuthenticationId"))?;
        }
        let sips_enabled = flag("SIPSEnabled", false)?;
        let transport = match f.opt_text("Transport")?.as_deref() {
            _ if sips_enabled => Transport::Tls,
            None => Transport::Udp,
            Some("udp") => Transport::Udp,
            Some("tcp") => Transport::Tcp,
            Some("tls") => Transport::Tls,
            Some(other) => {
                return Err(ModelError::invalid(&f.path_of("Transport"), format!("{other:?} is not udp, tcp or tls")))
            }
        };
        let media_encryption = match f.opt_text("MediaEncryption")? {
            None => MediaEncryption::None,
            Some(s) => MediaEncryption::parse(&s, &f.path_of("MediaEncryption"))?,
        };
        if media_encryption != MediaEncryption::None && transport != Transport::Tls {
            return Err(ModelError::invalid(&f.path_of("MediaEncryption"), "media encryption needs Transport tls"));
        }
        let encryption_protocols = text("EncryptionProtocols")?;
        for p in encryption_protocols.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if !ENCRYPTION_PROTOCOLS.contains(&p) {
                return Err(ModelError::invalid(
                    &f.path_of("EncryptionProtocols"),
                    format!("{p:?} is not one of {ENCRYPTION_PROTOCOLS:?}"),
                ));
            }
        }
        let proxies_field = if f.has("SIPProxies") || !f.has("SIPAccount") { "SIPProxies" } else { "SIPAccount" };
        let proxies = f.opt_list(proxies_field)?.unwrap_or_default();
        if proxies.len() > MAX_PROXIES {
            return Err(ModelError::invalid(&f.path_of(proxies_field), format!("at most {MAX_PROXIES} proxies")));
        }
        let sip_proxies =
            proxies.into_iter().map(|i| SipProxy::read(&f.item(proxies_field, i)?)).collect::<ModelResult<Vec<_>>>()?;
        let dtmf_configuration_id = text("DTMFConfigurationId")?;
        if !dtmf_configuration_id.is_empty() {
            validate_id(&dtmf_configuration_id, &f.path_of("DTMFConfigurationId"))?;
        }
        Ok(Self {
            id,
            enabled: flag("Enabled", true)?,
            name: text("Name")?,
            user_id,
            authentication_id,
            password: text("Password")?,
            caller_id: text("CallerId")?,
            registrar: host("Registrar")?,
            public_domain: host("PublicDomain")?,
            secondary_registrar: host("SecondaryRegistrar")?,
            secondary_public_domain: host("SecondaryPublicDomain")?,
            is_default: flag("IsDefault", false)?,
            sips_enabled,
            transport,
            prioritize_ipv6: flag("PrioritizeIPv6", false)?,
            sip_proxies,
            attribute: read_attributes(f)?,
            stream_parameters: match f.opt_text("StreamParameters")? {
                Some(s) => s,
                None => request_stream_parameters.unwrap_or_default(),
            },
            allow_mwi: flag("AllowMWI", false)?,
            dtmf_configuration_id,
            media_encryption,
            certificate: text("Certificate")?,
            encryption_protocols,
            verify_server_certificate: flag("VerifyServerCertificate", false)?,
        })
    }

    /// Whether the account registers: it has a registrar or a public domain.
    pub fn registers(&self) -> bool {
        !self.registrar.is_empty() || !self.public_domain.is_empty()
    }

    /// The account's address of record, `sip[s]:UserId@Domain`, or for a peer-to-peer account
    /// `sip[s]:HOST:PORT` with the device's own address.
    pub fn sip_uri(&self, device_host: &str, config: &SipConfiguration) -> String {
        let scheme = if self.sips_enabled { "sips" } else { "sip" };
        if self.registers() {
            let domain = if self.public_domain.is_empty() { &self.registrar } else { &self.public_domain };
            format!("{scheme}:{}@{domain}", self.user_id)
        } else {
            let port = if self.transport == Transport::Tls { config.sip_tls_port } else { config.sip_port };
            format!("{scheme}:{device_host}:{port}")
        }
    }
}

impl SipProxy {
    fn read(f: &Fields<'_>) -> ModelResult<Self> {
        let server = f.req_text("Server")?;
        validate_host(&server, &f.path_of("Server"))?;
        Ok(Self {
            server,
            username: f.opt_text("Username")?.unwrap_or_default(),
            password: f.opt_text("Password")?.unwrap_or_default(),
        })
    }
}

/// Runtime status of an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SipAccountStatus {
    /// The account.
    #[serde(rename = "SIPAccountId")]
    pub sip_account_id: String,
    /// Its address of record.
    #[serde(rename = "SIPURI")]
    pub sip_uri: String,
    /// Whether it is the default account.
    #[serde(rename = "IsDefault")]
    pub is_default: bool,
    /// Registrar URI when registered, else empty.
    #[serde(rename = "RegURI")]
    pub reg_uri: String,
    /// Last SIP status code from the registrar, 0 when not registering.
    #[serde(rename = "Status")]
    pub status: u16,
    /// Reason phrase, or "Does not register" / "SIP disabled".
    #[serde(rename = "StatusText")]
    pub status_text: String,
}

/// What the SIP side knows of an account's registration; absent until it has tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// Registrar URI.
    pub reg_uri: String,
    /// Last SIP status code.
    pub status: u16,
    /// Last reason phrase.
    pub status_text: String,
}

impl SipAccountStatus {
    /// The status of `account` given the configuration, what registration reported, and why
    /// the SIP listeners cannot run (a SIP port in use), if they cannot.
    pub fn of(
        account: &SipAccount,
        config: &SipConfiguration,
        device_host: &str,
        registration: Option<&Registration>,
        listener_problem: Option<&str>,
    ) -> Self {
        let (reg_uri, status, status_text) = match registration {
            _ if !config.sip_enabled => (String::new(), 0, "SIP disabled".to_owned()),
            _ if listener_problem.is_some() => (String::new(), 0, listener_problem.unwrap_or_default().to_owned()),
            Some(r) if account.registers() => (r.reg_uri.clone(), r.status, r.status_text.clone()),
            _ => (String::new(), 0, "Does not register".to_owned()),
        };
        Self {
            sip_account_id: account.id.clone(),
            sip_uri: account.sip_uri(device_host, config),
            is_default: account.is_default,
            reg_uri,
            status,
            status_text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(v: serde_json::Value) -> ModelResult<SipAccount> {
        SipAccount::read(&Fields::new(&v, "SIPAccount", false)?, None)
    }

    #[test]
    fn the_spec_peer_to_peer_example_reads() {
        let a = read(json!({"UserId": "peer-to-peer"})).expect("valid");
        assert_eq!(a.user_id, "peer-to-peer");
        assert_eq!(a.transport, Transport::Udp);
        assert!(a.enabled && !a.registers());
    }

    #[test]
    fn username_and_sipaccount_aliases_are_accepted() {
        let a = read(json!({"Username": "6001", "SIPAccount": [{"Server": "10.23.23.2"}]})).expect("valid");
        assert_eq!(a.user_id, "6001");
        assert_eq!(a.sip_proxies.len(), 1);
        let out = serde_json::to_value(&a).expect("serialize");
        assert!(out.get("Username").is_none() && out.get("UserId").is_some());
    }

    #[test]
    fn invariants_of_one_account() {
        assert!(matches!(read(json!({})), Err(ModelError::Missing(_))));
        assert!(read(json!({"UserId": "a", "MediaEncryption": "SRTPMandatory"})).is_err());
        assert!(read(json!({"UserId": "a", "MediaEncryption": "SRTPMandatory", "Transport": "tls"})).is_ok());
        assert!(read(json!({"UserId": "a", "Transport": "sctp"})).is_err());
        assert!(read(json!({"UserId": "a", "EncryptionProtocols": "TLSv12,SSLv3"})).is_err());
        assert_eq!(read(json!({"UserId": "a", "SIPSEnabled": true})).expect("valid").transport, Transport::Tls);
    }

    #[test]
    fn sip_uri_follows_the_account_kind() {
        let c = SipConfiguration::default();
        let p2p = SipAccount::peer_to_peer();
        assert_eq!(p2p.sip_uri("192.168.0.90", &c), "sip:192.168.0.90:5060");
        let reg = read(json!({"UserId": "6001", "Registrar": "192.168.0.1", "PublicDomain": "example.axis.com"}))
            .expect("valid");
        assert_eq!(reg.sip_uri("h", &c), "sip:6001@example.axis.com");
    }
}
