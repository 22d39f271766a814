//! Embedding umon: run a static executable in a VM, capture what it prints, report how it ended.
//!
//! ```sh
//! gcc -O2 -static-pie -o target/hello tests/apps/hello.c
//! cargo run --example embed -- target/hello one two
//! ```
use std::process::ExitCode;
use std::time::Duration;
use umon::{Builder, Capture, ExitStatus};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(app) = args.next() else {
        eprintln!("usage: embed APP [ARGS]...");
        return ExitCode::from(2);
    };
    let (out, err) = (Capture::new(), Capture::new());
    let run = Builder::new(app)
        .args(args)
        .env("EMBEDDED_BY", "umon example")
        .memory(256 << 20)
        .timeout(Duration::from_secs(30))
        .stdout(out.clone())
        .stderr(err.clone())
        .run();
    match run {
        Ok(report) => {
            println!("captured stdout ({} bytes):", out.bytes().len());
            print!("{}", out.text());
            if !err.bytes().is_empty() {
                println!("captured stderr:");
                print!("{}", err.text());
            }
            match &report.status {
                ExitStatus::Exited(code) => println!("the app exited with {code}"),
                ExitStatus::Signaled { report, .. } => println!("the app was killed: {report}"),
                ExitStatus::TimedOut(limit) => println!("the app ran longer than {limit:?}"),
            }
            ExitCode::from(report.status.code().clamp(0, 255) as u8)
        }
        Err(e) => {
            eprintln!("umon: {e}");
            ExitCode::from(e.exit_code().clamp(0, 255) as u8)
        }
    }
}
