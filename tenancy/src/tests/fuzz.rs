//! Random and mutated payloads: authentication must never panic.
#![allow(clippy::unwrap_used)] // a failing unwrap is a failing test

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

/// Applies one random mutation to `bytes`.
fn mutate(rng: &mut StdRng, bytes: &mut Vec<u8>) {
    let len = bytes.len();
    match rng.gen_range(0..6) {
        0 if len > 0 => bytes[rng.gen_range(0..len)] ^= 1 << rng.gen_range(0..8),
        1 if len > 0 => bytes[rng.gen_range(0..len)] = rng.gen(),
        2 => bytes.insert(rng.gen_range(0..=len), rng.gen()),
        3 if len > 0 => {
            let start = rng.gen_range(0..len);
            let end = rng.gen_range(start..=len.min(start + 16));
            bytes.drain(start..end);
        }
        4 => bytes.truncate(rng.gen_range(0..=len)),
        _ if len > 0 => {
            let start = rng.gen_range(0..len);
            let chunk: Vec<u8> = bytes[start..len.min(start + 8)].to_vec();
            let at = rng.gen_range(0..=len);
            bytes.splice(at..at, chunk);
        }
        _ => bytes.push(rng.gen()),
    }
}

/// Thousands of random and mutated payloads: nothing panics, and whatever is accepted is the
/// real key's identity (a mutation can be harmless, e.g. in the unsigned User-Agent).
#[tokio::test]
async fn no_payload_panics() {
    let h = harness().await;
    let mut rng = StdRng::seed_from_u64(0x5eed_f10d);
    let expected = h.expected(KEY_ID, Some(T0_MS + 900_000));
    let url = URL_SAFE_NO_PAD.decode(PYTHON_TOKEN).unwrap();
    let seeds: Vec<(Mechanism, Vec<u8>, bool)> = vec![
        (
            Mechanism::AwsMskIam,
            KAFKAJS_PAYLOAD.as_bytes().to_vec(),
            false,
        ),
        (
            Mechanism::AwsMskIam,
            KAFKAJS_PAYLOAD_WITH_SESSION.as_bytes().to_vec(),
            false,
        ),
        (
            Mechanism::OAuthBearer,
            oauthbearer_initial_response(PYTHON_TOKEN),
            false,
        ),
        // Mutating the URL inside the token reaches the URL and SigV4 parsers.
        (Mechanism::OAuthBearer, url, true),
        (
            Mechanism::Plain,
            format!("\0{KEY_ID}\0{SECRET}").into_bytes(),
            false,
        ),
    ];
    let mut accepted = 0;
    for round in 0..3000 {
        let (mechanism, seed, inner_url) = &seeds[round % seeds.len()];
        let mut bytes = seed.clone();
        if round % 10 == 0 {
            bytes = (0..rng.gen_range(0..600)).map(|_| rng.gen()).collect();
        } else {
            for _ in 0..rng.gen_range(1..4) {
                mutate(&mut rng, &mut bytes);
            }
        }
        if *inner_url && round % 10 != 0 {
            bytes = oauthbearer_initial_response(&URL_SAFE_NO_PAD.encode(&bytes));
        }
        if let Ok(id) = h.auth.authenticate(*mechanism, &bytes, T0_MS).await {
            accepted += 1;
            assert_eq!(id.access_key_id, KEY_ID);
            if *mechanism != Mechanism::Plain {
                assert_eq!(id, expected);
            }
        }
    }
    // Most mutations must break the payload.
    assert!(accepted < 600, "{accepted} mutated payloads accepted");
}
