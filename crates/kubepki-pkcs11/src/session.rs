//! Modules, tokens and sessions: each module is loaded and initialized once per process, each
//! token gets one logged-in session per [`Pkcs11Provider`], shared by all its keys.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::MechanismType;
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use kubepki_keys::KeyAlgorithm;

use crate::error::describe;
use crate::key::Pkcs11Key;
use crate::pin::{Pin, Pkcs11Options};
use crate::{Error, Pkcs11Uri};

/// The loaded modules of this process: PKCS#11 allows one `C_Initialize` per process and module.
fn modules() -> &'static Mutex<HashMap<PathBuf, Pkcs11>> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    MODULES.get_or_init(|| Mutex::new(HashMap::new()))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves nothing half-done that matters here.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn load_module(path: &Path, uri: &str) -> Result<Pkcs11, Error> {
    // A relative name would be looked up by the dynamic loader (LD_LIBRARY_PATH, the working
    // folder): the code that runs with the PIN must be the file the operator named.
    if !path.is_absolute() {
        return Err(Error::Module {
            uri: uri.to_owned(),
            path: path.to_path_buf(),
            reason: "the module path must be absolute".into(),
        });
    }
    let mut loaded = lock(modules());
    if let Some(ctx) = loaded.get(path) {
        return Ok(ctx.clone());
    }
    let err = |e: &CkError| Error::Module {
        uri: uri.to_owned(),
        path: path.to_path_buf(),
        reason: describe(e),
    };
    let ctx = Pkcs11::new(path).map_err(|e| err(&e))?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(err(&e)),
    }
    loaded.insert(path.to_path_buf(), ctx.clone());
    Ok(ctx)
}

/// A logged-in session with one token, shared (through `Arc`) by every key of that token a
/// command uses. Signatures are serialized on it (a PKCS#11 session runs one operation at a
/// time).
pub struct Pkcs11Session {
    session: Mutex<Session>,
    module: PathBuf,
    slot: Slot,
    token_label: String,
    mechanisms: Vec<MechanismType>,
}

impl fmt::Debug for Pkcs11Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Session")
            .field("module", &self.module)
            .field("slot", &self.slot.id())
            .field("token", &self.token_label)
            .finish_non_exhaustive()
    }
}

impl Pkcs11Session {
    /// Loads the module (the URI's `module-path`, else `options.module`), finds the one token
    /// the URI names, opens a read-write session (read-only when the token is write-protected)
    /// and logs in as the user with the PIN (the URI's `pin-value`, else its `pin-source`, else
    /// `options.pin`).
    pub fn open(uri: &Pkcs11Uri, options: &Pkcs11Options) -> Result<Arc<Self>, Error> {
        let name = uri.to_string();
        let module = uri
            .module_path()
            .or(options.module.as_deref())
            .ok_or_else(|| Error::NoModule { uri: name.clone() })?;
        let ctx = load_module(module, &name)?;
        let token_err = |operation: &'static str| {
            let name = name.clone();
            move |e: CkError| Error::Token {
                uri: name,
                operation,
                reason: describe(&e),
            }
        };
        let slots = ctx
            .get_slots_with_token()
            .map_err(token_err("listing tokens"))?;
        let mut matching = Vec::new();
        let mut present = Vec::new();
        for slot in slots {
            let info = ctx
                .get_token_info(slot)
                .map_err(token_err("reading token information"))?;
            // A slot with a token that is not initialized (SoftHSM2 always offers a free one)
            // holds no keys.
            if !info.token_initialized() {
                continue;
            }
            present.push(info.label().to_owned());
            let want = |field: Option<&str>, have: &str| field.is_none_or(|w| w == have);
            if want(uri.token(), info.label())
                && want(uri.manufacturer(), info.manufacturer_id())
                && want(uri.model(), info.model())
                && want(uri.serial(), info.serial_number())
                && uri.slot_id().is_none_or(|id| id == slot.id())
            {
                matching.push((slot, info));
            }
        }
        let (slot, info) = match matching.len() {
            1 => matching.remove(0),
            0 => {
                return Err(Error::UnknownToken {
                    uri: name,
                    present: if present.is_empty() {
                        "none".into()
                    } else {
                        present.join(", ")
                    },
                });
            }
            count => return Err(Error::SeveralTokens { uri: name, count }),
        };
        let session = match ctx.open_rw_session(slot) {
            Err(CkError::Pkcs11(RvError::TokenWriteProtected, _)) => ctx.open_ro_session(slot),
            other => other,
        }
        .map_err(token_err("opening a session"))?;
        if info.login_required() {
            let pin = match (uri.pin_value(), uri.pin_source()) {
                (Some(p), _) => Some(p.clone()),
                (None, Some(path)) => Some(read_pin_source(path, &name)?),
                (None, None) => options.pin.clone(),
            };
            let pin = match pin {
                Some(p) => Some(AuthPin::new(p.expose().into())),
                None if info.protected_authentication_path() => None,
                None => return Err(Error::NoPin { uri: name }),
            };
            match session.login(UserType::User, pin.as_ref()) {
                Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
                Err(e) => {
                    return Err(Error::Login {
                        uri: name,
                        reason: describe(&e),
                    });
                }
            }
        }
        let mechanisms = ctx
            .get_mechanism_list(slot)
            .map_err(token_err("listing mechanisms"))?;
        Ok(Arc::new(Pkcs11Session {
            session: Mutex::new(session),
            module: module.to_path_buf(),
            slot,
            token_label: info.label().to_owned(),
            mechanisms,
        }))
    }

    /// The token's label.
    pub fn token_label(&self) -> &str {
        &self.token_label
    }

    /// The module this session runs on.
    pub fn module(&self) -> &Path {
        &self.module
    }

    pub(crate) fn session(&self) -> MutexGuard<'_, Session> {
        lock(&self.session)
    }

    pub(crate) fn supports(&self, m: MechanismType) -> bool {
        self.mechanisms.contains(&m)
    }
}

