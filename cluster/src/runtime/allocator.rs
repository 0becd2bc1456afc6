//! The process's memory allocator, tuned so that a long-running daemon or agent does not keep
//! what a burst of large allocations took.

/// Allocations of at least this size get a mapping of their own, unmapped when freed.
pub const MMAP_THRESHOLD_BYTES: i32 = 1 << 20;

/// Makes glibc hand large freed allocations back to the system at once. glibc serves an
/// allocation of at least its mmap threshold from a mapping of its own, but each time such a
/// mapping is freed it raises the threshold to that size (up to 32 MiB): later ones then come
/// from the calling thread's arena, which keeps them when they are freed. A password check
/// takes 19 MiB of argon2 memory on a blocking thread; when the 64-client load soak's cached
/// credentials expired, every 5 minutes, each of the four concurrent checks left its thread's
/// arena 19 MiB larger, and the agent grew by 56-76 MiB each time. A fixed threshold
/// (`mallopt(M_MMAP_THRESHOLD)`, which also ends the raising) keeps such allocations mapped.
/// No crate wraps mallopt; libc's binding is the call. Call it early in `main`, before other
/// threads start. Other C libraries (and other allocators) are left as they are.
pub fn return_large_allocations() -> Result<(), String> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt sets one of glibc's allocator parameters; it takes no pointer, and
        // glibc serializes it against allocations in progress.
        #[allow(unsafe_code)]
        let taken =
            unsafe { nix::libc::mallopt(nix::libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) };
        if taken != 1 {
            return Err("mallopt(M_MMAP_THRESHOLD) refused".into());
        }
    }
    Ok(())
}
