//! [`ControlPlane`]: shared state, the router, the authentication middleware and the server.
//!
//! Every authenticated request passes the middleware (`authenticate_layer`) before its
//! handler: it opens a span named after the operation with a fresh request id, takes a
//! concurrency permit (429 when none is left), reads the body up to the configured limit,
//! verifies the SigV4 signature and loads the caller, all within the request timeout. Every
//! response carries `x-amzn-RequestId`.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use fjord_gateway::topics::TopicService;
use fjord_metadata::MetadataStore;
use fjord_tenancy::quota::{ClusterLimits, ClusterQuotas};
use fjord_tenancy::SecretSealer;
use moka::future::Cache;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{field, Instrument};
use uuid::Uuid;

use crate::authz::authenticate;
use crate::config::{ConfigError, ControlPlaneConfig};
use crate::error::{ApiError, ApiResult};
use crate::request::RequestContext;
use crate::routes::{routes, Protocol, RouteSpec};
use crate::sigv4::ReceivedRequest;
use crate::sts;

/// Where the control plane reads the time (ms since the epoch).
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The control plane: MSK's REST-JSON API, Fjord's topic, credential, settings and usage
/// operations, and STS AssumeRole, over SigV4-verified HTTP.
#[derive(Clone)]
pub struct ControlPlane {
    state: AppState,
}

/// State shared by all handlers.
#[derive(Clone)]
pub(crate) struct AppState(pub(crate) Arc<Inner>);

pub(crate) struct Inner {
    pub config: ControlPlaneConfig,
    pub store: Arc<dyn MetadataStore>,
    pub sealer: SecretSealer,
    pub topics: Arc<TopicService>,
    pub clock: Clock,
    /// Per cluster, the quotas HTTP topic changes take (the topic-admin request rate and the
    /// partition mutation quota), built from the cluster's settings.
    admin_quotas: Cache<Uuid, Arc<ClusterQuotas>>,
    concurrency: Arc<Semaphore>,
    /// The route table (a few dozen entries: a scan per request is cheaper than hashing).
    specs: Vec<RouteSpec>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

fn system_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl ControlPlane {
    /// A control plane over `store`, sealing secrets with `sealer` and changing topics through
    /// `topics` (share the gateway's [`TopicService`] when both run in one process, so its
    /// caches see HTTP changes at once).
    pub fn new(
        config: ControlPlaneConfig,
        store: Arc<dyn MetadataStore>,
        sealer: SecretSealer,
        topics: Arc<TopicService>,
    ) -> Result<Self, ConfigError> {
        Self::with_clock(config, store, sealer, topics, Arc::new(system_now_ms))
    }

    /// Like [`ControlPlane::new`], reading the time from `clock` (ms since the epoch) for
    /// every decision: signature skew, key and token expiry, creation times, rate limits.
    pub fn with_clock(
        config: ControlPlaneConfig,
        store: Arc<dyn MetadataStore>,
        sealer: SecretSealer,
        topics: Arc<TopicService>,
        clock: Clock,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let specs = routes().into_iter().map(|r| r.spec).collect();
        let inner = Inner {
            concurrency: Arc::new(Semaphore::new(config.max_concurrent_requests)),
            config,
            store,
            sealer,
            topics,
            clock,
            admin_quotas: Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(600))
                .build(),
            specs,
        };
        Ok(Self {
            state: AppState(Arc::new(inner)),
        })
    }

    /// The settings in effect.
    pub fn config(&self) -> &ControlPlaneConfig {
        &self.state.config
    }

    /// The HTTP router (for embedding in another server).
    pub fn router(&self) -> Router {
        let mut authed = Router::new();
        let mut public = Router::new();
        for route in routes() {
            if route.spec.service.is_some() {
                authed = authed.route(route.spec.path, route.handler);
            } else {
                public = public.route(route.spec.path, route.handler);
            }
        }
        let authed = authed.route_layer(middleware::from_fn_with_state(
            self.state.clone(),
            authenticate_layer,
        ));
        authed
            .merge(public)
            .fallback(unknown_operation)
            .method_not_allowed_fallback(unknown_operation)
            .with_state(self.state.clone())
    }

