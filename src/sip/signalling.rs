//! The call engine's port into the user agent: [`SipUa`] implements [`Signalling`] by queueing
//! [`Command`]s for the agent task.

use tokio::sync::mpsc;

use crate::calls::{Reason, Signalling};

/// What the engine asks of the agent.
#[derive(Debug)]
pub(super) enum Command {
    /// The device answered ringing call `id`.
    Answered(String),
    /// The device ends call `id`.
    Ended(String, Reason),
    /// The device places call `id` to `to` through `account`.
    Place { id: String, to: String, account: String },
    /// The device sends DTMF on call `id`.
    SendDtmf { id: String, digits: String, over_rtp: bool },
    /// The far end of call `id` keyed `digits` (the control API's keypad).
    Keyed { id: String, digits: String },
    /// Answer once every earlier command is carried out.
    Flush(tokio::sync::oneshot::Sender<()>),
    /// The device is stopping: end the calls, un-register, answer when done.
    WindDown(tokio::sync::oneshot::Sender<()>),
}

/// The engine's handle on the user agent.
///
/// The queue is unbounded on purpose: a dropped `Ended` would leave a call up on the wire.
/// Each command comes from an HTTP request or a call timer, and the agent never waits on the
/// network, so it drains the queue as fast as commands can arrive.
#[derive(Debug)]
pub struct SipUa {
    pub(super) commands: mpsc::UnboundedSender<Command>,
}

impl SipUa {
    fn queue(&self, command: Command) {
        if self.commands.send(command).is_err() {
            tracing::debug!("SIP user agent stopped; command not delivered");
        }
    }
}

impl Signalling for SipUa {
    fn answered(&self, id: &str) {
        self.queue(Command::Answered(id.to_owned()));
    }

    fn ended(&self, id: &str, reason: Reason) {
        self.queue(Command::Ended(id.to_owned(), reason));
    }

    fn place(&self, id: &str, to: &str, account: &str) {
        self.queue(Command::Place { id: id.to_owned(), to: to.to_owned(), account: account.to_owned() });
    }

    fn send_dtmf(&self, id: &str, digits: &str, over_rtp: bool) {
        self.queue(Command::SendDtmf { id: id.to_owned(), digits: digits.to_owned(), over_rtp });
    }

    fn keyed(&self, id: &str, digits: &str) {
        self.queue(Command::Keyed { id: id.to_owned(), digits: digits.to_owned() });
    }

    fn wind_down(&self) -> tokio::sync::oneshot::Receiver<()> {
        let (done, wound_down) = tokio::sync::oneshot::channel();
        self.queue(Command::WindDown(done));
        wound_down
    }

    fn flushed(&self) -> tokio::sync::oneshot::Receiver<()> {
        let (done, flushed) = tokio::sync::oneshot::channel();
        self.queue(Command::Flush(done));
        flushed
    }
}
