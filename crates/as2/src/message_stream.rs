//! Building an AS2 message as its payload is fed, in constant memory: the same layers as
//! [`crate::message::build`] (compression before or after signing, a detached signature, the
//! envelope), each a streaming CMS writer, the MIC computed in the same pass. Sans-IO: the HTTP
//! headers come first, each call appends the body bytes it has to `out`, and the MIC comes at the
//! end. Bodies are binary (the in-memory builder's base64 option is not offered here).

use crate::cms::{CompressStream, EnvelopeStream, SignStream};
use crate::envelope::as2_headers;
use crate::error::{Error, Result};
use crate::headers::HeaderMap;
use crate::message::{
    check_options, head_bytes, mic_algorithms, payload_headers, pkcs7_headers, BodyEncoding,
    Compression, MessageOptions,
};
use crate::mic::{Mic, MultiDigest};
use crate::smime::{multipart_signed_type, signature_suffix, Layer};
use crate::time::UnixTime;

/// What the stream said once it ended.
#[derive(Debug, Clone)]
pub struct Built {
    /// The MIC a receipt must echo.
    pub mic: Mic,
    /// The same MIC under every other algorithm the receipt may use.
    pub alternative_mics: Vec<Mic>,
    /// The layers applied, outermost first.
    pub layers: Vec<Layer>,
}

/// The signing layer: the signed entity's bytes go through the signature's digest and the MICs.
struct Signing {
    signer: SignStream,
    mics: MultiDigest,
    boundary: String,
}

/// A message being built. See the module documentation.
pub struct BuildStream {
    before: Option<CompressStream>,
    signing: Option<Signing>,
    after: Option<CompressStream>,
    envelope: Option<EnvelopeStream>,
    /// Unsigned messages: the MIC over the payload, and over its entity (headers and all).
    content_mic: Option<MultiDigest>,
    entity_mic: Option<MultiDigest>,
    encrypted: bool,
    layers: Vec<Layer>,
    scratch: [Vec<u8>; 2],
}

impl std::fmt::Debug for BuildStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildStream")
            .field("layers", &self.layers)
            .finish_non_exhaustive()
    }
}

/// Where bytes enter the chain of layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    /// The payload's entity: compressed before signing, if that is on.
    Before,
    /// The entity that is signed.
    Signed,
    /// The multipart/signed entity: compressed after signing, if that is on.
    After,
    /// The entity that is encrypted.
    Envelope,
    /// The HTTP body as it goes.
    Out,
}

impl BuildStream {
    /// Starts a message of `content_type` (and `filename`): returns the builder and the HTTP
    /// headers (AS2 headers and the outermost entity's), and appends the first body bytes to
    /// `out`.
    pub fn start(
        opts: &MessageOptions,
        content_type: &str,
        filename: Option<&str>,
        message_id: &str,
        now: UnixTime,
        out: &mut Vec<u8>,
    ) -> Result<(BuildStream, HeaderMap)> {
        check_options(opts, content_type, message_id)?;
        if opts.body_encoding != BodyEncoding::Binary {
            return Err(Error::Config(
                "the streaming builder writes binary bodies only".into(),
            ));
        }
        let content_type = content_type.trim();
        let wrapped = opts.signing.is_some()
            || opts.encryption.is_some()
            || opts.compression != Compression::None;
        let algorithms = mic_algorithms(opts);
        let payload_headers = payload_headers(content_type, filename, BodyEncoding::Binary);
        let micalg = |s: &crate::message::Signing| s.digest.name(s.micalg_style);
        let boundary = opts
            .signing
            .as_ref()
            .map(|_| crate::mime::random_boundary());
        let before = opts.compression == Compression::BeforeSigning;
        let after = opts.compression == Compression::AfterSigning;
        let sign = opts.signing.is_some();
        let enc = opts.encryption.is_some();
        let level = opts.compression_level;
        let mut layers = Vec::new();
        let mut b = BuildStream {
            before: None,
            signing: None,
            after: None,
            envelope: None,
            content_mic: (!sign).then(|| MultiDigest::new(&algorithms)).transpose()?,
            entity_mic: (!sign && wrapped)
                .then(|| MultiDigest::new(&algorithms))
                .transpose()?,
            encrypted: enc,
            layers: Vec::new(),
            scratch: [Vec::new(), Vec::new()],
        };
        // The body's first bytes, in the order they go out, each with where it enters: a
        // layer's CMS head, and the MIME headers of each entity inside another (the outermost
        // entity's headers are the HTTP headers).
        let mut heads: Vec<(Stage, Vec<u8>)> = Vec::new();
        let pkcs7z = || pkcs7_headers("compressed-data", "smime.p7z", BodyEncoding::Binary);
        let top: HeaderMap;
        if let Some(e) = &opts.encryption {
            let mut head = Vec::new();
            b.envelope = Some(EnvelopeStream::start(
                &e.certificates,
                e.cipher,
                e.key_transport,
                &mut head,
            )?);
            heads.push((Stage::Out, head));
            let smime_type = if e.cipher.is_authenticated() {
                "authEnveloped-data"
            } else {
                "enveloped-data"
            };
            top = pkcs7_headers(smime_type, "smime.p7m", BodyEncoding::Binary);
            layers.push(Layer::Encrypted {
                cipher: e.cipher,
                key_transport: Some(e.key_transport),
            });
        } else if after {
            top = pkcs7z();
        } else if let (Some(s), Some(boundary)) = (&opts.signing, &boundary) {
            top = [("Content-Type", multipart_signed_type(micalg(s), boundary))]
                .into_iter()
                .collect();
        } else if before {
            top = pkcs7z();
        } else {
            top = payload_headers.clone();
        }
        if after {
            if enc {
                heads.push((Stage::Envelope, head_bytes(&pkcs7z())));
            }
            let mut head = Vec::new();
            b.after = Some(CompressStream::start(level, &mut head)?);
            heads.push((Stage::Envelope, head));
            layers.push(Layer::Compressed);
        }
        if let (Some(s), Some(boundary)) = (&opts.signing, boundary) {
            if after || enc {
                let ct = multipart_signed_type(micalg(s), &boundary);
                heads.push((
                    Stage::After,
                    format!("Content-Type: {ct}\r\n\r\n").into_bytes(),
                ));
            }
            heads.push((Stage::After, format!("--{boundary}\r\n").into_bytes()));
            layers.push(Layer::Signed {
                digest: s.digest,
                scheme: Some(s.scheme),
                signer: crate::keys::subject_name(&s.identity.certificate),
            });
            b.signing = Some(Signing {
                signer: SignStream::start(&s.identity, s.digest, s.scheme, now)?,
                mics: MultiDigest::new(&algorithms)?,
                boundary,
            });
        }
        if before {
            if sign || after || enc {
                heads.push((Stage::Signed, head_bytes(&pkcs7z())));
            }
            let mut head = Vec::new();
            b.before = Some(CompressStream::start(level, &mut head)?);
            heads.push((Stage::Signed, head));
            layers.push(Layer::Compressed);
        }
        let payload_head = head_bytes(&payload_headers);
        if wrapped {
            heads.push((Stage::Before, payload_head.clone()));
        }
        if let Some(m) = &mut b.entity_mic {
            m.update(&payload_head)?;
        }
        b.layers = layers;
        for (stage, bytes) in heads {
            b.feed(stage, &bytes, out)?;
        }
        let mut headers = as2_headers(&opts.from, &opts.to, message_id, now, &opts.subject);
        for h in top.iter() {
            headers.append(h.name.clone(), h.value.clone());
        }
        if let Some(mdn) = &opts.mdn {
            mdn.write_headers(&mut headers);
        }
        Ok((b, headers))
    }