    /// Serves HTTP on `listener` until `shutdown` completes, then lets in-flight requests finish.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let addr = listener.local_addr()?;
        tracing::info!(%addr, region = %self.state.config.region, "control plane listening");
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
    }
}

async fn unknown_operation(method: Method, uri: axum::http::Uri) -> Response {
    let path: String = uri.path().chars().take(200).collect();
    with_request_id(
        ApiError::NotFound(format!("no operation {method} {path}")).into_response(),
        &Uuid::new_v4().to_string(),
    )
}

fn with_request_id(mut response: Response, request_id: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-amzn-RequestId", v);
    }
    response
}

/// Renders an error in the route's protocol.
pub(crate) fn error_response(e: ApiError, protocol: Protocol, request_id: &str) -> Response {
    let response = match protocol {
        Protocol::RestJson => e.into_response(),
        Protocol::Query => sts::error_response(&e, request_id),
    };
    with_request_id(response, request_id)
}

/// The authentication middleware (see the module docs).
async fn authenticate_layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let request_id = Uuid::new_v4().to_string();
    let matched = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_default();
    let spec = state
        .specs
        .iter()
        .find(|s| s.method == req.method() && s.path == matched)
        .cloned();
    let Some(spec) = spec else {
        return error_response(
            ApiError::Internal(format!("no route spec for {} {matched}", req.method())),
            Protocol::RestJson,
            &request_id,
        );
    };
    let span = tracing::info_span!(
        "control_plane",
        op = spec.operation,
        request_id = %request_id,
        principal = field::Empty,
        status = field::Empty,
    );
    let protocol = spec.protocol;
    async move {
        let timeout = state.config.request_timeout;
        let result = match tokio::time::timeout(
            timeout,
            authenticate_and_run(&state, &spec, &request_id, req, next),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => Err(ApiError::Unavailable(format!(
                "the request did not complete within {} s",
                timeout.as_secs()
            ))),
        };
        let response = match result {
            Ok(response) => with_request_id(response, &request_id),
            Err(e) => error_response(e, protocol, &request_id),
        };
        tracing::Span::current().record("status", response.status().as_u16());
        tracing::info!("request done");
        response
    }
    .instrument(span)
    .await
}

async fn authenticate_and_run(
    state: &AppState,
    spec: &RouteSpec,
    request_id: &str,
    req: Request,
    next: Next,
) -> ApiResult<Response> {
    let _permit = Arc::clone(&state.concurrency)
        .try_acquire_owned()
        .map_err(|_| {
            ApiError::TooManyRequests("the control plane is at its concurrent request limit".into())
        })?;
    let Some(service) = spec.service else {
        return Ok(next.run(req).await);
    };
    let (mut parts, body) = req.into_parts();
    let limit = state.config.max_body_bytes;
    let body = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::BadRequest(format!(
            "the request body is larger than {limit} bytes or could not be read"
        ))
    })?;
    let now_ms = (state.clock)();
    let received = ReceivedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
        body: &body,
    };
    let caller = authenticate(
        state.store.as_ref(),
        &state.sealer,
        &received,
        &state.config.region,
        service,
        now_ms,
        state.config.max_clock_skew_ms,
    )
    .await?;
    tracing::Span::current().record("principal", field::display(caller.arn()));
    parts.extensions.insert(RequestContext {
        request_id: request_id.to_string(),
        caller: Arc::new(caller),
        now_ms,
    });
    Ok(next.run(Request::from_parts(parts, Body::from(body))).await)
}

impl Inner {
    /// The admin quotas of a cluster, built from its settings on first use.
    async fn admin_quotas(&self, cluster_id: Uuid, now_ms: i64) -> ApiResult<Arc<ClusterQuotas>> {
        let store = Arc::clone(&self.store);
        self.admin_quotas
            .try_get_with(cluster_id, async move {
                let limits = cluster_limits(store.as_ref(), cluster_id).await?;
                Ok::<_, ApiError>(Arc::new(ClusterQuotas::new(limits, now_ms)))
            })
            .await
            .map_err(|e| ApiError::Unavailable(format!("reading cluster limits: {e}")))
    }

