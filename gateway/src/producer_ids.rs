//! Producer ids for idempotent producers, taken from metadata in blocks.

use std::sync::Arc;

use fjord_metadata::MetadataStore;
use parking_lot::Mutex;

use crate::error::RequestError;

/// Hands out producer ids from blocks reserved in metadata, so that most InitProducerId
/// requests need no metadata write. Ids of a block not used up before a restart are lost,
/// which is harmless: ids are 63-bit.
pub struct ProducerIdPool {
    store: Arc<dyn MetadataStore>,
    block: i64,
    /// Next id to hand out and the end (exclusive) of the current block.
    range: Mutex<(i64, i64)>,
}

impl ProducerIdPool {
    /// A pool reserving `block` ids at a time.
    pub fn new(store: Arc<dyn MetadataStore>, block: i64) -> Self {
        Self {
            store,
            block: block.max(1),
            range: Mutex::new((0, 0)),
        }
    }

    /// A producer id never handed out before, by any gateway.
    pub async fn next(&self) -> Result<i64, RequestError> {
        loop {
            if let Some(id) = self.take() {
                return Ok(id);
            }
            // Not holding the lock across the write: two callers may both reserve a block; the
            // later one replaces the earlier and those ids are simply never used.
            let first = self.store.allocate_producer_ids(self.block).await?;
            let mut range = self.range.lock();
            if range.0 >= range.1 {
                *range = (first, first + self.block);
            }
        }
    }

    fn take(&self) -> Option<i64> {
        let mut range = self.range.lock();
        (range.0 < range.1).then(|| {
            range.0 += 1;
            range.0 - 1
        })
    }
}
