//! `elf_plan`: the application ELF path on arbitrary bytes, the way `umon::image::place::load` drives it:
//! `head_len` on the first 64 bytes, `plan` on that head, and `symbols` on the whole file (fault
//! reports read them). None may panic; every accepted plan must satisfy the promises
//! `LoadPlan` documents. Allocation sized by a header field is caught by libFuzzer's
//! `-malloc_limit_mb` (see fuzz/README.md).
use umon::image::elf::{head_len, plan, symbols, AppKind, LoadPlan, MAX_HEAD_BYTES};
use umon::image::elf::{MAX_IMAGE_BYTES, MAX_LOAD_SEGMENTS};
use umon_abi::layout::{namespace_base, CORE_IMAGE_END, FIRST_APP_NAMESPACE, PROGRAM_BASE};

/// Where `umon run` puts a static-pie image.
pub const PIE_BASE: u64 = namespace_base(FIRST_APP_NAMESPACE);

/// Run the ELF path on `data` as the whole file.
pub fn elf_plan(data: &[u8]) {
    let file_len = data.len() as u64;
    let first = &data[..data.len().min(64)];
    let want = head_len(first, file_len);
    assert!(
        want <= file_len && want <= MAX_HEAD_BYTES,
        "head_len {want} for a {file_len}-byte file"
    );
    let head = &data[..want as usize];
    let from_head = plan(head, file_len, PIE_BASE);
    if let Ok(p) = &from_head {
        check_plan(p, file_len, PIE_BASE);
    }
    // The head must be enough: planning from the whole file agrees (files within the head cap).
    if file_len <= MAX_HEAD_BYTES {
        let from_file = plan(data, file_len, PIE_BASE);
        match (&from_head, &from_file) {
            (Ok(a), Ok(b)) => assert_eq!(format!("{a:?}"), format!("{b:?}")),
            (Err(_), Err(_)) => {}
            (a, b) => panic!("head and whole file disagree: {a:?} vs {b:?}"),
        }
    }
    // A file longer than what was read (the segments' data lies beyond the head).
    let _ = plan(head, u64::MAX, PIE_BASE);
    // The other place a static-pie could go: the bottom of the address space.
    if let Ok(p) = plan(head, file_len, 0) {
        check_plan(&p, file_len, 0);
    }
    let bias = from_head.as_ref().map(|p| p.bias).unwrap_or(0);
    let syms = symbols(data, bias);
    assert!(syms.windows(2).all(|w| w[0] <= w[1]), "symbols are sorted");
}

/// What a [`LoadPlan`] promises.
fn check_plan(p: &LoadPlan, file_len: u64, pie_base: u64) {
    assert!(!p.segments.is_empty() && p.segments.len() <= MAX_LOAD_SEGMENTS);
    assert!(
        p.start <= p.end && p.end - p.start <= MAX_IMAGE_BYTES,
        "{p:?}"
    );
    assert!(
        p.start.is_multiple_of(4096) && p.end.is_multiple_of(4096),
        "{p:?}"
    );
    for s in &p.segments {
        assert!(s.filesz <= s.memsz, "{p:?}");
        let file_end = s.offset.checked_add(s.filesz).expect("checked offset");
        assert!(file_end <= file_len, "{p:?}");
        let end = s.vaddr.checked_add(s.memsz).expect("no wrap");
        assert!(
            p.start <= s.vaddr && end <= p.end,
            "segment outside the image: {p:?}"
        );
    }
    for w in p.segments.windows(2) {
        assert!(w[0].vaddr + w[0].memsz <= w[1].vaddr, "overlap: {p:?}");
    }
    assert!(
        p.segments
            .iter()
            .any(|s| s.exec && s.vaddr <= p.entry && p.entry < s.vaddr + s.memsz),
        "entry outside executable memory: {p:?}"
    );
    match p.kind {
        AppKind::Static => {
            assert_eq!(p.bias, 0);
            assert!(p.start >= CORE_IMAGE_END && p.end <= PROGRAM_BASE, "{p:?}");
        }
        AppKind::StaticPie => assert_eq!(p.start, pie_base, "{p:?}"),
    }
}
