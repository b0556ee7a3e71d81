//! What kubepki finds in a tree is input: recovery journals, FIFOs, a folder swapped for a link,
//! another kubepki writing at the same time. Hostile journals (`tests/data/hostile/journals`,
//! made by its `make.sh`) are refused with nothing changed anywhere; read-only commands never
//! change the tree and report an unfinished batch; writers complete it; a reader never sees a
//! half-renewed pair.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{BIN, TREE, files_under, kubepki};

type R = Result<(), Box<dyn std::error::Error>>;

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/hostile/journals")
}

fn args<'a>(cmd: &[&'a str]) -> Vec<&'a str> {
    let mut v = cmd.to_vec();
    v.extend(TREE);
    v
}

/// Every file and folder under `dir` with its bytes (folders with none).
fn snapshot(dir: &Path) -> Vec<(PathBuf, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
                out.push((p.clone(), None));
                stack.push(p);
            } else {
                out.push((p.clone(), fs::read(&p).ok()));
            }
        }
    }
    out.sort();
    out
}

/// A scratch root with a tree in `t/` and files outside it that a hostile journal names.
fn scratch() -> Result<tempfile::TempDir, Box<dyn std::error::Error>> {
    let root = tempfile::tempdir()?;
    let d = root.path();
    assert_eq!(
        kubepki(d, &args(&["init", "--encryption-algorithm", "ECDSA-P256"]))?.code,
        0
    );
    fs::create_dir_all(d.join("outside/folder"))?;
    fs::write(d.join("outside/victim"), "victim")?;
    fs::write(d.join("outside/folder/inner"), "inner")?;
    // The one shape a journal may name: a temporary file of its own batch, in its own folder.
    fs::write(d.join("t/pki/.ca.key.kubepki-4194999-aa.tmp"), "planted")?;
    Ok(root)
}

#[test]
fn hostile_journals_change_nothing_anywhere_and_are_named() -> R {
    let mut cases: Vec<PathBuf> = fs::read_dir(vectors())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().contains(".kubepki-journal-"))
        .collect();
    cases.sort();
    assert_eq!(cases.len(), 8, "the vectors make.sh writes");
    for case in cases {
        let file = case.file_name().map(|n| n.to_string_lossy().into_owned());
        let file = file.unwrap_or_default();
        // `<case>.kubepki-journal-PID-HEX` is planted as `.kubepki-journal-PID-HEX`.
        let planted = &file[file.find(".kubepki-journal-").unwrap_or(0)..];
        let root = scratch()?;
        let d = root.path();
        fs::copy(&case, d.join("t/pki").join(planted))?;
        for cmd in [
            &["certs", "check-expiration"][..],
            &["verify"],
            &["init", "--dry-run"],
            &["init"],
            &["certs", "renew", "all"],
        ] {
            let before = snapshot(d);
            let r = kubepki(d, &args(cmd))?;
            let out = format!("{}{}", r.stdout, r.stderr);
            assert_ne!(r.code, 0, "{file}: {cmd:?} succeeded: {out}");
            assert!(
                out.contains(planted),
                "{file}: {cmd:?} does not name the journal: {out}"
            );
            assert_ne!(r.code, 101, "{file}: {cmd:?} panicked: {out}");
            assert_eq!(snapshot(d), before, "{file}: {cmd:?} changed a file");
        }
    }
    Ok(())
}

