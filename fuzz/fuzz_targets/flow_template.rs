//! Release-flow templates: any YAML either validates or is refused (never a panic); a valid template survives the
//! YAML round trip it is stored with, and resolving it with arbitrary arguments never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use railyard_manifest::flow::{RunInputs, Template};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (yaml, args) = text.split_once("\n---args\n").unwrap_or((text, ""));
    let Ok(value) = serde_yaml::from_str::<serde_json::Value>(yaml) else { return };
    let Ok(template) = Template::validate(&value) else { return };
    let stored = template.to_yaml();
    let back = Template::from_yaml("fuzz", &stored).expect("a stored template reads back");
    assert_eq!(back, template);
    let mut inputs = RunInputs::default();
    for line in args.lines() {
        if let Some((k, v)) = line.split_once('=') {
            inputs.arguments.insert(k.to_owned(), v.to_owned());
        }
    }
    let _ = template.resolve(&inputs);
});
