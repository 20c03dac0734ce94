//! `cargo fuzz run condition`: CEL success/failure conditions, compiled and evaluated. The first
//! byte picks the value's shape, the next 8·n bytes are numbers, the rest is the expression.
#![no_main]

use libfuzzer_sys::fuzz_target;
use okra_core::analysis::condition::{Condition, ConditionKind, MeasuredValue};

fuzz_target!(|data: &[u8]| {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(head % 4).min(rest.len() / 8);
    let (nums, expr) = rest.split_at(n * 8);
    let Ok(expr) = std::str::from_utf8(expr) else {
        return;
    };
    let values: Vec<f64> = nums
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
        .collect();
    let value = if head & 0x80 == 0 {
        MeasuredValue::Number(values.first().copied().unwrap_or(f64::from(head)))
    } else {
        MeasuredValue::Series(values)
    };
    for kind in [ConditionKind::Success, ConditionKind::Failure] {
        if let Ok(c) = Condition::compile("m", kind, expr) {
            let _ = c.evaluate(&value);
        }
    }
});
