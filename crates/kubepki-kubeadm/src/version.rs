//! Kubernetes versions and the kubeadm behaviours that changed between them
//! (`docs/compatibility.md` §8, the per-version table, and §1.4, §1.6, §2.1, §2.3, §3).

use std::fmt;
use std::str::FromStr;

use crate::Error;
use crate::error::{Reason, VersionProblem};

/// A Kubernetes version `v1.MINOR.PATCH`. It selects the kubeadm behaviour kubepki imitates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KubernetesVersion {
    /// Minor version (`1.<minor>`).
    pub minor: u32,
    /// Patch version.
    pub patch: u32,
}

/// The oldest version whose behaviour kubepki knows (v1beta3 configs start at 1.22).
pub const OLDEST_KNOWN: KubernetesVersion = KubernetesVersion::new(22, 0);
/// The newest minor version whose behaviour kubepki knows; newer ones get its rules and a warning.
pub const NEWEST_KNOWN_MINOR: u32 = 37;

impl KubernetesVersion {
    /// kubepki's default: the newest release it models, v1.37.0 (the newest release the
    /// upstream changelogs confirm; later 1.37 patches changed nothing kubepki models as far
    /// as known: `docs/compatibility.md` §10).
    pub const DEFAULT: KubernetesVersion = KubernetesVersion::new(37, 0);

    /// `v1.<minor>.<patch>`.
    pub const fn new(minor: u32, patch: u32) -> Self {
        KubernetesVersion { minor, patch }
    }

    fn at_least(self, minor: u32, patch: u32) -> bool {
        (self.minor, self.patch) >= (minor, patch)
    }

    /// Whether this version is newer than any kubepki knows (its rules are the newest known).
    pub fn is_newer_than_known(self) -> bool {
        self.minor > NEWEST_KNOWN_MINOR
    }

    /// The O of `apiserver-kubelet-client` (`docs/compatibility.md` §1.6): `system:masters` up to 1.28,
    /// `kubeadm:cluster-admins` from 1.29, none from 1.33.12 / 1.34.8 / 1.35.5 / 1.36.1 (#138957).
    pub fn apiserver_kubelet_client_org(self) -> Option<&'static str> {
        if self.minor < 29 {
            Some("system:masters")
        } else if self.drops_kubelet_client_org() {
            None
        } else {
            Some("kubeadm:cluster-admins")
        }
    }

    /// Whether `apiserver-kubelet-client` has no O and needs the `kubeadm:apiserver-kubelet-client`
    /// ClusterRoleBinding (#138957).
    pub fn drops_kubelet_client_org(self) -> bool {
        match self.minor {
            0..=32 => false,
            33 => self.patch >= 12,
            34 => self.patch >= 8,
            35 => self.patch >= 5,
            36 => self.patch >= 1,
            _ => true,
        }
    }

    /// The O of the two etcd client certificates: `system:masters` up to 1.28, none from 1.29.
    pub fn etcd_client_org(self) -> Option<&'static str> {
        (self.minor < 29).then_some("system:masters")
    }

    /// The O of `admin.conf`'s user: `system:masters` up to 1.28, `kubeadm:cluster-admins` from 1.29.
    pub fn admin_org(self) -> &'static str {
        if self.minor < 29 {
            "system:masters"
        } else {
            "kubeadm:cluster-admins"
        }
    }

    /// Whether `super-admin.conf` is written (1.29+, KEP-4214).
    pub fn has_super_admin(self) -> bool {
        self.minor >= 29
    }

    /// Whether CAs are backdated by 5 minutes (1.28+; kubepki does not model the 1.25–1.27
    /// patch-release backports).
    pub fn backdates_ca(self) -> bool {
        self.minor >= 28
    }

    /// Whether leaves get their own window T − 5 min .. T + validity (1.31+); before, a leaf's
    /// NotBefore is its CA's NotBefore and its NotAfter now + 365 days.
    pub fn leaf_window_from_config(self) -> bool {
        self.minor >= 31
    }

    /// Whether validity periods are configurable (v1beta4, 1.31+).
    pub fn validity_configurable(self) -> bool {
        self.minor >= 31
    }

    /// Whether kubeconfig client keys follow the encryption algorithm (1.31+); before they are
    /// always RSA-2048. `sa.key` follows it in every version (docs/init.md, "Outputs").
    pub fn kubeconfig_keys_follow_algorithm(self) -> bool {
        self.minor >= 31
    }

    /// Whether `kubelet.conf` points at the local API endpoint when the config does not set the
    /// `ControlPlaneKubeletLocalMode` gate: the gate's default (alpha, off in 1.31 and 1.32;
    /// beta, on in 1.33 and 1.34; GA and locked on in 1.35; removed, always on, from 1.36).
    pub fn kubelet_uses_local_endpoint(self) -> bool {
        self.minor >= 33
    }

    /// Whether kubeadm of this version knows the `ControlPlaneKubeletLocalMode` feature gate
    /// (1.31 to 1.35); kubeadm refuses a feature gate it does not know.
    pub fn knows_kubelet_local_mode_gate(self) -> bool {
        (31..=35).contains(&self.minor)
    }

    /// Whether the `ControlPlaneKubeletLocalMode` gate is locked to `true` (GA in 1.35).
    pub fn kubelet_local_mode_gate_locked(self) -> bool {
        self.minor == 35
    }

    /// The key algorithms kubeadm of this version can generate (`docs/compatibility.md` §3).
    pub fn supported_algorithms(self) -> &'static [&'static str] {
        if self.minor >= 34 {
            &[
                "RSA-2048",
                "RSA-3072",
                "RSA-4096",
                "ECDSA-P256",
                "ECDSA-P384",
            ]
        } else if self.minor >= 31 {
            &["RSA-2048", "RSA-3072", "RSA-4096", "ECDSA-P256"]
        } else {
            // PublicKeysECDSA feature gate era.
            &["RSA-2048", "ECDSA-P256"]
        }
    }

    /// How kubeadm's CAs derive their SubjectKeyIdentifier (leaves copy it as their
    /// AuthorityKeyIdentifier): SHA-1 up to 1.34, truncated SHA-256 from 1.35. kubeadm leaves
    /// it to Go's `x509.CreateCertificate`, which uses truncated SHA-256 from Go 1.25 unless
    /// `x509sha256skid=0`; Kubernetes 1.35's go.mod moved to `go 1.25.0` with
    /// `godebug default=go1.25` (#134120), while 1.33 and 1.34 keep their first Go's defaults
    /// even when built with Go 1.25 (`docs/compatibility.md`, "Key identifiers").
    pub fn ca_key_id(self) -> kubepki_ca::KeyIdMethod {
        if self.minor >= 35 {
            kubepki_ca::KeyIdMethod::Sha256Truncated
        } else {
            kubepki_ca::KeyIdMethod::Sha1
        }
    }

    /// Whether v1beta3 config files and the `PublicKeysECDSA` feature gate are understood: up
    /// to 1.36; kubeadm 1.37 removed both (#136016; `docs/compatibility.md` §3).
    pub fn accepts_v1beta3(self) -> bool {
        self.minor <= 36
    }

    /// Whether v1beta4 config files are understood (1.31+).
    pub fn accepts_v1beta4(self) -> bool {
        self.at_least(31, 0)
    }
}

