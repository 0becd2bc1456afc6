//! The schema cimguard ships, compiled into the binary.