/// Builds the state a `renew apiserver` killed halfway leaves: the new key already renamed into
/// place, the new certificate still a temporary file, the journal listing both.
fn half_renewed(d: &Path) -> Result<String, Box<dyn std::error::Error>> {
    let copy = d.join("copy");
    fs::create_dir_all(&copy)?;
    for f in ["apiserver.crt", "apiserver.key", "ca.crt", "ca.key"] {
        fs::copy(d.join("t/pki").join(f), copy.join(f))?;
    }
    let r = kubepki(
        d,
        &[
            "certs",
            "renew",
            "apiserver",
            "--cert-dir",
            "copy",
            "--kubeconfig-dir",
            "copy",
            "--node-name",
            "cp1",
            "--apiserver-advertise-address",
            "192.0.2.10",
        ],
    )?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let pki = d.join("t/pki");
    let (tc, tk) = (
        ".apiserver.crt.kubepki-4194999-0c.tmp",
        ".apiserver.key.kubepki-4194999-0d.tmp",
    );
    fs::copy(copy.join("apiserver.crt"), pki.join(tc))?;
    fs::copy(copy.join("apiserver.key"), pki.join(tk))?;
    let journal = ".kubepki-journal-4194999-0e".to_string();
    fs::write(
        pki.join(&journal),
        format!("folders 1\nR\t{tc}\tapiserver.crt\nR\t{tk}\tapiserver.key\nend\n"),
    )?;
    fs::rename(pki.join(tk), pki.join("apiserver.key"))?;
    fs::remove_dir_all(&copy)?;
    Ok(journal)
}

#[test]
fn an_unfinished_batch_is_reported_by_readers_and_completed_by_writers() -> R {
    let root = scratch()?;
    let d = root.path();
    fs::remove_file(d.join("t/pki/.ca.key.kubepki-4194999-aa.tmp"))?;
    let journal = half_renewed(d)?;
    let before = snapshot(d);
    let v = kubepki(d, &args(&["verify"]))?;
    assert_eq!(v.code, 1, "{}", v.stdout);
    assert!(v.stdout.contains(&journal) && v.stdout.contains("interrupted kubepki"));
    let dry = kubepki(d, &args(&["init", "--dry-run"]))?;
    assert_eq!(dry.code, 1);
    assert!(dry.stderr.contains(&journal), "{}", dry.stderr);
    assert!(!dry.stderr.contains("does not belong"), "{}", dry.stderr);
    let exp = kubepki(d, &args(&["certs", "check-expiration"]))?;
    assert_ne!(exp.code, 0);
    assert!(format!("{}{}", exp.stdout, exp.stderr).contains(&journal));
    assert_eq!(snapshot(d), before, "a read-only command changed the tree");
    // A writer completes it, and says so.
    let init = kubepki(d, &args(&["init"]))?;
    assert_eq!(init.code, 0, "{}", init.stderr);
    assert!(init.stdout.contains("apiserver.crt"), "{}", init.stdout);
    assert!(
        !init.stdout.contains("no file was changed"),
        "{}",
        init.stdout
    );
    assert_eq!(kubepki(d, &args(&["verify"]))?.code, 0);
    assert!(
        !files_under(d)
            .iter()
            .any(|f| f.to_string_lossy().contains(".kubepki-"))
    );
    Ok(())
}

#[test]
fn a_fifo_in_the_tree_is_refused_without_hanging() -> R {
    for (place, cmd) in [
        ("t/pki/apiserver.crt", &["certs", "check-expiration"][..]),
        ("t/pki/apiserver.crt", &["verify"]),
        ("t/admin.conf", &["init", "--dry-run"]),
        ("t/pki/.kubepki-journal-4194999-0f", &["init"]),
        (
            "t/pki/.kubepki-journal-4194999-0f",
            &["certs", "renew", "all"],
        ),
    ] {
        let root = scratch()?;
        let d = root.path();
        let p = d.join(place);
        let _ = fs::remove_file(&p);
        let made = Command::new("mkfifo").arg(&p).status()?;
        assert!(made.success());
        let start = Instant::now();
        let mut child = Command::new(BIN)
            .args(args(cmd))
            .current_dir(d)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        while child.try_wait()?.is_none() && start.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let hung = child.try_wait()?.is_none();
        let _ = child.kill();
        let out = child.wait_with_output()?;
        assert!(!hung, "{cmd:?} with a FIFO at {place} hangs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{cmd:?}: {text}");
        assert!(text.contains("FIFO"), "{cmd:?} at {place}: {text}");
    }
    Ok(())
}

