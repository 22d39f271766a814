//! Sockets compared with Linux (`tests/apps/net_ops.c`, `net_ifreq.c` and `net_rights.c`
//! natively and under umon, byte for byte), real programs talking to real host peers over
//! loopback (busybox `nc` both ways, busybox `httpd` serving a volume through a published port,
//! Go's net/http answering 10 000 requests and a Rust std::net server 4 000 lines from host
//! clients), and the network policy: `--net none` answers as an empty network namespace
//! (natively: `unshare -n`), `-p` makes exactly the published port reachable.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
mod common;
#[path = "common/threads.rs"]
mod threads_common;
use common::apps::{c_app, run, rust_app, s, umon_run_cmd, Link};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const TIMEOUT: &str = "--timeout=60s";
const BUSYBOX: &str = "/bin/busybox";

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}stderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn scratch(tag: &str) -> std::path::PathBuf {
    let d =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("net-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `net_ops MODE` natively (in a scratch directory, or under `wrap`) and under umon with
/// `opts` (a scratch volume as its working directory): the same output.
fn same_as_linux(mode: &str, opts: &[&str], wrap: &[&str]) {
    app_same_as_linux("net_ops", mode, opts, wrap);
}

/// `tests/apps/NAME.c MODE` natively and under umon, as [`same_as_linux`].
fn app_same_as_linux(name: &str, mode: &str, opts: &[&str], wrap: &[&str]) {
    if !common::require_kvm() {
        return;
    }
    let app = c_app(name, Link::StaticPie);
    let here = scratch(&format!("{mode}-native"));
    let mut cmd = if wrap.is_empty() {
        Command::new(&app)
    } else {
        let mut c = Command::new(wrap[0]);
        c.args(&wrap[1..]).arg(&app);
        c
    };
    cmd.arg(mode).current_dir(&here).env_clear();
    let linux = run(&mut cmd, b"");
    assert!(linux.status.success(), "natively: {}", text(&linux));
    let vol = scratch(&format!("{mode}-umon"));
    let spec = format!("{}:/vol:rw", s(&vol));
    let mut all = vec![TIMEOUT, "-v", &spec, "-w", "/vol"];
    all.extend_from_slice(opts);
    let ours = run(&mut umon_run_cmd(&all, &app, &[mode]), b"");
    assert_eq!(text(&ours), text(&linux), "umon vs Linux for {mode}");
    std::fs::remove_dir_all(&here).ok();
    std::fs::remove_dir_all(&vol).ok();
}

#[test]
fn unix_stream_and_datagram_sockets_over_files_in_a_volume_and_abstract_names_match_linux() {
    same_as_linux("unix", &[], &[]);
}

#[test]
fn socketpairs_of_every_type_with_iovecs_peek_trunc_shutdown_and_options_match_linux() {
    same_as_linux("pair", &[], &[]);
}

#[test]
fn scm_rights_passes_a_socket_and_scm_credentials_carry_the_sender_s_pid_as_on_linux() {
    same_as_linux("rights", &[], &[]);
}

#[test]
fn scm_rights_passes_pipes_files_eventfds_memfds_timerfds_epoll_and_signalfds_within_a_process() {
    app_same_as_linux("net_rights", "local", &[], &[]);
}

#[test]
fn scm_rights_brings_a_parent_the_file_pipe_eventfd_and_memfd_its_child_made_after_fork() {
    app_same_as_linux("net_rights", "fork", &[], &[]);
}

#[test]
fn sendmmsg_and_recvmmsg_count_messages_and_fail_as_on_linux() {
    same_as_linux("mmsg", &[], &[]);
}

#[test]
fn a_forked_child_s_abstract_and_file_sockets_are_reachable_from_its_parent() {
    same_as_linux("fork", &[], &[]);
}

#[test]
fn udp_round_trips_on_loopback_with_net_host_match_linux() {
    same_as_linux("udp", &["--net", "host"], &[]);
}

#[test]
fn tcp_streams_4_mib_on_loopback_with_net_host_with_matching_checksums() {
    same_as_linux("tcp", &["--net", "host"], &[]);
}

#[test]
fn hostile_socket_addresses_lengths_flags_and_options_get_linux_s_errors() {
    same_as_linux("hostile", &["--net", "host"], &[]);
}

#[test]
fn net_none_answers_as_an_empty_network_namespace() {
    // Natively in a new, empty network namespace (as root, or with a user namespace).
    let probe = Command::new("unshare").args(["-n", "true"]).status();
    let wrap: &[&str] = if probe.is_ok_and(|s| s.success()) {
        &["unshare", "-n"]
    } else {
        &["unshare", "-rn"]
    };
    same_as_linux("none", &[], wrap);
}

/// `net_ifreq` (interface ioctls, whole `struct ifreq`s in hex, hostile pointers and names)
/// natively under `wrap` and under umon with `opts`: the same output.
fn ifreq_same_as_linux(opts: &[&str], wrap: &[&str]) {
    if !common::require_kvm() {
        return;
    }
    let app = c_app("net_ifreq", Link::StaticPie);
    let mut cmd = if wrap.is_empty() {
        Command::new(&app)
    } else {
        let mut c = Command::new(wrap[0]);
        c.args(&wrap[1..]).arg(&app);
        c
    };
    cmd.env_clear();
    let linux = run(&mut cmd, b"");
    assert!(linux.status.success(), "natively: {}", text(&linux));
    assert!(
        common::stdout(&linux).contains("SIOCGIFNAME(1) = 0\n"),
        "{}",
        text(&linux)
    );
    let mut all = vec![TIMEOUT];
    all.extend_from_slice(opts);
    let ours = run(&mut umon_run_cmd(&all, &app, &[] as &[&str]), b"");
    assert_eq!(text(&ours), text(&linux), "umon {opts:?} vs Linux");
}

#[test]
fn interface_ioctls_with_net_host_see_the_host_s_interfaces_as_linux_does() {
    ifreq_same_as_linux(&["--net", "host"], &[]);
}

#[test]
fn interface_ioctls_with_net_none_see_an_empty_namespace_s_lone_lo() {
    let probe = Command::new("unshare").args(["-n", "true"]).status();
    let wrap: &[&str] = if probe.is_ok_and(|s| s.success()) {
        &["unshare", "-n"]
    } else {
        &["unshare", "-rn"]
    };
    ifreq_same_as_linux(&[], wrap);
}

#[test]
fn a_listener_nobody_can_reach_polls_as_nothing_ready_as_in_an_empty_namespace() {
    let probe = Command::new("unshare").args(["-n", "true"]).status();
    let wrap: &[&str] = if probe.is_ok_and(|s| s.success()) {
        &["unshare", "-n"]
    } else {
        &["unshare", "-rn"]
    };
    app_same_as_linux("net_nowhere", "-", &[], wrap);
}

/// A TCP port free on the host right now.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Connect to 127.0.0.1:`port`, retrying while the server inside umon starts.
fn connect_retrying(port: u16, child: &mut Child) -> TcpStream {
    let t0 = Instant::now();
    loop {
        if let Ok(c) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) {
            c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            return c;
        }
        if let Some(st) = child.try_wait().unwrap() {
            panic!("the server ended ({st}) before anyone could connect");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no server on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn spawn(cmd: &mut Command) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    common::apps::spawn_retrying_busy_text(cmd)
}

fn finish(mut child: Child) -> Output {
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn busybox_nc_sends_to_a_host_listener_and_receives_from_a_host_client() {
    if !common::require_kvm() || !Path::new(BUSYBOX).exists() {
        return;
    }
    // Out: nc inside umon connects to a host listener and sends its stdin.
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = l.local_addr().unwrap().port().to_string();
    let server = std::thread::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        let mut got = String::new();
        c.read_to_string(&mut got).unwrap();
        got
    });
    let sent = "from the guest to the host\n".repeat(1000);
    let out = run(
        &mut umon_run_cmd(
            &[TIMEOUT, "--net", "host"],
            BUSYBOX,
            &["nc", "127.0.0.1", &port],
        ),
        sent.as_bytes(),
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(server.join().unwrap(), sent);

    // In: nc -l inside umon; the host connects and sends.
    let port = free_port();
    let p = port.to_string();
    let mut child = spawn(&mut umon_run_cmd(
        &[TIMEOUT, "--net", "host"],
        BUSYBOX,
        &["nc", "-l", "-p", &p],
    ));
    let mut c = connect_retrying(port, &mut child);
    c.write_all(b"from the host to the guest\n").unwrap();
    drop(c);
    let out = finish(child);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "from the host to the guest\n",
        "{}",
        text(&out)
    );
}

#[test]
fn net_none_keeps_busybox_nc_from_reaching_a_host_listener() {
    if !common::require_kvm() || !Path::new(BUSYBOX).exists() {
        return;
    }
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = l.local_addr().unwrap().port().to_string();
    let out = run(
        &mut umon_run_cmd(&[TIMEOUT], BUSYBOX, &["nc", "127.0.0.1", &port]),
        b"nothing",
    );
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Network is unreachable"),
        "{}",
        text(&out)
    );
}

fn http_get(port: u16, child: &mut Child, path: &str) -> String {
    let mut c = connect_retrying(port, child);
    write!(c, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut got = String::new();
    c.read_to_string(&mut got).unwrap();
    got
}

#[test]
fn busybox_httpd_serves_a_volume_through_a_published_port() {
    if !common::require_kvm() || !Path::new(BUSYBOX).exists() {
        return;
    }
    let www = scratch("www");
    let page = "<html>served by busybox httpd inside umon</html>\n".repeat(200);
    std::fs::write(www.join("index.html"), &page).unwrap();
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    let spec = format!("{}:/www", s(&www));
    let mut child = spawn(&mut umon_run_cmd(
        &[TIMEOUT, "-p", &publish, "-v", &spec],
        BUSYBOX,
        &["httpd", "-f", "-p", "80", "-h", "/www"],
    ));
    for _ in 0..3 {
        let got = http_get(port, &mut child, "/index.html");
        assert!(got.starts_with("HTTP/1.1 200 OK"), "{got}");
        assert!(got.ends_with(&page), "{got}");
    }
    let missing = http_get(port, &mut child, "/nope.html");
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    let _ = child.kill();
    let _ = child.wait();
    std::fs::remove_dir_all(&www).ok();
}

#[test]
fn only_the_published_port_is_reachable_and_the_app_sees_its_own_port() {
    if !common::require_kvm() {
        return;
    }
    let app = c_app("net_ops", Link::StaticPie);
    // Published: the host's port reaches the app's port 80, which getsockname shows.
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    let mut child = spawn(&mut umon_run_cmd(
        &[TIMEOUT, "-p", &publish],
        &app,
        &["serve", "80"],
    ));
    let mut c = connect_retrying(port, &mut child);
    c.write_all(b"ping").unwrap();
    let mut back = [0u8; 4];
    c.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"ping");
    drop(c);
    let out = finish(child);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(said.starts_with("listening on 80\n"), "{}", text(&out));
    assert!(
        said.contains("accepted local: len 16 inet 127.0.0.1 port set"),
        "{}",
        text(&out)
    );

    // Not published: the app listens on 81, bound nowhere; the host's port stays closed.
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    let child = spawn(&mut umon_run_cmd(
        &["--timeout=3s", "-p", &publish],
        &app,
        &["serve", "81"],
    ));
    std::thread::sleep(Duration::from_millis(500));
    assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err());
    let out = finish(child);
    assert_eq!(out.status.code(), Some(124), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("listening on 81\n"));
}

