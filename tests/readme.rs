//! The README's list of served syscalls is what `umon syscalls` prints from the syscall table,
//! so the documentation cannot drift from the dispatch. On a mismatch the failure shows the
//! block to paste.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
mod common;

#[test]
fn readme_lists_exactly_the_served_syscalls() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let (open, close) = ("<!-- syscalls -->\n```text\n", "```\n<!-- /syscalls -->");
    let start = readme.find(open).expect("README.md has the syscalls block") + open.len();
    let end = start + readme[start..].find(close).expect("the block is closed");
    let listed = &readme[start..end];
    let out = common::umon(&["syscalls"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let table = common::stdout(&out);
    assert!(
        listed == table,
        "README.md's syscall list differs from `umon syscalls`; replace the block with:\n{open}{table}{close}"
    );
    let count = table.lines().count();
    assert!(
        readme.contains(&format!("Syscalls served: {count},")),
        "README.md should say \"Syscalls served: {count},\""
    );
}
