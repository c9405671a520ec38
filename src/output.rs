//! Outputs: JSON lines on stdout (the machine contract of BRIEF §5), written by their own
//! thread so a slow reader of stdout can never delay an answer to a permission event.

use std::io::Write;
use std::sync::mpsc;
use std::thread::JoinHandle;

/// Sends JSON objects to stdout, one per line, in order.
pub struct JsonOut {
    tx: Option<mpsc::Sender<serde_json::Value>>,
    thread: Option<JoinHandle<()>>,
}

impl JsonOut {
    /// `enabled == false` drops everything (no `--json`).
    pub fn new(enabled: bool) -> JsonOut {
        if !enabled {
            return JsonOut {
                tx: None,
                thread: None,
            };
        }
        let (tx, rx) = mpsc::channel::<serde_json::Value>();
        let thread = std::thread::Builder::new()
            .name("json-out".into())
            .spawn(move || {
                let stdout = std::io::stdout();
                for v in rx {
                    let mut lock = stdout.lock();
                    // A closed stdout must not stop protection: ignore write errors.
                    let _ = serde_json::to_writer(&mut lock, &v);
                    let _ = lock.write_all(b"\n");
                    let _ = lock.flush();
                }
            })
            .expect("spawning the output thread");
        JsonOut {
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn emit(&self, v: serde_json::Value) {
        self.emitter().emit(v);
    }

    /// A handle other threads can emit through (in order with everything else).
    pub fn emitter(&self) -> Emitter {
        Emitter {
            tx: self.tx.clone(),
        }
    }

    /// Flush everything and stop the thread.
    pub fn close(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for JsonOut {
    fn drop(&mut self) {
        self.close();
    }
}

/// A clonable, `Send` handle to the JSON output.
#[derive(Clone)]
pub struct Emitter {
    tx: Option<mpsc::Sender<serde_json::Value>>,
}

impl Emitter {
    pub fn emit(&self, v: serde_json::Value) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(v);
        }
    }
}
