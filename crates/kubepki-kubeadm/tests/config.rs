//! kubeadm's own config files (v1beta3, v1beta4) applied onto a ClusterSpec: the fields that
//! shape the PKI, warnings for the rest, errors naming the field for malformed values.

use std::path::{Path, PathBuf};

use kubepki_ca::Certificate;
use kubepki_keys::{KeyAlgorithm, PrivateKey};
use kubepki_kubeadm::{
    ClusterSpec, Kubeconfig, KubeconfigId, KubernetesVersion, Plan, Selection, Tree, apply_config,
    apply_config_file, build,
};
use time::{Duration, OffsetDateTime};

type R = Result<(), Box<dyn std::error::Error>>;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

#[test]
fn v1beta4_fields_are_read() -> R {
    let mut s = ClusterSpec::default();
    let warnings = apply_config_file(&mut s, &data("v1beta4.yaml"))?;
    assert_eq!(s.advertise_address, Some("10.20.30.40".parse()?));
    assert_eq!(s.bind_port, 7443);
    assert_eq!(s.node_name.as_deref(), Some("Control-1.example.com"));
    assert_eq!(s.cert_sans, ["api.example.com", "10.20.30.1"]);
    assert_eq!(s.certificate_validity, Some(Duration::hours(4380)));
    assert_eq!(s.ca_certificate_validity, Some(Duration::hours(87600)));
    assert_eq!(s.cert_dir, PathBuf::from("/srv/k8s/pki"));
    assert_eq!(s.cluster_name, "prod");
    assert_eq!(
        s.control_plane_endpoint.as_deref(),
        Some("api.example.com:7443")
    );
    assert_eq!(s.encryption_algorithm, KeyAlgorithm::EcdsaP256);
    assert_eq!(s.etcd_server_cert_sans, ["etcd.example.com"]);
    assert_eq!(s.etcd_peer_cert_sans, ["10.20.30.41"]);
    assert_eq!(s.kubernetes_version, KubernetesVersion::new(33, 4));
    assert_eq!(s.dns_domain, "prod.local");
    assert_eq!(s.service_subnet, "10.100.0.0/16");
    assert!(!s.external_etcd);
    for ignored in [
        "bootstrapTokens",
        "nodeRegistration.criSocket",
        "etcd.local.dataDir",
        "networking.podSubnet",
        "imageRepository",
        "KubeletConfiguration",
    ] {
        assert!(
            warnings.iter().any(|w| w.contains(ignored)),
            "no warning for {ignored}: {warnings:#?}"
        );
    }
    assert!(
        !warnings.iter().any(|w| w.contains("certSANs")),
        "{warnings:#?}"
    );
    // kubeadm rejects an upper-case node name; so does the plan, naming the field.
    let e = Plan::new(&s).err().ok_or("upper-case node name accepted")?;
    assert!(e.to_string().starts_with("nodeRegistration.name"), "{e}");
    s.node_name = Some("control-1.example.com".into());
    let plan = Plan::new(&s)?;
    assert_eq!(plan.cert_dir, PathBuf::from("/srv/k8s/pki"));
    Ok(())
}

#[test]
fn v1beta3_external_etcd_and_feature_gate() -> R {
    let mut s = ClusterSpec::default();
    let warnings = apply_config_file(&mut s, &data("v1beta3.yaml"))?;
    assert!(s.external_etcd);
    assert_eq!(s.encryption_algorithm, KeyAlgorithm::EcdsaP256);
    assert!(warnings.iter().any(|w| w.contains("PublicKeysECDSA")));
    // v1beta3 has no validity fields; kubeadm's conversion fills in the defaults.
    assert_eq!(s.certificate_validity, Some(Duration::hours(8760)));
    assert_eq!(s.ca_certificate_validity, Some(Duration::hours(87600)));
    assert_eq!(s.kubernetes_version, KubernetesVersion::new(31, 2));
    assert_eq!(s.node_name.as_deref(), Some("cp1"));
    let plan = Plan::new(&s)?;
    assert!(plan.cert(kubepki_kubeadm::CertId::EtcdCa).is_none());
    Ok(())
}

