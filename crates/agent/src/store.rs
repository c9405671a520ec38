//! The incident store on its own thread.

use ward_store::Store;

/// The incident store on its own thread: the state directory may be on a protected
/// filesystem, and the main thread must never wait for its own permission events.
/// Work for the store thread.
pub type StoreJob = Box<dyn FnOnce(&Store) + Send>;

/// Handle to the store thread (joined on drop, after all queued work).
pub struct StoreWorker {
    tx: Option<std::sync::mpsc::Sender<StoreJob>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StoreWorker {
    /// Run `store` on its own thread.
    pub fn start(store: Store) -> StoreWorker {
        let (tx, rx) = std::sync::mpsc::channel::<StoreJob>();
        let thread = std::thread::Builder::new()
            .name("store".into())
            .spawn(move || {
                for f in rx {
                    f(&store);
                }
            })
            .expect("spawning the store thread");
        StoreWorker {
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    /// Queue work on the store.
    pub fn run(&self, f: impl FnOnce(&Store) + Send + 'static) {
        self.handle().run(f);
    }

    /// A `Send` handle for queuing work from other threads.
    pub fn handle(&self) -> StoreHandle {
        StoreHandle {
            tx: self.tx.clone(),
        }
    }

    /// Run and wait for the result (only before the sensor starts, or off the main loop).
    pub fn call<T: Send + 'static>(&self, f: impl FnOnce(&Store) -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        self.run(move |s| {
            let _ = tx.send(f(s));
        });
        rx.recv().expect("the store thread answers")
    }
}

/// A `Send` handle for queuing store work from other threads.
pub struct StoreHandle {
    tx: Option<std::sync::mpsc::Sender<StoreJob>>,
}

impl StoreHandle {
    pub fn run(&self, f: impl FnOnce(&Store) + Send + 'static) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Box::new(f));
        }
    }
}

impl Drop for StoreWorker {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
