//! Renewing the client certificate of a kubeconfig in place, by structure (docs/certs.md,
//! "Editing a kubeconfig"): the current context's user (and cluster, for the CA data) are found
//! through the parsed document, only the byte spans of their values are replaced, and the result
//! is parsed again and compared with the original before anything is written. Certificates and
//! keys the user references by file are written to those files instead.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use kubepki_csr::yaml::Spanned;
use serde::Deserialize;
use serde::de::IgnoredAny;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Reason, file_err};
use crate::kubeconfig::{Kubeconfig, resolve_reference, set};

/// The new credentials of the current context.
pub(crate) struct NewCredentials<'a> {
    /// The new client certificate, PEM.
    pub cert_pem: &'a str,
    /// The new client key, PEM.
    pub key_pem: &'a str,
    /// The cluster CA, PEM (written only where the current cluster embeds a different one).
    pub ca_pem: &'a str,
}

/// A file to write.
pub(crate) struct FileWrite {
    /// Where.
    pub path: PathBuf,
    /// What (may hold the private key).
    pub contents: Zeroizing<Vec<u8>>,
    /// `MODE_SECRET` when it holds the key, else `MODE_PUBLIC`.
    pub secret: bool,
}

/// What renewing one kubeconfig writes: the edited kubeconfig (`None` when its bytes do not
/// change: everything is in referenced files) and the referenced files.
pub(crate) struct Renewal {
    /// The new kubeconfig text.
    pub kubeconfig: Option<Zeroizing<String>>,
    /// The certificate and key files the current user references.
    pub files: Vec<FileWrite>,
}

// The parts of a kubeconfig the editor needs, each value with where it is in the text.
// `IgnoredAny`: the values themselves are read through `Kubeconfig` (the key is never copied
// here).
type Located = Option<Spanned<IgnoredAny>>;

#[derive(Deserialize)]
struct Doc {
    #[serde(default)]
    clusters: Vec<ClusterEntry>,
    #[serde(default)]
    users: Vec<UserEntry>,
}

#[derive(Deserialize)]
struct ClusterEntry {
    #[serde(default)]
    cluster: Option<ClusterFields>,
}

#[derive(Deserialize)]
struct ClusterFields {
    #[serde(rename = "certificate-authority-data", default)]
    certificate_authority_data: Located,
}

#[derive(Deserialize)]
struct UserEntry {
    #[serde(default)]
    user: Option<UserFields>,
}

#[derive(Deserialize)]
struct UserFields {
    #[serde(rename = "client-certificate-data", default)]
    client_certificate_data: Located,
    #[serde(rename = "client-key-data", default)]
    client_key_data: Located,
}

const CERT_DATA: &str = "client-certificate-data";
const KEY_DATA: &str = "client-key-data";
const CA_DATA: &str = "certificate-authority-data";

/// One value to replace.
struct Edit {
    /// Byte range of the value's node in the text.
    start: usize,
    end: usize,
    /// The replacement, in a form valid at that position.
    text: Zeroizing<String>,
    /// `users` or `clusters`, the entry's index, the field.
    section: &'static str,
    index: usize,
    field: &'static str,
    /// The PEM text the field must decode to afterwards.
    want: Zeroizing<Vec<u8>>,
}

