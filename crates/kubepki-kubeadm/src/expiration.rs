//! `certs check-expiration` (`docs/compatibility.md` §5): when each certificate of the tree expires, kubeadm's two
//! tables and its `CertificateExpirationInfo` output, read offline from the files.

use std::path::{Path, PathBuf};

use kubepki_ca::CertificateAuthority;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::memtree::Tree;
use crate::plan::{CertId, KubeconfigId};
use crate::spec::ClusterSpec;
use crate::tree::Source;

/// One row of either table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpirationEntry {
    /// kubeadm's name: `admin.conf`, `apiserver`, `etcd-ca`.
    pub name: String,
    /// The file read.
    pub path: PathBuf,
    /// NotAfter, when the file was read.
    pub expires: Option<OffsetDateTime>,
    /// NotBefore, when the file was read.
    pub not_before: Option<OffsetDateTime>,
    /// The signing CA's name (`ca`, `etcd-ca`, `front-proxy-ca`); `None` for CAs.
    pub ca_name: Option<String>,
    /// Whether the signing CA (or this CA) has no key here.
    pub externally_managed: bool,
    /// The file does not exist.
    pub missing: bool,
    /// The file exists but could not be used (the reason is in [`Expiration::problems`]).
    pub invalid: bool,
}

/// What `check-expiration` found.
#[derive(Clone, Debug)]
pub struct Expiration {
    /// The time residual times are measured from.
    pub now: OffsetDateTime,
    /// Leaf certificates and kubeconfig client certificates, sorted by name (kubelet.conf is
    /// never listed, as in kubeadm).
    pub certificates: Vec<ExpirationEntry>,
    /// The CAs, sorted by name.
    pub authorities: Vec<ExpirationEntry>,
    /// Files that exist but could not be used, and external CAs whose leaves are incomplete.
    pub problems: Vec<String>,
    /// Another kubepki process held the tree's lock for longer than kubepki waits (the message):
    /// the files were read without it, so what was read may be half of a renewal.
    pub busy: Option<String>,
}

/// How close the nearest expiry is, for `--warn-within`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Urgency {
    /// Nothing expires within the window.
    Fine,
    /// Something expires within the window.
    Soon,
    /// Something has expired.
    Expired,
}

/// Reads every certificate of the tree `spec` describes and reports when each expires.
/// Never fails as a whole: unreadable files become [`Expiration::problems`].
///
/// It takes the tree's shared lock and only reads: a batch an interrupted writer left behind
/// is reported as a problem, not completed (nothing is changed, unlike the commands that
/// write). For a tree in memory, or bytes, use [`Expiration::of_tree`].
///
/// ```
/// use kubepki_kubeadm::{ClusterSpec, Plan, Selection, Urgency, check_expiration, init_tree};
/// use time::{Duration, OffsetDateTime};
///
/// let dir = tempfile::tempdir()?;
/// let mut spec = ClusterSpec::with_advertise_address("192.0.2.10".parse()?);
/// spec.node_name = Some("cp1".into());
/// spec.encryption_algorithm = kubepki_keys::KeyAlgorithm::EcdsaP256;
/// spec.cert_dir = dir.path().join("pki");
/// spec.kubeconfig_dir = dir.path().to_owned();
/// let now = OffsetDateTime::now_utc();
/// init_tree(&Plan::new(&spec)?, &Selection::all(), now, false)?;
///
/// let exp = check_expiration(&spec, now);
/// assert!(exp.problems.is_empty());
/// let apiserver = exp.certificates.iter().find(|e| e.name == "apiserver").expect("listed");
/// assert_eq!(apiserver.ca_name.as_deref(), Some("ca"));
/// let left = apiserver.expires.expect("read") - now;
/// assert!(left > Duration::days(364) && left <= Duration::days(365));
/// assert_eq!(exp.urgency(Duration::days(30)), Urgency::Fine);
/// // A year on, the leaves have expired (the CAs have not).
/// assert_eq!(check_expiration(&spec, now + Duration::days(366)).urgency(Duration::days(30)), Urgency::Expired);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn check_expiration(spec: &ClusterSpec, now: OffsetDateTime) -> Expiration {
    check_expiration_with_ca_keys(spec, &[], now)
}

