//! The tokio shell around [`Gateway::handle_frame`]: reads size-prefixed frames, enforces the
//! frame limit before allocating, runs produce requests side by side and everything else one at
//! a time (see [`crate::pipeline`]), answers in request order, and closes on expiry, idle
//! timeout, or shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, field, info, info_span, warn, Instrument};
use uuid::Uuid;

use futures::stream::{FuturesOrdered, StreamExt};
use futures::FutureExt;

use crate::error::ConnectionError;
use crate::pipeline::{
    produce_partitions, PartitionRef, Writing, MAX_IN_FLIGHT, MAX_IN_FLIGHT_BYTES,
};
use crate::request::{ConnState, Outcome};
use crate::server::Gateway;
use crate::session::Session;
use crate::transport::{ClientStream, ListenerInfo};

/// Size of a connection's read and write buffers.
const IO_BUFFER: usize = 64 * 1024;

/// Wall-clock milliseconds: the one place the gateway reads the clock for its core.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Serves one client connection until it closes, fails, or `shutdown` turns true.
pub async fn run<S>(gw: Arc<Gateway>, stream: S, peer: SocketAddr, shutdown: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    run_with(gw, stream, peer, ConnState::default(), shutdown).await
}

/// Serves a connection accepted on `listener`: completes its transport (TLS), admits it to the
/// cluster the transport names, then serves it like [`run`]. A refused connection is closed
/// without a byte of Kafka.
pub async fn run_listener(
    gw: Arc<Gateway>,
    listener: Arc<ListenerInfo>,
    socket: tokio::net::TcpStream,
    peer: SocketAddr,
    shutdown: watch::Receiver<bool>,
) {
    let span = info_span!("accept", listener = %listener.config.name, %peer);
    let accepted = async {
        let (stream, identity) = match gw.accept_transport(&listener, socket, peer).await {
            Ok(a) => a,
            Err(e) => {
                debug!(error = %e, "transport failed");
                return None;
            }
        };
        let mut conn = ConnState::new(identity);
        if let Err(refusal) = gw.establish(&mut conn, now_ms()).await {
            debug!(reason = %refusal, "connection refused");
            return None;
        }
        Some((stream, conn))
    }
    .instrument(span)
    .await;
    let Some((stream, conn)) = accepted else {
        return;
    };
    match stream {
        ClientStream::Plain(s) => run_with(gw, s, peer, conn, shutdown).await,
        ClientStream::Tls(s) => run_with(gw, *s, peer, conn, shutdown).await,
    }
}

async fn run_with<S>(
    gw: Arc<Gateway>,
    stream: S,
    peer: SocketAddr,
    conn: ConnState,
    shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let span = info_span!("connection", %peer, principal = field::Empty);
    async move {
        debug!("connected");
        match serve(&gw, stream, peer, conn, shutdown).await {
            Ok(()) => debug!("closed"),
            Err(ConnectionError::Io(e)) => debug!(error = %e, "connection i/o ended"),
            Err(e) => info!(reason = %e, "connection closed by gateway"),
        }
    }
    .instrument(span)
    .await
}

