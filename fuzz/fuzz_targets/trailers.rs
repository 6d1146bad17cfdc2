//! The commit-trailer parser never panics on any message, and every request it reads back is written again as the
//! same trailer (what a replay relies on).
#![no_main]

use libfuzzer_sys::fuzz_target;
use railyard_manifest::commit;

fuzz_target!(|data: &[u8]| {
    let Ok(message) = std::str::from_utf8(data) else { return };
    for envelope in commit::requests(message).into_iter().flatten() {
        let again = commit::message(&[&envelope]);
        let back: Vec<_> = commit::requests(&again).into_iter().collect();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].as_ref().ok(), Some(&envelope), "trailer round trip of {again:?}");
    }
});
