//! Compact state encoding for the exhaustive search's visited set: the
//! 88-byte [`State`] packed into a few 64-bit words, exactly (the encoding
//! is injective and [`Packer::unpack`] inverts it).
//!
//! Only the threads and pages the program has are stored, and each field
//! gets the bits its range needs in this program: a thread's position
//! `log2(code length)` bits, a thread reference `log2(threads + 1)`, a set
//! of threads (`s_umount` readers, a page's writeback owners) a bit each, a page
//! value an index into the program's value dictionary (the initial values
//! and every value a store writes: nothing else can reach a page), a
//! writer count 8 bits and only for the levels some `sb_start` raises, a
//! fault counter only for the faults turned on. With a plug-in fault turned
//! on (whose effect may write anything) every field keeps its full width.
//!
//! Fields are laid out from the most significant bit of word 0 on, so that
//! comparing the words lexicographically compares the fields in order.
//! [`Packer::pack`] checks that no field overflows its width and panics (a
//! bug in freezefuzz) if one does: a new state field or flag that the
//! encoding does not know of cannot silently merge states.

use crate::engine::program::{Op, Program};
use crate::ir::Level;
use crate::model::{FAULT_KINDS_MAX, PAGE_FLAGS_ALL, PAGES_MAX, State, THREADS_MAX};

/// Bits needed for values `0..=max`.
fn bits(max: u64) -> u32 {
    64 - max.leading_zeros()
}

/// Per-program field widths of the packed encoding.
#[derive(Clone, Debug)]
pub struct Packer {
    threads: usize,
    pages: usize,
    pc_bits: u32,
    level_bits: u32,
    /// For `s_umount`'s writer and page lock owners: 0 or a thread + 1.
    owner_bits: u32,
    writer_bits: [u32; 3],
    flags_bits: u32,
    small_bits: u32,
    value_bits: u32,
    records_bits: u32,
    fault_bits: [u32; FAULT_KINDS_MAX],
    /// Page value → dictionary index, and back.
    to_index: [u8; 256],
    from_index: Vec<u8>,
    /// Bits of one page's fields.
    page_bits: u32,
    /// Total bits of one packed state.
    pub bits: u32,
    /// Bits of the threads' part (positions, freeze level, `s_umount`,
    /// writer counts), which comes first; the pages' part follows.
    pub head_bits: u32,
}

/// Writes fields from the most significant bit of word 0 on, through a
/// 128-bit accumulator that spills a word whenever it holds 64 bits.
struct Writer<'a> {
    words: &'a mut [u64],
    word: usize,
    acc: u128,
    held: u32,
    overflow: u64,
}

impl Writer<'_> {
    fn new(words: &mut [u64]) -> Writer<'_> {
        Writer {
            words,
            word: 0,
            acc: 0,
            held: 0,
            overflow: 0,
        }
    }

    /// `width` is at most 64.
    #[inline(always)]
    fn put(&mut self, value: u64, width: u32) {
        let kept = if width >= 64 {
            value
        } else {
            value & ((1u64 << width) - 1)
        };
        self.overflow |= value ^ kept;
        self.acc = (self.acc << width) | kept as u128;
        self.held += width;
        if self.held >= 64 {
            self.held -= 64;
            self.words[self.word] = (self.acc >> self.held) as u64;
            self.word += 1;
            self.acc &= (1u128 << self.held) - 1;
        }
    }

    /// Spills what is left; returns whether some field overflowed its width.
    #[inline(always)]
    fn finish(self) -> bool {
        if self.held > 0 {
            self.words[self.word] = (self.acc << (64 - self.held)) as u64;
        }
        self.overflow != 0
    }
}

struct Reader<'a> {
    words: &'a [u64],
    pos: u32,
}

impl Reader<'_> {
    /// `width` is at most 64.
    #[inline(always)]
    fn get(&mut self, width: u32) -> u64 {
        if width == 0 {
            return 0;
        }
        let word = (self.pos / 64) as usize;
        let offset = self.pos % 64;
        let room = 64 - offset;
        let mask = if width >= 64 {
            u64::MAX
        } else {
            (1u64 << width) - 1
        };
        let value = if width <= room {
            self.words[word] >> (room - width)
        } else {
            let low = width - room;
            (self.words[word] << low) | (self.words[word + 1] >> (64 - low))
        };
        self.pos += width;
        value & mask
    }
}

