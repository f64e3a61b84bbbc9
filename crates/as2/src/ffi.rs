//! The one place with `unsafe`: OpenSSL calls the `openssl` crate does not wrap.
//!
//! - CMS signing with a chosen digest and RSA-PSS (`CMS_sign` alone always uses the key's default
//!   digest), through `CMS_add1_signer` and `CMS_final`.
//! - CMS verification without copying the content to an output buffer, and the signer it found.
//! - CMS decryption into a Rust `Vec` through a small write-only BIO, so the plaintext is not held
//!   twice (OpenSSL's memory BIO would have to be copied out).
//! - Walking every bag of a PKCS#12 file (`PKCS12_parse` returns only the first key, but keystores
//!   made by `keytool` may hold several aliases), with the parts OpenSSL cannot decrypt (RC2)
//!   decrypted by `pkcs12` and read back with `ASN1_item_d2i`.
//!
//! Each function owns every pointer it creates and frees it on all paths; nothing here outlives
//! the call except values handed to the `openssl` crate's owning types.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_long, c_uint, c_void};
use std::ptr;

use foreign_types::{ForeignType, ForeignTypeRef};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, PKeyRef, Private};
use openssl::stack::Stack;
use openssl::x509::{X509Ref, X509};
use openssl_sys as sys;

#[allow(non_camel_case_types)]
enum CMS_SignerInfo {}
#[allow(non_camel_case_types)]
enum PKCS12_SAFEBAG {}
#[allow(non_camel_case_types)]
enum PKCS7 {}
#[allow(non_camel_case_types)]
enum ASN1_ITEM {}

extern "C" {
    fn CMS_add1_signer(
        cms: *mut sys::CMS_ContentInfo,
        signer: *mut sys::X509,
        pk: *mut sys::EVP_PKEY,
        md: *const sys::EVP_MD,
        flags: c_uint,
    ) -> *mut CMS_SignerInfo;
    fn CMS_SignerInfo_get0_pkey_ctx(si: *mut CMS_SignerInfo) -> *mut sys::EVP_PKEY_CTX;
    fn CMS_final(
        cms: *mut sys::CMS_ContentInfo,
        data: *mut sys::BIO,
        dcont: *mut sys::BIO,
        flags: c_uint,
    ) -> c_int;
    fn CMS_get0_signers(cms: *mut sys::CMS_ContentInfo) -> *mut sys::stack_st_X509;

    fn PKCS12_unpack_authsafes(p12: *const sys::PKCS12) -> *mut sys::OPENSSL_STACK;
    fn PKCS12_unpack_p7data(p7: *mut PKCS7) -> *mut sys::OPENSSL_STACK;
    fn PKCS12_unpack_p7encdata(
        p7: *mut PKCS7,
        pass: *const c_char,
        passlen: c_int,
    ) -> *mut sys::OPENSSL_STACK;
    fn PKCS12_SAFEBAG_get_nid(bag: *const PKCS12_SAFEBAG) -> c_int;
    fn PKCS12_SAFEBAG_get1_cert(bag: *const PKCS12_SAFEBAG) -> *mut sys::X509;
    fn PKCS12_SAFEBAG_get0_p8inf(bag: *const PKCS12_SAFEBAG) -> *const sys::PKCS8_PRIV_KEY_INFO;
    fn PKCS12_SAFEBAG_get0_safes(bag: *const PKCS12_SAFEBAG) -> *const sys::OPENSSL_STACK;
    fn PKCS12_decrypt_skey(
        bag: *const PKCS12_SAFEBAG,
        pass: *const c_char,
        passlen: c_int,
    ) -> *mut sys::PKCS8_PRIV_KEY_INFO;
    fn PKCS12_get_friendlyname(bag: *mut PKCS12_SAFEBAG) -> *mut c_char;
    fn PKCS12_verify_mac(p12: *mut sys::PKCS12, pass: *const c_char, passlen: c_int) -> c_int;
    fn PKCS12_mac_present(p12: *const sys::PKCS12) -> c_int;
    fn PKCS12_SAFEBAG_free(bag: *mut PKCS12_SAFEBAG);
    fn PKCS7_free(p7: *mut PKCS7);
    fn i2d_PKCS7(p7: *const PKCS7, out: *mut *mut u8) -> c_int;
    fn PKCS12_SAFEBAGS_it() -> *const ASN1_ITEM;
    fn ASN1_item_d2i(
        val: *mut *mut c_void,
        input: *mut *const u8,
        len: c_long,
        it: *const ASN1_ITEM,
    ) -> *mut c_void;
}

