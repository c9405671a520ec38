#![no_main]
use libfuzzer_sys::fuzz_target;
use ward_engine::decode;

fuzz_target!(|data: &[u8]| {
    let _ = decode::inflate_prefix(data);
    let _ = decode::zlib_prefix(data);
    let _ = decode::gzip_prefix(data);
    let _ = decode::find_stream(data, 0, 16);
    let _ = decode::armour(data);
});
