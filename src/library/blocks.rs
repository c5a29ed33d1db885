//! The base generation's papers file, compressed: `papers.<g>.jsonl.zst` holds the same JSONL
//! records as a segment's `papers.<g>.jsonl`, cut at record boundaries into frames of about
//! [`FRAME_BYTES`] and each compressed as an independent zstd frame. Concatenated zstd frames
//! are themselves a zstd stream, so `zstd -dc papers.7.jsonl.zst` prints the records; and a
//! reader that knows where each frame starts (the keys file records it, see [`super::keys`])
//! decompresses only the frame of the record it wants.
//!
//! Why: records are JSON text, about 1.6 KB a paper on real arXiv abstracts and a third of
//! that compressed (measured on 5,000 papers of the arXiv CS corpus: 1,587 bytes raw, 531 in
//! 64 KiB frames at level 3, 485 in 256 KiB frames). Frames of 64 KiB keep the cost of
//! reading one record at one small decompression (tens of microseconds).

use std::cell::RefCell;

use rayon::prelude::*;

/// Uncompressed bytes a frame holds, at least (its last record ends it): small enough that
/// reading one record costs little, large enough for most of the ratio.
pub(crate) const FRAME_BYTES: usize = 64 * 1024;
/// zstd's default level: about 300 MB/s a core to compress, so a million papers' records
/// (1.6 GB) take a few seconds of a full commit.
const LEVEL: i32 = 3;

/// Where frame `i` starts: in the compressed file and in the records it decompresses to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameStart {
    pub compressed: u64,
    pub records: u64,
}

/// JSONL records compressed in frames, with each frame's start and a final entry for the end.
pub(crate) struct Framed {
    pub bytes: Vec<u8>,
    pub starts: Vec<FrameStart>,
}

/// Compresses `jsonl` (whole lines) in frames cut after the newline that passes
/// [`FRAME_BYTES`], on every core.
pub(crate) fn compress(jsonl: &[u8]) -> std::io::Result<Framed> {
    let mut cuts = vec![0usize];
    let mut at = 0;
    while at < jsonl.len() {
        let min = (at + FRAME_BYTES).min(jsonl.len());
        let end = match jsonl[min..].iter().position(|&b| b == b'\n') {
            Some(i) if min < jsonl.len() => min + i + 1,
            _ => jsonl.len(),
        };
        cuts.push(end);
        at = end;
    }
    let frames: Vec<Vec<u8>> = cuts
        .par_windows(2)
        .map(|w| {
            // Each frame carries zstd's checksum of its content, so that damage is an error
            // when the frame is read, even in a file too large to check whole on open.
            let mut c = zstd::bulk::Compressor::new(LEVEL)?;
            c.include_checksum(true)?;
            c.compress(&jsonl[w[0]..w[1]])
        })
        .collect::<std::io::Result<_>>()?;
    let mut bytes = Vec::with_capacity(frames.iter().map(Vec::len).sum());
    let mut starts = Vec::with_capacity(cuts.len());
    for (frame, &cut) in frames.iter().zip(&cuts) {
        starts.push(FrameStart {
            compressed: bytes.len() as u64,
            records: cut as u64,
        });
        bytes.extend_from_slice(frame);
    }
    starts.push(FrameStart {
        compressed: bytes.len() as u64,
        records: jsonl.len() as u64,
    });
    Ok(Framed { bytes, starts })
}

thread_local! {
    /// Each thread's zstd decompression context, kept: making one allocates and clears about
    /// 100 KiB, which cost a tenth of reading one record (a server's `similar` reads a dozen).
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

/// Decompresses one frame, which must hold exactly `len` bytes of records.
pub(crate) fn decompress_frame(frame: &[u8], len: usize) -> Result<Vec<u8>, String> {
    let damaged = |e: std::io::Error| format!("a damaged frame ({e})");
    let out = DECOMPRESSOR.with(|slot| -> Result<Vec<u8>, String> {
        let mut slot = slot.borrow_mut();
        let d = match slot.as_mut() {
            Some(d) => d,
            None => slot.insert(zstd::bulk::Decompressor::new().map_err(damaged)?),
        };
        d.decompress(frame, len).map_err(damaged)
    })?;
    if out.len() != len {
        return Err(format!(
            "a frame holds {} bytes of records where {len} were written",
            out.len()
        ));
    }
    Ok(out)
}

/// Decompresses a whole papers file (every frame, in order) without its frame table.
pub(crate) fn decompress_all(bytes: &[u8]) -> Result<Vec<u8>, String> {
    zstd::stream::decode_all(bytes).map_err(|e| format!("is not a zstd stream of records ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_cut_at_records_and_decompress_alone_or_together() {
        let jsonl: Vec<u8> = (0..5000)
            .flat_map(|i| {
                format!("{{\"id\":\"{i}\",\"abstract\":\"paper number {i} of many\"}}\n")
                    .into_bytes()
            })
            .collect();
        let framed = compress(&jsonl).unwrap();
        assert!(
            framed.starts.len() > 2,
            "{} frames",
            framed.starts.len() - 1
        );
        assert!(framed.bytes.len() * 3 < jsonl.len());
        assert_eq!(decompress_all(&framed.bytes).unwrap(), jsonl);
        for w in framed.starts.windows(2) {
            let (a, b) = (w[0], w[1]);
            let frame = &framed.bytes[a.compressed as usize..b.compressed as usize];
            let len = (b.records - a.records) as usize;
            let records = decompress_frame(frame, len).unwrap();
            assert_eq!(records, jsonl[a.records as usize..b.records as usize]);
            assert_eq!(
                records.last(),
                Some(&b'\n'),
                "a frame ends with a whole record"
            );
            assert!(decompress_frame(frame, len - 1).is_err());
        }
        assert_eq!(compress(b"").unwrap().starts.len(), 1);
        // A flipped byte anywhere in a frame is an error, not other records.
        let (a, b) = (framed.starts[1], framed.starts[2]);
        for at in [
            a.compressed + 3,
            (a.compressed + b.compressed) / 2,
            b.compressed - 2,
        ] {
            let mut damaged = framed.bytes.clone();
            damaged[at as usize] ^= 0x20;
            let frame = &damaged[a.compressed as usize..b.compressed as usize];
            let len = (b.records - a.records) as usize;
            assert!(decompress_frame(frame, len).is_err(), "byte {at}");
            assert!(decompress_all(&damaged).is_err(), "byte {at}");
        }
    }
}
