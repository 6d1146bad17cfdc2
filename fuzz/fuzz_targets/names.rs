//! Every name that validates is safe as a path component: no `..`, no NUL, no `/` except the one folder an
//! environment name may have, no empty component; and it displays as it was given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use railyard_manifest::{AppName, EnvName, GroupName, LockId, TagName, TeamName};

fn check_component(s: &str, what: &str) {
    assert!(!s.is_empty(), "{what}: empty component");
    assert!(s != "." && s != "..", "{what}: {s:?}");
    assert!(!s.contains('\0') && !s.contains('/') && !s.contains('\\'), "{what}: {s:?}");
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(n) = EnvName::parse(s) {
        assert_eq!(n.as_str(), s);
        let parts: Vec<&str> = s.split('/').collect();
        assert!(parts.len() <= 2, "env {s:?} has more than one folder");
        for p in parts {
            check_component(p, "env");
        }
    }
    if let Ok(n) = AppName::parse(s) {
        assert_eq!(n.as_str(), s);
        check_component(s, "app");
    }
    if let Ok(n) = TeamName::parse(s) {
        assert_eq!(n.as_str(), s);
        check_component(s, "team");
    }
    if let Ok(n) = GroupName::parse(s) {
        assert_eq!(n.as_str(), s);
        check_component(s, "group");
    }
    if let Ok(n) = LockId::parse(s) {
        assert_eq!(n.as_str(), s);
        check_component(s, "lock");
        assert!(!s.starts_with('.'), "lock {s:?}");
    }
    if let Ok(n) = TagName::parse(s) {
        assert_eq!(n.as_str(), s);
        assert!(git2::Reference::is_valid_name(&format!("refs/tags/{s}")), "tag {s:?} is not a valid ref name");
    }
});
