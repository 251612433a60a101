//! Small FFI helpers shared by the safe wrappers.

use std::ffi::{c_char, CStr};

/// Copies a C string owned by llama.cpp into a Rust `String` (lossy UTF-8); empty for null.
///
/// # Safety
/// `ptr` must be null or point to a NUL-terminated string valid for the duration of the call.
pub(crate) unsafe fn cstr_to_string(ptr: *const c_char) -> String {
    if ptr.is_null() {
        return String::new();
    }
    // SAFETY: non-null and NUL-terminated per this function's contract.
    unsafe { CStr::from_ptr(ptr) }.to_string_lossy().into_owned()
}

/// Calls a llama.cpp "write into buf, return length" function, growing the buffer as needed.
pub(crate) fn read_c_buf(mut f: impl FnMut(*mut c_char, usize) -> i32) -> Option<String> {
    let mut buf = vec![0u8; 256];
    loop {
        let n = f(buf.as_mut_ptr().cast(), buf.len());
        if n < 0 {
            return None;
        }
        let n = n as usize;
        if n < buf.len() {
            buf.truncate(n);
            return Some(String::from_utf8_lossy(&buf).into_owned());
        }
        buf.resize(n + 1, 0);
    }
}
