//! The server binary's allocator: mimalloc, asked for a plain block whenever every block already
//! has the alignment a layout needs.
//!
//! `mimalloc::MiMalloc` passes every allocation to `mi_malloc_aligned`. In mimalloc 3 that call
//! tries a fast path, and when it misses (the size class's page is full, or the block is over
//! 1 KiB) it takes a slower path. That path over-allocates unless the block size is a power of
//! two, and marks the page as holding interior pointers, which makes each later free of it dearer.
//! A race refusal made about 60 allocations; the aligned entry point cost it about 4,900 of
//! its 51,600 instructions (`bench/callgrind-race.sh`, bench/RESULTS.md).
//!
//! Every mimalloc block starts on a word boundary: block sizes are whole words, and pages start
//! aligned. So a layout aligned to a word at most is served by `mi_malloc`, `mi_zalloc` and
//! `mi_realloc`, as std's `System` serves layouts within `malloc`'s guarantee by `malloc`. Any
//! larger alignment still goes through mimalloc's aligned calls. Blocks of either kind are freed
//! by `mi_free`.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

/// The alignment every mimalloc block has.
const WORD: usize = std::mem::size_of::<usize>();

/// See the module's documentation.
pub struct Allocator;

impl Allocator {
    fn plain(layout: &Layout) -> bool {
        layout.align() <= WORD
    }
}

// SAFETY: each call forwards to the mimalloc function for the same request: a plain block only
// where every mimalloc block meets the layout's alignment (`WORD`, see the module's
// documentation), an aligned one otherwise. mimalloc returns null when out of memory, as
// `GlobalAlloc` requires, and `mi_free` frees both kinds of block.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if Self::plain(&layout) {
            libmimalloc_sys::mi_malloc(layout.size()) as *mut u8
        } else {
            libmimalloc_sys::mi_malloc_aligned(layout.size(), layout.align()) as *mut u8
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if Self::plain(&layout) {
            libmimalloc_sys::mi_zalloc(layout.size()) as *mut u8
        } else {
            libmimalloc_sys::mi_zalloc_aligned(layout.size(), layout.align()) as *mut u8
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        libmimalloc_sys::mi_free(ptr as *mut c_void);
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if Self::plain(&layout) {
            libmimalloc_sys::mi_realloc(ptr as *mut c_void, new_size) as *mut u8
        } else {
            libmimalloc_sys::mi_realloc_aligned(ptr as *mut c_void, new_size, layout.align())
                as *mut u8
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every size a burst allocates, and past the small and medium size classes, at every
    /// alignment up to a page: each block is aligned as asked, holds what is written to it,
    /// keeps it through `realloc` (growing and shrinking), and is freed. Many blocks of one layout
    /// are held at once, so that consecutive blocks of a size class are checked, not only the
    /// first of a page.
    #[test]
    fn blocks_are_aligned_as_asked_and_keep_their_bytes() {
        let a = Allocator;
        let sizes = (1..=80).chain([
            96, 100, 127, 128, 200, 1000, 1024, 1025, 1500, 4097, 70_000, 600_000,
        ]);
        for size in sizes {
            for align in [1, 2, 4, 8, 16, 32, 64, 128, 4096] {
                let layout = Layout::from_size_align(size, align).expect("a layout");
                let mut held = Vec::new();
                let blocks = if size <= 4097 { 40 } else { 3 };
                for i in 0..blocks {
                    // SAFETY: `layout` has a non-zero size; each block is written within its
                    // size, read back, and freed once with the layout it was allocated with
                    unsafe {
                        let p = if i % 2 == 0 {
                            a.alloc(layout)
                        } else {
                            a.alloc_zeroed(layout)
                        };
                        assert!(!p.is_null(), "{size} bytes aligned {align}");
                        assert_eq!(p as usize % align, 0, "{size} bytes aligned {align}");
                        if i % 2 == 1 {
                            assert!((0..size).all(|k| *p.add(k) == 0), "zeroed {size}");
                        }
                        let byte = (i % 251) as u8;
                        std::ptr::write_bytes(p, byte, size);
                        held.push((p, byte));
                    }
                }
                for (p, byte) in held {
                    // SAFETY: as above; `realloc` is given the block's own layout
                    unsafe {
                        let grown = a.realloc(p, layout, size * 3);
                        assert!(!grown.is_null());
                        assert_eq!(grown as usize % align, 0, "grown {size} aligned {align}");
                        assert!((0..size).all(|k| *grown.add(k) == byte), "grown {size}");
                        let grown_layout = Layout::from_size_align(size * 3, align).unwrap();
                        let shrunk = a.realloc(grown, grown_layout, size.div_ceil(2));
                        assert_eq!(shrunk as usize % align, 0, "shrunk {size} aligned {align}");
                        assert!((0..size.div_ceil(2)).all(|k| *shrunk.add(k) == byte));
                        a.dealloc(
                            shrunk,
                            Layout::from_size_align(size.div_ceil(2), align).unwrap(),
                        );
                    }
                }
            }
        }
    }
}