#[test]
fn readers_never_see_a_half_renewed_pair() -> R {
    let root = tempfile::tempdir()?;
    let d = root.path();
    let alg = ["--encryption-algorithm", "ECDSA-P256"];
    let mut init = args(&["init"]);
    init.extend(alg);
    assert_eq!(kubepki(d, &init)?.code, 0);
    let mut renew = args(&["certs", "renew", "all"]);
    renew.extend(alg);
    let renews = 15;
    let writer = {
        let d = d.to_owned();
        let renew: Vec<String> = renew.iter().map(|s| s.to_string()).collect();
        std::thread::spawn(move || -> Result<usize, String> {
            let mut ok = 0;
            for _ in 0..renews {
                let r = Command::new(BIN)
                    .args(&renew)
                    .current_dir(&d)
                    .output()
                    .map_err(|e| e.to_string())?;
                if r.status.success() {
                    ok += 1;
                }
            }
            Ok(ok)
        })
    };
    let mut reads = 0;
    while !writer.is_finished() {
        let r = kubepki(d, &args(&["verify"]))?;
        assert_eq!(r.code, 0, "verify during renew #{reads}: {}", r.stdout);
        reads += 1;
    }
    let renewed = writer.join().map_err(|_| "writer thread")??;
    assert_eq!(renewed, renews, "every renew succeeded");
    assert!(reads > 0);
    eprintln!("{reads} verify runs during {renews} renewals, all PASS");
    Ok(())
}

/// Runs `kubepki args` in `d` in the background.
fn spawn(d: &Path, a: &[&str]) -> std::io::Result<std::process::Child> {
    Command::new(BIN)
        .args(a)
        .current_dir(d)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
}

