//! The safety timer behind one trait, with its two implementations: the process fence
//! ([`Fence`], a watcher process that kills the daemon's and the packages' process groups)
//! and the Linux watchdog device ([`WatchdogDevice`], `/dev/watchdog`: the machine resets).
//! cmcld always runs the process fence, which is exact to the millisecond and kills what the
//! node runs; `--watchdog DEVICE` adds the device beneath it, for what no process can fence:
//! a kernel or a machine that hangs with the watcher in it.
//!
//! The device's API (Documentation/watchdog/watchdog-api.rst) counts whole seconds: a pet due
//! to expire `within` from now sets the timeout to `within` rounded down, so the device never
//! fires later than the core counted on, only up to a second earlier. A pet less than a second
//! ahead cannot be expressed and is skipped: the timeout set before ends sooner still. So the
//! device needs a healthy node's pets to reach at least one and a half seconds ahead
//! ([`check_horizon`]): MEMBER_TIMEOUT of 3 s and more; the fast profile's 1 s cannot use it.
//!
//! The ioctls are written here through nix's macros, the only unsafe code of the crate (its
//! lints deny unsafe code; the functions below allow it, each call with its SAFETY note): the
//! one crate that wraps the watchdog API opens only `/dev/watchdog[N]` and brings an older nix,
//! and the API is three calls.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::fence::Fence;

/// The safety timer the daemon pets (see the module documentation).
pub trait SafetyTimer: Send {
    /// Arms the timer, or moves its deadline, to `within` from now; zero fences now.
    fn pet(&mut self, within: Duration) -> io::Result<()>;
    /// Disarms it (a graceful halt).
    fn disarm(&mut self) -> io::Result<()>;
    /// Also kills process group `group` when fencing, where the timer can.
    fn add_group(&mut self, group: i32) -> io::Result<()>;
    /// Not any more.
    fn forget_group(&mut self, group: i32) -> io::Result<()>;
    /// What it is, for the status and the log.
    fn describe(&self) -> String;
}

impl SafetyTimer for Fence {
    fn pet(&mut self, within: Duration) -> io::Result<()> {
        Fence::pet(self, within)
    }

    fn disarm(&mut self) -> io::Result<()> {
        Fence::disarm(self)
    }

    fn add_group(&mut self, group: i32) -> io::Result<()> {
        Fence::add_group(self, group)
    }

    fn forget_group(&mut self, group: i32) -> io::Result<()> {
        Fence::forget_group(self, group)
    }

    fn describe(&self) -> String {
        "process fence".to_owned()
    }
}

/// Every safety timer of the daemon, petted together: the process fence, and the watchdog
/// device when one is configured. An error of any is an error of all (the daemon then
/// fences at once).
pub struct SafetyTimers(Vec<Box<dyn SafetyTimer>>);

impl SafetyTimers {
    /// The process fence alone, or with `device` beneath it.
    pub fn new(fence: Fence, device: Option<WatchdogDevice>) -> SafetyTimers {
        let mut timers: Vec<Box<dyn SafetyTimer>> = vec![Box::new(fence)];
        if let Some(device) = device {
            timers.push(Box::new(device));
        }
        SafetyTimers(timers)
    }

    /// Closes them all now, as the daemon's exit would (armed, they fence; disarmed, they
    /// end), whoever else still holds this set: what is petted afterwards reaches nothing.
    pub fn close_all(&mut self) {
        self.0.clear();
    }

    /// Whether a watchdog device is among them.
    pub fn has_device(&self) -> bool {
        self.0.len() > 1
    }

