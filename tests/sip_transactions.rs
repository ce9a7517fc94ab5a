//! The transaction layer over UDP, seen from a raw socket standing in for a peer: a malformed
//! request gets 400, our INVITE is retransmitted at T1, 2·T1 (Timer A) until answered, our 2xx
//! is retransmitted until the ACK comes, a retransmitted INVITE or BYE gets the cached answer and
//! makes no second call, a hold re-INVITE stops our RTP, and a flood beyond the call limit gets
//! 486 while memory stays flat.

mod common;

use std::time::{Duration, Instant};

use common::{free_port, Doorsim};
use serde_json::json;
use tokio::net::UdpSocket;

async fn device(args: &[&str]) -> (Doorsim, u16) {
    let d = Doorsim::start(args);
    let (port, _) = d.enable_sip(json!({})).await;
    (d, port)
}

fn invite(peer: u16, call_id: &str, cseq_method: &str) -> String {
    invite_with_media(peer, call_id, cseq_method, 9, "sendrecv")
}

/// An INVITE whose offer receives RTP on `rtp_port` with `direction`.
fn invite_with_media(peer: u16, call_id: &str, cseq_method: &str, rtp_port: u16, direction: &str) -> String {
    let sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {rtp_port} RTP/AVP 0\r\na={direction}\r\n"
    );
    format!(
        "INVITE sip:door@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{peer};branch=z9hG4bK{call_id}\r\n\
         From: <sip:peer@127.0.0.1>;tag=p1\r\nTo: <sip:door@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 {cseq_method}\r\n\
         Max-Forwards: 70\r\nContact: <sip:peer@127.0.0.1:{peer}>\r\nContent-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

/// Receives datagrams until one whose first line contains `first_line`, within `within`.
async fn receive(socket: &UdpSocket, first_line: &str, within: Duration) -> Option<(String, Instant)> {
    let deadline = Instant::now() + within;
    let mut buf = vec![0u8; 65536];
    while let Ok(Ok(n)) =
        tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), socket.recv(&mut buf)).await
    {
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if text.lines().next().is_some_and(|l| l.contains(first_line)) {
            return Some((text, Instant::now()));
        }
    }
    None
}

#[tokio::test]
async fn malformed_requests_get_400_and_2xx_is_retransmitted_until_the_ack() {
    let (d, port) = device(&["--auto-answer", "0"]).await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("socket");
    socket.connect(("127.0.0.1", port)).await.expect("connect");
    let me = socket.local_addr().expect("addr").port();

    socket.send(invite(me, "bad1", "ACK").as_bytes()).await.expect("send");
    let (bad, _) = receive(&socket, "400", Duration::from_secs(2)).await.expect("a 400 for a CSeq that does not match");
    assert!(bad.contains("Call-ID: bad1"), "{bad}");

    socket.send(invite(me, "call1", "INVITE").as_bytes()).await.expect("send");
    let (_, first) = receive(&socket, "200 OK", Duration::from_secs(2)).await.expect("answered");
    let (_, second) = receive(&socket, "200 OK", Duration::from_secs(2)).await.expect("retransmitted");
    let (_, third) = receive(&socket, "200 OK", Duration::from_secs(3)).await.expect("retransmitted again");
    let (gap1, gap2) = (second - first, third - second);
    assert!(gap1 >= Duration::from_millis(400) && gap1 <= Duration::from_millis(800), "T1: {gap1:?}");
    assert!(gap2 >= Duration::from_millis(850) && gap2 <= Duration::from_millis(1400), "2·T1: {gap2:?}");
    let ack = "ACK sip:door@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKack\r\nFrom: <sip:peer@127.0.0.1>;tag=p1\r\n\
               To: <sip:door@127.0.0.1>;tag=x\r\nCall-ID: call1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n";
    socket.send(ack.as_bytes()).await.expect("ack");
    assert!(receive(&socket, "200 OK", Duration::from_millis(2500)).await.is_none(), "no 200 after the ACK");
    drop(d);
}

