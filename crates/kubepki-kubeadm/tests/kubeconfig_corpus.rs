//! `certs renew` on odd-but-valid kubeconfigs (tests/data/kubeconfigs, made by its `make.py`):
//! each file is either renewed — the current user holds a new certificate and key, every byte
//! outside the replaced values is as it was, and the files the user references hold the new
//! certificate and key — or refused with the expected reason and no file changed.

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use kubepki_ca::{Certificate, CertificateAuthority};
use kubepki_keys::PrivateKey;
use kubepki_kubeadm::{
    Kubeconfig, KubeconfigId, Plan, RenewStatus, RenewTarget, Selection, init_tree, renew,
    resolve_reference,
};
use time::{Duration, OffsetDateTime, macros::datetime};

mod common;
use common::{snapshot, spec_in};

type R = Result<(), Box<dyn std::error::Error>>;
type Res<T> = Result<T, Box<dyn std::error::Error>>;

const T0: OffsetDateTime = datetime!(2026-08-19 09:08:30 UTC);

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/kubeconfigs")
}

/// The values the markers of the templates stand for (see make.py).
struct Values {
    dir: String,
    ca: String,
    cert: String,
    key: String,
    stale_ca: String,
}

fn chunks(s: &str, n: usize) -> Vec<&str> {
    s.as_bytes()
        .chunks(n)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect()
}

/// Fills the markers: `cur` gives the current user's values (the old ones for the input, the
/// new ones for the expected output) and whether the multi-line forms become one line.
fn fill(template: &str, v: &Values, cur: Option<(&str, &str, &str)>) -> Res<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find('@') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        // A marker is `@NAME@` or `@NAME:N@` (NAME in capitals); any other `@` is text.
        let marker = after.find('@').map(|j| &after[..j]).filter(|m| {
            let name = m.split(':').next().unwrap_or_default();
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
        });
        let Some(marker) = marker else {
            out.push('@');
            rest = after;
            continue;
        };
        rest = &after[marker.len() + 1..];
        let (name, indent) = match marker.split_once(':') {
            Some((n, k)) => (n, k.parse::<usize>()?),
            None => (marker, 0),
        };
        let pad = " ".repeat(indent);
        let text = match (name, cur) {
            ("DIR", _) => v.dir.clone(),
            ("CA", _) => v.ca.clone(),
            ("CERT", _) => v.cert.clone(),
            ("KEY", _) => v.key.clone(),
            ("STALE_CA", _) => v.stale_ca.clone(),
            ("CUR_CERT", None) => v.cert.clone(),
            ("CUR_KEY", None) => v.key.clone(),
            ("CUR_STALE_CA", None) => v.stale_ca.clone(),
            ("CUR_KEY_BLOCK", None) => chunks(&v.key, 64).join(&format!("\n{pad}")),
            ("CUR_CERT_BLOCK", None) => chunks(&v.cert, 64).join(&format!("\n{pad}")),
            ("CUR_CERT_DQ", None) => chunks(&v.cert, 64).join(&format!("\\\n{pad}")),
            ("CUR_CERT" | "CUR_CERT_DQ" | "CUR_CERT_BLOCK", Some((c, _, _))) => c.to_owned(),
            ("CUR_KEY" | "CUR_KEY_BLOCK", Some((_, k, _))) => k.to_owned(),
            ("CUR_STALE_CA", Some((_, _, ca))) => ca.to_owned(),
            _ => return Err(format!("unknown marker @{marker}@").into()),
        };
        out.push_str(&text);
    }
    out.push_str(rest);
    Ok(out)
}

