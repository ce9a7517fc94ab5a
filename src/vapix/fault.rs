//! The Call service fault: the one place where an error becomes a response body.

use serde_json::{json, Value};

use crate::calls::CallError;
use crate::model::ModelError;

/// A fault as the spec writes it: `Fault`, `FaultCode`, `FaultSubCode`, `FaultReason`, `FaultMsg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// `env:Sender` or `env:Receiver`.
    pub fault: &'static str,
    /// `ter:InvalidArgs`, `ter:InvalidArgVal`, `ter:ActionNotSupported`, `ter:Action`.
    pub code: &'static str,
    /// `ter:InvalidArgVal`, `ter:NotFound`, `ter:NotSupported`, `ter:Failure`, or none.
    pub subcode: Option<&'static str>,
    /// The spec's description of the fault code.
    pub reason: &'static str,
    /// What exactly was wrong.
    pub msg: Option<String>,
}

impl Fault {
    /// `env:Sender ter:InvalidArgs`: missing data or a request that cannot be parsed.
    pub fn invalid_args(msg: impl Into<String>) -> Self {
        Self {
            fault: "env:Sender",
            code: "ter:InvalidArgs",
            subcode: None,
            reason: "Missing data. The request does not contain all required data.",
            msg: Some(msg.into()),
        }
    }

    /// `env:Sender ter:InvalidArgVal ter:InvalidArgVal`: a value of the wrong type or range.
    pub fn invalid_arg_val(msg: impl Into<String>) -> Self {
        Self {
            fault: "env:Sender",
            code: "ter:InvalidArgVal",
            subcode: Some("ter:InvalidArgVal"),
            reason: "Invalid data. The request contains invalid values.",
            msg: Some(msg.into()),
        }
    }

    /// `env:Sender ter:InvalidArgVal ter:NotFound`: an id that resolves to nothing.
    pub fn not_found(msg: impl Into<String>) -> Self {
        Self {
            fault: "env:Sender",
            code: "ter:InvalidArgVal",
            subcode: Some("ter:NotFound"),
            reason: "Not found.",
            msg: Some(msg.into()),
        }
    }

    /// `env:Receiver ter:ActionNotSupported ter:NotSupported`: an unknown action.
    pub fn not_supported(action: &str) -> Self {
        Self {
            fault: "env:Receiver",
            code: "ter:ActionNotSupported",
            subcode: Some("ter:NotSupported"),
            reason: "The action is not supported.",
            msg: Some(format!("unknown action {action:?}")),
        }
    }

    /// `env:Receiver ter:Action ter:Failure`: the device could not do it.
    pub fn failure(msg: impl Into<String>) -> Self {
        Self {
            fault: "env:Receiver",
            code: "ter:Action",
            subcode: Some("ter:Failure"),
            reason: "The action failed.",
            msg: Some(msg.into()),
        }
    }

    /// The fault as a value, fields in the spec's order, for either format's encoder.
    pub fn to_value(&self) -> Value {
        json!({
            "Fault": self.fault,
            "FaultCode": self.code,
            "FaultSubCode": self.subcode,
            "FaultReason": self.reason,
            "FaultMsg": self.msg,
        })
    }
}

impl From<ModelError> for Fault {
    fn from(e: ModelError) -> Self {
        match e {
            ModelError::Missing(m) => Fault::invalid_args(format!("missing {m}")),
            ModelError::Invalid(m) => Fault::invalid_arg_val(m),
            ModelError::NotFound(m) => Fault::not_found(m),
            ModelError::InUse(m) | ModelError::Storage(m) => Fault::failure(m),
        }
    }
}

impl From<CallError> for Fault {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Invalid(m) => Fault::invalid_arg_val(m),
            CallError::NotFound(m) => Fault::not_found(m),
            CallError::Failed(m) => Fault::failure(m),
        }
    }
}
