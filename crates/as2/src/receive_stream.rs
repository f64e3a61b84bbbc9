//! Opening an inbound AS2 message as its body is fed, in constant memory: the layers of
//! [`crate::receive::open`] (decrypt, verify, decompress, in whatever order the sender applied
//! them), its policy, MIC rules and typed errors, each layer a streaming reader. Sans-IO: each
//! [`OpenStream::update`] appends the payload bytes it has to `out`; the payload's name and type
//! are known ([`OpenStream::payload`]) before its first byte; the verdict (signature, CBC
//! padding or AES-GCM tag, the structures' ends) comes from [`OpenStream::finish`], so what came
//! out is kept aside until then and used only if it returns `Ok`.
//!
//! What the in-memory opener takes and this one does not: a signature without signed
//! attributes (its content cannot be checked without holding it), and one whose digest is not
//! among the multipart/signed `micalg` the sender declared (or the receipt's requested
//! algorithm), and a quoted-printable CMS part: each refused with [`Error::NotStreamable`], for
//! a caller holding the message to open it with the in-memory opener instead.

use std::collections::HashMap;

use openssl::hash::Hasher;
use openssl::x509::X509;

use crate::algorithm::DigestAlgorithm;
use crate::cms::{self, ContentKind, DecryptStream, InflateStream, SignedForm};
use crate::envelope::Envelope;
use crate::error::{CmsStructure, Error, Result};
use crate::headers::HeaderMap;
use crate::keys::{check_validity, subject_name, Identity};
use crate::mic::Mic;
use crate::mime::{self, ContentType, Entity, TransferEncoding};
use crate::receive::{self, KeyLookup, Policy};
use crate::smime::{signature_part, Layer};
use crate::time::UnixTime;

/// The most a multipart/signed preamble or its signature part may take (they are buffered).
const MAX_BUFFERED: usize = 1 << 20;

/// What is known of the payload once its headers have been read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadInfo {
    /// The file name, sanitised for use as a storage key segment.
    pub filename: Option<String>,
    /// The file name as sent (decoded, not sanitised), for logs.
    pub raw_filename: Option<String>,
    /// The payload's Content-Type value.
    pub content_type: String,
}

/// What a streamed message came to; its payload went out as it was fed.
#[derive(Clone)]
pub struct StreamOpened {
    /// The payload's name and type.
    pub payload: PayloadInfo,
    /// How many payload bytes went out.
    pub size: u64,
    /// Layers found, outermost first.
    pub layers: Vec<Layer>,
    /// The MIC the receipt must carry.
    pub mic: Mic,
    /// The certificate that signed the message, if signed and verified.
    pub signer: Option<X509>,
}

impl std::fmt::Debug for StreamOpened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamOpened")
            .field("payload", &self.payload)
            .field("size", &self.size)
            .field("layers", &self.layers)
            .field("mic", &self.mic)
            .finish()
    }
}

/// What every layer reads and writes besides its bytes.
struct Ctx {
    policy: Policy,
    envelope: Envelope,
    identities: Vec<Identity>,
    certificates: Vec<X509>,
    requested_mic: Option<DigestAlgorithm>,
    at: UnixTime,
    /// Outermost first; a layer's slot is taken when it is met and filled when it ends.
    layers: Vec<Option<Layer>>,
    entities: usize,
    signed: bool,
    encrypted: bool,
    payload: Option<PayloadInfo>,
    mic: Option<Mic>,
    signer: Option<X509>,
    size: u64,
}

/// A message being opened. See the module documentation.
pub struct OpenStream {
    root: Node,
    ctx: Ctx,
    fed: u64,
}

impl std::fmt::Debug for OpenStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenStream")
            .field("fed", &self.fed)
            .finish_non_exhaustive()
    }
}

impl OpenStream {
    /// Starts opening a message addressed as `envelope` says, sent with the HTTP `headers`.
    pub fn new(
        envelope: &Envelope,
        headers: &HeaderMap,
        keys: &dyn KeyLookup,
        policy: &Policy,
        at: UnixTime,
    ) -> Result<OpenStream> {
        let mut ctx = Ctx {
            policy: policy.clone(),
            envelope: envelope.clone(),
            identities: keys.decryption_identities(&envelope.to),
            certificates: keys.partner_certificates(&envelope.from),
            requested_mic: receive::requested_mic(envelope),
            at,
            layers: Vec::new(),
            entities: 0,
            signed: false,
            encrypted: false,
            payload: None,
            mic: None,
            signer: None,
            size: 0,
        };
        // The outermost entity's headers came over HTTP: its body is the request's.
        let root = Node::for_entity(headers.clone(), None, &mut ctx)?;
        Ok(OpenStream { root, ctx, fed: 0 })
    }

    /// The next bytes of the body; appends the payload bytes they complete to `out`. What a
    /// piece of compressed data inflates to is at most zlib's ratio (about a thousand) times its
    /// size: callers bound what they hold by feeding small pieces.
    pub fn update(&mut self, body: &[u8], out: &mut Vec<u8>) -> Result<()> {
        self.fed += body.len() as u64;
        self.root.update(body, &mut self.ctx, out)
    }