#[test]
fn malformed_values_name_the_document_and_field() -> R {
    let head4 = "apiVersion: kubeadm.k8s.io/v1beta4\n";
    let cases: &[(&str, &str)] = &[
        (
            "kind: InitConfiguration\nlocalAPIEndpoint:\n  bindPort: 70000\n",
            "InitConfiguration.localAPIEndpoint.bindPort",
        ),
        (
            "kind: InitConfiguration\nlocalAPIEndpoint:\n  bindPort: \"x\"\n",
            "InitConfiguration.localAPIEndpoint.bindPort",
        ),
        (
            "kind: InitConfiguration\nlocalAPIEndpoint:\n  advertiseAddress: 10.0.0\n",
            "InitConfiguration.localAPIEndpoint.advertiseAddress",
        ),
        (
            "kind: InitConfiguration\nlocalAPIEndpoint: 5\n",
            "InitConfiguration.localAPIEndpoint",
        ),
        (
            "kind: ClusterConfiguration\napiServer:\n  certSANs: a.example.com\n",
            "ClusterConfiguration.apiServer.certSANs",
        ),
        (
            "kind: ClusterConfiguration\napiServer:\n  certSANs: [1]\n",
            "ClusterConfiguration.apiServer.certSANs[0]",
        ),
        (
            "kind: ClusterConfiguration\nencryptionAlgorithm: DSA-1024\n",
            "ClusterConfiguration.encryptionAlgorithm",
        ),
        (
            "kind: ClusterConfiguration\ncertificateValidityPeriod: forever\n",
            "ClusterConfiguration.certificateValidityPeriod",
        ),
        (
            "kind: ClusterConfiguration\nkubernetesVersion: stable-1\n",
            "ClusterConfiguration.kubernetesVersion",
        ),
        (
            "kind: ClusterConfiguration\netcd:\n  external: {}\n  local: {}\n",
            "ClusterConfiguration.etcd",
        ),
    ];
    for (body, field) in cases {
        let mut s = ClusterSpec::default();
        let text = format!("{head4}{body}");
        match apply_config(&mut s, Path::new("kubeadm.yaml"), text.as_bytes()) {
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    msg.starts_with(&format!("kubeadm.yaml: {field}:")),
                    "{field}: {msg}"
                );
            }
            Ok(_) => return Err(format!("accepted: {body}").into()),
        }
    }
    let whole: &[(&str, &str)] = &[
        (
            "apiVersion: kubeadm.k8s.io/v1beta2\nkind: ClusterConfiguration\n",
            "v1beta2",
        ),
        ("kind: ClusterConfiguration\n", "apiVersion"),
        (
            "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nencryptionAlgorithm: RSA-2048\n",
            "only in kubeadm.k8s.io/v1beta4",
        ),
        ("apiVersion: v1\nkind: ConfigMap\n", "neither"),
        ("key: [unclosed\n", "not valid YAML"),
        ("- a\n- b\n", "not a mapping"),
        (
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: v1.30.0\n",
            "1.31 or newer",
        ),
    ];
    for (text, needle) in whole {
        let mut s = ClusterSpec::default();
        match apply_config(&mut s, Path::new("kubeadm.yaml"), text.as_bytes()) {
            Err(e) => assert!(e.to_string().contains(needle), "{needle}: {e}"),
            Ok(_) => return Err(format!("accepted: {text}").into()),
        }
    }
    Ok(())
}

