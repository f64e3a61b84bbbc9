//! Key and certificate options shared by commands. Passwords come from environment variables,
//! never from the command line (which other users of the machine can read).

use std::path::{Path, PathBuf};

use as2::keys::{load_certificates, Identity, Keystore};
use openssl::x509::X509;

/// Where a secret comes from.
pub fn secret_from_env(var: &Option<String>) -> Result<Option<String>, String> {
    match var {
        None => Ok(None),
        Some(name) => std::env::var(name)
            .map(Some)
            .map_err(|_| format!("environment variable {name} is not set")),
    }
}

pub fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Our identity from `--key`/`--cert` files or a `--keystore` alias.
pub fn identity(
    key: &Option<PathBuf>,
    cert: &Option<PathBuf>,
    key_pass_env: &Option<String>,
    keystore: &Option<PathBuf>,
    alias: &Option<String>,
    store_pass_env: &Option<String>,
) -> Result<Vec<Identity>, String> {
    let mut out = Vec::new();
    match (key, cert) {
        (Some(k), Some(c)) => {
            let pass = secret_from_env(key_pass_env)?;
            out.push(
                Identity::from_pem_or_der(&read(c)?, &read(k)?, pass.as_deref())
                    .map_err(|e| e.to_string())?,
            );
        }
        // A PEM file holding the key and its certificate (and perhaps the chain).
        (Some(k), None) => {
            let pass = secret_from_env(key_pass_env)?;
            let data = read(k)?;
            if load_certificates(&data).is_err() {
                return Err(format!(
                    "{} holds no certificate: give the key's certificate with --cert",
                    k.display()
                ));
            }
            out.push(
                Identity::from_pem_or_der(&data, &data, pass.as_deref())
                    .map_err(|e| format!("{}: {e}", k.display()))?,
            );
        }
        (None, None) => {}
        (None, Some(_)) => return Err("--cert goes with --key (our private key)".into()),
    }
    if let Some(path) = keystore {
        let pass = secret_from_env(store_pass_env)?.unwrap_or_default();
        let ks = Keystore::load(&read(path)?, &pass, None).map_err(|e| e.to_string())?;
        match alias {
            Some(a) => out.push(ks.identity(a).map_err(|e| e.to_string())?),
            None => out.extend(ks.entries().iter().filter_map(|e| e.identity())),
        }
    }
    Ok(out)
}

/// Certificates from PEM/DER files.
pub fn certificates(paths: &[PathBuf]) -> Result<Vec<X509>, String> {
    let mut out = Vec::new();
    for p in paths {
        out.extend(load_certificates(&read(p)?).map_err(|e| format!("{}: {e}", p.display()))?);
    }
    Ok(out)
}