    /// The payload's name and type, once its headers have been read (always before its first
    /// byte goes out).
    pub fn payload(&self) -> Option<&PayloadInfo> {
        self.ctx.payload.as_ref()
    }

    /// Ends the body: appends the last payload bytes to `out` and says whether the message is
    /// good. An error means nothing that came out may be used.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<StreamOpened> {
        if self.fed == 0 {
            return Err(Error::MalformedMime("the message body is empty".into()));
        }
        self.root.finish(&mut self.ctx, out)?;
        let ctx = self.ctx;
        let layers: Vec<Layer> = ctx.layers.into_iter().flatten().collect();
        receive::check_security(&ctx.policy, &ctx.envelope, &layers)?;
        let (Some(payload), Some(mic)) = (ctx.payload, ctx.mic) else {
            return Err(Error::MalformedMime("the message has no payload".into()));
        };
        Ok(StreamOpened {
            payload,
            size: ctx.size,
            layers,
            mic,
            signer: ctx.signer,
        })
    }
}

/// One layer of the message and everything inside it.
enum Node {
    Entity(Box<EntityNode>),
    Cms(Box<CmsNode>),
    Signed(Box<SignedNode>),
    Payload(Box<PayloadNode>),
}

impl Node {
    /// The node for an entity whose headers are known: what its type says it holds.
    /// `raw_head` is the entity's header block as it came (`None` at the top and for a bare
    /// payload).
    fn for_entity(headers: HeaderMap, raw_head: Option<Vec<u8>>, ctx: &mut Ctx) -> Result<Node> {
        ctx.entities += 1;
        if ctx.entities > ctx.policy.max_layers + 1 {
            return Err(Error::TooDeeplyNested(ctx.policy.max_layers));
        }
        let entity = Entity::with_headers(headers.clone(), &[]);
        let ct = entity.content_type();
        if ct.is_pkcs7_mime() {
            return Ok(Node::Cms(Box::new(CmsNode::new(headers, ct)?)));
        }
        if ct.is("multipart/signed") {
            return Ok(Node::Signed(Box::new(SignedNode::new(&ct, ctx)?)));
        }
        Ok(Node::Payload(Box::new(PayloadNode::new(
            &entity, raw_head, ctx,
        )?)))
    }

    fn update(&mut self, data: &[u8], ctx: &mut Ctx, out: &mut Vec<u8>) -> Result<()> {
        match self {
            Node::Entity(n) => n.update(data, ctx, out),
            Node::Cms(n) => n.update(data, ctx, out),
            Node::Signed(n) => n.update(data, ctx, out),
            Node::Payload(n) => n.update(data, ctx, out),
        }
    }

    fn finish(self, ctx: &mut Ctx, out: &mut Vec<u8>) -> Result<()> {
        match self {
            Node::Entity(n) => (*n).finish(ctx, out),
            Node::Cms(n) => (*n).finish(ctx, out),
            Node::Signed(n) => (*n).finish(ctx, out),
            Node::Payload(n) => (*n).finish(ctx, out),
        }
    }

    /// Body bytes an entity node has passed on (its header block not counted).
    fn body_len(&self) -> u64 {
        match self {
            Node::Entity(n) => n.body_len,
            _ => 0,
        }
    }
}

/// The content of a layer (decrypted, inflated, or the signed part): a MIME entity whose header
/// block is read first, or (for decrypted and inflated content, as Mendelson sends) a bare
/// payload that takes its type and name from `outer`, the headers of the layer that held it.
struct EntityNode {
    outer: Option<HeaderMap>,
    head: Vec<u8>,
    inner: Option<Node>,
    body_len: u64,
}

impl EntityNode {
    fn new(outer: Option<HeaderMap>) -> EntityNode {
        EntityNode {
            outer,
            head: Vec::new(),
            inner: None,
            body_len: 0,
        }
    }

    /// The node inside, once the head tells (`complete`: nothing more will come); the bytes
    /// after the head are passed to it.
    fn read_head(&mut self, complete: bool, ctx: &mut Ctx, out: &mut Vec<u8>) -> Result<()> {
        let limits = ctx.policy.limits;
        if let Some(outer) = &self.outer {
            match receive::starts_as_mime_in(&self.head, &limits, complete) {
                None => return Ok(()),
                Some(false) => {
                    let node = Node::for_entity(receive::bare_payload_headers(outer), None, ctx)?;
                    return self.begin(node, 0, ctx, out);
                }
                Some(true) => {}
            }
        }
        let end = match mime::header_block_end(&self.head) {
            Some(end) => end,
            None if complete || self.head.len() > limits.max_header_bytes => self.head.len(),
            None => return Ok(()),
        };
        let (headers, offset) = mime::parse_header_block(&self.head[..end], &limits)?;
        let node = Node::for_entity(headers, Some(self.head[..offset].to_vec()), ctx)?;
        self.begin(node, offset, ctx, out)
    }

    fn begin(
        &mut self,
        mut node: Node,
        offset: usize,
        ctx: &mut Ctx,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let head = std::mem::take(&mut self.head);
        self.body_len += (head.len() - offset) as u64;
        node.update(&head[offset..], ctx, out)?;
        self.inner = Some(node);
        Ok(())
    }

