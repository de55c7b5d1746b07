//! The guest's memory allocator: size classes for small blocks, the system allocator (wasi-libc's
//! dlmalloc) for the rest. Installed as the global allocator of every job built with the SDK
//! (cargo feature `task-allocator`, on by default).
//!
//! Design choice: a dataflow makes millions of small, short-lived allocations (a `String` per
//! line, a key and a `Vec` per record) and frees most of them soon after, and each task runs in
//! an instance of its own that is discarded when the task ends. So this allocator never gives
//! memory back and never merges free blocks: blocks of up to [`MAX_SMALL`] bytes belong to size
//! classes (multiples of 8 bytes); freeing one pushes it on its class's free list, allocating
//! pops the list or carves a new block off a [`CHUNK`] taken from dlmalloc. Rust passes the size
//! to `dealloc`, so blocks carry no header. dlmalloc's free, by contrast, reads the block's
//! header and its neighbours' to merge them, cache misses when the block is old.
//!
//! The cost is memory: a freed block is reused only for its own size class, so a task that frees
//! many blocks of one size and then allocates many of another holds both. Only blocks of up to
//! [`MAX_SMALL`] bytes are affected; big buffers go to dlmalloc and are given back as usual.
//!
//! Measured on the web-log benchmark (256 MB, one worker, two runs side by side on the two cores
//! to cancel the machine's noise): about 12% less time than dlmalloc alone. `talc` measured no
//! faster than dlmalloc there.
//!
//! A job that sets a `#[global_allocator]` of its own must turn the feature off
//! (`weft = { default-features = false }`): a program cannot link two global allocators.

use std::alloc::{GlobalAlloc, Layout};
use std::ptr;

/// Largest block served from the size classes.
pub(crate) const MAX_SMALL: usize = 512;
/// Size-class granularity and the alignment of every small block.
const GRAIN: usize = 8;
const CLASSES: usize = MAX_SMALL / GRAIN;
/// Bytes taken from the system allocator at a time to carve new small blocks from.
pub(crate) const CHUNK: usize = 64 << 10;

/// The allocator's state: a free list per size class and the chunk being carved.
pub(crate) struct SizeClasses {
    /// Head of each class's free list; a free block holds the pointer to the next one.
    free: [*mut u8; CLASSES],
    /// The unused part of the current chunk: `next..end`.
    next: *mut u8,
    end: *mut u8,
}

/// The size class of a layout, or `None` for blocks left to the system allocator.
fn class_of(size: usize, align: usize) -> Option<usize> {
    (size > 0 && size <= MAX_SMALL && align <= GRAIN).then(|| (size - 1) / GRAIN)
}

impl SizeClasses {
    pub(crate) const fn new() -> SizeClasses {
        SizeClasses {
            free: [ptr::null_mut(); CLASSES],
            next: ptr::null_mut(),
            end: ptr::null_mut(),
        }
    }

    /// # Safety
    /// As `GlobalAlloc::alloc`; `system` must be the same allocator for every call.
    pub(crate) unsafe fn alloc(&mut self, layout: Layout, system: &impl GlobalAlloc) -> *mut u8 {
        let Some(class) = class_of(layout.size(), layout.align()) else {
            // SAFETY: forwarded with the caller's guarantees.
            return unsafe { system.alloc(layout) };
        };
        let head = self.free[class];
        if !head.is_null() {
            // SAFETY: a free block of this class stores the next free block's address.
            self.free[class] = unsafe { head.cast::<*mut u8>().read() };
            return head;
        }
        let size = (class + 1) * GRAIN;
        if (self.end as usize - self.next as usize) < size {
            // What is left of the old chunk (less than one block of this class) is abandoned.
            let chunk = Layout::from_size_align(CHUNK, GRAIN).expect("a valid chunk layout");
            // SAFETY: a non-zero size.
            let start = unsafe { system.alloc(chunk) };
            if start.is_null() {
                return start;
            }
            self.next = start;
            // SAFETY: one past the end of the chunk just allocated.
            self.end = unsafe { start.add(CHUNK) };
        }
        let block = self.next;
        // SAFETY: `size` bytes are left in the chunk (checked above).
        self.next = unsafe { block.add(size) };
        block
    }