/// Plans the renewal of the kubeconfig at `path` (contents `input`) with `new`: its current
/// user's `client-certificate-data`/`client-key-data` are replaced (or the files its
/// `client-certificate`/`client-key` name are rewritten), and the current cluster's
/// `certificate-authority-data` if it is not `new.ca_pem`. Refuses, naming the reason, whatever
/// it cannot do exactly; nothing is written here.
pub(crate) fn plan(path: &Path, input: &[u8], new: &NewCredentials<'_>) -> Result<Renewal, Error> {
    let text = std::str::from_utf8(input).map_err(|_| file_err(path, "is not UTF-8 text"))?;
    let kc = Kubeconfig::from_slice(path, input)?;
    let (ui, ci) = current_indices(path, &kc)?;
    let located: Doc = kubepki_csr::yaml::from_str(text)
        .map_err(|e| file_err(path, Reason::within("is not a kubeconfig", e)))?;
    if located.users.len() != kc.users.len() || located.clusters.len() != kc.clusters.len() {
        return Err(file_err(path, "its users or clusters could not be located"));
    }
    let user = &kc.users[ui];
    let u = &user.user;
    let lu = located.users[ui].user.as_ref();
    let lc = located.clusters[ci].cluster.as_ref();

    let mut edits = Vec::new();
    let mut files: Vec<FileWrite> = Vec::new();
    let cert_data = set(u.client_certificate_data.as_deref());
    let cert_file = set(u.client_certificate.as_deref());
    let key_data = set(u.client_key_data.as_deref());
    let key_file = set(u.client_key.as_deref());
    if cert_data.is_none() && cert_file.is_none() {
        return Err(kc.no_client_cert(path));
    }
    if key_data.is_none() && key_file.is_none() {
        return Err(kc.no_client_key(path));
    }
    for (field, data, file) in [
        ("client-certificate", cert_data, cert_file),
        ("client-key", key_data, key_file),
    ] {
        if data.is_some() && file.is_some() {
            return Err(file_err(
                path,
                format!(
                    "the current user \"{}\" sets both {field}-data and {field}; kubectl refuses that, keep one",
                    user.name
                ),
            ));
        }
    }

    // The values to replace must be readable as kubectl reads them: one kubectl refuses (a
    // space inside base64, ...) is refused here too rather than silently replaced.
    for (field, data) in [
        (CERT_DATA, cert_data),
        (KEY_DATA, key_data),
        (
            CA_DATA,
            set(kc.clusters[ci]
                .cluster
                .certificate_authority_data
                .as_deref()),
        ),
    ] {
        if let Some(d) = data {
            crate::kubeconfig::decode(path, field, d)?;
        }
    }

    let cert_b64 = Zeroizing::new(B64.encode(new.cert_pem));
    let key_b64 = Zeroizing::new(B64.encode(new.key_pem));
    if cert_data.is_some() {
        let at = lu.and_then(|l| l.client_certificate_data.as_ref());
        edits.push(edit(
            path,
            text,
            at,
            ("users", ui, CERT_DATA),
            &cert_b64,
            new.cert_pem.as_bytes(),
        )?);
    }
    if key_data.is_some() {
        let at = lu.and_then(|l| l.client_key_data.as_ref());
        edits.push(edit(
            path,
            text,
            at,
            ("users", ui, KEY_DATA),
            &key_b64,
            new.key_pem.as_bytes(),
        )?);
    }
    let cluster = &kc.clusters[ci].cluster;
    if let Some(data) = set(cluster.certificate_authority_data.as_deref()) {
        let same = crate::kubeconfig::decode(path, CA_DATA, data)
            .is_ok_and(|old| old.as_slice() == new.ca_pem.as_bytes());
        if !same {
            let at = lc.and_then(|l| l.certificate_authority_data.as_ref());
            let ca_b64 = B64.encode(new.ca_pem);
            edits.push(edit(
                path,
                text,
                at,
                ("clusters", ci, CA_DATA),
                &ca_b64,
                new.ca_pem.as_bytes(),
            )?);
        }
    }

    // Referenced files: the same file for both is a combined PEM (as kubelet-client-current.pem).
    let cert_path = cert_file.map(|f| resolve_reference(path, f));
    let key_path = key_file.map(|f| resolve_reference(path, f));
    for (field, p) in [
        ("client-certificate", &cert_path),
        ("client-key", &key_path),
    ] {
        if let Some(p) = p {
            check_referenced(path, field, p)?;
        }
    }
    match (&cert_path, &key_path) {
        (Some(c), Some(k)) if same_file(c, k) => {
            let mut both = Zeroizing::new(new.cert_pem.as_bytes().to_vec());
            both.extend_from_slice(new.key_pem.as_bytes());
            files.push(FileWrite {
                path: c.clone(),
                contents: both,
                secret: true,
            });
        }
        _ => {
            if let Some(c) = &cert_path {
                files.push(FileWrite {
                    path: c.clone(),
                    contents: Zeroizing::new(new.cert_pem.as_bytes().to_vec()),
                    secret: false,
                });
            }
            if let Some(k) = &key_path {
                files.push(FileWrite {
                    path: k.clone(),
                    contents: Zeroizing::new(new.key_pem.as_bytes().to_vec()),
                    secret: true,
                });
            }
        }
    }
    if files.iter().any(|f| same_file(&f.path, path)) {
        return Err(file_err(
            path,
            "the current user's certificate or key file is this kubeconfig itself",
        ));
    }

    if edits.is_empty() {
        return Ok(Renewal {
            kubeconfig: None,
            files,
        });
    }
    let out = apply(path, text, &mut edits)?;
    check(path, text, &out, &edits, key_data.map(|_| key_b64.as_str()))?;
    Ok(Renewal {
        kubeconfig: Some(out),
        files,
    })
}

