//! [`CountingObjectStore`]: an [`ObjectStore`] that counts the requests it passes on.
//!
//! S3 bills per request, and Fjord's cost goal is stated in PUTs per gigabyte ingested. Each
//! counter here corresponds to one S3 request (a multipart upload is counted as its create,
//! each part and its completion), so the figures can be read off a running node.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, UploadPart,
};

/// Counter names, in the order of the `counts` array.
const NAMES: [&str; 13] = [
    "put",
    "put_multipart",
    "put_part",
    "complete_multipart",
    "abort_multipart",
    "get",
    "get_range",
    "get_ranges",
    "head",
    "list",
    "delete",
    "copy",
    "rename",
];

/// Index into `NAMES`/`counts`.
#[derive(Clone, Copy)]
enum Op {
    Put,
    PutMultipart,
    PutPart,
    CompleteMultipart,
    AbortMultipart,
    Get,
    GetRange,
    GetRanges,
    Head,
    List,
    Delete,
    Copy,
    Rename,
}

#[derive(Default)]
struct Counters([AtomicU64; NAMES.len()]);

impl Counters {
    fn hit(&self, op: Op) {
        // Relaxed: the counters order nothing; readers want totals.
        self.0[op as usize].fetch_add(1, Ordering::Relaxed);
    }
}

/// Delegates every call to an inner object store and counts requests per kind.
///
/// `get_ranges` is counted once per call, although a backend may split it into several range
/// requests; `list` counts listings started, not result pages.
pub struct CountingObjectStore {
    inner: Arc<dyn ObjectStore>,
    counts: Arc<Counters>,
}

impl CountingObjectStore {
    /// Wraps `inner`; all counters start at zero.
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self {
            inner,
            counts: Arc::new(Counters::default()),
        }
    }

    /// Requests so far per kind (`put`, `put_part`, `get_range`, …); kinds never seen are left
    /// out.
    pub fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        NAMES
            .iter()
            .zip(self.counts.0.iter())
            .map(|(name, c)| (*name, c.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// PUT-class requests so far (S3's billing class: single PUTs, multipart creates, parts,
    /// completions, copies, listings) and GET-class requests (GETs, range GETs, HEADs), as
    /// `(puts, gets)`.
    pub fn totals(&self) -> (u64, u64) {
        let n = |op: Op| self.counts.0[op as usize].load(Ordering::Relaxed);
        let puts = n(Op::Put)
            + n(Op::PutMultipart)
            + n(Op::PutPart)
            + n(Op::CompleteMultipart)
            + n(Op::Copy)
            + n(Op::Rename)
            + n(Op::List);
        let gets = n(Op::Get) + n(Op::GetRange) + n(Op::GetRanges) + n(Op::Head);
        (puts, gets)
    }
}

impl fmt::Debug for CountingObjectStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CountingObjectStore")
            .field("inner", &self.inner.to_string())
            .field("counts", &self.snapshot())
            .finish()
    }
}

impl fmt::Display for CountingObjectStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Counting({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for CountingObjectStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.counts.hit(Op::Put);
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.counts.hit(Op::PutMultipart);
        let upload = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(CountingUpload {
            inner: upload,
            counts: self.counts.clone(),
        }))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let op = match (options.head, options.range.is_some()) {
            (true, _) => Op::Head,
            (false, true) => Op::GetRange,
            (false, false) => Op::Get,
        };
        self.counts.hit(op);
        self.inner.get_opts(location, options).await
    }

    async fn get_range(&self, location: &Path, range: Range<u64>) -> object_store::Result<Bytes> {
        self.counts.hit(Op::GetRange);
        self.inner.get_range(location, range).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.counts.hit(Op::GetRanges);
        self.inner.get_ranges(location, ranges).await
    }

    async fn head(&self, location: &Path) -> object_store::Result<ObjectMeta> {
        self.counts.hit(Op::Head);
        self.inner.head(location).await
    }

    async fn delete(&self, location: &Path) -> object_store::Result<()> {
        self.counts.hit(Op::Delete);
        self.inner.delete(location).await
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.counts.hit(Op::List);
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.counts.hit(Op::List);
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.counts.hit(Op::List);
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.counts.hit(Op::Copy);
        self.inner.copy(from, to).await
    }

    async fn rename(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.counts.hit(Op::Rename);
        self.inner.rename(from, to).await
    }

    async fn copy_if_not_exists(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.counts.hit(Op::Copy);
        self.inner.copy_if_not_exists(from, to).await
    }

    async fn rename_if_not_exists(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.counts.hit(Op::Rename);
        self.inner.rename_if_not_exists(from, to).await
    }
}

/// A multipart upload whose parts and completion are counted.
struct CountingUpload {
    inner: Box<dyn MultipartUpload>,
    counts: Arc<Counters>,
}

impl fmt::Debug for CountingUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CountingUpload").finish_non_exhaustive()
    }
}

#[async_trait]
impl MultipartUpload for CountingUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        self.counts.hit(Op::PutPart);
        self.inner.put_part(data)
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        self.counts.hit(Op::CompleteMultipart);
        self.inner.complete().await
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.counts.hit(Op::AbortMultipart);
        self.inner.abort().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;
    use object_store::local::LocalFileSystem;

    #[tokio::test]
    async fn counts_each_request_kind() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store =
            CountingObjectStore::new(Arc::new(LocalFileSystem::new_with_prefix(dir.path())?));
        let a = Path::from("a");
        store.put(&a, Bytes::from_static(b"hello").into()).await?;
        assert_eq!(store.get(&a).await?.bytes().await?.as_ref(), b"hello");
        assert_eq!(store.get_range(&a, 1..3).await?.as_ref(), b"el");
        store.head(&a).await?;
        let mut up = store.put_multipart(&Path::from("b")).await?;
        up.put_part(Bytes::from_static(b"x").into()).await?;
        up.put_part(Bytes::from_static(b"y").into()).await?;
        up.complete().await?;
        let listed: Vec<_> = store.list(None).try_collect().await?;
        assert_eq!(listed.len(), 2);
        store.delete(&a).await?;

        let snap = store.snapshot();
        let expect = [
            ("complete_multipart", 1),
            ("delete", 1),
            ("get", 1),
            ("get_range", 1),
            ("head", 1),
            ("list", 1),
            ("put", 1),
            ("put_multipart", 1),
            ("put_part", 2),
        ];
        assert_eq!(snap, expect.into_iter().collect::<BTreeMap<_, _>>());
        // puts: put + create + 2 parts + complete + list; gets: get + range + head.
        assert_eq!(store.totals(), (6, 3));
        Ok(())
    }
}
