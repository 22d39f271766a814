//! Real programs nobody here wrote: Debian's busybox-static (`/bin/busybox`) and bash-static
//! (`/bin/bash-static`), run natively and under `umon run` with the same argv, environment,
//! stdin and directory layout (tests/common/real.rs). Their stdout, stderr, exit status and the
//! files they leave in the fixture directory must be equal byte for byte.
//!
//! Only what umon can run today: static, one thread, no fork/exec/pipes, so no shell pipelines
//! or command substitution. umon's own `unsupported syscall` notes are taken out of stderr
//! before comparing (they are umon's diagnostics, not the program's output) and listed by
//! `cargo test --test real_programs -- --nocapture`.
//!
//! A case where umon is known to differ says why, and asserts that it still differs: when a
//! fix makes it match, this test fails until the case is promoted to `Same`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
mod common;

use common::real::{native, program, under_umon, Outcome};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

/// What the comparison of one case must show.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Native and umon runs are equal.
    Same,
    /// umon differs, for this reason (the test fails once it stops differing).
    Differs(&'static str),
}

#[derive(Clone, Copy, Debug)]
struct Case {
    /// Unique within its table; also names the fixture directory.
    name: &'static str,
    args: &'static [&'static str],
    stdin: &'static [u8],
    expect: Expect,
}

