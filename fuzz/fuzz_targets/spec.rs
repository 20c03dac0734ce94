//! `cargo fuzz run spec`: the cell spec parser and validator on arbitrary bytes. Any input must
//! give a spec or a typed error, never a panic, and a spec that validates must plan.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(spec) = okra_core::validate::parse_and_validate(text) {
        let _ = okra_core::decision::plan(&spec);
        // What validates must survive a round trip through JSON (the table stores JSON).
        let json = serde_json::to_value(&spec).expect("a valid spec serializes");
        okra_core::validate::validate_value(&json).expect("a valid spec stays valid as JSON");
    }
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        let _ = okra_core::validate::validate_value(&v);
    }
});
