//! Replays every input the fuzzers kept (`fuzz/corpus/<target>/`) and every crash they found
//! (`fuzz/artifacts/<target>/`, each a regression test once fixed) through the same target
//! bodies `make fuzz` runs.

use std::path::PathBuf;

use weft_api::fuzz_targets::TARGETS;

fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    ["corpus", "artifacts"]
        .iter()
        .flat_map(|kind| {
            std::fs::read_dir(fuzz.join(kind).join(target))
                .into_iter()
                .flatten()
        })
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.is_file())
        .collect()
}

#[test]
fn every_kept_input_and_found_crash_is_handled() {
    for (target, run) in TARGETS {
        let inputs = inputs(target);
        assert!(!inputs.is_empty(), "no corpus for fuzz target {target}");
        for input in inputs {
            let data = std::fs::read(&input).unwrap();
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(outcome.is_ok(), "{target} panics on {}", input.display());
        }
    }
}
