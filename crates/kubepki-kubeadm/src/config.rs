//! kubeadm's own config files: multi-document YAML with `InitConfiguration` and
//! `ClusterConfiguration` (`kubeadm.k8s.io/v1beta3` and `v1beta4`), applied onto a
//! [`ClusterSpec`]. Fields that shape the PKI are read; every other field and kind is ignored
//! with a warning; a malformed value is an error naming the document and field.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use kubepki_ca::{DEFAULT_CA_VALIDITY, DEFAULT_LEAF_VALIDITY};
use serde_json::{Map, Value};

use crate::error::{Error, Reason};
use crate::spec::ClusterSpec;
use crate::version::KubernetesVersion;

const GROUP: &str = "kubeadm.k8s.io";

/// The fields read, per kind (dotted paths). Everything else is reported as ignored.
const INIT_FIELDS: &[&str] = &[
    "localAPIEndpoint.advertiseAddress",
    "localAPIEndpoint.bindPort",
    "nodeRegistration.name",
];
const CLUSTER_FIELDS: &[&str] = &[
    "controlPlaneEndpoint",
    "networking.serviceSubnet",
    "networking.dnsDomain",
    "apiServer.certSANs",
    "etcd.local.serverCertSANs",
    "etcd.local.peerCertSANs",
    "etcd.external",
    "certificatesDir",
    "clusterName",
    "encryptionAlgorithm",
    "certificateValidityPeriod",
    "caCertificateValidityPeriod",
    "kubernetesVersion",
    "featureGates.PublicKeysECDSA",
    "featureGates.ControlPlaneKubeletLocalMode",
];
/// Fields only v1beta4 has.
const V1BETA4_ONLY: &[&str] = &[
    "encryptionAlgorithm",
    "certificateValidityPeriod",
    "caCertificateValidityPeriod",
];

/// Reads a kubeadm config file and applies it onto `spec`. Returns the warnings (ignored kinds
/// and fields). `spec.kubernetes_version` is taken from the file when it sets one.
pub fn apply_config_file(spec: &mut ClusterSpec, path: &Path) -> Result<Vec<String>, Error> {
    let bytes = kubepki_files::read_limited(path).map_err(|e| match e {
        e @ (kubepki_files::Error::Io { .. }
        | kubepki_files::Error::Step { .. }
        | kubepki_files::Error::Refused { .. }) => Error::Config {
            path: e.path().to_owned(),
            reason: Reason::Read(Box::new(e)),
        },
        other => Error::Config {
            path: path.to_owned(),
            reason: Reason::Files(Box::new(other)),
        },
    })?;
    apply_config(spec, path, &bytes)
}

