//! The offline CSR-API signer: every refusal names its rule and nothing is issued; valid
//! requests for each signer get exactly the fields kube-controller-manager gives (`docs/compatibility.md` §7).

use std::net::IpAddr;

use kubepki_ca::{BACKDATE, CaSpec, CertificateAuthority, Error, SignerName, sign_request};
use kubepki_csr::{
    BasicConstraints, CsrBuilder, ExtKeyUsage, KeyUsage, KubeCsr, Subject, SubjectAltNames, Usage,
};
use kubepki_keys::{KeyAlgorithm, PrivateKey};
use time::{Duration, OffsetDateTime};

type R = Result<(), Box<dyn std::error::Error>>;

fn ca(now: OffsetDateTime) -> Result<CertificateAuthority, Box<dyn std::error::Error>> {
    Ok(CertificateAuthority::create_root(
        &CaSpec::kubeadm("kubernetes", now, Duration::hours(87600)),
        PrivateKey::generate(KeyAlgorithm::EcdsaP256)?,
    )?)
}

struct Req {
    subject: Subject,
    sans: SubjectAltNames,
    signer: &'static str,
    usages: Vec<&'static str>,
    expiration: Option<i64>,
    ca_true: bool,
    cert_sign: bool,
}

fn node(name: &str) -> Subject {
    Subject::cn(format!("system:node:{name}")).with_organizations(["system:nodes"])
}

fn base(signer: SignerName) -> Req {
    let (subject, sans, usages) = match signer {
        SignerName::KubeApiserverClient => (
            Subject::cn("jane").with_organizations(["dev"]),
            SubjectAltNames::default(),
            vec!["digital signature", "key encipherment", "client auth"],
        ),
        SignerName::KubeApiserverClientKubelet => (
            node("worker1"),
            SubjectAltNames::default(),
            vec!["digital signature", "key encipherment", "client auth"],
        ),
        _ => (
            node("worker1"),
            SubjectAltNames {
                dns: vec!["worker1".into()],
                ips: vec![IpAddr::from([10, 0, 0, 21])],
                ..SubjectAltNames::default()
            },
            vec!["digital signature", "key encipherment", "server auth"],
        ),
    };
    Req {
        subject,
        sans,
        signer: signer.name(),
        usages,
        expiration: None,
        ca_true: false,
        cert_sign: false,
    }
}

fn manifest(r: &Req) -> Result<(KubeCsr, PrivateKey), Box<dyn std::error::Error>> {
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256)?;
    let mut b = CsrBuilder::new(r.subject.clone()).subject_alt_names(r.sans.clone());
    if r.ca_true {
        b = b.basic_constraints(BasicConstraints {
            ca: true,
            path_len: None,
        });
    }
    if r.cert_sign {
        b = b.key_usage(KeyUsage::KEY_CERT_SIGN);
    }
    let csr = b.sign(&key)?;
    let mut m = KubeCsr::new("req", &csr, r.signer, &[Usage::ClientAuth], r.expiration);
    m.spec.usages = r.usages.iter().map(|s| s.to_string()).collect();
    Ok((m, key))
}