const RSA_PSS_SALTLEN_DIGEST: c_int = -1;

/// A read-only memory BIO over a borrowed slice; freed on drop.
struct InBio<'a> {
    bio: *mut sys::BIO,
    _data: std::marker::PhantomData<&'a [u8]>,
}

impl<'a> InBio<'a> {
    fn new(data: &'a [u8]) -> Result<Self, ErrorStack> {
        let len = c_int::try_from(data.len()).map_err(|_| ErrorStack::get())?;
        // SAFETY: BIO_new_mem_buf only reads `len` bytes from `data`, which outlives the BIO.
        let bio = unsafe { sys::BIO_new_mem_buf(data.as_ptr() as *const c_void, len) };
        if bio.is_null() {
            return Err(ErrorStack::get());
        }
        Ok(InBio {
            bio,
            _data: std::marker::PhantomData,
        })
    }
}

impl Drop for InBio<'_> {
    fn drop(&mut self) {
        // SAFETY: `bio` was created by BIO_new_mem_buf and is freed once.
        unsafe { sys::BIO_free_all(self.bio) };
    }
}

/// An owned CMS_ContentInfo; freed on drop.
struct Cms(*mut sys::CMS_ContentInfo);

impl Drop for Cms {
    fn drop(&mut self) {
        // SAFETY: the pointer came from CMS_sign or d2i and is freed once.
        unsafe { sys::CMS_ContentInfo_free(self.0) };
    }
}

impl Cms {
    fn from_der(der: &[u8]) -> Result<Cms, ErrorStack> {
        let len = std::os::raw::c_long::try_from(der.len()).map_err(|_| ErrorStack::get())?;
        let mut p = der.as_ptr();
        // SAFETY: d2i reads at most `len` bytes from `p`.
        let cms = unsafe { sys::d2i_CMS_ContentInfo(ptr::null_mut(), &mut p, len) };
        if cms.is_null() {
            return Err(ErrorStack::get());
        }
        Ok(Cms(cms))
    }

    fn to_der(&self) -> Result<Vec<u8>, ErrorStack> {
        // SAFETY: the two-call i2d pattern: size first, then fill a buffer of that size.
        unsafe {
            let len = sys::i2d_CMS_ContentInfo(self.0, ptr::null_mut());
            if len <= 0 {
                return Err(ErrorStack::get());
            }
            let mut buf = vec![0u8; len as usize];
            let mut p = buf.as_mut_ptr();
            let written = sys::i2d_CMS_ContentInfo(self.0, &mut p);
            if written != len {
                return Err(ErrorStack::get());
            }
            Ok(buf)
        }
    }
}

fn check(r: c_int) -> Result<(), ErrorStack> {
    if r > 0 {
        Ok(())
    } else {
        Err(ErrorStack::get())
    }
}

fn cert_stack(certs: &[X509]) -> Result<Stack<X509>, ErrorStack> {
    let mut s = Stack::new()?;
    for c in certs {
        s.push(c.clone())?;
    }
    Ok(s)
}