    fn update(&mut self, data: &[u8], ctx: &mut Ctx, out: &mut Vec<u8>) -> Result<()> {
        if let Some(inner) = &mut self.inner {
            self.body_len += data.len() as u64;
            return inner.update(data, ctx, out);
        }
        self.head.extend_from_slice(data);
        self.read_head(false, ctx, out)
    }

    fn finish(mut self, ctx: &mut Ctx, out: &mut Vec<u8>) -> Result<()> {
        if self.inner.is_none() {
            self.read_head(true, ctx, out)?;
        }
        match self.inner {
            Some(inner) => inner.finish(ctx, out),
            None => Err(Error::MalformedMime(
                "an entity without headers or body".into(),
            )),
        }
    }
}

/// An application/pkcs7-mime entity: its body (binary, or base64 as declared or as sniffed)
/// is a CMS structure whose kind its first bytes tell.
struct CmsNode {
    smime_type: Option<String>,
    /// `None` until the first byte says whether an undeclared body is base64.
    base64: Option<Option<Base64>>,
    peek: Vec<u8>,
    stage: Option<CmsStage>,
    inner: Node,
    slot: usize,
    der: Vec<u8>,
    plain: Vec<u8>,
}

enum CmsStage {
    Decrypt {
        stream: DecryptStream,
        checked: bool,
    },
    Inflate(InflateStream),
}

impl CmsNode {
    fn new(headers: HeaderMap, ct: ContentType) -> Result<CmsNode> {
        let encoding = Entity::with_headers(headers.clone(), &[]).transfer_encoding();
        match &encoding {
            Some(TransferEncoding::QuotedPrintable) => {
                return Err(Error::NotStreamable("a quoted-printable CMS part".into()))
            }
            Some(TransferEncoding::Other(o)) => {
                return Err(Error::MalformedMime(format!(
                    "unknown Content-Transfer-Encoding {o:?}"
                )))
            }
            _ => {}
        }
        let declared_base64 = encoding == Some(TransferEncoding::Base64);
        Ok(CmsNode {
            inner: Node::Entity(Box::new(EntityNode::new(Some(headers)))),
            smime_type: ct.smime_type(),
            base64: declared_base64.then(|| Some(Base64::default())),
            peek: Vec::new(),
            stage: None,
            slot: 0,
            der: Vec::new(),
            plain: Vec::new(),
        })
    }

    /// The error of a structure that is no CMS, named as its smime-type says it should be.
    fn named(&self, e: Error) -> Error {
        let what = match self.smime_type.as_deref() {
            Some("compressed-data") => CmsStructure::CompressedData,
            Some("enveloped-data") | Some("authenveloped-data") => CmsStructure::EnvelopedData,
            _ => return e,
        };
        Error::MalformedCms {
            what,
            detail: e.to_string(),
        }
    }

    fn update(&mut self, data: &[u8], ctx: &mut Ctx, out: &mut Vec<u8>) -> Result<()> {
        let mut der = std::mem::take(&mut self.der);
        der.clear();
        let r = self
            .decode(data, &mut der)
            .and_then(|()| self.feed(&der, ctx, out));
        self.der = der;
        r
    }

    /// Removes the transfer encoding: base64 as declared, or as a first byte that cannot
    /// begin DER says (some products send base64 without saying so).
    fn decode(&mut self, data: &[u8], der: &mut Vec<u8>) -> Result<()> {
        if self.base64.is_none() {
            let Some(&first) = data.iter().find(|b| !b.is_ascii_whitespace()) else {
                return Ok(());
            };
            self.base64 = Some((first != 0x30).then(Base64::default));
        }
        match &mut self.base64 {
            Some(Some(b)) => b.update(data, der),
            _ => {
                der.extend_from_slice(data);
                Ok(())
            }
        }
    }

    /// Passes DER bytes to the layer's reader, choosing it from the first bytes.
    fn feed(&mut self, der: &[u8], ctx: &mut Ctx, out: &mut Vec<u8>) -> Result<()> {
        if der.is_empty() {
            return Ok(());
        }
        let mut plain = std::mem::take(&mut self.plain);
        plain.clear();
        let r = self.feed_into(der, ctx, &mut plain).and_then(|()| {
            if plain.is_empty() {
                Ok(())
            } else {
                self.inner.update(&plain, ctx, out)
            }
        });
        self.plain = plain;
        r
    }