    /// Takes one topic-admin request from the cluster's budget (429 when it is spent).
    pub(crate) async fn admit_topic_admin(&self, cluster_id: Uuid, now_ms: i64) -> ApiResult<()> {
        let quotas = self.admin_quotas(cluster_id, now_ms).await?;
        quotas.topic_admin.try_acquire(now_ms, 1).map_err(|wait_ms| {
            ApiError::TooManyRequests(format!(
                "topic-admin request rate of this cluster ({} per second) exceeded; retry in {wait_ms} ms",
                quotas.limits().topic_admin_requests_per_sec
            ))
        })
    }

    /// Before creating or deleting partitions: the cluster's partition mutation quota (KIP-599,
    /// MSK Serverless's 250 partitions per 5 minutes) with Kafka's strict semantics, as the
    /// gateway applies it to CreateTopics v6+, CreatePartitions v3+ and DeleteTopics v5+: refused
    /// (429) while the bucket is in debt; otherwise admitted whole, and charged with
    /// [`MutationPermit::record`] once the change succeeded (so a refusal for another reason
    /// costs nothing, and one large topic can still be created).
    pub(crate) async fn admit_partition_mutation(
        &self,
        cluster_id: Uuid,
        now_ms: i64,
    ) -> ApiResult<MutationPermit> {
        let quotas = self.admin_quotas(cluster_id, now_ms).await?;
        let wait_ms = quotas.partition_mutations.throttle_ms(now_ms);
        if wait_ms > 0 {
            let limits = quotas.limits();
            return Err(ApiError::TooManyRequests(format!(
                "the cluster's partition mutation quota of {} partitions created or deleted per \
                 {} is exhausted (THROTTLING_QUOTA_EXCEEDED); retry in {wait_ms} ms",
                limits.partition_mutations_per_window,
                window(limits.partition_mutation_window_ms)
            )));
        }
        Ok(MutationPermit { quotas })
    }

    /// Forgets a cluster's quotas so the next request reads its (changed) settings.
    pub(crate) async fn forget_limits(&self, cluster_id: Uuid) {
        self.admin_quotas.invalidate(&cluster_id).await;
    }
}

/// An admitted partition mutation; see [`Inner::admit_partition_mutation`].
pub(crate) struct MutationPermit {
    quotas: Arc<ClusterQuotas>,
}

impl MutationPermit {
    /// Charges the partitions created or deleted.
    pub(crate) fn record(&self, now_ms: i64, partitions: i32) {
        let debt_ms = self
            .quotas
            .partition_mutations
            .record(now_ms, u64::try_from(partitions).unwrap_or(0));
        if debt_ms > 0 {
            tracing::debug!(debt_ms, "partition mutation quota in debt");
        }
    }
}

/// A window as MSK states it: whole seconds when it is, else milliseconds (the gateway's text).
fn window(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{ms} ms")
    }
}

/// A cluster's limits: MSK Serverless's defaults with its stored overrides.
pub(crate) async fn cluster_limits(
    store: &dyn MetadataStore,
    cluster_id: Uuid,
) -> ApiResult<ClusterLimits> {
    match store.get_cluster_settings(cluster_id).await? {
        None => Ok(ClusterLimits::default()),
        Some(settings) => limits_from_overrides(&settings.limits),
    }
}

/// Applies overrides (kebab-case limit names) over the defaults, refusing unknown names and
/// unusable values.
pub(crate) fn limits_from_overrides(
    overrides: &std::collections::BTreeMap<String, i64>,
) -> ApiResult<ClusterLimits> {
    let value = serde_json::to_value(overrides)
        .map_err(|e| ApiError::Internal(format!("encoding limits: {e}")))?;
    let limits: ClusterLimits = serde_json::from_value(value)
        .map_err(|e| ApiError::BadRequest(format!("invalid limit overrides: {e}")))?;
    limits
        .validate()
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok(limits)
}
