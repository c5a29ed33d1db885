//! Reading and writing float32 and float16 matrices in NumPy's `.npy` format (version 1.0, C
//! order, little-endian `<f4` or `<f2`), so that a library's embeddings open with
//! `numpy.load`.

use std::io::{Read, Write};
use std::marker::PhantomData;

use half::f16;

use crate::index::VectorDtype;

/// The longest `.npy` header [`read_f32`] reads.
const MAX_HEADER: u64 = 1 << 20;

/// Encodes a row-major `rows × cols` f32 matrix as `.npy` bytes.
pub fn encode_f32(data: &[f32], rows: usize, cols: usize) -> Vec<u8> {
    encode(VectorDtype::F32, data, rows, cols)
}

/// NumPy's name of a dtype, little-endian.
fn descr(dtype: VectorDtype) -> &'static str {
    match dtype {
        VectorDtype::F32 => "<f4",
        VectorDtype::F16 => "<f2",
    }
}

/// Encodes a row-major `rows × cols` matrix as `.npy` bytes of `dtype` (for f16, each value
/// rounded to the nearest f16).
pub fn encode(dtype: VectorDtype, data: &[f32], rows: usize, cols: usize) -> Vec<u8> {
    let dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': ({rows}, {cols}), }}",
        descr(dtype)
    );
    // Magic (6) + version (2) + header length (2) + dict, padded with spaces so the data starts
    // on a 64-byte boundary, ending in a newline.
    let unpadded = 10 + dict.len() + 1;
    let padding = (64 - unpadded % 64) % 64;
    let header_len = dict.len() + padding + 1;
    let mut out = Vec::with_capacity(10 + header_len + data.len() * dtype.bytes());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header_len as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.extend(std::iter::repeat_n(b' ', padding));
    out.push(b'\n');
    match dtype {
        VectorDtype::F32 => {
            for v in data {
                out.write_all(&v.to_le_bytes())
                    .expect("writing to a Vec cannot fail");
            }
        }
        VectorDtype::F16 => {
            for v in data {
                out.extend_from_slice(&f16::from_f32(*v).to_le_bytes());
            }
        }
    }
    out
}

/// Decodes `.npy` bytes holding a 2-D little-endian f32 or f16 matrix: returns (data as f32,
/// rows, cols, the file's dtype). f16 values convert to f32 exactly.
pub fn decode_vectors(bytes: &[u8]) -> Result<(Vec<f32>, usize, usize, VectorDtype), String> {
    let (data_start, rows, cols, dtype) = decode_any_header(bytes)?;
    let body = &bytes[data_start..];
    let expected = body_len(rows, cols, dtype)?;
    if body.len() != expected {
        return Err(truncated(rows, cols, expected, body.len()));
    }
    let data = match dtype {
        VectorDtype::F32 => body
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        VectorDtype::F16 => body
            .chunks_exact(2)
            .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
    };
    Ok((data, rows, cols, dtype))
}