#[tokio::test]
async fn our_invite_is_retransmitted_until_a_provisional_answer() {
    let (d, _) = device(&[]).await;
    let callee = UdpSocket::bind("127.0.0.1:0").await.expect("socket");
    let callee_port = callee.local_addr().expect("addr").port();
    d.ok("Call", json!({"To": format!("sip:callee@127.0.0.1:{callee_port}")})).await;
    let mut buf = vec![0u8; 65536];
    let mut times = Vec::new();
    let mut from = None;
    let mut last = String::new();
    while times.len() < 3 {
        let (n, src) = tokio::time::timeout(Duration::from_secs(3), callee.recv_from(&mut buf))
            .await
            .expect("INVITE")
            .expect("recv");
        last = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(last.starts_with("INVITE "), "{last}");
        times.push(Instant::now());
        from = Some(src);
    }
    let (gap1, gap2) = (times[1] - times[0], times[2] - times[1]);
    assert!(gap1 >= Duration::from_millis(400) && gap1 <= Duration::from_millis(800), "Timer A at T1: {gap1:?}");
    assert!(gap2 >= Duration::from_millis(850) && gap2 <= Duration::from_millis(1400), "then 2·T1: {gap2:?}");
    // A 180 stops the retransmissions.
    let header = |name: &str| last.lines().find(|l| l.starts_with(name)).unwrap_or_default().to_owned();
    let ringing = format!(
        "SIP/2.0 180 Ringing\r\n{}\r\n{}\r\n{};tag=c1\r\n{}\r\n{}\r\nContent-Length: 0\r\n\r\n",
        header("Via:"),
        header("From:"),
        header("To:"),
        header("Call-ID:"),
        header("CSeq:")
    );
    callee.send_to(ringing.as_bytes(), from.expect("device address")).await.expect("send 180");
    let more = tokio::time::timeout(Duration::from_millis(2500), callee.recv_from(&mut buf)).await;
    assert!(more.is_err(), "no INVITE after the 180");
}

#[tokio::test]
async fn a_flood_beyond_the_call_limit_gets_486_and_leaves_only_lingering_transactions() {
    let (d, port) = device(&[]).await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("socket");
    socket.connect(("127.0.0.1", port)).await.expect("connect");
    let me = socket.local_addr().expect("addr").port();
    // Each INVITE waits for its own answer (sent again if a datagram is lost), so the test reads
    // while it sends and never overflows its own receive buffer.
    let flood = |from: usize, to: usize| {
        let socket = &socket;
        async move {
            let mut busy = 0;
            for i in from..to {
                let call_id = format!("flood{i}");
                for _attempt in 0..5 {
                    socket.send(invite(me, &call_id, "INVITE").as_bytes()).await.expect("send");
                    if let Some(busy_here) = answer_to(socket, &call_id, "486").await {
                        // ACK it, as a caller does, so the device stops retransmitting it.
                        let ack = format!(
                            "ACK sip:door@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bK{call_id}\r\n\
                             From: <sip:peer@127.0.0.1>;tag=p1\r\n{}\r\nCall-ID: {call_id}\r\nCSeq: 1 ACK\r\n\
                             Content-Length: 0\r\n\r\n",
                            to_line(&busy_here)
                        );
                        socket.send(ack.as_bytes()).await.expect("ack");
                        busy += 1;
                        break;
                    }
                }
            }
            busy
        }
    };
    // The first 16 ring; warm up past the bounded caches (256 answered requests, 256 ended calls).
    for i in 0..16 {
        socket.send(invite(me, &format!("ring{i}"), "INVITE").as_bytes()).await.expect("send");
        receive(&socket, "180", Duration::from_secs(2)).await.expect("ringing");
    }
    flood(0, 600).await;
    let before = d.rss_kib();
    let busy = flood(600, 2600).await;
    let after = d.rss_kib();
    let calls = d.ok("GetCallStatuses", json!({})).await["CallStatus"].clone();
    let calls = calls.as_array().expect("calls");
    let ringing = calls.iter().filter(|c| c["CallState"] == "Calling").count();
    assert_eq!(ringing, 16, "the call limit holds");
    assert!(calls.len() <= 16 + 256, "at most 256 ended calls are remembered: {}", calls.len());
    assert_eq!(busy, 2000, "every INVITE beyond the limit got its 486");
    // What the flood leaves: no dialog, and one transaction per request at most, each lingering
    // its 32 s (Timers H and I) to absorb retransmissions, then gone (the transaction unit tests
    // time that). Memory follows the state: a budget of 4 KiB per transaction bounds it.
    let sip = d.state().await["Sip"].clone();
    assert_eq!(sip["Dialogs"], 16, "only the ringing calls have dialogs: {sip}");
    let transactions = sip["Transactions"].as_u64().expect("count");
    // The INVITEs, and the OPTIONS that enabling SIP waited for.
    assert!(transactions <= 16 + 2600 + 1, "one transaction per request at most: {sip}");
    assert!(after < before + 16 * 1024 + transactions * 4, "memory grew from {before} KiB to {after} KiB");
    eprintln!("2000 INVITEs beyond the limit: {busy} answered 486, {sip}, RSS {before} -> {after} KiB");
}

