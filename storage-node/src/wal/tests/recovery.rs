//! Recovery: torn tails, corruption, missing segments, and random damage.

use super::*;
use crate::wal::format::{HEADER_LEN, RECORD_OVERHEAD};
use crate::wal::WalError;

/// Writes `groups` (each one append, awaited before the next, so each is its own write group)
/// and returns every record with its end position.
async fn write_groups(
    dir: &Path,
    config: &WalConfig,
    groups: Vec<Vec<WalRecord>>,
) -> Vec<(WalPosition, WalRecord)> {
    let (wal, _) = Wal::open(dir, config.clone()).await.unwrap();
    let mut out = Vec::new();
    for records in groups {
        let mut end = append(&wal, records.clone()).await;
        // Positions of the earlier records of the group, from their sizes.
        let mut positions = Vec::new();
        for r in records.iter().rev() {
            positions.push(end);
            end.offset -= (RECORD_OVERHEAD + r.batches.len()) as u64;
        }
        out.extend(positions.into_iter().rev().zip(records));
    }
    wal.close().await.unwrap();
    out
}

fn len_of(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

#[tokio::test]
async fn a_record_cut_short_at_the_end_is_truncated_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    let config = WalConfig::default();
    let written = write_groups(
        dir.path(),
        &config,
        (0..3).map(|i| vec![rec(i, 100)]).collect(),
    )
    .await;
    let path = seg(dir.path(), 1);
    let full = len_of(&path);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(full - 5)
        .unwrap();

    let (wal, recovered) = Wal::open(dir.path(), config.clone()).await.unwrap();
    assert_eq!(recovered, written[..2]);
    assert_eq!(len_of(&path), written[1].0.offset, "torn bytes are cut off");
    let pos = append(&wal, vec![rec(7, 20)]).await;
    assert_eq!(
        pos.offset,
        written[1].0.offset + (RECORD_OVERHEAD + 20) as u64
    );
    wal.close().await.unwrap();

    let (_wal, recovered) = Wal::open(dir.path(), config).await.unwrap();
    assert_eq!(recovered.len(), 3);
    assert_eq!(recovered[2], (pos, rec(7, 20)));
}

#[tokio::test]
async fn garbage_after_the_last_record_is_truncated() {
    let garbage: [&[u8]; 4] = [
        b"\x01",
        &[0u8; 4096],
        // A plausible length with a wrong checksum and a body that fits the file.
        &[
            100, 0, 0, 0, 1, 2, 3, 4, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9,
            9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9,
            9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9,
            9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9,
        ],
        &[0xff; 300],
    ];
    for junk in garbage {
        let dir = tempfile::tempdir().unwrap();
        let config = WalConfig::default();
        let written = write_groups(
            dir.path(),
            &config,
            (0..2).map(|i| vec![rec(i, 40)]).collect(),
        )
        .await;
        let path = seg(dir.path(), 1);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(junk);
        std::fs::write(&path, bytes).unwrap();

        let (wal, recovered) = Wal::open(dir.path(), config.clone()).await.unwrap();
        assert_eq!(recovered, written, "junk of {} bytes", junk.len());
        append(&wal, vec![rec(5, 5)]).await;
        wal.close().await.unwrap();
        let (_wal, recovered) = Wal::open(dir.path(), config).await.unwrap();
        assert_eq!(recovered.len(), 3);
    }
}

#[tokio::test]
async fn damage_inside_the_last_unsynced_group_is_a_torn_tail() {
    // The last group's later pages reached the disk but a middle one did not: nothing of that
    // group was ever acknowledged, so it is cut at the damage.
    let dir = tempfile::tempdir().unwrap();
    let config = WalConfig::default();
    let written = write_groups(
        dir.path(),
        &config,
        vec![vec![rec(0, 50)], vec![rec(1, 50), rec(2, 50), rec(3, 50)]],
    )
    .await;
    let path = seg(dir.path(), 1);
    // Inside the batch bytes of record 2, the second record of the last group.
    flip(&path, written[1].0.offset + RECORD_OVERHEAD as u64 + 10);

    let (_wal, recovered) = Wal::open(dir.path(), config).await.unwrap();
    assert_eq!(recovered, written[..2]);
    assert_eq!(len_of(&path), written[1].0.offset);
}

#[tokio::test]
async fn damage_to_a_synced_record_of_the_last_segment_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let config = WalConfig::default();
    let written = write_groups(
        dir.path(),
        &config,
        (0..3).map(|i| vec![rec(i, 50)]).collect(),
    )
    .await;
    let path = seg(dir.path(), 1);
    let before = std::fs::read(&path).unwrap();
    flip(&path, written[0].0.offset + 20);

    match Wal::open(dir.path(), config).await {
        Err(WalError::Corrupt {
            segment: 1, offset, ..
        }) => assert_eq!(offset, written[0].0.offset),
        other => panic!("expected corruption, got {other:?}"),
    }
    // Nothing was truncated.
    let mut after = std::fs::read(&path).unwrap();
    after[written[0].0.offset as usize + 20] ^= 0x10;
    assert_eq!(after, before);
}

