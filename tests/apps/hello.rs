//! hello (Rust): prints its arguments and environment like hello.c, then a few lines computed
//! with std's collections and formatting machinery, and exits.
//!
//! Output, in this order:
//!   argc=N, argv[i]=..., env[i]=KEY=VALUE   exactly as hello.c prints them
//!   a fixed block of computed lines          the same on every run and every machine
//!
//! argv[1], if given, selects how it ends:
//!   a number N   exit with status N (after printing)
//!   "panic"      panic after printing: std prints the message on stderr, unwinds, exits 101
//!   anything else, or nothing: exit 0
//!
//! Built by the tests with `rustc -O -C target-feature=+crt-static` (a static-pie executable).
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt::Write as _;
use std::io::Write as _;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut out = String::new();
    writeln!(out, "argc={}", args.len()).unwrap();
    for (i, a) in args.iter().enumerate() {
        writeln!(out, "argv[{i}]={a}").unwrap();
    }
    for (i, (k, v)) in std::env::vars().enumerate() {
        writeln!(out, "env[{i}]={k}={v}").unwrap();
    }
    out.push_str(&computed());
    // One write for everything: the app's output must arrive whole either way.
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes()).unwrap();
    stdout.flush().unwrap();
    drop(stdout);

    match args.get(1).map(String::as_str) {
        Some("panic") => panic!("deliberate panic from the hello app"),
        Some(s) => {
            if let Ok(code) = s.parse::<i32>() {
                std::process::exit(code);
            }
        }
        None => {}
    }
}

/// Deterministic lines exercising heap allocation, hashing, ordered collections, 128-bit
/// arithmetic, float formatting and sorting.
fn computed() -> String {
    let text = "the quick brown fox jumps over the lazy dog the fox";
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for w in text.split_whitespace() {
        *counts.entry(w).or_default() += 1;
    }
    // HashMap order is random per process: sort through a BTreeMap before printing.
    let sorted: BTreeMap<_, _> = counts.into_iter().collect();
    let mut out = String::new();
    let words: Vec<String> = sorted.iter().map(|(w, n)| format!("{w}:{n}")).collect();
    writeln!(out, "words {}", words.join(",")).unwrap();

    let mut fib: VecDeque<u128> = VecDeque::from([0, 1]);
    for _ in 0..150 {
        let next = fib[fib.len() - 1] + fib[fib.len() - 2];
        fib.push_back(next);
        if fib.len() > 3 {
            fib.pop_front();
        }
    }
    writeln!(out, "fib {:#x}", fib.back().copied().unwrap_or_default()).unwrap();

    let primes: BTreeSet<u32> = (2..200u32)
        .filter(|n| (2..*n).take_while(|d| d * d <= *n).all(|d| n % d != 0))
        .collect();
    writeln!(
        out,
        "primes {} last {:?}",
        primes.len(),
        primes.iter().rev().take(3).collect::<Vec<_>>()
    )
    .unwrap();

    writeln!(
        out,
        "floats {:.6} {:e} {:>10.3}|{:<8}|",
        2f64.sqrt(),
        6.02214076e23f64,
        std::f64::consts::PI,
        -0.5f32
    )
    .unwrap();

    let mut v: Vec<(i64, String)> = (0..1000i64)
        .map(|i| ((i * 7919) % 1009 - 500, format!("item{i:04}")))
        .collect();
    v.sort();
    writeln!(out, "sorted {:?} .. {:?}", v[0], v[v.len() - 1]).unwrap();
    out
}
