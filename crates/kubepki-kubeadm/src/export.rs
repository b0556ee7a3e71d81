//! The export sinks: a [`Tree`] as a POSIX tar, as Cluster API "custom certificates" Secrets,
//! or as one JSON document (docs/init.md, "Exports"). Every export of a tree holding private
//! keys is secret material: the caller says so and writes it 0600 at most.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::error::{Error, invalid};
use crate::memtree::{Tree, TreeFile};

/// Mode of the folders in a tar export (what the folder writer creates them with).
const DIR_MODE: u32 = 0o755;
const BLOCK: usize = 512;

/// The JSON export: `{"files": [{"path", "mode", "text"}]}`, mode as an octal string.
#[derive(Serialize)]
struct JsonOut<'a> {
    files: Vec<JsonFileOut<'a>>,
}

#[derive(Serialize)]
struct JsonFileOut<'a> {
    path: &'a str,
    mode: String,
    text: &'a str,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonIn {
    files: Vec<JsonFileIn>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonFileIn {
    path: String,
    mode: String,
    text: String,
}

/// The Cluster API Secrets of a tree ([`Tree::to_capi_secrets`]).
#[derive(Debug)]
#[non_exhaustive]
pub struct CapiSecrets {
    /// Multi-document YAML, one `v1/Secret` per document (`kubectl apply -f` takes it).
    pub yaml: Zeroizing<String>,
    /// The names of the Secrets in `yaml`, in order.
    pub names: Vec<String>,
    /// Secrets left out because the tree lacks their certificate (the etcd CA with external
    /// etcd, say), each with the file it lacks.
    pub skipped: Vec<(String, String)>,
}

impl Tree {
    /// The tree as a POSIX (ustar) archive: a folder entry (0755) before the first file in
    /// it, then each file with its mode, owner 0:0 and modification time `mtime`. Extracting it
    /// (`tar -xf`) gives the layout kubeadm uses under `/etc/kubernetes`.
    pub fn to_tar(&self, mtime: OffsetDateTime) -> Result<Zeroizing<Vec<u8>>, Error> {
        let mtime = u64::try_from(mtime.unix_timestamp()).unwrap_or(0);
        // Sized once (folder headers counted generously), so that no reallocation leaves a
        // copy of a key behind.
        let cap: usize = self
            .files()
            .map(|f| {
                (2 + f.path.matches('/').count()) * BLOCK + f.bytes.len().div_ceil(BLOCK) * BLOCK
            })
            .sum::<usize>()
            + 2 * BLOCK;
        let mut out = Zeroizing::new(Vec::with_capacity(cap));
        let mut dirs: Vec<String> = Vec::new();
        for f in self.files() {
            let mut at = 0;
            while let Some(i) = f.path[at..].find('/') {
                let dir = format!("{}/", &f.path[..at + i]);
                if !dirs.contains(&dir) {
                    out.extend_from_slice(&tar_header(&dir, DIR_MODE, 0, mtime, b'5')?);
                    dirs.push(dir);
                }
                at += i + 1;
            }
            let size = u64::try_from(f.bytes.len()).unwrap_or(u64::MAX);
            out.extend_from_slice(&tar_header(&f.path, f.mode, size, mtime, b'0')?);
            out.extend_from_slice(&f.bytes);
            let pad = (BLOCK - f.bytes.len() % BLOCK) % BLOCK;
            let len = out.len();
            out.resize(len + pad, 0);
        }
        // The end of the archive: two zero blocks.
        let len = out.len();
        out.resize(len + 2 * BLOCK, 0);
        Ok(out)
    }

    /// The tree as one JSON document, `{"files": [{"path": "pki/ca.crt", "mode": "0644",
    /// "text": "-----BEGIN CERTIFICATE-----..."}]}`, in the tree's order. [`Tree::from_json`]
    /// reads it back.
    pub fn to_json(&self) -> Result<Zeroizing<String>, Error> {
        let mut files = Vec::with_capacity(self.len());
        for f in self.files() {
            let text = std::str::from_utf8(&f.bytes)
                .map_err(|_| invalid(f.path.clone(), "is not UTF-8 text"))?;
            files.push(JsonFileOut {
                path: &f.path,
                mode: format!("{:04o}", f.mode),
                text,
            });
        }
        serde_json::to_string_pretty(&JsonOut { files })
            .map(|mut s| {
                s.push('\n');
                Zeroizing::new(s)
            })
            .map_err(|e| invalid("json", e))
    }

    /// Reads a tree written by [`Tree::to_json`] (paths and modes are checked as by
    /// [`Tree::insert`]).
    pub fn from_json(text: &str) -> Result<Tree, Error> {
        let doc: JsonIn = serde_json::from_str(text).map_err(|e| invalid("json tree", e))?;
        let mut tree = Tree::new();
        for f in doc.files {
            let text = Zeroizing::new(f.text);
            let mode = u32::from_str_radix(&f.mode, 8).map_err(|_| {
                invalid(
                    format!("json tree: {}", f.path),
                    format!("mode \"{}\" is not an octal number", f.mode),
                )
            })?;
            tree.insert(f.path, text.as_bytes().to_vec(), mode)?;
        }
        Ok(tree)
    }

