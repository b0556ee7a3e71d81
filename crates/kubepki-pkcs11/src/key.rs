//! A private key in a token, as a [`CaSigningKey`].

use std::fmt;
use std::sync::Arc;

use cryptoki::error::Error as CkError;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use kubepki_ca::{CaSigningKey, SigningError};
use kubepki_keys::{KeyAlgorithm, SignatureAlgorithm};

use crate::der;
use crate::error::describe;
use crate::session::Pkcs11Session;
use crate::uri::ObjectType;
use crate::{Error, Pkcs11Uri};

/// A private key held in a PKCS#11 token: signs through the token, never leaves it.
///
/// Implements [`CaSigningKey`], so a [`kubepki_ca::CertificateAuthority`] signs with it like
/// with a software key ([`CaSigningKey::private_key`] is `None`: there is nothing to write
/// out). `Debug` shows the URI without the PIN.
pub struct Pkcs11Key {
    session: Arc<Pkcs11Session>,
    handle: ObjectHandle,
    uri: String,
    spki: Vec<u8>,
    alg: KeyAlgorithm,
    sig: SignatureAlgorithm,
}

impl fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Key")
            .field("uri", &self.uri)
            .field("algorithm", &self.alg)
            .finish_non_exhaustive()
    }
}

/// The security attributes of a private key object, read back from the token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyAttributes {
    /// `CKA_TOKEN`: stored in the token (not a session object).
    pub token: bool,
    /// `CKA_PRIVATE`: only visible after login.
    pub private: bool,
    /// `CKA_SENSITIVE`: the key value cannot be read.
    pub sensitive: bool,
    /// `CKA_EXTRACTABLE`: the key can be wrapped out.
    pub extractable: bool,
    /// `CKA_ALWAYS_SENSITIVE`.
    pub always_sensitive: bool,
    /// `CKA_NEVER_EXTRACTABLE`.
    pub never_extractable: bool,
    /// `CKA_SIGN`.
    pub sign: bool,
    /// `CKA_DECRYPT`.
    pub decrypt: bool,
    /// `CKA_UNWRAP`.
    pub unwrap: bool,
    /// `CKA_DERIVE`.
    pub derive: bool,
    /// `CKA_LABEL`.
    pub label: Vec<u8>,
    /// `CKA_ID`.
    pub id: Vec<u8>,
}

impl Pkcs11Key {
    /// Finds the one private key `uri` names in the session's token (by `object` and `id`) and
    /// reads its public key. No key, or several, is an error naming the URI.
    pub fn open(session: &Arc<Pkcs11Session>, uri: &Pkcs11Uri) -> Result<Self, Error> {
        let name = uri.to_string();
        check_type(uri, &name)?;
        let s = session.session();
        let mut template = vec![Attribute::Class(ObjectClass::PRIVATE_KEY)];
        template.extend(selectors(uri));
        let found = s
            .find_objects(&template)
            .map_err(token_err(&name, "searching for the key"))?;
        let handle = match found.as_slice() {
            [one] => *one,
            [] => return Err(Error::NoKey { uri: name }),
            many => {
                return Err(Error::SeveralKeys {
                    uri: name,
                    count: many.len(),
                });
            }
        };
        let (spki, alg, sig) = public_key(&s, handle, &name)?;
        drop(s);
        Ok(Pkcs11Key {
            session: Arc::clone(session),
            handle,
            uri: name,
            spki,
            alg,
            sig,
        })
    }

