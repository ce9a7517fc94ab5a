//! The Call service data structures, one file per spec section, with their validation rules.
//!
//! Pure data: nothing here knows about HTTP, formats or the store. Readers take a
//! [`Fields`] view of a decoded request and return a typed value or a [`ModelError`].

pub mod address;
pub mod attribute;
pub mod audio_codec;
pub mod capabilities;
pub mod dtmf;
pub mod error;
pub mod fields;
pub mod ids;
pub mod sip_account;
pub mod sip_configuration;
pub mod vms;

pub use attribute::{Attribute, AttributeInfo, SUPPORTED_ATTRIBUTES};
pub use audio_codec::AudioCodec;
pub use capabilities::ServiceCapabilities;
pub use dtmf::{DtmfConfiguration, DtmfEvent, DtmfTrigger};
pub use error::{ModelError, ModelResult};
pub use fields::Fields;
pub use ids::IdKind;
pub use sip_account::{SipAccount, SipAccountStatus};
pub use sip_configuration::SipConfiguration;
pub use vms::VmsCallConfiguration;
