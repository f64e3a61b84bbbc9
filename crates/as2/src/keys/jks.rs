//! Java KeyStore reading (the format `keytool -storetype JKS` writes).

use super::*;

const KEY_PROTECTOR_OID: &str = "1.3.6.1.4.1.42.2.17.1.1";

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        match end {
            Some(end) => {
                let s = &self.data[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(Error::Key("truncated JKS keystore".into())),
        }
    }
    fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn utf(&mut self) -> Result<String> {
        let n = self.u16()? as usize;
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }
    fn cert(&mut self, version: u32) -> Result<X509> {
        if version == 2 {
            let ty = self.utf()?;
            if ty != "X.509" {
                return Err(Error::Key(format!(
                    "unsupported certificate type {ty:?} in JKS"
                )));
            }
        }
        let n = self.u32()? as usize;
        X509::from_der(self.take(n)?)
            .map_err(|e| Error::Key(format!("bad certificate in JKS: {}", first_reason(&e))))
    }
}

fn put_utf(out: &mut Vec<u8>, s: &str) -> Result<()> {
    let len = u16::try_from(s.len()).map_err(|_| Error::Key(format!("alias {s:?} is too long")))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn put_cert(out: &mut Vec<u8>, cert: &X509) -> Result<()> {
    put_utf(out, "X.509")?;
    let der = cert.to_der()?;
    let len = u32::try_from(der.len()).map_err(|_| Error::Key("certificate too large".into()))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&der);
    Ok(())
}