    /// Generates a key pair of `alg` inside the token: the private key `CKA_TOKEN`,
    /// `CKA_PRIVATE`, `CKA_SENSITIVE`, not `CKA_EXTRACTABLE`, `CKA_SIGN` and no other use; both
    /// halves labelled with the URI's `object` and `id`. Refused when the URI has no `object`,
    /// when a key with that `object`/`id` exists, and when the token lacks the algorithm.
    pub fn generate(
        session: &Arc<Pkcs11Session>,
        uri: &Pkcs11Uri,
        alg: KeyAlgorithm,
    ) -> Result<Self, Error> {
        let name = uri.to_string();
        check_type(uri, &name)?;
        let Some(label) = uri.object() else {
            return Err(Error::NoObject { uri: name });
        };
        let (mechanism, sign_mechanism, what) = match alg {
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => (
                Mechanism::RsaPkcsKeyPairGen,
                MechanismType::SHA256_RSA_PKCS,
                "RSA key generation with SHA256-RSA-PKCS signing",
            ),
            KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdsaP384 => (
                Mechanism::EccKeyPairGen,
                MechanismType::ECDSA,
                "EC key generation with ECDSA signing",
            ),
            KeyAlgorithm::Ed25519 => (
                Mechanism::EccEdwardsKeyPairGen,
                MechanismType::EDDSA,
                "Ed25519 (CKM_EC_EDWARDS_KEY_PAIR_GEN and CKM_EDDSA)",
            ),
            other => {
                return Err(Error::Unsupported {
                    uri: name,
                    what: other.to_string(),
                });
            }
        };
        if !session.supports(mechanism.mechanism_type()) || !session.supports(sign_mechanism) {
            return Err(Error::Unsupported {
                uri: name,
                what: what.into(),
            });
        }
        let s = session.session();
        // Never two keys answering to one URI: refuse when the label or id is taken.
        let mut taken = vec![Attribute::Class(ObjectClass::PRIVATE_KEY)];
        taken.extend(selectors(uri));
        let exists = !s
            .find_objects(&taken)
            .map_err(token_err(&name, "searching for the key"))?
            .is_empty();
        let same_label = !s
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Label(label.as_bytes().to_vec()),
            ])
            .map_err(token_err(&name, "searching for the key"))?
            .is_empty();
        if exists || same_label {
            return Err(Error::KeyExists { uri: name });
        }
        let mut public = vec![
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::Encrypt(false),
            Attribute::Wrap(false),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        let mut private = vec![
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Decrypt(false),
            Attribute::Unwrap(false),
            Attribute::Derive(false),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        if let Some(id) = uri.id() {
            public.push(Attribute::Id(id.to_vec()));
            private.push(Attribute::Id(id.to_vec()));
        }
        match alg {
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
                let bits = alg.rsa_bits().unwrap_or(2048) as u64;
                public.push(Attribute::ModulusBits(bits.into()));
                public.push(Attribute::PublicExponent(vec![0x01, 0x00, 0x01]));
            }
            _ => {
                let curve = match alg {
                    KeyAlgorithm::EcdsaP256 => der::Curve::P256,
                    KeyAlgorithm::EcdsaP384 => der::Curve::P384,
                    _ => der::Curve::Ed25519,
                };
                let params = curve.ec_params().map_err(|e| Error::Unsupported {
                    uri: name.clone(),
                    what: format!("{alg} ({e})"),
                })?;
                public.push(Attribute::EcParams(params));
            }
        }
        let (_, handle) =
            s.generate_key_pair(&mechanism, &public, &private)
                .map_err(|e| match e {
                    CkError::Pkcs11(cryptoki::error::RvError::MechanismInvalid, _)
                    | CkError::Pkcs11(cryptoki::error::RvError::CurveNotSupported, _)
                    | CkError::Pkcs11(cryptoki::error::RvError::DomainParamsInvalid, _) => {
                        Error::Unsupported {
                            uri: name.clone(),
                            what: format!("{alg} ({})", describe(&e)),
                        }
                    }
                    e => token_err(&name, "generating the key pair")(e),
                })?;
        let (spki, got, sig) = public_key(&s, handle, &name)?;
        drop(s);
        if got != alg {
            return Err(Error::UnsupportedKey {
                uri: name,
                reason: format!("asked for {alg}, the token made {got}"),
            });
        }
        Ok(Pkcs11Key {
            session: Arc::clone(session),
            handle,
            uri: name,
            spki,
            alg,
            sig,
        })
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.alg
    }

    /// The URI the key was opened with, without the PIN.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Reads the private key object's security attributes back from the token.
    pub fn attributes(&self) -> Result<KeyAttributes, Error> {
        let s = self.session.session();
        let attrs = s
            .get_attributes(
                self.handle,
                &[
                    AttributeType::Token,
                    AttributeType::Private,
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                    AttributeType::AlwaysSensitive,
                    AttributeType::NeverExtractable,
                    AttributeType::Sign,
                    AttributeType::Decrypt,
                    AttributeType::Unwrap,
                    AttributeType::Derive,
                    AttributeType::Label,
                    AttributeType::Id,
                ],
            )
            .map_err(token_err(&self.uri, "reading the key's attributes"))?;
        let mut out = KeyAttributes {
            token: false,
            private: false,
            sensitive: false,
            extractable: true,
            always_sensitive: false,
            never_extractable: false,
            sign: false,
            decrypt: false,
            unwrap: false,
            derive: false,
            label: Vec::new(),
            id: Vec::new(),
        };
        for a in attrs {
            match a {
                Attribute::Token(v) => out.token = v,
                Attribute::Private(v) => out.private = v,
                Attribute::Sensitive(v) => out.sensitive = v,
                Attribute::Extractable(v) => out.extractable = v,
                Attribute::AlwaysSensitive(v) => out.always_sensitive = v,
                Attribute::NeverExtractable(v) => out.never_extractable = v,
                Attribute::Sign(v) => out.sign = v,
                Attribute::Decrypt(v) => out.decrypt = v,
                Attribute::Unwrap(v) => out.unwrap = v,
                Attribute::Derive(v) => out.derive = v,
                Attribute::Label(v) => out.label = v,
                Attribute::Id(v) => out.id = v,
                _ => {}
            }
        }
        Ok(out)
    }

    fn sign_in_token(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let s = self.session.session();
        let err = token_err(&self.uri, "signing");
        match self.alg {
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => s
                .sign(&Mechanism::Sha256RsaPkcs, self.handle, message)
                .map_err(err),
            KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdsaP384 => {
                let (digest_alg, half) = if self.alg == KeyAlgorithm::EcdsaP256 {
                    (&aws_lc_rs::digest::SHA256, 32)
                } else {
                    (&aws_lc_rs::digest::SHA384, 48)
                };
                let digest = aws_lc_rs::digest::digest(digest_alg, message);
                let raw = s
                    .sign(&Mechanism::Ecdsa, self.handle, digest.as_ref())
                    .map_err(err)?;
                if raw.len() != 2 * half {
                    return Err(Error::Token {
                        uri: self.uri.clone(),
                        operation: "signing",
                        reason: format!(
                            "the token returned a {}-byte ECDSA signature, expected {}",
                            raw.len(),
                            2 * half
                        ),
                    });
                }
                let (r, sig_s) = raw.split_at(half);
                der::ecdsa_sig_value(r, sig_s).map_err(|reason| Error::Token {
                    uri: self.uri.clone(),
                    operation: "signing",
                    reason: format!("the token's ECDSA signature: {reason}"),
                })
            }
            KeyAlgorithm::Ed25519 => s
                .sign(
                    &Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
                    self.handle,
                    message,
                )
                .map_err(err),
            other => Err(Error::UnsupportedKey {
                uri: self.uri.clone(),
                reason: other.to_string(),
            }),
        }
    }
}

