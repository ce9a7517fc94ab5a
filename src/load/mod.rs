//! `doorsim load`: door stations that drive call flows against a system under test, like sipp
//! but with door semantics. N doors start as a fleet; C calls in total are started at R per
//! second, each a call-button press on the next door that places a SIP call to the target (or
//! a VMS call with `--vms`). An answered call carries RTP both ways for the hold time, sends the
//! optional DTMF digits (RFC 4733), then hangs up with BYE. A live progress line, a summary
//! with setup-latency percentiles, and an optional report of every call; the exit status is 1
//! when more calls failed than `--max-failures`. Ctrl-C ends calls cleanly (BYE/CANCEL) and
//! still writes the report.

mod report;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::calls::{CallEngine, CallState, VMS_CALL};
use crate::cli::LoadArgs;
use crate::control::Control;
use crate::fleet::file::FleetFile;
use crate::fleet::{self, Common, Fleet};
pub use report::{CallOutcome, Summary};

/// Why a load test could not run.
#[derive(Debug, thiserror::Error)]
enum LoadError {
    /// A rate of zero or less.
    #[error("--rate must be above 0")]
    Rate,
    /// No doors or no calls.
    #[error("--doors and --calls must be at least 1")]
    Counts,
    /// The doors did not start.
    #[error("{0}")]
    Fleet(#[from] crate::fleet::FleetError),
    /// Doors that did not register in time.
    #[error("{0} doors did not register within {1} s")]
    Register(usize, u64),
    /// The report could not be written.
    #[error("cannot write {0}: {1}")]
    Report(String, std::io::Error),
}

/// How long registrations may take before calls start.
const REGISTER_WAIT: Duration = Duration::from_secs(30);

/// One door as the load test drives it.
#[derive(Clone)]
struct Door {
    index: usize,
    engine: Arc<CallEngine>,
    control: Arc<Control>,
}

/// What each call needs to know.
#[derive(Clone)]
struct CallPlan {
    hold: Duration,
    answer_timeout: Duration,
    dtmf: Option<String>,
}

/// Runs a load test; the process's exit status.
pub async fn run(common: &Common, args: &LoadArgs) -> ExitCode {
    match drive(common, args).await {
        Ok(summary) if summary.failed <= args.max_failures => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(why) => {
            eprintln!("doorsim load: {why}");
            ExitCode::FAILURE
        }
    }
}

/// The set-up every door gets: SIP on 5060 of its address, and the registering account.
fn door_setup(args: &LoadArgs) -> Vec<Value> {
    let mut setup = vec![json!({"axcall:SetSIPConfiguration": {"SIPConfiguration": {
        "SIPEnabled": true, "SIPPort": 5060, "SIPTLSPort": 5061, "AllowIncomingCalls": true}}})];
    if let Some(registrar) = &args.register {
        setup.push(json!({"axcall:SetSIPAccount": {"SIPAccount": {"Id": "load", "UserId": "door{index}",
            "Password": args.password, "Registrar": registrar, "PublicDomain": registrar, "IsDefault": true}}}));
    }
    setup
}

async fn drive(common: &Common, args: &LoadArgs) -> Result<Summary, LoadError> {
    if !(args.rate.is_finite() && args.rate > 0.0) {
        return Err(LoadError::Rate);
    }
    if args.doors == 0 || args.calls == 0 {
        return Err(LoadError::Counts);
    }
    let recipient = if args.vms { VMS_CALL.to_owned() } else { args.target.clone().unwrap_or_default() };
    let common = Common { button_recipient: recipient, ..common.clone() };
    let mut file = FleetFile::default();
    let setup = door_setup(args);
    for i in 0..args.doors {
        let entry = fleet::file::DeviceEntry { setup: fleet::file::instantiate(&setup, i), ..Default::default() };
        file.devices.insert(i, entry);
    }
    let plans = fleet::plan(0, &file, args.placement.layout(), &common.profile)?;
    let shutdown = CancellationToken::new();
    let fleet = Fleet::start(plans, &common, shutdown.clone()).await?;
    let doors: Vec<Door> = fleet
        .members
        .iter()
        .map(|m| Door { index: m.index, engine: m.device.engine.clone(), control: m.device.control.clone() })
        .collect();
    if args.register.is_some() {
        wait_registered(&fleet).await?;
    }
    let stop = CancellationToken::new();
    let ctrl_c = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\ndoorsim load: stopping, ending calls");
            ctrl_c.cancel();
        }
    });
    let plan = CallPlan { hold: args.hold, answer_timeout: args.answer_timeout, dtmf: args.dtmf.clone() };
    let outcomes = schedule(&doors, args, &plan, &stop).await;
    let summary = Summary::of(&outcomes, args.calls);
    print!("{}", summary.table());
    if let Some(path) = &args.report {
        report::write(path, &outcomes).map_err(|e| LoadError::Report(path.display().to_string(), e))?;
    }
    shutdown.cancel();
    fleet.stopped().await;
    Ok(summary)
}