#[test]
fn validity_periods_are_go_durations_reported_in_their_own_units() -> R {
    let doc = |v: &str| {
        format!(
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\ncertificateValidityPeriod: {v}\n"
        )
    };
    // Durations kubeadm (Go's time.ParseDuration) accepts.
    for (text, want) in [
        ("1.5h", Duration::minutes(90)),
        ("10m0.5s", Duration::milliseconds(600_500)),
        ("8760h", Duration::hours(8760)),
        ("1h30m", Duration::minutes(90)),
    ] {
        let mut s = ClusterSpec::default();
        apply_config(&mut s, Path::new("kubeadm.yaml"), doc(text).as_bytes())?;
        assert_eq!(s.certificate_validity, Some(want), "{text}");
    }
    // Too short: named in the unit it was given, not as "0h".
    let mut s = ClusterSpec::default();
    s.node_name = Some("n1".into());
    apply_config(&mut s, Path::new("kubeadm.yaml"), doc("2m").as_bytes())?;
    let e = Plan::new(&s).err().ok_or("2m accepted")?;
    assert_eq!(
        e.to_string(),
        "certificateValidityPeriod: 2m is too short (at least 10m)"
    );
    // Not Go durations: whole days, spaces, negative values.
    for text in ["365d", "\"1h \"", "-1h", "0"] {
        let mut s = ClusterSpec::default();
        let e = apply_config(&mut s, Path::new("kubeadm.yaml"), doc(text).as_bytes())
            .err()
            .ok_or(format!("{text} accepted"))?;
        assert!(
            e.to_string()
                .starts_with("kubeadm.yaml: ClusterConfiguration.certificateValidityPeriod:"),
            "{e}"
        );
    }
    Ok(())
}

/// Issue 19 item 1: kubeadm 1.31+ converts a v1beta3 ClusterConfiguration to its internal type
/// with `certificateValidityPeriod` 8760h and `caCertificateValidityPeriod` 87600h, so every
/// certificate made from a v1beta3 file ends at creation time + period, not 5 minutes earlier
/// (NotBefore + period).
#[test]
fn v1beta3_validity_ends_at_creation_time_plus_default() -> R {
    let now = OffsetDateTime::from_unix_timestamp(1_790_000_000)?;
    {
        let file = "v1beta3.yaml";
        let mut s = ClusterSpec::default();
        apply_config_file(&mut s, &data(file))?;
        assert_eq!(s.kubernetes_version, KubernetesVersion::new(31, 2));
        s.cert_dir = "/nonexistent/kubepki-config-test/pki".into();
        s.kubeconfig_dir = "/nonexistent/kubepki-config-test".into();
        let plan = Plan::new(&s)?;
        let applied = build(&plan, &Selection::all(), &Tree::new(), now)?;
        let cert = |path: &str| -> Result<Certificate, Box<dyn std::error::Error>> {
            let f = applied
                .files
                .get(path)
                .ok_or_else(|| format!("{path} not made"))?;
            Ok(Certificate::from_pem(&f.bytes)?)
        };
        let ca = cert("pki/ca.crt")?;
        assert_eq!(ca.not_before(), now - Duration::minutes(5), "{file}");
        assert_eq!(ca.not_after(), now + Duration::hours(87600), "{file}");
        let leaf = cert("pki/apiserver.crt")?;
        assert_eq!(leaf.not_before(), now - Duration::minutes(5), "{file}");
        assert_eq!(leaf.not_after(), now + Duration::hours(8760), "{file}");
    }
    Ok(())
}

