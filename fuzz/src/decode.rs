//! Oracle of the `wal_record_decode` target: no decoder panics; a decoded record re-encodes to
//! its exact bytes; segment headers, identity and snapshot files survive a
//! decode → encode → decode round trip.

use bytes::Bytes;
use storage::codec;

pub fn check(data: &[u8]) {
    records(data);
    if let Ok(h) = codec::decode_segment_header(data) {
        let id = storage::Identity {
            cluster_id: h.cluster_id,
            node_id: h.node_id,
            bootstrap: raft::Configuration::new([h.node_id]),
        };
        let again = codec::encode_segment_header(h.seq, &id);
        assert_eq!(codec::decode_segment_header(&again), Ok(h));
    }
    if let Ok(id) = codec::decode_identity(data) {
        let again = codec::encode_identity(&id);
        assert_eq!(codec::decode_identity(&again), Ok(id));
    }
    if let Ok((cluster, snap)) = codec::decode_snapshot(data) {
        let again = codec::encode_snapshot(cluster, &snap);
        assert_eq!(codec::decode_snapshot(&again), Ok((cluster, snap)));
    }
}

/// Decode records back to back from the start, then try every offset (as recovery's scan
/// for a valid record after a bad one does).
fn records(data: &[u8]) {
    let mut at = 0;
    while at < data.len() {
        match codec::decode_record(&data[at..]) {
            Ok((rec, n)) => {
                assert!(n > codec::RECORD_HEADER_BYTES && at + n <= data.len());
                let mut out = Vec::new();
                codec::encode_record(&rec, &mut out);
                assert_eq!(
                    out,
                    &data[at..at + n],
                    "record {rec:?} re-encodes differently"
                );
                at += n;
            }
            Err(_) => break,
        }
    }
    let buf = Bytes::copy_from_slice(data);
    for p in 0..data.len().min(512) {
        if let (Ok(a), Ok(b)) = (
            codec::decode_record(&data[p..]),
            codec::decode_record_in(&buf, p),
        ) {
            assert_eq!(a, b, "decode_record_in differs from decode_record at {p}");
        }
    }
}