/// Like [`apply_config_file`], from bytes already read; `path` is used in messages.
pub fn apply_config(
    spec: &mut ClusterSpec,
    path: &Path,
    input: &[u8],
) -> Result<Vec<String>, Error> {
    let err = |reason: String| Error::Config {
        path: path.to_owned(),
        reason: reason.into(),
    };
    let text = std::str::from_utf8(input).map_err(|_| err("is not UTF-8 text".into()))?;
    let docs: Vec<Value> = kubepki_csr::yaml::from_multiple(text)
        .map_err(|e| err(format!("is not valid YAML: {e}")))?;
    let mut warnings = Vec::new();
    let mut seen_init = false;
    let mut seen_cluster = false;
    let mut api_version: Option<String> = None;
    let mut public_keys_ecdsa = false;
    for (n, doc) in docs.iter().enumerate() {
        let n = n + 1;
        let Value::Object(map) = doc else {
            return Err(err(format!("document {n} is not a mapping")));
        };
        let kind = map.get("kind").and_then(Value::as_str).unwrap_or_default();
        let av = map
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if kind.is_empty() || av.is_empty() {
            return Err(err(format!(
                "document {n} has no apiVersion and kind; kubeadm needs both"
            )));
        }
        let Some(version) = av.strip_prefix(&format!("{GROUP}/")) else {
            warnings.push(format!(
                "{}: ignoring document {n} ({av} {kind}): not kubeadm's",
                path.display()
            ));
            continue;
        };
        if version != "v1beta3" && version != "v1beta4" {
            return Err(err(format!(
                "document {n}: {av} is not supported (kubepki reads kubeadm.k8s.io/v1beta3 and v1beta4; run `kubeadm config migrate` on older files)"
            )));
        }
        match &api_version {
            Some(v) if v != version => {
                return Err(err(format!(
                    "document {n} is {av} but an earlier one is {GROUP}/{v}; use one version"
                )));
            }
            _ => api_version = Some(version.to_owned()),
        }
        let doc = Doc {
            path,
            kind,
            n,
            v1beta4: version == "v1beta4",
        };
        match kind {
            "InitConfiguration" => {
                if std::mem::replace(&mut seen_init, true) {
                    return Err(err(format!("document {n}: a second InitConfiguration")));
                }
                doc.walk(map, "", INIT_FIELDS, &mut warnings)?;
                doc.apply_init(spec, map)?;
            }
            "ClusterConfiguration" => {
                if std::mem::replace(&mut seen_cluster, true) {
                    return Err(err(format!("document {n}: a second ClusterConfiguration")));
                }
                doc.walk(map, "", CLUSTER_FIELDS, &mut warnings)?;
                doc.apply_cluster(spec, map, &mut warnings)?;
                public_keys_ecdsa |= doc.get(map, "featureGates.PublicKeysECDSA").is_some();
            }
            other => warnings.push(format!(
                "{}: ignoring document {n} ({other}): kubepki reads InitConfiguration and ClusterConfiguration",
                path.display()
            )),
        }
    }
    if !seen_init && !seen_cluster {
        return Err(err(
            "holds neither an InitConfiguration nor a ClusterConfiguration".into(),
        ));
    }
    let v = spec.kubernetes_version;
    if api_version.as_deref() == Some("v1beta3") && !v.accepts_v1beta3() {
        return Err(err(format!(
            "kubeadm.k8s.io/v1beta3 was removed in kubeadm 1.37 (#136016) and {v} refuses it; convert the file to v1beta4 (`kubeadm config migrate`) or set kubernetesVersion to 1.36 or older"
        )));
    }
    if public_keys_ecdsa && !v.accepts_v1beta3() {
        return Err(err(format!(
            "featureGates.PublicKeysECDSA: the gate was removed in kubeadm 1.37 (#136016) and {v} refuses it as an unknown feature gate; use encryptionAlgorithm: ECDSA-P256"
        )));
    }
    if api_version.as_deref() == Some("v1beta3") {
        // v1beta3 has no validity fields; kubeadm's conversion to its internal type fills both
        // with the defaults (8760h, 87600h), so NotAfter is the creation time + default, as with
        // v1beta4 (docs/init.md, "Inputs").
        spec.certificate_validity = Some(DEFAULT_LEAF_VALIDITY);
        spec.ca_certificate_validity = Some(DEFAULT_CA_VALIDITY);
    } else if api_version.as_deref() == Some("v1beta4")
        && !spec.kubernetes_version.accepts_v1beta4()
    {
        return Err(err(format!(
            "kubeadm.k8s.io/v1beta4 needs kubernetesVersion 1.31 or newer, not {}",
            spec.kubernetes_version
        )));
    }
    Ok(warnings)
}

struct Doc<'a> {
    path: &'a Path,
    kind: &'a str,
    n: usize,
    v1beta4: bool,
}