/// Detached CMS SignedData over `content` (taken as binary), with the chosen digest.
pub(crate) fn sign_detached(
    content: &[u8],
    cert: &X509Ref,
    key: &PKeyRef<Private>,
    chain: &[X509],
    md: MessageDigest,
    pss: bool,
) -> Result<Vec<u8>, ErrorStack> {
    let flags = sys::CMS_PARTIAL | sys::CMS_DETACHED | sys::CMS_BINARY;
    let extra = cert_stack(chain)?;
    // SAFETY: all pointers are valid for the call; CMS_sign copies (up-refs) what it keeps.
    let cms = unsafe {
        let p = sys::CMS_sign(
            ptr::null_mut(),
            ptr::null_mut(),
            if chain.is_empty() {
                ptr::null_mut()
            } else {
                extra.as_ptr()
            },
            ptr::null_mut(),
            flags,
        );
        if p.is_null() {
            return Err(ErrorStack::get());
        }
        Cms(p)
    };
    let signer_flags = if pss {
        flags | sys::CMS_KEY_PARAM
    } else {
        flags
    };
    // SAFETY: cms, cert and key are valid; CMS_add1_signer up-refs cert and key.
    unsafe {
        let si = CMS_add1_signer(
            cms.0,
            cert.as_ptr(),
            key.as_ptr(),
            md.as_ptr(),
            signer_flags,
        );
        if si.is_null() {
            return Err(ErrorStack::get());
        }
        if pss {
            let ctx = CMS_SignerInfo_get0_pkey_ctx(si);
            if ctx.is_null() {
                return Err(ErrorStack::get());
            }
            check(sys::EVP_PKEY_CTX_set_rsa_padding(
                ctx,
                sys::RSA_PKCS1_PSS_PADDING,
            ))?;
            check(sys::EVP_PKEY_CTX_set_rsa_pss_saltlen(
                ctx,
                RSA_PSS_SALTLEN_DIGEST,
            ))?;
        }
    }
    let input = InBio::new(content)?;
    // SAFETY: cms and the input BIO are valid for the call.
    check(unsafe { CMS_final(cms.0, input.bio, ptr::null_mut(), flags) })?;
    cms.to_der()
}

/// A write-only BIO that appends to a `Vec` we own.
struct VecBio {
    bio: *mut sys::BIO,
    method: *mut sys::BIO_METHOD,
    // Boxed so the pointer the BIO holds stays valid when the VecBio itself moves.
    #[allow(clippy::box_collection)]
    out: Box<Vec<u8>>,
}

unsafe extern "C" fn vec_bio_write(bio: *mut sys::BIO, buf: *const c_char, len: c_int) -> c_int {
    let out = sys::BIO_get_data(bio) as *mut Vec<u8>;
    if out.is_null() || len < 0 || (buf.is_null() && len > 0) {
        return -1;
    }
    if len > 0 {
        // SAFETY: OpenSSL passes `len` readable bytes at `buf`; `out` points at the boxed Vec
        // owned by the VecBio, which outlives the BIO.
        (*out).extend_from_slice(std::slice::from_raw_parts(buf as *const u8, len as usize));
    }
    len
}

unsafe extern "C" fn vec_bio_ctrl(
    _: *mut sys::BIO,
    cmd: c_int,
    _: c_long,
    _: *mut c_void,
) -> c_long {
    c_long::from(cmd == sys::BIO_CTRL_FLUSH)
}

unsafe extern "C" fn vec_bio_create(bio: *mut sys::BIO) -> c_int {
    sys::BIO_set_init(bio, 1);
    1
}