/// [`check_expiration`] for a tree whose CAs in `ca_keys` have their keys held outside the
/// folders (a token): those CAs are not reported as externally managed.
pub fn check_expiration_with_ca_keys(
    spec: &ClusterSpec,
    ca_keys: &[crate::memtree::HeldCaKey],
    now: OffsetDateTime,
) -> Expiration {
    let mut problems = Vec::new();
    // Read-only: an unfinished batch is reported, not completed; the shared lock keeps writers
    // out while the tree is read.
    let mut busy = None;
    let _lock = match crate::tree::lock_for_reading(spec) {
        Ok(l) => Some(l),
        Err(e @ crate::Error::Files(kubepki_files::Error::Busy { .. })) => {
            busy = Some(e.to_string());
            None
        }
        Err(e) => {
            problems.push(e.to_string());
            None
        }
    };
    let mut out = expiration(spec, &Source::Folder { held: ca_keys }, now);
    problems.append(&mut out.problems);
    out.problems = problems;
    out.busy = busy;
    out
}

impl Expiration {
    /// [`check_expiration`] over a tree held in memory (for example one made by
    /// [`crate::build`], or read back from an export): the same entries, with the paths where
    /// `spec`'s folders would hold the files. A kubeconfig whose client certificate is a file
    /// it names (rather than embedded data) is read from the tree too.
    ///
    /// ```
    /// use kubepki_kubeadm::{ClusterSpec, Expiration, Plan, Selection, Tree, Urgency, build};
    /// use time::{Duration, OffsetDateTime};
    ///
    /// let mut spec = ClusterSpec::with_advertise_address("192.0.2.10".parse()?);
    /// spec.node_name = Some("cp1".into());
    /// spec.encryption_algorithm = kubepki_keys::KeyAlgorithm::EcdsaP256;
    /// let now = OffsetDateTime::now_utc();
    /// let tree = build(&Plan::new(&spec)?, &Selection::all(), &Tree::new(), now)?.files;
    ///
    /// let exp = Expiration::of_tree(&spec, &tree, now);
    /// assert!(exp.problems.is_empty() && exp.missing().count() == 0);
    /// assert_eq!(exp.urgency(Duration::days(30)), Urgency::Fine);
    /// let admin = exp.certificates.iter().find(|e| e.name == "admin.conf").expect("listed");
    /// assert!(admin.expires.expect("read") > now + Duration::days(364));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn of_tree(spec: &ClusterSpec, tree: &Tree, now: OffsetDateTime) -> Expiration {
        expiration(spec, &Source::Tree { spec, tree }, now)
    }
}

