//! Crash safety under SIGKILL: `kubepki init`, `kubepki certs renew all` (also
//! `--from-csr-dir`) and each phase of `kubepki ca rotate` killed at random moments. After each kill every file present is complete (certificates, keys and kubeconfigs
//! parse); the next run completes the work (a journal replays a batch that was being moved into
//! place), `verify` passes, and no temporary file or journal is left.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{BIN, TREE, files_under, kubepki};

type R = Result<(), Box<dyn std::error::Error>>;

fn flags(alg: &'static str) -> Vec<&'static str> {
    let mut v = TREE.to_vec();
    v.extend(["--encryption-algorithm", alg]);
    v
}

fn is_scratch(p: &Path) -> bool {
    let n = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    n.starts_with(".kubepki-journal-") || (n.starts_with('.') && n.ends_with(".tmp"))
}

/// Every file present (other than scratch files) is complete and parses.
fn all_complete(dir: &Path) -> R {
    for f in files_under(dir).into_iter().filter(|f| !is_scratch(f)) {
        let bytes = fs::read(&f)?;
        let name = f.display().to_string();
        if name.ends_with(".crt") {
            kubepki_ca::Certificate::from_pem(&bytes).map_err(|e| format!("{name}: {e}"))?;
        } else if name.ends_with(".key") {
            kubepki_keys::PrivateKey::from_pem(&bytes).map_err(|e| format!("{name}: {e}"))?;
        } else if name.ends_with(".conf") {
            let kc = kubepki_kubeadm::Kubeconfig::from_slice(&f, &bytes)?;
            let pem = kc.current_client_cert_pem(&f)?.ok_or("no cert")?;
            kubepki_ca::Certificate::from_pem(&pem).map_err(|e| format!("{name}: {e}"))?;
        } else if name.ends_with(".pub") {
            // Two public keys during a service-account key rotation (docs/rotation.md).
            let n = kubepki_keys::pem::decode_all(&bytes)?.len();
            assert!((1..=2).contains(&n), "{name}: {n} blocks");
        }
    }
    Ok(())
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> Result<Vec<(std::path::PathBuf, Vec<u8>)>, std::io::Error> {
    let mut v = Vec::new();
    for f in files_under(dir) {
        let bytes = fs::read(&f)?;
        v.push((f, bytes));
    }
    v.sort();
    Ok(v)
}

/// A pseudo-random number in [0, n) from the clock (no dependency needed).
fn jitter(n: u64, salt: u64) -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut x = t ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x % n.max(1)
}

/// When to send SIGKILL.
#[derive(Clone, Copy, Debug)]
enum Kill {
    /// This long after the start.
    After(Duration),
    /// This long after the first file appears in the folder: a moment inside the write phase,
    /// however long key generation took.
    IntoWrites(Duration),
}

fn run_and_kill(dir: &Path, args: &[&str], when: Kill) -> R {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    match when {
        Kill::After(d) => std::thread::sleep(d),
        Kill::IntoWrites(d) => {
            let deadline = Instant::now() + Duration::from_secs(120);
            while files_under(dir).is_empty()
                && child.try_wait()?.is_none()
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_micros(200));
            }
            std::thread::sleep(d);
        }
    }
    let _ = child.kill(); // SIGKILL
    child.wait()?; // reaped: its pid is gone, so its leftovers count as stale
    Ok(())
}

fn timed(dir: &Path, args: &[&str]) -> Result<Duration, Box<dyn std::error::Error>> {
    let start = Instant::now();
    let r = kubepki(dir, args)?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    Ok(start.elapsed())
}

fn finish_and_check(dir: &Path, alg: &'static str, cmd: &[&str]) -> R {
    let mut a = cmd.to_vec();
    a.extend(flags(alg));
    let r = kubepki(dir, &a)?;
    assert_eq!(r.code, 0, "re-run {cmd:?} failed: {}", r.stderr);
    let mut v = vec!["verify"];
    v.extend(flags(alg));
    let r = kubepki(dir, &v)?;
    assert_eq!(r.code, 0, "verify after recovery: {}", r.stdout);
    let left: Vec<_> = files_under(dir)
        .into_iter()
        .filter(|f| is_scratch(f))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    Ok(())
}