#[tokio::test]
async fn damage_in_a_sealed_segment_is_corruption() {
    let config = small_segments(500);
    for (what, damage) in [("flip", 0u8), ("cut", 1)] {
        let dir = tempfile::tempdir().unwrap();
        let written = write_groups(
            dir.path(),
            &config,
            (0..4).map(|i| vec![rec(i, 200)]).collect(),
        )
        .await;
        assert_eq!(
            written.iter().map(|(p, _)| p.segment).collect::<Vec<_>>(),
            [1, 1, 2, 2]
        );
        let path = seg(dir.path(), 1);
        // The very last record of segment 1, the place a torn tail would be in the last one.
        let at = written[0].0.offset;
        if damage == 0 {
            flip(&path, at + 30);
        } else {
            let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            f.set_len(len_of(&path) - 1).unwrap();
        }
        match Wal::open(dir.path(), config.clone()).await {
            Err(WalError::Corrupt {
                segment: 1, offset, ..
            }) => assert_eq!(offset, at, "{what}"),
            other => panic!("{what}: expected corruption of segment 1, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_bad_header_or_missing_segment_is_corruption() {
    // Every 289-byte segment reaches 250 bytes after one record.
    let config = small_segments(250);
    let dir = tempfile::tempdir().unwrap();
    write_groups(
        dir.path(),
        &config,
        (0..4).map(|i| vec![rec(i, 200)]).collect(),
    )
    .await;
    assert!(seg(dir.path(), 5).exists());

    let saved = std::fs::read(seg(dir.path(), 2)).unwrap();
    flip(&seg(dir.path(), 2), 3);
    assert!(matches!(
        Wal::open(dir.path(), config.clone()).await,
        Err(WalError::Corrupt {
            segment: 2,
            offset: 0,
            ..
        })
    ));
    std::fs::remove_file(seg(dir.path(), 2)).unwrap();
    assert!(matches!(
        Wal::open(dir.path(), config.clone()).await,
        Err(WalError::Corrupt {
            segment: 2,
            offset: 0,
            ..
        })
    ));
    std::fs::write(seg(dir.path(), 2), saved).unwrap();
    let (_wal, recovered) = Wal::open(dir.path(), config).await.unwrap();
    assert_eq!(recovered.len(), 4);
}

#[tokio::test]
async fn a_torn_header_of_a_new_last_segment_is_rewritten() {
    let config = small_segments(250);
    let dir = tempfile::tempdir().unwrap();
    let written = write_groups(
        dir.path(),
        &config,
        (0..2).map(|i| vec![rec(i, 200)]).collect(),
    )
    .await;
    // Segment 3 is active and empty; simulate a crash while writing its header.
    let path = seg(dir.path(), 3);
    assert_eq!(len_of(&path), HEADER_LEN as u64);
    std::fs::write(&path, b"FJORD").unwrap();

    let (wal, recovered) = Wal::open(dir.path(), config.clone()).await.unwrap();
    assert_eq!(recovered, written);
    let pos = append(&wal, vec![rec(9, 1)]).await;
    assert_eq!(pos.segment, 3);
    wal.close().await.unwrap();
    let (_wal, recovered) = Wal::open(dir.path(), config).await.unwrap();
    assert_eq!(recovered.len(), 3);
}

/// xorshift64*: a tiny deterministic generator, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[tokio::test]
async fn random_damage_never_panics_and_never_yields_altered_records() {
    let config = small_segments(1000);
    let pristine = tempfile::tempdir().unwrap();
    let groups = (0..12u64)
        .map(|g| {
            (0..1 + g % 3)
                .map(|k| rec(g * 3 + k, 20 + (g * 37 + k * 11) as usize % 200))
                .collect()
        })
        .collect();
    let written = write_groups(pristine.path(), &config, groups).await;
    let seqs = crate::wal::segment::list_segments(pristine.path()).unwrap();
    assert!(
        seqs.len() >= 3,
        "the damage should hit sealed and active segments"
    );
    let files: Vec<(u64, Vec<u8>)> = seqs
        .iter()
        .map(|&s| (s, std::fs::read(seg(pristine.path(), s)).unwrap()))
        .collect();

    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let (mut ok, mut corrupt) = (0, 0);
    for round in 0..400 {
        let dir = tempfile::tempdir().unwrap();
        for (s, bytes) in &files {
            std::fs::write(seg(dir.path(), *s), bytes).unwrap();
        }
        let (victim, bytes) = &files[rng.below(files.len() as u64) as usize];
        let mut damaged = bytes.clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(damaged.len() as u64) as usize;
            damaged[at] ^= 1 << rng.below(8);
        }
        if rng.below(4) == 0 {
            damaged.truncate(rng.below(damaged.len() as u64 + 1) as usize);
        }
        std::fs::write(seg(dir.path(), *victim), &damaged).unwrap();

        match Wal::open(dir.path(), config.clone()).await {
            Ok((wal, recovered)) => {
                ok += 1;
                // Whatever comes back is exactly what was written, in order.
                assert!(
                    recovered.len() <= written.len() && recovered[..] == written[..recovered.len()],
                    "round {round}: recovered records are not a prefix of the written ones"
                );
                wal.close().await.unwrap();
            }
            Err(WalError::Corrupt { .. }) => corrupt += 1,
            Err(other) => panic!("round {round}: unexpected error {other}"),
        }
    }
    assert!(
        ok > 0 && corrupt > 0,
        "both outcomes exercised: ok {ok}, corrupt {corrupt}"
    );
}
