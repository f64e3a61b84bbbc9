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
    zlib_on(parts, level, compression_threads())
}

/// How many threads deflate a large input: the cores this process may use, at most 8. Asked of
/// the system once (it reads the cgroup's files each time), not for every message.
fn compression_threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(8)))
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
    let results = deflate_pieces(&pieces, level, true).map_err(fail)?;
    let mut out = Vec::with_capacity(total / 4 + 64);
    out.extend_from_slice(&zlib_header(level));
    let mut adler = 1u32;
    for (bytes, a, len) in results {
        out.extend_from_slice(&bytes);
        adler = adler32_combine(adler, a, len);
    }
    out.extend_from_slice(&adler.to_be_bytes());
    Ok(out)
}

/// The zlib header zlib writes at `level`: deflate with a 32 KiB window, and the level's class
/// (informational only) with the check bits that make it a multiple of 31.
fn zlib_header(level: u32) -> [u8; 2] {
    match level {
        0 | 1 => [0x78, 0x01],
        2..=5 => [0x78, 0x5e],
        6 => [0x78, 0x9c],
        _ => [0x78, 0xda],
    }
}

/// Raw deflate of each piece on a thread of its own, each ending in a sync flush (the last in a
/// final block when `last`), so that one after another they form one deflate stream; with each
/// piece's Adler-32 and length.
fn deflate_pieces(
    pieces: &[Vec<&[u8]>],
    level: u32,
    last: bool,
) -> std::io::Result<Vec<(Vec<u8>, u32, usize)>> {
    use std::io::Write;
    let results: Vec<std::io::Result<(Vec<u8>, u32, usize)>> = std::thread::scope(|s| {
        let handles: Vec<_> = pieces
            .iter()
            .enumerate()
            .map(|(i, piece)| {
                let final_piece = last && i + 1 == pieces.len();
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
                    let out = if final_piece {
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
    results.into_iter().collect()
}

/// A zlib stream written as its input is fed, deflated on every core: input is gathered until
/// each core has a chunk, the chunks are deflated at once (as [`zlib`] does), and what they make
/// is appended. Holds at most a chunk per core of input.
pub(crate) struct ParallelZlib {
    level: u32,
    threads: usize,
    pending: Vec<u8>,
    adler: u32,
    started: bool,
}

impl ParallelZlib {
    pub(crate) fn new(level: u32) -> Self {
        ParallelZlib {
            level,
            threads: compression_threads(),
            pending: Vec::new(),
            adler: 1,
            started: false,
        }
    }

    /// Deflates what is pending, as the last piece or not.
    fn run(&mut self, last: bool, out: &mut Vec<u8>) -> Result<()> {
        let fail = |e: std::io::Error| Error::Crypto(format!("compression failed: {e}"));
        let pending = std::mem::take(&mut self.pending);
        let pieces: Vec<Vec<&[u8]>> = if pending.is_empty() {
            vec![Vec::new()]
        } else {
            pending.chunks(PARALLEL_CHUNK).map(|c| vec![c]).collect()
        };
        if !self.started {
            out.extend_from_slice(&zlib_header(self.level));
            self.started = true;
        }
        for (bytes, a, len) in deflate_pieces(&pieces, self.level, last).map_err(fail)? {
            out.extend_from_slice(&bytes);
            self.adler = adler32_combine(self.adler, a, len);
        }
        self.pending = pending;
        self.pending.clear();
        Ok(())
    }

    /// The next input; appends the zlib bytes it completes.
    pub(crate) fn update(&mut self, mut data: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let batch = self.threads * PARALLEL_CHUNK;
        while !data.is_empty() {
            let take = (batch - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() == batch {
                self.run(false, out)?;
            }
        }
        Ok(())
    }

    /// Ends the stream: the rest of the input, the final block and the Adler-32 trailer.
    pub(crate) fn finish(mut self, out: &mut Vec<u8>) -> Result<()> {
        self.run(true, out)?;
        out.extend_from_slice(&self.adler.to_be_bytes());
        Ok(())
    }
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
    fn a_stream_deflated_a_batch_at_a_time_is_one_valid_zlib_stream() {
        let text: Vec<u8> = (0..(5 * PARALLEL_CHUNK + 777))
            .map(|i| b"ST*850*0001~\r\n"[i % 14] ^ ((i / 5003) as u8 & 3))
            .collect();
        for input in [&text[..], b"x", b""] {
            let mut z = ParallelZlib::new(9);
            let mut out = Vec::new();
            for piece in input.chunks(654_321) {
                z.update(piece, &mut out).unwrap();
            }
            z.finish(&mut out).unwrap();
            assert_eq!(out[..2], zlib_header(9));
            let mut back = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::ZlibDecoder::new(&out[..]), &mut back)
                .unwrap();
            assert!(back == input, "{} bytes", input.len());
        }
    }

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
        for level in 0..=9 {
            let h = zlib_header(level);
            assert_eq!((u16::from(h[0]) << 8 | u16::from(h[1])) % 31, 0, "{level}");
            let mut z =
                flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(level));
            std::io::Write::write_all(&mut z, b"x").unwrap();
            assert_eq!(
                z.finish().unwrap()[..2],
                h,
                "zlib's own header at level {level}"
            );
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