#[test]
fn refusals_name_their_rule() -> R {
    let now = OffsetDateTime::now_utc();
    let ca = ca(now)?;
    use SignerName::*;
    let cases: Vec<(&str, Req, &str)> = vec![
        (
            "CA:TRUE",
            Req {
                ca_true: true,
                ..base(KubeApiserverClient)
            },
            "no-ca",
        ),
        (
            "keyCertSign",
            Req {
                cert_sign: true,
                ..base(KubeApiserverClient)
            },
            "no-ca",
        ),
        (
            "serving CN",
            Req {
                subject: Subject::cn("worker1").with_organizations(["system:nodes"]),
                ..base(KubeletServing)
            },
            "common-name",
        ),
        (
            "serving O",
            Req {
                subject: Subject::cn("system:node:w").with_organizations(["system:nodes", "x"]),
                ..base(KubeletServing)
            },
            "organization",
        ),
        (
            "serving no O",
            Req {
                subject: Subject::cn("system:node:w"),
                ..base(KubeletServing)
            },
            "organization",
        ),
        (
            "serving email",
            Req {
                sans: SubjectAltNames {
                    dns: vec!["w".into()],
                    emails: vec!["a@b.c".into()],
                    ..Default::default()
                },
                ..base(KubeletServing)
            },
            "subject-alt-names",
        ),
        (
            "serving URI",
            Req {
                sans: SubjectAltNames {
                    dns: vec!["w".into()],
                    uris: vec!["spiffe://x/y".into()],
                    ..Default::default()
                },
                ..base(KubeletServing)
            },
            "subject-alt-names",
        ),
        (
            "serving no SAN",
            Req {
                sans: SubjectAltNames::default(),
                ..base(KubeletServing)
            },
            "subject-alt-names",
        ),
        (
            "client-kubelet DNS",
            Req {
                sans: SubjectAltNames {
                    dns: vec!["w".into()],
                    ..Default::default()
                },
                ..base(KubeApiserverClientKubelet)
            },
            "subject-alt-names",
        ),
        (
            "client-kubelet IP",
            Req {
                sans: SubjectAltNames {
                    ips: vec![IpAddr::from([10, 0, 0, 1])],
                    ..Default::default()
                },
                ..base(KubeApiserverClientKubelet)
            },
            "subject-alt-names",
        ),
        (
            "client usages",
            Req {
                usages: vec!["client auth", "server auth"],
                ..base(KubeApiserverClient)
            },
            "usages",
        ),
        (
            "client without client auth",
            Req {
                usages: vec!["digital signature"],
                ..base(KubeApiserverClient)
            },
            "usages",
        ),
        (
            "serving usages",
            Req {
                usages: vec!["key encipherment", "server auth"],
                ..base(KubeletServing)
            },
            "usages",
        ),
        (
            "kubelet cert sign",
            Req {
                usages: vec!["digital signature", "client auth", "cert sign"],
                ..base(KubeApiserverClientKubelet)
            },
            "usages",
        ),
        (
            "duplicate usages",
            Req {
                usages: vec!["client auth", "client auth"],
                ..base(KubeApiserverClient)
            },
            "spec.usages",
        ),
        (
            "expirationSeconds 599",
            Req {
                expiration: Some(599),
                ..base(KubeApiserverClient)
            },
            "spec.expirationSeconds",
        ),
        (
            "legacy-unknown",
            Req {
                signer: "kubernetes.io/legacy-unknown",
                ..base(KubeApiserverClient)
            },
            "spec.signerName",
        ),
        (
            "unknown signer",
            Req {
                signer: "example.com/my-signer",
                ..base(KubeApiserverClient)
            },
            "signer",
        ),
    ];
    for (what, req, rule) in cases {
        let (m, _) = manifest(&req)?;
        match sign_request(&ca, &m, Duration::hours(8760), now) {
            Ok(_) => return Err(format!("{what}: issued").into()),
            Err(Error::Policy { rule: r, detail }) => assert_eq!(r, rule, "{what}: {detail}"),
            Err(e) => assert!(e.to_string().contains(&format!("{rule}:")), "{what}: {e}"),
        }
    }
    // A CSR whose signature does not verify: the CN changed after signing.
    let (mut m, _) = manifest(&base(KubeApiserverClient))?;
    let good = kubepki_csr::Csr::from_pem(&base64_decode(&m.spec.request)?)?;
    let mut der = good.to_der().to_vec();
    let at = der.windows(4).position(|w| w == b"jane").ok_or("no CN")?;
    der[at + 1] = b'b';
    m.spec.request =
        base64_encode(kubepki_keys::pem::encode("CERTIFICATE REQUEST", &der).as_bytes());
    let e = sign_request(&ca, &m, Duration::hours(8760), now)
        .err()
        .ok_or("bad signature accepted")?;
    assert!(
        matches!(
            &e,
            Error::Csr(kubepki_csr::Error::Validation {
                field: "spec.request",
                rule: kubepki_csr::ValidationRule::Request(r),
            }) if matches!(**r, kubepki_csr::Error::BadSignature)
        ),
        "{e}"
    );
    Ok(())
}