impl Packer {
    pub fn new(program: &Program) -> Packer {
        let threads = program.threads.len();
        let pages = program.pages.len();
        // A plug-in fault may write any field: keep every width full.
        let plugin = program
            .faults
            .iter()
            .enumerate()
            .any(|(slot, f)| f.enabled && slot >= crate::fault::BUILTIN.len());
        let mut writer_bits = [0u32; 3];
        let mut values = vec![0u8];
        for page in &program.initial.pages[..pages] {
            values.push(page.mem);
            values.push(page.disk);
        }
        let mut code_len = 1usize;
        for thread in &program.threads {
            code_len = code_len.max(thread.code.len());
            for instr in &thread.code {
                match instr.op {
                    Op::SbStart(level) => writer_bits[level as usize] = 8,
                    Op::StoreEntry { value, .. } | Op::FaultComplete { value, .. } => values.push(value),
                    _ => {}
                }
            }
        }
        values.sort_unstable();
        values.dedup();
        if values.len() > 128 {
            // Every value then (so that index 255 never means "not in it").
            values = (0..=255).collect();
        }
        let mut fault_bits = [0u32; FAULT_KINDS_MAX];
        for (slot, setting) in program.faults.iter().enumerate() {
            if setting.enabled {
                fault_bits[slot] = bits(setting.max as u64);
            }
        }
        let mut packer = Packer {
            threads,
            pages,
            pc_bits: bits(code_len as u64 - 1),
            level_bits: bits(Level::ALL.len() as u64 - 1),
            owner_bits: bits(threads as u64),
            writer_bits,
            flags_bits: bits(PAGE_FLAGS_ALL as u64),
            small_bits: 2,
            value_bits: bits(values.len() as u64 - 1),
            records_bits: bits(program.records_mask() as u64),
            fault_bits,
            to_index: [0; 256],
            from_index: values,
            page_bits: 0,
            bits: 0,
            head_bits: 0,
        };
        if plugin {
            packer.pc_bits = 16;
            packer.level_bits = 8;
            packer.owner_bits = 8;
            packer.writer_bits = [8; 3];
            packer.flags_bits = 8;
            packer.small_bits = 8;
            packer.value_bits = 8;
            packer.records_bits = 8;
            packer.fault_bits = [8; FAULT_KINDS_MAX];
            packer.from_index = (0..=255).collect();
        }
        // Values outside the dictionary map past its end, so that they
        // overflow the field (the dictionary has at most 256 entries, and
        // then every value is in it).
        packer.to_index = [u8::MAX; 256];
        for (i, &v) in packer.from_index.iter().enumerate() {
            packer.to_index[v as usize] = i as u8;
        }
        packer.page_bits = packer.flags_bits
            + 2 * packer.small_bits
            + packer.owner_bits
            + threads as u32
            + 3 * packer.value_bits
            + 1;
        packer.head_bits = threads as u32 * packer.pc_bits
            + packer.level_bits
            + threads as u32
            + packer.owner_bits
            + packer.writer_bits.iter().sum::<u32>();
        packer.bits = packer.head_bits
            + pages as u32 * packer.page_bits
            + packer.records_bits
            + packer.fault_bits.iter().sum::<u32>();
        packer
    }

    /// 64-bit words one packed state takes.
    pub fn words(&self) -> usize {
        (self.bits as usize).div_ceil(64).max(1)
    }

    /// The dictionary index of page value `value` (for symmetry's value maps).
    pub fn value_index(&self, value: u8) -> u8 {
        self.to_index[value as usize]
    }

    /// Packs `state` into `W` words (`W >= self.words()`).
    #[inline]
    pub fn pack<const W: usize>(&self, state: &State) -> [u64; W] {
        let mut words = [0u64; W];
        let mut w = Writer::new(&mut words);
        // A value outside the dictionary gets an index past its end: an overflow.
        let value = |v: u8| self.to_index[v as usize] as u64;
        for t in 0..self.threads {
            w.put(state.pc[t] as u64, self.pc_bits);
        }
        w.put(state.level as u64, self.level_bits);
        w.put(state.umount_readers as u64, self.threads as u32);
        w.put(state.umount_writer as u64, self.owner_bits);
        for (l, &width) in self.writer_bits.iter().enumerate() {
            w.put(state.writers[l] as u64, width);
        }
        debug_assert_eq!(
            w.word as u32 * 64 + w.held,
            self.head_bits,
            "Packer::head_bits counts the threads' part"
        );
        for p in 0..self.pages {
            let page = &state.pages[p];
            let fields = [
                (page.flags as u64, self.flags_bits),
                (page.buffers as u64, self.small_bits),
                (page.pte as u64, self.small_bits),
                (page.locked_by as u64, self.owner_bits),
                (page.writeback_by as u64, self.threads as u32),
                (value(page.mem), self.value_bits),
                (value(page.disk), self.value_bits),
                ((state.stored_mask >> p) as u64 & 1, 1),
                (value(state.stored[p]), self.value_bits),
            ];
            if self.page_bits <= 64 {
                // A page's fields gathered in one word first, then written
                // as one field: the same bits, fewer spills.
                let mut word = 0u64;
                for (v, width) in fields {
                    w.overflow |= v.checked_shr(width).unwrap_or(0);
                    word = word.checked_shl(width).unwrap_or(0) | v;
                }
                w.put(word, self.page_bits);
            } else {
                for (v, width) in fields {
                    w.put(v, width);
                }
            }
        }
        w.put(state.records as u64, self.records_bits);
        for (k, &width) in self.fault_bits.iter().enumerate() {
            w.put(state.faults_fired[k] as u64, width);
        }
        debug_assert_eq!(
            w.word as u32 * 64 + w.held,
            self.bits,
            "Packer::bits counts every field pack writes"
        );
        let overflow = w.finish();
        assert!(
            !overflow && state.stored_mask >> self.pages == 0,
            "a state field outside the packed encoding's range (engine::pack): {state:?}"
        );
        words
    }

