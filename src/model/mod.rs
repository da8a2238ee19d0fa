//! The exact kernel model: the superblock, pages, locks and the oracle
//! records, as one small fixed-size value, and the kernel actions on it.
//!
//! Each method here is the effect of one atomic step (docs/semantics.md). Guards
//! (whether a step may run) are the `can_*` methods; effects assume the guard
//! held. This module knows nothing of the policy language, of scheduling, or
//! of IO.

use crate::ir::{Buffers, Level, LockMode, PageInit, Pte, WriterLevel};

/// Most threads a scenario may have (the flusher included).
pub const THREADS_MAX: usize = crate::ir::limits::THREADS_MAX;
/// Most pages a scenario may have.
pub const PAGES_MAX: usize = crate::ir::limits::PAGES_MAX;
/// Most fault kinds (registry size).
pub const FAULT_KINDS_MAX: usize = 8;

/// A thread's index in its scenario.
pub type ThreadId = usize;

/// `PageState::flags` bits.
const PAGE_CACHED: u8 = 1;
const PAGE_PTE_DIRTY: u8 = 2;
const PAGE_DIRTY: u8 = 4;
/// Every `PageState::flags` bit: the packed state encoding
/// (`engine::pack`) gives the flags this many bits. A new flag must be added
/// here; the encoder checks that no value overflows its width.
pub(crate) const PAGE_FLAGS_ALL: u8 = PAGE_CACHED | PAGE_PTE_DIRTY | PAGE_DIRTY;
/// The `record` bits every program may set (see [`record`]), for the
/// packed encoding; a program whose freeze has a `sync else` may also set
/// [`record::FREEZE_FAILED`] (`Program::records_mask`).
pub(crate) const RECORDS_ALL: u8 = 127;

/// One page and the disk block behind it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PageState {
    pub(crate) flags: u8,
    pub(crate) buffers: u8,
    pub(crate) pte: u8,
    /// 0 when unlocked, else the owning thread + 1 (PG_locked).
    pub(crate) locked_by: u8,
    /// PG_writeback: the threads whose write-out of this page is in flight,
    /// one bit per thread; the page is under writeback while any is set.
    /// A thread's bit is set by its `clean` inside a `writeback` body
    /// (`set_page_writeback` / `folio_start_writeback`) and cleared when it
    /// leaves that body, however it leaves (`end_page_writeback` /
    /// `folio_end_writeback`: the I/O has completed). The bit per thread,
    /// rather than one bit, keeps "cleared when the thread that set it
    /// leaves" exact for a policy that lets two write-outs of one page
    /// overlap (the kernel never does: `folio_prepare_writeback` waits for
    /// or skips a page under writeback before it starts another).
    pub(crate) writeback_by: u8,
    pub mem: u8,
    pub disk: u8,
}

impl PageState {
    pub fn from_init(init: &PageInit) -> PageState {
        let mut page = PageState {
            flags: 0,
            buffers: init.buffers as u8,
            pte: init.pte as u8,
            locked_by: 0,
            writeback_by: 0,
            mem: init.mem,
            disk: init.disk,
        };
        page.set_flag(PAGE_CACHED, init.cached);
        page.set_flag(PAGE_PTE_DIRTY, init.pte_dirty);
        page.set_flag(PAGE_DIRTY, init.dirty);
        page
    }

    fn set_flag(&mut self, bit: u8, on: bool) {
        if on {
            self.flags |= bit;
        } else {
            self.flags &= !bit;
        }
    }

    pub fn cached(&self) -> bool {
        self.flags & PAGE_CACHED != 0
    }
    pub fn pte_dirty(&self) -> bool {
        self.flags & PAGE_PTE_DIRTY != 0
    }
    pub fn dirty(&self) -> bool {
        self.flags & PAGE_DIRTY != 0
    }
    pub fn buffers(&self) -> Buffers {
        match self.buffers {
            0 => Buffers::Unmapped,
            1 => Buffers::Delayed,
            _ => Buffers::Mapped,
        }
    }
    pub fn pte(&self) -> Pte {
        match self.pte {
            0 => Pte::None,
            1 => Pte::Readonly,
            _ => Pte::Writable,
        }
    }
    /// The thread holding PG_locked, if any.
    pub fn locked_by(&self) -> Option<ThreadId> {
        (self.locked_by != 0).then(|| self.locked_by as usize - 1)
    }
    /// PG_writeback: some write-out of this page is in flight.
    pub fn writeback(&self) -> bool {
        self.writeback_by != 0
    }
    /// The threads whose write-out of this page is in flight, as a bit mask.
    pub fn writeback_by(&self) -> u8 {
        self.writeback_by
    }
}

