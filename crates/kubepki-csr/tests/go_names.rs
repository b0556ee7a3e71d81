//! Names with `*` encoded as Go encodes them (the vectors in `tests/data/go-names/`, made by
//! `go run .` there with Go's crypto/x509/pkix and encoding/asn1): a PrintableString only when
//! every character is in its set, which has no `*`, otherwise a UTF8String.

use kubepki_csr::Subject;

type R = Result<(), Box<dyn std::error::Error>>;

fn vector(name: &str) -> Result<Vec<u8>, std::io::Error> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data/go-names")
            .join(name),
    )
}

#[test]
fn names_with_an_asterisk_are_utf8_strings_as_go_writes_them() -> R {
    let mut ou = Subject::cn("svc");
    ou.organizational_units = vec!["*".into()];
    ou.countries = vec!["DE".into()];
    let cases = [
        ("wildcard-cn.der", Subject::cn("*.example.com")),
        (
            "star-org.der",
            Subject::cn("jane").with_organizations(["a*b", "dev"]),
        ),
        ("star-ou.der", ou),
        (
            "printable.der",
            Subject::cn("kube-apiserver").with_organizations(["system:masters"]),
        ),
    ];
    for (file, subject) in cases {
        assert_eq!(subject.to_der()?, vector(file)?, "{file}");
    }
    Ok(())
}
