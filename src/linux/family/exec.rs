//! execve and execveat. Everything that can fail with an errno is checked here, while the
//! caller's image still exists: the file (found in the guest's file view, a regular file with
//! an execute bit), `#!` interpreters (at most `MAX_SCRIPT_DEPTH` (4) deep), the ELF (and its
//! PT_INTERP), the argument and environment strings. Then every thread leaves and the run loop
//! builds a new VM for the same process (the face's `vm::run_images`): same pid, parent, fds without
//! FD_CLOEXEC, working directory, umask, limits, signal mask and ignored signals; handled
//! signals back to SIG_DFL.
use crate::linux::process::locked;
use crate::linux::{Args, Ctx, Stop, Sys};
use crate::ExitStatus;
use std::ffi::OsString;
use std::io::Read;
use std::os::unix::ffi::OsStringExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use syscalls::Errno;

/// Interpreters of interpreters Linux follows (BINPRM_MAX_RECURSION) before ELOOP.
const MAX_SCRIPT_DEPTH: u32 = 4;
/// The bytes of a `#!` line Linux reads (BINPRM_BUF_SIZE).
const SHEBANG_BYTES: usize = 256;
/// MAX_ARG_STRLEN: one argument or environment string.
const MAX_ARG_STRLEN: usize = 32 * 4096;
/// MAX_ARG_STRINGS.
const MAX_ARG_STRINGS: usize = 0x7fff_ffff;
/// Most bytes of arguments and environment together: what the new program's stack takes.
const MAX_ARG_BYTES: usize = (crate::image::place::STACK_BYTES / 4) as usize;
const AT_EMPTY_PATH: i32 = 0x1000;
const AT_SYMLINK_NOFOLLOW: i32 = 0x100;
/// SIG_IGN.
const SIG_IGN: u64 = 1;

/// What the run loop builds the new image from.
pub struct ExecRequest {
    /// The executable's bytes (checked).
    pub bytes: Arc<[u8]>,
    /// Its guest path (/proc/self/exe, the image's name).
    pub path: Vec<u8>,
    /// argv.
    pub args: Vec<OsString>,
    /// envp.
    pub env: Vec<OsString>,
    /// The exec'ing thread's signal mask (the new main thread keeps it).
    pub sigmask: u64,
}

/// execve(path, argv, envp).
pub fn execve(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    exec(
        cx,
        crate::linux::abi::at::AT_FDCWD,
        a.ptr(0),
        a.ptr(1),
        a.ptr(2),
        0,
    )
}

/// execveat(dirfd, path, argv, envp, flags).
pub fn execveat(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    exec(cx, a.raw(0), a.ptr(1), a.ptr(2), a.ptr(3), a.int(4))
}

