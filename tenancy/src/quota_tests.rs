//! Quota tests on a simulated clock.

use super::*;

#[test]
fn defaults_are_msk_serverless() {
    let l = ClusterLimits::default();
    assert_eq!(l.ingress_bytes_per_sec, 200 * MIB);
    assert_eq!(l.egress_bytes_per_sec, 400 * MIB);
    assert_eq!(
        (
            l.partition_ingress_bytes_per_sec,
            l.partition_egress_bytes_per_sec
        ),
        (5 * MIB, 10 * MIB)
    );
    assert_eq!(
        (l.max_connections, l.connection_attempts_per_sec),
        (3000, 100)
    );
    assert_eq!(
        (l.requests_per_sec, l.topic_admin_requests_per_sec),
        (15_000, 2)
    );
    assert_eq!(
        (
            l.max_consumer_groups,
            l.max_partitions,
            l.max_compacted_partitions
        ),
        (500, 2400, 120)
    );
    assert_eq!(
        (
            l.partition_mutations_per_window,
            l.partition_mutation_window_ms
        ),
        (250, 300_000)
    );
    assert_eq!(
        (l.max_fetch_bytes, l.max_message_bytes),
        (55 * MIB, 8 * MIB)
    );
    assert_eq!(l.validate(), Ok(()));
}

#[test]
fn stored_overrides_merge_over_defaults() {
    let l: ClusterLimits =
        serde_json::from_str(r#"{"max-partitions":4800,"ingress-bytes-per-sec":1}"#).unwrap();
    assert_eq!(l.max_partitions, 4800);
    assert_eq!(l.ingress_bytes_per_sec, 1);
    assert_eq!(
        l.egress_bytes_per_sec,
        400 * MIB,
        "untouched limits keep their default"
    );
    let back: ClusterLimits = serde_json::from_str(&serde_json::to_string(&l).unwrap()).unwrap();
    assert_eq!(back, l);
    assert!(
        serde_json::from_str::<ClusterLimits>(r#"{"max-partitons":1}"#).is_err(),
        "typos are refused"
    );
    let zero = ClusterLimits {
        requests_per_sec: 0,
        ..ClusterLimits::default()
    };
    assert_eq!(zero.validate(), Err(LimitsError::Zero("requests-per-sec")));
    assert_eq!(
        zero.validate().unwrap_err().to_string(),
        "cluster limit `requests-per-sec` must be at least 1"
    );
}

#[test]
fn within_the_rate_nothing_is_throttled() {
    let r = RateLimiter::new(1000, 1000, 0);
    // 100 units every 100 ms is exactly the rate.
    for i in 0..100 {
        assert_eq!(r.record(i * 100, 100), 0, "at step {i}");
    }
}

#[test]
fn burst_is_one_window_then_throttle_reports_the_debt() {
    let r = RateLimiter::new(1000, 1000, 0);
    assert_eq!(
        r.record(0, 1000),
        0,
        "a full bucket absorbs one second's worth"
    );
    assert_eq!(r.record(0, 500), 500, "500 units of debt at 1/ms = 500 ms");
    assert_eq!(r.throttle_ms(250), 250);
    assert_eq!(r.throttle_ms(500), 0);
    // Idle time refills at most one window's worth.
    assert_eq!(r.record(100_000, 1000), 0);
    assert_eq!(r.record(100_000, 1), 1);
}

/// A producer that always waits the throttle time converges to the limit: over 60 s it gets
/// the limit times 60 plus at most the one-second burst, whatever its request size.
#[test]
fn throttled_client_converges_to_the_limit() {
    for request in [MIB, 7 * MIB, 64 * MIB] {
        let limit = 200 * MIB;
        let r = RateLimiter::new(limit, 1000, 0);
        let (mut now, mut sent) = (0i64, 0u64);
        while now < 60_000 {
            sent += request;
            let throttle = r.record(now, request);
            now += throttle.max(1) as i64;
        }
        let expected = limit as f64 * 60.0;
        let ratio = sent as f64 / expected;
        assert!(
            ratio > 0.99 && ratio < 1.0 + (limit + request) as f64 / expected,
            "request {request}: ratio {ratio}"
        );
    }
}

#[test]
fn one_tenant_in_debt_does_not_slow_another() {
    let a = ClusterQuotas::new(ClusterLimits::default(), 0);
    let b = ClusterQuotas::new(ClusterLimits::default(), 0);
    assert!(a.ingress.record(0, 2000 * MIB) > 0);
    assert_eq!(b.ingress.record(0, 100 * MIB), 0);
}

#[test]
fn strict_mode_refuses_while_in_debt() {
    // Partition mutations: 250 per 5 minutes, a 300-partition request is admitted into debt …
    let q = ClusterQuotas::new(ClusterLimits::default(), 0);
    assert_eq!(q.partition_mutations.try_acquire(0, 300), Ok(()));
    // … and the next is refused until the 50 of debt are repaid (50 / (250/300000) = 60 s).
    assert_eq!(q.partition_mutations.try_acquire(0, 1), Err(60_000));
    assert_eq!(q.partition_mutations.try_acquire(30_000, 1), Err(30_000));
    assert_eq!(q.partition_mutations.try_acquire(60_000, 1), Ok(()));
    // Connection attempts: 100 per second.
    let c = &q.connection_attempts;
    for _ in 0..100 {
        c.try_acquire(5, 1).unwrap();
    }
    assert_eq!(c.try_acquire(5, 1), Ok(()), "the 101st enters debt");
    assert!(c.try_acquire(5, 1).is_err());
    assert_eq!(c.try_acquire(15, 1), Ok(()));
}

#[test]
fn clock_stepping_back_does_not_refill_or_panic() {
    let r = RateLimiter::new(10, 1000, 1_000);
    assert_eq!(r.record(1_000, 20), 1000);
    assert_eq!(r.record(0, 0), 1000);
    assert_eq!(
        r.record(i64::MIN, u64::MAX),
        i32::MAX as u64,
        "throttle is capped"
    );
}

#[test]
fn count_limits_name_themselves() {
    let l = ClusterLimits::default();
    assert_eq!(l.partitions().check(2390, 10), Ok(()));
    let err = l.partitions().check(2390, 20).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cluster partition limit of 2400 reached (2390 in use, 20 more requested)"
    );
    assert!(l
        .consumer_groups()
        .check(500, 1)
        .unwrap_err()
        .to_string()
        .starts_with("cluster consumer group limit of 500 reached"));
    assert!(l.compacted_partitions().check(0, 121).is_err());
    assert!(
        CountLimit::new("x", u64::MAX).check(u64::MAX, 1).is_err(),
        "overflow is a refusal"
    );
}

#[test]
fn connection_permits_release_on_drop() {
    let l = ConnectionLimit::new(2);
    let a = l.try_open().unwrap();
    let b = l.try_open().unwrap();
    let err = l.try_open().unwrap_err();
    assert_eq!(
        err.to_string(),
        "cluster connection limit of 2 reached (2 in use, 1 more requested)"
    );
    drop(a);
    assert_eq!(l.open(), 1);
    let _c = l.try_open().unwrap();
    drop(b);
    assert_eq!(l.open(), 1);
}
