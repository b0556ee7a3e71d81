//! The hostile request corpus of `tests/data/hostile/requests/` (made by its `make.py`): requests
//! that other readers (Go's `x509`/`pem`, OpenSSL, the API server) would read differently than a
//! lenient kubepki, and manifests whose status or requester fields must not be trusted. Each
//! is refused with its exact reason, or read the way Go reads it.

use kubepki_csr::{Csr, Error, KubeCsr, NotSignable, ValidationRule};
use kubepki_keys::PemProblem;

macro_rules! vector {
    ($name:literal) => {
        include_bytes!(concat!("../../../tests/data/hostile/requests/", $name)).as_slice()
    };
}

type R = Result<(), Error>;

fn validation(m: &KubeCsr) -> (String, String) {
    match m.validate() {
        Err(Error::Validation { field, rule }) => (field.to_owned(), rule.to_string()),
        other => ("not a validation error".into(), format!("{other:?}")),
    }
}

/// The rule `spec.request` breaks, if that is the error.
fn request_rule(m: &KubeCsr) -> Option<ValidationRule> {
    match m.validate() {
        Err(Error::Validation {
            field: "spec.request",
            rule,
        }) => Some(rule),
        _ => None,
    }
}

#[test]
fn two_extension_request_values_are_refused() -> R {
    let e = Csr::from_pem(vector!("csr--two-extension-request-values.csr")).err();
    assert!(
        matches!(e, Some(Error::ExtensionRequestValues { count: 2 })),
        "{e:?}"
    );
    assert_eq!(
        e.map(|e| e.to_string()).unwrap_or_default(),
        "the certificate request's extensionRequest attribute has 2 values; exactly one is allowed (readers disagree on which one counts)"
    );
    let m = KubeCsr::from_slice(vector!("manifest--two-extension-request-values.yaml"))?;
    let rule = request_rule(&m);
    assert!(
        matches!(&rule, Some(ValidationRule::Request(e)) if matches!(**e, Error::ExtensionRequestValues { count: 2 })),
        "{rule:?}"
    );
    Ok(())
}

#[test]
fn two_extension_request_attributes_are_refused() -> R {
    let e = Csr::from_pem(vector!("csr--two-extension-request-attributes.csr")).err();
    assert!(
        matches!(e, Some(Error::ExtensionRequestAttributes { count: 2 })),
        "{e:?}"
    );
    let m = KubeCsr::from_slice(vector!("manifest--two-extension-request-attributes.yaml"))?;
    let rule = request_rule(&m);
    assert!(
        matches!(&rule, Some(ValidationRule::Request(e)) if matches!(**e, Error::ExtensionRequestAttributes { count: 2 })),
        "{rule:?}"
    );
    Ok(())
}

#[test]
fn a_duplicate_extension_is_refused_as_go_refuses_it() {
    let e = Csr::from_pem(vector!("csr--duplicate-extension.csr")).err();
    assert!(
        matches!(&e, Some(Error::DuplicateExtension { oid }) if oid == "2.5.29.17"),
        "{e:?}"
    );
}

#[test]
fn duplicate_other_attributes_are_ignored_as_go_ignores_them() -> R {
    // Two challengePassword attributes: Go's parser ignores attributes other than
    // extensionRequest, and nothing is issued from them; the request reads as its one
    // extensionRequest says.
    let csr = Csr::from_pem(vector!("csr--two-challenge-passwords.csr"))?;
    assert_eq!(csr.subject_alt_names().dns, ["n1.example"]);
    assert!(csr.subject_alt_names().ips.is_empty());
    Ok(())
}

#[test]
fn a_header_line_inside_a_pem_body_is_refused() -> R {
    let e = Csr::from_pem(vector!("csr--header-in-body-then-second-block.pem")).err();
    assert_eq!(
        e.map(|e| e.to_string()).unwrap_or_default(),
        "malformed PEM: line 3: block \"CERTIFICATE REQUEST\" has a header line inside its body (headers are allowed only directly after BEGIN)"
    );
    let m = KubeCsr::from_slice(vector!("manifest--header-in-body-then-second-block.yaml"))?;
    let rule = request_rule(&m);
    assert!(
        matches!(
            &rule,
            Some(ValidationRule::Pem(kubepki_keys::Error::Pem(
                PemProblem::HeaderInBody { .. }
            )))
        ),
        "{rule:?}"
    );
    Ok(())
}

