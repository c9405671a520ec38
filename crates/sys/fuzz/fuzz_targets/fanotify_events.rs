#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for ev in ward_sys::decode::events(data) {
        if let Ok(ev) = ev {
            // Re-encoding a decoded event and decoding it again must give the same event.
            let again: Vec<_> = ward_sys::decode::events(&ward_sys::decode::encode(&ev)).collect();
            assert_eq!(again.len(), 1);
        }
    }
});
