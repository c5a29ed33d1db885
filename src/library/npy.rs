//! Reading and writing float32 matrices in NumPy's `.npy` format (version 1.0, C order), so
//! that a library's embeddings open with `numpy.load`.

use std::io::Write;

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
    let body = &bytes[data_start..];
    let expected = rows
        .checked_mul(cols)
        .and_then(|n| n.checked_mul(4))
        .ok_or("shape overflows")?;
    if body.len() != expected {
        return Err(format!(
            "truncated or padded data: shape ({rows}, {cols}) needs {expected} bytes, file has {}",
            body.len()
        ));
    }
    let data = body
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok((data, rows, cols))
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
        assert_eq!(decode_f32(&bytes).unwrap(), (data, 3, 4));
        assert!(decode_f32(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode_f32(b"garbage").is_err());
        assert_eq!(
            decode_f32(&encode_f32(&[], 0, 384)).unwrap(),
            (vec![], 0, 384)
        );
    }
}
