//! files (Rust): std::fs on a directory, one line per step, so a test can compare the output
//! with the expected text and with a native run.
//!
//!   files DIR   DIR is empty: create directories and files, write, append, read back, seek,
//!               copy, rename, list, symlink, hard link, chmod, truncate, chdir, canonicalize,
//!               remove; leaves a/moved.txt, a/link -> moved.txt, rust-keep.txt and a file
//!               whose name is not UTF-8 for the test to check from the host
//!
//! Exits 0 unless a step that the rest depends on fails (then 1, with the error on stderr).
//! Built by the tests with `rustc -O -C target-feature=+crt-static`.
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// "what: ok" or "what: <error kind>".
fn step<T>(what: &str, r: io::Result<T>) -> Option<T> {
    match r {
        Ok(v) => {
            println!("{what}: ok");
            Some(v)
        }
        Err(e) => {
            println!("{what}: {:?}", e.kind());
            None
        }
    }
}

/// Like [`step`], but the run cannot go on without it.
fn must<T>(what: &str, r: io::Result<T>) -> T {
    step(what, r).unwrap_or_else(|| {
        eprintln!("files: {what} failed");
        std::process::exit(1)
    })
}

/// The sorted entries of `dir` as "name/type".
fn list(dir: &Path) -> io::Result<String> {
    let mut names = Vec::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        let t = e.file_type()?;
        let kind = if t.is_symlink() {
            'l'
        } else if t.is_dir() {
            'd'
        } else {
            'f'
        };
        let name: String = e
            .file_name()
            .as_bytes()
            .iter()
            .map(|&b| {
                if (0x20..0x7f).contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("\\x{b:02x}")
                }
            })
            .collect();
        names.push(format!("{name}/{kind}"));
    }
    names.sort();
    Ok(names.join(" "))
}

fn main() {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: files DIR");
        std::process::exit(2);
    };
    let a = dir.join("a");
    let data = a.join("b/c/data.txt");

    must("create_dir_all a/b/c", fs::create_dir_all(a.join("b/c")));
    must("write data.txt", fs::write(&data, "rust wrote this\n"));
    println!(
        "read_to_string: {:?}",
        fs::read_to_string(&data).unwrap_or_default()
    );
    let mut f = must(
        "open for append",
        OpenOptions::new().append(true).open(&data),
    );
    must("append", f.write_all(b"and more\n"));
    drop(f);
    println!("len: {}", fs::metadata(&data).map(|m| m.len()).unwrap_or(0));
    let mut f = must("open", File::open(&data));
    must("seek", f.seek(SeekFrom::Start(5)));
    let mut rest = String::new();
    must("read after seek", f.read_to_string(&mut rest));
    println!("rest: {rest:?}");
    drop(f);
    step(
        "create_new on an existing file",
        File::create_new(&data).map(|_| ()),
    );

    let copied = must("copy", fs::copy(&data, a.join("copy.txt")));
    println!("copied {copied} bytes");
    must("rename", fs::rename(a.join("copy.txt"), a.join("moved.txt")));
    println!("copy.txt exists: {}", a.join("copy.txt").exists());
    println!("list a: {}", list(&a).unwrap_or_default());

    must("symlink", symlink("moved.txt", a.join("link")));
    println!(
        "read_link: {:?}",
        fs::read_link(a.join("link")).unwrap_or_default()
    );
    let meta = fs::symlink_metadata(a.join("link"));
    println!(
        "symlink_metadata is_symlink: {}",
        meta.map(|m| m.file_type().is_symlink()).unwrap_or(false)
    );
    println!(
        "metadata through the link: len {}",
        fs::metadata(a.join("link")).map(|m| m.len()).unwrap_or(0)
    );
    must("hard_link", fs::hard_link(a.join("moved.txt"), a.join("hard")));
    println!(
        "nlink: {}",
        fs::metadata(a.join("moved.txt"))
            .map(|m| m.nlink())
            .unwrap_or(0)
    );
    must(
        "set_permissions 0640",
        fs::set_permissions(a.join("moved.txt"), fs::Permissions::from_mode(0o640)),
    );
    println!(
        "mode: {:o}",
        fs::metadata(a.join("moved.txt"))
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(0)
    );
    let f = must("open for writing", OpenOptions::new().write(true).open(a.join("hard")));
    must("set_len 3", f.set_len(3));
    drop(f);
    println!(
        "moved.txt after set_len on its hard link: {:?}",
        fs::read_to_string(a.join("moved.txt")).unwrap_or_default()
    );

    must("set_current_dir a", std::env::set_current_dir(&a));
    println!(
        "current_dir is a: {}",
        std::env::current_dir().map(|d| d == a).unwrap_or(false)
    );
    println!(
        "read relative: {:?}",
        fs::read_to_string("moved.txt").unwrap_or_default()
    );
    println!(
        "canonicalize link is a/moved.txt: {}",
        fs::canonicalize("link")
            .map(|p| p == a.join("moved.txt"))
            .unwrap_or(false)
    );
    must("set_current_dir back", std::env::set_current_dir(&dir));

    must("remove_file hard", fs::remove_file(a.join("hard")));
    step("remove_dir a (not empty)", fs::remove_dir(&a));
    must("remove_dir_all a/b", fs::remove_dir_all(a.join("b")));
    println!("a/b exists: {}", a.join("b").exists());
    step("read a removed file", fs::read(&data).map(|_| ()));

    let odd = dir.join(OsStr::from_bytes(b"\xffrust-\xfe"));
    must("write a non-UTF-8 name", fs::write(&odd, "odd\n"));
    must("write rust-keep.txt", fs::write(dir.join("rust-keep.txt"), "from rust\n"));
    println!("list DIR: {}", list(&dir).unwrap_or_default());
    println!("list a: {}", list(&a).unwrap_or_default());
}