/// Plans replacing only the current cluster's `certificate-authority-data` of the kubeconfig at
/// `path` (contents `input`) with `ca_pem` (a CA rotation: docs/rotation.md). `None` when
/// nothing changes: the data is already `ca_pem`, or the cluster names a file
/// (`certificate-authority:`) instead of embedding the data. Checked as [`plan`] checks.
pub(crate) fn plan_ca(
    path: &Path,
    input: &[u8],
    ca_pem: &str,
) -> Result<Option<Zeroizing<String>>, Error> {
    let text = std::str::from_utf8(input).map_err(|_| file_err(path, "is not UTF-8 text"))?;
    let kc = Kubeconfig::from_slice(path, input)?;
    let (_, ci) = current_indices(path, &kc)?;
    let located: Doc = kubepki_csr::yaml::from_str(text)
        .map_err(|e| file_err(path, Reason::within("is not a kubeconfig", e)))?;
    if located.clusters.len() != kc.clusters.len() {
        return Err(file_err(path, "its clusters could not be located"));
    }
    let Some(data) = set(kc.clusters[ci]
        .cluster
        .certificate_authority_data
        .as_deref())
    else {
        return Ok(None);
    };
    if crate::kubeconfig::decode(path, CA_DATA, data)?.as_slice() == ca_pem.as_bytes() {
        return Ok(None);
    }
    let at = located.clusters[ci]
        .cluster
        .as_ref()
        .and_then(|l| l.certificate_authority_data.as_ref());
    let mut edits = vec![edit(
        path,
        text,
        at,
        ("clusters", ci, CA_DATA),
        &B64.encode(ca_pem),
        ca_pem.as_bytes(),
    )?];
    let out = apply(path, text, &mut edits)?;
    check(path, text, &out, &edits, None)?;
    Ok(Some(out))
}

/// The indices of the current context's user and cluster; a name given to two entries is
/// refused, as client-go refuses it when it loads the file.
fn current_indices(path: &Path, kc: &Kubeconfig) -> Result<(usize, usize), Error> {
    let (cluster, user) = kc.current(path)?;
    let unique = |what: &str, names: Vec<&str>, name: &str| -> Result<usize, Error> {
        let hits: Vec<usize> = names
            .iter()
            .enumerate()
            .filter(|(_, n)| **n == name)
            .map(|(i, _)| i)
            .collect();
        match hits.as_slice() {
            [i] => Ok(*i),
            _ => Err(file_err(
                path,
                format!(
                    "{} {what} entries are named \"{name}\"; kubectl refuses such a file",
                    hits.len()
                ),
            )),
        }
    };
    unique(
        "context",
        kc.contexts.iter().map(|c| c.name.as_str()).collect(),
        &kc.current_context,
    )?;
    let ui = unique(
        "user",
        kc.users.iter().map(|u| u.name.as_str()).collect(),
        &user.name,
    )?;
    let ci = unique(
        "cluster",
        kc.clusters.iter().map(|c| c.name.as_str()).collect(),
        &cluster.name,
    )?;
    Ok((ui, ci))
}