impl VecBio {
    fn new() -> Result<Self, ErrorStack> {
        // SAFETY: a method table with our three callbacks, then a BIO using it whose data pointer
        // is the boxed Vec; both are freed in Drop.
        unsafe {
            let method = sys::BIO_meth_new(sys::BIO_TYPE_NONE, c"mftg-vec".as_ptr());
            if method.is_null() {
                return Err(ErrorStack::get());
            }
            let mut vb = VecBio {
                bio: ptr::null_mut(),
                method,
                out: Box::default(),
            };
            if sys::BIO_meth_set_write__fixed_rust(method, Some(vec_bio_write)) <= 0
                || sys::BIO_meth_set_ctrl__fixed_rust(method, Some(vec_bio_ctrl)) <= 0
                || sys::BIO_meth_set_create__fixed_rust(method, Some(vec_bio_create)) <= 0
            {
                return Err(ErrorStack::get());
            }
            vb.bio = sys::BIO_new(method);
            if vb.bio.is_null() {
                return Err(ErrorStack::get());
            }
            sys::BIO_set_data(vb.bio, &mut *vb.out as *mut Vec<u8> as *mut c_void);
            Ok(vb)
        }
    }

    fn into_vec(mut self) -> Vec<u8> {
        std::mem::take(&mut *self.out)
    }
}

impl Drop for VecBio {
    fn drop(&mut self) {
        // SAFETY: the BIO (if created) is freed before its method table; each once.
        unsafe {
            if !self.bio.is_null() {
                sys::BIO_set_data(self.bio, ptr::null_mut());
                sys::BIO_free_all(self.bio);
            }
            sys::BIO_meth_free(self.method);
        }
    }
}

