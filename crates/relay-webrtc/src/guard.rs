//! Panic containment for str0m calls.
//!
//! str0m is one `Rtc` per session, and a panic inside one (an input its authors did
//! not foresee) must end that session, not the media thread every lesson runs on.
//! Every call into a session's `Rtc` that can be reached from outside input runs
//! through [`contain`]; the edge then drops the session without touching its `Rtc`
//! again (its state is unknown after a panic).

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Run `f`; `Err(message)` if it panicked.
pub fn contain<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|e| {
        e.downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| e.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_its_message() {
        assert_eq!(contain(|| 7), Ok(7));
        assert_eq!(
            contain(|| -> u8 { panic!("boom {}", 1) }),
            Err("boom 1".into())
        );
        assert_eq!(contain(|| -> u8 { panic!("static") }), Err("static".into()));
    }
}
