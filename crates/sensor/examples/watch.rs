//! Print what the sensor sees under a path: `cargo run -p ward-sensor --example watch -- DIR`.
use std::os::fd::AsRawFd;
use ward_sensor::{Sensor, SensorOptions};

fn main() {
    let path = std::fs::canonicalize(std::env::args().nth(1).expect("usage: watch DIR")).unwrap();
    let mut s = Sensor::new(SensorOptions {
        paths: vec![path],
        exclude: vec![],
        boundary_exes: vec![],
        deny_write: vec![],
    })
    .unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    eprintln!("{:?}", s.capabilities());
    let mut out = Vec::new();
    loop {
        let mut fds: Vec<libc::pollfd> = s
            .fds()
            .iter()
            .map(|f| libc::pollfd {
                fd: f.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: example code; fds is a valid array.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as _, 1000) };
        s.read(&mut out).unwrap();
        for o in out.drain(..) {
            let mut e = format!("{:?}", o.event.op);
            e.truncate(200);
            println!("{} {:?} {}", o.event.time, o.event.proc, e);
            if let Some(p) = o.perm {
                s.answer(p, true);
            }
        }
    }
}