    fn feed_into(&mut self, der: &[u8], ctx: &mut Ctx, plain: &mut Vec<u8>) -> Result<()> {
        let input: Vec<u8>;
        let der = if self.stage.is_none() {
            self.peek.extend_from_slice(der);
            let Some(kind) = cms::content_kind_prefix(&self.peek).map_err(|e| self.named(e))?
            else {
                if self.peek.len() > MAX_BUFFERED {
                    return Err(self.named(Error::MalformedCms {
                        what: CmsStructure::ContentInfo,
                        detail: "no content type in the first MiB".into(),
                    }));
                }
                return Ok(());
            };
            self.stage = Some(self.start(kind, ctx)?);
            input = std::mem::take(&mut self.peek);
            &input[..]
        } else {
            der
        };
        match self.stage.as_mut() {
            Some(CmsStage::Decrypt { stream, checked }) => {
                stream.update(der, plain)?;
                if !*checked {
                    if let Some(opened) = stream.opened() {
                        receive::check_cipher(opened.cipher, &ctx.policy)?;
                        *checked = true;
                    }
                }
                Ok(())
            }
            Some(CmsStage::Inflate(z)) => z
                .update(der, plain)
                .map_err(|e| receive::payload_limit(e, &ctx.policy)),
            None => Ok(()),
        }
    }

    fn start(&mut self, kind: ContentKind, ctx: &mut Ctx) -> Result<CmsStage> {
        self.slot = ctx.layers.len();
        ctx.layers.push(None);
        match kind {
            ContentKind::EnvelopedData | ContentKind::AuthEnvelopedData => {
                ctx.encrypted = true;
                Ok(CmsStage::Decrypt {
                    stream: DecryptStream::new(&ctx.identities),
                    checked: false,
                })
            }
            ContentKind::CompressedData => Ok(CmsStage::Inflate(InflateStream::new(
                receive::inflate_limit(&ctx.policy),
            ))),
            ContentKind::SignedData => Err(Error::UnsupportedAlgorithm(
                "opaque signed-data (application/pkcs7-mime; smime-type=signed-data); send a detached multipart/signed signature".into(),
            )),
            other => Err(Error::MalformedCms {
                what: CmsStructure::ContentInfo,
                detail: format!("unexpected CMS content {other:?}"),
            }),
        }
    }

    fn finish(mut self, ctx: &mut Ctx, out: &mut Vec<u8>) -> Result<()> {
        let mut der = Vec::new();
        if let Some(Some(b)) = self.base64.take() {
            b.finish(&mut der)?;
        }
        self.feed(&der, ctx, out)?;
        let mut plain = Vec::new();
        match self.stage.take() {
            None => {
                // Too short to name its kind: what the in-memory reader says of it.
                let e = match cms::content_kind(&self.peek) {
                    Err(e) => e,
                    Ok(_) => Error::MalformedCms {
                        what: CmsStructure::ContentInfo,
                        detail: "truncated".into(),
                    },
                };
                return Err(self.named(e));
            }
            Some(CmsStage::Decrypt { stream, checked }) => {
                let opened = stream.finish(&mut plain)?;
                if !checked {
                    receive::check_cipher(opened.cipher, &ctx.policy)?;
                }
                ctx.layers[self.slot] = Some(Layer::Encrypted {
                    cipher: opened.cipher,
                    key_transport: opened.key_transport,
                });
                self.inner.update(&plain, ctx, out)?;
            }
            Some(CmsStage::Inflate(z)) => {
                z.finish()
                    .map_err(|e| receive::payload_limit(e, &ctx.policy))?;
                ctx.layers[self.slot] = Some(Layer::Compressed);
                if self.inner.body_len() > ctx.policy.max_decompressed_size {
                    return Err(Error::DecompressionLimit {
                        limit: ctx.policy.max_decompressed_size,
                    });
                }
            }
        }
        self.inner.finish(ctx, out)
    }
}

/// A multipart/signed entity: the first part is passed on (and digested in every form it may
/// have been signed in) as it comes; the signature part after it is kept and checked at the end.
struct SignedNode {
    boundary: String,
    /// `\n--boundary`: what ends the signed part.
    delimiter: Vec<u8>,
    state: Split,
    digests: FormDigests,
    inner: Node,
    slot: usize,
}

enum Split {
    /// Before the first delimiter line.
    Preamble(Vec<u8>),
    /// Inside the signed part: the bytes that may begin a delimiter are held back.
    Part(Vec<u8>),
    /// From the delimiter after the signed part on.
    Rest(Vec<u8>),
}

impl SignedNode {
    fn new(ct: &ContentType, ctx: &mut Ctx) -> Result<SignedNode> {
        let boundary = ct
            .params
            .get("boundary")
            .ok_or_else(|| Error::MalformedMime("multipart/signed without a boundary".into()))?;
        if boundary.is_empty() || boundary.len() > 200 {
            return Err(Error::MalformedMime(
                "multipart boundary is empty or longer than 200 characters".into(),
            ));
        }
        // The digests the signature may need: those the sender declared, and the receipt's.
        let mut algorithms: Vec<DigestAlgorithm> = ct
            .params
            .get("micalg")
            .unwrap_or_default()
            .split(',')
            .filter_map(DigestAlgorithm::from_name)
            .collect();
        if algorithms.is_empty() {
            algorithms = DigestAlgorithm::ALL
                .into_iter()
                .filter(|d| d.can_sign())
                .collect();
        }
        algorithms.extend(ctx.requested_mic);
        let mut unique = Vec::new();
        for a in algorithms {
            if !unique.contains(&a) {
                unique.push(a);
            }
        }
        let algorithms = unique;
        ctx.signed = true;
        let slot = ctx.layers.len();
        ctx.layers.push(None);
        Ok(SignedNode {
            delimiter: format!("\n--{boundary}").into_bytes(),
            boundary,
            state: Split::Preamble(Vec::new()),
            digests: FormDigests::new(&algorithms)?,
            inner: Node::Entity(Box::new(EntityNode::new(None))),
            slot,
        })
    }