async fn serve<S>(
    gw: &Gateway,
    stream: S,
    peer: SocketAddr,
    mut conn: ConnState,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ConnectionError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // The one random input: the seed of the request ids sent back to AWS_MSK_IAM clients.
    let mut session = Session::new(Uuid::new_v4()).with_peer(peer);
    // SASL logins are to the cluster the transport named (TLS SNI, else the listener's default).
    session.set_cluster_hint(conn.peer.cluster_hint());
    let mut principal_recorded = false;
    // Credentials and permissions are dropped from the caches when the store's auth epoch
    // changes (polled by one task per gateway, started with the first connection); this
    // connection then re-checks its own credential.
    gw.auth.ensure_epoch_watcher();
    let mut invalidations = gw.auth.subscribe_invalidations();
    // A connection counts against its cluster's limit from its TLS handshake on; one that does
    // not authenticate in time gives its slot back.
    let auth_deadline = Instant::now() + gw.config.authentication_timeout;
    let (reader, writer) = tokio::io::split(stream);
    // Buffered both ways: a frame's size and body come in one read, and answers that are ready
    // together leave in one write (see the in-flight branch below).
    let reader = BufReader::with_capacity(IO_BUFFER, reader);
    let mut writer = BufWriter::with_capacity(IO_BUFFER, writer);
    // Owned by the pending read while one is in progress.
    let mut reader = Some(reader);
    loop {
        // Produce requests run side by side (see `pipeline`) until a request that must run
        // alone arrives; it leaves the loop once everything before it is answered.
        let barrier = {
            let mut in_flight = FuturesOrdered::new();
            let mut writing = Writing::default();
            let mut in_flight_bytes = 0usize;
            // Pinned across the select below, so that nothing abandons a frame half read.
            let mut read = None;
            loop {
                if *shutdown.borrow() {
                    return Ok(());
                }
                if read.is_none()
                    && in_flight.len() < MAX_IN_FLIGHT
                    && in_flight_bytes < MAX_IN_FLIGHT_BYTES
                {
                    if let Some(r) = reader.take() {
                        let limit = gw.frame_limit_on(&session, &conn);
                        read = Some(Box::pin(read_owned(r, limit, gw.config.idle_timeout)));
                    }
                }
                // Close when the credential expires unless the client re-authenticated in time.
                let expiry = session.expires_ms().map(|e| {
                    let left = u64::try_from(e.saturating_sub(now_ms())).unwrap_or(0);
                    Instant::now() + Duration::from_millis(left)
                });
                let unauthenticated = conn.identity(&session).is_none();
                tokio::select! {
                    Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                        let mut next = Some(done);
                        while let Some((id, parts, len, outcome)) = next.take() {
                            let parts: Vec<PartitionRef> = parts;
                            writing.finish(id, &parts);
                            in_flight_bytes -= len;
                            // Answers already done go out with this one, flushed once.
                            next = in_flight.next().now_or_never().flatten();
                            let flush = next.is_none();
                            if emit(gw, &mut writer, outcome, &mut shutdown, flush).await?
                                == Flow::Stop
                            {
                                return Ok(());
                            }
                        }
                    }
                    (r, got) = pending_read(&mut read) => {
                        read = None;
                        reader = Some(r);
                        let frame = match got? {
                            Some(frame) => frame,
                            None => {
                                // End of stream: answer what was asked, if the client still
                                // listens.
                                drain(gw, &mut writer, &mut in_flight, &mut shutdown).await?;
                                return Ok(());
                            }
                        };
                        let parts = (!unauthenticated)
                            .then(|| produce_partitions(&frame))
                            .flatten();
                        match parts {
                            Some(parts) => {
                                let turn = writing.start(&parts);
                                let len = frame.len();
                                in_flight_bytes += len;
                                let (session, conn) = (&session, &conn);
                                in_flight.push_back(async move {
                                    for earlier in turn.after {
                                        // Err only says the earlier produce was dropped: it is
                                        // over either way.
                                        let _ = earlier.await;
                                    }
                                    // Produces after this one on its partitions start
                                    // once the node has ordered it (`turn.done` dropped).
                                    let outcome = gw
                                        .handle_frame_shared(session, conn, frame, now_ms(), Some(turn.done))
                                        .await;
                                    (turn.id, parts, len, outcome)
                                });
                            }
                            None => {
                                if drain(gw, &mut writer, &mut in_flight, &mut shutdown).await?
                                    == Flow::Stop
                                {
                                    return Ok(());
                                }
                                break frame;
                            }
                        }
                    }
                    () = sleep_until(expiry) => return Err(ConnectionError::SessionExpired),
                    () = sleep_until(unauthenticated.then_some(auth_deadline)) => {
                        return Err(ConnectionError::Sasl("not authenticated in time".into()));
                    }
                    _ = shutdown.changed() => return Ok(()),
                    Ok(()) = invalidations.changed() => {
                        revalidate(gw, &session).await?;
                    }
                }
            }
        };
        let outcome = gw
            .handle_frame_on(&mut session, &mut conn, barrier, now_ms())
            .await;
        if emit(gw, &mut writer, outcome, &mut shutdown, true).await? == Flow::Stop {
            return Ok(());
        }
        if !principal_recorded {
            if let Some(id) = conn.identity(&session) {
                tracing::Span::current().record("principal", id.principal.as_str());
                principal_recorded = true;
            }
        }
    }
}

/// Whether the connection goes on after a response.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    /// The gateway is shutting down.
    Stop,
}

/// Sends what `outcome` says to send: the response, a throttled response followed by the mute
/// (reading nothing meanwhile), or a last response before closing (`Err`). A plain response
/// stays in the write buffer unless `flush` (more are about to follow).
async fn emit<W: AsyncWrite + Unpin>(
    gw: &Gateway,
    writer: &mut W,
    outcome: Outcome,
    shutdown: &mut watch::Receiver<bool>,
    flush: bool,
) -> Result<Flow, ConnectionError> {
    match outcome {
        Outcome::Respond(bytes) => write(writer, &bytes, gw.config.write_timeout, flush).await?,
        Outcome::Silent => {
            if flush {
                write(writer, &[], gw.config.write_timeout, true).await?;
            }
        }
        Outcome::Throttled { frame, mute, from } => {
            // Flushed even mid-batch: the client must see it before the mute.
            write(
                writer,
                frame.as_deref().unwrap_or_default(),
                gw.config.write_timeout,
                true,
            )
            .await?;
            // Muted: nothing is read until the throttle has passed (shutdown still ends it).
            tokio::select! {
                () = tokio::time::sleep_until(from + mute) => {}
                _ = shutdown.changed() => return Ok(Flow::Stop),
            }
        }
        Outcome::Close {
            frame,
            delay,
            reason,
        } => {
            if let Some(bytes) = frame {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                // Best effort: the client may already be gone.
                let _ = write(writer, &bytes, gw.config.write_timeout, true).await;
            }
            let _ = tokio::time::timeout(gw.config.write_timeout, writer.shutdown()).await;
            return Err(reason);
        }
    }
    Ok(Flow::Continue)
}