/// The replacement of one value: `new` (base64, which needs no escaping in any style) written in
/// the style of the node it replaces — double- or single-quoted stays so, a block scalar keeps its
/// header and gets `new` as its one content line (whatever key follows it), a plain scalar (one
/// line or several) becomes one plain line.
fn edit(
    path: &Path,
    text: &str,
    at: Option<&Spanned<IgnoredAny>>,
    (section, index, field): (&'static str, usize, &'static str),
    new: &str,
    want: &[u8],
) -> Result<Edit, Error> {
    let refuse = |why: &str| file_err(path, format!("cannot update {field} in place: {why}"));
    let Some(at) = at else {
        return Err(refuse("its position in the file is not known"));
    };
    let span = at.referenced.span();
    let (Some(off), Some(len)) = (span.byte_offset(), span.byte_len()) else {
        return Err(refuse("its position in the file is not known"));
    };
    let start = usize::try_from(off).map_err(|_| refuse("bad position"))?;
    let end = start.saturating_add(usize::try_from(len).map_err(|_| refuse("bad position"))?);
    if at.defined.span().byte_offset() != Some(off) {
        return Err(refuse(
            "the value comes from a YAML alias or merge key, so changing it would change another place too",
        ));
    }
    let Some(orig) = text.get(start..end).filter(|s| !s.is_empty()) else {
        return Err(refuse("its position in the file is not known"));
    };
    let (end, replacement) = match orig.as_bytes()[0] {
        b'"' => (end, format!("\"{new}\"")),
        b'\'' => (end, format!("'{new}'")),
        b'*' => {
            return Err(refuse(
                "the value is a YAML alias, so changing it would change another place too",
            ));
        }
        b'|' | b'>' | b'&' | b'!' | b'{' | b'[' | b'?' | b'-' | b'#' => {
            return Err(refuse("the value is not a scalar kubepki can replace"));
        }
        // A plain scalar (one line or several) or the content of a block scalar (`|`, `|-`,
        // `>`, `>-`, ...: its span starts at the first content character, after the header
        // line, and runs over the line breaks, blank lines and the indentation of whatever
        // follows). Only the content, up to its last non-blank character, is replaced by `new`
        // on one line at the same position, so a block scalar keeps its header and its
        // indentation, and the line breaks and the next key's indentation stay as they were.
        _ => {
            let content = orig.trim_end_matches([' ', '\t', '\r', '\n']).len();
            (start + content, new.to_owned())
        }
    };
    Ok(Edit {
        start,
        end,
        text: Zeroizing::new(replacement),
        section,
        index,
        field,
        want: Zeroizing::new(want.to_vec()),
    })
}

fn apply(path: &Path, text: &str, edits: &mut [Edit]) -> Result<Zeroizing<String>, Error> {
    edits.sort_by_key(|e| e.start);
    let mut out = Zeroizing::new(String::with_capacity(text.len() + 4096));
    let mut at = 0;
    for e in edits.iter() {
        let Some(before) = text.get(at..e.start) else {
            return Err(file_err(
                path,
                format!(
                    "cannot update {} in place: it overlaps another value",
                    e.field
                ),
            ));
        };
        out.push_str(before);
        out.push_str(&e.text);
        at = e.end;
    }
    out.push_str(text.get(at..).unwrap_or_default());
    Ok(out)
}

