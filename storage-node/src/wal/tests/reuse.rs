//! Trimmed segments reused as new ones: what their files still hold from before is never read
//! back, and version-1 logs written by earlier builds still open.

use super::*;
use crate::wal::format::{encode_record_head, HEADER_LEN, MAGIC};
use crate::wal::WalError;

fn free_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".free"))
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn reused_segments_recover_exactly_the_new_records() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_segments(400);
    let (wal, _) = Wal::open(dir.path(), config.clone()).await.unwrap();
    // Large records first: every segment file grows to ~1 KiB.
    let mut ends = Vec::new();
    for i in 0..4 {
        ends.push(append(&wal, vec![rec(i, 1000)]).await);
    }
    assert_eq!(wal.segments(), [1, 2, 3, 4, 5]);
    wal.trim(ends[2]).await.unwrap();
    assert_eq!(wal.segments(), [4, 5]);
    assert_eq!(
        free_files(dir.path()),
        ["00000000000000000001.free", "00000000000000000002.free"],
        "two trimmed segments kept, the third deleted"
    );
    assert!(!dir.path().join("00000000000000000003.free").exists());

    // Small records now: the reused files (segments 6 and 7) keep ~1 KiB of old records
    // beyond the new ones, in a sealed segment (6) and in the active one (7).
    let mut written = Vec::new();
    for i in 10..20 {
        let r = rec(i, 60);
        let pos = append(&wal, vec![r.clone()]).await;
        written.push((pos, r));
    }
    let segments = wal.segments();
    assert!(segments.len() >= 4, "{segments:?}");
    assert!(free_files(dir.path()).is_empty(), "both kept files reused");
    let reused = std::fs::metadata(seg(dir.path(), 7)).unwrap().len();
    assert!(
        reused > 1000,
        "segment 7 still holds its earlier contents: {reused} bytes"
    );
    wal.close().await.unwrap();

    let (wal, recovered) = Wal::open(dir.path(), config).await.unwrap();
    // Segment 5 was new; 6 and 7 are the reused files.
    let recovered_tail: Vec<_> = recovered
        .iter()
        .filter(|(p, _)| p.segment >= 5)
        .cloned()
        .collect();
    assert_eq!(recovered_tail, written);
    assert_eq!(
        recovered.len(),
        1 + written.len(),
        "segment 4's record and the new ones"
    );
    // Appends continue after the recovered end of the reused active segment.
    let last = recovered.last().unwrap().0;
    let next = append(&wal, vec![rec(99, 10)]).await;
    assert!(next > last);
}

#[tokio::test]
async fn a_reused_sealed_segment_ends_where_its_successor_says() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_segments(400);
    let (wal, _) = Wal::open(dir.path(), config.clone()).await.unwrap();
    let mut ends = Vec::new();
    for i in 0..3 {
        ends.push(append(&wal, vec![rec(i, 1000)]).await);
    }
    wal.trim(ends[1]).await.unwrap();
    let mut last = ends[2];
    while last.segment < 7 {
        last = append(&wal, vec![rec(7, 60)]).await;
    }
    wal.close().await.unwrap();
    // Segment 5 reused a 1 KiB file; its successor's header says where its records end.
    // Damage to the first byte after that end is harmless: it is the old contents.
    let end_of_5 = {
        let h = std::fs::read(seg(dir.path(), 6)).unwrap();
        u64::from_le_bytes(h[24..32].try_into().unwrap())
    };
    let size_of_5 = std::fs::metadata(seg(dir.path(), 5)).unwrap().len();
    assert!(size_of_5 > end_of_5, "{size_of_5} vs {end_of_5}");
    flip(&seg(dir.path(), 5), end_of_5);
    Wal::open(dir.path(), config.clone()).await.unwrap();
    // Cutting the file before that end is not.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(seg(dir.path(), 5))
        .unwrap();
    f.set_len(end_of_5 - 1).unwrap();
    match Wal::open(dir.path(), config).await {
        Err(WalError::Corrupt { segment: 5, .. }) => {}
        other => panic!("expected corruption of segment 5, got {other:?}"),
    }
}

/// A version-1 segment as the first release wrote it: CRC of bytes 0..24 at 24, records
/// checksummed from zero.
fn v1_segment(seq: u64, records: &[WalRecord]) -> Vec<u8> {
    let mut out = vec![0u8; HEADER_LEN];
    out[0..8].copy_from_slice(&MAGIC);
    out[8..12].copy_from_slice(&1u32.to_le_bytes());
    out[16..24].copy_from_slice(&seq.to_le_bytes());
    let crc = crc32c::crc32c(&out[0..24]);
    out[24..28].copy_from_slice(&crc.to_le_bytes());
    for r in records {
        encode_record_head(r, HEADER_LEN as u64, 0, &mut out);
        out.extend_from_slice(&r.batches);
    }
    out
}

#[tokio::test]
async fn version_1_logs_open_and_grow() {
    let dir = tempfile::tempdir().unwrap();
    let old = vec![rec(1, 50), rec(2, 50)];
    std::fs::write(seg(dir.path(), 1), v1_segment(1, &old[..1])).unwrap();
    std::fs::write(seg(dir.path(), 2), v1_segment(2, &old[1..])).unwrap();
    let config = small_segments(300);
    let (wal, recovered) = Wal::open(dir.path(), config.clone()).await.unwrap();
    assert_eq!(
        recovered.into_iter().map(|(_, r)| r).collect::<Vec<_>>(),
        old
    );
    // Appended to the version-1 active segment, then into new version-2 segments.
    let mut new = Vec::new();
    for i in 3..8 {
        new.push(rec(i, 50));
        append(&wal, vec![rec(i, 50)]).await;
    }
    assert!(wal.segments().len() > 2);
    wal.close().await.unwrap();
    let (_wal, recovered) = Wal::open(dir.path(), config).await.unwrap();
    let all: Vec<_> = old.into_iter().chain(new).collect();
    assert_eq!(
        recovered.into_iter().map(|(_, r)| r).collect::<Vec<_>>(),
        all
    );
}
