//! `kubepki inspect`: what a file is and what it says (never private key material).

use std::path::Path;

use kubepki_ca::{Certificate, rfc3339};
use kubepki_csr::{Csr, Extensions, KubeCsr};
use kubepki_keys::{PrivateKey, describe_public_key, oids, pem};
use kubepki_kubeadm::FileKind;
use serde_json::{Value, json};

use crate::cmd::{Format, read};
use crate::errors::CliError;

/// Runs `inspect` on one file.
pub fn run(path: &Path, format: Format) -> Result<(), CliError> {
    let data = read(path)?;
    let err = |msg: String| CliError::File {
        path: path.to_owned(),
        msg,
    };
    let value = describe(path, &data).map_err(err)?;
    match format {
        Format::Json => {
            let text =
                serde_json::to_string_pretty(&value).map_err(|e| CliError::Other(e.to_string()))?;
            outln!("{}", crate::out::json(&text))?;
        }
        Format::Text => out!("{}", to_text(&value, 0))?,
    }
    // A kubeconfig kubectl could not use is described, then reported as an error.
    if let Some(problems) = value["problems"].as_array() {
        let all: Vec<&str> = problems.iter().filter_map(Value::as_str).collect();
        if !all.is_empty() {
            return Err(err(format!("kubeconfig not usable: {}", all.join("; "))));
        }
    }
    // A manifest the API server would reject is described, then reported as an error.
    if value["validation"]["valid"] == json!(false) {
        return Err(err(format!(
            "invalid CertificateSigningRequest: {}",
            value["validation"]["error"].as_str().unwrap_or_default()
        )));
    }
    Ok(())
}

fn describe(path: &Path, data: &[u8]) -> Result<Value, String> {
    let kind = kubepki_kubeadm::file_kind(data);
    if kind == FileKind::Pem {
        let blocks = pem::decode_all(data).map_err(|e| e.to_string())?;
        let Some(first) = blocks.first() else {
            return Err("no PEM block found".into());
        };
        return match first.label() {
            "CERTIFICATE" => Certificate::from_der(first.contents())
                .map(|c| cert_json(&c))
                .map_err(|e| e.to_string()),
            "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST" => Csr::from_der(first.contents())
                .map(|c| csr_json(&c))
                .map_err(|e| e.to_string()),
            "PUBLIC KEY" => describe_public_key(first.contents())
                .map(|d| {
                    json!({"type": "public key", "algorithm": d,
                           "sha256": kubepki_keys::sha256_hex(first.contents())})
                })
                .map_err(|e| e.to_string()),
            _ => PrivateKey::from_pem(data)
                .map(|k| key_json(&k))
                .map_err(|e| e.to_string()),
        };
    }
    if kind == FileKind::Kubeconfig {
        // Files it names are read relative to it, as kubectl does; no key or token is shown.
        let report = kubepki_kubeadm::describe_kubeconfig(path, data).map_err(|e| match e {
            kubepki_kubeadm::Error::File { reason, .. } => reason.to_string(),
            other => other.to_string(),
        })?;
        let mut v = serde_json::Map::new();
        v.insert("type".into(), json!("kubeconfig"));
        if let Value::Object(m) = serde_json::to_value(&report).map_err(|e| e.to_string())? {
            v.extend(m);
        }
        return Ok(Value::Object(v));
    }
    if let FileKind::CsrManifest { .. } = kind {
        let m = KubeCsr::from_slice(data).map_err(|e| e.to_string())?;
        return Ok(manifest_json(&m));
    }
    if let Ok(c) = Certificate::from_der(data) {
        return Ok(cert_json(&c));
    }
    if let Ok(c) = Csr::from_der(data) {
        return Ok(csr_json(&c));
    }
    if let Ok(k) = PrivateKey::from_der(data) {
        return Ok(key_json(&k));
    }
    Err("not a certificate, certificate request, private key, kubeconfig or CertificateSigningRequest manifest (PEM or DER)".into())
}

