//! Writing one tiered object without ever overwriting another: a conditional single PUT
//! (`If-None-Match: *`, [`PutMode::Create`]) for objects below the multipart threshold, a
//! multipart upload with bounded part concurrency above it.
//!
//! A key that already exists is expected after a retry whose first attempt landed (the response
//! was lost, or the manifest commit failed and the node restarted). It is accepted only if the
//! stored object is byte-for-byte ours; anything else means another writer (a second process
//! wrongly running with this node id) and the object goes under a new key instead, leaving the
//! other one alone.

use bytes::Bytes;
use futures::stream::FuturesUnordered;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};
use tracing::{debug, error, info, warn};

use super::TieringError;
use crate::config::NodeConfig;
use crate::node::StorageNode;

/// How many alternative keys are tried when other writers' objects sit at ours.
const MAX_KEY_ATTEMPTS: u32 = 8;

/// Multipart settings taken from [`NodeConfig`] (validated there).
#[derive(Debug, Clone, Copy)]
pub(crate) struct MultipartSettings {
    pub threshold: u64,
    pub part_bytes: usize,
    pub concurrency: usize,
}

impl MultipartSettings {
    pub fn from_config(c: &NodeConfig) -> Self {
        Self {
            threshold: c.multipart_threshold_bytes,
            // Validation caps parts at 5 GiB, which fits usize on 64-bit targets; elsewhere
            // the largest usize is a safe (if unusual) part size.
            part_bytes: usize::try_from(c.multipart_part_bytes).unwrap_or(usize::MAX),
            concurrency: c.multipart_concurrency,
        }
    }
}

/// What a create-only write found.
enum Created {
    /// The object is now at the key.
    Written,
    /// Something was already at the key; nothing was written.
    Exists,
}

/// The key of the `attempt`-th alternative to `base` (`attempt` 0 is `base` itself):
/// `nodes/n1/<seg>-<off>.obj` becomes `nodes/n1/<seg>-<off>.<attempt>.obj`, which still sorts
/// between the keys of the uploads before and after it.
pub(crate) fn alternative_key(base: &str, attempt: u32) -> String {
    match (attempt, base.strip_suffix(".obj")) {
        (0, _) => base.to_string(),
        (n, Some(stem)) => format!("{stem}.{n}.obj"),
        (n, None) => format!("{base}.{n}"),
    }
}

impl StorageNode {
    /// Writes the object made of `parts` at `base_key` or, when another writer's object is
    /// there, at an alternative key; returns the key that now holds exactly these bytes.
    /// Marks each key tried as in flight so garbage collection leaves it alone.
    pub(crate) async fn put_object(
        &self,
        base_key: &str,
        parts: &[Bytes],
    ) -> Result<String, TieringError> {
        let size: u64 = parts.iter().map(|p| p.len() as u64).sum();
        for attempt in 0..MAX_KEY_ATTEMPTS {
            let key = alternative_key(base_key, attempt);
            self.claim_key(&key)?;
            let path = ObjectPath::from(key.as_str());
            let created = if size >= self.multipart.threshold {
                self.put_multipart_new(&path, parts, size).await?
            } else {
                self.put_single_new(&path, parts).await?
            };
            match created {
                Created::Written => {
                    debug!(%key, size, "object uploaded");
                    return Ok(key);
                }
                Created::Exists => {
                    if self.holds_exactly(&path, parts, size).await? {
                        info!(%key, size, "object already stored by an earlier attempt");
                        return Ok(key);
                    }
                    error!(
                        %key,
                        "a different object is stored at this node's key: another process may \
                         be running with node id {}; uploading under another key",
                        self.node_id
                    );
                }
            }
        }
        Err(TieringError::KeyCollisions(base_key.to_string()))
    }

