//! The user PIN, and where it comes from.

use std::fmt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// A token user PIN. Wiped from memory when dropped; `Debug` prints `Pin(REDACTED)`. There is
/// no `Display`: the only way to the text is [`Pin::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Pin(Zeroizing<String>);

impl Pin {
    /// A PIN from its text.
    pub fn new(pin: String) -> Self {
        Pin(Zeroizing::new(pin))
    }

    /// The PIN text, for handing to the token.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(REDACTED)")
    }
}

/// The environment variable holding the user PIN when the URI has neither `pin-value` nor
/// `pin-source`.
pub const PIN_ENV: &str = "KUBEPKI_PKCS11_PIN";

/// What a command knows about PKCS#11 besides the URI: the module given on the command line
/// (`--pkcs11-module`) and the PIN from the environment ([`PIN_ENV`]).
///
/// The URI wins where both say something: its `module-path` over [`Self::module`], its
/// `pin-value` or `pin-source` over [`Self::pin`]. `Debug` never shows the PIN.
///
/// ```
/// use kubepki_pkcs11::{Pin, Pkcs11Options};
///
/// let opts = Pkcs11Options::new()
///     .with_module("/usr/lib/softhsm/libsofthsm2.so")
///     .with_pin(Pin::new("1234".into()));
/// assert!(!format!("{opts:?}").contains("1234"));
/// ```
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct Pkcs11Options {
    /// The PKCS#11 library to load when the URI has no `module-path`.
    pub module: Option<PathBuf>,
    /// The user PIN when the URI has neither `pin-value` nor `pin-source`.
    pub pin: Option<Pin>,
}

impl Pkcs11Options {
    /// No module, no PIN.
    pub fn new() -> Self {
        Self::default()
    }

    /// No module; the PIN from [`PIN_ENV`] when it is set (and valid UTF-8).
    pub fn from_env() -> Self {
        Pkcs11Options {
            module: None,
            pin: std::env::var(PIN_ENV).ok().map(Pin::new),
        }
    }

    /// Sets the module.
    pub fn with_module(mut self, module: impl AsRef<Path>) -> Self {
        self.module = Some(module.as_ref().to_path_buf());
        self
    }

    /// Sets the PIN.
    pub fn with_pin(mut self, pin: Pin) -> Self {
        self.pin = Some(pin);
        self
    }
}

impl fmt::Debug for Pkcs11Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Options")
            .field("module", &self.module)
            .field("pin", &self.pin.as_ref().map(|_| "REDACTED"))
            .finish()
    }
}
