//! Reading and writing float32 matrices in NumPy's `.npy` format (version 1.0, C order), so
//! that a library's embeddings open with `numpy.load`.

use std::io::{Read, Write};

/// The longest `.npy` header [`read_f32`] reads.
const MAX_HEADER: u64 = 1 << 20;

/// Encodes a row-major `rows × cols` f32 matrix as `.npy` bytes.
pub fn encode_f32(data: &[f32], rows: usize, cols: usize) -> Vec<u8> {
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    // Magic (6) + version (2) + header length (2) + dict, padded with spaces so the data starts
    // on a 64-byte boundary, ending in a newline.
    let unpadded = 10 + dict.len() + 1;
    let padding = (64 - unpadded % 64) % 64;
    let header_len = dict.len() + padding + 1;
    let mut out = Vec::with_capacity(10 + header_len + data.len() * 4);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header_len as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.extend(std::iter::repeat_n(b' ', padding));
    out.push(b'\n');
    for v in data {
        out.write_all(&v.to_le_bytes())
            .expect("writing to a Vec cannot fail");
    }
    out
}

/// Decodes `.npy` bytes holding a 2-D little-endian f32 matrix: returns (data, rows, cols).
pub fn decode_f32(bytes: &[u8]) -> Result<(Vec<f32>, usize, usize), String> {
    let (data_start, rows, cols) = decode_header(bytes)?;
    let body = &bytes[data_start..];
    let expected = body_len(rows, cols)?;
    if body.len() != expected {
        return Err(truncated(rows, cols, expected, body.len()));
    }
    let data = body
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok((data, rows, cols))
}

/// Reads a `.npy` file of `file_len` bytes holding a 2-D little-endian f32 matrix, as
/// [`decode_f32`] does, without holding the file's bytes and the matrix at once (a matrix of
/// a million abstracts is 1.5 GB). I/O errors are returned as text.
pub fn read_f32(mut file: impl Read, file_len: u64) -> Result<(Vec<f32>, usize, usize), String> {
    // The magic, version and header length, then the header itself.
    let mut head = vec![0u8; 12.min(file_len as usize)];
    file.read_exact(&mut head).map_err(|e| e.to_string())?;
    let header_end = match head.get(6) {
        Some(1) if head.len() >= 10 => 10 + u16::from_le_bytes([head[8], head[9]]) as u64,
        Some(2 | 3) if head.len() >= 12 => {
            12 + u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as u64
        }
        _ => {
            return Err(decode_header(&head)
                .err()
                .unwrap_or_else(|| "truncated .npy header".into()))
        }
    };
    if header_end > file_len || header_end < head.len() as u64 {
        return Err("truncated .npy header".into());
    }
    // NumPy writes headers of a few dozen bytes; a longer one is not a matrix of ours.
    if header_end > MAX_HEADER {
        return Err(format!(
            "the .npy header is {header_end} bytes, over the {MAX_HEADER} a matrix needs"
        ));
    }
    let mut rest = vec![0u8; (header_end - head.len() as u64) as usize];
    file.read_exact(&mut rest).map_err(|e| e.to_string())?;
    head.extend_from_slice(&rest);
    let (data_start, rows, cols) = decode_header(&head)?;
    let expected = body_len(rows, cols)?;
    let got = file_len - data_start as u64;
    if got != expected as u64 {
        return Err(truncated(rows, cols, expected, got as usize));
    }
    let mut data = Vec::with_capacity(rows * cols);
    let mut chunk = vec![0u8; (1 << 20).min(expected)];
    let mut left = expected;
    while left > 0 {
        let n = chunk.len().min(left);
        file.read_exact(&mut chunk[..n])
            .map_err(|e| e.to_string())?;
        data.extend(
            chunk[..n]
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        );
        left -= n;
    }
    Ok((data, rows, cols))
}

/// A `.npy` f32 matrix memory-mapped where it lies: opening it reads the header only, and its
/// pages are read when a search touches them. The library never changes a file it wrote, only
/// replaces it by renaming, so the mapping stays valid while it is open.
pub struct MappedF32 {
    map: memmap2::Mmap,
    start: usize,
    rows: usize,
    cols: usize,
}