    /// Sends `bytes` through the layers from `stage` outwards; what comes out is appended to
    /// `out`.
    fn feed(&mut self, stage: Stage, bytes: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let [a, c] = &mut self.scratch;
        a.clear();
        a.extend_from_slice(bytes);
        if stage <= Stage::Before {
            if let Some(z) = &mut self.before {
                c.clear();
                z.update(a, c)?;
                std::mem::swap(a, c);
            }
        }
        if stage <= Stage::Signed {
            if let Some(s) = &mut self.signing {
                s.signer.update(a)?;
                s.mics.update(a)?;
            }
        }
        if stage <= Stage::After {
            if let Some(z) = &mut self.after {
                c.clear();
                z.update(a, c)?;
                std::mem::swap(a, c);
            }
        }
        if stage <= Stage::Envelope {
            if let Some(e) = &mut self.envelope {
                e.update(a, out)?;
                return Ok(());
            }
        }
        out.extend_from_slice(a);
        Ok(())
    }

    /// The next part of the payload.
    pub fn update(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<()> {
        if let Some(m) = &mut self.content_mic {
            m.update(payload)?;
        }
        if let Some(m) = &mut self.entity_mic {
            m.update(payload)?;
        }
        self.feed(Stage::Before, payload, out)
    }

    /// Ends the payload: appends the rest of every layer to `out` and says what the receipt
    /// must echo.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<Built> {
        if let Some(z) = self.before.take() {
            let mut tail = Vec::new();
            z.finish(&mut tail)?;
            self.feed(Stage::Signed, &tail, out)?;
        }
        let mics = match self.signing.take() {
            Some(s) => {
                let signature = s.signer.finish()?;
                let suffix = signature_suffix(&s.boundary, &signature);
                self.feed(Stage::After, &suffix, out)?;
                s.mics.finish()?
            }
            None => {
                let content = self
                    .content_mic
                    .take()
                    .map(MultiDigest::finish)
                    .transpose()?
                    .unwrap_or_default();
                match self.entity_mic.take() {
                    Some(entity) if self.encrypted => {
                        entity.finish()?.into_iter().chain(content).collect()
                    }
                    Some(entity) => content.into_iter().chain(entity.finish()?).collect(),
                    None => content,
                }
            }
        };
        if let Some(z) = self.after.take() {
            let mut tail = Vec::new();
            z.finish(&mut tail)?;
            self.feed(Stage::Envelope, &tail, out)?;
        }
        if let Some(e) = self.envelope.take() {
            e.finish(out)?;
        }
        let mut mics = mics.into_iter();
        let mic = mics
            .next()
            .ok_or_else(|| Error::Crypto("no MIC was computed".into()))?;
        Ok(Built {
            mic,
            alternative_mics: mics.collect(),
            layers: self.layers,
        })
    }
}