fn exec(cx: &mut Ctx<'_, '_>, dirfd: u64, path: u64, argv: u64, envp: u64, flags: i32) -> Sys {
    if flags & !(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0 {
        return Err(Errno::EINVAL.into());
    }
    let (given, abs) = crate::linux::fs::exec_path(cx, dirfd, path, flags & AT_EMPTY_PATH != 0)?;
    let mut args = strings(cx, argv)?;
    let env = strings(cx, envp)?;
    let total: usize = args.iter().chain(&env).map(|s| s.len() + 1).sum();
    if total > MAX_ARG_BYTES {
        return Err(Errno::E2BIG.into());
    }
    let (bytes, path) = resolve(cx, given, abs, &mut args, 0)?;
    let request = ExecRequest {
        bytes,
        path,
        args: args.into_iter().map(OsString::from_vec).collect(),
        env: env.into_iter().map(OsString::from_vec).collect(),
        sigmask: cx.thread.sigmask,
    };
    *locked(&cx.process.exec) = Some(request);
    // Every thread leaves; the run loop sees the request and builds the new image.
    cx.process.exit_group(cx.machine, ExitStatus::Exited(0));
    Err(Stop::Exit(ExitStatus::Exited(0)))
}

/// The NUL-terminated strings of a NULL-terminated array (NULL itself: none).
fn strings(cx: &Ctx<'_, '_>, at: u64) -> Result<Vec<Vec<u8>>, Errno> {
    let mut out = Vec::new();
    if at == 0 {
        return Ok(out);
    }
    let mut total = 0usize;
    for i in 0..MAX_ARG_STRINGS as u64 {
        let p: u64 = cx.read_val(at.wrapping_add(i * 8))?;
        if p == 0 {
            break;
        }
        let s = cx
            .space()
            .read_cstr(cx.mem, p, MAX_ARG_STRLEN)
            .map_err(|e| {
                if e == Errno::ENAMETOOLONG {
                    Errno::E2BIG
                } else {
                    e
                }
            })?;
        if s.len() >= MAX_ARG_STRLEN - 1 {
            return Err(Errno::E2BIG);
        }
        total += s.len() + 1;
        if total > MAX_ARG_BYTES {
            return Err(Errno::E2BIG);
        }
        out.push(s);
    }
    Ok(out)
}

/// The program to run for `given` (found at `abs`): an ELF's bytes, or through `#!` lines
/// its interpreter's (argv rewritten as Linux's binfmt_script does), with its guest path.
fn resolve(
    cx: &Ctx<'_, '_>,
    given: Vec<u8>,
    abs: Vec<u8>,
    args: &mut Vec<Vec<u8>>,
    depth: u32,
) -> Result<(Arc<[u8]>, Vec<u8>), Errno> {
    let bytes = read_executable(cx, &abs)?;
    if bytes.starts_with(b"\x7fELF") {
        check_elf(cx, &bytes)?;
        return Ok((bytes.into(), abs));
    }
    if !bytes.starts_with(b"#!") {
        return Err(Errno::ENOEXEC);
    }
    if depth >= MAX_SCRIPT_DEPTH {
        return Err(Errno::ELOOP);
    }
    let line = &bytes[2..bytes.len().min(SHEBANG_BYTES)];
    let line = line.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let start = line.iter().position(|b| !blank(b)).unwrap_or(line.len());
    let line = &line[start..];
    let end = line.iter().rposition(|b| !blank(b)).map_or(0, |i| i + 1);
    let line = &line[..end];
    if line.is_empty() {
        return Err(Errno::ENOEXEC);
    }
    let name_end = line.iter().position(blank).unwrap_or(line.len());
    let interp = line[..name_end].to_vec();
    let rest = &line[name_end..];
    let arg_start = rest.iter().position(|b| !blank(b));
    // argv: interpreter, its one optional argument, the script as given, argv[1..].
    let mut new = vec![interp.clone()];
    if let Some(s) = arg_start {
        new.push(rest[s..].to_vec());
    }
    new.push(given);
    new.extend(args.drain(..).skip(1));
    *args = new;
    let interp_abs = crate::linux::fs::exec_abs(cx, &interp)?;
    resolve(cx, interp.clone(), interp_abs, args, depth + 1)
}

/// The whole file at guest path `abs`, if it may be executed: a regular file with an
/// execute bit (EACCES otherwise, as for a directory). /proc/self/exe (and the caller's
/// /proc/PID/exe) is the running program.
fn read_executable(cx: &Ctx<'_, '_>, abs: &[u8]) -> Result<Vec<u8>, Errno> {
    if let Some(dir) = abs.strip_suffix(b"/").filter(|d| !d.is_empty()) {
        // Named with a trailing slash: a directory (EACCES) or ENOTDIR.
        if is_self_exe(cx, dir) {
            return Err(Errno::ENOTDIR);
        }
        let is_dir = crate::linux::fs::open_for_exec(&cx.process.fs(), dir)
            .and_then(|f| f.metadata())
            .map(|m| m.is_dir());
        return Err(match is_dir {
            Ok(true) => Errno::EACCES,
            Ok(false) => Errno::ENOTDIR,
            Err(e) => Errno::new(e.raw_os_error().unwrap_or(libc::ENOENT)),
        });
    }
    if is_self_exe(cx, abs) {
        let image = cx
            .process
            .image
            .read()
            .map(|i| i.clone())
            .unwrap_or_default();
        return match image {
            crate::linux::process::Image::Host(path) => {
                std::fs::read(path).map_err(|e| Errno::new(e.raw_os_error().unwrap_or(libc::EIO)))
            }
            crate::linux::process::Image::Bytes(b) => Ok(b.to_vec()),
            crate::linux::process::Image::None => Err(Errno::ENOENT),
        };
    }
    let file = crate::linux::fs::open_for_exec(&cx.process.fs(), abs)
        .map_err(|e| Errno::new(e.raw_os_error().unwrap_or(libc::ENOENT)))?;
    let meta = file.metadata().map_err(|_| Errno::EACCES)?;
    use std::os::unix::fs::PermissionsExt;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(Errno::EACCES);
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    (&file)
        .read_to_end(&mut bytes)
        .map_err(|e| Errno::new(e.raw_os_error().unwrap_or(libc::EIO)))?;
    Ok(bytes)
}

/// Whether `abs` is the running program's magic link (/proc/self/exe and the like).
fn is_self_exe(cx: &Ctx<'_, '_>, abs: &[u8]) -> bool {
    let own = format!("/proc/{}/exe", cx.process.tgid);
    abs == b"/proc/self/exe" || abs == b"/proc/thread-self/exe" || abs == own.as_bytes()
}

/// An ELF umon can load (ENOEXEC otherwise), whose interpreter, if any, exists (ENOENT).
fn check_elf(cx: &Ctx<'_, '_>, bytes: &[u8]) -> Result<(), Errno> {
    let plan = crate::image::elf::plan(
        bytes,
        bytes.len() as u64,
        umon_abi::layout::namespace_base(umon_abi::layout::FIRST_APP_NAMESPACE),
    )
    .map_err(|_| Errno::ENOEXEC)?;
    if let Some((off, len)) = plan.interp {
        let raw = bytes
            .get(off as usize..(off + len) as usize)
            .ok_or(Errno::ENOEXEC)?;
        let path = crate::image::elf::interp_path(raw).map_err(|_| Errno::ENOEXEC)?;
        crate::linux::fs::open_for_exec(&cx.process.fs(), &path)
            .map_err(|e| Errno::new(e.raw_os_error().unwrap_or(libc::ENOENT)))?;
    }
    Ok(())
}

impl crate::linux::Process {
    /// The exec asked for, if the run that ended was left for one.
    pub fn take_exec(&self) -> Option<ExecRequest> {
        locked(&self.exec).take()
    }

    /// The process as exec leaves it before the new image is placed: handlers back to
    /// SIG_DFL (ignored stays ignored), FD_CLOEXEC fds closed, the exit cleared, the vfork
    /// parent released.
    pub fn reset_for_exec(&self, req: &ExecRequest) {
        {
            let mut s = self.signals();
            for action in s.actions.values_mut() {
                if action.handler != SIG_IGN {
                    *action = Default::default();
                }
            }
            s.stopped = false;
        }
        self.fds().close_on_exec();
        self.exit.reset();
        self.prctl().set_comm(&req.path);
        if let Some(table) = &self.family.table {
            if let Some(slot) = table.slot(self.tgid) {
                slot.released.store(1, Ordering::Release);
            }
            table.poke(self.tgid);
        }
    }
}