    /// One PUT with `If-None-Match: *`.
    async fn put_single_new(
        &self,
        path: &ObjectPath,
        parts: &[Bytes],
    ) -> Result<Created, TieringError> {
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        let payload = PutPayload::from_iter(parts.iter().cloned());
        match self.objects.put_opts(path, payload.clone(), opts).await {
            Ok(_) => Ok(Created::Written),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(Created::Exists),
            Err(object_store::Error::NotImplemented) => {
                // A store without conditional writes: look first, then write. Two writers can
                // both pass the look; keys are unique per node and WAL position, so only a
                // misconfigured second process with this node id could hit that window.
                warn!(%path, "object store lacks conditional PUT; checking before writing");
                if self.exists(path).await? {
                    return Ok(Created::Exists);
                }
                self.objects.put(path, payload).await?;
                Ok(Created::Written)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A multipart upload, aborted if any part or the completion fails.
    ///
    /// object_store 0.12 cannot send `If-None-Match` with CompleteMultipartUpload (it does so
    /// only inside its own copy), so the key is checked with a HEAD first. A writer that
    /// completes an upload at the same key between that HEAD and our completion would be
    /// overwritten; only a second process wrongly running with this node id can be that
    /// writer, and the manifest commit that follows is fenced by partition epochs either way.
    async fn put_multipart_new(
        &self,
        path: &ObjectPath,
        parts: &[Bytes],
        size: u64,
    ) -> Result<Created, TieringError> {
        if self.exists(path).await? {
            return Ok(Created::Exists);
        }
        let chunks = split_parts(parts, self.multipart.part_bytes);
        let count = chunks.len();
        let mut upload = self.objects.put_multipart(path).await?;
        let result = async {
            let mut in_flight = FuturesUnordered::new();
            for chunk in chunks {
                while in_flight.len() >= self.multipart.concurrency {
                    if let Some(r) = in_flight.next().await {
                        r?;
                    }
                }
                in_flight.push(upload.put_part(chunk));
            }
            while let Some(r) = in_flight.next().await {
                r?;
            }
            upload.complete().await
        }
        .await;
        match result {
            Ok(_) => {
                debug!(%path, size, parts = count, "multipart upload completed");
                Ok(Created::Written)
            }
            Err(e) => {
                // Parts in flight were dropped with the future above; S3 discards parts of an
                // aborted upload, and the bucket's lifecycle rule removes uploads whose abort
                // never arrived (a crash here).
                if let Err(abort) = upload.abort().await {
                    warn!(%path, "aborting failed multipart upload: {abort}");
                }
                Err(e.into())
            }
        }
    }

    async fn exists(&self, path: &ObjectPath) -> Result<bool, TieringError> {
        match self.objects.head(path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether the object at `path` has exactly the bytes of `parts`: a HEAD for the size,
    /// then (sizes equal) one streamed GET compared chunk by chunk. Only runs after a create
    /// found the key taken, which is rare, so the GET costs little overall.
    async fn holds_exactly(
        &self,
        path: &ObjectPath,
        parts: &[Bytes],
        size: u64,
    ) -> Result<bool, TieringError> {
        let meta = match self.objects.head(path).await {
            Ok(m) => m,
            // Deleted since (by its writer or garbage collection): not ours, and the next key
            // is tried; the next round retries the same records from the WAL anyway.
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        if meta.size != size {
            return Ok(false);
        }
        let stream = self.objects.get(path).await?.into_stream();
        Ok(stream_equals(stream, parts).await?)
    }
}

/// Splits the object into payloads of `part_bytes` (the last one shorter), sharing the parts'
/// memory.
pub(crate) fn split_parts(parts: &[Bytes], part_bytes: usize) -> Vec<PutPayload> {
    let part_bytes = part_bytes.max(1);
    let mut out = Vec::new();
    let mut current: Vec<Bytes> = Vec::new();
    let mut filled = 0usize;
    for p in parts {
        let mut rest = p.clone();
        while !rest.is_empty() {
            let take = rest.len().min(part_bytes - filled);
            current.push(rest.split_to(take));
            filled += take;
            if filled == part_bytes {
                out.push(PutPayload::from_iter(std::mem::take(&mut current)));
                filled = 0;
            }
        }
    }
    if filled > 0 {
        out.push(PutPayload::from_iter(current));
    }
    out
}

/// Whether a stream of chunks carries exactly the bytes of `parts`, whatever the chunking.
pub(crate) async fn stream_equals(
    mut stream: impl futures::Stream<Item = object_store::Result<Bytes>> + Unpin,
    parts: &[Bytes],
) -> object_store::Result<bool> {
    let mut expected = parts.iter().flat_map(|p| p.chunks(64 << 10));
    let mut want: &[u8] = &[];
    while let Some(mut got) = stream.try_next().await? {
        while !got.is_empty() {
            if want.is_empty() {
                match expected.next() {
                    Some(w) => want = w,
                    None => return Ok(false),
                }
                continue;
            }
            let n = got.len().min(want.len());
            if got[..n] != want[..n] {
                return Ok(false);
            }
            let _ = got.split_to(n);
            want = &want[n..];
        }
    }
    Ok(want.is_empty() && expected.all(|w| w.is_empty()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn flat(payloads: &[PutPayload]) -> Vec<u8> {
        payloads
            .iter()
            .flat_map(|p| p.iter().flat_map(|b| b.iter().copied()))
            .collect()
    }

    #[test]
    fn parts_are_full_but_the_last_and_keep_the_bytes() {
        let parts: Vec<Bytes> = (0..7u8)
            .map(|i| Bytes::from(vec![i; 3 + i as usize]))
            .collect();
        let all: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
        for size in [1, 4, 5, 10, all.len(), all.len() + 1] {
            let out = split_parts(&parts, size);
            assert_eq!(flat(&out), all, "part size {size}");
            let (last, full) = out.split_last().unwrap();
            assert!(full.iter().all(|p| p.content_length() == size));
            assert!(last.content_length() <= size && last.content_length() > 0);
        }
        assert!(split_parts(&[], 4).is_empty());
    }

    #[tokio::test]
    async fn stream_comparison_ignores_chunking_and_spots_differences() {
        let parts = [Bytes::from_static(b"abc"), Bytes::from_static(b"defg")];
        let chunks = |v: &[&'static [u8]]| {
            futures::stream::iter(
                v.iter()
                    .map(|c| Ok(Bytes::from_static(c)))
                    .collect::<Vec<_>>(),
            )
        };
        assert!(stream_equals(chunks(&[b"ab", b"cdefg"]), &parts)
            .await
            .unwrap());
        assert!(stream_equals(chunks(&[b"abcdefg"]), &parts).await.unwrap());
        assert!(!stream_equals(chunks(&[b"abcdefx"]), &parts).await.unwrap());
        assert!(!stream_equals(chunks(&[b"abcdef"]), &parts).await.unwrap());
        assert!(!stream_equals(chunks(&[b"abcdefgh"]), &parts).await.unwrap());
    }

    #[test]
    fn alternative_keys_sort_between_neighbours() {
        let base = "nodes/n1/00000000000000000001-00000000000000000100.obj";
        let next = "nodes/n1/00000000000000000001-00000000000000000200.obj";
        let prev = "nodes/n1/00000000000000000001-00000000000000000099.obj";
        assert_eq!(alternative_key(base, 0), base);
        for n in 1..MAX_KEY_ATTEMPTS {
            let k = alternative_key(base, n);
            assert!(prev < k.as_str() && k.as_str() < next, "{k}");
        }
    }
}