    /// The Secrets Cluster API takes for user-provided certificates ("Using Custom
    /// Certificates" in the Cluster API book): `<cluster>-ca`, `<cluster>-etcd` and
    /// `<cluster>-proxy` with `tls.crt` and `tls.key` (the key left out for a keyless, external
    /// CA), `<cluster>-sa` with `sa.pub` as `tls.crt` and `sa.key` as `tls.key`, and
    /// `<cluster>-kubeconfig` with `admin.conf` under `value`; each of type
    /// `cluster.x-k8s.io/secret` and labelled `cluster.x-k8s.io/cluster-name: <cluster>`.
    /// `cluster` is kubeadm's `clusterName`: a lower-case RFC 1123 subdomain of at most 63
    /// characters (it is also a label value).
    pub fn to_capi_secrets(&self, cluster: &str) -> Result<CapiSecrets, Error> {
        kubepki_csr::check_dns_subdomain(cluster).map_err(|e| invalid("clusterName", e))?;
        if cluster.len() > 63 {
            return Err(invalid(
                "clusterName",
                format!("\"{cluster}\" is longer than 63 characters (a label value)"),
            ));
        }
        let secrets: [(&str, &[(&str, &str)]); 5] = [
            (
                "ca",
                &[("tls.crt", "pki/ca.crt"), ("tls.key", "pki/ca.key")],
            ),
            (
                "etcd",
                &[
                    ("tls.crt", "pki/etcd/ca.crt"),
                    ("tls.key", "pki/etcd/ca.key"),
                ],
            ),
            (
                "proxy",
                &[
                    ("tls.crt", "pki/front-proxy-ca.crt"),
                    ("tls.key", "pki/front-proxy-ca.key"),
                ],
            ),
            (
                "sa",
                &[("tls.crt", "pki/sa.pub"), ("tls.key", "pki/sa.key")],
            ),
            ("kubeconfig", &[("value", "admin.conf")]),
        ];
        let mut yaml = Zeroizing::new(String::new());
        let mut names = Vec::new();
        let mut skipped = Vec::new();
        for (suffix, keys) in secrets {
            let name = format!("{cluster}-{suffix}");
            let first = keys[0].1;
            if self.get(first).is_none() {
                skipped.push((name, first.to_owned()));
                continue;
            }
            let data: Vec<(&str, &TreeFile)> = keys
                .iter()
                .filter_map(|(k, p)| self.get(p).map(|f| (*k, f)))
                .collect();
            yaml.push_str(&secret_yaml(&name, cluster, &data));
            names.push(name);
        }
        Ok(CapiSecrets {
            yaml,
            names,
            skipped,
        })
    }
}

/// One Secret document; names are RFC 1123 (checked), so they need no quoting in YAML.
fn secret_yaml(name: &str, cluster: &str, data: &[(&str, &TreeFile)]) -> String {
    let mut s = format!(
        "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  labels:\n    cluster.x-k8s.io/cluster-name: {cluster}\ntype: cluster.x-k8s.io/secret\ndata:\n"
    );
    for (key, file) in data {
        s.push_str(&format!("  {key}: {}\n", B64.encode(&file.bytes)));
    }
    s
}

/// One ustar header block (POSIX.1-1988, `pax` in POSIX.1-2001 keeps it): `name` fits the
/// 100-byte field ([`Tree::insert`] checks that).
fn tar_header(
    name: &str,
    mode: u32,
    size: u64,
    mtime: u64,
    kind: u8,
) -> Result<[u8; BLOCK], Error> {
    let mut h = [0u8; BLOCK];
    if name.len() > 100 {
        return Err(invalid(
            format!("tree path \"{name}\""),
            "longer than 100 bytes",
        ));
    }
    if size >= 0o77777777777 {
        return Err(invalid(name, "too large for a tar entry"));
    }
    let octal = |h: &mut [u8; BLOCK], at: usize, len: usize, v: u64| {
        let text = format!("{v:0width$o}", width = len - 1);
        h[at..at + len - 1].copy_from_slice(text.as_bytes());
    };
    h[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut h, 100, 8, u64::from(mode));
    octal(&mut h, 108, 8, 0); // uid
    octal(&mut h, 116, 8, 0); // gid
    octal(&mut h, 124, 12, size);
    octal(&mut h, 136, 12, mtime);
    h[156] = kind;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[265..269].copy_from_slice(b"root");
    h[297..301].copy_from_slice(b"root");
    // The checksum: the byte sum with its own field as spaces, six octal digits, NUL, space.
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..154].copy_from_slice(format!("{sum:06o}").as_bytes());
    h[154] = 0;
    h[155] = b' ';
    Ok(h)
}