/// Decodes `.npy` bytes holding a 2-D little-endian f32 matrix: returns (data, rows, cols).
pub fn decode_f32(bytes: &[u8]) -> Result<(Vec<f32>, usize, usize), String> {
    let (data_start, rows, cols) = decode_header(bytes)?;
    let body = &bytes[data_start..];
    let expected = body_len(rows, cols, VectorDtype::F32)?;
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
    let expected = body_len(rows, cols, VectorDtype::F32)?;
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

/// A value type a `.npy` matrix can be mapped as.
pub trait Element: Copy {
    const DTYPE: VectorDtype;
}

impl Element for f32 {
    const DTYPE: VectorDtype = VectorDtype::F32;
}

impl Element for f16 {
    const DTYPE: VectorDtype = VectorDtype::F16;
}

/// A `.npy` matrix of `T` (f32 or f16) memory-mapped where it lies: opening it reads the
/// header only, and its pages are read when a search touches them. The library never changes
/// a file it wrote, only replaces it by renaming, so the mapping stays valid while it is open.
pub struct Mapped<T: Element> {
    map: memmap2::Mmap,
    start: usize,
    rows: usize,
    cols: usize,
    values: PhantomData<T>,
}

/// A mapped f32 matrix.
pub type MappedF32 = Mapped<f32>;
/// A mapped f16 matrix.
pub type MappedF16 = Mapped<f16>;

/// The dtype a `.npy` file's header declares (f32 or f16), or why it is not a matrix papersim
/// reads.
pub fn dtype_of(head: &[u8]) -> Result<VectorDtype, String> {
    decode_any_header(head).map(|(_, _, _, dtype)| dtype)
}

impl<T: Element> Mapped<T> {
    /// Maps `file`. Fails (as text) on a header that is not a 2-D matrix of `T`, a body of the
    /// wrong length, or data that cannot be used in place: not aligned to `T` (papersim aligns
    /// to 64 bytes, as NumPy does) or a big-endian machine. Callers then read the file instead.
    pub fn map(file: &std::fs::File) -> Result<Mapped<T>, String> {
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
        let (start, rows, cols, dtype) = decode_any_header(head)?;
        if dtype != T::DTYPE {
            return Err(format!(
                "holds {dtype} values, not {}: {}",
                T::DTYPE,
                expected_dtype(T::DTYPE)
            ));
        }
        let expected = body_len(rows, cols, dtype)?;
        if map.len() - start != expected {
            return Err(truncated(rows, cols, expected, map.len() - start));
        }
        let aligned = (map.as_ptr() as usize + start).is_multiple_of(std::mem::align_of::<T>());
        if cfg!(target_endian = "big") || !aligned {
            return Err("the matrix cannot be used in place (unaligned or big-endian)".into());
        }
        Ok(Mapped {
            map,
            start,
            rows,
            cols,
            values: PhantomData,
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

impl<T: Element> AsRef<[T]> for Mapped<T> {
    fn as_ref(&self) -> &[T] {
        let body = &self.map[self.start..];
        // SAFETY: `map` checked that the header declares `T`, that the body starts aligned for
        // `T`, holds exactly rows × cols values of it, and that this machine is little-endian
        // like the file; every bit pattern is a valid f32 and a valid f16 (`half::f16` is a
        // `repr(transparent)` u16), and the mapping lives as long as `self`.
        unsafe { std::slice::from_raw_parts(body.as_ptr().cast::<T>(), self.rows * self.cols) }
    }
}

/// The bytes of a `rows × cols` body of `dtype`.
fn body_len(rows: usize, cols: usize, dtype: VectorDtype) -> Result<usize, String> {
    rows.checked_mul(cols)
        .and_then(|n| n.checked_mul(dtype.bytes()))
        .ok_or_else(|| "shape overflows".into())
}

/// What a reader of `dtype` expected, for errors.
fn expected_dtype(dtype: VectorDtype) -> &'static str {
    match dtype {
        VectorDtype::F32 => "expected little-endian float32 data",
        VectorDtype::F16 => "expected little-endian float16 data",
    }
}

fn truncated(rows: usize, cols: usize, expected: usize, got: usize) -> String {
    format!(
        "truncated or padded data: shape ({rows}, {cols}) needs {expected} bytes, file has {got}"
    )
}

/// Checks a `.npy` header (magic, version, little-endian f32, C order, 2-D): returns where the
/// data starts and the shape.
fn decode_header(bytes: &[u8]) -> Result<(usize, usize, usize), String> {
    let (start, rows, cols, dtype) = decode_any_header(bytes)?;
    if dtype != VectorDtype::F32 {
        return Err(format!(
            "{}, the header declares float16 (`<f2`)",
            expected_dtype(VectorDtype::F32)
        ));
    }
    Ok((start, rows, cols))
}

/// Checks a `.npy` header (magic, version, little-endian f32 or f16, C order, 2-D): returns
/// where the data starts, the shape and the dtype.
fn decode_any_header(bytes: &[u8]) -> Result<(usize, usize, usize, VectorDtype), String> {
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
    let dtype = if header.contains("'descr': '<f4'") {
        VectorDtype::F32
    } else if header.contains("'descr': '<f2'") {
        VectorDtype::F16
    } else {
        return Err(format!(
            "expected little-endian float32 (or float16) data, header is {}",
            header.trim()
        ));
    };
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
    Ok((data_start, rows, cols, dtype))
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

    #[test]
    fn f16_round_trip_alignment_and_mapping() {
        let data: Vec<f32> = (0..24).map(|i| (i as f32 - 11.3) * 0.0371).collect();
        let bytes = encode(VectorDtype::F16, &data, 4, 6);
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + header_len) % 64, 0);
        let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
        assert!(header.contains("'descr': '<f2'"), "{header}");
        assert_eq!(bytes.len(), 10 + header_len + 24 * 2);
        let (back, rows, cols, dtype) = decode_vectors(&bytes).unwrap();
        assert_eq!((rows, cols, dtype), (4, 6, VectorDtype::F16));
        for (b, x) in back.iter().zip(&data) {
            assert_eq!(*b, f16::from_f32(*x).to_f32());
            assert!((b - x).abs() <= x.abs() / 2048.0, "{x} -> {b}");
        }
        // f16 values survive another round trip unchanged.
        assert_eq!(encode(VectorDtype::F16, &back, 4, 6), bytes);
        // An f32 reader refuses it, naming the dtype; an f32 file reads back exactly.
        assert!(decode_f32(&bytes).unwrap_err().contains("float16"));
        let f32_bytes = encode(VectorDtype::F32, &data, 4, 6);
        assert_eq!(f32_bytes, encode_f32(&data, 4, 6));
        assert_eq!(
            decode_vectors(&f32_bytes).unwrap(),
            (data.clone(), 4, 6, VectorDtype::F32)
        );
        for cut in [0, 11, 70, bytes.len() - 1] {
            assert!(decode_vectors(&bytes[..cut]).is_err(), "cut at {cut}");
        }

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.npy");
        std::fs::write(&path, &bytes).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let mapped = MappedF16::map(&file).unwrap();
        assert_eq!(mapped.shape(), (4, 6));
        let halves: Vec<f32> = mapped.as_ref().iter().map(|h| h.to_f32()).collect();
        assert_eq!(halves, back);
        assert_eq!(mapped.file_bytes(), &bytes[..]);
        assert!(MappedF32::map(&file).err().unwrap().contains("f16"));
    }
}