impl Default for KubernetesVersion {
    fn default() -> Self {
        KubernetesVersion::DEFAULT
    }
}

impl fmt::Display for KubernetesVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v1.{}.{}", self.minor, self.patch)
    }
}

impl FromStr for KubernetesVersion {
    type Err = Error;

    /// Parses `v1.31.2`, `1.31.2`, `v1.31` (patch 0) and pre-release forms such as
    /// `v1.34.0-rc.1` (the suffix is ignored).
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |problem: VersionProblem| Error::Invalid {
            field: "kubernetesVersion".into(),
            reason: Reason::Version {
                given: s.to_owned(),
                problem,
            },
        };
        let t = s.trim();
        let t = t.strip_prefix('v').unwrap_or(t);
        let core = t.split(['-', '+']).next().unwrap_or(t);
        let mut parts = core.split('.');
        let num = |p: Option<&str>| -> Result<Option<u32>, Error> {
            match p {
                None => Ok(None),
                Some(x) if !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()) => x
                    .parse::<u32>()
                    .map(Some)
                    .map_err(|_| bad(VersionProblem::OutOfRange)),
                Some(_) => Err(bad(VersionProblem::NotAVersion)),
            }
        };
        let major = num(parts.next())?;
        let minor = num(parts.next())?;
        let patch = num(parts.next())?;
        if parts.next().is_some() {
            return Err(bad(VersionProblem::NotAVersion));
        }
        match (major, minor) {
            (Some(1), Some(minor)) => {
                let v = KubernetesVersion::new(minor, patch.unwrap_or(0));
                if v < OLDEST_KNOWN {
                    return Err(bad(VersionProblem::TooOld));
                }
                Ok(v)
            }
            (Some(_), Some(_)) => Err(bad(VersionProblem::NotOneX)),
            _ => Err(bad(VersionProblem::NotAVersion)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forms() -> Result<(), Error> {
        assert_eq!(
            "v1.31.2".parse::<KubernetesVersion>()?,
            KubernetesVersion::new(31, 2)
        );
        assert_eq!(
            "1.29".parse::<KubernetesVersion>()?,
            KubernetesVersion::new(29, 0)
        );
        assert_eq!(
            "v1.34.0-rc.1".parse::<KubernetesVersion>()?,
            KubernetesVersion::new(34, 0)
        );
        for bad in ["", "v2.1.0", "v1", "v1.x", "v1.31.2.4", "1.21.0", "latest"] {
            assert!(bad.parse::<KubernetesVersion>().is_err(), "{bad}");
        }
        Ok(())
    }

    #[test]
    fn kubelet_client_org_follows_138957() {
        let org = |m, p| KubernetesVersion::new(m, p).apiserver_kubelet_client_org();
        assert_eq!(org(28, 9), Some("system:masters"));
        assert_eq!(org(29, 0), Some("kubeadm:cluster-admins"));
        assert_eq!(org(33, 11), Some("kubeadm:cluster-admins"));
        assert_eq!(org(33, 12), None);
        assert_eq!(org(34, 7), Some("kubeadm:cluster-admins"));
        assert_eq!(org(34, 8), None);
        assert_eq!(org(35, 4), Some("kubeadm:cluster-admins"));
        assert_eq!(org(35, 5), None);
        assert_eq!(org(36, 0), Some("kubeadm:cluster-admins"));
        assert_eq!(org(36, 1), None);
        assert_eq!(org(37, 0), None);
    }
}
