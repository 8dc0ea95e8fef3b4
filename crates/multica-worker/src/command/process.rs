//! Stopping a program and everything it started: on Unix its process group
//! (the program leads one of its own) gets SIGINT (CLIs save their session
//! on it), then SIGTERM, then SIGKILL, one kill grace apart; dropping the
//! [`Group`] kills what is left. Elsewhere only the program itself is
//! killed, at once (see [`Group::signal`]).

/// The program's process group, killed on drop.
pub(crate) struct Group {
    /// The group's ID, the program's PID (`process_group(0)`), kept for
    /// after the program is reaped, when children may live on.
    #[cfg_attr(not(unix), allow(dead_code))]
    id: Option<u32>,
}

/// A signal of the stop sequence, mildest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    Interrupt,
    Terminate,
    Kill,
}

impl Stop {
    /// The next, harsher signal.
    pub(crate) fn next(self) -> Option<Self> {
        match self {
            Self::Interrupt => Some(Self::Terminate),
            Self::Terminate => Some(Self::Kill),
            Self::Kill => None,
        }
    }
}

impl Group {
    pub(crate) fn new(id: Option<u32>) -> Self {
        Self { id }
    }

    /// Sends `stop` to the whole group; returns whether the caller must
    /// kill the program itself (off Unix, where groups are not reached).
    #[cfg(unix)]
    pub(crate) fn signal(&self, stop: Stop) -> bool {
        use nix::sys::signal::{killpg, Signal};
        use nix::unistd::Pid;

        let Some(pid) = self.id.and_then(|pid| i32::try_from(pid).ok()) else {
            return false;
        };
        let signal = match stop {
            Stop::Interrupt => Signal::SIGINT,
            Stop::Terminate => Signal::SIGTERM,
            Stop::Kill => Signal::SIGKILL,
        };
        // ESRCH (the group is gone) is the goal reached.
        let _ = killpg(Pid::from_raw(pid), signal);
        false
    }

    /// Off Unix the program itself is killed, at once: the caller does it.
    #[cfg(not(unix))]
    pub(crate) fn signal(&self, _stop: Stop) -> bool {
        true
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // Whatever is left of the group: children that ignored the milder
        // signals, or everything when the run's future was dropped (the
        // child itself is `kill_on_drop`).
        #[cfg(unix)]
        self.signal(Stop::Kill);
    }
}
