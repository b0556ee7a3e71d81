//! Why a PKCS#11 key could not be found, made or used.

use std::path::PathBuf;

use thiserror::Error;

/// Everything that can go wrong with a PKCS#11 key.
///
/// Every variant that concerns a key names its URI as [`crate::Pkcs11Uri`]'s `Display` gives
/// it: without the PIN. No message contains a PIN.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The text is not a `pkcs11:` URI kubepki can use.
    #[error("invalid PKCS#11 URI: {reason}")]
    InvalidUri {
        /// What is wrong (never the PIN).
        reason: String,
    },
    /// The URI names something that is not a private key (`type=cert`, ...).
    #[error("{uri}: a CA key URI must name a private key (type=private or no type)")]
    NotAPrivateKey {
        /// The URI, without the PIN.
        uri: String,
    },
    /// Neither the URI's `module-path` nor the options name a PKCS#11 library.
    #[error("{uri}: no PKCS#11 module: add module-path=... to the URI or give --pkcs11-module")]
    NoModule {
        /// The URI, without the PIN.
        uri: String,
    },
    /// The PKCS#11 library could not be loaded or initialized.
    #[error("{uri}: cannot load PKCS#11 module {}: {reason}", path.display())]
    Module {
        /// The URI, without the PIN.
        uri: String,
        /// The library.
        path: PathBuf,
        /// What the loader or the module reported.
        reason: String,
    },
    /// No token matches the URI's token attributes.
    #[error("{uri}: no token matches (tokens present: {present})")]
    UnknownToken {
        /// The URI, without the PIN.
        uri: String,
        /// The labels of the tokens the module offers.
        present: String,
    },
    /// Several tokens match the URI.
    #[error("{uri}: {count} tokens match; name one with token=, serial= or slot-id=")]
    SeveralTokens {
        /// The URI, without the PIN.
        uri: String,
        /// How many matched.
        count: usize,
    },
    /// The token needs a login and no PIN was given.
    #[error("{uri}: no PIN: add pin-source=FILE to the URI or set KUBEPKI_PKCS11_PIN")]
    NoPin {
        /// The URI, without the PIN.
        uri: String,
    },
    /// The `pin-source` file could not be read.
    #[error("{uri}: cannot read the PIN from {}: {reason}", path.display())]
    PinSource {
        /// The URI, without the PIN.
        uri: String,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The token refused the login (wrong PIN, locked PIN, ...).
    #[error("{uri}: login to the token failed: {reason}")]
    Login {
        /// The URI, without the PIN.
        uri: String,
        /// The PKCS#11 return value.
        reason: String,
    },
    /// No private key matches the URI.
    #[error("{uri}: no private key in the token matches")]
    NoKey {
        /// The URI, without the PIN.
        uri: String,
    },
    /// Several private keys match the URI.
    #[error("{uri}: {count} private keys in the token match; add object= or id= to name one")]
    SeveralKeys {
        /// The URI, without the PIN.
        uri: String,
        /// How many matched.
        count: usize,
    },
    /// Key generation needs `object=` or `id=` so that the key can be found again.
    #[error("{uri}: generating a key needs object= (its label) in the URI")]
    NoObject {
        /// The URI, without the PIN.
        uri: String,
    },
    /// A key with the URI's `object`/`id` already exists; kubepki never replaces token keys.
    #[error(
        "{uri}: the token already holds a key with this object/id; kubepki does not replace it"
    )]
    KeyExists {
        /// The URI, without the PIN.
        uri: String,
    },
    /// The token lacks a mechanism kubepki needs (Ed25519 on many HSMs).
    #[error("{uri}: the token does not support {what}")]
    Unsupported {
        /// The URI, without the PIN.
        uri: String,
        /// What is missing.
        what: String,
    },
    /// The token's key is of a kind kubepki cannot sign certificates with.
    #[error("{uri}: unsupported key in the token: {reason}")]
    UnsupportedKey {
        /// The URI, without the PIN.
        uri: String,
        /// Why.
        reason: String,
    },
    /// A PKCS#11 call failed.
    #[error("{uri}: {operation}: {reason}")]
    Token {
        /// The URI, without the PIN.
        uri: String,
        /// What kubepki was doing.
        operation: &'static str,
        /// The PKCS#11 return value.
        reason: String,
    },
}

/// A one-line description of a cryptoki error: the function and the `CKR_` name.
pub(crate) fn describe(e: &cryptoki::error::Error) -> String {
    match e {
        cryptoki::error::Error::Pkcs11(rv, function) => format!("{function:?} returned {rv:?}"),
        cryptoki::error::Error::LibraryLoading(e) => e.to_string(),
        other => other.to_string(),
    }
}