pub(super) fn write(
    entries: &[KeystoreEntry],
    password: &str,
    created: UnixTime,
) -> Result<Vec<u8>> {
    let count = u32::try_from(entries.len()).map_err(|_| Error::Key("too many entries".into()))?;
    let mut out = Vec::new();
    out.extend_from_slice(&0xfeed_feed_u32.to_be_bytes());
    out.extend_from_slice(&2u32.to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    let millis = (created.0.max(0) as u64).saturating_mul(1000);
    for e in entries {
        match &e.private_key {
            Some(key) => {
                out.extend_from_slice(&1u32.to_be_bytes());
                put_utf(&mut out, &e.alias)?;
                out.extend_from_slice(&millis.to_be_bytes());
                let protected = protect_key(&key.private_key_to_pkcs8()?, password)?;
                out.extend_from_slice(&(protected.len() as u32).to_be_bytes());
                out.extend_from_slice(&protected);
                out.extend_from_slice(&(1 + e.chain.len() as u32).to_be_bytes());
                put_cert(&mut out, &e.certificate)?;
                for c in &e.chain {
                    put_cert(&mut out, c)?;
                }
            }
            None => {
                out.extend_from_slice(&2u32.to_be_bytes());
                put_utf(&mut out, &e.alias)?;
                out.extend_from_slice(&millis.to_be_bytes());
                put_cert(&mut out, &e.certificate)?;
            }
        }
    }
    let mut check = utf16be(password);
    check.extend_from_slice(b"Mighty Aphrodite");
    check.extend_from_slice(&out);
    out.extend_from_slice(&hash(MessageDigest::sha1(), &check)?);
    Ok(out)
}

/// The inverse of [`recover_key`]: salt, XOR with the SHA-1 keystream, SHA-1 check.
fn protect_key(plain: &[u8], password: &str) -> Result<Vec<u8>> {
    let mut salt = [0u8; 20];
    openssl::rand::rand_bytes(&mut salt)?;
    let pw = utf16be(password);
    let mut data = salt.to_vec();
    let mut digest = salt.to_vec();
    for chunk in plain.chunks(20) {
        let mut input = pw.clone();
        input.extend_from_slice(&digest);
        digest = hash(MessageDigest::sha1(), &input)?.to_vec();
        data.extend(chunk.iter().zip(&digest).map(|(a, b)| a ^ b));
    }
    let mut verify = pw;
    verify.extend_from_slice(plain);
    data.extend_from_slice(&hash(MessageDigest::sha1(), &verify)?);
    let alg = asn1::der_seq(
        asn1::tag::SEQUENCE,
        &[&asn1::der_oid(KEY_PROTECTOR_OID), &[asn1::tag::NULL, 0]],
    );
    Ok(asn1::der_seq(
        asn1::tag::SEQUENCE,
        &[&alg, &asn1::der(asn1::tag::OCTET_STRING, &data)],
    ))
}

fn utf16be(password: &str) -> Vec<u8> {
    password
        .encode_utf16()
        .flat_map(|u| u.to_be_bytes())
        .collect()
}

pub(super) fn load(data: &[u8], store_password: &str, key_password: &str) -> Result<Keystore> {
    if data.len() < 20 + 12 {
        return Err(Error::Key("truncated JKS keystore".into()));
    }
    let (body, digest) = data.split_at(data.len() - 20);
    let mut check = utf16be(store_password);
    check.extend_from_slice(b"Mighty Aphrodite");
    check.extend_from_slice(body);
    let computed = hash(MessageDigest::sha1(), &check)?;
    if computed.as_ref() != digest {
        return Err(Error::Key(
            "JKS keystore integrity check failed: wrong store password or corrupted file".into(),
        ));
    }
    let mut r = Reader { data: body, pos: 0 };
    if r.u32()? != 0xfeed_feed {
        return Err(Error::Key("not a JKS keystore".into()));
    }
    let version = r.u32()?;
    if version != 1 && version != 2 {
        return Err(Error::Key(format!("unsupported JKS version {version}")));
    }
    let count = r.u32()?;
    let mut entries = Vec::new();
    for _ in 0..count {
        let tag = r.u32()?;
        let alias = r.utf()?;
        r.take(8)?; // creation timestamp
        match tag {
            1 => {
                let n = r.u32()? as usize;
                let protected = r.take(n)?;
                let key = recover_key(protected, key_password)?;
                let chain_len = r.u32()? as usize;
                if chain_len == 0 || chain_len > 16 {
                    return Err(Error::Key(format!(
                        "JKS entry {alias:?} has a bad chain length"
                    )));
                }
                let mut chain = Vec::with_capacity(chain_len);
                for _ in 0..chain_len {
                    chain.push(r.cert(version)?);
                }
                let certificate = chain.remove(0);
                entries.push(KeystoreEntry {
                    alias,
                    certificate,
                    chain,
                    private_key: Some(key),
                });
            }
            2 => {
                let certificate = r.cert(version)?;
                entries.push(KeystoreEntry {
                    alias,
                    certificate,
                    chain: Vec::new(),
                    private_key: None,
                });
            }
            other => {
                return Err(Error::Key(format!("unsupported JKS entry type {other}")));
            }
        }
    }
    Ok(Keystore { entries })
}

/// Sun's KeyProtector: a SHA-1 keystream over the UTF-16 password and a 20-byte salt, plus a
/// SHA-1 check of the plaintext.
fn recover_key(protected: &[u8], password: &str) -> Result<PKey<Private>> {
    let epki = asn1::read_all(protected)
        .and_then(|t| t.expect(asn1::tag::SEQUENCE, "EncryptedPrivateKeyInfo"))
        .and_then(|t| t.children())
        .map_err(|e| Error::Key(format!("bad JKS key entry: {e}")))?;
    let (alg, enc) = match epki.as_slice() {
        [alg, enc] => (alg, enc),
        _ => return Err(Error::Key("bad JKS key entry structure".into())),
    };
    let oid = alg
        .children()
        .ok()
        .and_then(|c| c.first().and_then(|o| o.oid().ok()))
        .unwrap_or_default();
    if oid != KEY_PROTECTOR_OID {
        return Err(Error::Key(format!("unsupported JKS key protection {oid}")));
    }
    let enc = enc
        .octets()
        .map_err(|e| Error::Key(format!("bad JKS key entry: {e}")))?;
    if enc.len() < 40 {
        return Err(Error::Key("bad JKS key entry: too short".into()));
    }
    let (salt, rest) = enc.split_at(20);
    let (encrypted, check) = rest.split_at(rest.len() - 20);
    let pw = utf16be(password);
    let mut plain = Vec::with_capacity(encrypted.len());
    let mut digest = salt.to_vec();
    for chunk in encrypted.chunks(20) {
        let mut input = pw.clone();
        input.extend_from_slice(&digest);
        digest = hash(MessageDigest::sha1(), &input)?.to_vec();
        plain.extend(chunk.iter().zip(&digest).map(|(a, b)| a ^ b));
    }
    let mut verify = pw;
    verify.extend_from_slice(&plain);
    if hash(MessageDigest::sha1(), &verify)?.as_ref() != check {
        return Err(Error::Key(
            "cannot recover the JKS private key: wrong key password".into(),
        ));
    }
    PKey::private_key_from_pkcs8(&plain)
        .map_err(|e| Error::Key(format!("bad PKCS#8 key in JKS: {}", first_reason(&e))))
}
