//! zlib both ways: deflating large inputs on every core as one valid stream (pigz-style), and
//! inflating with a limit on the output.

use std::io::Read;

use crate::error::{Error, Result};

/// The smallest run of input worth a thread of its own: a chunk starts without the previous
/// chunk's 32 KiB window, which costs next to nothing at this size.
const PARALLEL_CHUNK: usize = 1 << 20;

/// A zlib stream of the concatenated `parts`. Large inputs are cut into chunks deflated on all
/// available cores, pigz-style: each chunk is raw deflate ending in a sync flush (the last in a
/// final block), so together they form one valid stream; the Adler-32s are combined.
pub(crate) fn zlib(parts: &[&[u8]], level: u32) -> Result<Vec<u8>> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    zlib_on(parts, level, cores.min(8))
}

fn zlib_on(parts: &[&[u8]], level: u32, threads: usize) -> Result<Vec<u8>> {
    use std::io::Write;
    let fail = |e: std::io::Error| Error::Crypto(format!("compression failed: {e}"));
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let chunks = (total / PARALLEL_CHUNK).clamp(1, threads.max(1));
    if chunks == 1 {
        let mut z = flate2::write::ZlibEncoder::new(
            Vec::with_capacity(total / 4 + 64),
            flate2::Compression::new(level),
        );
        for p in parts {
            z.write_all(p).map_err(fail)?;
        }
        return z.finish().map_err(fail);
    }
    let pieces = split_even(parts, total, chunks);
    let results: Vec<std::io::Result<(Vec<u8>, u32, usize)>> = std::thread::scope(|s| {
        let handles: Vec<_> = pieces
            .iter()
            .enumerate()
            .map(|(i, piece)| {
                let last = i + 1 == pieces.len();
                s.spawn(move || -> std::io::Result<(Vec<u8>, u32, usize)> {
                    let len: usize = piece.iter().map(|p| p.len()).sum();
                    let mut z = flate2::write::DeflateEncoder::new(
                        Vec::with_capacity(len / 4 + 64),
                        flate2::Compression::new(level),
                    );
                    let mut adler = Adler32::default();
                    for p in piece {
                        z.write_all(p)?;
                        adler.update(p);
                    }
                    let out = if last {
                        z.finish()?
                    } else {
                        // A sync flush ends on a byte boundary without a final block; the
                        // encoder's own final block, written on drop, goes to the emptied Vec.
                        z.flush()?;
                        std::mem::take(z.get_mut())
                    };
                    Ok((out, adler.value(), len))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("compression thread panicked")))
            })
            .collect()
    });
    let mut out = Vec::with_capacity(total / 4 + 64);
    out.extend_from_slice(&[0x78, 0x9c]);
    let mut adler = 1u32;
    for r in results {
        let (bytes, a, len) = r.map_err(fail)?;
        out.extend_from_slice(&bytes);
        adler = adler32_combine(adler, a, len);
    }
    out.extend_from_slice(&adler.to_be_bytes());
    Ok(out)
}

/// Cuts the concatenation of `parts` into `n` runs of nearly equal length, as sub-slices.
fn split_even<'a>(parts: &[&'a [u8]], total: usize, n: usize) -> Vec<Vec<&'a [u8]>> {
    let target = total.div_ceil(n);
    let mut out = Vec::with_capacity(n);
    let mut current: Vec<&'a [u8]> = Vec::new();
    let mut room = target;
    for &p in parts {
        let mut rest = p;
        while !rest.is_empty() {
            let take = rest.len().min(room);
            current.push(&rest[..take]);
            rest = &rest[take..];
            room -= take;
            if room == 0 {
                out.push(std::mem::take(&mut current));
                room = target;
            }
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

const ADLER_MOD: u32 = 65_521;

/// Adler-32 (RFC 1950), for the zlib trailer of a stream deflated in chunks.
#[derive(Debug, Clone, Copy)]
struct Adler32 {
    a: u32,
    b: u32,
}

impl Default for Adler32 {
    fn default() -> Self {
        Adler32 { a: 1, b: 0 }
    }
}

impl Adler32 {
    fn update(&mut self, data: &[u8]) {
        // 5552 is the most bytes before the 32-bit sums can overflow.
        for block in data.chunks(5552) {
            for &byte in block {
                self.a += u32::from(byte);
                self.b += self.a;
            }
            self.a %= ADLER_MOD;
            self.b %= ADLER_MOD;
        }
    }

    fn value(&self) -> u32 {
        (self.b << 16) | self.a
    }
}

/// The Adler-32 of A followed by B, from theirs and B's length (zlib's adler32_combine).
fn adler32_combine(adler1: u32, adler2: u32, len2: usize) -> u32 {
    let base = u64::from(ADLER_MOD);
    let rem = (len2 as u64) % base;
    let mut sum1 = u64::from(adler1 & 0xffff);
    let mut sum2 = (rem * sum1) % base;
    sum1 += u64::from(adler2 & 0xffff) + base - 1;
    sum2 += u64::from(adler1 >> 16) + u64::from(adler2 >> 16) + base - rem;
    if sum1 >= base {
        sum1 -= base;
    }
    if sum1 >= base {
        sum1 -= base;
    }
    if sum2 >= base << 1 {
        sum2 -= base << 1;
    }
    if sum2 >= base {
        sum2 -= base;
    }
    (sum1 | (sum2 << 16)) as u32
}

pub(crate) fn inflate(data: &[u8], limit: u64) -> Result<Vec<u8>> {
    let run = |reader: &mut dyn Read| -> std::io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(
            data.len()
                .saturating_mul(4)
                .min(limit as usize)
                .min(1 << 28),
        );
        reader.take(limit.saturating_add(1)).read_to_end(&mut out)?;
        Ok(out)
    };
    let out = match run(&mut flate2::read::ZlibDecoder::new(data)) {
        Ok(out) => out,
        // A few old products wrote raw deflate without the zlib wrapper.
        Err(zlib_err) => run(&mut flate2::read::DeflateDecoder::new(data))
            .map_err(|_| Error::DecompressionFailed(zlib_err.to_string()))?,
    };
    if out.len() as u64 > limit {
        return Err(Error::DecompressionLimit { limit });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_deflate_is_one_valid_zlib_stream() {
        let text: Vec<u8> = (0..(3 * PARALLEL_CHUNK + 12_345))
            .map(|i| b"ISA*00*PO~\r\n"[i % 12] ^ ((i / 4099) as u8 & 1))
            .collect();
        let (a, b) = text.split_at(1000);
        // Whatever this machine has: one thread (a one-core CI runner) and three.
        for threads in [1, 3] {
            let z = zlib_on(&[a, b], 6, threads).unwrap();
            let mut back = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::ZlibDecoder::new(&z[..]), &mut back)
                .unwrap();
            assert_eq!(back, text, "{threads} threads");
        }
        // The trailer is the Adler-32 of the whole input: check it against a one-pass sum.
        let mut one = Adler32::default();
        one.update(&text);
        let mut halves = (Adler32::default(), Adler32::default());
        halves.0.update(&text[..777]);
        halves.1.update(&text[777..]);
        assert_eq!(
            adler32_combine(halves.0.value(), halves.1.value(), text.len() - 777),
            one.value()
        );
        let mut known = Adler32::default();
        known.update(b"Wikipedia");
        assert_eq!(known.value(), 0x11E6_0398);
    }
}