/// Decrypts EnvelopedData or AuthEnvelopedData whose encrypted content has been cut out of `der`
/// and is given as `ciphertext` (OpenSSL's detached-content form, so it reads the ciphertext from
/// our buffer instead of holding a parsed copy). Tries each of `keys`; returns the index of the
/// one that worked and the plaintext, or the last error.
pub(crate) fn decrypt(
    der: &[u8],
    ciphertext: &[u8],
    keys: &[(&PKeyRef<Private>, &X509Ref)],
) -> Result<(usize, Vec<u8>), ErrorStack> {
    let cms = Cms::from_der(der)?;
    let mut last = None;
    for (i, (key, cert)) in keys.iter().enumerate() {
        let out = VecBio::new()?;
        let content = InBio::new(ciphertext)?;
        // SAFETY: all pointers valid for the call; output goes to our Vec.
        let r = unsafe {
            sys::CMS_decrypt(cms.0, key.as_ptr(), cert.as_ptr(), content.bio, out.bio, 0)
        };
        match check(r) {
            Ok(()) => return Ok((i, out.into_vec())),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(ErrorStack::get))
}

/// Verifies detached SignedData over `content` against `certs` only (the partner's configured
/// certificates; chains are not built). Returns the signer certificate.
pub(crate) fn verify_detached(
    signature_der: &[u8],
    content: &[u8],
    certs: &[X509],
    content_check: bool,
) -> Result<X509, ErrorStack> {
    let cms = Cms::from_der(signature_der)?;
    let stack = cert_stack(certs)?;
    let mut flags = sys::CMS_NOINTERN | sys::CMS_NO_SIGNER_CERT_VERIFY | sys::CMS_BINARY;
    if !content_check {
        flags |= sys::CMS_NO_CONTENT_VERIFY;
    }
    let input = InBio::new(content)?;
    // SAFETY: all pointers valid; a null output BIO means the content is not copied anywhere.
    check(unsafe {
        sys::CMS_verify(
            cms.0,
            stack.as_ptr(),
            ptr::null_mut(),
            input.bio,
            ptr::null_mut(),
            flags,
        )
    })?;
    // SAFETY: after a successful verify the signer certificates are set; the stack (not its
    // elements) is ours to free, and we up-ref the element we return.
    unsafe {
        let signers = CMS_get0_signers(cms.0);
        if signers.is_null() {
            return Err(ErrorStack::get());
        }
        let st = signers as *mut sys::OPENSSL_STACK;
        let first = if sys::OPENSSL_sk_num(st) > 0 {
            sys::OPENSSL_sk_value(st, 0) as *mut sys::X509
        } else {
            ptr::null_mut()
        };
        let out = if first.is_null() {
            None
        } else {
            sys::X509_up_ref(first);
            Some(X509::from_ptr(first))
        };
        sys::OPENSSL_sk_free(st);
        out.ok_or_else(ErrorStack::get)
    }
}

/// One entry found in a PKCS#12 file.
pub(crate) enum P12Bag {
    /// A private key and its friendly name.
    Key(Option<String>, PKey<Private>),
    /// A certificate and its friendly name.
    Cert(Option<String>, X509),
}

/// Why the bags of a PKCS#12 file could not be read.
pub(crate) enum P12Failure {
    /// The integrity MAC does not verify: the password is wrong (or the file was altered).
    Mac,
    /// A part could not be decrypted or read.
    Bags(ErrorStack),
}

/// Checks the MAC (if any) and returns every key and certificate bag, with friendly names. An
/// encrypted part OpenSSL cannot decrypt (its legacy algorithms) is handed to `legacy` as the
/// DER of its ContentInfo; what it returns is read as the part's SafeContents.
pub(crate) fn pkcs12_bags(
    p12: &openssl::pkcs12::Pkcs12Ref,
    password: &str,
    legacy: &dyn Fn(&[u8]) -> Option<Vec<u8>>,
) -> Result<Vec<P12Bag>, P12Failure> {
    let bags_err = |_| P12Failure::Bags(ErrorStack::get());
    let pass = std::ffi::CString::new(password).map_err(bags_err)?;
    let passlen =
        c_int::try_from(password.len()).map_err(|_| P12Failure::Bags(ErrorStack::get()))?;
    let p12ptr = p12.as_ptr();
    let mut out = Vec::new();
    // SAFETY: every stack returned by an unpack or d2i call is owned here and freed with its
    // elements' own free function; bags borrowed from those stacks are not used after the free;
    // the DER written by i2d_PKCS7 is freed with OPENSSL_free.
    unsafe {
        if PKCS12_mac_present(p12ptr) == 1 && PKCS12_verify_mac(p12ptr, pass.as_ptr(), passlen) != 1
        {
            let _ = ErrorStack::get();
            return Err(P12Failure::Mac);
        }
        let safes = PKCS12_unpack_authsafes(p12ptr);
        if safes.is_null() {
            return Err(P12Failure::Bags(ErrorStack::get()));
        }
        let mut result = Ok(());
        for i in 0..sys::OPENSSL_sk_num(safes) {
            let p7 = sys::OPENSSL_sk_value(safes, i) as *mut PKCS7;
            let mut bags = PKCS12_unpack_p7data(p7);
            if bags.is_null() {
                bags = PKCS12_unpack_p7encdata(p7, pass.as_ptr(), passlen);
            }
            if bags.is_null() {
                let failure = ErrorStack::get();
                bags = p7_der(p7)
                    .and_then(|der| legacy(&der))
                    .map_or(ptr::null_mut(), |plain| safe_contents(&plain));
                if bags.is_null() {
                    result = Err(P12Failure::Bags(failure));
                    break;
                }
            }
            // Errors left by the first unpack attempt are not failures.
            let _ = ErrorStack::get();
            let r = collect_bags(bags, &pass, passlen, &mut out, 0);
            free_bag_stack(bags);
            if let Err(e) = r {
                result = Err(P12Failure::Bags(e));
                break;
            }
        }
        free_p7_stack(safes);
        result?;
    }
    Ok(out)
}

/// The DER of a PKCS7 structure.
unsafe fn p7_der(p7: *mut PKCS7) -> Option<Vec<u8>> {
    let mut buf: *mut u8 = ptr::null_mut();
    let len = i2d_PKCS7(p7, &mut buf);
    if len <= 0 || buf.is_null() {
        return None;
    }
    let der = std::slice::from_raw_parts(buf, len as usize).to_vec();
    sys::CRYPTO_free(
        buf as *mut c_void,
        concat!(file!(), "\0").as_ptr() as *const c_char,
        line!() as c_int,
    );
    Some(der)
}

/// A SafeContents DER as a stack of bags (null when it does not parse).
unsafe fn safe_contents(der: &[u8]) -> *mut sys::OPENSSL_STACK {
    let Ok(len) = c_long::try_from(der.len()) else {
        return ptr::null_mut();
    };
    let mut p = der.as_ptr();
    ASN1_item_d2i(ptr::null_mut(), &mut p, len, PKCS12_SAFEBAGS_it()) as *mut sys::OPENSSL_STACK
}

unsafe fn free_bag_stack(st: *mut sys::OPENSSL_STACK) {
    for i in 0..sys::OPENSSL_sk_num(st) {
        PKCS12_SAFEBAG_free(sys::OPENSSL_sk_value(st, i) as *mut PKCS12_SAFEBAG);
    }
    sys::OPENSSL_sk_free(st);
}

unsafe fn free_p7_stack(st: *mut sys::OPENSSL_STACK) {
    for i in 0..sys::OPENSSL_sk_num(st) {
        PKCS7_free(sys::OPENSSL_sk_value(st, i) as *mut PKCS7);
    }
    sys::OPENSSL_sk_free(st);
}

unsafe fn collect_bags(
    bags: *const sys::OPENSSL_STACK,
    pass: &CStr,
    passlen: c_int,
    out: &mut Vec<P12Bag>,
    depth: usize,
) -> Result<(), ErrorStack> {
    if depth > 8 {
        return Err(ErrorStack::get());
    }
    for i in 0..sys::OPENSSL_sk_num(bags) {
        let bag = sys::OPENSSL_sk_value(bags, i) as *mut PKCS12_SAFEBAG;
        let name = friendly_name(bag);
        match PKCS12_SAFEBAG_get_nid(bag) {
            sys::NID_keyBag => {
                let p8 = PKCS12_SAFEBAG_get0_p8inf(bag);
                if p8.is_null() {
                    return Err(ErrorStack::get());
                }
                let pkey = sys::EVP_PKCS82PKEY(p8);
                if pkey.is_null() {
                    return Err(ErrorStack::get());
                }
                out.push(P12Bag::Key(name, PKey::from_ptr(pkey)));
            }
            sys::NID_pkcs8ShroudedKeyBag => {
                let p8 = PKCS12_decrypt_skey(bag, pass.as_ptr(), passlen);
                if p8.is_null() {
                    return Err(ErrorStack::get());
                }
                let pkey = sys::EVP_PKCS82PKEY(p8);
                sys::PKCS8_PRIV_KEY_INFO_free(p8);
                if pkey.is_null() {
                    return Err(ErrorStack::get());
                }
                out.push(P12Bag::Key(name, PKey::from_ptr(pkey)));
            }
            sys::NID_certBag => {
                let x = PKCS12_SAFEBAG_get1_cert(bag);
                if !x.is_null() {
                    out.push(P12Bag::Cert(name, X509::from_ptr(x)));
                }
            }
            sys::NID_safeContentsBag => {
                let nested = PKCS12_SAFEBAG_get0_safes(bag);
                if !nested.is_null() {
                    collect_bags(nested, pass, passlen, out, depth + 1)?;
                }
            }
            _ => {} // CRL and secret bags carry nothing AS2 uses.
        }
    }
    Ok(())
}

unsafe fn friendly_name(bag: *mut PKCS12_SAFEBAG) -> Option<String> {
    let p = PKCS12_get_friendlyname(bag);
    if p.is_null() {
        return None;
    }
    let s = CStr::from_ptr(p).to_string_lossy().into_owned();
    sys::CRYPTO_free(
        p as *mut c_void,
        concat!(file!(), "\0").as_ptr() as *const c_char,
        line!() as c_int,
    );
    Some(s)
}