#[test]
fn spec_request_holds_exactly_one_pem_block() -> R {
    let m = KubeCsr::from_slice(vector!("manifest--two-blocks.yaml"))?;
    assert_eq!(
        validation(&m),
        (
            "spec.request".to_owned(),
            "malformed PEM: 2 blocks (\"CERTIFICATE REQUEST\", \"CERTIFICATE REQUEST\") where exactly one is expected".to_owned()
        )
    );
    Ok(())
}

#[test]
fn denied_failed_and_issued_manifests_are_not_signable() -> R {
    let cases = [
        (
            vector!("manifest--denied.yaml"),
            NotSignable::Denied {
                reason: Some("NotOurUser".into()),
            },
            "the request was denied (status.conditions has Denied, reason NotOurUser); a denied request is never signed",
        ),
        (
            vector!("manifest--failed.yaml"),
            NotSignable::Failed {
                reason: Some("SignerValidationFailure".into()),
            },
            "the request has failed (status.conditions has Failed, reason SignerValidationFailure); a failed request is never signed",
        ),
        (
            vector!("manifest--issued.yaml"),
            NotSignable::AlreadyIssued,
            "the request was already issued (status.certificate is set); signing again would replace that certificate",
        ),
    ];
    for (bytes, want, text) in cases {
        let m = KubeCsr::from_slice(bytes)?;
        // Each is otherwise a valid request: only its status refuses it.
        m.validate()?;
        let got = m.check_signable().err();
        assert!(
            matches!(&got, Some(Error::NotSignable(g)) if *g == want),
            "{want:?}: {got:?}"
        );
        assert_eq!(got.map(|e| e.to_string()).unwrap_or_default(), text);
    }
    // A Failed condition that is not True does not stop the signer (kube-controller-manager's
    // rule).
    let mut m = KubeCsr::from_slice(vector!("manifest--failed.yaml"))?;
    if let Some(s) = m.status.as_mut() {
        s.conditions[0].status = "False".into();
    }
    m.check_signable()?;
    Ok(())
}

#[test]
fn requester_fields_are_removed_from_the_issued_manifest() -> R {
    let mut m = KubeCsr::from_slice(vector!("manifest--requester-fields.yaml"))?;
    assert!(m.has_requester_fields());
    assert_eq!(m.spec.username.as_deref(), Some("kubernetes-admin"));
    assert_eq!(m.spec.groups, ["system:masters", "system:authenticated"]);
    assert_eq!(m.spec.extra.get("scopes").map(Vec::len), Some(1));
    m.set_issued(
        "-----BEGIN CERTIFICATE-----\n",
        "test",
        "2026-01-01T00:00:00Z",
    );
    assert!(!m.has_requester_fields());
    let yaml = m.to_yaml()?;
    for gone in [
        "username",
        "groups",
        "uid",
        "extra",
        "system:masters",
        "cluster-admin",
    ] {
        assert!(!yaml.contains(gone), "{gone} left in:\n{yaml}");
    }
    let back = KubeCsr::from_slice(yaml.as_bytes())?;
    assert!(!back.has_requester_fields());
    Ok(())
}