impl CaSigningKey for Pkcs11Key {
    fn public_key_der(&self) -> &[u8] {
        &self.spki
    }

    fn signature_algorithm(&self) -> SignatureAlgorithm {
        self.sig
    }

    /// Signs in the token, then verifies the signature with the public key in software: a
    /// public key object that is not the private key's (same id and label, another key pair)
    /// or a faulty token must not give certificates that nobody can verify.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SigningError> {
        let backend = |e: Error| SigningError::Backend {
            backend: "pkcs11".into(),
            source: Box::new(e),
        };
        let signature = self.sign_in_token(message).map_err(backend)?;
        kubepki_keys::verify_signature(&self.spki, &self.sig.oid(), message, &signature).map_err(
            |e| {
                backend(Error::Token {
                    uri: self.uri.clone(),
                    operation: "checking the token's signature",
                    reason: format!(
                        "it does not verify with the key's public key ({e}); is the public key object with this id and label the private key's?"
                    ),
                })
            },
        )?;
        Ok(signature)
    }
}

fn check_type(uri: &Pkcs11Uri, name: &str) -> Result<(), Error> {
    match uri.object_type() {
        None | Some(ObjectType::Private) => Ok(()),
        Some(_) => Err(Error::NotAPrivateKey {
            uri: name.to_owned(),
        }),
    }
}