    fn each(
        &mut self,
        mut what: impl FnMut(&mut dyn SafetyTimer) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut first_error = None;
        for timer in &mut self.0 {
            if let Err(e) = what(timer.as_mut()) {
                first_error.get_or_insert(io::Error::new(
                    e.kind(),
                    format!("{}: {e}", timer.describe()),
                ));
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl SafetyTimer for SafetyTimers {
    fn pet(&mut self, within: Duration) -> io::Result<()> {
        self.each(|t| t.pet(within))
    }

    fn disarm(&mut self) -> io::Result<()> {
        self.each(|t| t.disarm())
    }

    fn add_group(&mut self, group: i32) -> io::Result<()> {
        self.each(|t| t.add_group(group))
    }

    fn forget_group(&mut self, group: i32) -> io::Result<()> {
        self.each(|t| t.forget_group(group))
    }

    fn describe(&self) -> String {
        self.0
            .iter()
            .map(|t| t.describe())
            .collect::<Vec<_>>()
            .join(" and ")
    }
}

/// `struct watchdog_info` of linux/watchdog.h.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct WatchdogInfo {
    options: u32,
    firmware_version: u32,
    identity: [u8; 32],
}

/// The device can set its timeout.
const WDIOF_SETTIMEOUT: u32 = 0x0080;
/// The device stops on the magic close ('V' written before closing).
const WDIOF_MAGICCLOSE: u32 = 0x0100;

/// The three ioctls (linux/watchdog.h): `_IOR('W', 0, struct watchdog_info)`, `_IOR('W', 5,
/// int)` and `_IOWR('W', 6, int)`.
#[allow(unsafe_code)]
mod ioctl {
    use super::WatchdogInfo;
    nix::ioctl_read!(get_support, b'W', 0, WatchdogInfo);
    nix::ioctl_read!(keep_alive, b'W', 5, nix::libc::c_int);
    nix::ioctl_readwrite!(set_timeout, b'W', 6, nix::libc::c_int);
}

/// The shortest horizon (how far ahead a healthy node's pets reach) the device can serve: a
/// pet is rounded down to whole seconds and must stay at least one second, with room for
/// scheduling.
pub const DEVICE_HORIZON_MIN: Duration = Duration::from_millis(1500);

/// Whether pets that reach `horizon` ahead suit a watchdog device.
pub fn check_horizon(horizon: Duration) -> Result<(), String> {
    if horizon < DEVICE_HORIZON_MIN {
        return Err(format!(
            "a watchdog device counts whole seconds and needs the safety timer to reach at \
             least {:.1} s ahead; this cluster's reaches {:.2} s (raise MEMBER_TIMEOUT to 3 s \
             or more, or run without --watchdog)",
            DEVICE_HORIZON_MIN.as_secs_f64(),
            horizon.as_secs_f64()
        ));
    }
    Ok(())
}

/// The device timeout for a pet due `within` from now: whole seconds, rounded down (never
/// later than asked); `None` when that is less than one second (the pet is skipped).
pub fn device_seconds(within: Duration) -> Option<u32> {
    let seconds = within.as_secs();
    (seconds >= 1).then(|| u32::try_from(seconds).unwrap_or(u32::MAX))
}

/// A Linux watchdog device (`/dev/watchdog`, `/dev/watchdogN`): it resets the machine when not
/// petted in time.
#[derive(Debug)]
pub struct WatchdogDevice {
    path: PathBuf,
    identity: String,
    /// Open while armed; the magic close disarms it.
    file: Option<File>,
    /// The timeout last set, in seconds.
    timeout: Option<u32>,
    /// The largest timeout the device took (a larger one was refused).
    largest: u32,
}

impl WatchdogDevice {
    /// Opens `path` and checks that it is a watchdog whose timeout can be set and that stops
    /// on a magic close (else a halted node would be reset). Opening starts the device, so
    /// it is closed again at once (with the magic close) until the first pet.
    pub fn open(path: &Path) -> Result<WatchdogDevice, String> {
        let mut device = WatchdogDevice {
            path: path.to_owned(),
            identity: String::new(),
            file: None,
            timeout: None,
            largest: u32::MAX,
        };
        let file = device.open_file()?;
        let mut info = WatchdogInfo::default();
        #[allow(unsafe_code)]
        // SAFETY: the fd is open and `info` is the struct the ioctl fills.
        let support = unsafe { ioctl::get_support(file.as_raw_fd(), &mut info) };
        device.file = Some(file);
        if let Err(errno) = support {
            // Not a watchdog: closed as it is (the magic 'V' is for devices only).
            drop(device.file.take());
            return Err(format!(
                "{} is not a watchdog device (WDIOC_GETSUPPORT: {errno})",
                path.display()
            ));
        }
        let end = info.identity.iter().position(|&b| b == 0).unwrap_or(32);
        device.identity = String::from_utf8_lossy(&info.identity[..end]).into_owned();
        let missing = [
            (WDIOF_SETTIMEOUT, "setting its timeout"),
            (WDIOF_MAGICCLOSE, "the magic close"),
        ]
        .iter()
        .filter(|(flag, _)| info.options & flag == 0)
        .map(|(_, what)| *what)
        .collect::<Vec<_>>();
        if !missing.is_empty() {
            let _ = device.close();
            return Err(format!(
                "the watchdog {} ({}) does not support {}",
                path.display(),
                device.identity,
                missing.join(" or ")
            ));
        }
        if let Some(why) = nowayout(path) {
            let _ = device.close();
            return Err(why);
        }
        device.close().map_err(|e| {
            format!(
                "the watchdog {} did not stop on the magic close: {e}",
                path.display()
            )
        })?;
        Ok(device)
    }

    fn open_file(&self) -> Result<File, String> {
        OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_CLOEXEC)
            .open(&self.path)
            .map_err(|e| format!("cannot open the watchdog {}: {e}", self.path.display()))
    }

    /// The magic close: 'V', then close. The device stops.
    fn close(&mut self) -> io::Result<()> {
        self.timeout = None;
        match self.file.take() {
            Some(mut file) => file.write_all(b"V"),
            None => Ok(()),
        }
    }

    /// Sets the timeout to `seconds`, or to the largest the device takes below it.
    fn set_timeout(&mut self, file: &File, seconds: u32) -> io::Result<()> {
        let mut want = seconds.min(self.largest);
        loop {
            let mut value = nix::libc::c_int::try_from(want).unwrap_or(nix::libc::c_int::MAX);
            // SAFETY: the fd is open and `value` is the int the ioctl reads and writes.
            #[allow(unsafe_code)]
            let result = unsafe { ioctl::set_timeout(file.as_raw_fd(), &mut value) };
            match result {
                Ok(_) => {
                    // The driver may round: a timeout longer than asked would fire late.
                    let got = u32::try_from(value).unwrap_or(0);
                    if got > want {
                        return Err(io::Error::other(format!(
                            "the watchdog set {got} s when asked for {want} s"
                        )));
                    }
                    self.timeout = Some(want);
                    return Ok(());
                }
                Err(nix::errno::Errno::EINVAL) if want > 1 => {
                    // Beyond the device's range: the largest it takes (firing earlier is
                    // safe).
                    want /= 2;
                    self.largest = want;
                }
                Err(errno) => return Err(io::Error::from(errno)),
            }
        }
    }
}

impl SafetyTimer for WatchdogDevice {
    fn pet(&mut self, within: Duration) -> io::Result<()> {
        let Some(seconds) = device_seconds(within) else {
            // Less than a second ahead: the timeout set before ends sooner (and a fence now,
            // zero, is the process fence's to carry out at once).
            return Ok(());
        };
        let file = match self.file.take() {
            Some(file) => file,
            None => self.open_file().map_err(io::Error::other)?,
        };
        let result = if self.timeout == Some(seconds.min(self.largest)) {
            Ok(())
        } else {
            self.set_timeout(&file, seconds)
        }
        .and_then(|()| {
            let mut dummy: nix::libc::c_int = 0;
            // SAFETY: the fd is open and `dummy` is the int the ioctl names.
            #[allow(unsafe_code)]
            let result = unsafe { ioctl::keep_alive(file.as_raw_fd(), &mut dummy) };
            result.map(|_| ()).map_err(io::Error::from)
        });
        self.file = Some(file);
        result
    }

    fn disarm(&mut self) -> io::Result<()> {
        self.close()
    }

    fn add_group(&mut self, _group: i32) -> io::Result<()> {
        // The machine resets whole.
        Ok(())
    }

    fn forget_group(&mut self, _group: i32) -> io::Result<()> {
        Ok(())
    }

    fn describe(&self) -> String {
        format!("watchdog {} ({})", self.path.display(), self.identity)
    }
}

/// Why a device cannot be stopped, when its driver says so (`nowayout`: a magic close is
/// ignored, and a node halted gracefully would be reset).
fn nowayout(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let name = if name == "watchdog" {
        "watchdog0"
    } else {
        name
    };
    let flag = std::fs::read_to_string(format!("/sys/class/watchdog/{name}/nowayout")).ok()?;
    (flag.trim() == "1").then(|| {
        format!(
            "the watchdog {} cannot be stopped once started (nowayout): a node halted with \
             cmhaltnode would be reset",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pet_is_rounded_down_to_whole_seconds_and_skipped_below_one() {
        assert_eq!(device_seconds(Duration::from_millis(12_999)), Some(12));
        assert_eq!(device_seconds(Duration::from_secs(1)), Some(1));
        assert_eq!(device_seconds(Duration::from_millis(999)), None);
        assert_eq!(device_seconds(Duration::ZERO), None);
    }

    #[test]
    fn the_fast_profile_cannot_use_a_device() {
        assert!(check_horizon(Duration::from_millis(750)).is_err());
        assert!(check_horizon(Duration::from_millis(1499)).is_err());
        assert!(check_horizon(Duration::from_secs(2)).is_ok());
    }

    #[test]
    fn a_file_that_is_not_a_watchdog_is_refused_and_left_as_it_was() {
        let dir = std::env::temp_dir().join(format!("cimguard-watchdog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("not-a-watchdog");
        std::fs::write(&path, b"data").unwrap();
        let error = WatchdogDevice::open(&path).unwrap_err();
        assert!(error.contains("is not a watchdog device"), "{error}");
        assert_eq!(std::fs::read(&path).unwrap(), b"data");
        let missing = dir.join("missing");
        let error = WatchdogDevice::open(&missing).unwrap_err();
        assert!(error.contains("cannot open the watchdog"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