#[test]
fn init_killed_at_random_moments() -> R {
    // RSA-4096 (the slow run the issue asks for): kills land in key generation, signing or,
    // rarely, among the writes at the end. ECDSA-P256: the run is mostly writing, so most
    // kills land among the fsyncs, links and journal steps. Each RSA-4096 round costs a whole
    // slow tree (the killed run and its re-run), so it has fewer rounds; half of them still aim
    // at its write phase.
    for (alg, rounds) in [("RSA-4096", 8u64), ("ECDSA-P256", 20)] {
        let probe = tempfile::tempdir()?;
        let mut a = vec!["init"];
        a.extend(flags(alg));
        let full = timed(probe.path(), &a)?;
        for i in 0..rounds {
            let dir = tempfile::tempdir()?;
            let d = dir.path();
            // Even rounds: anywhere in the run. Odd rounds of the slow RSA run: inside its
            // short write phase (the ECDSA run is mostly write phase already).
            let at = if alg.starts_with("RSA") && i % 2 == 1 {
                Kill::IntoWrites(Duration::from_micros(jitter(40_000, i)))
            } else {
                Kill::After(Duration::from_micros(jitter(
                    full.as_micros() as u64 + 2000,
                    i,
                )))
            };
            run_and_kill(d, &a, at)?;
            let (done, scratch): (Vec<_>, Vec<_>) =
                files_under(d).into_iter().partition(|f| !is_scratch(f));
            // Where the kill landed (shown with --nocapture): nothing yet, midway, or done.
            eprintln!(
                "{alg} kill #{i} at {at:?} of {full:?}: {} files, {} scratch",
                done.len(),
                scratch.len()
            );
            all_complete(d).map_err(|e| format!("{alg} kill #{i} at {at:?}: {e}"))?;
            finish_and_check(d, alg, &["init"])
                .map_err(|e| format!("{alg} kill #{i} at {at:?}: {e}"))?;
        }
    }
    Ok(())
}

#[test]
fn renew_killed_at_random_moments() -> R {
    let alg = "ECDSA-P256";
    let mut init = vec!["init"];
    init.extend(flags(alg));
    let mut renew = vec!["certs", "renew", "all"];
    renew.extend(flags(alg));
    let probe = tempfile::tempdir()?;
    timed(probe.path(), &init)?;
    let full = timed(probe.path(), &renew)?;
    for i in 0..20u64 {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        assert_eq!(kubepki(d, &init)?.code, 0);
        let at = Kill::After(Duration::from_micros(jitter(
            full.as_micros() as u64 + 2000,
            100 + i,
        )));
        run_and_kill(d, &renew, at)?;
        all_complete(d).map_err(|e| format!("renew kill #{i} at {at:?}: {e}"))?;
        // Read-only commands change nothing: with a journal left they report the pending
        // recovery (naming the journal); without one every pair matches.
        let journal = files_under(d).into_iter().find(|f| {
            f.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".kubepki-journal-"))
        });
        let before = snapshot(d)?;
        let mut v = vec!["verify"];
        v.extend(flags(alg));
        let r = kubepki(d, &v)?;
        let mut dry = vec!["init", "--dry-run"];
        dry.extend(flags(alg));
        let dry = kubepki(d, &dry)?;
        match &journal {
            Some(j) => {
                let name = j.file_name().map(|n| n.to_string_lossy().into_owned());
                let name = name.unwrap_or_default();
                assert_eq!(r.code, 1, "renew kill #{i}: {}", r.stdout);
                assert!(r.stdout.contains(&name) && r.stdout.contains("interrupted kubepki"));
                assert_eq!(dry.code, 1, "renew kill #{i}: {}", dry.stderr);
                assert!(dry.stderr.contains(&name) && dry.stderr.contains("interrupted kubepki"));
            }
            None => {
                assert_eq!(r.code, 0, "renew kill #{i} at {at:?}: {}", r.stdout);
                assert_eq!(dry.code, 0, "renew kill #{i} at {at:?}: {}", dry.stderr);
            }
        }
        assert_eq!(snapshot(d)?, before, "a read-only command changed the tree");
        finish_and_check(d, alg, &["certs", "renew", "all"])?;
    }
    Ok(())
}

/// The stage `ca rotate status -o json` reads for every target: `Ok(stages)`, or `Err(output)`
/// when it refuses (an unfinished batch it names).
fn rotation_stages(d: &Path) -> Result<Result<Vec<String>, String>, Box<dyn std::error::Error>> {
    let mut a = vec!["ca", "rotate", "status", "-o", "json"];
    a.extend(flags("ECDSA-P256"));
    let r = kubepki(d, &a)?;
    if r.code != 0 {
        return Ok(Err(format!("{}{}", r.stdout, r.stderr)));
    }
    let v: serde_json::Value = serde_json::from_str(&r.stdout)?;
    let targets = v["targets"].as_array().ok_or("no targets")?;
    Ok(Ok(targets
        .iter()
        .map(|t| t["stage"].as_str().unwrap_or("?").to_owned())
        .collect()))
}