fn expiration(spec: &ClusterSpec, src: &Source, now: OffsetDateTime) -> Expiration {
    let dir = &spec.cert_dir;
    let mut problems = Vec::new();
    let ids = spec.cert_ids();
    let mut authorities = Vec::new();
    let mut external = std::collections::BTreeMap::new();
    for ca in ids.iter().copied().filter(|c| c.is_ca()) {
        let path = ca.cert_path(dir);
        let mut entry = ExpirationEntry {
            name: ca.name().into(),
            path: path.clone(),
            expires: None,
            not_before: None,
            ca_name: None,
            externally_managed: false,
            missing: !src.exists(&path),
            invalid: false,
        };
        if !entry.missing {
            match src.cert(&path).and_then(|c| {
                CertificateAuthority::from_certificate(c)
                    .map_err(|e| crate::error::file_err(&path, e))
            }) {
                Ok(loaded) => {
                    entry.expires = Some(loaded.certificate().not_after());
                    entry.not_before = Some(loaded.certificate().not_before());
                    // kubeadm: the key's existence decides; a keyless CA must have its leaves.
                    // A key held outside the tree (a token) signs: not externally managed.
                    entry.externally_managed =
                        !src.exists(&ca.key_path(dir)) && src.held_ca_key(ca).is_none();
                    if entry.externally_managed {
                        let bad: Vec<String> = ids
                            .iter()
                            .filter(|l| l.issuer() == Some(ca))
                            .filter_map(|l| {
                                let p = l.cert_path(dir);
                                match src.cert(&p) {
                                    Ok(c) => loaded
                                        .check_issued(&c)
                                        .err()
                                        .map(|e| format!("{}: {e}", p.display())),
                                    Err(e) => Some(e.to_string()),
                                }
                            })
                            .collect();
                        if !bad.is_empty() {
                            problems.push(format!(
                                "{} has no key (external CA) and its certificates are not all usable: {}",
                                path.display(),
                                bad.join("; ")
                            ));
                        }
                    }
                }
                Err(e) => {
                    entry.invalid = true;
                    problems.push(e.to_string());
                }
            }
        }
        external.insert(ca, entry.externally_managed);
        authorities.push(entry);
    }

    let mut certificates = Vec::new();
    for leaf in ids.iter().copied().filter(|c| !c.is_ca()) {
        let issuer = leaf.issuer().unwrap_or(CertId::Ca);
        let path = leaf.cert_path(dir);
        certificates.push(entry_for(
            leaf.name(),
            &path,
            issuer,
            external.get(&issuer).copied().unwrap_or(false),
            src,
            false,
            &mut problems,
        ));
    }
    for k in spec
        .kubeconfig_ids()
        .into_iter()
        .filter(|k| *k != KubeconfigId::Kubelet)
    {
        let path = spec.kubeconfig_dir.join(k.file_name());
        certificates.push(entry_for(
            k.file_name(),
            &path,
            CertId::Ca,
            external.get(&CertId::Ca).copied().unwrap_or(false),
            src,
            true,
            &mut problems,
        ));
    }
    certificates.sort_by(|a, b| a.name.cmp(&b.name));
    authorities.sort_by(|a, b| a.name.cmp(&b.name));
    Expiration {
        now,
        certificates,
        authorities,
        problems,
        busy: None,
    }
}

fn entry_for(
    name: &str,
    path: &Path,
    issuer: CertId,
    externally_managed: bool,
    src: &Source,
    kubeconfig: bool,
    problems: &mut Vec<String>,
) -> ExpirationEntry {
    let mut e = ExpirationEntry {
        name: name.into(),
        path: path.to_owned(),
        expires: None,
        not_before: None,
        ca_name: Some(issuer.name().into()),
        externally_managed,
        missing: !src.exists(path),
        invalid: false,
    };
    if !e.missing {
        let read = if kubeconfig {
            src.kubeconfig_cert(path)
        } else {
            src.cert(path)
        };
        match read {
            Ok(c) => {
                e.expires = Some(c.not_after());
                e.not_before = Some(c.not_before());
            }
            Err(err) => {
                e.invalid = true;
                problems.push(err.to_string());
            }
        }
    }
    e
}

impl Expiration {
    fn residual(&self, e: &ExpirationEntry) -> Option<Duration> {
        e.expires.map(|t| {
            let d = t - self.now;
            Duration::seconds(d.whole_seconds())
        })
    }

