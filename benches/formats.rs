//! Benchmark of the simplified key-value codec against serde_json on the same data: the
//! response of GetSIPAccounts with 100 accounts. Prints ratios to the JSON baseline measured in
//! the same run (absolute times on a shared 2-core machine are not comparable between runs).
//!
//! Run: `cargo bench --bench formats`

use std::hint::black_box;
use std::time::{Duration, Instant};

use doorsim::vapix::format::{json, simple};
use serde_json::{json, Value};

fn accounts(n: usize) -> Value {
    let list: Vec<Value> = (0..n)
        .map(|i| {
            json!({"Id": format!("sip_account_{i}"), "Enabled": true, "Name": format!("Door {i}"),
                "UserId": format!("{}", 6000 + i), "Password": "secret & safe", "CallerId": "Entrance Door (Axis)",
                "Registrar": "192.168.0.1", "PublicDomain": "example.axis.com", "IsDefault": i == 0,
                "Transport": "udp", "SIPProxies": [{"Server": "10.0.0.1", "Username": "p", "Password": "q"}],
                "Attribute": [{"Name": "MaxCallDuration", "Value": "300"}]})
        })
        .collect();
    json!({ "SIPAccount": list })
}

/// Median time of `f` over `rounds` rounds of `iters` calls.
fn time(rounds: usize, iters: usize, mut f: impl FnMut()) -> Duration {
    let mut samples: Vec<Duration> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iters {
                f();
            }
            start.elapsed() / iters as u32
        })
        .collect();
    samples.sort();
    samples[rounds / 2]
}

fn main() {
    let value = accounts(100);
    let json_text = json::encode(&value);
    let simple_text = simple::encode(&value);
    let query = std::iter::once("action=axcall:SetSIPAccounts".to_owned())
        .chain(simple_text.lines().map(str::to_owned))
        .collect::<Vec<_>>()
        .join("&");

    let json_encode = time(21, 50, || drop(black_box(json::encode(black_box(&value)))));
    let simple_encode = time(21, 50, || drop(black_box(simple::encode(black_box(&value)))));
    let json_decode = time(21, 50, || drop(black_box(serde_json::from_str::<Value>(black_box(&json_text)))));
    let simple_decode = time(21, 50, || drop(black_box(simple::decode(black_box(&query)))));

    println!("GetSIPAccounts with 100 accounts ({} B JSON, {} B simple)", json_text.len(), simple_text.len());
    println!(
        "  encode: json {json_encode:?}  simple {simple_encode:?}  ratio simple/json {:.2}",
        ratio(simple_encode, json_encode)
    );
    println!(
        "  decode: json {json_decode:?}  simple {simple_decode:?}  ratio simple/json {:.2}",
        ratio(simple_decode, json_decode)
    );
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(f64::EPSILON)
}
