// Rust's std::process for tests/processes.rs: output() of a program, status() of a shell,
// a child fed through a pipe (stdin) and read through another (stdout), and the error of a
// program that does not exist (glibc's posix_spawn reports the exec's errno).
use std::io::Write;
use std::process::{Command, Stdio};

fn main() {
    let out = Command::new("/bin/echo")
        .args(["hello", "from", "rust"])
        .output()
        .expect("echo");
    print!("echo: {}", String::from_utf8_lossy(&out.stdout));
    let st = Command::new("/bin/sh")
        .args(["-c", "exit 7"])
        .status()
        .expect("sh");
    println!("sh status: {:?}", st.code());
    let mut child = Command::new("/bin/tr")
        .args(["a-z", "A-Z"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("tr");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"through tr\n")
        .expect("write");
    let o = child.wait_with_output().expect("wait");
    print!("tr: {}", String::from_utf8_lossy(&o.stdout));
    match Command::new("/bin/no-such-program").status() {
        Ok(s) => println!("no-such-program ran: {s}"),
        Err(e) => println!("no-such-program: {:?}", e.kind()),
    }
}