/// Answers every request in flight, in order.
async fn drain<W, F>(
    gw: &Gateway,
    writer: &mut W,
    in_flight: &mut FuturesOrdered<F>,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Flow, ConnectionError>
where
    W: AsyncWrite + Unpin,
    F: Future<Output = (u64, Vec<PartitionRef>, usize, Outcome)>,
{
    while let Some((_, _, _, outcome)) = in_flight.next().await {
        if emit(gw, writer, outcome, shutdown, true).await? == Flow::Stop {
            return Ok(Flow::Stop);
        }
    }
    Ok(Flow::Continue)
}

/// Reads one frame with `read_frame`, giving the reader back with the result, so that a read
/// can stay pending across loop turns without borrowing the connection.
async fn read_owned<R: AsyncRead + Unpin>(
    mut r: R,
    limit: usize,
    idle: Duration,
) -> (R, Result<Option<Bytes>, ConnectionError>) {
    let got = match tokio::time::timeout(idle, read_frame(&mut r, limit)).await {
        Ok(got) => got,
        Err(_) => Err(ConnectionError::Idle),
    };
    (r, got)
}

/// The pending read's result; never ready when no read is pending.
async fn pending_read<F: Future + Unpin>(read: &mut Option<F>) -> F::Output {
    match read {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// Re-checks a SASL-authenticated connection's credential after the auth caches were dropped,
/// closing the connection when the access key was deleted, deactivated or has expired, or the
/// SCRAM principal was removed.
///
/// Closing (rather than refusing the next request) is what a revoked credential means on MSK
/// too: a connection lives only as long as its authentication, and MSK ends it at the next
/// re-authentication at the latest, which a revoked key cannot pass. Closing at once keeps a
/// long session lifetime from stretching a revocation to hours; clients reconnect and get a
/// clean authentication error. A failure to reach the store keeps the connection (a metadata
/// outage must not disconnect every client); the next change re-checks it.
async fn revalidate(gw: &Gateway, session: &Session) -> Result<(), ConnectionError> {
    let Some(identity) = session.identity() else {
        return Ok(());
    };
    match gw.auth.revalidate(identity, now_ms()).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_server_fault() => {
            warn!(error = %e, "could not re-validate the connection's credential; keeping it");
            Ok(())
        }
        Err(e) => Err(ConnectionError::CredentialRevoked(e.to_string())),
    }
}

/// Writes a whole frame (and flushes the buffer when `flush`), failing if the client does not
/// take it within `limit`.
async fn write<S: AsyncWrite + Unpin>(
    stream: &mut S,
    bytes: &[u8],
    limit: Duration,
    flush: bool,
) -> Result<(), ConnectionError> {
    match tokio::time::timeout(limit, async {
        stream.write_all(bytes).await?;
        if flush {
            stream.flush().await?;
        }
        Ok::<(), std::io::Error>(())
    })
    .await
    {
        Ok(r) => Ok(r?),
        Err(_) => Err(ConnectionError::WriteTimeout),
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Reads one frame: `Ok(None)` on a clean end of stream between frames. The size is checked
/// against `limit` before any buffer is allocated.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    limit: usize,
) -> Result<Option<Bytes>, ConnectionError> {
    let mut size = [0u8; 4];
    match r.read_exact(&mut size).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let size = i32::from_be_bytes(size);
    let Ok(len) = usize::try_from(size) else {
        warn!(size, "negative frame size");
        return Err(ConnectionError::FrameSize {
            size: i64::from(size),
            limit,
        });
    };
    if len > limit {
        warn!(size, limit, "frame over the size limit");
        return Err(ConnectionError::FrameSize {
            size: i64::from(size),
            limit,
        });
    }
    let mut buf = BytesMut::zeroed(len);
    r.read_exact(&mut buf).await?;
    Ok(Some(buf.freeze()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::tests::Env;

    #[tokio::test(start_paused = true)]
    async fn mutes_of_requests_charged_together_overlap() {
        let env = Env::new(&["n1"]).await;
        let (_tx, mut shutdown) = watch::channel(false);
        let mut out = Vec::new();
        // Three pipelined produces charged at the same moment, each with the debt so far.
        let from = tokio::time::Instant::now();
        for mute_ms in [300, 600, 900] {
            let outcome = Outcome::Throttled {
                frame: Some(Bytes::from_static(b"answer")),
                mute: Duration::from_millis(mute_ms),
                from,
            };
            let flow = emit(&env.gw, &mut out, outcome, &mut shutdown, false)
                .await
                .unwrap();
            assert!(matches!(flow, Flow::Continue));
        }
        // The connection was muted until the last deadline, not for the sum of the mutes.
        assert_eq!(from.elapsed(), Duration::from_millis(900));
        assert_eq!(out, b"answeransweranswer");
    }
}
