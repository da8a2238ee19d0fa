//! `io-error`: a `submit` fails with an I/O error (`end_page_writeback` with
//! `-EIO`, `mapping_set_error`). The disk block is unchanged. With
//! `submit else S` the policy's `S` runs; without, the page is redirtied
//! (the default policies keep the data, as `ext4_bio_write_page` does with
//! `redirty_page_for_writepage` on a failed submit).

use super::{Fault, FaultContext, Placement, Site};

pub struct IoError;

impl Fault for IoError {
    fn name(&self) -> &'static str {
        "io-error"
    }

    fn kernel(&self) -> &'static str {
        "a failed bio: end_page_writeback / mapping_set_error (-EIO)"
    }

    fn placement(&self) -> Placement {
        Placement::Statement(Site::Submit)
    }

    /// Any submit can fail.
    fn can_fire(&self, _context: &FaultContext<'_>) -> bool {
        true
    }
}