/// `State::flags` bits: the oracle records.
pub mod record {
    /// The frozen window is open (`set_level complete` … `set_level unfrozen`).
    pub const WINDOW_OPEN: u8 = 1;
    /// The frozen window has opened at least once (the `await frozen` latch).
    pub const WINDOW_EVER: u8 = 2;
    /// A submit happened while the frozen window was open.
    pub const FROZEN_WRITE: u8 = 4;
    /// A fault ended with an error (`fail sigbus`).
    pub const USER_ERROR: u8 = 8;
    /// When `complete` was set, some page was dirty or had a writable pte.
    pub const DIRTY_AT_FREEZE: u8 = 16;
    /// A freeze was refused with EBUSY: the filesystem was not unfrozen
    /// (`freeze_super`).
    pub const FREEZE_REFUSED: u8 = 32;
    /// A thaw was refused with EINVAL: the filesystem was not frozen
    /// (`thaw_super`).
    pub const THAW_REFUSED: u8 = 64;
    /// A freeze's `sync else` found a failed write: the freeze's sync
    /// returned -EIO (`sync_filesystem` in `freeze_super`), so FIFREEZE
    /// fails with EIO when the policy's `else` gives up the freeze.
    pub const FREEZE_FAILED: u8 = 128;
}

/// The whole state of the model: cheap to copy, compare and hash.
///
/// Unused thread and page slots stay zero, so equality and hashing over the
/// full arrays are exact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct State {
    /// Each thread's position in its compiled program.
    pub pc: [u16; THREADS_MAX],
    /// `sb->s_writers.frozen`.
    pub(crate) level: u8,
    /// Threads holding `s_umount` for reading (bit per thread).
    pub(crate) umount_readers: u8,
    /// 0, or the thread holding `s_umount` for writing + 1.
    pub(crate) umount_writer: u8,
    /// Threads inside `sb_start L`, per writer level.
    pub(crate) writers: [u8; 3],
    pub pages: [PageState; PAGES_MAX],
    /// Oracle records, see [`record`].
    pub records: u8,
    /// Pages a user has stored to (bit per page).
    pub(crate) stored_mask: u8,
    /// The last value a user stored in each page.
    pub(crate) stored: [u8; PAGES_MAX],
    /// How many times each fault kind has fired in this run.
    pub faults_fired: [u8; FAULT_KINDS_MAX],
}

impl State {
    /// The initial state of a scenario: every thread at pc 0, unfrozen, no locks.
    pub fn new(pages: &[PageInit]) -> State {
        assert!(pages.len() <= PAGES_MAX);
        let mut state = State {
            pc: [0; THREADS_MAX],
            level: Level::Unfrozen as u8,
            umount_readers: 0,
            umount_writer: 0,
            writers: [0; 3],
            pages: [PageState::default(); PAGES_MAX],
            records: 0,
            stored_mask: 0,
            stored: [0; PAGES_MAX],
            faults_fired: [0; FAULT_KINDS_MAX],
        };
        for (slot, init) in state.pages.iter_mut().zip(pages) {
            *slot = PageState::from_init(init);
        }
        state
    }

    pub fn level(&self) -> Level {
        Level::ALL[self.level as usize]
    }

    pub fn writers(&self, level: WriterLevel) -> u8 {
        self.writers[level as usize]
    }

    pub fn umount_writer(&self) -> Option<ThreadId> {
        (self.umount_writer != 0).then(|| self.umount_writer as usize - 1)
    }