impl Doc<'_> {
    fn field_err(&self, field: &str, reason: impl std::fmt::Display) -> Error {
        Error::Config {
            path: self.path.to_owned(),
            reason: format!("{}.{field}: {reason}", self.kind).into(),
        }
    }

    /// Reports fields outside `known` as ignored; errors when a known map is not a map.
    fn walk(
        &self,
        map: &Map<String, Value>,
        prefix: &str,
        known: &[&str],
        warnings: &mut Vec<String>,
    ) -> Result<(), Error> {
        for (k, v) in map {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            if prefix.is_empty() && (k == "apiVersion" || k == "kind") {
                continue;
            }
            if known.contains(&path.as_str()) {
                if !self.v1beta4 && V1BETA4_ONLY.contains(&path.as_str()) {
                    return Err(self.field_err(
                        &path,
                        "exists only in kubeadm.k8s.io/v1beta4 (this document is v1beta3)",
                    ));
                }
                continue;
            }
            let inner = format!("{path}.");
            if known.iter().any(|f| f.starts_with(&inner)) {
                match v {
                    Value::Object(m) => self.walk(m, &path, known, warnings)?,
                    Value::Null => {}
                    other => {
                        return Err(self.field_err(
                            &path,
                            format!("expected a mapping, found {}", type_name(other)),
                        ));
                    }
                }
                continue;
            }
            warnings.push(format!(
                "{}: document {} ({}): ignoring {path} (it does not shape certificates)",
                self.path.display(),
                self.n,
                self.kind
            ));
        }
        Ok(())
    }

    fn get<'m>(&self, map: &'m Map<String, Value>, field: &str) -> Option<&'m Value> {
        let mut cur = map;
        let mut parts = field.split('.').peekable();
        while let Some(p) = parts.next() {
            let v = cur.get(p)?;
            if parts.peek().is_none() {
                return (!v.is_null()).then_some(v);
            }
            cur = v.as_object()?;
        }
        None
    }

    fn string(&self, map: &Map<String, Value>, field: &str) -> Result<Option<String>, Error> {
        match self.get(map, field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.field_err(
                field,
                format!("expected a string, found {}", type_name(other)),
            )),
        }
    }

    fn strings(&self, map: &Map<String, Value>, field: &str) -> Result<Option<Vec<String>>, Error> {
        match self.get(map, field) {
            None => Ok(None),
            Some(Value::Array(a)) => a
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(self.field_err(
                        &format!("{field}[{i}]"),
                        format!("expected a string, found {}", type_name(other)),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(self.field_err(
                field,
                format!("expected a list of strings, found {}", type_name(other)),
            )),
        }
    }

    fn apply_init(&self, spec: &mut ClusterSpec, map: &Map<String, Value>) -> Result<(), Error> {
        if let Some(a) = self.string(map, "localAPIEndpoint.advertiseAddress")?
            && !a.is_empty()
        {
            let ip: IpAddr = a.trim().parse().map_err(|_| {
                self.field_err(
                    "localAPIEndpoint.advertiseAddress",
                    format!("\"{a}\" is not an IP address"),
                )
            })?;
            spec.advertise_address = Some(ip);
        }
        match self.get(map, "localAPIEndpoint.bindPort") {
            None => {}
            Some(Value::Number(n)) => match n.as_u64() {
                Some(p @ 1..=65535) => spec.bind_port = p as u16,
                _ => {
                    return Err(self.field_err(
                        "localAPIEndpoint.bindPort",
                        format!("{n} is not a port (1 to 65535)"),
                    ));
                }
            },
            Some(other) => {
                return Err(self.field_err(
                    "localAPIEndpoint.bindPort",
                    format!("expected a port number, found {}", type_name(other)),
                ));
            }
        }
        if let Some(n) = self.string(map, "nodeRegistration.name")?
            && !n.is_empty()
        {
            spec.node_name = Some(n);
        }
        Ok(())
    }

    fn apply_cluster(
        &self,
        spec: &mut ClusterSpec,
        map: &Map<String, Value>,
        warnings: &mut Vec<String>,
    ) -> Result<(), Error> {
        if let Some(v) = self.string(map, "kubernetesVersion")? {
            spec.kubernetes_version = v.parse::<KubernetesVersion>().map_err(|e| {
                let reason = match e {
                    Error::Invalid { reason, .. } => reason,
                    other => Reason::from(other),
                };
                self.field_err("kubernetesVersion", reason)
            })?;
        }
        if let Some(v) = self.string(map, "controlPlaneEndpoint")?
            && !v.is_empty()
        {
            spec.control_plane_endpoint = Some(v);
        }
        if let Some(v) = self.string(map, "networking.serviceSubnet")?
            && !v.is_empty()
        {
            spec.service_subnet = v;
        }
        if let Some(v) = self.string(map, "networking.dnsDomain")?
            && !v.is_empty()
        {
            spec.dns_domain = v;
        }
        if let Some(v) = self.strings(map, "apiServer.certSANs")? {
            spec.cert_sans = v;
        }
        if let Some(v) = self.strings(map, "etcd.local.serverCertSANs")? {
            spec.etcd_server_cert_sans = v;
        }
        if let Some(v) = self.strings(map, "etcd.local.peerCertSANs")? {
            spec.etcd_peer_cert_sans = v;
        }
        match self.get(map, "etcd.external") {
            None => {}
            Some(Value::Object(_)) => {
                spec.external_etcd = true;
                if self.get(map, "etcd.local").is_some() {
                    return Err(self
                        .field_err("etcd", "local and external are both set; kubeadm takes one"));
                }
            }
            Some(other) => {
                return Err(self.field_err(
                    "etcd.external",
                    format!("expected a mapping, found {}", type_name(other)),
                ));
            }
        }
        if let Some(v) = self.string(map, "certificatesDir")?
            && !v.is_empty()
        {
            spec.cert_dir = PathBuf::from(v);
        }
        if let Some(v) = self.string(map, "clusterName")?
            && !v.is_empty()
        {
            spec.cluster_name = v;
        }
        if let Some(v) = self.string(map, "encryptionAlgorithm")?
            && !v.is_empty()
        {
            spec.encryption_algorithm = v
                .parse()
                .map_err(|e| self.field_err("encryptionAlgorithm", e))?;
        }
        match self.get(map, "featureGates.PublicKeysECDSA") {
            None => {}
            Some(Value::Bool(b)) => {
                // The deprecated gate wins over encryptionAlgorithm when set (`docs/compatibility.md` §3).
                spec.encryption_algorithm = if *b {
                    kubepki_keys::KeyAlgorithm::EcdsaP256
                } else {
                    kubepki_keys::KeyAlgorithm::Rsa2048
                };
                warnings.push(format!(
                    "{}: featureGates.PublicKeysECDSA is deprecated; it selects {}",
                    self.path.display(),
                    spec.encryption_algorithm
                ));
            }
            Some(other) => {
                return Err(self.field_err(
                    "featureGates.PublicKeysECDSA",
                    format!("expected true or false, found {}", type_name(other)),
                ));
            }
        }
        match self.get(map, "featureGates.ControlPlaneKubeletLocalMode") {
            None => {}
            // Whether the version knows the gate is checked with the plan (a flag may still
            // change the version).
            Some(Value::Bool(b)) => spec.kubelet_local_mode = Some(*b),
            Some(other) => {
                return Err(self.field_err(
                    "featureGates.ControlPlaneKubeletLocalMode",
                    format!("expected true or false, found {}", type_name(other)),
                ));
            }
        }
        for (field, slot) in [
            ("certificateValidityPeriod", &mut spec.certificate_validity),
            (
                "caCertificateValidityPeriod",
                &mut spec.ca_certificate_validity,
            ),
        ] {
            if let Some(v) = self.string(map, field)? {
                *slot = Some(kubepki_ca::parse_duration(&v).map_err(|e| self.field_err(field, e))?);
            }
        }
        Ok(())
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}