/// Issue 19 item 2: on 1.30 and older, `featureGates: {PublicKeysECDSA: true}` makes `sa.key`
/// ECDSA P-256 (kubeadm's `CreatePKIAssets` passes the gate's algorithm to
/// `CreateServiceAccountKeyAndPublicKeyFiles`); only the kubeconfig client keys stay RSA-2048.
#[test]
fn public_keys_ecdsa_gate_makes_sa_key_ecdsa_before_1_31() -> R {
    let now = OffsetDateTime::from_unix_timestamp(1_790_000_000)?;
    let text = "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nkubernetesVersion: v1.30.4\nfeatureGates:\n  PublicKeysECDSA: true\n---\napiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\nlocalAPIEndpoint:\n  advertiseAddress: 192.0.2.10\nnodeRegistration:\n  name: cp1\n";
    let mut s = ClusterSpec::default();
    apply_config(&mut s, Path::new("kubeadm.yaml"), text.as_bytes())?;
    s.cert_dir = "/nonexistent/kubepki-config-test/pki".into();
    s.kubeconfig_dir = "/nonexistent/kubepki-config-test".into();
    let plan = Plan::new(&s)?;
    let applied = build(&plan, &Selection::all(), &Tree::new(), now)?;
    let pem = |path: &str| -> Result<Vec<u8>, Box<dyn std::error::Error>> {
        Ok(applied
            .files
            .get(path)
            .ok_or_else(|| format!("{path} not made"))?
            .bytes
            .to_vec())
    };
    let sa = PrivateKey::from_pem(&pem("pki/sa.key")?)?;
    assert_eq!(sa.algorithm(), KeyAlgorithm::EcdsaP256);
    assert!(String::from_utf8(pem("pki/sa.key")?)?.starts_with("-----BEGIN EC PRIVATE KEY-----"));
    let ca = PrivateKey::from_pem(&pem("pki/ca.key")?)?;
    assert_eq!(ca.algorithm(), KeyAlgorithm::EcdsaP256);
    let admin = Kubeconfig::parse(&pem("admin.conf")?)?;
    let key = admin
        .current_client_key_pem(Path::new("admin.conf"))?
        .ok_or("admin.conf has no client key")?;
    assert_eq!(
        PrivateKey::from_pem(&key)?.algorithm(),
        KeyAlgorithm::Rsa2048
    );
    Ok(())
}

/// Issue 19 item 3: `featureGates.ControlPlaneKubeletLocalMode` decides kubelet.conf's server
/// when it is given (kubeadm's kubeconfig phase honours it from 1.31); without it the version's
/// default applies (off in 1.31 and 1.32, on from 1.33). kubeadm refuses the gate where it does
/// not know it (1.30 and older, 1.36 on, when it was removed) and `false` where it is locked
/// (1.35, GA).
#[test]
fn control_plane_kubelet_local_mode_gate_sets_kubelet_server() -> R {
    let local = "https://192.0.2.10:6443";
    let lb = "https://lb.example.com:6443";
    let kubelet_server = |version: &str, gate: Option<bool>| -> Result<String, String> {
        let gate = gate
            .map(|b| format!("featureGates:\n  ControlPlaneKubeletLocalMode: {b}\n"))
            .unwrap_or_default();
        let text = format!(
            "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nkubernetesVersion: {version}\ncontrolPlaneEndpoint: lb.example.com:6443\n{gate}---\napiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\nlocalAPIEndpoint:\n  advertiseAddress: 192.0.2.10\nnodeRegistration:\n  name: cp1\n"
        );
        let mut s = ClusterSpec::default();
        let warnings = apply_config(&mut s, Path::new("kubeadm.yaml"), text.as_bytes())
            .map_err(|e| e.to_string())?;
        assert!(
            !warnings
                .iter()
                .any(|w| w.contains("ControlPlaneKubeletLocalMode")),
            "{warnings:?}"
        );
        let plan = Plan::new(&s).map_err(|e| e.to_string())?;
        let admin = plan
            .kubeconfig(KubeconfigId::Admin)
            .ok_or("no admin.conf")?;
        assert_eq!(admin.server, lb, "admin.conf never follows the gate");
        Ok(plan
            .kubeconfig(KubeconfigId::Kubelet)
            .ok_or("no kubelet.conf")?
            .server
            .clone())
    };
    for (version, gate, want) in [
        ("v1.31.2", None, lb),
        ("v1.31.2", Some(true), local),
        ("v1.31.2", Some(false), lb),
        ("v1.32.5", Some(true), local),
        ("v1.33.4", None, local),
        ("v1.33.4", Some(false), lb),
        ("v1.34.7", Some(false), lb),
        ("v1.34.7", Some(true), local),
        ("v1.35.1", None, local),
        ("v1.35.1", Some(true), local),
        ("v1.36.0", None, local),
    ] {
        assert_eq!(
            kubelet_server(version, gate).as_deref(),
            Ok(want),
            "{version} {gate:?}"
        );
    }
    for (version, gate, why) in [
        ("v1.30.4", true, "has no such feature gate"),
        ("v1.35.1", false, "locked to true"),
        ("v1.36.0", true, "has no such feature gate"),
    ] {
        let e = kubelet_server(version, Some(gate))
            .err()
            .ok_or(format!("{version} {gate} accepted"))?;
        assert!(
            e.starts_with("featureGates.ControlPlaneKubeletLocalMode") && e.contains(why),
            "{e}"
        );
    }
    // Not a boolean: named.
    let mut s = ClusterSpec::default();
    let e = apply_config(
        &mut s,
        Path::new("kubeadm.yaml"),
        b"apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nfeatureGates:\n  ControlPlaneKubeletLocalMode: \"yes\"\n",
    )
    .err()
    .ok_or("a string accepted")?;
    assert!(
        e.to_string()
            .contains("ClusterConfiguration.featureGates.ControlPlaneKubeletLocalMode"),
        "{e}"
    );
    Ok(())
}