    pub fn umount_readers(&self) -> u8 {
        self.umount_readers
    }

    pub fn has_record(&self, bit: u8) -> bool {
        self.records & bit != 0
    }

    /// The last value a user stored in `page`, if any.
    pub fn stored(&self, page: usize) -> Option<u8> {
        (self.stored_mask & (1 << page) != 0).then(|| self.stored[page])
    }

    // ---- s_umount -------------------------------------------------------

    /// Guard of `lock umount MODE`: `down_read` needs no writer; `down_write`
    /// needs no writer and no readers.
    pub fn can_lock_umount(&self, mode: LockMode) -> bool {
        match mode {
            LockMode::Read => self.umount_writer == 0,
            LockMode::Write => self.umount_writer == 0 && self.umount_readers == 0,
        }
    }

    /// `down_read`/`down_write(&sb->s_umount)`.
    pub fn lock_umount(&mut self, thread: ThreadId, mode: LockMode) {
        debug_assert!(self.can_lock_umount(mode));
        match mode {
            LockMode::Read => self.umount_readers |= 1 << thread,
            LockMode::Write => self.umount_writer = thread as u8 + 1,
        }
    }

    /// `up_read`/`up_write`: release whatever `thread` holds.
    pub fn unlock_umount(&mut self, thread: ThreadId) {
        if self.umount_writer == thread as u8 + 1 {
            self.umount_writer = 0;
        }
        self.umount_readers &= !(1 << thread);
    }

    // ---- freeze level and s_writers -------------------------------------

    /// Guard of `wait_unfrozen L` and `sb_start L`: `level < L`.
    pub fn below(&self, level: Level) -> bool {
        self.level < level as u8
    }

    /// `sb_start_write`/`sb_start_pagefault`/`sb_start_intwrite` after the check.
    pub fn sb_start(&mut self, level: WriterLevel) {
        self.writers[level as usize] = self.writers[level as usize].saturating_add(1);
    }

    /// `sb_end_*`.
    pub fn sb_end(&mut self, level: WriterLevel) {
        self.writers[level as usize] = self.writers[level as usize].saturating_sub(1);
    }

    /// Records an oracle event that has no other effect (a refused freeze or
    /// thaw, see [`record`]).
    pub fn record(&mut self, bit: u8) {
        self.records |= bit;
    }

    /// `sb->s_writers.frozen = L`, opening or closing the frozen window and
    /// recording dirty-at-freeze when `complete` is set.
    pub fn set_level(&mut self, level: Level, pages_count: usize) {
        self.level = level as u8;
        match level {
            Level::Complete => {
                self.records |= record::WINDOW_OPEN | record::WINDOW_EVER;
                let dirty = self.pages[..pages_count]
                    .iter()
                    .any(|p| p.dirty() || p.pte() == Pte::Writable);
                if dirty {
                    self.records |= record::DIRTY_AT_FREEZE;
                }
            }
            Level::Unfrozen => self.records &= !record::WINDOW_OPEN,
            _ => {}
        }
    }

    // ---- pages ------------------------------------------------------------

    /// `trylock_page` as a guard: PG_locked clear.
    pub fn can_lock_page(&self, page: usize) -> bool {
        self.pages[page].locked_by == 0
    }

    /// `lock_page`.
    pub fn lock_page(&mut self, thread: ThreadId, page: usize) {
        debug_assert!(self.can_lock_page(page));
        self.pages[page].locked_by = thread as u8 + 1;
    }

    /// `unlock_page`.
    pub fn unlock_page(&mut self, page: usize) {
        self.pages[page].locked_by = 0;
    }

    /// Unlock `page` if `thread` holds its lock (the end of a fault).
    pub fn unlock_page_if_held(&mut self, thread: ThreadId, page: usize) {
        if self.pages[page].locked_by == thread as u8 + 1 {
            self.pages[page].locked_by = 0;
        }
    }

    /// `set_page_dirty`.
    pub fn mark_dirty(&mut self, page: usize) {
        self.pages[page].set_flag(PAGE_DIRTY, true);
    }

