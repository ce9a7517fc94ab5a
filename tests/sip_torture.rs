//! The RFC 4475 torture messages (`../shared/corpus/rfc4475-torture`) through the SIP parser:
//! every valid message parses, every message RFC 4475 calls invalid for a UAS is refused, and
//! nothing panics. Needs the corpus beside the checkout; without it the test says so and passes.

use std::path::PathBuf;

use doorsim::sip::message::SipMessage;

/// Messages RFC 4475 says a UAS must process (or answer with a non-400 error after parsing).
const VALID: [&str; 20] = [
    "wsinv.dat",
    "intmeth.dat",
    "esc01.dat",
    "escnull.dat",
    "esc02.dat",
    "lwsdisp.dat",
    "longreq.dat",
    "dblreq.dat",
    "semiuri.dat",
    "transports.dat",
    "mpart01.dat",
    "noreason.dat",
    "unreason.dat",
    "cparam01.dat",
    "cparam02.dat",
    "regescrt.dat",
    "zeromf.dat",
    "unksm2.dat",
    "inv2543.dat",
    "invut.dat",
];

/// Messages a UAS must refuse with 400 (or 505) before looking further.
const INVALID: [&str; 15] = [
    "badvers.dat",
    "clerr.dat",
    "ltgtruri.dat",
    "lwsruri.dat",
    "lwsstart.dat",
    "mcl01.dat",
    "mismatch01.dat",
    "mismatch02.dat",
    "multi01.dat",
    "ncl.dat",
    "badaspec.dat",
    "baddn.dat",
    "quotbal.dat",
    "regbadct.dat",
    "insuf.dat",
];

#[test]
fn rfc4475_torture_messages() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/rfc4475-torture");
    if !dir.exists() {
        eprintln!("SKIPPED: {} not found (the corpus is only beside the project's CI checkout)", dir.display());
        return;
    }
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        if !name.ends_with(".dat") {
            continue;
        }
        seen += 1;
        let bytes = std::fs::read(&path).expect("read");
        let parsed = SipMessage::parse(&bytes);
        if VALID.contains(&name.as_str()) {
            assert!(parsed.is_ok(), "{name} is valid: {parsed:?}");
        }
        if INVALID.contains(&name.as_str()) {
            assert!(parsed.is_err(), "{name} is invalid but parsed");
        }
    }
    assert!(seen >= 49, "only {seen} torture messages found");
}