const fn same(name: &'static str, args: &'static [&'static str]) -> Case {
    Case {
        name,
        args,
        stdin: b"",
        expect: Expect::Same,
    }
}

const fn same_in(name: &'static str, args: &'static [&'static str], stdin: &'static [u8]) -> Case {
    Case {
        name,
        args,
        stdin,
        expect: Expect::Same,
    }
}

const fn differs(name: &'static str, args: &'static [&'static str], why: &'static str) -> Case {
    Case {
        name,
        args,
        stdin: b"",
        expect: Expect::Differs(why),
    }
}

/// busybox applets (argv[1] picks the applet); the shell's cases fork.
const BUSYBOX: &[Case] = &[
    // Output of arguments.
    same("echo", &["echo", "hello", "world"]),
    same("echo-n", &["echo", "-n", "no newline"]),
    same("echo-e", &["echo", "-e", "a\\tb\\n\\x41"]),
    same("printf", &["printf", "%s=%d %05.2f %x %o %c|%-4s|\\n", "n", "42", "3.14159", "255", "8", "xyz", "ab"]),
    same("printf-bad-number", &["printf", "%d\\n", "12abc"]),
    same("true", &["true"]),
    same("false", &["false"]),
    same("seq", &["seq", "1", "3", "20"]),
    same("seq-sep", &["seq", "-s", ",", "-w", "8", "11"]),
    same("expr-mul", &["expr", "6", "*", "7"]),
    same("expr-length", &["expr", "length", "hello"]),
    same("expr-false", &["expr", "1", "=", "2"]),
    same("expr-match", &["expr", "abc123", ":", "[a-z]*\\([0-9]*\\)"]),
    same("expr-div0", &["expr", "1", "/", "0"]),
    same("basename", &["basename", "/usr/lib/libfoo.so.1", ".1"]),
    same("dirname", &["dirname", "/usr/lib/libfoo.so.1"]),
    same("factor", &["factor", "360", "9973", "1000000007"]),
    same("bc-free", &["dc", "-e", "2 64 ^ p 7 3 / p"]),
    // Reading files from the volume, and from stdin.
    same("cat-files", &["cat", "words.txt", "noeol.txt", "empty"]),
    same_in("cat-stdin", &["cat"], b"from stdin\nline two\n"),
    same_in("cat-dash", &["cat", "nums.txt", "-", "d/a"], b"middle\n"),
    same("cat-n", &["cat", "-n", "words.txt"]),
    same("cat-missing", &["cat", "words.txt", "no-such-file"]),
    same("cat-dir", &["cat", "d"]),
    same("wc-files", &["wc", "words.txt", "table.txt", "noeol.txt"]),
    same_in("wc-stdin", &["wc", "-lwc"], b"one two\nthree\n\nfour five six"),
    same("sort", &["sort", "words.txt"]),
    same("sort-n", &["sort", "-n", "nums.txt"]),
    same("sort-rn", &["sort", "-r", "-n", "nums.txt"]),
    same("sort-keys", &["sort", "-k2,2n", "-k1,1r", "table.txt"]),
    same("sort-u", &["sort", "-u", "words.txt"]),
    same_in("sort-stdin", &["sort", "-t", ",", "-k2"], b"3,c\n1,a\n2,b\n"),
    same_in("uniq-c", &["uniq", "-c"], b"a\na\nb\nc\nc\nc\na\n"),
    same("uniq-d", &["uniq", "-d", "words.txt"]),
    same("cut-fields", &["cut", "-f1,3", "table.txt"]),
    same("cut-delim", &["cut", "-d", ",", "-f2", "csv.txt"]),
    same("cut-chars", &["cut", "-c", "1-3", "words.txt"]),
    same_in("tr-upper", &["tr", "a-z", "A-Z"], b"Hello, World!\n"),
    same_in("tr-delete", &["tr", "-d", "aeiou"], b"programming language\n"),
    same_in("tr-squeeze", &["tr", "-s", " "], b"a   b    c\n"),
    same("head-n", &["head", "-n", "3", "words.txt"]),
    same("head-c", &["head", "-c", "10", "bin.dat"]),
    same("head-many", &["head", "-n", "1", "words.txt", "nums.txt"]),
    same("tail-n", &["tail", "-n", "2", "words.txt"]),
    same("tail-c", &["tail", "-c", "5", "noeol.txt"]),
    same_in("tail-stdin", &["tail", "-n", "+3"], b"1\n2\n3\n4\n5\n"),
    same("tac", &["tac", "words.txt"]),
    same("rev", &["rev", "words.txt"]),
    same("nl", &["nl", "words.txt"]),
    same("paste", &["paste", "words.txt", "nums.txt"]),
    same("fold", &["fold", "-w", "7", "table.txt"]),
    same("expand", &["expand", "-t", "4", "table.txt"]),
    same("od-c", &["od", "-c", "noeol.txt"]),
    same("od-x1", &["od", "-A", "d", "-t", "x1", "-N", "40", "bin.dat"]),
    same("hexdump-C", &["hexdump", "-C", "bin.dat"]),
    same("xxd", &["xxd", "bin.dat"]),
    same("base64", &["base64", "bin.dat"]),
    same_in("base64-d", &["base64", "-d"], b"aGVsbG8sIHJlYWwgcHJvZ3JhbXMK\n"),
    same("md5sum", &["md5sum", "words.txt", "bin.dat", "empty"]),
    same("sha1sum", &["sha1sum", "words.txt", "bin.dat"]),
    same("sha256sum", &["sha256sum", "words.txt", "bin.dat"]),
    same("sha512sum", &["sha512sum", "bin.dat"]),
    same("sha3sum", &["sha3sum", "bin.dat"]),
    same_in("md5sum-stdin", &["md5sum"], b"hash me\n"),
    same("crc32", &["crc32", "bin.dat"]),
    same("strings", &["strings", "-n", "3", "bin.dat"]),
    same("cmp-differ", &["cmp", "words.txt", "nums.txt"]),
    same("cmp-same", &["cmp", "d/a", "d/a"]),
    same("diff", &["diff", "words.txt", "nums.txt"]),
    same("diff-same", &["diff", "d/a", "d/a"]),
    same("grep", &["grep", "-n", "pe", "words.txt"]),
    same("grep-c", &["grep", "-c", "apple", "words.txt"]),
    same("grep-v", &["grep", "-v", "-e", "pear", "-e", "fig", "words.txt"]),
    same("grep-E", &["grep", "-E", "^(a|b)[a-z]+$", "words.txt"]),
    same("grep-r", &["grep", "-r", "ee", "d"]),
    same("grep-l", &["grep", "-l", "pear", "words.txt", "nums.txt", "d/a"]),
    same("grep-nomatch", &["grep", "zebra", "words.txt"]),
    same("grep-missing", &["grep", "x", "no-such-file"]),
    same_in("grep-stdin", &["grep", "-i", "B"], b"abc\nxyz\nBig\n"),
    same("sed-s", &["sed", "s/p/P/g", "words.txt"]),
    same("sed-n", &["sed", "-n", "2,4p", "words.txt"]),
    same("sed-script", &["sed", "-e", "1d", "-e", "s/^/> /", "-e", "$a\\\nend", "nums.txt"]),
    same_in("sed-stdin", &["sed", "y/abc/xyz/"], b"aabbcc\n"),
    same("awk-sum", &["awk", "{ s += $2 } END { print s, NR, s / NR }", "table.txt"]),
    same("awk-fs", &["awk", "-F,", "NR > 1 { printf \"%-8s %5d\\n\", $2, $3 * 2 }", "csv.txt"]),
    same("awk-math", &["awk", "BEGIN { print sin(1), exp(2), 2^10, int(7/2), substr(\"hello\", 2, 3), length(\"abc\"), toupper(\"x\") }"]),
    same("awk-assoc", &["awk", "{ n[$1]++ } END { for (w in n) print w, n[w] }", "words.txt"]),
    same("awk-exit", &["awk", "BEGIN { exit 3 }"]),
    same("awk-printf-file", &["awk", "{ print NR \": \" $0 > \"numbered.txt\" }", "words.txt"]),
    // Metadata: names, sizes, modes, owners (from /etc, lent to the guest), fixed mtimes.
    same("ls-1", &["ls", "-1", "d"]),
    same("ls-la", &["ls", "-la", "d"]),
    same("ls-lan", &["ls", "-lan", "--full-time", "d"]),
    same("ls-R", &["ls", "-R", "-F", "."]),
    same("ls-missing", &["ls", "no-such-dir"]),
    same("stat-c", &["stat", "-c", "%n %s %a %A %F %h %U %G %Y", "words.txt", "d", "d/link", "d/sub/c", "empty"]),
    same("stat-L", &["stat", "-L", "-c", "%n %s %F", "d/link"]),
    same("du", &["du", "-a", "d"]),
    same("du-sk", &["du", "-s", "-k", "d", "words.txt"]),
    same("readlink", &["readlink", "d/link"]),
    same("test-f", &["test", "-f", "words.txt"]),
    same("test-d-file", &["test", "-d", "words.txt"]),
    same("test-x", &["test", "-x", "script.sh"]),
    same("test-L", &["test", "-L", "d/link"]),
    same("test-gt", &["[", "3", "-gt", "2", "]"]),
    same("test-streq", &["[", "abc", "=", "abd", "]"]),
    same("test-syntax", &["[", "1", "-gt"]),
    same("date-fixed", &["date", "-d", "@1612325106", "+%Y-%m-%d %H:%M:%S %A %j"]),
    same("date-file", &["date", "-r", "words.txt", "+%s"]),
    same("id", &["id"]),
    same("whoami", &["whoami"]),
    same("env", &["env"]),
    same("uname-sm", &["uname", "-s", "-m"]),
    same("sleep-0", &["sleep", "0"]),
    same("tar-list", &["tar", "-cf", "-", "d/a", "d/sub/c"]),
    // Writing into the volume: the resulting trees are compared too.
    same("cp", &["cp", "words.txt", "copy.txt"]),
    same("cp-r", &["cp", "-r", "d", "e"]),
    same("cp-a", &["cp", "-a", "d", "e"]),
    same("mv", &["mv", "words.txt", "d/moved"]),
    same("mv-dir", &["mv", "d", "renamed"]),
    same("rm", &["rm", "empty", "d/a"]),
    same("rm-r", &["rm", "-r", "d"]),
    same("rm-missing", &["rm", "no-such-file"]),
    same("rmdir-nonempty", &["rmdir", "d/sub"]),
    same("mkdir-p", &["mkdir", "-p", "x/y/z"]),
    same("mkdir-m", &["mkdir", "-m", "700", "private"]),
    same("mkdir-exists", &["mkdir", "d"]),
    same("touch", &["touch", "new", "empty"]),
    same("ln-s", &["ln", "-s", "words.txt", "sl"]),
    same("ln", &["ln", "words.txt", "hard"]),
    same("link-unlink", &["unlink", "d/link"]),
    same("chmod", &["chmod", "600", "d/a"]),
    same("chmod-R", &["chmod", "-R", "go-rwx", "d"]),
    same("truncate", &["truncate", "-s", "3", "words.txt"]),
    same("dd", &["dd", "if=bin.dat", "of=out.bin", "bs=16", "skip=2", "count=4", "status=none"]),
    same_in("tee", &["tee", "out.txt", "out2.txt"], b"tee'd\n"),
    same("sed-i", &["sed", "-i", "s/a/A/g", "words.txt"]),
    same("gzip-c", &["gzip", "-c", "words.txt"]),
    same("gzip", &["gzip", "words.txt"]),
    same("tar-x", &["tar", "-cf", "d.tar", "d"]),
    same("dos2unix", &["unix2dos", "words.txt"]),
    // busybox ash runs builtins and NOFORK applets without forking.
    same("sh-builtins", &["sh", "-c", "x=3; while [ $x -gt 0 ]; do echo $x; x=$((x - 1)); done; printf '%s\\n' done; exit 4"]),
    same("sh-redirect", &["sh", "-c", "echo a > o.txt; read l < words.txt; echo $l; cd d && pwd"]),
    same("sh-script", &["sh", "script.sh", "a", "b"]),
    same("sh-exec-applet", &["sh", "-c", "echo first; ls d"]),
    same("bzip2", &["bzip2", "-c", "words.txt"]),
    same("cpio", &["cpio", "-o", "-H", "newc"]),
    same("cal", &["cal", "2", "2021"]),
    same("bc", &["bc", "-l"]),
    same("realpath", &["realpath", "d/link", "d/sub/../b.txt"]),
    same("pwd", &["pwd"]),
    same("touch-d", &["touch", "-d", "2020-05-06 07:08:09", "words.txt"]),
    same("touch-r", &["touch", "-r", "words.txt", "new"]),
    same("stat-f", &["stat", "-f", "-c", "%T %b %S", "."]),
    same("sync", &["sync"]),
    same("usleep", &["usleep", "1000"]),
    same("mkfifo", &["mkfifo", "fifo"]),
    same("mknod", &["mknod", "p2", "p"]),
    // Known differences: umon lacks a syscall (the reason names it) or a file.
    same("groups", &["groups"]),
    same("chown", &["chown", "0:0", "words.txt"]),
    same("chgrp", &["chgrp", "0", "words.txt"]),
    same("fallocate", &["fallocate", "-l", "8192", "fa"]),
    differs("free", &["free"], "the guest's /proc/meminfo describes the VM's RAM"),
    differs("df", &["df", "."], "the guest's mount table (volumes, synthetic trees) is not the host's"),
    same("shred", &["shred", "-u", "-n", "1", "d/a"]),
    differs("cat-proc", &["cat", "/proc/self/stat"], "the guest's /proc/self/stat (pid 1, the VM's numbers)"),
    differs("ls-root", &["ls", "/"], "outside volumes every path is ENOENT, / included"),
    same("sh-subst", &["sh", "-c", "echo $(echo hi)"]),
    same("sh-fork", &["sh", "-c", "ls d; echo rc=$?"]),
    // Applets that run other applets re-exec busybox through /proc/self/exe.
    same("sh-pipe", &["sh", "-c", "echo hi | cat"]),
    same("env-exec", &["env", "true"]),
    same("timeout", &["timeout", "5", "true"]),
    // Its times depend on the machine (a few ms for exec's new VM, or none): only what does not.
    same("time", &["time", "-f", "%x %C", "sh", "-c", "exit 3"]),
    // Known differences: the guest is a different machine.
    differs("uname-n", &["uname", "-n"], "the guest's nodename is \"umon\", not the host's"),
];

/// bash-static: builtins, redirections to files, `$(...)` and pipelines of builtins (forks).
const BASH: &[Case] = &[
    same("loop-arith", &["-c", "for ((i = 0; i < 6; i++)); do printf '%d:%d ' $i $((i * i)); done; echo"]),
    same("collatz", &["-c", "n=27 s=0; while ((n != 1)); do if ((n % 2)); then n=$((3 * n + 1)); else n=$((n / 2)); fi; ((s++)); done; echo $s"]),
    same("big-arith", &["-c", "echo $((2 ** 62)) $((-7 / 2)) $((-7 % 3)) $((0x1f << 4)) $((~5)) $((7 > 3 ? 1 : 0))"]),
    same("arrays", &["-c", "a=(zero one two); a+=(three); a[7]=seven; echo ${#a[@]} ${a[3]} ${!a[@]}; unset 'a[1]'; echo \"${a[@]}\"; echo ${a[@]:1:2}"]),
    same("assoc", &["-c", "declare -A m=([apple]=1 [pear]=2); m[fig]=3; ((m[apple] += 10)); for k in apple pear fig; do echo \"$k=${m[$k]}\"; done; echo ${#m[@]}"]),
    same("strings", &["-c", "s='Hello, World'; echo \"${s,,}|${s^^}|${#s}|${s:7}|${s/World/There}|${s%,*}|${s#*, }|${s//l/L}|${s: -3}\""]),
    same("printf", &["-c", "printf '%-6s|%6.2f|%x|%o|%q|%b|%5s|%%\\n' ab 3.14159 255 8 'a b' 'x\\ty' z; printf -v v '%03d' 7; echo $v"]),
    same("printf-time", &["-c", "printf '%(%Y-%m-%d %H:%M:%S)T\\n' 1612325106"]),
    same("functions", &["-c", "fib() { local n=$1; if ((n < 2)); then R=$n; return; fi; fib $((n - 1)); local a=$R; fib $((n - 2)); R=$((a + R)); }; fib 15; echo $R"]),
    same("case-glob", &["-c", "for f in *.txt d/*; do case $f in *.txt) echo \"text $f\";; d/*) echo \"in d: ${f#d/}\";; esac; done"]),
    same("regex", &["-c", "[[ abc123 =~ ([a-z]+)([0-9]+) ]] && echo ${BASH_REMATCH[2]} ${BASH_REMATCH[1]}; [[ x =~ [0-9] ]]; echo $?"]),
    same("file-tests", &["-c", "[[ -f words.txt && -d d && -L d/link && -x script.sh && ! -e nope && -s d/a && ! -s empty ]] && echo ok; [[ -r csv.txt ]]; echo $?"]),
    same("read-file", &["-c", "while IFS=$'\\t' read -r name age city; do echo \"$city:$name:$((age + 1))\"; done < table.txt"]),
    same("read-noeol", &["-c", "while read -r l || [[ -n $l ]]; do echo \"<$l>\"; done < noeol.txt"]),
    same("mapfile", &["-c", "mapfile -t lines < words.txt; echo ${#lines[@]} ${lines[-1]} ${lines[0]}"]),
    same_in("read-stdin", &["-c", "read -r a b; echo \"[$b][$a]\"; read -r c; echo \"($c)\""], b"x y z\nsecond\n"),
    same("redirect-out", &["-c", "echo one > out.txt; echo two >> out.txt; printf 'x\\n' > x.txt; echo err 2> err.txt >&2; echo done"]),
    same("exec-fd", &["-c", "exec 3> fd3.txt; echo via3 >&3; exec 3>&-; exec 4< words.txt; read -r first <&4; echo $first"]),
    same("noclobber", &["-c", "set -C; echo x > words.txt; echo rc=$?"]),
    same("redirect-missing", &["-c", "read x < no-such-file; echo rc=$?"]),
    same("stderr", &["-c", "echo to-err >&2; echo to-out; echo more-err 1>&2"]),
    same("cd-pwd", &["-c", "cd d; pwd; cd sub; echo $PWD; cd ..; echo ${PWD##*/}; cd nope; echo rc=$?"]),
    same("umask", &["-c", "umask 077; echo secret > s.txt; umask; umask -S"]),
    same("exit-42", &["-c", "exit 42"]),
    same("exit-300", &["-c", "exit 300"]),
    same("false", &["-c", "false"]),
    same("set-e", &["-c", "set -e; echo before; false; echo after"]),
    same("set-u", &["-c", "set -u; echo ${undefined}; echo after"]),
    same("div-zero", &["-c", "echo $((1 / 0)); echo after"]),
    same("param-error", &["-c", "echo ${x:?is required}"]),
    same("syntax-error", &["-c", "if then fi"]),
    same("trap-exit", &["-c", "trap 'echo trapped $?' EXIT; echo body; exit 5"]),
    same("random-seed", &["-c", "RANDOM=42; echo $RANDOM $RANDOM $RANDOM"]),
    same("eval-source", &["-c", "eval 'x=1; y=$((x + 1))'; echo $x $y; . ./script.sh p qq"]),
    same("script-file", &["script.sh", "a", "bb", "ccc"]),
    same_in("script-stdin", &["-s", "arg1"], b"echo from stdin \"$1\"; x=5; echo $((x * x)); exit 3\n"),
    same("nullglob", &["-c", "echo nothing*; shopt -s nullglob; echo [nothing*]"]),
    same("declare-p", &["-c", "declare -i n=5; n+=3; declare -a a=(1 2); declare -r r=x; declare -p n a r"]),
    same("readonly-error", &["-c", "readonly r=1; r=2; echo after"]),
    same("getopts", &["-c", "set -- -a -b val rest; while getopts ab: o; do echo \"$o ${OPTARG:-}\"; done; shift $((OPTIND - 1)); echo $@"]),
    same("test-builtin-cmp", &["-c", "[[ words.txt -ef words.txt ]] && echo same; [[ d/a -nt words.txt ]]; echo $?"]),
    same("printf-bytes", &["-c", "printf '\\x00\\x01\\xff\\n'; printf '%s' $'\\u00e9'"]),
    same("type", &["-c", "f() { :; }; type -t echo cd f; type f; type no_such_thing; echo rc=$?"]),
    same("kill-0", &["-c", "kill -l 9 15; kill -0 $$; echo rc=$?"]),
    same("wait", &["-c", "wait; echo rc=$?"]),
    same("jobs", &["-c", "jobs; echo rc=$?"]),
    same("cd-root", &["-c", "cd /; pwd; cd /etc; pwd; cd /nope; echo rc=$?"]),
    same("version", &["--version"]),
    // Known differences: umon lacks a syscall (the reason names it) or a file.
    same("here-string", &["-c", "read -r x <<< 'here string'; echo $x"]),
    same("heredoc", &["-c", "read -r x <<EOF\nheredoc line\nEOF\necho $x"]),
    same("subst", &["-c", "echo $(echo hi)"]),
    same("pipe", &["-c", "echo hi | read x"]),
    differs("exec", &["-c", "exec /bin/busybox true"], "no /bin in the guest: /bin/busybox is not found"),
    same("read-timeout", &["-c", "read -t 0.01 x; echo rc=$?"]),
    same("groups-var", &["-c", "echo ${GROUPS[@]} $UID $EUID"]),
    same("set-x", &["-x", "-c", "a=1; echo $a"]),
    same("dev-null", &["-c", "echo x > /dev/null; read y < /dev/null; echo rc=$?"]),
    differs(
        "ulimit",
        &["-c", "ulimit -a"],
        "getrlimit/prlimit64 answer umon's own limits (nofile 1024, others unlimited), not the host's",
    ),
    same(
        "trap-signal",
        &["-c", "trap 'echo got USR1' USR1; kill -USR1 $$; echo after"],
    ),
    differs("pid", &["-c", "echo $$ $PPID"], "the app is pid 1, its parent pid 0"),
    same("unknown-command", &["-c", "no_such_command_here; echo rc=$?"]),
];

/// Runs every case natively and under umon and checks each against its expectation. Prints
/// umon's notes per case; panics with every failing case at once.
fn check(table: &str, program: &Path, cases: &[Case]) {
    let mut failures = String::new();
    let mut notes_seen = BTreeSet::new();
    for case in cases {
        let fixture = format!("{table}-{}", case.name);
        let want = native(&fixture, program, case.args, case.stdin);
        let (got, notes) = under_umon(&fixture, program, case.args, case.stdin);
        if !notes.is_empty() {
            eprintln!("{}: umon notes: {}", case.name, notes.join(", "));
        }
        notes_seen.extend(notes);
        match (case.expect, got == want) {
            (Expect::Same, true) | (Expect::Differs(_), false) => {}
            (Expect::Same, false) => {
                let _ = writeln!(
                    failures,
                    "{}: {:?} differs under umon:\n{}",
                    case.name,
                    case.args,
                    diff(&want, &got)
                );
            }
            (Expect::Differs(why), true) => {
                let _ = writeln!(
                    failures,
                    "{}: {:?} now matches the native run (known difference was: {why}); make it `same`",
                    case.name, case.args
                );
            }
        }
    }
    eprintln!(
        "{}: syscalls umon noted as unsupported: {notes_seen:?}",
        program.display()
    );
    assert!(
        failures.is_empty(),
        "{} under umon vs natively:\n{failures}",
        program.display()
    );
}

/// The parts of two outcomes that differ, readably.
fn diff(native: &Outcome, umon: &Outcome) -> String {
    let mut out = String::new();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    if native.status != umon.status {
        let _ = writeln!(
            out,
            "  status: native {} umon {}",
            native.status, umon.status
        );
    }
    if native.stdout != umon.stdout {
        let _ = writeln!(
            out,
            "  stdout native: {:?}\n  stdout umon:   {:?}",
            text(&native.stdout),
            text(&umon.stdout)
        );
    }
    if native.stderr != umon.stderr {
        let _ = writeln!(
            out,
            "  stderr native: {:?}\n  stderr umon:   {:?}",
            text(&native.stderr),
            text(&umon.stderr)
        );
    }
    if native.tree != umon.tree {
        for (k, v) in &native.tree {
            match umon.tree.get(k) {
                Some(u) if u == v => {}
                u => {
                    let _ = writeln!(out, "  file {k}: native {v:?} umon {u:?}");
                }
            }
        }
        for (k, u) in &umon.tree {
            if !native.tree.contains_key(k) {
                let _ = writeln!(out, "  file {k}: native None umon {u:?}");
            }
        }
    }
    out
}

/// Names must be unique: each names its fixture directory.
fn assert_unique(cases: &[Case]) {
    let mut names = BTreeSet::new();
    for c in cases {
        assert!(names.insert(c.name), "case name {} used twice", c.name);
    }
}

#[test]
fn busybox_applets_match_native() {
    assert_unique(BUSYBOX);
    if !common::require_kvm() {
        return;
    }
    let Some(busybox) = program("/bin/busybox", "busybox-static") else {
        return;
    };
    check("busybox", &busybox, BUSYBOX);
}

#[test]
fn bash_builtins_match_native() {
    assert_unique(BASH);
    if !common::require_kvm() {
        return;
    }
    let Some(bash) = program("/bin/bash-static", "bash-static") else {
        return;
    };
    check("bash", &bash, BASH);
}
