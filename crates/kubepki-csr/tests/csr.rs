//! PKCS#10 round trips, OpenSSL-made requests, tampering, and the API server's manifest rules.

use kubepki_csr::{
    BasicConstraints, Csr, CsrBuilder, Error, ExtKeyUsage, KeyUsage, KubeCsr, Subject, Usage,
};
use kubepki_keys::{KeyAlgorithm, PrivateKey};

macro_rules! vector {
    ($name:literal) => {
        include_bytes!(concat!("../../../tests/data/", $name)).as_slice()
    };
}

type R = Result<(), Error>;
type Mutation = Box<dyn Fn(&mut KubeCsr)>;

fn user_csr() -> Result<Csr, Error> {
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256)?;
    CsrBuilder::new(Subject::cn("jane").with_organizations(["dev", "ops"]))
        .dns("jane.example.com")
        .ip(std::net::Ipv4Addr::new(10, 0, 0, 5).into())
        .ip(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).into())
        .uri("spiffe://cluster/jane")
        .email("jane@example.com")
        .key_usage(KeyUsage::DIGITAL_SIGNATURE)
        .ext_key_usage(vec![ExtKeyUsage::ClientAuth])
        .basic_constraints(BasicConstraints::default())
        .sign(&key)
}

#[test]
fn built_csr_round_trips_with_every_field() -> R {
    let csr = user_csr()?;
    let back = Csr::from_pem(csr.to_pem().as_bytes())?;
    assert_eq!(back.to_der(), csr.to_der());
    assert_eq!(back.common_name(), Some("jane"));
    let mut orgs = back.organizations().to_vec();
    orgs.sort();
    assert_eq!(orgs, ["dev", "ops"]);
    let san = back.subject_alt_names();
    assert_eq!(san.dns, ["jane.example.com"]);
    assert_eq!(
        san.ips.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
        ["10.0.0.5", "2001:db8::1"]
    );
    assert_eq!(san.uris, ["spiffe://cluster/jane"]);
    assert_eq!(san.emails, ["jane@example.com"]);
    let ext = back.requested_extensions();
    assert_eq!(ext.key_usage, Some((KeyUsage::DIGITAL_SIGNATURE, true)));
    assert_eq!(
        ext.ext_key_usage.as_deref(),
        Some([ExtKeyUsage::ClientAuth].as_slice())
    );
    assert_eq!(ext.basic_constraints.map(|b| b.0.ca), Some(false));
    Ok(())
}

#[test]
fn every_key_algorithm_signs_a_csr() -> R {
    for alg in KeyAlgorithm::ALL {
        let key = PrivateKey::generate(alg)?;
        let csr = CsrBuilder::new(Subject::cn("x")).sign(&key)?;
        assert_eq!(csr.public_key_der(), key.public_key_der());
        assert_eq!(csr.signature_algorithm(), key.signature_algorithm().oid());
    }
    Ok(())
}

#[test]
fn reads_openssl_requests() -> R {
    let csr = Csr::from_pem(vector!("csr/openssl-jane.csr"))?;
    assert_eq!(csr.common_name(), Some("jane"));
    assert_eq!(csr.organizations(), ["dev", "ops"]);
    let san = csr.subject_alt_names();
    assert_eq!(san.dns, ["jane.example.com"]);
    assert_eq!(san.ips.len(), 2);
    assert_eq!(san.emails, ["jane@example.com"]);
    assert_eq!(san.uris, ["spiffe://cluster/jane"]);
    assert_eq!(
        csr.requested_extensions().key_usage,
        Some((KeyUsage::DIGITAL_SIGNATURE, true))
    );
    let plain = Csr::from_pem(vector!("csr/openssl-p256-plain.csr"))?;
    assert!(plain.subject_alt_names().is_empty());
    Ok(())
}

#[test]
fn bad_requests_are_refused() {
    assert!(matches!(
        Csr::from_pem(vector!("csr/tampered-signature.csr")),
        Err(Error::BadSignature)
    ));
    assert!(matches!(
        Csr::from_pem(vector!("keys/cert-not-a-key.crt")),
        Err(Error::NoCsr { found }) if found == "\"CERTIFICATE\""
    ));
    assert!(matches!(
        Csr::from_der(b"\x30\x03\x02\x01\x00"),
        Err(Error::Der { .. })
    ));
    let empty = PrivateKey::generate(KeyAlgorithm::EcdsaP256)
        .map_err(Error::from)
        .and_then(|k| CsrBuilder::new(Subject::default()).sign(&k));
    assert!(matches!(empty, Err(Error::Invalid(_))));
}

fn manifest() -> Result<KubeCsr, Error> {
    Ok(KubeCsr::new(
        "jane",
        &user_csr()?,
        "kubernetes.io/kube-apiserver-client",
        &[
            Usage::DigitalSignature,
            Usage::KeyEncipherment,
            Usage::ClientAuth,
        ],
        Some(86400),
    ))
}