    /// Block allocation: buffers become mapped.
    pub fn allocate(&mut self, page: usize) {
        self.pages[page].buffers = Buffers::Mapped as u8;
    }

    /// Delalloc reservation: buffers become delayed.
    pub fn reserve(&mut self, page: usize) {
        self.pages[page].buffers = Buffers::Delayed as u8;
    }

    /// `page_mkclean` + `clear_page_dirty_for_io`: fold the pte's dirty bit
    /// into PG_dirty, write-protect a writable pte, then clear PG_dirty.
    /// Inside a `writeback` body the same step also starts the write-out,
    /// [`State::start_writeback`].
    pub fn clean(&mut self, page: usize) {
        let p = &mut self.pages[page];
        p.flags &= !PAGE_PTE_DIRTY;
        if p.pte == Pte::Writable as u8 {
            p.pte = Pte::Readonly as u8;
        }
        p.flags &= !PAGE_DIRTY;
    }

    /// `set_page_writeback` (`folio_start_writeback`, mm/page-writeback.c):
    /// `thread`'s write-out of `page` is in flight. The filesystem's
    /// writepage sets PG_writeback right after `clear_page_dirty_for_io`,
    /// under the page lock, so the model sets it in `clean`'s step.
    pub fn start_writeback(&mut self, thread: ThreadId, page: usize) {
        self.pages[page].writeback_by |= 1 << thread;
    }

    /// `end_page_writeback` (`folio_end_writeback`, mm/filemap.c): the I/O
    /// of `thread`'s write-out has completed, for every page in `pages` (a
    /// bit mask). The engine calls it on every edge that leaves a
    /// `writeback` body; it is a no-op for a page `thread` did not start.
    pub fn end_writeback(&mut self, thread: ThreadId, pages: u8) {
        let mut pages = pages;
        while pages != 0 {
            let page = pages.trailing_zeros() as usize;
            pages &= pages - 1;
            self.pages[page].writeback_by &= !(1 << thread);
        }
    }

    /// The guard of `sync`'s and `msync`'s per-page step: the page is not
    /// under writeback. The data-integrity sync waits for every page under
    /// writeback before it looks at it again: `folio_wait_writeback` in
    /// `__filemap_fdatawait_range` (mm/filemap.c), reached from
    /// `wait_sb_inodes` (fs/fs-writeback.c) for `sync_filesystem` and from
    /// `file_write_and_wait_range` for `msync(MS_SYNC)`; and
    /// `folio_prepare_writeback` (`write_cache_pages`) waits for it under
    /// WB_SYNC_ALL before it cleans the page again.
    pub fn writeback_settled(&self, page: usize) -> bool {
        !self.pages[page].writeback()
    }

    /// A successful submit: the block gets the page's value. Records a frozen
    /// write when the frozen window is open.
    pub fn submit(&mut self, page: usize) {
        let p = &mut self.pages[page];
        p.disk = p.mem;
        if self.records & record::WINDOW_OPEN != 0 {
            self.records |= record::FROZEN_WRITE;
        }
    }

    /// A submit that failed with an injected I/O error and has no `else`:
    /// the disk is unchanged and the page is redirtied.
    pub fn redirty(&mut self, page: usize) {
        self.pages[page].set_flag(PAGE_DIRTY, true);
    }

    /// The store itself when the pte is writable: one step, no fault.
    pub fn store_through_pte(&mut self, page: usize, value: u8) {
        let p = &mut self.pages[page];
        p.mem = value;
        p.set_flag(PAGE_PTE_DIRTY, true);
        self.record_store(page, value);
    }

    /// A major fault reads the page in from disk (its own step).
    pub fn read_in(&mut self, page: usize) {
        let p = &mut self.pages[page];
        p.set_flag(PAGE_CACHED, true);
        p.mem = p.disk;
    }

    /// The completion of a write fault, in one step: the pte becomes
    /// writable and dirty, the page dirty, the value stored, and the page
    /// unlocked if this thread holds it (VM_FAULT_LOCKED).
    pub fn fault_complete(&mut self, thread: ThreadId, page: usize, value: u8) {
        let p = &mut self.pages[page];
        p.pte = Pte::Writable as u8;
        p.set_flag(PAGE_PTE_DIRTY | PAGE_DIRTY, true);
        p.mem = value;
        self.unlock_page_if_held(thread, page);
        self.record_store(page, value);
    }

