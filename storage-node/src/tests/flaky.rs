//! Failure injection for object storage: a store whose writes fail while a switch is on.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result, UploadPart,
};

/// Delegates to `inner`, except that
/// - puts and multipart creates fail while `fail` is set,
/// - multipart parts fail while `fail_parts` is set,
/// - single puts are written but answer an error while `lose_responses` is set (a response
///   lost on the way back).
#[derive(Debug)]
pub(crate) struct FlakyStore {
    pub inner: Arc<dyn ObjectStore>,
    pub fail: AtomicBool,
    pub fail_parts: Arc<AtomicBool>,
    pub lose_responses: AtomicBool,
}

impl fmt::Display for FlakyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Flaky({})", self.inner)
    }
}

fn injected() -> object_store::Error {
    object_store::Error::Generic {
        store: "flaky",
        source: "injected failure".into(),
    }
}

impl FlakyStore {
    /// Passes everything through until a switch is set.
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self {
            inner,
            fail: AtomicBool::new(false),
            fail_parts: Arc::new(AtomicBool::new(false)),
            lose_responses: AtomicBool::new(false),
        }
    }

    fn check(&self) -> Result<()> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(injected());
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl ObjectStore for FlakyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.check()?;
        let r = self.inner.put_opts(location, payload, opts).await?;
        if self.lose_responses.load(Ordering::SeqCst) {
            return Err(injected());
        }
        Ok(r)
    }
    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.check()?;
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(FlakyUpload {
            inner,
            fail_parts: self.fail_parts.clone(),
        }))
    }
    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }
    async fn delete(&self, location: &Path) -> Result<()> {
        self.inner.delete(location).await
    }
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }
    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy(&self, from: &Path, to: &Path) -> Result<()> {
        self.inner.copy(from, to).await
    }
    async fn copy_if_not_exists(&self, from: &Path, to: &Path) -> Result<()> {
        self.inner.copy_if_not_exists(from, to).await
    }
}

/// A multipart upload whose parts fail while `fail_parts` is set.
#[derive(Debug)]
struct FlakyUpload {
    inner: Box<dyn MultipartUpload>,
    fail_parts: Arc<AtomicBool>,
}

#[async_trait::async_trait]
impl MultipartUpload for FlakyUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        if self.fail_parts.load(Ordering::SeqCst) {
            return Box::pin(futures::future::ready(Err(injected())));
        }
        self.inner.put_part(data)
    }
    async fn complete(&mut self) -> Result<PutResult> {
        self.inner.complete().await
    }
    async fn abort(&mut self) -> Result<()> {
        self.inner.abort().await
    }
}
