//! Runs one workload: creates topics, starts consumer and producer threads, warms up, measures
//! for the test duration, and returns the result.
//!
//! Every producer and consumer gets its own OS thread: librdkafka does the I/O on its own
//! threads, so ours only pace sends and drain polls, and an async runtime would add nothing.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use rand::{Rng, SeedableRng};
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use tracing::{info, info_span, warn};

use crate::admin::{self, Created};
use crate::catchup::CatchUpWatch;
use crate::clients::{ConsumerCtx, ProducerCtx};
use crate::connection::Connection;
use crate::payload::{sent_at_us, PayloadPool};
use crate::procstat::{self, ServerUsage, WindowCpu};
use crate::report::{backlog as backlog_of, Progress, RunParts, RunResult};
use crate::stats::{new_histogram, Stats};
use crate::workload::{KeyDistributor, Workload};
use crate::LoadtestError;

/// How long consumers may take to get their first assignment.
const ASSIGN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long producers may take to flush what is queued at the end.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// Knobs of one run beyond the workload.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Topic names are `<prefix>-<i>`.
    pub topic_prefix: String,
    /// Overrides the workload's producerRate (msg/s; 0 = max).
    pub rate: Option<f64>,
    /// Print a progress line every second (to stderr).
    pub progress: bool,
    /// Local pid of the server, to report its memory and CPU.
    pub server_pid: Option<u32>,
}

