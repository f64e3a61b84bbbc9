//! SFTP access for the gateway (seed sections 1.2 to 1.4): user names, key pairs for users who
//! have none (OpenSSH or PuTTY `.ppk`, optionally passphrase-protected), checks of keys users
//! bring, and the Transfer Family session policy that keeps users out of `AS2/keystore` and
//! `AS2/tmp`; and the provisioning rules (enable, rotate, describe, disable) over a Transfer
//! Family port that an adapter implements.

mod error;
pub mod keys;
pub mod policy;
mod ppk;
pub mod provision;
pub mod username;

pub use error::{Result, SftpError};