/// A non-loopback IPv4 address of this host, if it has one (the source address of a route).
fn host_ipv4() -> Option<Ipv4Addr> {
    let u = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    ["8.8.8.8:53", "192.0.2.1:53", "10.0.0.1:53"]
        .iter()
        .find_map(|to| {
            u.connect(to).ok()?;
            match u.local_addr().ok()?.ip() {
                std::net::IpAddr::V4(ip) if !ip.is_loopback() && !ip.is_unspecified() => Some(ip),
                _ => None,
            }
        })
}

#[test]
fn a_loopback_only_server_on_a_published_port_is_reachable_on_the_host_s_loopback_only() {
    if !common::require_kvm() || !Path::new(BUSYBOX).exists() {
        return;
    }
    let www = scratch("www-lo");
    std::fs::write(www.join("index.html"), "loopback only\n").unwrap();
    let port = free_port();
    let publish = format!("{port}:80");
    let spec = format!("{}:/www", s(&www));
    let mut child = spawn(&mut umon_run_cmd(
        &[TIMEOUT, "-p", &publish, "-v", &spec],
        BUSYBOX,
        &["httpd", "-f", "-p", "127.0.0.1:80", "-h", "/www"],
    ));
    let got = http_get(port, &mut child, "/index.html");
    assert!(got.starts_with("HTTP/1.1 200 OK"), "{got}");
    assert!(got.ends_with("loopback only\n"), "{got}");
    // Published on every host address (no HOST_IP), but the app bound loopback only.
    if let Some(ip) = host_ipv4() {
        assert!(
            TcpStream::connect_timeout(&(ip, port).into(), Duration::from_secs(2)).is_err(),
            "{ip}:{port} reached a loopback-only server"
        );
    }
    let _ = child.kill();
    let _ = child.wait();
    std::fs::remove_dir_all(&www).ok();
}

