#![no_main]
use libfuzzer_sys::fuzz_target;
use ward_engine::{Config, Engine, Event};

// Input: a JSON array of events (the recorded-trace format).
fuzz_target!(|data: &[u8]| {
    if let Ok(events) = serde_json::from_slice::<Vec<Event>>(data) {
        let mut e = Engine::new(Config { max_files: 64, ..Config::default() });
        for ev in &events {
            let _ = e.observe(ev);
        }
    }
});
