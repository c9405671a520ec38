#![no_main]
use libfuzzer_sys::fuzz_target;
use ward_engine::event::{Block, Sample};
use ward_engine::{sniff, Profile};

fuzz_target!(|data: &[u8]| {
    let size = data.len() as u64;
    let _ = sniff::sniff(data, size);
    let _ = sniff::sniff(data, size.wrapping_mul(31));
    let sample = Sample::new(
        size,
        vec![Block { offset: 0, data: data.to_vec() }],
    );
    let p = Profile::of(&sample);
    let _ = p.encrypted_looking();
});