    /// The signed part's next bytes: digested and passed on.
    fn pass(&mut self, bytes: &[u8], ctx: &mut Ctx, out: &mut Vec<u8>) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.digests.update(bytes, &ctx.policy.limits)?;
        self.inner.update(bytes, ctx, out)
    }

    /// Where the delimiter line whose `--` is at `at` ends, if it is one of ours: `None` while
    /// its line has not all come, `Some(None)` for a longer boundary that starts with ours.
    fn delimiter_line(&self, buf: &[u8], at: usize) -> Option<Option<usize>> {
        let padding = |b: &u8| matches!(b, b' ' | b'\t' | b'\r');
        let after_start = at + self.delimiter.len() - 1;
        let after = &buf[after_start..];
        if after.len() < 2 && after.iter().all(|&b| b == b'-') {
            return None; // may yet be the closing `--`
        }
        let rest_start = if after.starts_with(b"--") {
            after_start + 2
        } else {
            after_start
        };
        let rest = &buf[rest_start..];
        match memchr::memchr(b'\n', rest) {
            Some(eol) => Some(
                rest[..eol]
                    .iter()
                    .all(padding)
                    .then_some(rest_start + eol + 1),
            ),
            None if rest.len() <= 256 && rest.iter().all(padding) => None,
            None => Some(None),
        }
    }

    fn update(&mut self, data: &[u8], ctx: &mut Ctx, out: &mut Vec<u8>) -> Result<()> {
        match &mut self.state {
            Split::Preamble(buf) => {
                buf.extend_from_slice(data);
                let buf = std::mem::take(buf);
                self.preamble(buf, ctx, out)
            }
            Split::Part(carry) => {
                carry.extend_from_slice(data);
                let carry = std::mem::take(carry);
                self.part(carry, ctx, out)
            }
            Split::Rest(rest) => {
                rest.extend_from_slice(data);
                if rest.len() > MAX_BUFFERED {
                    return Err(Error::MalformedMime(
                        "the signature part of multipart/signed is larger than 1 MiB".into(),
                    ));
                }
                Ok(())
            }
        }
    }

    /// Looks for the first delimiter line (at the start of the body or of a line).
    fn preamble(&mut self, buf: Vec<u8>, ctx: &mut Ctx, out: &mut Vec<u8>) -> Result<()> {
        let first = &self.delimiter[1..];
        let mut from = 0;
        while let Some(found) = memchr::memmem::find(&buf[from..], first) {
            let at = from + found;
            from = at + 1;
            if at != 0 && buf[at - 1] != b'\n' {
                continue;
            }
            match self.delimiter_line(&buf, at) {
                None => break,
                Some(None) => continue,
                Some(Some(start)) => {
                    self.state = Split::Part(Vec::new());
                    return self.part(buf[start..].to_vec(), ctx, out);
                }
            }
        }
        if buf.len() > MAX_BUFFERED {
            return Err(Error::MalformedMime(format!(
                "multipart boundary {:?} not found in the body",
                self.boundary
            )));
        }
        self.state = Split::Preamble(buf);
        Ok(())
    }

    /// Passes on the signed part's bytes up to its delimiter, holding back what may begin one.
    fn part(&mut self, carry: Vec<u8>, ctx: &mut Ctx, out: &mut Vec<u8>) -> Result<()> {
        let finder = memchr::memmem::Finder::new(&self.delimiter);
        let mut from = 0;
        let mut hold = carry.len().saturating_sub(self.delimiter.len());
        while let Some(found) = finder.find(&carry[from..]) {
            let at = from + found;
            from = at + 1;
            match self.delimiter_line(&carry, at + 1) {
                None => {
                    hold = hold.min(at);
                    break;
                }
                Some(None) => continue,
                Some(Some(_)) => {
                    let end = if at > 0 && carry[at - 1] == b'\r' {
                        at - 1
                    } else {
                        at
                    };
                    self.pass(&carry[..end], ctx, out)?;
                    self.state = Split::Rest(carry[at + 1..].to_vec());
                    return Ok(());
                }
            }
        }
        // A CR just before what is held back may belong to the delimiter.
        if hold > 0 && carry[hold - 1] == b'\r' {
            hold -= 1;
        }
        self.pass(&carry[..hold], ctx, out)?;
        self.state = Split::Part(carry[hold..].to_vec());
        Ok(())
    }

    fn finish(mut self, ctx: &mut Ctx, out: &mut Vec<u8>) -> Result<()> {
        let rest = match std::mem::replace(&mut self.state, Split::Rest(Vec::new())) {
            Split::Preamble(_) => {
                return Err(Error::MalformedMime(format!(
                    "multipart boundary {:?} not found in the body",
                    self.boundary
                )))
            }
            Split::Part(_) => {
                return Err(Error::MalformedMime(
                    "multipart/signed must have a content part and a signature part".into(),
                ))
            }
            Split::Rest(rest) => rest,
        };
        let limits = ctx.policy.limits;
        let parts = mime::split_multipart(&rest, &self.boundary, &limits)?;
        let sig = signature_part(&rest, &parts.parts, &limits)?;
        let binary = self.digests.binary(&limits);
        let digests = std::mem::replace(&mut self.digests, FormDigests::new(&[])?).finish()?;
        let digest_of = |alg: DigestAlgorithm, form: SignedForm| digests.get(&(alg, form)).cloned();
        let (digest, scheme, who, form) = if ctx.policy.skip_signature_verification {
            let (digest, scheme, form) = receive::unverified_signature(&sig, binary)?;
            (digest, scheme, None, form)
        } else {
            let v = cms::verify_digests(
                &sig,
                &ctx.certificates,
                receive::signed_forms(binary),
                digest_of,
            )?;
            if ctx.policy.check_certificate_validity {
                check_validity(&v.signer, ctx.at)?;
            }
            (v.digest, v.scheme, Some(v.signer), v.form)
        };
        receive::check_digest(digest, &ctx.policy)?;
        let alg = receive::mic_algorithm(&ctx.policy, ctx.requested_mic, digest);
        let mic = digest_of(alg, form).ok_or_else(|| {
            Error::NotStreamable(format!(
                "the signature's digest {digest} is not the multipart/signed micalg"
            ))
        })?;
        ctx.layers[self.slot] = Some(Layer::Signed {
            digest,
            scheme,
            signer: who
                .as_ref()
                .map(|c| subject_name(c))
                .unwrap_or_else(|| "(not verified)".into()),
        });
        ctx.signer = who;
        self.inner.finish(ctx, out)?;
        // Set last: the payload inside a signature takes its MIC from it.
        ctx.mic = Some(Mic::from_digest(alg, &mic));
        Ok(())
    }
}