impl MappedF32 {
    /// Maps `file`. Fails (as text) on a header [`decode_f32`] refuses, a body of the wrong
    /// length, or data that cannot be used in place: not 4-byte aligned (papersim aligns to 64
    /// bytes, as NumPy does) or a big-endian machine. Callers then read the file instead.
    pub fn map(file: &std::fs::File) -> Result<MappedF32, String> {
        // SAFETY: the mapping is read-only and papersim never writes a file it has named in a
        // manifest (files are created new and replaced by rename); a file truncated by another
        // program while mapped is outside what the library can protect against, as for any
        // reader of a file another program destroys.
        // Populated at once: every search scans every row, and the kernel maps a file's pages
        // in bulk far faster than a scan faults them in one by one (about 40% of a 100,000-
        // paper `similar` went to page faults).
        let map = unsafe { memmap2::MmapOptions::new().populate().map(file) }
            .map_err(|e| e.to_string())?;
        let head = &map[..map.len().min(MAX_HEADER as usize)];
        let (start, rows, cols) = decode_header(head)?;
        let expected = body_len(rows, cols)?;
        if map.len() - start != expected {
            return Err(truncated(rows, cols, expected, map.len() - start));
        }
        if cfg!(target_endian = "big") || !(map.as_ptr() as usize + start).is_multiple_of(4) {
            return Err("the matrix cannot be used in place (unaligned or big-endian)".into());
        }
        Ok(MappedF32 {
            map,
            start,
            rows,
            cols,
        })
    }

    /// The whole file, header included (what its checksum covers).
    pub fn file_bytes(&self) -> &[u8] {
        &self.map
    }

    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }
}

impl AsRef<[f32]> for MappedF32 {
    fn as_ref(&self) -> &[f32] {
        let body = &self.map[self.start..];
        // SAFETY: `map` checked that the body starts 4-byte aligned, holds exactly rows × cols
        // f32 values, and that this machine is little-endian like the file; every bit
        // pattern is a valid f32, and the mapping lives as long as `self`.
        unsafe { std::slice::from_raw_parts(body.as_ptr().cast::<f32>(), self.rows * self.cols) }
    }
}

/// The bytes of a `rows × cols` f32 body.
fn body_len(rows: usize, cols: usize) -> Result<usize, String> {
    rows.checked_mul(cols)
        .and_then(|n| n.checked_mul(4))
        .ok_or_else(|| "shape overflows".into())
}

fn truncated(rows: usize, cols: usize, expected: usize, got: usize) -> String {
    format!(
        "truncated or padded data: shape ({rows}, {cols}) needs {expected} bytes, file has {got}"
    )
}

/// Checks a `.npy` header (magic, version, little-endian f32, C order, 2-D): returns where the
/// data starts and the shape.
fn decode_header(bytes: &[u8]) -> Result<(usize, usize, usize), String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not a .npy file (bad magic)".into());
    }
    let (header_start, header_len) = match bytes[6] {
        1 => (10usize, u16::from_le_bytes([bytes[8], bytes[9]]) as usize),
        2 | 3 if bytes.len() >= 12 => (
            12,
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
        ),
        v => return Err(format!("unsupported .npy version {v}")),
    };
    let data_start = header_start
        .checked_add(header_len)
        .filter(|&e| e <= bytes.len())
        .ok_or("truncated .npy header")?;
    let header = std::str::from_utf8(&bytes[header_start..data_start])
        .map_err(|_| "the .npy header is not text")?;
    if !header.contains("'descr': '<f4'") {
        return Err(format!(
            "expected little-endian float32 data, header is {}",
            header.trim()
        ));
    }
    if header.contains("'fortran_order': True") {
        return Err("Fortran-ordered arrays are not supported".into());
    }
    let shape = header
        .split("'shape':")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .map(|s| s.trim().trim_start_matches('('))
        .ok_or("the .npy header has no shape")?;
    let dims: Vec<usize> = shape
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| format!("bad shape `{shape}`"))
        })
        .collect::<Result<_, _>>()?;
    let [rows, cols] = dims[..] else {
        return Err(format!("expected a 2-D array, shape is ({shape})"));
    };
    Ok((data_start, rows, cols))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_alignment() {
        let data: Vec<f32> = (0..12).map(|i| i as f32 * 0.5).collect();
        let bytes = encode_f32(&data, 3, 4);
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + header_len) % 64, 0);
        assert_eq!(decode_f32(&bytes).unwrap(), (data.clone(), 3, 4));
        assert!(decode_f32(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode_f32(b"garbage").is_err());
        let read = |b: &[u8]| read_f32(b, b.len() as u64);
        assert_eq!(read(&bytes).unwrap(), (data.clone(), 3, 4));
        for cut in [0, 5, 11, 30, bytes.len() - 1] {
            assert!(read(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert!(read(b"garbage").is_err());
        assert_eq!(
            decode_f32(&encode_f32(&[], 0, 384)).unwrap(),
            (vec![], 0, 384)
        );
    }
}
