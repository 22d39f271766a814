//! Networking in umon against native execution, in the same run (ratios for the README):
//! - TCP stream throughput over loopback: a host client writes 512 MiB to a server in the
//!   guest (`benches/apps/net_bench.c sink`), which reads it in 256 KiB reads.
//! - Requests per second of a small static HTTP server (`net_bench.c http`): a host client
//!   makes 2000 sequential HTTP/1.0 requests, one connection each.
//!
//! Both servers run under `umon run --net host` and natively; the lines printed are medians of
//! 5 runs and umon's figure as a fraction of native's.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use common::c_app;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const STREAM_BYTES: usize = 512 << 20;
const REQUESTS: u32 = 2000;

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(app: &Path, umon: bool, args: &[&str]) -> Child {
    let mut cmd = if umon {
        let mut c = Command::new(env!("CARGO_BIN_EXE_umon"));
        c.args(["run", "--net", "host", "--timeout", "120s"])
            .arg(app);
        c
    } else {
        Command::new(app)
    };
    cmd.args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    cmd.spawn().unwrap()
}

fn connect(port: u16) -> TcpStream {
    let t0 = Instant::now();
    loop {
        if let Ok(c) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) {
            return c;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "no server");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// MiB/s of one stream into the sink.
fn stream(app: &Path, umon: bool) -> f64 {
    let port = free_port();
    let mut child = start(app, umon, &["sink", &port.to_string()]);
    let mut c = connect(port);
    let chunk = vec![0x5au8; 1 << 20];
    let t0 = Instant::now();
    for _ in 0..STREAM_BYTES / chunk.len() {
        c.write_all(&chunk).unwrap();
    }
    drop(c);
    assert!(child.wait().unwrap().success());
    (STREAM_BYTES >> 20) as f64 / t0.elapsed().as_secs_f64()
}

/// Requests per second of the small server.
fn requests(app: &Path, umon: bool) -> f64 {
    let port = free_port();
    let n = REQUESTS.to_string();
    let mut child = start(app, umon, &["http", &port.to_string(), &n]);
    drop(connect_probe(port));
    let t0 = Instant::now();
    for _ in 1..REQUESTS {
        let mut c = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
        c.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got).unwrap();
        assert!(got.starts_with(b"HTTP/1.0 200 OK"));
    }
    let rate = f64::from(REQUESTS - 1) / t0.elapsed().as_secs_f64();
    assert!(child.wait().unwrap().success());
    rate
}

/// The first request, which also waits for the server to start.
fn connect_probe(port: u16) -> Vec<u8> {
    let mut c = connect(port);
    c.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    got
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let app = c_app("net_bench");
    for (what, unit, f) in [
        ("tcp_stream", "MiB/s", stream as fn(&Path, bool) -> f64),
        ("http_requests", "req/s", requests),
    ] {
        let ours = median((0..5).map(|_| f(&app, true)).collect());
        let linux = median((0..5).map(|_| f(&app, false)).collect());
        println!(
            "net/{what}: umon {ours:.0} {unit}, native {linux:.0} {unit}, umon/native {:.2}",
            ours / linux
        );
    }
}