    /// `alloc`, with the block's bytes zeroed.
    ///
    /// # Safety
    /// As `GlobalAlloc::alloc_zeroed`; `system` must be the same allocator for every call.
    pub(crate) unsafe fn alloc_zeroed(
        &mut self,
        layout: Layout,
        system: &impl GlobalAlloc,
    ) -> *mut u8 {
        if class_of(layout.size(), layout.align()).is_none() {
            // dlmalloc knows when fresh memory is already zero.
            // SAFETY: forwarded with the caller's guarantees.
            return unsafe { system.alloc_zeroed(layout) };
        }
        // SAFETY: as above. A reused block holds a free-list link, so it is always zeroed.
        let block = unsafe { self.alloc(layout, system) };
        if !block.is_null() {
            // SAFETY: the block has at least `layout.size()` bytes.
            unsafe { ptr::write_bytes(block, 0, layout.size()) };
        }
        block
    }

    /// # Safety
    /// As `GlobalAlloc::dealloc`, with the same `system` as the allocation.
    pub(crate) unsafe fn dealloc(
        &mut self,
        block: *mut u8,
        layout: Layout,
        system: &impl GlobalAlloc,
    ) {
        match class_of(layout.size(), layout.align()) {
            Some(class) => {
                // SAFETY: the block is ours, at least 8 bytes and 8-aligned, and no longer used.
                unsafe { block.cast::<*mut u8>().write(self.free[class]) };
                self.free[class] = block;
            }
            // SAFETY: forwarded with the caller's guarantees.
            None => unsafe { system.dealloc(block, layout) },
        }
    }

    /// # Safety
    /// As `GlobalAlloc::realloc`, with the same `system` as the allocation.
    pub(crate) unsafe fn realloc(
        &mut self,
        block: *mut u8,
        layout: Layout,
        new_size: usize,
        system: &impl GlobalAlloc,
    ) -> *mut u8 {
        let old = class_of(layout.size(), layout.align());
        let new = class_of(new_size, layout.align());
        match (old, new) {
            // Both big: dlmalloc may grow the block in place.
            // SAFETY: forwarded with the caller's guarantees.
            (None, None) => unsafe { system.realloc(block, layout, new_size) },
            // The same class: the block already has room.
            (Some(a), Some(b)) if a == b => block,
            _ => {
                // SAFETY: `new_size` is non-zero and, with the old alignment, a valid layout
                // (the caller's guarantees).
                let new_layout =
                    unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
                // SAFETY: as above.
                let moved = unsafe { self.alloc(new_layout, system) };
                if !moved.is_null() {
                    // SAFETY: both blocks are live and distinct, each at least this long.
                    unsafe {
                        ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                        self.dealloc(block, layout, system);
                    }
                }
                moved
            }
        }
    }
}

/// The global allocator of a guest: [`SizeClasses`] over wasi-libc's allocator.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
pub(crate) struct TaskAllocator(std::cell::UnsafeCell<SizeClasses>);

#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
impl TaskAllocator {
    pub(crate) const fn new() -> TaskAllocator {
        TaskAllocator(std::cell::UnsafeCell::new(SizeClasses::new()))
    }
}

// SAFETY: wasm32 without the atomics feature has a single thread, so the state is never shared.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
unsafe impl Sync for TaskAllocator {}

