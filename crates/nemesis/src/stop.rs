//! [`Stop`]: a flag that ends a run early (Ctrl-C), and the one way the fault loop waits.
//!
//! Owns: the harness's interruptible pause. A fault lasts a while by nature (a member stays
//! killed for two seconds); [`Stop::pause`] waits that long unless the run is stopped,
//! when it returns at once.
//! Must never: be used to wait for something that can be observed (a leader, a reply):
//! those are polled or awaited with a deadline where they happen.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Cloneable; every clone raises and sees the same flag.
#[derive(Clone, Debug, Default)]
pub struct Stop {
    inner: Arc<(Mutex<bool>, Condvar)>,
}

impl Stop {
    /// A flag not raised.
    pub fn new() -> Stop {
        Stop::default()
    }

    /// Raises the flag and wakes every [`Stop::pause`].
    pub fn raise(&self) {
        let (flag, wake) = &*self.inner;
        *flag.lock().unwrap_or_else(PoisonError::into_inner) = true;
        wake.notify_all();
    }

    /// Whether the flag was raised.
    pub fn is_raised(&self) -> bool {
        *self.inner.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits `duration`, or less if the flag is (or gets) raised. Returns whether the whole
    /// duration passed.
    pub fn pause(&self, duration: Duration) -> bool {
        let (flag, wake) = &*self.inner;
        let deadline = Instant::now() + duration;
        let mut raised = flag.lock().unwrap_or_else(PoisonError::into_inner);
        while !*raised {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return true;
            };
            raised = wake
                .wait_timeout(raised, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_returns_early_once_raised() {
        let stop = Stop::new();
        assert!(stop.pause(Duration::from_millis(1)));
        let other = stop.clone();
        let waker = std::thread::spawn(move || other.raise());
        let started = Instant::now();
        assert!(!stop.pause(Duration::from_secs(60)));
        assert!(started.elapsed() < Duration::from_secs(30));
        waker.join().unwrap();
        assert!(stop.is_raised());
    }
}