#[test]
fn manifest_yaml_and_json_round_trip_and_validate() -> R {
    let m = manifest()?;
    let yaml = m.to_yaml()?;
    assert!(yaml.starts_with("apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata:\n  name: jane\nspec:\n  request: "));
    assert!(yaml.contains("\n  signerName: kubernetes.io/kube-apiserver-client\n  expirationSeconds: 86400\n  usages:\n  - digital signature\n  - key encipherment\n  - client auth\n"));
    let from_yaml = KubeCsr::from_slice(yaml.as_bytes())?;
    assert_eq!(from_yaml, m);
    let from_json = KubeCsr::from_slice(m.to_json()?.as_bytes())?;
    assert_eq!(from_json, m);
    let csr = from_yaml.validate()?;
    assert_eq!(csr.common_name(), Some("jane"));
    Ok(())
}

#[test]
fn manifest_rules_each_reject_a_violation() -> R {
    let field_of = |m: &KubeCsr| match m.validate() {
        Err(Error::Validation { field, .. }) => field,
        _ => "accepted",
    };
    let base = manifest()?;
    assert_eq!(field_of(&base), "accepted");
    let cases: Vec<(&str, Mutation)> = vec![
        (
            "spec.signerName",
            Box::new(|m| m.spec.signer_name = String::new()),
        ),
        (
            "spec.signerName",
            Box::new(|m| m.spec.signer_name = "no-slash".into()),
        ),
        (
            "spec.signerName",
            Box::new(|m| m.spec.signer_name = "a.io/b/c".into()),
        ),
        (
            "spec.signerName",
            Box::new(|m| m.spec.signer_name = "Upper.IO/x".into()),
        ),
        (
            "spec.signerName",
            Box::new(|m| m.spec.signer_name = format!("{}.io/x", "a".repeat(250))),
        ),
        (
            "spec.signerName",
            Box::new(|m| m.spec.signer_name = format!("a.io/{}", "x".repeat(570))),
        ),
        (
            "spec.signerName",
            Box::new(|m| m.spec.signer_name = "kubernetes.io/legacy-unknown".into()),
        ),
        ("spec.usages", Box::new(|m| m.spec.usages.clear())),
        (
            "spec.usages",
            Box::new(|m| m.spec.usages.push("client auth".into())),
        ),
        (
            "spec.usages",
            Box::new(|m| m.spec.usages.push("clientAuth".into())),
        ),
        (
            "spec.expirationSeconds",
            Box::new(|m| m.spec.expiration_seconds = Some(599)),
        ),
        ("spec.request", Box::new(|m| m.spec.request = String::new())),
        (
            "spec.request",
            Box::new(|m| m.spec.request = "!!not base64!!".into()),
        ),
        (
            "spec.request",
            Box::new(|m| {
                use base64::Engine as _;
                m.spec.request = base64::engine::general_purpose::STANDARD.encode(include_bytes!(
                    "../../../tests/data/keys/cert-not-a-key.crt"
                ));
            }),
        ),
        (
            "spec.request",
            Box::new(|m| {
                use base64::Engine as _;
                m.spec.request = base64::engine::general_purpose::STANDARD.encode(include_bytes!(
                    "../../../tests/data/csr/tampered-signature.csr"
                ));
            }),
        ),
        (
            "metadata.name",
            Box::new(|m| m.metadata.name = "Jane".into()),
        ),
        (
            "apiVersion",
            Box::new(|m| m.api_version = "certificates.k8s.io/v1beta1".into()),
        ),
        ("kind", Box::new(|m| m.kind = "ConfigMap".into())),
    ];
    for (field, mutate) in cases {
        let mut m = base.clone();
        mutate(&mut m);
        assert_eq!(field_of(&m), field);
    }
    // 600 is the minimum and is accepted.
    let mut m = base.clone();
    m.spec.expiration_seconds = Some(600);
    assert_eq!(field_of(&m), "accepted");
    Ok(())
}

#[test]
fn malformed_manifests_are_errors_not_panics() {
    for input in [
        &b"spec: [1, 2"[..],
        b"spec: 3\n",
        b"{\"spec\": ",
        b"\xff\xfe\x00",
        b"a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n",
    ] {
        assert!(matches!(KubeCsr::from_slice(input), Err(Error::Manifest(_))), "{:?}", String::from_utf8_lossy(input));
    }
}

