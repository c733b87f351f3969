//! The few Linux system calls std does not offer, behind safe wrappers: atomic exchange of two
//! paths, a private mount namespace, bind and tmpfs mounts, and the effective uid.
//! Each is a thin FFI call into the C library that std already links.

use std::ffi::{c_char, c_int, c_ulong, c_void, CString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

extern "C" {
    fn renameat2(
        olddirfd: c_int,
        oldpath: *const c_char,
        newdirfd: c_int,
        newpath: *const c_char,
        flags: u32,
    ) -> c_int;
    fn unshare(flags: c_int) -> c_int;
    fn mount(
        source: *const c_char,
        target: *const c_char,
        fstype: *const c_char,
        flags: c_ulong,
        data: *const c_void,
    ) -> c_int;
    fn geteuid() -> u32;
}

const AT_FDCWD: c_int = -100;
const RENAME_EXCHANGE: u32 = 1 << 1;
const CLONE_NEWNS: c_int = 0x0002_0000;
const MS_RDONLY: c_ulong = 1;
const MS_NOSUID: c_ulong = 2;
const MS_NODEV: c_ulong = 4;
const MS_REMOUNT: c_ulong = 32;
const MS_BIND: c_ulong = 4096;
const MS_REC: c_ulong = 16384;
const MS_PRIVATE: c_ulong = 1 << 18;

fn cstr(p: &Path) -> io::Result<CString> {
    Ok(CString::new(p.as_os_str().as_bytes())?)
}

fn check(rc: c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Atomically swaps two directory entries.
pub fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    let (a, b) = (cstr(a)?, cstr(b)?);
    // SAFETY: valid NUL-terminated strings that outlive the call.
    check(unsafe { renameat2(AT_FDCWD, a.as_ptr(), AT_FDCWD, b.as_ptr(), RENAME_EXCHANGE) })
}

/// Moves this (single-threaded) process into a new mount namespace whose mounts do not
/// propagate back to the host; they vanish when its last process exits.
pub fn private_mount_namespace() -> io::Result<()> {
    // SAFETY: plain system calls with constant arguments and a static string.
    check(unsafe { unshare(CLONE_NEWNS) })?;
    let root = CString::new("/").unwrap();
    check(unsafe {
        mount(
            std::ptr::null(),
            root.as_ptr(),
            std::ptr::null(),
            MS_REC | MS_PRIVATE,
            std::ptr::null(),
        )
    })
}

/// Binds `source` at `target` (recursively), then makes it read-only if asked.
pub fn bind(source: &Path, target: &Path, read_only: bool) -> io::Result<()> {
    let (s, t) = (cstr(source)?, cstr(target)?);
    // SAFETY: valid NUL-terminated strings that outlive the calls; null for unused arguments.
    check(unsafe {
        mount(
            s.as_ptr(),
            t.as_ptr(),
            std::ptr::null(),
            MS_BIND | MS_REC,
            std::ptr::null(),
        )
    })?;
    if read_only {
        check(unsafe {
            mount(
                std::ptr::null(),
                t.as_ptr(),
                std::ptr::null(),
                MS_REMOUNT | MS_BIND | MS_RDONLY,
                std::ptr::null(),
            )
        })?;
    }
    Ok(())
}

/// Mounts a fresh tmpfs at `target`.
pub fn tmpfs(target: &Path) -> io::Result<()> {
    let t = cstr(target)?;
    let fs = CString::new("tmpfs").unwrap();
    let opts = CString::new("mode=0755").unwrap();
    // SAFETY: valid NUL-terminated strings that outlive the call.
    check(unsafe {
        mount(
            fs.as_ptr(),
            t.as_ptr(),
            fs.as_ptr(),
            MS_NOSUID | MS_NODEV,
            opts.as_ptr().cast(),
        )
    })
}

pub fn effective_uid() -> u32 {
    // SAFETY: geteuid cannot fail and touches no memory of ours.
    unsafe { geteuid() }
}