    /// kubeadm's text output: the certificates table, an empty line, the CA table.
    pub fn to_table(&self) -> String {
        let yes_no = |b: bool| format!("{:<8}", if b { "yes" } else { "no" });
        let mut t1 = vec![vec![
            "CERTIFICATE".to_owned(),
            "EXPIRES".into(),
            "RESIDUAL TIME".into(),
            "CERTIFICATE AUTHORITY".into(),
            "EXTERNALLY MANAGED".into(),
        ]];
        for e in &self.certificates {
            t1.push(self.row(e, true, &yes_no));
        }
        let mut t2 = vec![vec![
            "CERTIFICATE AUTHORITY".to_owned(),
            "EXPIRES".into(),
            "RESIDUAL TIME".into(),
            "EXTERNALLY MANAGED".into(),
        ]];
        for e in &self.authorities {
            t2.push(self.row(e, false, &yes_no));
        }
        format!("{}\n{}", tabwriter(&t1), tabwriter(&t2))
    }

    fn row(
        &self,
        e: &ExpirationEntry,
        with_ca: bool,
        yes_no: &dyn Fn(bool) -> String,
    ) -> Vec<String> {
        let width = if with_ca { 5 } else { 4 };
        match (e.missing, e.invalid, e.expires) {
            (false, false, Some(t)) => {
                let mut r = vec![
                    e.name.clone(),
                    kubeadm_date(t),
                    self.residual(e)
                        .map(short_human_duration)
                        .unwrap_or_default(),
                ];
                if with_ca {
                    r.push(e.ca_name.clone().unwrap_or_default());
                }
                r.push(yes_no(e.externally_managed));
                r
            }
            (missing, _, _) => {
                let tag = if missing { "!MISSING!" } else { "!INVALID!" };
                let mut r = vec![format!("{tag} {}", e.name)];
                r.resize(width, String::new());
                r
            }
        }
    }

    /// kubeadm's `CertificateExpirationInfo` (`output.kubeadm.k8s.io/v1alpha3`), shaped as Go
    /// writes its `Certificate` rows (docs/certs.md, "check-expiration"): the fields in the
    /// struct's order, `residualTime`, `externallyManaged` and `missing` always written, `caName`
    /// only when not empty, and a missing file as its name and `missing: true` with every other
    /// field zero (`expirationDate: null`).
    pub fn to_output_api(&self) -> Value {
        let entry = |e: &ExpirationEntry| {
            let mut m = serde_json::Map::new();
            m.insert("name".into(), json!(e.name));
            let present = !e.missing;
            m.insert(
                "expirationDate".into(),
                e.expires
                    .filter(|_| present)
                    .map(|t| json!(kubepki_ca::rfc3339(t)))
                    .unwrap_or(Value::Null),
            );
            let residual = self
                .residual(e)
                .filter(|_| present)
                .map_or(0, |r| r.whole_seconds());
            m.insert("residualTime".into(), json!(residual));
            m.insert(
                "externallyManaged".into(),
                json!(present && e.externally_managed),
            );
            if let Some(ca) = e.ca_name.as_ref().filter(|c| present && !c.is_empty()) {
                m.insert("caName".into(), json!(ca));
            }
            m.insert("missing".into(), json!(e.missing));
            Value::Object(m)
        };
        json!({
            "kind": "CertificateExpirationInfo",
            "apiVersion": "output.kubeadm.k8s.io/v1alpha3",
            "certificates": self.certificates.iter().map(entry).collect::<Vec<_>>(),
            "certificateAuthorities": self.authorities.iter().map(entry).collect::<Vec<_>>(),
        })
    }

    /// The rows whose file does not exist, except `super-admin.conf`: only the node that ran
    /// `init` has one (`verify` reports its absence as a warning for the same reason).
    pub fn missing(&self) -> impl Iterator<Item = &ExpirationEntry> {
        self.certificates
            .iter()
            .chain(&self.authorities)
            .filter(|e| e.missing && e.name != KubeconfigId::SuperAdmin.file_name())
    }

    /// The rows whose certificate is not valid yet at [`Expiration::now`] (notBefore in the
    /// future: a clock that is behind, or a certificate made on a machine whose clock is ahead).
    pub fn not_yet_valid(&self) -> impl Iterator<Item = &ExpirationEntry> {
        self.certificates
            .iter()
            .chain(&self.authorities)
            .filter(|e| e.not_before.is_some_and(|nb| nb > self.now))
    }

