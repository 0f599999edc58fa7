//! Signals wake the loop at once: each handler (installed by signal-hook) only sets a
//! flag and writes a byte to a non-blocking pipe that the loop polls with the time
//! to the next cycle as timeout (and SIGCHLD only writes the byte, so the loop reaps
//! a child as soon as it exits). The loop decides what to do: stop (SIGTERM,
//! SIGINT), reload (SIGHUP), or say how it is (SIGUSR1).

use crate::sys;
use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

pub struct Signals {
    /// The number of the first SIGTERM or SIGINT, 0 until then.
    stop: Arc<AtomicUsize>,
    hup: Arc<AtomicBool>,
    usr1: Arc<AtomicBool>,
    read: OwnedFd,
}

impl Signals {
    pub fn install() -> std::io::Result<Signals> {
        let (read, write) = sys::pipe()?;
        let stop = Arc::new(AtomicUsize::new(0));
        let hup = Arc::new(AtomicBool::new(false));
        for sig in [SIGTERM, SIGINT] {
            signal_hook::flag::register_usize(sig, Arc::clone(&stop), sig as usize)?;
            signal_hook::low_level::pipe::register_raw(sig, write.try_clone()?)?;
        }
        let usr1 = Arc::new(AtomicBool::new(false));
        for (sig, flag) in [(SIGHUP, &hup), (SIGUSR1, &usr1)] {
            signal_hook::flag::register(sig, Arc::clone(flag))?;
            signal_hook::low_level::pipe::register_raw(sig, write.try_clone()?)?;
        }
        // A child that exits wakes the loop to reap it (children get default
        // dispositions back before exec).
        signal_hook::low_level::pipe::register_raw(SIGCHLD, write)?;
        Ok(Signals {
            stop,
            hup,
            usr1,
            read,
        })
    }

    /// The stop signal's name once SIGTERM or SIGINT arrived.
    pub fn stop_requested(&self) -> Option<&'static str> {
        match self.stop.load(Ordering::SeqCst) as i32 {
            0 => None,
            SIGINT => Some("SIGINT"),
            _ => Some("SIGTERM"),
        }
    }

    /// True once per SIGHUP (several before the loop looks count as one).
    pub fn take_hup(&self) -> bool {
        self.hup.swap(false, Ordering::SeqCst)
    }

    /// True once per SIGUSR1 (several before the loop looks count as one).
    pub fn take_usr1(&self) -> bool {
        self.usr1.swap(false, Ordering::SeqCst)
    }

    /// Sleeps up to `ms` or until a signal arrives.
    pub fn wait(&self, ms: u64) {
        self.wait_or(ms, &[]);
    }

    /// Sleeps up to `ms`, until a signal arrives, or until one of `fds` (a child's
    /// output) is readable.
    pub fn wait_or(&self, ms: u64, fds: &[std::os::fd::RawFd]) {
        let mut pfds = [libc::pollfd {
            fd: -1,
            events: libc::POLLIN,
            revents: 0,
        }; 7];
        let n = fds.len().min(pfds.len());
        for (slot, &fd) in pfds[..n].iter_mut().zip(fds) {
            slot.fd = fd;
        }
        self.wait_polled(ms, &mut pfds[..n]);
    }

    /// Sleeps up to `ms`, until a signal arrives, or until one of `fds` is ready
    /// for its `events` (at most seven); each gets its `revents`.
    pub fn wait_polled(&self, ms: u64, fds: &mut [libc::pollfd]) {
        let ms = ms.min(i32::MAX as u64) as i32;
        let mut pfds = [libc::pollfd {
            fd: -1,
            events: libc::POLLIN,
            revents: 0,
        }; 8];
        pfds[0].fd = self.read.as_raw_fd();
        let n = 1 + fds.len().min(pfds.len() - 1);
        pfds[1..n].copy_from_slice(&fds[..n - 1]);
        let r = sys::poll(&mut pfds[..n], ms);
        for (f, p) in fds.iter_mut().zip(&pfds[1..n]) {
            f.revents = if r > 0 { p.revents } else { 0 };
        }
        if r > 0 && pfds[0].revents != 0 {
            sys::drain(self.read.as_raw_fd());
        }
    }
}