/// The answer with status `code` to the request of `call_id`, skipping other datagrams, within
/// half a second.
async fn answer_to(socket: &UdpSocket, call_id: &str, code: &str) -> Option<String> {
    let deadline = Instant::now() + Duration::from_millis(500);
    let mut buf = vec![0u8; 65536];
    while let Ok(Ok(n)) =
        tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), socket.recv(&mut buf)).await
    {
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        let first = text.lines().next().unwrap_or_default();
        if first.contains(code) && text.contains(&format!("Call-ID: {call_id}\r\n")) {
            return Some(text);
        }
    }
    None
}

fn options(peer: u16, call_id: &str) -> String {
    format!(
        "OPTIONS sip:door@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{peer};branch=z9hG4bK{call_id}\r\n\
         From: <sip:peer@127.0.0.1>;tag=p1\r\nTo: <sip:door@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\n\
         Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
}

/// Whether the device answers OPTIONS on UDP `port`.
async fn answers_on(port: u16, call_id: &str) -> bool {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("socket");
    socket.connect(("127.0.0.1", port)).await.expect("connect");
    let me = socket.local_addr().expect("addr").port();
    // A closed port answers with ICMP, which a connected socket sees as an error: not an answer.
    let _ = socket.send(options(me, call_id).as_bytes()).await;
    receive(&socket, "200 OK", Duration::from_millis(700)).await.is_some()
}

#[tokio::test]
async fn listeners_move_and_stop_with_the_configuration() {
    let (d, first) = device(&[]).await;
    assert!(answers_on(first, "o1").await);
    let second = free_port();
    d.ok("SetSIPConfiguration", json!({"SIPConfiguration": {"SIPPort": second}})).await;
    assert!(common::answers_options("127.0.0.1", second).await, "the new port answers");
    // The old listeners are closed before the new ones open.
    assert!(!answers_on(first, "o3").await, "the old port is closed");
    d.ok("SetSIPConfiguration", json!({"SIPConfiguration": {"SIPEnabled": false}})).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while answers_on(second, "o4").await {
        assert!(std::time::Instant::now() < deadline, "SIP off: nothing listens");
    }
}

#[tokio::test]
async fn a_re_invite_keeps_the_call_and_gets_the_same_session() {
    let (d, port) = device(&["--auto-answer", "0"]).await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("socket");
    socket.connect(("127.0.0.1", port)).await.expect("connect");
    let me = socket.local_addr().expect("addr").port();
    socket.send(invite(me, "re1", "INVITE").as_bytes()).await.expect("send");
    let (ok, _) = receive(&socket, "200 OK", Duration::from_secs(2)).await.expect("answered");
    let to = ok.lines().find(|l| l.starts_with("To:")).expect("To").to_owned();
    let sdp = ok.split("\r\n\r\n").nth(1).expect("SDP").to_owned();
    let ack = format!(
        "ACK sip:door@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bKa1\r\nFrom: <sip:peer@127.0.0.1>;tag=p1\r\n\
         {to}\r\nCall-ID: re1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    socket.send(ack.as_bytes()).await.expect("ack");
    let reinvite = invite(me, "re1", "INVITE")
        .replace("To: <sip:door@127.0.0.1>", &to)
        .replace("CSeq: 1 INVITE", "CSeq: 2 INVITE")
        .replace("branch=z9hG4bKre1", "branch=z9hG4bKre2");
    socket.send(reinvite.as_bytes()).await.expect("re-INVITE");
    let (again, _) = receive(&socket, "200 OK", Duration::from_secs(2)).await.expect("re-INVITE answered");
    assert!(again.contains("CSeq: 2 INVITE"), "{again}");
    assert_eq!(again.split("\r\n\r\n").nth(1), Some(sdp.as_str()), "the same session description");
    let calls = d.ok("GetCallStatuses", json!({})).await["CallStatus"].clone();
    assert_eq!(calls[0]["CallState"], "Active");
}

#[tokio::test]
async fn our_bye_is_retransmitted_until_answered() {
    let (d, port) = device(&["--auto-answer", "0"]).await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("socket");
    socket.connect(("127.0.0.1", port)).await.expect("connect");
    let me = socket.local_addr().expect("addr").port();
    socket.send(invite(me, "bye1", "INVITE").as_bytes()).await.expect("send");
    let (ok, _) = receive(&socket, "200 OK", Duration::from_secs(2)).await.expect("answered");
    let to = ok.lines().find(|l| l.starts_with("To:")).expect("To").to_owned();
    let ack = format!(
        "ACK sip:door@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bKa9\r\nFrom: <sip:peer@127.0.0.1>;tag=p1\r\n\
         {to}\r\nCall-ID: bye1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    socket.send(ack.as_bytes()).await.expect("ack");
    let (call, _) = d.call_in("Active").await;
    d.ok("TerminateCall", json!({"CallId": call["CallId"]})).await;
    let (bye, first) = receive(&socket, "BYE ", Duration::from_secs(2)).await.expect("BYE");
    let (_, second) = receive(&socket, "BYE ", Duration::from_secs(2)).await.expect("BYE again (Timer E)");
    assert!(second - first >= Duration::from_millis(400), "{:?}", second - first);
    let header = |name: &str| bye.lines().find(|l| l.starts_with(name)).unwrap_or_default().to_owned();
    let answer = format!(
        "SIP/2.0 200 OK\r\n{}\r\n{}\r\n{}\r\n{}\r\n{}\r\nContent-Length: 0\r\n\r\n",
        header("Via:"),
        header("From:"),
        header("To:"),
        header("Call-ID:"),
        header("CSeq:")
    );
    socket.send(answer.as_bytes()).await.expect("200");
    assert!(receive(&socket, "BYE ", Duration::from_millis(2500)).await.is_none(), "no BYE after the 200");
}

/// Answers the next REGISTER on `registrar` with `code` (and Expires `granted` on a 200);
/// returns the request.
async fn answer_register(registrar: &UdpSocket, code: &str, granted: u32) -> String {
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, from) = tokio::time::timeout(Duration::from_secs(5), registrar.recv_from(&mut buf))
            .await
            .expect("REGISTER")
            .expect("recv");
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if !text.starts_with("REGISTER ") {
            continue;
        }
        let header = |name: &str| text.lines().find(|l| l.starts_with(name)).unwrap_or_default().to_owned();
        let answer = format!(
            "SIP/2.0 {code}\r\n{}\r\n{}\r\n{};tag=r1\r\n{}\r\n{}\r\nExpires: {granted}\r\nContent-Length: 0\r\n\r\n",
            header("Via:"),
            header("From:"),
            header("To:"),
            header("Call-ID:"),
            header("CSeq:")
        );
        registrar.send_to(answer.as_bytes(), from).await.expect("answer");
        return text;
    }
}

#[tokio::test]
async fn registration_uses_the_interval_refreshes_before_expiry_and_unregisters_on_removal() {
    let (d, _) = device(&[]).await;
    let registrar = UdpSocket::bind("127.0.0.1:0").await.expect("registrar");
    let at = registrar.local_addr().expect("addr").port();
    d.ok(
        "SetSIPConfiguration",
        json!({"SIPConfiguration": {"Attribute": [{"Name": "RegistrationInterval", "Value": "120"}]}}),
    )
    .await;
    d.ok(
        "SetSIPAccount",
        json!({"SIPAccount": {"Id": "pbx", "UserId": "6001", "Registrar": format!("127.0.0.1:{at}")}}),
    )
    .await;
    let first = answer_register(&registrar, "200 OK", 2).await;
    assert!(first.contains("Expires: 120\r\n"), "RegistrationInterval is the requested expiry: {first}");
    let mut status = serde_json::Value::Null;
    for _ in 0..40 {
        status = d.ok("GetSIPAccountStatus", json!({"SIPAccountId": "pbx"})).await["SIPAccountStatus"].clone();
        if status["Status"] == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!((status["Status"].as_u64(), status["StatusText"].as_str()), (Some(200), Some("OK")));
    // Granted 2 s: the refresh comes at 90 % of it, on the same Call-ID with a higher CSeq.
    let started = Instant::now();
    let refresh = answer_register(&registrar, "200 OK", 120).await;
    assert!(started.elapsed() < Duration::from_secs(3), "refreshed after {:?}", started.elapsed());
    let call_id = |m: &str| m.lines().find(|l| l.starts_with("Call-ID:")).map(str::to_owned);
    assert_eq!(call_id(&refresh), call_id(&first));
    // Removing the account un-registers it.
    d.ok("RemoveSIPAccount", json!({"SIPAccountId": "pbx"})).await;
    let bye = answer_register(&registrar, "200 OK", 0).await;
    assert!(bye.contains("Expires: 0\r\n"), "{bye}");
}

/// The To header line of a response.
fn to_line(response: &str) -> String {
    response.lines().find(|l| l.starts_with("To:")).expect("To").to_owned()
}

async fn call_states(d: &Doorsim) -> Vec<String> {
    let calls = d.ok("GetCallStatuses", json!({})).await["CallStatus"].clone();
    calls.as_array().expect("calls").iter().map(|c| c["CallState"].as_str().unwrap_or("").to_owned()).collect()
}

#[tokio::test]
async fn a_retransmitted_invite_or_bye_gets_the_cached_answer_and_makes_no_second_call() {
    let (d, port) = device(&[]).await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("socket");
    socket.connect(("127.0.0.1", port)).await.expect("connect");
    let me = socket.local_addr().expect("addr").port();
    let first = invite(me, "dup1", "INVITE");
    socket.send(first.as_bytes()).await.expect("send");
    let (ringing, _) = receive(&socket, "180", Duration::from_secs(2)).await.expect("ringing");
    socket.send(first.as_bytes()).await.expect("retransmit");
    let (again, _) = receive(&socket, "180", Duration::from_secs(2)).await.expect("the cached 180");
    assert_eq!(to_line(&again), to_line(&ringing), "the same To tag: one dialog");
    // A peer that changes the branch on a retransmission: same Call-ID, From tag and CSeq.
    socket.send(first.replace("branch=z9hG4bKdup1", "branch=z9hG4bKdup1b").as_bytes()).await.expect("send");
    let (third, _) = receive(&socket, "180", Duration::from_secs(2)).await.expect("the 180 again");
    assert_eq!(to_line(&third), to_line(&ringing));
    assert_eq!(call_states(&d).await, ["Calling"], "one call, however often the INVITE came");

    let id = d.ok("GetCallStatuses", json!({})).await["CallStatus"][0]["CallId"].as_str().expect("id").to_owned();
    let answered = d.request("POST", &format!("/emulator/v1/calls/{id}/answer"), None).await;
    assert_eq!(answered.status, 200, "{}", answered.body);
    let (ok, _) = receive(&socket, "200 OK", Duration::from_secs(2)).await.expect("answered");
    socket.send(first.as_bytes()).await.expect("a late retransmission");
    let (cached, _) = receive(&socket, "200 OK", Duration::from_secs(2)).await.expect("the cached 200");
    assert_eq!(to_line(&cached), to_line(&ok));
    assert_eq!(call_states(&d).await, ["Active"]);

    let to = to_line(&ok);
    let request = |method: &str, cseq: u32, branch: &str| {
        format!(
            "{method} sip:door@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bK{branch}\r\n\
             From: <sip:peer@127.0.0.1>;tag=p1\r\n{to}\r\nCall-ID: dup1\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n"
        )
    };
    socket.send(request("ACK", 1, "ack1").as_bytes()).await.expect("ack");
    let bye = request("BYE", 2, "bye1");
    socket.send(bye.as_bytes()).await.expect("bye");
    let (done, _) = receive(&socket, "200 OK", Duration::from_secs(2)).await.expect("BYE answered");
    assert!(done.contains("CSeq: 2 BYE"), "{done}");
    socket.send(bye.as_bytes()).await.expect("the BYE again");
    let (cached, _) = receive(&socket, "SIP/2.0", Duration::from_secs(2)).await.expect("an answer");
    assert!(cached.starts_with("SIP/2.0 200") && cached.contains("CSeq: 2 BYE"), "the cached 200, not 481: {cached}");
    assert_eq!(call_states(&d).await, ["Terminated"]);
    socket.send(request("BYE", 3, "bye2").as_bytes()).await.expect("a BYE for no dialog");
    let (none, _) = receive(&socket, "SIP/2.0", Duration::from_secs(2)).await.expect("an answer");
    assert!(none.starts_with("SIP/2.0 481"), "{none}");
}

/// RTP packets the device has sent on its only call, from the control API.
async fn rtp_sent(d: &Doorsim) -> u64 {
    let media = d.state().await["Media"].clone();
    media.as_object().and_then(|m| m.values().next()).and_then(|m| m["RtpSent"].as_u64()).unwrap_or(0)
}

#[tokio::test]
async fn a_hold_re_invite_stops_our_rtp_and_a_resume_restarts_it() {
    let (d, port) = device(&["--auto-answer", "0"]).await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("socket");
    socket.connect(("127.0.0.1", port)).await.expect("connect");
    let me = socket.local_addr().expect("addr").port();
    let rtp = UdpSocket::bind("127.0.0.1:0").await.expect("rtp socket");
    let rtp_port = rtp.local_addr().expect("addr").port();
    socket.send(invite_with_media(me, "hold1", "INVITE", rtp_port, "sendrecv").as_bytes()).await.expect("send");
    let (ok, _) = receive(&socket, "200 OK", Duration::from_secs(2)).await.expect("answered");
    let to = to_line(&ok);
    let mut buf = [0u8; 2048];
    tokio::time::timeout(Duration::from_secs(2), rtp.recv(&mut buf)).await.expect("RTP flows").expect("recv");

    let reinvite = |cseq: u32, direction: &str| {
        invite_with_media(me, "hold1", "INVITE", rtp_port, direction)
            .replace("To: <sip:door@127.0.0.1>", &to)
            .replace("CSeq: 1 INVITE", &format!("CSeq: {cseq} INVITE"))
            .replace("branch=z9hG4bKhold1", &format!("branch=z9hG4bKhold{cseq}"))
    };
    socket.send(reinvite(2, "sendonly").as_bytes()).await.expect("hold");
    let (held, _) = receive(&socket, "200 OK", Duration::from_secs(2)).await.expect("hold answered");
    assert!(held.contains("a=recvonly"), "the answer to sendonly is recvonly: {held}");
    assert!(
        held.contains("o=doorsim") && !held.contains(&ok.lines().find(|l| l.starts_with("o=")).expect("o=").to_owned()),
        "a changed description has a new o= version"
    );
    // On hold: nothing more is sent. (A short window, since this asserts an absence.)
    let before = rtp_sent(&d).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(rtp_sent(&d).await, before, "no RTP while held (20 packets would have gone)");

    socket.send(reinvite(3, "sendrecv").as_bytes()).await.expect("resume");
    let (resumed, _) = receive(&socket, "200 OK", Duration::from_secs(2)).await.expect("resume answered");
    assert!(resumed.contains("a=sendrecv"), "{resumed}");
    while rtp.try_recv(&mut buf).is_ok() {} // what was queued before the hold
    tokio::time::timeout(Duration::from_secs(2), rtp.recv(&mut buf)).await.expect("RTP flows again").expect("recv");
    assert!(rtp_sent(&d).await > before);
    assert_eq!(call_states(&d).await, ["Active"]);
}

#[tokio::test]
async fn an_incoming_call_nobody_answers_ends_after_calling_timeout_with_480() {
    // CallingTimeout 60 s, at 60 times the speed: one second.
    let (d, port) = device(&["--time-scale", "60"]).await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("socket");
    socket.connect(("127.0.0.1", port)).await.expect("connect");
    let me = socket.local_addr().expect("addr").port();
    socket.send(invite(me, "stale1", "INVITE").as_bytes()).await.expect("send");
    receive(&socket, "180", Duration::from_secs(2)).await.expect("ringing");
    let (gone, _) = receive(&socket, "480", Duration::from_secs(10)).await.expect("480 after CallingTimeout");
    assert!(gone.contains("CSeq: 1 INVITE"), "{gone}");
    // The call ended NoAnswer (read from the event log: at this speed the call itself is
    // forgotten a second after it ends).
    let events = d.request("GET", "/emulator/v1/events?topic=tnsaxis:Call/StateChange", None).await.json();
    let reasons: Vec<&str> =
        events["Events"].as_array().expect("events").iter().filter_map(|e| e["data"]["Reason"].as_str()).collect();
    assert_eq!(reasons, ["Initiated", "NoAnswer"]);
}