/// Each phase of a CA rotation killed at random moments: every file present stays complete;
/// `status` reads one stage for every target from the files (the one before the phase, or the
/// one after: a phase is one batch), or names the journal of the unfinished batch; running the
/// phase again completes it, `verify` passes and no scratch file is left.
#[test]
fn rotation_phases_killed_at_random_moments() -> R {
    let alg = "ECDSA-P256";
    let with = |cmd: &[&'static str]| {
        let mut a = cmd.to_vec();
        a.extend(flags(alg));
        a
    };
    let phases = [
        ("start", "idle", "started"),
        ("reissue", "started", "reissued"),
        ("finish", "reissued", "idle"),
    ];
    for (n, (phase, before, after)) in phases.iter().enumerate() {
        let probe = tempfile::tempdir()?;
        timed(probe.path(), &with(&["init"]))?;
        for (p, _, _) in &phases[..n] {
            timed(probe.path(), &with(&["ca", "rotate", p]))?;
        }
        let full = timed(probe.path(), &with(&["ca", "rotate", phase]))?;
        for i in 0..8u64 {
            let dir = tempfile::tempdir()?;
            let d = dir.path();
            assert_eq!(kubepki(d, &with(&["init"]))?.code, 0);
            for (p, _, _) in &phases[..n] {
                let r = kubepki(d, &with(&["ca", "rotate", p]))?;
                assert_eq!(r.code, 0, "{}", r.stderr);
            }
            let at = Kill::After(Duration::from_micros(jitter(
                full.as_micros() as u64 + 2000,
                300 + 10 * n as u64 + i,
            )));
            run_and_kill(d, &with(&["ca", "rotate", phase]), at)?;
            let what = format!("{phase} kill #{i} at {at:?} of {full:?}");
            all_complete(d).map_err(|e| format!("{what}: {e}"))?;
            match rotation_stages(d)? {
                Ok(stages) => {
                    let first = stages.first().cloned().unwrap_or_default();
                    assert!(
                        stages.iter().all(|s| *s == first) && (first == *before || first == *after),
                        "{what}: stages {stages:?}, want all {before} or all {after}"
                    );
                }
                Err(out) => assert!(
                    out.contains(".kubepki-journal-") && out.contains("interrupted kubepki"),
                    "{what}: status refused without naming a journal: {out}"
                ),
            }
            let r = kubepki(d, &with(&["ca", "rotate", phase]))?;
            assert_eq!(r.code, 0, "{what}: re-run: {}", r.stderr);
            assert_eq!(
                rotation_stages(d)?.map_err(|e| format!("{what}: {e}"))?,
                vec![after.to_string(); 4],
                "{what}"
            );
            let again = kubepki(d, &with(&["ca", "rotate", phase]))?;
            assert!(
                again.code == 0 && again.stdout.contains("Nothing to do"),
                "{what}: a third run changed something: {}",
                again.stdout
            );
            finish_and_check(d, alg, &["ca", "rotate", phase])?;
        }
    }
    Ok(())
}

/// `certs renew all --from-csr-dir` (renewal through an external CA, docs/certs.md) killed at
/// random moments: every file stays complete, and the re-run installs what is left (or finds it
/// installed, after the journal completed the batch), with every certificate the CA signed.
#[test]
fn renew_from_csr_dir_killed_at_random_moments() -> R {
    let alg = "ECDSA-P256";
    let with = |args: &[&'static str]| {
        let mut v = args.to_vec();
        v.extend(flags(alg));
        v
    };
    // A node without CA keys, and CSRs signed with the keys kept aside.
    let prepare = |d: &Path| -> R {
        assert_eq!(kubepki(d, &with(&["init"]))?.code, 0);
        fs::create_dir_all(d.join("ca/pki/etcd"))?;
        for base in ["ca", "front-proxy-ca", "etcd/ca"] {
            for ext in ["crt", "key"] {
                let f = format!("{base}.{ext}");
                fs::copy(d.join("t/pki").join(&f), d.join("ca/pki").join(&f))?;
            }
            fs::remove_file(d.join(format!("t/pki/{base}.key")))?;
        }
        let r = kubepki(
            d,
            &with(&["certs", "renew", "all", "--csr-only", "--csr-dir", "csrs"]),
        )?;
        assert_eq!(r.code, 0, "{}", r.stderr);
        let r = kubepki(
            d,
            &[
                "certs",
                "sign-csrs",
                "--csr-dir",
                "csrs",
                "--cert-dir",
                "ca/pki",
                "--kubeconfig-dir",
                "ca",
                "--node-name",
                "cp1",
                "--apiserver-advertise-address",
                "192.0.2.10",
            ],
        )?;
        assert_eq!(r.code, 0, "{}", r.stderr);
        Ok(())
    };
    let install = with(&["certs", "renew", "all", "--from-csr-dir", "csrs"]);
    let probe = tempfile::tempdir()?;
    prepare(probe.path())?;
    let full = timed(probe.path(), &install)?;
    for i in 0..12u64 {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        prepare(d)?;
        let at = Kill::After(Duration::from_micros(jitter(
            full.as_micros() as u64 + 2000,
            300 + i,
        )));
        run_and_kill(d, &install, at)?;
        all_complete(&d.join("t")).map_err(|e| format!("kill #{i} at {at:?}: {e}"))?;
        finish_and_check(d, alg, &["certs", "renew", "all", "--from-csr-dir", "csrs"])
            .map_err(|e| format!("kill #{i} at {at:?}: {e}"))?;
        // Every certificate is the one the CA signed.
        let signed = fs::read(d.join("csrs/apiserver.crt"))?;
        assert_eq!(
            fs::read(d.join("t/pki/apiserver.crt"))?,
            signed,
            "kill #{i}"
        );
        let signed = fs::read(d.join("csrs/etcd-peer.crt"))?;
        assert_eq!(
            fs::read(d.join("t/pki/etcd/peer.crt"))?,
            signed,
            "kill #{i}"
        );
    }
    Ok(())
}