fn colon_hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn extensions_json(e: &Extensions) -> Value {
    let mut m = serde_json::Map::new();
    if let Some((ku, crit)) = e.key_usage {
        m.insert(
            "keyUsage".into(),
            json!({"critical": crit, "usages": ku.names()}),
        );
    }
    if let Some(ekus) = &e.ext_key_usage {
        m.insert(
            "extendedKeyUsage".into(),
            json!(ekus.iter().map(|x| x.name()).collect::<Vec<_>>()),
        );
    }
    if let Some((bc, crit)) = e.basic_constraints {
        m.insert(
            "basicConstraints".into(),
            json!({"critical": crit, "ca": bc.ca, "pathLen": bc.path_len}),
        );
    }
    if let Some(ski) = &e.subject_key_id {
        m.insert("subjectKeyIdentifier".into(), json!(colon_hex(ski)));
    }
    if let Some(aki) = &e.authority_key_id {
        m.insert("authorityKeyIdentifier".into(), json!(colon_hex(aki)));
    }
    if let Some(san) = &e.subject_alt_names {
        m.insert(
            "subjectAltNames".into(),
            json!({
                "dns": san.dns, "ip": san.ips.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
                "uri": san.uris, "email": san.emails, "other": san.others,
            }),
        );
    }
    let others: Vec<Value> = e
        .all
        .iter()
        .filter(|(oid, _)| {
            !matches!(
                oid.to_string().as_str(),
                "2.5.29.14" | "2.5.29.15" | "2.5.29.17" | "2.5.29.19" | "2.5.29.35" | "2.5.29.37"
            )
        })
        .map(|(oid, crit)| json!({"oid": oid.to_string(), "critical": crit}))
        .collect();
    if !others.is_empty() {
        m.insert("other".into(), Value::Array(others));
    }
    Value::Object(m)
}

fn cert_json(c: &Certificate) -> Value {
    json!({
        "type": "certificate",
        "version": c.version(),
        "serial": c.serial_hex(),
        "signatureAlgorithm": oids::name(&c.signature_algorithm()),
        "issuer": c.issuer().to_string(),
        "subject": c.subject().to_string(),
        "commonName": c.common_name(),
        "organizations": c.organizations(),
        "notBefore": rfc3339(c.not_before()),
        "notAfter": rfc3339(c.not_after()),
        "publicKey": describe_public_key(c.public_key_der()).unwrap_or_else(|e| e.to_string()),
        "isCA": c.is_ca(),
        "extensions": extensions_json(c.extensions()),
        "sha256Fingerprint": colon_hex(&kubepki_keys::sha256(c.to_der())),
        "publicKeyPin": c.public_key_pin(),
    })
}

fn csr_json(c: &Csr) -> Value {
    json!({
        "type": "certificate request",
        "subject": c.subject().to_string(),
        "commonName": c.common_name(),
        "organizations": c.organizations(),
        "publicKey": describe_public_key(c.public_key_der()).unwrap_or_else(|e| e.to_string()),
        "signatureAlgorithm": oids::name(&c.signature_algorithm()),
        "signature": "valid",
        "requestedExtensions": extensions_json(c.requested_extensions()),
    })
}

fn key_json(k: &PrivateKey) -> Value {
    json!({
        "type": "private key",
        "algorithm": k.algorithm().name(),
        "pemType": k.pem_label(),
        "publicKeySha256": kubepki_keys::sha256_hex(k.public_key_der()),
    })
}

fn manifest_json(m: &KubeCsr) -> Value {
    let validation = match m.validate() {
        Ok(csr) => json!({"valid": true, "request": csr_json(&csr)}),
        Err(e) => json!({"valid": false, "error": e.to_string()}),
    };
    json!({
        "type": "CertificateSigningRequest",
        "name": m.metadata.name,
        "signerName": m.spec.signer_name,
        "expirationSeconds": m.spec.expiration_seconds,
        "usages": m.spec.usages,
        "issued": m.status.as_ref().and_then(|s| s.certificate.as_ref()).is_some(),
        "validation": validation,
    })
}

fn to_text(v: &Value, indent: usize) -> String {
    let pad = "  ".repeat(indent);
    let mut out = String::new();
    match v {
        Value::Object(m) => {
            for (k, val) in m {
                match val {
                    Value::Object(_) => {
                        out.push_str(&format!(
                            "{pad}{}:\n{}",
                            crate::out::esc(k),
                            to_text(val, indent + 1)
                        ));
                    }
                    Value::Array(items) if items.iter().any(|i| i.is_object()) => {
                        out.push_str(&format!("{pad}{}:\n", crate::out::esc(k)));
                        for i in items {
                            out.push_str(&format!("{pad}  -\n{}", to_text(i, indent + 2)));
                        }
                    }
                    Value::Array(items) if items.is_empty() => {}
                    Value::Null => {}
                    _ => out.push_str(&format!("{pad}{}: {}\n", crate::out::esc(k), scalar(val))),
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other))),
    }
    out
}

fn scalar(v: &Value) -> String {
    match v {
        // What the file says, for a person: a name with a newline stays on its line.
        Value::String(s) => crate::out::esc(s).into_owned(),
        Value::Array(items) => items.iter().map(scalar).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}