    /// The state `pack` packed into `words`.
    #[inline]
    pub fn unpack<const W: usize>(&self, words: &[u64; W], initial: &State) -> State {
        let mut r = Reader { words, pos: 0 };
        let mut state = *initial;
        state.pc = [0; THREADS_MAX];
        state.stored_mask = 0;
        let value = |i: u64| self.from_index[i as usize];
        for t in 0..self.threads {
            state.pc[t] = r.get(self.pc_bits) as u16;
        }
        state.level = r.get(self.level_bits) as u8;
        state.umount_readers = r.get(self.threads as u32) as u8;
        state.umount_writer = r.get(self.owner_bits) as u8;
        for (l, &width) in self.writer_bits.iter().enumerate() {
            state.writers[l] = r.get(width) as u8;
        }
        for p in 0..PAGES_MAX.min(self.pages) {
            if self.page_bits <= 64 {
                // Read back as written: one word, then its fields.
                let word = r.get(self.page_bits);
                let mut at = self.page_bits;
                let mut get = |width: u32| {
                    at -= width;
                    if width == 0 {
                        0
                    } else {
                        (word >> at) & (u64::MAX >> (64 - width))
                    }
                };
                let page = &mut state.pages[p];
                page.flags = get(self.flags_bits) as u8;
                page.buffers = get(self.small_bits) as u8;
                page.pte = get(self.small_bits) as u8;
                page.locked_by = get(self.owner_bits) as u8;
                page.writeback_by = get(self.threads as u32) as u8;
                page.mem = value(get(self.value_bits));
                page.disk = value(get(self.value_bits));
                state.stored_mask |= (get(1) as u8) << p;
                state.stored[p] = value(get(self.value_bits));
                continue;
            }
            let page = &mut state.pages[p];
            page.flags = r.get(self.flags_bits) as u8;
            page.buffers = r.get(self.small_bits) as u8;
            page.pte = r.get(self.small_bits) as u8;
            page.locked_by = r.get(self.owner_bits) as u8;
            page.writeback_by = r.get(self.threads as u32) as u8;
            page.mem = value(r.get(self.value_bits));
            page.disk = value(r.get(self.value_bits));
            state.stored_mask |= (r.get(1) as u8) << p;
            state.stored[p] = value(r.get(self.value_bits));
        }
        state.records = r.get(self.records_bits) as u8;
        for (k, &width) in self.fault_bits.iter().enumerate() {
            state.faults_fired[k] = r.get(width) as u8;
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_cross_word_boundaries_and_come_back() {
        let mut words = [0u64; 2];
        let mut w = Writer::new(&mut words);
        w.put(0b101, 3);
        w.put(u64::MAX >> 4, 60); // crosses into word 1
        w.put(0x3ff, 10);
        w.put(0, 0);
        assert!(!w.finish());
        let mut spare = [0u64; 2];
        let mut w = Writer::new(&mut spare);
        w.put(4, 2);
        assert!(w.finish(), "4 does not fit in 2 bits");
        let mut r = Reader {
            words: &words,
            pos: 0,
        };
        assert_eq!(r.get(3), 0b101);
        assert_eq!(r.get(60), u64::MAX >> 4);
        assert_eq!(r.get(10), 0x3ff);
        assert_eq!(r.get(0), 0);
        // Lexicographic order of the words is the order of the first field.
        assert!(words[0] >> 61 == 0b101);
    }
}