// SAFETY: each method forwards to `SizeClasses` with its own guarantees; the state is only ever
// borrowed for the duration of one call, and calls cannot overlap (one thread, and the
// allocator does not call back into itself: its system allocator is a different one).
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
unsafe impl GlobalAlloc for TaskAllocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { (*self.0.get()).alloc(layout, &std::alloc::System) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        unsafe { (*self.0.get()).alloc_zeroed(layout, &std::alloc::System) }
    }

    #[inline]
    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        unsafe { (*self.0.get()).dealloc(block, layout, &std::alloc::System) }
    }

    #[inline]
    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        unsafe { (*self.0.get()).realloc(block, layout, new_size, &std::alloc::System) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::System;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn small_blocks_are_aligned_disjoint_and_reused_within_their_class() {
        let mut a = SizeClasses::new();
        unsafe {
            let mut live = Vec::new();
            for size in [1, 7, 8, 9, 16, 100, 512] {
                for _ in 0..3 {
                    let p = a.alloc(layout(size, 1), &System);
                    assert!(!p.is_null() && (p as usize).is_multiple_of(GRAIN), "size {size}");
                    ptr::write_bytes(p, size as u8, size);
                    live.push((p, size));
                }
            }
            // Every block still holds what was written to it: none overlaps another.
            for &(p, size) in &live {
                assert!(std::slice::from_raw_parts(p, size).iter().all(|&b| b == size as u8));
            }
            // A freed block comes back for a size of the same class, not for another class.
            let (p, size) = live[9]; // 9 bytes: the 16-byte class
            a.dealloc(p, layout(size, 1), &System);
            assert_ne!(a.alloc(layout(24, 1), &System), p);
            assert_eq!(a.alloc(layout(16, 8), &System), p);
        }
    }

    #[test]
    fn zeroed_blocks_are_zero_also_when_reused() {
        let mut a = SizeClasses::new();
        unsafe {
            for l in [layout(24, 8), layout(MAX_SMALL * 4, 8)] {
                let p = a.alloc(l, &System);
                ptr::write_bytes(p, 0xab, l.size());
                a.dealloc(p, l, &System);
                let q = a.alloc_zeroed(l, &System);
                if l.size() <= MAX_SMALL {
                    assert_eq!(q, p, "the freed block is reused");
                }
                let bytes = std::slice::from_raw_parts(q, l.size());
                assert!(bytes.iter().all(|&b| b == 0), "{} bytes", l.size());
                a.dealloc(q, l, &System);
            }
        }
    }

    #[test]
    fn big_and_over_aligned_blocks_go_to_the_system_allocator() {
        let mut a = SizeClasses::new();
        unsafe {
            for l in [layout(MAX_SMALL + 1, 1), layout(64, 16), layout(1 << 20, 8)] {
                let p = a.alloc(l, &System);
                assert!(!p.is_null() && (p as usize).is_multiple_of(l.align()));
                ptr::write_bytes(p, 1, l.size());
                a.dealloc(p, l, &System);
            }
            assert!(a.free.iter().all(|f| f.is_null()), "a big block went onto a free list");
        }
    }

    #[test]
    fn realloc_keeps_the_contents_across_classes_and_into_big_blocks() {
        let mut a = SizeClasses::new();
        unsafe {
            let mut p = a.alloc(layout(3, 1), &System);
            ptr::copy_nonoverlapping(b"abc".as_ptr(), p, 3);
            let mut size = 3;
            // Grow like a `Vec` does, from a small class to a big block and back down.
            for new_size in [5, 8, 40, 500, 4000, 100_000, 300, 2] {
                let q = a.realloc(p, layout(size, 1), new_size, &System);
                assert!(!q.is_null());
                let kept = size.min(new_size).min(3);
                assert_eq!(std::slice::from_raw_parts(q, kept), &b"abc"[..kept], "{new_size}");
                if new_size > size {
                    ptr::write_bytes(q.add(size), 0xee, new_size - size);
                }
                (p, size) = (q, new_size);
            }
            a.dealloc(p, layout(size, 1), &System);
        }
    }

    #[test]
    fn chunks_are_carved_until_they_run_out() {
        let mut a = SizeClasses::new();
        unsafe {
            let n = 3 * CHUNK / MAX_SMALL;
            let blocks: Vec<*mut u8> =
                (0..n).map(|_| a.alloc(layout(MAX_SMALL, 8), &System)).collect();
            let mut sorted = blocks.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), n, "a block was handed out twice");
            for w in sorted.windows(2) {
                assert!(w[1] as usize - w[0] as usize >= MAX_SMALL, "blocks overlap");
            }
        }
    }
}