    /// `fail sigbus`: the fault ends with an error; nothing is stored.
    pub fn fault_fail(&mut self, thread: ThreadId, page: usize) {
        self.unlock_page_if_held(thread, page);
        self.records |= record::USER_ERROR;
    }

    /// `munmap` (zap_pte_range): fold the pte's dirty bit into PG_dirty and
    /// drop the pte.
    pub fn munmap(&mut self, page: usize) {
        let p = &mut self.pages[page];
        if p.pte_dirty() {
            p.set_flag(PAGE_DIRTY, true);
        }
        p.set_flag(PAGE_PTE_DIRTY, false);
        p.pte = Pte::None as u8;
    }

    /// Memory reclaim drops a page: only a clean, unlocked, unmapped page
    /// that is not under writeback. Reclaim skips a page under writeback
    /// (`shrink_folio_list` in mm/vmscan.c), and neither
    /// `filemap_release_folio` (mm/filemap.c) nor `mapping_evict_folio`
    /// (mm/truncate.c, the invalidate path) lets one go.
    pub fn can_evict(&self, page: usize) -> bool {
        let p = &self.pages[page];
        p.cached()
            && !p.dirty()
            && !p.pte_dirty()
            && p.locked_by == 0
            && p.writeback_by == 0
            && p.pte == Pte::None as u8
    }

    /// Drop a page from the page cache (`cached = false`).
    pub fn evict(&mut self, page: usize) {
        debug_assert!(self.can_evict(page));
        self.pages[page].set_flag(PAGE_CACHED, false);
    }

    fn record_store(&mut self, page: usize, value: u8) {
        self.stored_mask |= 1 << page;
        self.stored[page] = value;
    }

    /// The flusher's wake-up condition: some page dirty and no thread holds
    /// `s_umount` for writing.
    pub fn flusher_may_wake(&self, pages_count: usize) -> bool {
        self.umount_writer == 0 && self.pages[..pages_count].iter().any(|p| p.dirty())
    }

    /// The lost-write oracle's final plain sync: for each page, the value the
    /// disk ends up with after folding `pte_dirty` and writing every dirty page.
    pub fn disk_after_final_sync(&self, page: usize) -> u8 {
        let p = &self.pages[page];
        if p.dirty() || p.pte_dirty() { p.mem } else { p.disk }
    }