/// The signed part digested in each form it may have been signed in: as received, in
/// canonical form, and with only its header block in canonical form. A form is digested apart
/// only once it differs from the bytes as received (a bare LF in the part, or in its header
/// block): until then, and for most parts throughout, it is the received digest.
struct FormDigests {
    algorithms: Vec<DigestAlgorithm>,
    received: Vec<Hasher>,
    /// `None` while the canonical form is the bytes as received.
    canonical: Option<Vec<Hasher>>,
    /// `None` while the canonical-headers form is the bytes as received.
    canonical_headers: Option<Vec<Hasher>>,
    canon: Canon,
    scratch: Vec<u8>,
    /// The part's header block until its end is seen.
    head: Option<Vec<u8>>,
    head_text: Vec<u8>,
}

impl FormDigests {
    fn new(algorithms: &[DigestAlgorithm]) -> Result<FormDigests> {
        Ok(FormDigests {
            algorithms: algorithms.to_vec(),
            received: hashers(algorithms)?,
            canonical: None,
            canonical_headers: None,
            canon: Canon::default(),
            scratch: Vec::new(),
            head: Some(Vec::new()),
            head_text: Vec::new(),
        })
    }

    fn update(&mut self, bytes: &[u8], limits: &mime::Limits) -> Result<()> {
        self.scratch.clear();
        self.canon.apply(bytes, &mut self.scratch);
        if self.scratch.len() != bytes.len() && self.canonical.is_none() {
            // The first bare LF: the canonical form parts from the received one here.
            self.canonical = Some(self.received.clone());
        }
        for h in &mut self.received {
            h.update(bytes)?;
        }
        for h in self.canonical.iter_mut().flatten() {
            h.update(&self.scratch)?;
        }
        let Some(head) = &mut self.head else {
            for h in self.canonical_headers.iter_mut().flatten() {
                h.update(bytes)?;
            }
            return Ok(());
        };
        head.extend_from_slice(bytes);
        let end = match mime::header_block_end(head) {
            Some(end) => end,
            None if head.len() > limits.max_header_bytes => head.len(),
            None => return Ok(()),
        };
        let head = self.head.take().unwrap_or_default();
        self.head_text = head[..end].to_vec();
        // The canonical-headers form: the header block canonical, the rest as it came.
        if let std::borrow::Cow::Owned(canonical) = mime::canonicalize(&head[..end]) {
            let mut h = hashers(&self.algorithms)?;
            for h in &mut h {
                h.update(&canonical)?;
                h.update(&head[end..])?;
            }
            self.canonical_headers = Some(h);
        }
        Ok(())
    }

    /// Whether the part says it is binary.
    fn binary(&self, limits: &mime::Limits) -> bool {
        let head = self.head.as_deref().unwrap_or(&self.head_text);
        mime::Entity::parse(head, limits)
            .is_ok_and(|e| e.transfer_encoding() == Some(TransferEncoding::Binary))
    }