#[test]
fn expiration_seconds_must_be_an_int32_number() -> R {
    for bytes in [
        vector!("manifest--expiration-seconds-string.yaml"),
        vector!("manifest--expiration-seconds-string.json"),
    ] {
        let e = KubeCsr::from_slice(bytes).err();
        assert!(
            matches!(&e, Some(Error::Manifest(m)) if m.to_string().contains("expected an integer number of seconds (the API field is an int32)")),
            "{e:?}"
        );
    }
    let m = KubeCsr::from_slice(vector!("manifest--expiration-seconds-above-int32.yaml"))?;
    assert_eq!(
        validation(&m),
        (
            "spec.expirationSeconds".to_owned(),
            "2147483648 is out of range (the API field is an int32: at most 2147483647)".to_owned()
        )
    );
    // The largest int32 is accepted; a number beyond i64 or a fraction is refused on reading.
    let ok = String::from_utf8_lossy(vector!("manifest--expiration-seconds-above-int32.yaml"))
        .replace("2147483648", "2147483647");
    assert_eq!(
        KubeCsr::from_slice(ok.as_bytes())?.spec.expiration_seconds,
        Some(2147483647)
    );
    for bad in ["99999999999999999999", "600.0", "6e2"] {
        let text = ok.replace("2147483647", bad);
        assert!(
            matches!(
                KubeCsr::from_slice(text.as_bytes()),
                Err(Error::Manifest(_))
            ),
            "{bad} was read"
        );
    }
    Ok(())
}

/// Every level of `e`'s source chain, as a caller walking it (`anyhow`'s `{:#}`, a log's
/// "caused by") would show it, holds no control or bidirectional formatting character.
fn chain_is_escaped(e: &(dyn std::error::Error + 'static)) -> Result<(), String> {
    let mut level = Some(e);
    let mut depth = 0;
    while let Some(l) = level {
        let text = l.to_string();
        if kubepki_csr::has_unsafe_chars(&text) {
            return Err(format!("level {depth} of {e}: {text:?}"));
        }
        level = l.source();
        depth += 1;
    }
    Ok(())
}

/// The typed causes of a manifest that cannot be read or validated (issue 20) are sources of
/// the error; the values they quote came from the manifest, so each shows them escaped, as
/// the whole message does. The message itself is unchanged.
#[test]
fn manifest_causes_show_hostile_values_escaped() -> Result<(), Box<dyn std::error::Error>> {
    let base = r#"{"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": "n"}, "spec": {"request": "", "signerName": "SIGNER",
        "usages": [USAGES] EXTRA}}"#;
    let manifest = |api: &str, signer: &str, usages: &str, extra: &str| {
        base.replace("certificates.k8s.io/v1", api)
            .replace("SIGNER", signer)
            .replace("USAGES", usages)
            .replace("EXTRA", extra)
    };
    let ok_signer = "example.com/s";
    let cases = [
        // apiVersion found.
        manifest("v1\\u001b[31m", ok_signer, r#""client auth""#, ""),
        // signerName without '/', with two, with an empty path.
        manifest(
            "certificates.k8s.io/v1",
            "a\\u202eb",
            r#""client auth""#,
            "",
        ),
        manifest(
            "certificates.k8s.io/v1",
            "a/b/\\u009b",
            r#""client auth""#,
            "",
        ),
        // An unknown usage, a duplicate one.
        manifest("certificates.k8s.io/v1", ok_signer, r#""\u001b[8m""#, ""),
        manifest(
            "certificates.k8s.io/v1",
            ok_signer,
            r#""client auth\n", "client auth\n""#,
            "",
        ),
        // JSON of another shape: serde_json quotes the value.
        manifest(
            "certificates.k8s.io/v1",
            ok_signer,
            r#""client auth""#,
            r#", "expirationSeconds": "\u001b[31m\nInjected""#,
        ),
    ];
    for text in &cases {
        let e = match KubeCsr::from_slice(text.as_bytes()) {
            Ok(m) => match m.validate() {
                Err(e) => e,
                Ok(_) => return Err(format!("accepted: {text}").into()),
            },
            Err(e) => e,
        };
        assert!(std::error::Error::source(&e).is_some(), "{e:?}");
        assert!(!kubepki_csr::has_unsafe_chars(&e.to_string()), "{e}");
        chain_is_escaped(&e)?;
    }
    // YAML: the reader's message quotes the line.
    let yaml = "apiVersion: [\"\\e[31m\"\nkind: \x1b[8m\n";
    match KubeCsr::from_slice(yaml.as_bytes()) {
        Err(e) => chain_is_escaped(&e)?,
        Ok(m) => return Err(format!("read: {m:?}").into()),
    }
    Ok(())
}
