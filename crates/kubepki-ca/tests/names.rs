//! Names holding control or bidirectional formatting characters (issue 22): parsed and shown
//! escaped, never requested or issued (`kubepki_csr::Error::UnsafeName`), whichever way a
//! certificate is made; the hostile-name corpus is `tests/data/hostile/names/`.

use std::path::Path;

use kubepki_ca::{
    CaExpiry, CaSpec, Certificate, CertificateAuthority, Error, IssueSpec, Profile, SignerName,
    Window, sign_request,
};
use kubepki_csr::{Csr, CsrBuilder, KubeCsr, Subject, SubjectAltNames};
use kubepki_keys::{KeyAlgorithm, PrivateKey};
use time::{Duration, OffsetDateTime};

type R = Result<(), Box<dyn std::error::Error>>;

const HOSTILE: [&str; 12] = [
    "evil\x1b[31mRED\x1b[0m",
    "jane\x1b[8m",
    "\x1b]0;title\x07jane",
    "system:masters\rjane",
    "jane\nInjected: line",
    "system:masters\x08\x08jane",
    "jane\0admin",
    "jane\x7f",
    "\u{9b}31mjane",
    "jane\u{202e}nimda",
    "\u{2066}jane\u{2069}",
    "\u{200f}jane",
];

fn corpus(name: &str) -> Result<Vec<u8>, std::io::Error> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data/hostile/names")
            .join(name),
    )
}

fn ca(now: OffsetDateTime) -> Result<CertificateAuthority, Box<dyn std::error::Error>> {
    Ok(CertificateAuthority::create_root(
        &CaSpec::kubeadm("kubernetes", now, Duration::hours(87600)),
        PrivateKey::generate(KeyAlgorithm::EcdsaP256)?,
    )?)
}

/// The refusal, with the field it names and the value as given.
fn unsafe_name(e: &Error) -> Option<(&str, &str)> {
    match e {
        Error::Csr(kubepki_csr::Error::UnsafeName { field, value }) => {
            Some((field.as_str(), value.as_str()))
        }
        _ => None,
    }
}

/// A one-line message with nothing a terminal would act on.
fn printable_line(msg: &str) -> bool {
    !msg.chars().any(kubepki_csr::is_unsafe_char)
}

#[test]
fn every_issuance_refuses_a_hostile_subject_attribute_or_san() -> R {
    let now = OffsetDateTime::now_utc();
    let ca = ca(now)?;
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256)?;
    let window = Window::kubeadm(now, Duration::hours(24));
    for v in HOSTILE {
        let cases: Vec<(Subject, SubjectAltNames, &str)> = vec![
            (Subject::cn(v), SubjectAltNames::default(), "subject CN"),
            (
                Subject::cn("jane").with_organizations([v]),
                SubjectAltNames::default(),
                "subject O",
            ),
            (
                Subject {
                    localities: vec![v.into()],
                    ..Subject::cn("jane")
                },
                SubjectAltNames::default(),
                "subject L",
            ),
            (
                Subject::cn("n1"),
                SubjectAltNames {
                    dns: vec![format!("{v}.example")],
                    ..SubjectAltNames::default()
                },
                "DNS SAN",
            ),
            (
                Subject::cn("n1"),
                SubjectAltNames {
                    uris: vec![format!("https://a/{v}")],
                    ..SubjectAltNames::default()
                },
                "URI SAN",
            ),
        ];
        for (subject, sans, field) in cases {
            let spec = IssueSpec::new(
                subject.clone(),
                key.public_key_der(),
                window,
                CaExpiry::Clamp,
            )
            .with_subject_alt_names(sans.clone());
            let e = ca.issue(&spec).err().ok_or("issued")?;
            let (f, value) = unsafe_name(&e).ok_or_else(|| format!("{v:?}: {e}"))?;
            assert_eq!(f, field, "{v:?}");
            assert!(value.contains(v), "{v:?}: {value:?}");
            assert!(printable_line(&e.to_string()), "{e}");
            // A request with it is not even built.
            let built = CsrBuilder::new(subject).subject_alt_names(sans).sign(&key);
            assert!(
                matches!(built, Err(kubepki_csr::Error::UnsafeName { .. })),
                "{v:?}"
            );
        }
        // Nor a CA.
        let e = CertificateAuthority::create_root(
            &CaSpec::kubeadm(v, now, Duration::hours(1)),
            PrivateKey::generate(KeyAlgorithm::EcdsaP256)?,
        )
        .err()
        .ok_or("CA created")?;
        assert_eq!(unsafe_name(&e).map(|(f, _)| f), Some("subject CN"), "{e}");
    }
    Ok(())
}