/// Waits until every door's account is registered (status 200).
async fn wait_registered(fleet: &Fleet) -> Result<(), LoadError> {
    let deadline = Instant::now() + REGISTER_WAIT;
    let mut changes: Vec<_> = fleet.members.iter().map(|m| m.device.store.registration_changes()).collect();
    loop {
        let missing = fleet
            .members
            .iter()
            .filter(|m| m.device.store.registration("load").is_none_or(|r| r.status != 200))
            .count();
        if missing == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(LoadError::Register(missing, REGISTER_WAIT.as_secs()));
        }
        let any_change = futures_util::future::select_all(changes.iter_mut().map(|c| Box::pin(c.changed())));
        let _ = tokio::time::timeout(Duration::from_millis(500), any_change).await;
    }
}

/// Starts the calls at the rate and collects every outcome.
async fn schedule(doors: &[Door], args: &LoadArgs, plan: &CallPlan, stop: &CancellationToken) -> Vec<CallOutcome> {
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<CallOutcome>();
    let started_at = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let mut outcomes = Vec::with_capacity(usize::try_from(args.calls).unwrap_or(0));
    let mut progress = tokio::time::interval(Duration::from_millis(500));
    let mut started = 0u64;
    let tty = std::io::stderr().is_terminal();
    while outcomes.len() < usize::try_from(started).unwrap_or(usize::MAX) || started < args.calls {
        let next_start = started_at + interval.mul_f64(started as f64);
        let may_start = started < args.calls && !stop.is_cancelled();
        if !may_start && stop.is_cancelled() && outcomes.len() as u64 == started {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep_until(next_start.into()), if may_start => {
                let door = doors[(started % doors.len() as u64) as usize].clone();
                let number = started;
                started += 1;
                let (plan, stop, done) = (plan.clone(), stop.clone(), done_tx.clone());
                tokio::spawn(async move {
                    let outcome = one_call(number, &door, &plan, &stop, started_at).await;
                    let _ = done.send(outcome);
                });
            }
            Some(outcome) = done_rx.recv() => outcomes.push(outcome),
            _ = progress.tick() => {
                if tty {
                    eprint!("\r{}", report::progress(&outcomes, started, started_at.elapsed()));
                }
            }
        }
    }
    if tty {
        eprintln!("\r{}", report::progress(&outcomes, started, started_at.elapsed()));
    }
    outcomes.sort_by_key(|o| o.number);
    outcomes
}

/// One call: press the door's button, wait for the answer, send DTMF, hold, hang up.
async fn one_call(number: u64, door: &Door, plan: &CallPlan, stop: &CancellationToken, epoch: Instant) -> CallOutcome {
    let pressed = Instant::now();
    let mut outcome = CallOutcome::new(number, door.index, pressed.duration_since(epoch));
    let id = match door.control.press_button() {
        Ok(v) => v["CallId"].as_str().unwrap_or_default().to_owned(),
        Err((_, why)) => return outcome.failed(&format!("not placed: {why}")),
    };
    outcome.call_id.clone_from(&id);
    let Some(mut state) = door.engine.watch(&id) else { return outcome.failed("the call vanished") };
    // Wait for the answer (or the end).
    let answered = tokio::select! {
        r = state.wait_for(|s| *s != CallState::Calling) => r.map(|s| *s == CallState::Active).unwrap_or(false),
        () = tokio::time::sleep(plan.answer_timeout) => false,
        () = stop.cancelled() => false,
    };
    if !answered {
        let _ = door.engine.terminate(&id); // CANCEL what still rings
        let reason = door.engine.status(&id).map_or("gone".to_owned(), |s| s.call_state_reason.as_str().to_owned());
        let why = if stop.is_cancelled() { "stopped".to_owned() } else { format!("not answered: {reason}") };
        return outcome.failed(&why);
    }
    outcome.setup = Some(pressed.elapsed());
    if let Some(digits) = &plan.dtmf {
        if let Err(e) = door.engine.send_dtmf(&id, digits, true) {
            outcome.note = format!("DTMF not sent: {e}");
        }
    }
    let ended_early = tokio::select! {
        r = state.wait_for(|s| *s == CallState::Terminated) => r.is_ok(),
        () = tokio::time::sleep(plan.hold) => false,
        () = stop.cancelled() => {
            outcome.note = "hung up early: the run was stopped".to_owned();
            false
        }
    };
    if let Some((sent, received, _)) = door.engine.media_counts(&id) {
        outcome.rtp_sent = sent;
        outcome.rtp_received = received;
    }
    outcome.duration = Some(pressed.elapsed());
    if ended_early {
        return outcome.failed("ended by the far end before the hold time");
    }
    let _ = door.engine.terminate(&id); // BYE
    outcome.answered()
}