    /// Each form's digest in each algorithm (a form that never parted, the received one's).
    fn finish(self) -> Result<HashMap<(DigestAlgorithm, SignedForm), Vec<u8>>> {
        let mut out = HashMap::new();
        let mut received = Vec::new();
        for (alg, mut h) in self.algorithms.iter().zip(self.received) {
            let d = h.finish()?.to_vec();
            out.insert((*alg, SignedForm::AsReceived), d.clone());
            received.push(d);
        }
        for (form, hashers) in [
            (SignedForm::Canonical, self.canonical),
            (SignedForm::CanonicalHeaders, self.canonical_headers),
        ] {
            for (i, alg) in self.algorithms.iter().enumerate() {
                let d = match &hashers {
                    Some(h) => h[i].clone().finish()?.to_vec(),
                    None => received[i].clone(),
                };
                out.insert((*alg, form), d);
            }
        }
        Ok(out)
    }
}

/// A hasher for each of `algorithms`.
fn hashers(algorithms: &[DigestAlgorithm]) -> Result<Vec<Hasher>> {
    algorithms
        .iter()
        .map(|a| Hasher::new(a.message_digest()).map_err(Error::from))
        .collect()
}

/// The payload's entity: its body, transfer encoding removed, goes out; its MIC (when no
/// signature gives one) is computed as it passes.
struct PayloadNode {
    decoder: Decoder,
    /// Encrypted and unsigned: the MIC over the entity as it came (canonical unless binary).
    entity_mic: Option<(Hasher, Option<Canon>)>,
    /// Neither signed nor encrypted: the MIC over the content (canonical for text encodings).
    content_mic: Option<(Hasher, Option<Canon>)>,
    algorithm: DigestAlgorithm,
    decoded: Vec<u8>,
    scratch: Vec<u8>,
}

impl PayloadNode {
    fn new(entity: &Entity<'_>, raw_head: Option<Vec<u8>>, ctx: &mut Ctx) -> Result<PayloadNode> {
        let raw_filename = entity.raw_filename();
        ctx.payload = Some(PayloadInfo {
            filename: raw_filename
                .as_deref()
                .and_then(crate::filename::sanitize_filename),
            raw_filename,
            content_type: entity
                .headers
                .get("Content-Type")
                .unwrap_or("application/octet-stream")
                .to_string(),
        });
        let encoding = entity.transfer_encoding();
        let decoder = match &encoding {
            None
            | Some(
                TransferEncoding::SevenBit | TransferEncoding::EightBit | TransferEncoding::Binary,
            ) => Decoder::Identity,
            Some(TransferEncoding::Base64) => Decoder::Base64(Base64::default()),
            Some(TransferEncoding::QuotedPrintable) => Decoder::QuotedPrintable(Vec::new()),
            Some(TransferEncoding::Other(o)) => {
                return Err(Error::MalformedMime(format!(
                    "unknown Content-Transfer-Encoding {o:?}"
                )))
            }
        };
        let algorithm = ctx.requested_mic.unwrap_or(DigestAlgorithm::Sha256);
        let hasher = || Hasher::new(algorithm.message_digest());
        let binary = encoding == Some(TransferEncoding::Binary);
        let mut node = PayloadNode {
            decoder,
            entity_mic: None,
            content_mic: None,
            algorithm,
            decoded: Vec::new(),
            scratch: Vec::new(),
        };
        // Signed: the signature's layer gives the MIC.
        if !ctx.signed && ctx.encrypted {
            let mut mic = (hasher()?, (!binary).then(Canon::default));
            if let Some(head) = raw_head {
                digest(&mut mic, &head, &mut node.scratch)?;
            }
            node.entity_mic = Some(mic);
        } else if !ctx.signed {
            let text = receive::is_text_encoding(encoding.as_ref());
            node.content_mic = Some((hasher()?, text.then(Canon::default)));
        }
        Ok(node)
    }

    fn update(&mut self, data: &[u8], ctx: &mut Ctx, out: &mut Vec<u8>) -> Result<()> {
        if let Some(m) = &mut self.entity_mic {
            digest(m, data, &mut self.scratch)?;
        }
        let mut decoded = std::mem::take(&mut self.decoded);
        decoded.clear();
        let r = self.decoder.update(data, &mut decoded);
        let r = r.and_then(|()| self.emit(&decoded, ctx, out));
        self.decoded = decoded;
        r
    }

    fn emit(&mut self, decoded: &[u8], ctx: &mut Ctx, out: &mut Vec<u8>) -> Result<()> {
        if let Some(m) = &mut self.content_mic {
            digest(m, decoded, &mut self.scratch)?;
        }
        ctx.size += decoded.len() as u64;
        out.extend_from_slice(decoded);
        Ok(())
    }

    fn finish(mut self, ctx: &mut Ctx, out: &mut Vec<u8>) -> Result<()> {
        let mut tail = Vec::new();
        std::mem::replace(&mut self.decoder, Decoder::Identity).finish(&mut tail)?;
        self.emit(&tail, ctx, out)?;
        let mic = self.entity_mic.take().or(self.content_mic.take());
        if let Some((mut h, _)) = mic {
            ctx.mic = Some(Mic::from_digest(self.algorithm, &h.finish()?));
        }
        Ok(())
    }
}