    /// The worst case over every certificate read: expired, expiring within `window`, or fine.
    pub fn urgency(&self, window: Duration) -> Urgency {
        self.certificates
            .iter()
            .chain(&self.authorities)
            .filter_map(|e| self.residual(e))
            .map(|r| {
                if r <= Duration::ZERO {
                    Urgency::Expired
                } else if r <= window {
                    Urgency::Soon
                } else {
                    Urgency::Fine
                }
            })
            .max()
            .unwrap_or(Urgency::Fine)
    }
}

/// `Aug 19, 2026 09:03 UTC` (Go layout `Jan 02, 2006 15:04 MST`).
pub fn kubeadm_date(t: OffsetDateTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{} {:02}, {} {:02}:{:02} UTC",
        MONTHS[usize::from(u8::from(t.month())) - 1],
        t.day(),
        t.year(),
        t.hour(),
        t.minute()
    )
}

/// Kubernetes' `ShortHumanDuration`: `<invalid>`, `0s`, `42s`, `5m`, `23h`, `364d`, `9y`.
pub fn short_human_duration(d: Duration) -> String {
    let seconds = d.whole_seconds();
    if seconds < -1 {
        "<invalid>".into()
    } else if seconds < 0 {
        "0s".into()
    } else if seconds < 60 {
        format!("{seconds}s")
    } else if d.whole_minutes() < 60 {
        format!("{}m", d.whole_minutes())
    } else if d.whole_hours() < 24 {
        format!("{}h", d.whole_hours())
    } else if d.whole_hours() < 24 * 365 {
        format!("{}d", d.whole_hours() / 24)
    } else {
        format!("{}y", d.whole_hours() / (24 * 365))
    }
}

/// Go's `tabwriter.NewWriter(w, 10, 4, 3, ' ', 0)` for rows whose cells but the last are
/// tab-terminated: each such column is as wide as its widest cell plus 3 (at least 10).
/// Cells are escaped ([`kubepki_csr::escape`]) before they
/// are measured, so a cell that needed escaping still lines up (every name here is kubeadm's
/// own today; the rule holds whatever a future column shows).
fn tabwriter(rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|c| kubepki_csr::escape_text(c).into_owned())
                .collect()
        })
        .collect();
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols.saturating_sub(1))
        .map(|j| {
            rows.iter()
                .filter_map(|r| r.get(j))
                .map(|c| c.chars().count() + 3)
                .max()
                .unwrap_or(0)
                .max(10)
        })
        .collect();
    let mut out = String::new();
    for r in &rows {
        for (j, cell) in r.iter().enumerate() {
            out.push_str(cell);
            if let Some(w) = widths.get(j)
                && j + 1 < r.len()
            {
                out.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_durations_follow_kubernetes() {
        let d = |s: i64| short_human_duration(Duration::seconds(s));
        assert_eq!(d(-5), "<invalid>");
        assert_eq!(d(-1), "0s");
        assert_eq!(d(0), "0s");
        assert_eq!(d(59), "59s");
        assert_eq!(d(60), "1m");
        assert_eq!(d(3599), "59m");
        assert_eq!(d(3600), "1h");
        assert_eq!(d(86399), "23h");
        assert_eq!(d(86400), "1d");
        assert_eq!(d(8760 * 3600 - 301), "364d");
        assert_eq!(d(8760 * 3600), "1y");
        assert_eq!(d(87600 * 3600 - 301), "9y");
    }

    #[test]
    fn go_date_layout() -> Result<(), time::error::ComponentRange> {
        let t = time::Date::from_calendar_date(2026, time::Month::August, 9)?.with_hms(9, 3, 59)?;
        assert_eq!(kubeadm_date(t.assume_utc()), "Aug 09, 2026 09:03 UTC");
        Ok(())
    }
}