#[test]
fn requests_made_by_openssl_and_by_hand_are_read_and_never_signed() -> R {
    let now = OffsetDateTime::now_utc();
    let ca = ca(now)?;
    let cases = [
        ("csr--esc-hide.csr", "subject L", "Berlin\x1b[8m"),
        ("csr--newline.csr", "subject CN", "jane\nInjected: line"),
        ("csr--nul.csr", "subject CN", "jane\0system:masters"),
        ("csr--c1-csi.csr", "subject CN", "\u{9b}31mjane"),
        (
            "csr--bidi-isolate.csr",
            "subject O",
            "\u{2067}system:masters\u{2069}",
        ),
        ("csr--san-esc.csr", "DNS SAN", "evil\x1b[31m.example"),
        (
            "csr--san-newline.csr",
            "DNS SAN",
            "n1.example\nInjected: line",
        ),
    ];
    for (file, field, value) in cases {
        let csr = Csr::from_pem(&corpus(file)?)?;
        // Read as it is: a reviewer must be able to look at it.
        let read: Vec<String> = std::iter::once(csr.subject().to_string())
            .chain(csr.subject_alt_names().dns)
            .collect();
        assert!(read.iter().any(|s| s.contains(value)), "{file}: {read:?}");
        let e = ca
            .issue_from_csr(
                &csr,
                Profile::Client,
                Window::kubeadm(now, Duration::hours(1)),
                CaExpiry::Clamp,
            )
            .err()
            .ok_or("issued")?;
        assert_eq!(unsafe_name(&e), Some((field, value)), "{file}: {e}");
        let m = KubeCsr::new(
            "hostile",
            &csr,
            SignerName::KubeApiserverClient.name(),
            &SignerName::KubeApiserverClient.default_usages(),
            None,
        );
        let e = sign_request(&ca, &m, Duration::hours(1), now)
            .err()
            .ok_or("signed")?;
        assert_eq!(unsafe_name(&e), Some((field, value)), "{file}: {e}");
        assert!(printable_line(&e.to_string()), "{e}");
    }
    // Invalid UTF-8 in a UTF8String is refused by the parser, its bytes shown escaped.
    let e = Csr::from_pem(&corpus("csr--invalid-utf8.csr")?)
        .err()
        .ok_or("parsed")?;
    assert_eq!(
        e.to_string(),
        r#"subject attribute "jane\xff\xfe\xc0\x80\x1b[31m" is not a valid UTF8String (shown escaped)"#
    );
    Ok(())
}

#[test]
fn a_certificate_keeps_the_real_value_and_describes_itself_escaped() -> R {
    let c = Certificate::from_pem(&corpus("cert--newline.crt")?)?;
    assert_eq!(c.common_name(), Some("jane\nInjected: line"));
    assert_eq!(c.display_name(), r"CN = jane\nInjected: line");
    let c = Certificate::from_pem(&corpus("cert--bidi-override.crt")?)?;
    assert_eq!(c.display_name(), r"CN = jane\u{202e}sretsam:metsys");
    // Errors that name it are one printable line.
    let now = OffsetDateTime::now_utc();
    let e = ca(now)?.check_issued(&c).err().ok_or("issued by it")?;
    assert!(printable_line(&e.to_string()), "{e}");
    assert!(e.to_string().contains(r"jane\u{202e}sretsam"), "{e}");
    Ok(())
}