fn wall_us() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Runs `workload` against `conn`.
pub fn run(
    conn: &Connection,
    workload: &Workload,
    opts: &RunOptions,
) -> Result<RunResult, LoadtestError> {
    let span = info_span!("run", workload = %workload.name);
    let _enter = span.enter();
    workload.validate()?;
    let topics: Vec<String> = (0..workload.topics)
        .map(|i| format!("{}-{i}", opts.topic_prefix))
        .collect();
    let created = admin::create_topics(conn, &topics, workload.partitions_per_topic)?;
    info!(?created, topics = topics.len(), "topics ready");
    let idle = admin::open_idle_connections(conn, workload.idle_connections)?;
    if !idle.is_empty() {
        info!(connections = idle.len(), "idle connections open");
    }

    let stats = Arc::new(Stats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let epoch = Instant::now();
    let rate = opts.rate.unwrap_or(workload.producer_rate);
    let server_before = opts.server_pid.and_then(procstat::read);

    // Consumers first, so they are assigned before the first message (unless a backlog is to
    // be built before they start).
    let mut consumers = Vec::new();
    let backlog = workload.backlog_bytes();
    let mut catch_up = None;
    if backlog == 0 {
        consumers = start_consumers(conn, workload, &topics, opts, &stats, &stop)?;
        wait_assigned(&consumers)?;
    }
    // A backlog is built as fast as the endpoint takes it; the workload's rate applies after.
    let unpaced = Arc::new(AtomicBool::new(backlog > 0));
    let producers = start_producers(
        conn, workload, &topics, rate, &stats, &stop, &unpaced, epoch,
    )?;
    if created == Created::MustExist {
        check_topics_exist(&producers, &topics)?;
    }
    if backlog > 0 {
        info!(bytes = backlog, "building backlog before consumers start");
        let mut last_report = Instant::now();
        loop {
            let c = stats.counters();
            if c.acked_bytes >= backlog || (c.publish_errors > 0 && c.acked == 0) {
                break;
            }
            if opts.progress && last_report.elapsed() >= Duration::from_secs(1) {
                last_report = Instant::now();
                eprintln!(
                    "[backlog] {:.2} of {:.2} GB acknowledged, {} errors",
                    c.acked_bytes as f64 / 1e9,
                    backlog as f64 / 1e9,
                    c.publish_errors
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        unpaced.store(false, Ordering::Relaxed);
        let to_read = stats
            .counters()
            .acked_bytes
            .saturating_mul(u64::from(workload.subscriptions_per_topic));
        catch_up =
            Some(CatchUpWatch::start(stats.clone(), to_read).map_err(|e| {
                LoadtestError::NotReady(format!("starting the catch-up watcher: {e}"))
            })?);
        consumers = start_consumers(conn, workload, &topics, opts, &stats, &stop)?;
    }

    let warmup = workload.warmup().unwrap_or_default();
    let duration = workload.test_duration().unwrap_or_default();
    let subscriptions = u64::from(workload.subscriptions_per_topic);
    let mut progress = Progress::new(subscriptions);
    let mut publish_hist = new_histogram();
    let mut e2e_hist = new_histogram();
    let mut samples = Vec::new();
    let start = Instant::now();
    let test_start = start + warmup;
    let test_end = test_start + duration;
    let mut baseline = stats.counters();
    let mut measuring = warmup.is_zero();
    // CPU is counted from the start of the window, not before warm-up or the backlog.
    let cpu_reading = || {
        (
            opts.server_pid.and_then(procstat::read),
            procstat::read(std::process::id()),
        )
    };
    let mut cpu_at_window = cpu_reading();
    // When the window really began: the tick that took the baseline, not the nominal time.
    let mut window_start = start;
    let mut tick = start;
    loop {
        tick += Duration::from_secs(1);
        let wake = tick.min(test_end);
        if let Some(d) = wake.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
        let now = Instant::now();
        let counters = stats.counters();
        let (p, e) = stats.take_interval();
        if measuring {
            // Both histograms share bounds, so merging cannot fail.
            let _ = publish_hist.add(&p);
            let _ = e2e_hist.add(&e);
        }
        let phase = if measuring { "test" } else { "warm-up" };
        let sample = progress.step(now.duration_since(start), counters, &p, &e);
        if opts.progress {
            eprintln!("{}", sample.line(phase));
        }
        if measuring {
            samples.push(sample);
        }
        if !measuring && now >= test_start {
            measuring = true;
            baseline = counters;
            window_start = now;
            cpu_at_window = cpu_reading();
        }
        if now >= test_end {
            break;
        }
    }
    let end_counters = stats.counters();
    let window = end_counters.since(&baseline);
    let elapsed = Instant::now().duration_since(window_start);
    let backlog_end = backlog_of(&end_counters, subscriptions);
    let (server_after, client_after) = cpu_reading();

    let catch_up = catch_up.map(CatchUpWatch::finish);
    stop.store(true, Ordering::Release);
    join_all(producers.into_iter().map(|p| p.handle), &stats, "producer");
    join_all(consumers.into_iter().map(|c| c.handle), &stats, "consumer");
    drop(idle);
    let total = stats.counters();

    let moved = window.acked_bytes + window.received_bytes;
    let seconds = elapsed.as_secs_f64();
    let server = match (
        opts.server_pid,
        server_before,
        cpu_at_window.0,
        server_after,
    ) {
        (Some(pid), Some(before), Some(at_window), Some(after)) => {
            let cpu = WindowCpu::between(at_window, after, moved, seconds);
            Some(ServerUsage {
                pid,
                before,
                after,
                cpu_seconds_per_gb: cpu.cpu_seconds_per_gb,
                cpu_cores: cpu.cpu_cores,
            })
        }
        _ => None,
    };
    let client = match (cpu_at_window.1, client_after) {
        (Some(start), Some(end)) => Some(WindowCpu::between(start, end, moved, seconds)),
        _ => None,
    };
    Ok(RunResult::new(RunParts {
        conn,
        workload,
        rate,
        window: elapsed,
        window_counters: window,
        totals: total,
        publish: &publish_hist,
        e2e: &e2e_hist,
        backlog_end,
        catch_up,
        error_samples: stats.error_samples(),
        server,
        client,
        samples,
    }))
}

fn join_all(handles: impl Iterator<Item = JoinHandle<()>>, stats: &Stats, what: &str) {
    for h in handles {
        if h.join().is_err() {
            stats.note_error(format!("a {what} thread panicked"));
        }
    }
}

struct ProducerHandle {
    producer: ThreadedProducer<ProducerCtx>,
    handle: JoinHandle<()>,
}

struct ConsumerHandle {
    assigned: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

#[allow(clippy::too_many_arguments)]
fn start_producers(
    conn: &Connection,
    w: &Workload,
    topics: &[String],
    rate: f64,
    stats: &Arc<Stats>,
    stop: &Arc<AtomicBool>,
    unpaced: &Arc<AtomicBool>,
    epoch: Instant,
) -> Result<Vec<ProducerHandle>, LoadtestError> {
    let n = topics.len() as u32 * w.producers_per_topic;
    let per_producer = if rate > 0.0 {
        rate / f64::from(n.max(1))
    } else {
        0.0
    };
    let mut cfg = conn.client_config();
    let p = &w.producer;
    cfg.set("acks", &p.acks)
        .set("linger.ms", p.linger_ms.to_string())
        .set("batch.size", p.batch_size.to_string())
        .set("compression.type", &p.compression)
        .set("enable.idempotence", p.idempotence.to_string());
    for (k, v) in &p.extra {
        cfg.set(k, v);
    }
    let mut out = Vec::new();
    let mut index = 0u32;
    for topic in topics {
        for _ in 0..w.producers_per_topic {
            let ctx = ProducerCtx {
                tokens: conn.token_source().cloned(),
                stats: stats.clone(),
                epoch,
            };
            let producer: ThreadedProducer<ProducerCtx> =
                ThreadedProducer::from_config_and_context(&cfg, ctx)?;
            let mut rng = rand::rngs::StdRng::from_entropy();
            let pool = PayloadPool::new(
                &mut rng,
                w.randomized_payload_pool_size as usize,
                w.message_size as usize,
                w.random_bytes_ratio,
                index,
            );
            let job = ProduceJob {
                producer: producer.clone(),
                topic: topic.clone(),
                pool,
                keys: w.key_distributor,
                rate: per_producer,
                stats: stats.clone(),
                stop: stop.clone(),
                unpaced: unpaced.clone(),
                epoch,
                rng,
            };
            let handle = std::thread::Builder::new()
                .name(format!("producer-{index}"))
                .spawn(move || job.run())
                .map_err(|e| LoadtestError::NotReady(format!("spawning a producer: {e}")))?;
            out.push(ProducerHandle { producer, handle });
            index += 1;
        }
    }
    Ok(out)
}

struct ProduceJob {
    producer: ThreadedProducer<ProducerCtx>,
    topic: String,
    pool: PayloadPool,
    keys: KeyDistributor,
    rate: f64,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    /// While set, sends go out as fast as librdkafka takes them (building a backlog).
    unpaced: Arc<AtomicBool>,
    epoch: Instant,
    rng: rand::rngs::StdRng,
}

impl ProduceJob {
    fn run(mut self) {
        // Pacing starts (again) at this time and send count.
        let mut paced_from: Option<(Instant, u64)> = None;
        let mut n: u64 = 0;
        let mut key = String::with_capacity(24);
        while !self.stop.load(Ordering::Relaxed) {
            if self.rate > 0.0 && self.unpaced.load(Ordering::Relaxed) {
                paced_from = None;
            } else if self.rate > 0.0 {
                // Sends are scheduled at fixed times; a producer that falls behind catches up
                // rather than skipping, so the offered load stays what the workload asks.
                let (start, n0) = *paced_from.get_or_insert((Instant::now(), n));
                let due = start + Duration::from_secs_f64((n - n0) as f64 / self.rate);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait.min(Duration::from_millis(10)));
                    continue;
                }
            }
            key.clear();
            let with_key = match self.keys {
                KeyDistributor::NoKey => false,
                KeyDistributor::RandomNano => {
                    let _ = write!(key, "{}", self.rng.gen::<u64>());
                    true
                }
                KeyDistributor::KeyRoundRobin => {
                    let _ = write!(key, "{n}");
                    true
                }
            };
            let sent_us = self.epoch.elapsed().as_micros() as usize;
            let payload = self.pool.next(wall_us());
            let mut record = BaseRecord::<str, [u8], usize>::with_opaque_to(&self.topic, sent_us)
                .payload(payload);
            if with_key {
                record = record.key(key.as_str());
            }
            loop {
                match self.producer.send(record) {
                    Ok(()) => {
                        self.stats.sent.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        if self.stop.load(Ordering::Relaxed) {
                            break;
                        }
                        record = r;
                        // The ThreadedProducer's poll thread drains deliveries meanwhile.
                        std::thread::sleep(Duration::from_micros(500));
                    }
                    Err((e, _)) => {
                        self.stats.publish_errors.fetch_add(1, Ordering::Relaxed);
                        self.stats.note_error(format!("send: {e}"));
                        break;
                    }
                }
            }
            n += 1;
        }
        if let Err(e) = self.producer.flush(FLUSH_TIMEOUT) {
            self.stats.note_error(format!("flush: {e}"));
        }
    }
}

fn start_consumers(
    conn: &Connection,
    w: &Workload,
    topics: &[String],
    opts: &RunOptions,
    stats: &Arc<Stats>,
    stop: &Arc<AtomicBool>,
) -> Result<Vec<ConsumerHandle>, LoadtestError> {
    let c = &w.consumer;
    let mut out = Vec::new();
    for (t, topic) in topics.iter().enumerate() {
        for s in 0..w.subscriptions_per_topic {
            let mut cfg = conn.client_config();
            cfg.set("group.id", format!("{}-t{t}-sub{s}", opts.topic_prefix))
                .set("auto.offset.reset", "earliest")
                .set("enable.auto.commit", "true")
                .set("fetch.min.bytes", c.fetch_min_bytes.to_string())
                .set("fetch.wait.max.ms", c.fetch_max_wait_ms.to_string())
                .set(
                    "max.partition.fetch.bytes",
                    c.max_partition_fetch_bytes.to_string(),
                );
            for (k, v) in &c.extra {
                cfg.set(k, v);
            }
            for i in 0..w.consumer_per_subscription {
                let assigned = Arc::new(AtomicBool::new(false));
                let ctx = ConsumerCtx {
                    tokens: conn.token_source().cloned(),
                    assigned: assigned.clone(),
                };
                let consumer: BaseConsumer<ConsumerCtx> =
                    BaseConsumer::from_config_and_context(&cfg, ctx)?;
                consumer.subscribe(&[topic.as_str()])?;
                let (stats, stop) = (stats.clone(), stop.clone());
                let handle = std::thread::Builder::new()
                    .name(format!("consumer-t{t}-s{s}-{i}"))
                    .spawn(move || consume(consumer, &stats, &stop))
                    .map_err(|e| LoadtestError::NotReady(format!("spawning a consumer: {e}")))?;
                out.push(ConsumerHandle { assigned, handle });
            }
        }
    }
    Ok(out)
}

fn consume(consumer: BaseConsumer<ConsumerCtx>, stats: &Stats, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(m)) => {
                use rdkafka::message::Message;
                let payload = m.payload().unwrap_or_default();
                let e2e = sent_at_us(payload).map(|sent| wall_us().saturating_sub(sent));
                stats.record_receive(payload.len(), e2e);
            }
            Some(Err(e)) => {
                stats.consume_errors.fetch_add(1, Ordering::Relaxed);
                stats.note_error(format!("consume: {e}"));
            }
        }
    }
    // Leave the group now rather than when the session times out.
    consumer.unsubscribe();
}

fn wait_assigned(consumers: &[ConsumerHandle]) -> Result<(), LoadtestError> {
    let deadline = Instant::now() + ASSIGN_TIMEOUT;
    while !consumers.iter().all(|c| c.assigned.load(Ordering::Acquire)) {
        if Instant::now() > deadline {
            return Err(LoadtestError::NotReady(format!(
                "consumers were not assigned partitions within {} s",
                ASSIGN_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn check_topics_exist(
    producers: &[ProducerHandle],
    topics: &[String],
) -> Result<(), LoadtestError> {
    let Some(p) = producers.first() else {
        return Ok(());
    };
    for topic in topics {
        let md = p
            .producer
            .client()
            .fetch_metadata(Some(topic), Duration::from_secs(30))?;
        let ok = md
            .topics()
            .iter()
            .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty());
        if !ok {
            warn!(%topic, "topic missing");
            return Err(LoadtestError::NotReady(format!(
                "topic {topic} does not exist; with SASL_SSL + OAUTHBEARER create it beforehand"
            )));
        }
    }
    Ok(())
}