/// kubeadm 1.37 removed the v1beta3 API and the PublicKeysECDSA feature gate (#136016;
/// `docs/compatibility.md` §3): a v1beta3 file, or the gate in a v1beta4 file, is refused for
/// 1.37 and later, naming the file, and read as before for 1.36. Without kubernetesVersion the
/// file gets the default version (1.37), as with kubeadm 1.37.
#[test]
fn v1beta3_and_the_ecdsa_gate_are_refused_from_1_37() -> R {
    let v1beta3 = |version: &str| {
        format!(
            "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n{version}featureGates:\n  PublicKeysECDSA: true\n"
        )
    };
    let gate_in_v1beta4 = |version: &str| {
        format!(
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n{version}featureGates:\n  PublicKeysECDSA: true\n"
        )
    };
    let path = Path::new("cluster.yaml");
    let refused = |text: String, want: &str| -> R {
        let mut s = ClusterSpec::default();
        let e = apply_config(&mut s, path, text.as_bytes())
            .err()
            .ok_or_else(|| format!("accepted: {text}"))?;
        let msg = e.to_string();
        assert!(msg.starts_with("cluster.yaml: "), "{msg}");
        assert!(msg.contains(want), "{want}: {msg}");
        Ok(())
    };
    for version in [
        "kubernetesVersion: v1.37.0\n",
        "kubernetesVersion: v1.38.2\n",
        "",
    ] {
        refused(
            v1beta3(version),
            "kubeadm.k8s.io/v1beta3 was removed in kubeadm 1.37",
        )?;
        refused(
            gate_in_v1beta4(version),
            "featureGates.PublicKeysECDSA: the gate was removed in kubeadm 1.37",
        )?;
    }
    for text in [
        v1beta3("kubernetesVersion: v1.36.4\n"),
        gate_in_v1beta4("kubernetesVersion: v1.36.4\n"),
    ] {
        let mut s = ClusterSpec::default();
        apply_config(&mut s, path, text.as_bytes())?;
        assert_eq!(s.encryption_algorithm, KeyAlgorithm::EcdsaP256, "{text}");
        assert_eq!(s.kubernetes_version, KubernetesVersion::new(36, 4));
    }
    // The version the caller set before reading (the CLI's --kubernetes-version) counts.
    let mut s = ClusterSpec::default();
    s.kubernetes_version = KubernetesVersion::new(35, 0);
    apply_config(&mut s, path, v1beta3("").as_bytes())?;
    assert_eq!(KubernetesVersion::DEFAULT, KubernetesVersion::new(37, 0));
    Ok(())
}
