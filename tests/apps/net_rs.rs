// A std::net server for tests/net.rs: listens on the port given as argument 1, serves each
// connection on its own thread (a line in, the line upper-cased out), and ends when a client
// sends "quit", printing how many lines it answered.
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

fn main() {
    let port = std::env::args().nth(1).expect("usage: net_rs PORT");
    let listener = TcpListener::bind(("0.0.0.0", port.parse::<u16>().expect("a port")))
        .expect("bind");
    println!("listening");
    let answered = Arc::new(AtomicU64::new(0));
    for conn in listener.incoming() {
        let mut conn = conn.expect("accept");
        conn.set_nodelay(true).expect("nodelay");
        let mut lines = BufReader::new(conn.try_clone().expect("clone"));
        let mut first = String::new();
        if lines.read_line(&mut first).expect("read") == 0 {
            continue;
        }
        if first.trim_end() == "quit" {
            println!("answered {}", answered.load(Ordering::SeqCst));
            return;
        }
        let answered = answered.clone();
        std::thread::spawn(move || {
            let mut line = first;
            loop {
                // Counted before the answer goes out: a client that has its answer may send
                // "quit" at once, before this thread would run again.
                answered.fetch_add(1, Ordering::SeqCst);
                conn.write_all(line.to_uppercase().as_bytes()).expect("write");
                line.clear();
                if lines.read_line(&mut line).expect("read") == 0 {
                    return;
                }
            }
        });
    }
}