#[test]
fn readers_wait_for_a_writer_and_writers_for_readers() -> R {
    use kubepki_files::{LockMode, lock_folder};
    let root = tempfile::tempdir()?;
    let d = root.path();
    assert_eq!(
        kubepki(d, &args(&["init", "--encryption-algorithm", "ECDSA-P256"]))?.code,
        0
    );
    for (held, cmd) in [
        (LockMode::Exclusive, &["verify"][..]),
        (LockMode::Exclusive, &["certs", "check-expiration"]),
        (LockMode::Shared, &["certs", "renew", "all"]),
        (LockMode::Shared, &["init"]),
    ] {
        // This process plays the other kubepki: it holds the tree's lock.
        let lock = lock_folder(&d.join("t/pki"), held)?;
        let mut child = spawn(d, &args(cmd))?;
        std::thread::sleep(Duration::from_millis(700));
        assert!(
            child.try_wait()?.is_none(),
            "{cmd:?} did not wait for the lock"
        );
        drop(lock);
        let out = child.wait_with_output()?;
        assert_eq!(
            out.status.code(),
            Some(0),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

#[test]
fn a_folder_swapped_for_a_link_during_init_is_never_written_through() -> R {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let mut total_swaps = 0;
    for round in 0..12u64 {
        let root = tempfile::tempdir()?;
        let d = root.path();
        fs::create_dir_all(d.join("t/pki"))?;
        fs::create_dir_all(d.join("other"))?;
        fs::write(d.join("other/apiserver.crt"), "other's certificate")?;
        fs::write(d.join("other/ca.key"), "other's key")?;
        let before = snapshot(&d.join("other"));
        let stop = Arc::new(AtomicBool::new(false));
        let go = Arc::new(AtomicBool::new(false));
        let swaps = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let swapper = {
            let swaps = Arc::clone(&swaps);
            let (d, stop, go) = (d.to_owned(), Arc::clone(&stop), Arc::clone(&go));
            std::thread::spawn(move || {
                let (pki, real) = (d.join("t/pki"), d.join("t/pki.real"));
                while !go.load(Ordering::SeqCst) && !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_micros(50));
                }
                while !stop.load(Ordering::SeqCst) {
                    if fs::rename(&pki, &real).is_ok() {
                        let _ = std::os::unix::fs::symlink(d.join("other"), &pki);
                        swaps.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_micros(300 + round * 50));
                        let _ = fs::remove_file(&pki);
                        let _ = fs::rename(&real, &pki);
                    }
                    std::thread::sleep(Duration::from_micros(300));
                }
            })
        };
        let child = spawn(d, &args(&["init", "--encryption-algorithm", "ECDSA-P256"]))?;
        // Swap once init has opened and locked the folder: its first temporary file shows it.
        let start = Instant::now();
        while !files_under(&d.join("t/pki"))
            .iter()
            .any(|f| f.to_string_lossy().ends_with(".tmp"))
            && start.elapsed() < Duration::from_secs(30)
        {
            std::thread::sleep(Duration::from_micros(100));
        }
        go.store(true, Ordering::SeqCst);
        let out = child.wait_with_output()?;
        stop.store(true, Ordering::SeqCst);
        swapper.join().map_err(|_| "swapper thread")?;
        assert_ne!(
            out.status.code(),
            Some(101),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r = common::Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::new(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        total_swaps += swaps.load(Ordering::SeqCst);
        assert_eq!(
            snapshot(&d.join("other")),
            before,
            "round {round}: init (exit {}) changed the other folder",
            r.code
        );
    }
    eprintln!("{total_swaps} swaps during 12 runs of init");
    assert!(total_swaps >= 12, "the folder was swapped during the runs");
    Ok(())
}

#[test]
fn a_command_writing_outside_the_tree_recovers_its_own_folder() -> R {
    // `sign-request --out-dir` killed during its commit leaves a journal and temporary files in
    // the output folder: the next command writing there completes that batch first.
    let root = scratch()?;
    let d = root.path();
    let r = kubepki(
        d,
        &["user", "create", "jane", "--csr-only", "--out-dir", "u"],
    )?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    fs::create_dir_all(d.join("out"))?;
    let temp = ".earlier.crt.kubepki-4194999-aa.tmp";
    fs::write(d.join("out").join(temp), "EARLIER")?;
    fs::write(d.join("out/.x.key.kubepki-4194999-ac.tmp"), "stale key")?;
    fs::write(
        d.join("out/.kubepki-journal-4194999-ab"),
        format!("folders 1\nL\t{temp}\tearlier.crt\nend\n"),
    )?;
    let r = kubepki(
        d,
        &[
            "sign-request",
            "u/jane-csr.yaml",
            "--ca-cert",
            "t/pki/ca.crt",
            "--ca-key",
            "t/pki/ca.key",
            "--out-dir",
            "out",
        ],
    )?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(fs::read_to_string(d.join("out/earlier.crt"))?, "EARLIER");
    assert!(d.join("out/jane.crt").exists());
    let left: Vec<_> = files_under(&d.join("out"))
        .into_iter()
        .filter(|f| f.to_string_lossy().contains(".kubepki-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    Ok(())
}

#[test]
fn a_full_disk_at_every_stage_leaves_nothing_behind() -> R {
    // A small tmpfs gives ENOSPC; at a range of sizes the failure hits temporary files, the
    // journals and the folder's own entries. Needs root for mount(8): CI runs as root.
    let root_user = Command::new("id").arg("-u").output()?.stdout == b"0\n";
    if !root_user {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run this test as root"
        );
        eprintln!("skipped: not root (mount needs root)");
        return Ok(());
    }
    let mut failed = 0;
    let mut passed = 0;
    for kib in (8..=240).step_by(8) {
        let scratch = tempfile::tempdir()?;
        let mnt = scratch.path().join("small");
        fs::create_dir(&mnt)?;
        let size = format!("size={kib}k");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &size, "tmpfs"])
            .arg(&mnt)
            .status()?;
        assert!(ok.success(), "mount tmpfs");
        let r = kubepki(
            &mnt,
            &args(&["init", "--encryption-algorithm", "ECDSA-P256"]),
        );
        let left = files_under(&mnt);
        let verify = kubepki(&mnt, &args(&["verify"]));
        let _ = Command::new("umount").arg(&mnt).status();
        let (r, verify) = (r?, verify?);
        if r.code == 0 {
            passed += 1;
            assert_eq!(verify.code, 0, "{kib} KiB: {}", verify.stdout);
        } else {
            failed += 1;
            assert_eq!(r.code, 1, "{kib} KiB: {}", r.stderr);
            assert!(
                r.stderr.contains("No space left on device") && r.stderr.contains("t/"),
                "{kib} KiB: the error names the file and the cause: {}",
                r.stderr
            );
            assert!(left.is_empty(), "{kib} KiB: left behind {left:?}");
        }
    }
    eprintln!("{failed} runs hit ENOSPC, {passed} completed");
    assert!(
        failed >= 3 && passed >= 1,
        "the sizes span the failure and success"
    );
    Ok(())
}

fn init_at(d: &Path, kc: &str, node: &str, ip: &str) -> R {
    let cert_dir = format!("{kc}/pki");
    let r = kubepki(
        d,
        &[
            "init",
            "--cert-dir",
            &cert_dir,
            "--kubeconfig-dir",
            kc,
            "--node-name",
            node,
            "--apiserver-advertise-address",
            ip,
            "--encryption-algorithm",
            "ECDSA-P256",
        ],
    )?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    Ok(())
}

#[test]
fn a_failed_control_plane_node_never_removes_files_through_a_swapped_folder() -> R {
    // `node control-plane` copies the shared CA files, then makes the node's own; when that
    // fails (here: an unusable admin.conf already there) the copies are taken back. Meanwhile
    // the node's certificate folder is swapped for a link to another tree, again and again:
    // the other tree must keep every file.
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let root = tempfile::tempdir()?;
    let d = root.path();
    init_at(d, "first", "cp1", "192.0.2.10")?;
    init_at(d, "victim", "v1", "192.0.2.20")?;
    let before = snapshot(&d.join("victim"));
    for round in 0..8u64 {
        let _ = fs::remove_dir_all(d.join("n2"));
        fs::create_dir_all(d.join("n2"))?;
        fs::write(d.join("n2/admin.conf"), "not a kubeconfig")?;
        let stop = Arc::new(AtomicBool::new(false));
        let swapper = {
            let (d, stop) = (d.to_owned(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let (pki, real) = (d.join("n2/pki"), d.join("n2/pki.real"));
                while !stop.load(Ordering::SeqCst) {
                    if fs::rename(&pki, &real).is_ok() {
                        let _ = std::os::unix::fs::symlink(d.join("victim/pki"), &pki);
                        std::thread::sleep(Duration::from_micros(200 + round * 100));
                        let _ = fs::remove_file(&pki);
                        let _ = fs::rename(&real, &pki);
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
            })
        };
        let r = kubepki(
            d,
            &[
                "node",
                "control-plane",
                "--from-cert-dir",
                "first/pki",
                "--cert-dir",
                "n2/pki",
                "--kubeconfig-dir",
                "n2",
                "--node-name",
                "cp2",
                "--control-plane-endpoint",
                "api.example:6443",
                "--apiserver-advertise-address",
                "192.0.2.11",
                "--encryption-algorithm",
                "ECDSA-P256",
            ],
        )?;
        stop.store(true, Ordering::SeqCst);
        swapper.join().map_err(|_| "swapper thread")?;
        assert_ne!(
            r.code, 0,
            "round {round}: the unusable admin.conf must fail the command"
        );
        assert_ne!(r.code, 101, "{}", r.stderr);
        assert_eq!(
            snapshot(&d.join("victim")),
            before,
            "round {round}: {}",
            r.stderr
        );
    }
    Ok(())
}

#[test]
fn a_journal_named_with_our_own_pid_is_still_a_dead_batch() -> R {
    // In a container every kubepki run is PID 1: a batch a PID-1 run left is reported by the
    // next PID-1 reader, not taken for its own. Needs root for unshare (CI runs as root).
    let unshare_ok = Command::new("unshare")
        .args(["-pf", "--mount-proc", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !unshare_ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must be able to unshare"
        );
        eprintln!("skipped: needs root and unshare");
        return Ok(());
    }
    let root = tempfile::tempdir()?;
    let d = root.path();
    init_at(d, "t", "cp1", "192.0.2.10")?;
    fs::write(d.join("t/pki/.apiserver.crt.kubepki-1-0bad.tmp"), "stale")?;
    fs::write(
        d.join("t/pki/.kubepki-journal-1-0bae"),
        "folders 1\nR\t.apiserver.crt.kubepki-1-0bad.tmp\tapiserver.crt\nend\n",
    )?;
    let out = Command::new("unshare")
        .args(["-pf", "--mount-proc", BIN, "certs", "check-expiration"])
        .args(["--cert-dir", "t/pki", "--kubeconfig-dir", "t"])
        .current_dir(d)
        .output()?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains(".kubepki-journal-1-0bae"),
        "not reported: {text}"
    );
    Ok(())
}

#[test]
fn a_batch_killed_before_every_journal_was_armed_is_dropped_whole() -> R {
    // The state a kill leaves between writing the journal of pki/ and arming them all: no file
    // moved yet. The next init drops that batch (it never started) and makes the tree anew;
    // it must not half replay it.
    let root = tempfile::tempdir()?;
    let d = root.path();
    init_at(d, "full", "cp1", "192.0.2.10")?;
    let dead = 4_194_999u32;
    fs::create_dir_all(d.join("t/pki/etcd"))?;
    let mut journal = String::from("folders 3\n");
    for (i, (sub, listed)) in [("pki", true), ("pki/etcd", false), ("", false)]
        .into_iter()
        .enumerate()
    {
        for e in fs::read_dir(d.join("full").join(sub))? {
            let e = e?;
            if !e.file_type()?.is_file() {
                continue;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            let temp = format!(".{name}.kubepki-{dead}-0{i}.tmp");
            fs::copy(e.path(), d.join("t").join(sub).join(&temp))?;
            if listed {
                journal.push_str(&format!("L\t{temp}\t{name}\n"));
            }
        }
    }
    fs::write(d.join(format!("t/pki/.kubepki-journal-{dead}-01")), journal)?;
    let r = kubepki(d, &args(&["init", "--encryption-algorithm", "ECDSA-P256"]))?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(kubepki(d, &args(&["verify"]))?.code, 0);
    assert!(
        !files_under(d)
            .iter()
            .any(|f| f.to_string_lossy().contains(".kubepki-"))
    );
    Ok(())
}

#[test]
fn a_renewal_failing_midway_puts_the_old_files_back() -> R {
    // An overwriting batch that cannot replace one file (immutable here; EIO or a read-only
    // remount alike) changes nothing: every pair stays as it was. Needs root for chattr.
    let root = tempfile::tempdir()?;
    let d = root.path();
    assert_eq!(
        kubepki(d, &args(&["init", "--encryption-algorithm", "ECDSA-P256"]))?.code,
        0
    );
    let pinned = d.join("t/pki/etcd/server.crt");
    if !Command::new("chattr")
        .arg("+i")
        .arg(&pinned)
        .status()
        .is_ok_and(|s| s.success())
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must be able to chattr"
        );
        eprintln!("skipped: chattr +i not possible here");
        return Ok(());
    }
    let before = snapshot(d);
    let renew = kubepki(d, &args(&["certs", "renew", "all"]));
    let _ = Command::new("chattr").arg("-i").arg(&pinned).status();
    let renew = renew?;
    assert_ne!(renew.code, 0);
    assert!(renew.stderr.contains("etcd/server.crt"), "{}", renew.stderr);
    assert_eq!(snapshot(d), before, "a failed renewal changed files");
    assert_eq!(kubepki(d, &args(&["verify"]))?.code, 0);
    Ok(())
}