/// Parses the edited text again: the current user (and cluster) must hold exactly the new
/// values, the documents with those fields removed must be equal, and the new key must appear
/// once.
fn check(
    path: &Path,
    before: &str,
    after: &str,
    edits: &[Edit],
    key_b64: Option<&str>,
) -> Result<(), Error> {
    let refuse = |why: String| {
        file_err(
            path,
            format!("the in-place edit could not be verified ({why}); the file was not changed"),
        )
    };
    let kc = Kubeconfig::from_slice(path, after.as_bytes())
        .map_err(|e| refuse(format!("the result does not parse: {e}")))?;
    let (ui, ci) = current_indices(path, &kc).map_err(|e| refuse(e.to_string()))?;
    for e in edits {
        let value = match (e.section, e.field) {
            ("users", CERT_DATA) if e.index == ui => {
                kc.users[ui].user.client_certificate_data.as_deref()
            }
            ("users", KEY_DATA) if e.index == ui => kc.users[ui].user.client_key_data.as_deref(),
            ("clusters", CA_DATA) if e.index == ci => kc.clusters[ci]
                .cluster
                .certificate_authority_data
                .as_deref(),
            _ => None,
        };
        let ok = value
            .and_then(|v| crate::kubeconfig::decode(path, e.field, v).ok())
            .is_some_and(|v| v.as_slice() == e.want.as_slice());
        if !ok {
            return Err(refuse(format!(
                "the current context's {} is not the new value",
                e.field
            )));
        }
    }
    if let Some(k) = key_b64
        && after.matches(k).count() != 1
    {
        return Err(refuse("the new key does not appear exactly once".into()));
    }
    let mut a: serde_json::Value = kubepki_csr::yaml::from_str(before)
        .map_err(|e| refuse(format!("the original does not parse: {e}")))?;
    let mut b: serde_json::Value = match kubepki_csr::yaml::from_str(after) {
        Ok(v) => v,
        Err(e) => {
            wipe(&mut a);
            return Err(refuse(format!("the result does not parse: {e}")));
        }
    };
    for e in edits {
        for doc in [&mut a, &mut b] {
            if let Some(m) = doc
                .get_mut(e.section)
                .and_then(|s| s.get_mut(e.index))
                .and_then(|s| {
                    s.get_mut(if e.section == "users" {
                        "user"
                    } else {
                        "cluster"
                    })
                })
                .and_then(serde_json::Value::as_object_mut)
                && let Some(mut v) = m.remove(e.field)
            {
                wipe(&mut v);
            }
        }
    }
    let same = a == b;
    wipe(&mut a);
    wipe(&mut b);
    if !same {
        return Err(refuse(
            "other parts of the file would change too; is the value shared through a YAML anchor?"
                .into(),
        ));
    }
    Ok(())
}

/// Overwrites every string of a parsed document (it may hold private keys) before it is freed.
fn wipe(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => s.zeroize(),
        serde_json::Value::Array(a) => a.iter_mut().for_each(wipe),
        serde_json::Value::Object(m) => m.values_mut().for_each(wipe),
        _ => {}
    }
}

/// A referenced certificate or key file must be an existing regular file (not a symbolic link:
/// the new one replaces it by rename, which would replace the link, not its target).
fn check_referenced(path: &Path, field: &str, p: &Path) -> Result<(), Error> {
    let why = match std::fs::symlink_metadata(p) {
        Ok(m) if m.file_type().is_symlink() => Some(
            "is a symbolic link; kubepki replaces files by rename and will not replace a link (point the kubeconfig at the file itself)"
                .to_owned(),
        ),
        Ok(m) if !m.is_file() => Some("is not a regular file".to_owned()),
        Ok(_) => None,
        Err(e) => Some(e.to_string()),
    };
    match why {
        Some(w) => Err(file_err(
            path,
            format!("the current user's {field} {}: {w}", p.display()),
        )),
        None => Ok(()),
    }
}

/// Whether two paths name the same file (compared resolved when both exist).
pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}