#[test]
fn publish_with_net_host_is_refused() {
    let out = common::umon(&["run", "--net", "host", "-p", "8080:80", "/bin/true"]);
    assert_eq!(out.status.code(), Some(125), "{}", text(&out));
    assert!(common::stderr(&out).contains("--publish"));
}

#[test]
fn trace_decodes_socket_addresses_as_strace_does() {
    if !common::require_kvm() {
        return;
    }
    let app = c_app("net_ops", Link::StaticPie);
    let vol = scratch("trace");
    let spec = format!("{}:/vol:rw", s(&vol));
    let out = run(
        &mut umon_run_cmd(
            &[TIMEOUT, "--trace", "-v", &spec, "-w", "/vol"],
            &app,
            &["unix"],
        ),
        b"",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bind(3, {sa_family=AF_UNIX, sun_path=\"sock\"}, 7) = 0\n"),
        "{err}"
    );
    assert!(
        err.contains(", {sa_family=AF_UNIX, sun_path=@\"umon-net-test-abstract\"}, 25) = 0\n"),
        "{err}"
    );
    std::fs::remove_dir_all(&vol).ok();
}

/// `tests/apps/net_go`, a Go net/http server (static: CGO_ENABLED=0).
fn go_server() -> Option<std::path::PathBuf> {
    if !common::require_kvm() || !threads_common::tool_present("go", "golang-go") {
        return None;
    }
    Some(threads_common::go_build("net_go", ".", "umontest-net-go"))
}

/// One HTTP/1.1 keep-alive request on `conn`: the body of the answer.
fn keep_alive_get(conn: &mut TcpStream, reader: &mut BufReader<TcpStream>, path: &str) -> String {
    // One write per request: a request in pieces meets Nagle and delayed ACKs (40 ms each).
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    conn.write_all(request.as_bytes()).unwrap();
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{path}: {status:?}");
    let mut length = None;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse::<usize>().ok();
        }
    }
    let mut body = vec![0u8; length.expect("a Content-Length")];
    reader.read_exact(&mut body).unwrap();
    String::from_utf8(body).unwrap()
}