    /// Checks the model's invariants; panics (a bug in freezefuzz) if one fails.
    pub fn assert_invariants(&self, threads_count: usize, pages_count: usize) {
        assert!(
            self.level as usize <= Level::Complete as usize,
            "level out of range"
        );
        if self.umount_writer != 0 {
            assert!(
                (self.umount_writer as usize) <= threads_count,
                "s_umount writer is no thread"
            );
            assert_eq!(self.umount_readers, 0, "s_umount held for writing and reading");
        }
        assert!(
            (self.umount_readers as usize) < (1 << threads_count),
            "s_umount reader is no thread"
        );
        for (i, page) in self.pages.iter().enumerate() {
            if i >= pages_count {
                assert_eq!(*page, PageState::default(), "unused page slot changed");
                continue;
            }
            assert!(
                (page.locked_by as usize) <= threads_count,
                "page lock owner is no thread"
            );
            assert!(
                (page.writeback_by as usize) < (1 << threads_count),
                "page under writeback by no thread"
            );
            if !page.cached() {
                assert_eq!(page.pte, Pte::None as u8, "uncached page is mapped");
                assert!(!page.dirty(), "uncached page is dirty");
            }
            if page.pte_dirty() {
                assert_eq!(page.pte, Pte::Writable as u8, "pte dirty but not writable");
            }
            // A write fault makes a pte writable and dirties the page in one
            // step; `clean` write-protects before it clears the dirty bit.
            if page.pte == Pte::Writable as u8 {
                assert!(page.dirty(), "writable pte on a clean page");
            }
        }
        if self.records & record::WINDOW_OPEN != 0 {
            assert!(
                self.records & record::WINDOW_EVER != 0,
                "window open but never opened"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{FileId, Loc};

    fn page(cached: bool, buffers: Buffers, pte: Pte, dirty: bool) -> PageInit {
        PageInit {
            name: "a".into(),
            cached,
            buffers,
            pte,
            pte_dirty: false,
            dirty,
            mem: 1,
            disk: 1,
            loc: Loc {
                file: FileId(0),
                line: 1,
                column: 1,
            },
        }
    }

    #[test]
    fn clean_write_protects_and_folds_the_pte_dirty_bit() {
        let mut state = State::new(&[page(true, Buffers::Mapped, Pte::Writable, false)]);
        state.store_through_pte(0, 2);
        assert!(state.pages[0].pte_dirty());
        state.clean(0);
        assert_eq!(state.pages[0].pte(), Pte::Readonly);
        assert!(!state.pages[0].dirty() && !state.pages[0].pte_dirty());
        // The value is still only in memory: the final sync would not write it.
        assert_eq!(state.disk_after_final_sync(0), 1);
    }

    #[test]
    fn submit_inside_the_window_is_a_frozen_write() {
        let mut state = State::new(&[page(true, Buffers::Mapped, Pte::None, true)]);
        state.submit(0);
        assert!(!state.has_record(record::FROZEN_WRITE));
        state.set_level(Level::Complete, 1);
        assert!(state.has_record(record::DIRTY_AT_FREEZE));
        state.submit(0);
        assert!(state.has_record(record::FROZEN_WRITE));
        state.set_level(Level::Unfrozen, 1);
        assert!(!state.has_record(record::WINDOW_OPEN) && state.has_record(record::WINDOW_EVER));
    }

    #[test]
    fn umount_is_a_reader_writer_lock() {
        let mut state = State::new(&[]);
        state.lock_umount(0, LockMode::Read);
        assert!(state.can_lock_umount(LockMode::Read));
        assert!(!state.can_lock_umount(LockMode::Write));
        state.lock_umount(1, LockMode::Read);
        state.unlock_umount(0);
        assert!(!state.can_lock_umount(LockMode::Write));
        state.unlock_umount(1);
        state.lock_umount(2, LockMode::Write);
        assert!(!state.can_lock_umount(LockMode::Read));
        assert_eq!(state.umount_writer(), Some(2));
        state.assert_invariants(3, 0);
    }

    #[test]
    fn munmap_folds_the_dirty_pte() {
        let mut state = State::new(&[page(true, Buffers::Mapped, Pte::Writable, false)]);
        state.store_through_pte(0, 7);
        state.munmap(0);
        assert!(state.pages[0].dirty());
        assert_eq!(state.pages[0].pte(), Pte::None);
        assert_eq!(state.disk_after_final_sync(0), 7);
    }

    #[test]
    fn a_page_under_writeback_is_never_evicted_and_each_setter_ends_its_own() {
        let mut state = State::new(&[page(true, Buffers::Mapped, Pte::None, false)]);
        assert!(state.can_evict(0) && state.writeback_settled(0));
        state.start_writeback(1, 0);
        assert!(!state.can_evict(0) && !state.writeback_settled(0));
        state.start_writeback(2, 0);
        // A thread that started nothing ends nothing.
        state.end_writeback(0, 1);
        assert_eq!(state.pages[0].writeback_by(), 0b110);
        state.end_writeback(1, 1);
        assert!(state.pages[0].writeback() && !state.can_evict(0));
        state.end_writeback(2, 1);
        assert!(state.can_evict(0) && state.writeback_settled(0));
        state.assert_invariants(3, 1);
    }

    #[test]
    #[should_panic(expected = "under writeback by no thread")]
    fn a_writeback_owner_must_be_a_thread() {
        let mut state = State::new(&[page(true, Buffers::Mapped, Pte::None, false)]);
        state.start_writeback(3, 0);
        state.assert_invariants(3, 1);
    }
}