fn read_pin_source(path: &Path, uri: &str) -> Result<Pin, Error> {
    let err = |reason: String| Error::PinSource {
        uri: uri.to_owned(),
        path: path.to_path_buf(),
        reason,
    };
    const MAX: u64 = 4096;
    let too_big = || err(format!("not a regular file of at most {MAX} bytes"));
    // Checked by path first (opening a FIFO would block), then on the opened file, and read
    // with a bound: a file swapped or grown in between is still refused.
    let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
    if !meta.is_file() || meta.len() > MAX {
        return Err(too_big());
    }
    let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    let meta = file.metadata().map_err(|e| err(e.to_string()))?;
    if !meta.is_file() || meta.len() > MAX {
        return Err(too_big());
    }
    let mut bytes = zeroize::Zeroizing::new(Vec::new());
    std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX + 1), &mut bytes)
        .map_err(|e| err(e.to_string()))?;
    if bytes.len() as u64 > MAX {
        return Err(too_big());
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| err("not UTF-8".into()))?;
    // One line; the line ending is not part of the PIN.
    let line = text.strip_suffix('\n').unwrap_or(text);
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.contains('\n') {
        return Err(err("more than one line".into()));
    }
    Ok(Pin::new(line.to_owned()))
}

/// Opens sessions and keys for one command: one session per module and token, shared by every
/// key of that token, so a command that signs many certificates logs in once.
///
/// ```no_run
/// use std::sync::Arc;
/// use kubepki_ca::{CaSigningKey, CaSpec, CertificateAuthority};
/// use kubepki_keys::KeyAlgorithm;
/// use kubepki_pkcs11::{Pkcs11Options, Pkcs11Provider, Pkcs11Uri};
/// use time::{Duration, OffsetDateTime};
///
/// let uri: Pkcs11Uri = "pkcs11:token=cluster;object=kubernetes-ca;id=%01\
///     ?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=/etc/kubernetes/pki/hsm.pin"
///     .parse()?;
/// let provider = Pkcs11Provider::new(Pkcs11Options::from_env());
/// // Generated inside the token: sensitive, not extractable, sign only.
/// let key: Arc<dyn CaSigningKey> = provider.generate(&uri, KeyAlgorithm::EcdsaP256)?;
/// let ca = CertificateAuthority::create_root_with_signing_key(
///     &CaSpec::kubeadm("kubernetes", OffsetDateTime::now_utc(), Duration::days(3650)),
///     key,
/// )?;
/// // Later, in another process: the certificate from its file, the key from the token.
/// let key = provider.key(&uri)?;
/// let ca = CertificateAuthority::from_certificate(ca.certificate().clone())?.with_signing_key(key)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Pkcs11Provider {
    options: Pkcs11Options,
    sessions: Mutex<Vec<(SessionKey, Arc<Pkcs11Session>)>>,
}

type SessionKey = (PathBuf, Pkcs11Uri);

impl Pkcs11Provider {
    /// A provider with the command's options (module, PIN).
    pub fn new(options: Pkcs11Options) -> Self {
        Pkcs11Provider {
            options,
            sessions: Mutex::new(Vec::new()),
        }
    }

    /// The session for the token `uri` names, opened on first use.
    pub fn session(&self, uri: &Pkcs11Uri) -> Result<Arc<Pkcs11Session>, Error> {
        let module = uri
            .module_path()
            .or(self.options.module.as_deref())
            .ok_or_else(|| Error::NoModule {
                uri: uri.to_string(),
            })?;
        let key: SessionKey = (module.to_path_buf(), uri.token_part());
        let mut sessions = lock(&self.sessions);
        if let Some((_, s)) = sessions.iter().find(|(k, _)| *k == key) {
            return Ok(Arc::clone(s));
        }
        let session = Pkcs11Session::open(uri, &self.options)?;
        sessions.push((key, Arc::clone(&session)));
        Ok(session)
    }

    /// The private key `uri` names (exactly one must match).
    pub fn key(&self, uri: &Pkcs11Uri) -> Result<Arc<Pkcs11Key>, Error> {
        let session = self.session(uri)?;
        Ok(Arc::new(Pkcs11Key::open(&session, uri)?))
    }

    /// Generates a key pair of `alg` inside the token `uri` names, labelled with its `object`
    /// and `id`; refused when such a key exists.
    pub fn generate(&self, uri: &Pkcs11Uri, alg: KeyAlgorithm) -> Result<Arc<Pkcs11Key>, Error> {
        let session = self.session(uri)?;
        Ok(Arc::new(Pkcs11Key::generate(&session, uri, alg)?))
    }
}