/// A Go net/http server inside umon (goroutines on several threads, the netpoller on epoll,
/// sockets through a published port) answers 10 000 requests from a host client over four
/// keep-alive connections at once, every answer right, then ends cleanly when asked.
#[test]
fn go_net_http_answers_10k_requests_from_a_host_client() {
    let Some(app) = go_server() else {
        return;
    };
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:8080");
    let mut child = spawn(&mut umon_run_cmd(
        &[TIMEOUT, "--cpus", "2", "-p", &publish],
        &app,
        &["8080"],
    ));
    let conns: Vec<TcpStream> = (0..4).map(|_| connect_retrying(port, &mut child)).collect();
    let clients: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(c, mut conn)| {
            conn.set_nodelay(true).unwrap();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                for i in 0..2500 {
                    let n = c * 2500 + i;
                    let body = keep_alive_get(&mut conn, &mut reader, &format!("/hello/{n}"));
                    assert_eq!(body, format!("hello {n} from go"));
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let bye = http_get(port, &mut child, "/quit");
    assert!(bye.ends_with("bye"), "{bye}");
    let out = finish(child);
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).as_ref()
        ),
        (Some(0), "listening\nserved 10000\n"),
        "{}",
        text(&out)
    );
}

/// A Rust std::net server inside umon (a thread per connection) answers four host clients at
/// once, 1 000 lines each, every answer right, then ends when told to.
#[test]
fn rust_std_net_server_answers_four_host_clients_at_once() {
    if !common::require_kvm() {
        return;
    }
    let app = rust_app("net_rs");
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:7000");
    let mut child = spawn(&mut umon_run_cmd(
        &[TIMEOUT, "-p", &publish],
        &app,
        &["7000"],
    ));
    let conns: Vec<TcpStream> = (0..4).map(|_| connect_retrying(port, &mut child)).collect();
    let clients: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(c, mut conn)| {
            conn.set_nodelay(true).unwrap();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                for i in 0..1000 {
                    conn.write_all(format!("client {c} line {i}\n").as_bytes())
                        .unwrap();
                    let mut answer = String::new();
                    reader.read_line(&mut answer).unwrap();
                    assert_eq!(answer, format!("CLIENT {c} LINE {i}\n"));
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let mut quit = connect_retrying(port, &mut child);
    quit.write_all(b"quit\n").unwrap();
    let out = finish(child);
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).as_ref()
        ),
        (Some(0), "listening\nanswered 4000\n"),
        "{}",
        text(&out)
    );
}