fn compact(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

#[test]
fn every_odd_kubeconfig_is_renewed_exactly_or_refused_untouched() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let s = spec_in(d, "cp1");
    let plan = Plan::new(&s)?;
    init_tree(&plan, &Selection::all(), T0, false)?;
    let pki = snapshot(&s.cert_dir)?;
    let admin = d.join("admin.conf");
    let kc = Kubeconfig::from_slice(&admin, &fs::read(&admin)?)?;
    let old_cert_pem = kc.current_client_cert_pem(&admin)?.ok_or("no cert")?;
    let old_key_pem = kc.current_client_key_pem(&admin)?.ok_or("no key")?;
    let old_cert = Certificate::from_pem(&old_cert_pem)?;
    let ca_pem = fs::read(d.join("pki/ca.crt"))?;
    let ca = CertificateAuthority::from_certificate(Certificate::from_pem(&ca_pem)?)?;
    let v = Values {
        dir: d.display().to_string(),
        ca: B64.encode(&ca_pem),
        cert: B64.encode(&old_cert_pem),
        key: B64.encode(old_key_pem.as_slice()),
        stale_ca: B64.encode(fs::read(d.join("pki/front-proxy-ca.crt"))?),
    };
    let client_files = [
        (d.join("admin-client.crt"), old_cert_pem.clone()),
        (d.join("admin-client.key"), old_key_pem.to_vec()),
        (d.join("admin-client.pem"), {
            let mut b = old_cert_pem.clone();
            b.extend_from_slice(&old_key_pem);
            b
        }),
    ];
    let now = T0 + Duration::days(300);

    let expected = fs::read_to_string(corpus().join("expected.tsv"))?;
    let mut seen = 0;
    let mut renewed = 0;
    for line in expected.lines().filter(|l| !l.is_empty()) {
        let mut f = line.split('\t');
        let name = f.next().ok_or("name")?;
        let verdict = f.next().ok_or("verdict")?;
        let fragment = f.next().unwrap_or_default();
        let template = fs::read_to_string(corpus().join(format!("{name}.conf.in")))?;
        let input = fill(&template, &v, None)?;
        fs::write(&admin, &input)?;
        for (p, c) in &client_files {
            fs::write(p, c)?;
        }
        let link = d.join("admin-client-link.key");
        if fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink("admin-client.key", &link)?;
        }
        let before = snapshot(d)?;
        let (done, _) = renew(
            &s,
            &[RenewTarget::Kubeconfig(KubeconfigId::Admin)],
            None,
            now,
        )?;
        let status = &done.first().ok_or("no report")?.status;
        seen += 1;
        match verdict {
            "refuse" => {
                let RenewStatus::Failed { reason } = status else {
                    return Err(format!("{name}: not refused: {status:?}").into());
                };
                assert!(reason.contains(fragment), "{name}: {reason}");
                assert!(reason.contains("admin.conf"), "{name}: {reason}");
                assert!(snapshot(d)? == before, "{name}: a file changed");
            }
            "renew" => {
                assert!(
                    matches!(status, RenewStatus::Renewed { .. }),
                    "{name}: {status:?}"
                );
                renewed += 1;
                let out = fs::read(&admin)?;
                let kc = Kubeconfig::from_slice(&admin, &out)?;
                // The current user's credentials, through the reader every command uses.
                let cert =
                    Certificate::from_pem(&kc.current_client_cert_pem(&admin)?.ok_or("no cert")?)?;
                let key =
                    PrivateKey::from_pem(&kc.current_client_key_pem(&admin)?.ok_or("no key")?)?;
                assert_ne!(cert.to_der(), old_cert.to_der(), "{name}");
                assert_eq!(cert.subject_der(), old_cert.subject_der(), "{name}");
                assert_eq!(cert.not_after(), now + Duration::hours(8760), "{name}");
                ca.check_issued(&cert)?;
                assert!(key.matches_public_key(cert.public_key_der()), "{name}");
                assert_eq!(kc.current_ca_pem(&admin)?, ca_pem, "{name}");
                // Every byte outside the current user's values is as it was.
                let (_, user) = kc.current(&admin)?;
                let new_cert = compact(user.user.client_certificate_data.as_deref().unwrap_or(""));
                let new_key = compact(user.user.client_key_data.as_deref().unwrap_or(""));
                let want = fill(&template, &v, Some((&new_cert, &new_key, &v.ca)))?;
                assert!(
                    out == want.as_bytes(),
                    "{name}: the bytes outside the replaced values changed"
                );
                if !new_key.is_empty() {
                    assert_eq!(String::from_utf8(out)?.matches(&new_key).count(), 1);
                }
                // Referenced files hold the new credentials; nothing else changed.
                let referenced: Vec<PathBuf> =
                    [&user.user.client_certificate, &user.user.client_key]
                        .into_iter()
                        .flatten()
                        .filter(|p| !p.is_empty())
                        .map(|p| resolve_reference(&admin, p))
                        .map(|p| fs::canonicalize(p).unwrap_or_default())
                        .collect();
                let after = snapshot(d)?;
                for (p, old) in &before {
                    let changed = after.get(p) != Some(old);
                    let canon = fs::canonicalize(p)?;
                    let expected = p == &admin || referenced.contains(&canon);
                    if p == &admin && want == input {
                        assert!(!changed, "{name}: admin.conf changed");
                    } else {
                        assert_eq!(changed, expected, "{name}: {}", p.display());
                    }
                    if expected && p != &admin {
                        let bytes = after.get(p).ok_or("gone")?;
                        if let Ok(c) = Certificate::from_pem(bytes) {
                            assert_eq!(c.to_der(), cert.to_der(), "{name}");
                        }
                        if let Ok(k) = PrivateKey::from_pem(bytes) {
                            assert!(k.matches_public_key(cert.public_key_der()), "{name}");
                        }
                    }
                }
                assert_eq!(after.len(), before.len(), "{name}: files appeared");
            }
            other => return Err(format!("{name}: unknown verdict {other}").into()),
        }
    }
    assert!(
        seen >= 30 && renewed >= 20,
        "{seen} files, {renewed} renewed"
    );
    // The tree's own files were never touched by these renewals.
    assert!(snapshot(&s.cert_dir)? == pki, "a file under pki/ changed");
    Ok(())
}