fn selectors(uri: &Pkcs11Uri) -> Vec<Attribute> {
    let mut t = Vec::new();
    if let Some(label) = uri.object() {
        t.push(Attribute::Label(label.as_bytes().to_vec()));
    }
    if let Some(id) = uri.id() {
        t.push(Attribute::Id(id.to_vec()));
    }
    t
}

fn token_err<'a>(uri: &'a str, operation: &'static str) -> impl Fn(CkError) -> Error + 'a {
    move |e| Error::Token {
        uri: uri.to_owned(),
        operation,
        reason: describe(&e),
    }
}

/// The public key of the private key `handle`, as a DER `SubjectPublicKeyInfo`, and its
/// algorithm. RSA: the private key object carries the modulus and exponent. EC and Ed25519:
/// the public key object with the same `CKA_ID` and `CKA_LABEL` carries the point.
fn public_key(
    s: &Session,
    handle: ObjectHandle,
    uri: &str,
) -> Result<(Vec<u8>, KeyAlgorithm, SignatureAlgorithm), Error> {
    let unsupported = |reason: String| Error::UnsupportedKey {
        uri: uri.to_owned(),
        reason,
    };
    let attrs = s
        .get_attributes(
            handle,
            &[
                AttributeType::KeyType,
                AttributeType::Id,
                AttributeType::Label,
            ],
        )
        .map_err(token_err(uri, "reading the key's attributes"))?;
    let mut key_type = None;
    let mut id = Vec::new();
    let mut label = Vec::new();
    for a in attrs {
        match a {
            Attribute::KeyType(t) => key_type = Some(t),
            Attribute::Id(v) => id = v,
            Attribute::Label(v) => label = v,
            _ => {}
        }
    }
    let spki = match key_type {
        Some(KeyType::RSA) => {
            let attrs = s
                .get_attributes(
                    handle,
                    &[AttributeType::Modulus, AttributeType::PublicExponent],
                )
                .map_err(token_err(uri, "reading the RSA public key"))?;
            let mut n = None;
            let mut e = None;
            for a in attrs {
                match a {
                    Attribute::Modulus(v) => n = Some(v),
                    Attribute::PublicExponent(v) => e = Some(v),
                    _ => {}
                }
            }
            match (n, e) {
                (Some(n), Some(e)) => der::rsa_spki(&n, &e).map_err(unsupported)?,
                _ => return Err(unsupported("the RSA key has no readable modulus".into())),
            }
        }
        Some(t @ (KeyType::EC | KeyType::EC_EDWARDS)) => {
            let mut template = vec![
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::KeyType(t),
                Attribute::Id(id),
            ];
            if !label.is_empty() {
                template.push(Attribute::Label(label));
            }
            let public = s
                .find_objects(&template)
                .map_err(token_err(uri, "searching for the public key"))?;
            let [public] = public.as_slice() else {
                return Err(unsupported(format!(
                    "{} public key objects with the private key's id and label, expected 1",
                    public.len()
                )));
            };
            let attrs = s
                .get_attributes(*public, &[AttributeType::EcParams, AttributeType::EcPoint])
                .map_err(token_err(uri, "reading the EC public key"))?;
            let mut params = None;
            let mut point = None;
            for a in attrs {
                match a {
                    Attribute::EcParams(v) => params = Some(v),
                    Attribute::EcPoint(v) => point = Some(v),
                    _ => {}
                }
            }
            let (Some(params), Some(point)) = (params, point) else {
                return Err(unsupported(
                    "the EC public key has no readable point".into(),
                ));
            };
            der::ec_spki(&params, &point).map_err(unsupported)?
        }
        Some(other) => return Err(unsupported(format!("key type {other}"))),
        None => return Err(unsupported("no key type".into())),
    };
    let alg = kubepki_keys::public_key_algorithm(&spki).map_err(|e| unsupported(e.to_string()))?;
    // What kubepki's software keys sign with (and Go's crypto/x509, so kubeadm).
    let sig = match alg {
        KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
            SignatureAlgorithm::RsaPkcs1Sha256
        }
        KeyAlgorithm::EcdsaP256 => SignatureAlgorithm::EcdsaSha256,
        KeyAlgorithm::EcdsaP384 => SignatureAlgorithm::EcdsaSha384,
        KeyAlgorithm::Ed25519 => SignatureAlgorithm::Ed25519,
        other => return Err(unsupported(other.to_string())),
    };
    Ok((spki, alg, sig))
}