/// A manifest as `kubectl get csr jane -o yaml` prints it after `kubectl certificate approve`:
/// server-side fields and `managedFields`, whose `fieldsV1` make it the deepest YAML kubepki
/// meets in practice (9 levels; the parser's cap, `kubepki_csr::yaml::MAX_DEPTH`, is 24).
#[test]
fn manifest_as_kubectl_prints_it_with_managed_fields_is_read() -> R {
    let m = manifest()?;
    let yaml = m.to_yaml()?;
    let server_fields = r#"  creationTimestamp: "2026-12-01T10:00:00Z"
  managedFields:
  - apiVersion: certificates.k8s.io/v1
    fieldsType: FieldsV1
    fieldsV1:
      f:spec:
        f:expirationSeconds: {}
        f:request: {}
        f:signerName: {}
        f:usages: {}
    manager: kubectl-create
    operation: Update
    time: "2026-12-01T10:00:00Z"
  - apiVersion: certificates.k8s.io/v1
    fieldsType: FieldsV1
    fieldsV1:
      f:status:
        f:conditions:
          .: {}
          k:{"type":"Approved"}:
            .: {}
            f:lastTransitionTime: {}
            f:lastUpdateTime: {}
            f:message: {}
            f:reason: {}
            f:status: {}
            f:type: {}
    manager: kubectl
    operation: Update
    subresource: approval
    time: "2026-12-01T10:01:00Z"
  name: jane
  resourceVersion: "4711"
  uid: 5a7c3f2e-3f1d-4b0a-9d6e-2c1b0a9f8e7d
"#;
    let printed = yaml.replacen("  name: jane\n", server_fields, 1)
        + r#"status:
  conditions:
  - lastTransitionTime: "2026-12-01T10:01:00Z"
    lastUpdateTime: "2026-12-01T10:01:00Z"
    message: This CSR was approved by kubectl certificate approve.
    reason: KubectlApprove
    status: "True"
    type: Approved
"#;
    let back = KubeCsr::from_slice(printed.as_bytes())?;
    assert_eq!(back.metadata.name, "jane");
    assert_eq!(back.spec, m.spec);
    // The server's fields are kept as they were, down to the deepest one, and written back.
    let approved = back
        .metadata
        .other
        .get("managedFields")
        .and_then(|f| f.pointer("/1/fieldsV1/f:status/f:conditions/k:{\"type\":\"Approved\"}"));
    assert_eq!(
        approved.and_then(|a| a.as_object()).map(|a| a.len()),
        Some(7)
    );
    assert_eq!(KubeCsr::from_slice(back.to_yaml()?.as_bytes())?, back);
    let conditions = back.status.as_ref().map(|s| s.conditions.as_slice());
    assert_eq!(conditions.map(<[_]>::len), Some(1));
    let first = conditions.and_then(<[_]>::first);
    assert_eq!(first.map(|c| c.kind.as_str()), Some("Approved"));
    assert_eq!(
        first.and_then(|c| c.reason.as_deref()),
        Some("KubectlApprove")
    );
    assert_eq!(back.validate()?.common_name(), Some("jane"));
    Ok(())
}

/// Every string gives an object name the API server accepts: made from all short strings over an
/// alphabet of the awkward characters (capitals, separators, dots, non-ASCII, a character whose
/// lower case is two characters), and from long runs of each.
#[test]
fn object_name_is_always_a_valid_object_name() {
    let alphabet = [
        'a', 'Z', '9', '-', '.', '/', ':', ' ', '@', 'é', 'İ', '日', '_',
    ];
    let mut inputs: Vec<String> = vec![String::new()];
    for _ in 0..4 {
        let longer: Vec<String> = inputs
            .iter()
            .filter(|s| s.chars().count() == inputs.last().map_or(0, |l| l.chars().count()))
            .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
            .collect();
        inputs.extend(longer);
    }
    for c in alphabet {
        inputs.push(c.to_string().repeat(300));
        inputs.push(format!("{}.", c.to_string().repeat(70)).repeat(5));
    }
    assert!(inputs.len() > 30_000);
    for s in &inputs {
        let name = kubepki_csr::object_name(s);
        assert!(
            kubepki_csr::check_dns_subdomain(&name).is_ok(),
            "{s:?} -> {name:?}"
        );
    }
}

#[test]
fn names_that_are_only_descriptions_write_no_san_extension() -> R {
    // `SubjectAltNames::others` (an otherName read from a request, say) are descriptions and
    // are never encoded: a request with nothing else carries no SubjectAltName at all, never
    // an empty GeneralNames `30 00` (RFC 5280 4.2.1.6: SIZE (1..MAX)).
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256)?;
    let only_other = kubepki_csr::SubjectAltNames {
        others: vec!["otherName".into()],
        ..Default::default()
    };
    let csr = CsrBuilder::new(Subject::cn("jane"))
        .subject_alt_names(only_other.clone())
        .sign(&key)?;
    assert_eq!(csr.requested_extensions().subject_alt_names, None);
    assert!(csr.requested_extensions().all.is_empty());
    // With no subject either, there is nothing to request.
    assert!(matches!(
        CsrBuilder::new(Subject::default())
            .subject_alt_names(only_other)
            .sign(&key),
        Err(Error::Invalid(_))
    ));
    Ok(())
}