fn base64_decode(s: &str) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    use base64::Engine as _;
    Ok(base64::engine::general_purpose::STANDARD.decode(s)?)
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[test]
fn valid_requests_get_exactly_the_signer_fields() -> R {
    let now = OffsetDateTime::now_utc();
    let now = now - Duration::nanoseconds(i64::from(now.nanosecond()));
    let ca = ca(now - Duration::days(1))?;
    for signer in [
        SignerName::KubeApiserverClient,
        SignerName::KubeApiserverClientKubelet,
        SignerName::KubeletServing,
    ] {
        let mut req = base(signer);
        if signer == SignerName::KubeApiserverClient {
            req.sans = SubjectAltNames {
                emails: vec!["jane@example.com".into()],
                uris: vec!["spiffe://cluster/jane".into()],
                ..Default::default()
            };
        }
        let (m, key) = manifest(&req)?;
        let cert = sign_request(&ca, &m, Duration::hours(8760), now)?;
        assert_eq!(cert.subject_der(), req.subject.to_der()?, "{signer}");
        assert_eq!(cert.subject_alt_names().dns, req.sans.dns);
        assert_eq!(cert.subject_alt_names().ips, req.sans.ips);
        assert_eq!(cert.subject_alt_names().emails, req.sans.emails);
        assert_eq!(cert.subject_alt_names().uris, req.sans.uris);
        assert_eq!(
            cert.key_usage(),
            Some(KeyUsage::DIGITAL_SIGNATURE.union(KeyUsage::KEY_ENCIPHERMENT))
        );
        let want = if signer == SignerName::KubeletServing {
            ExtKeyUsage::ServerAuth
        } else {
            ExtKeyUsage::ClientAuth
        };
        assert_eq!(cert.ext_key_usage(), Some(&[want.clone()][..]));
        assert!(!cert.is_ca() && cert.subject_key_id().is_none());
        assert_eq!(cert.authority_key_id(), ca.certificate().subject_key_id());
        assert_eq!(cert.not_before(), now - BACKDATE);
        assert_eq!(cert.not_after(), now + Duration::hours(8760) - BACKDATE);
        assert!(
            cert.serial().len() >= 15,
            "128-bit serial: {}",
            cert.serial_hex()
        );
        assert!(key.matches_public_key(cert.public_key_der()));
        ca.verify(&cert, Some(&want), now)?;
    }
    // TTL: expirationSeconds when shorter, floored at 10 min; short TTLs are not cut by the backdate.
    let mut req = base(SignerName::KubeApiserverClient);
    req.usages = vec!["client auth"];
    req.expiration = Some(3600);
    let (m, _) = manifest(&req)?;
    let cert = sign_request(&ca, &m, Duration::hours(8760), now)?;
    assert_eq!(cert.not_after(), now + Duration::hours(1));
    assert!(
        cert.key_usage().is_none(),
        "no usage bits: no KeyUsage extension, as Go"
    );
    req.expiration = None;
    let (m, _) = manifest(&req)?;
    let cert = sign_request(&ca, &m, Duration::hours(24), now)?;
    assert_eq!(cert.not_after(), now + Duration::hours(24) - BACKDATE);
    // Clamped to the CA's NotAfter.
    let cert = sign_request(&ca, &m, Duration::hours(24 * 365 * 20), now)?;
    assert_eq!(cert.not_after(), ca.certificate().not_after());
    // A CA that has expired signs nothing.
    let e = sign_request(&ca, &m, Duration::hours(24), now + Duration::days(3700))
        .err()
        .ok_or("expired CA signed")?;
    assert!(
        matches!(
            e,
            Error::Policy {
                rule: "signer-expired",
                ..
            }
        ),
        "{e}"
    );
    Ok(())
}
