//! Every input `aidsync-fuzz` found to panic automerge
//! (`tests/fuzz-regressions/automerge/`), replayed through the server's own
//! sync path over the harness's demo documents: each is refused with a 4xx,
//! and nothing panics on the way, not even a panic the server would contain.
//!
//! Its own test binary, because it counts panics with a process-wide hook.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aidsync_tests::fuzz::http::HttpWorld;
use aidsync_tests::fuzz::{Outcome, Target, corpus, read_saved, sync};

/// A saved input: its target and bytes.
fn saved_input(path: &Path) -> (Target, Vec<u8>) {
    let text = std::fs::read_to_string(path).unwrap();
    read_saved(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn saved_automerge_panic_inputs_are_refused_without_a_panic() {
    let panics = Arc::new(AtomicUsize::new(0));
    let counted = panics.clone();
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        counted.fetch_add(1, Ordering::SeqCst);
        default_hook(info);
    }));

    let sync_world = corpus::world().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let http_world = rt.block_on(HttpWorld::new()).unwrap();

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fuzz-regressions/automerge");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 10, "only {} saved inputs", files.len());
    let mut accepted = Vec::new();
    let mut panicked = Vec::new();
    for path in &files {
        let (target, input) = saved_input(path);
        let before = panics.load(Ordering::SeqCst);
        let outcome: Outcome = match target {
            Target::Sync | Target::Chunks => sync::run(&sync_world, &input),
            Target::Http => rt.block_on(http_world.run(&input)),
            other => panic!("{}: unexpected target {other:?}", path.display()),
        };
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(outcome.server_error, None, "{name}");
        if outcome.accepted() {
            accepted.push(name.clone());
        }
        if panics.load(Ordering::SeqCst) != before {
            panicked.push(name);
        }
    }
    assert_eq!(panicked, Vec::<String>::new(), "inputs that still panic");
    assert_eq!(accepted, Vec::<String>::new(), "inputs that were stored");
}
