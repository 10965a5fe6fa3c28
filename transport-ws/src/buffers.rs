//! Spare I/O buffers, kept per thread and lent to connections for one turn.
//!
//! A connection gives its buffers back whenever they empty, so an idle one holds none.
//! Allocating afresh every turn instead costs a malloc and a free per read and per write,
//! plus a reallocation each time a growing batch of frames outgrows its buffer: together
//! with the rest of the allocator's work, the largest item of a `perf` profile at
//! capacity. The connection tasks of one thread (an HTTP worker) run one at a time, so
//! a few spares per thread serve all of them.
//!
//! Used by `wire.rs`'s reader and writer only. It must not hand out a buffer that still
//! holds data, nor keep one that grew large.

use std::cell::RefCell;

use bytes::BytesMut;

/// Capacity of a new buffer: a turn's frames usually fit in it.
const INITIAL: usize = 4096;
/// A buffer that grew past this (one very large turn) is freed rather than kept.
const KEEP_AT_MOST: usize = 64 * 1024;
/// Spares kept per thread.
const SPARES: usize = 4;

thread_local! {
    static SPARE: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer with room for at least [`INITIAL`] bytes.
pub(crate) fn take() -> BytesMut {
    SPARE
        .try_with(|spare| spare.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or_else(|| BytesMut::with_capacity(INITIAL))
}

/// Gives back a buffer that is no longer needed (its content is discarded).
pub(crate) fn give(mut buf: BytesMut) {
    buf.clear();
    // Back to the start of its allocation (written-out bytes are reclaimed); a buffer
    // still shared with a frame payload gets a new allocation instead, which is rare.
    buf.reserve(INITIAL);
    if buf.capacity() > KEEP_AT_MOST {
        return;
    }
    // During thread exit the spares may be gone already: then the buffer is just freed.
    let _ = SPARE.try_with(|spare| {
        let mut spare = spare.borrow_mut();
        if spare.len() < SPARES {
            spare.push(buf);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::{give, take, INITIAL, KEEP_AT_MOST};
    use bytes::Buf;

    #[test]
    fn a_buffer_given_back_is_lent_again_whole_and_empty() {
        let mut buf = take();
        buf.extend_from_slice(&[7; 3000]);
        buf.advance(3000);
        let at = buf.as_ptr() as usize - 3000;
        give(buf);
        let again = take();
        assert!(again.is_empty());
        assert!(again.capacity() >= INITIAL);
        assert_eq!(
            again.as_ptr() as usize,
            at,
            "the same allocation, from its start"
        );
    }

    #[test]
    fn oversized_buffers_are_not_kept() {
        let spares = || super::SPARE.with(|spare| spare.borrow().len());
        let mut big = take();
        big.reserve(KEEP_AT_MOST * 2);
        give(big);
        assert_eq!(spares(), 0);
        give(take());
        assert_eq!(spares(), 1);
    }
}
