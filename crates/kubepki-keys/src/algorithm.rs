use std::fmt;
use std::str::FromStr;

use crate::Error;

/// The key algorithms kubepki generates, named as kubeadm names them
/// (`ClusterConfiguration.encryptionAlgorithm`), plus Ed25519.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum KeyAlgorithm {
    /// RSA with a 2048-bit modulus, e = 65537 (kubeadm's default).
    Rsa2048,
    /// RSA with a 3072-bit modulus.
    Rsa3072,
    /// RSA with a 4096-bit modulus.
    Rsa4096,
    /// ECDSA on NIST P-256, signing with SHA-256.
    EcdsaP256,
    /// ECDSA on NIST P-384, signing with SHA-384.
    EcdsaP384,
    /// Ed25519 (not a kubeadm option; Go and OpenSSL accept it).
    Ed25519,
}

impl KeyAlgorithm {
    /// Every algorithm, in the order of [`KeyAlgorithm::NAMES`].
    pub const ALL: [KeyAlgorithm; 6] = [
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::Rsa3072,
        KeyAlgorithm::Rsa4096,
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::EcdsaP384,
        KeyAlgorithm::Ed25519,
    ];

    /// The names accepted by [`FromStr`] (case-insensitive).
    pub const NAMES: [&'static str; 6] = [
        "RSA-2048",
        "RSA-3072",
        "RSA-4096",
        "ECDSA-P256",
        "ECDSA-P384",
        "Ed25519",
    ];

    /// kubeadm's name for the algorithm, e.g. `RSA-3072`.
    pub fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::Rsa2048 => "RSA-2048",
            KeyAlgorithm::Rsa3072 => "RSA-3072",
            KeyAlgorithm::Rsa4096 => "RSA-4096",
            KeyAlgorithm::EcdsaP256 => "ECDSA-P256",
            KeyAlgorithm::EcdsaP384 => "ECDSA-P384",
            KeyAlgorithm::Ed25519 => "Ed25519",
        }
    }

    /// Whether this is one of the RSA sizes.
    pub fn is_rsa(self) -> bool {
        matches!(
            self,
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096
        )
    }

    /// The RSA modulus size in bits for the RSA variants.
    pub fn rsa_bits(self) -> Option<usize> {
        match self {
            KeyAlgorithm::Rsa2048 => Some(2048),
            KeyAlgorithm::Rsa3072 => Some(3072),
            KeyAlgorithm::Rsa4096 => Some(4096),
            _ => None,
        }
    }

    pub(crate) fn from_rsa_bits(bits: usize) -> Result<Self, Error> {
        match bits {
            0..2048 => Err(Error::RsaTooSmall { bits }),
            2048 => Ok(KeyAlgorithm::Rsa2048),
            3072 => Ok(KeyAlgorithm::Rsa3072),
            4096 => Ok(KeyAlgorithm::Rsa4096),
            _ => Err(Error::UnsupportedRsaSize { bits }),
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KeyAlgorithm {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let t = s.trim();
        KeyAlgorithm::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(t))
            .ok_or_else(|| Error::UnknownAlgorithm {
                given: s.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kubeadm_names_case_insensitively() {
        for (alg, name) in KeyAlgorithm::ALL.iter().zip(KeyAlgorithm::NAMES) {
            assert_eq!(name.parse::<KeyAlgorithm>().ok(), Some(*alg));
            assert_eq!(name.to_lowercase().parse::<KeyAlgorithm>().ok(), Some(*alg));
            assert_eq!(alg.to_string(), name);
        }
    }

    #[test]
    fn unknown_name_lists_the_valid_ones() {
        let err = "RSA-1024"
            .parse::<KeyAlgorithm>()
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "unknown key algorithm \"RSA-1024\" (valid: RSA-2048, RSA-3072, RSA-4096, ECDSA-P256, ECDSA-P384, Ed25519)"
            )
        );
    }
}