/// Feeds `data` to a MIC, through its canonical form if it has one.
fn digest(mic: &mut (Hasher, Option<Canon>), data: &[u8], scratch: &mut Vec<u8>) -> Result<()> {
    match &mut mic.1 {
        Some(canon) => {
            scratch.clear();
            canon.apply(data, scratch);
            mic.0.update(scratch)?;
        }
        None => mic.0.update(data)?,
    }
    Ok(())
}

/// A transfer encoding removed as the body passes.
enum Decoder {
    Identity,
    Base64(Base64),
    /// The bytes of an escape (`=` and what follows) not all there yet.
    QuotedPrintable(Vec<u8>),
}

impl Decoder {
    fn update(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<()> {
        match self {
            Decoder::Identity => {
                out.extend_from_slice(data);
                Ok(())
            }
            Decoder::Base64(b) => b.update(data, out),
            Decoder::QuotedPrintable(held) => {
                held.extend_from_slice(data);
                // An escape at the very end may continue in the next bytes.
                let keep = held
                    .iter()
                    .rev()
                    .take(2)
                    .position(|&b| b == b'=')
                    .map_or(0, |i| i + 1);
                let ready = held.len() - keep;
                out.extend_from_slice(&mime::decode_quoted_printable(&held[..ready]));
                held.drain(..ready);
                Ok(())
            }
        }
    }

    fn finish(self, out: &mut Vec<u8>) -> Result<()> {
        match self {
            Decoder::Identity => Ok(()),
            Decoder::Base64(b) => b.finish(out),
            Decoder::QuotedPrintable(held) => {
                out.extend_from_slice(&mime::decode_quoted_printable(&held));
                Ok(())
            }
        }
    }
}

/// Base64 decoded as it comes, wrapped at any width, padded or not.
#[derive(Default)]
struct Base64 {
    /// Characters of a group of four not all there yet.
    held: Vec<u8>,
}

impl Base64 {
    fn update(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<()> {
        self.held
            .extend(data.iter().copied().filter(|b| !b.is_ascii_whitespace()));
        // Padding ends the data: its group waits for the end, and nothing may follow it.
        let whole = match memchr::memchr(b'=', &self.held) {
            Some(p) if self.held[p..].iter().any(|&b| b != b'=') => {
                return Err(Error::MalformedMime(
                    "invalid base64 body: data after the padding".into(),
                ))
            }
            Some(p) => p / 4 * 4,
            None => self.held.len() / 4 * 4,
        };
        out.extend_from_slice(&mime::decode_base64(&self.held[..whole])?);
        self.held.drain(..whole);
        Ok(())
    }

    fn finish(self, out: &mut Vec<u8>) -> Result<()> {
        out.extend_from_slice(&mime::decode_base64(&self.held)?);
        Ok(())
    }
}

/// Bare LFs turned into CRLF as bytes pass (MIME canonical form), across calls.
#[derive(Default)]
struct Canon {
    after_cr: bool,
}

impl Canon {
    fn apply(&mut self, data: &[u8], out: &mut Vec<u8>) {
        let mut from = 0;
        for i in memchr::memchr_iter(b'\n', data) {
            let bare = if i == 0 {
                !self.after_cr
            } else {
                data[i - 1] != b'\r'
            };
            if bare {
                out.extend_from_slice(&data[from..i]);
                out.extend_from_slice(b"\r\n");
                from = i + 1;
            }
        }
        out.extend_from_slice(&data[from..]);
        if let Some(&last) = data.last() {
            self.after_cr = last == b'\r';
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_across_any_split() {
        let text = b"a\nb\r\nc\r\r\nd\n\ne";
        for cut in 0..=text.len() {
            let mut c = Canon::default();
            let mut out = Vec::new();
            c.apply(&text[..cut], &mut out);
            c.apply(&text[cut..], &mut out);
            assert_eq!(out, mime::canonicalize(text).as_ref(), "cut at {cut}");
        }
    }

    #[test]
    fn base64_and_quoted_printable_across_any_split() {
        let data: Vec<u8> = (0..=255u8).collect();
        let encoded = mime::encode_base64_lines(&data);
        let qp = b"caf=C3=A9 =\r\nsoft=3D\r\nend=";
        for cut in 0..=encoded.len() {
            let mut b = Base64::default();
            let mut out = Vec::new();
            b.update(&encoded[..cut], &mut out).unwrap();
            b.update(&encoded[cut..], &mut out).unwrap();
            b.finish(&mut out).unwrap();
            assert_eq!(out, data, "cut at {cut}");
        }
        // Nothing may follow the padding, as in memory.
        assert!(mime::decode_base64(b"QQ==\r\nQUJD").is_err());
        let mut b = Base64::default();
        let mut out = Vec::new();
        assert!(b.update(b"QQ==\r\nQUJD", &mut out).is_err());
        for cut in 0..=qp.len() {
            let mut d = Decoder::QuotedPrintable(Vec::new());
            let mut out = Vec::new();
            d.update(&qp[..cut], &mut out).unwrap();
            d.update(&qp[cut..], &mut out).unwrap();
            d.finish(&mut out).unwrap();
            assert_eq!(out, mime::decode_quoted_printable(qp), "cut at {cut}");
        }
    }
}
