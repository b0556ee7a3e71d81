//! `docs/compatibility.md` against the code: its per-version table (§8) says what
//! `KubernetesVersion` returns for every minor kubepki knows, and every section the code cites
//! (`docs/compatibility.md` §N.M, or a heading by its title) exists. The code cites no document
//! outside the repository.

use std::path::{Path, PathBuf};

use kubepki_ca::KeyIdMethod;
use kubepki_kubeadm::{KubernetesVersion, NEWEST_KNOWN_MINOR, OLDEST_KNOWN};

type R = Result<(), Box<dyn std::error::Error>>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn doc() -> Result<String, std::io::Error> {
    std::fs::read_to_string(root().join("docs/compatibility.md"))
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// A cell for an O that may end at a patch release: "X", "none", or "X; none from 1.M.P".
fn org_cell(minor: u32, org: impl Fn(KubernetesVersion) -> Option<&'static str>) -> String {
    let first = org(KubernetesVersion::new(minor, 0)).unwrap_or("none");
    match (1..200)
        .find(|&p| org(KubernetesVersion::new(minor, p)) != org(KubernetesVersion::new(minor, 0)))
    {
        Some(p) => {
            let later = org(KubernetesVersion::new(minor, p)).unwrap_or("none");
            format!("{first}; {later} from 1.{minor}.{p}")
        }
        None => first.to_owned(),
    }
}

#[test]
fn the_per_version_table_is_what_the_code_does() -> R {
    let text = doc()?;
    let header = "| minor | admin.conf O | apiserver-kubelet-client O | etcd client O | super-admin.conf | CA backdated | leaf window from config | validity configurable | kubeconfig keys follow algorithm | kubelet.conf server | algorithms | CA key identifier |";
    let start = text.find(header).ok_or("§8: the table header is missing")?;
    let rows: Vec<Vec<String>> = text[start..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_owned())
                .collect()
        })
        .collect();
    let minors: Vec<u32> = (OLDEST_KNOWN.minor..=NEWEST_KNOWN_MINOR).collect();
    assert_eq!(rows.len(), minors.len(), "one row per known minor");
    for (row, &minor) in rows.iter().zip(&minors) {
        let v = KubernetesVersion::new(minor, 0);
        let algorithms = v.supported_algorithms().join(", ");
        let want = [
            format!("1.{minor}"),
            v.admin_org().to_owned(),
            org_cell(minor, KubernetesVersion::apiserver_kubelet_client_org),
            org_cell(minor, KubernetesVersion::etcd_client_org),
            yes(v.has_super_admin()).into(),
            yes(v.backdates_ca()).into(),
            yes(v.leaf_window_from_config()).into(),
            yes(v.validity_configurable()).into(),
            yes(v.kubeconfig_keys_follow_algorithm()).into(),
            if v.kubelet_uses_local_endpoint() {
                "local endpoint"
            } else {
                "control-plane endpoint"
            }
            .into(),
            algorithms,
            match v.ca_key_id() {
                KeyIdMethod::Sha1 => "SHA-1".into(),
                KeyIdMethod::Sha256Truncated => "SHA-256/160".into(),
                other => format!("{other:?}"),
            },
        ];
        // "(gate)" marks what only the PublicKeysECDSA gate selects; the algorithm is the same.
        let got: Vec<String> = row.iter().map(|c| c.replace(" (gate)", "")).collect();
        assert_eq!(got, want, "§8, the row of 1.{minor}");
    }
    Ok(())
}

/// The headings of the document: "8" for "## 8. ...", "1.4" for "### 1.4 ...", and every title.
fn headings(text: &str) -> (Vec<String>, Vec<String>) {
    let mut numbers = Vec::new();
    let mut titles = Vec::new();
    for line in text.lines().filter(|l| l.starts_with('#')) {
        let title = line.trim_start_matches('#').trim();
        let first = title.split_whitespace().next().unwrap_or("");
        let number = first.trim_end_matches('.');
        if !number.is_empty() && number.chars().all(|c| c.is_ascii_digit() || c == '.') {
            numbers.push(number.to_owned());
            titles.push(title[first.len()..].trim().to_owned());
        } else {
            titles.push(title.to_owned());
        }
    }
    (numbers, titles)
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if p.is_dir() {
            if name != "target" && !name.starts_with('.') && name != "corpus" {
                sources(&p, out)?;
            }
        } else if name.ends_with(".rs") {
            out.push(p);
        }
    }
    Ok(())
}

#[test]
fn every_section_the_code_cites_exists() -> R {
    let (numbers, titles) = headings(&doc()?);
    let mut files = Vec::new();
    for d in ["crates", "tests", "benches", "fuzz/fuzz_targets"] {
        sources(&root().join(d), &mut files)?;
    }
    assert!(files.len() > 50, "{} source files", files.len());
    let mut cited = 0;
    // This file names what it looks for.
    for f in files
        .iter()
        .filter(|f| !f.ends_with("kubepki-kubeadm/tests/compatibility.rs"))
    {
        let text = std::fs::read_to_string(f)?;
        for (n, line) in text.lines().enumerate() {
            let at = format!("{}:{}", f.display(), n + 1);
            // The outside reference's folder and file name, and its old section citations,
            // assembled so that this file does not name them itself.
            let outside = [
                ["shared", "reference"].join("/"),
                ["kubeadm-pki", "md"].join("."),
                ["spec", "§"].join(" "),
            ];
            for outside in &outside {
                assert!(
                    !line.contains(outside.as_str()),
                    "{at}: cites a document outside the repository: {line}"
                );
            }
            let Some(i) = line.find("docs/compatibility.md") else {
                // A bare § is a section of the document only on a line that names it.
                if let Some(j) = line.find('§') {
                    let before = &line[..j];
                    assert!(
                        before.contains("RFC ") || before.contains("X.6"),
                        "{at}: a § without docs/compatibility.md: {line}"
                    );
                }
                continue;
            };
            let rest = &line[i..];
            // Every §N or §N.M after the citation on this line.
            for part in rest.split('§').skip(1) {
                let number: String = part
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.')
                    .collect();
                let number = number.trim_end_matches('.');
                if number.is_empty() {
                    continue;
                }
                assert!(
                    numbers.iter().any(|h| h == number),
                    "{at}: §{number} is not a section: {line}"
                );
                cited += 1;
            }
            // A heading cited by its title: docs/compatibility.md`, "Title".
            if let Some(q) = rest.find(", \"") {
                let title: String = rest[q + 3..].chars().take_while(|c| *c != '"').collect();
                if !title.is_empty() && rest[q + 3 + title.len()..].starts_with('"') {
                    assert!(titles.contains(&title), "{at}: no heading \"{title}\"");
                    cited += 1;
                }
            }
        }
    }
    assert!(cited > 30, "{cited} citations found");
    Ok(())
}
