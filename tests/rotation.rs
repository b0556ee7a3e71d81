//! `ca rotate start|reissue|finish` against real implementations: at every phase boundary the
//! files of the stage before and of the stage after (mixed, as on a cluster whose components
//! restart one at a time) still complete TLS handshakes with client-certificate auth in
//! OpenSSL; a real three-member etcd cluster stays healthy through a rolling rotation of its
//! nodes; service-account tokens signed before and after verify as the API server would verify
//! them (Python `cryptography`). After `finish`, what the old CA signed is refused.
//!
//! Snapshots of each stage are folder copies (`s0` idle after init, `s1` started, `s2`
//! reissued, `s3` finished), so files of two stages can be mixed.

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kubepki_interop::{
    Outcome, Proc, etcd_member_args, free_port, run, run_ok, spawn, wait_listening,
};
use kubepki_keys::KeyAlgorithm;
use kubepki_kubeadm::{
    ClusterSpec, Plan, RotateOptions, RotationPhase, RotationStage, RotationTarget, Selection,
    control_plane_node, rotate, rotation_status,
};

type R = Result<(), Box<dyn std::error::Error>>;
type Res<T> = Result<T, Box<dyn std::error::Error>>;

const PHASES: [RotationPhase; 3] = [
    RotationPhase::Start,
    RotationPhase::Reissue,
    RotationPhase::Finish,
];

fn s(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

/// A node's spec: its tree in `dir` (`dir/pki`, kubeconfigs in `dir`), ECDSA P-256 keys.
fn spec(dir: &Path, node: &str, ip: [u8; 4], endpoint: Option<&str>) -> ClusterSpec {
    let mut sp = ClusterSpec::with_advertise_address(IpAddr::from(ip));
    sp.node_name = Some(node.into());
    sp.encryption_algorithm = KeyAlgorithm::EcdsaP256;
    sp.control_plane_endpoint = endpoint.map(str::to_owned);
    sp.cert_dir = dir.join("pki");
    sp.kubeconfig_dir = dir.to_owned();
    sp
}

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// Copies a folder recursively (files keep their mode: `fs::copy` copies permissions).
fn copy_dir(src: &Path, dst: &Path) -> R {
    fs::create_dir_all(dst)?;
    for e in fs::read_dir(src)? {
        let e = e?;
        let to = dst.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &to)?;
        } else {
            fs::copy(e.path(), &to)?;
        }
    }
    Ok(())
}

/// Runs `phase` on `sp`'s folders (every target) and checks that every target reached the
/// phase's stage.
fn phase(sp: &ClusterSpec, p: RotationPhase, from: Option<&Path>) -> R {
    let mut opts = RotateOptions::default();
    opts.from_cert_dir = from.map(Path::to_owned);
    let r = rotate(sp, p, &opts, now()).map_err(|e| format!("{p} on {:?}: {e}", sp.cert_dir))?;
    assert!(!r.unchanged(), "{p} on {:?} changed nothing", sp.cert_dir);
    let st = rotation_status(sp)?;
    for t in &st.targets {
        assert_eq!(
            t.stage,
            Some(p.result()),
            "{p} on {:?}: {} is at {:?}: {t:?}",
            sp.cert_dir,
            t.target,
            t.stage
        );
        assert!(t.files.iter().all(|f| f.ok), "{p}: lagging files: {t:?}");
    }
    assert_eq!(st.targets.len(), RotationTarget::ALL.len());
    Ok(())
}

/// Standard base64 (kubeconfig `*-data` fields), decoded here so that the test does not read
/// kubeconfigs through the library it checks.
fn base64_decode(text: &str) -> Res<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            b' ' | b'\n' | b'\r' | b'"' => continue,
            _ => return Err(format!("not base64: {c:?}").into()),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

/// The decoded value of the (only) `field:` line of a kubeconfig.
fn kubeconfig_field(path: &Path, field: &str) -> Res<Vec<u8>> {
    let text = fs::read_to_string(path)?;
    let mut found = text.lines().filter_map(|l| {
        l.trim()
            .strip_prefix(field)
            .and_then(|r| r.strip_prefix(':'))
            .map(str::trim)
    });
    let value = found
        .next()
        .ok_or_else(|| format!("{}: no {field}:\n{text}", path.display()))?;
    assert!(found.next().is_none(), "{}: two {field}", path.display());
    base64_decode(value)
}

/// Writes a kubeconfig's client certificate, key and CA data next to it as
/// `<file>.crt`, `<file>.key`, `<file>.ca.crt`; returns their paths.
fn extract_kubeconfig(path: &Path) -> Res<(PathBuf, PathBuf, PathBuf)> {
    let out = |ext: &str| PathBuf::from(format!("{}.{ext}", path.display()));
    let (crt, key, ca) = (out("crt"), out("key"), out("ca.crt"));
    fs::write(&crt, kubeconfig_field(path, "client-certificate-data")?)?;
    fs::write(&key, kubeconfig_field(path, "client-key-data")?)?;
    fs::write(&ca, kubeconfig_field(path, "certificate-authority-data")?)?;
    Ok((crt, key, ca))
}

fn count_blocks(path: &Path, label: &str) -> Res<usize> {
    Ok(fs::read_to_string(path)?
        .matches(&format!("-----BEGIN {label}-----"))
        .count())
}

/// One init'd tree in `root/work`, rotated through every phase; returns the snapshot folders
/// `root/s0` .. `root/s3`.
fn snapshots(root: &Path) -> Res<Vec<PathBuf>> {
    let work = root.join("work");
    let sp = spec(&work, "cp1", [192, 0, 2, 10], None);
    kubepki_kubeadm::init_tree(&Plan::new(&sp)?, &Selection::all(), now(), false)?;
    let snap = |k: usize| -> Res<PathBuf> {
        let d = root.join(format!("s{k}"));
        copy_dir(&work, &d)?;
        Ok(d)
    };
    let mut out = vec![snap(0)?];
    let st = rotation_status(&sp)?;
    assert!(
        st.targets
            .iter()
            .all(|t| t.stage == Some(RotationStage::Idle)),
        "{st:?}"
    );
    for (i, p) in PHASES.into_iter().enumerate() {
        phase(&sp, p, None)?;
        out.push(snap(i + 1)?);
    }
    // How many CAs each stage trusts: 1, 2, 2, 1.
    for (k, d) in out.iter().enumerate() {
        let want = if k == 1 || k == 2 { 2 } else { 1 };
        for f in ["pki/ca.crt", "pki/front-proxy-ca.crt", "pki/etcd/ca.crt"] {
            let n = count_blocks(&d.join(f), "CERTIFICATE")?;
            assert_eq!(n, want, "stage {k}: {f} holds {n} certificates");
        }
        let n = count_blocks(&d.join("pki/sa.pub"), "PUBLIC KEY")?;
        assert_eq!(n, want, "stage {k}: sa.pub holds {n} keys");
    }
    Ok(out)
}

/// `openssl s_server` requiring a client certificate from `client_ca`, serving its status page
/// (`-www`): a client the server accepted reads `HTTP/1.0 200 ok`.
struct Server {
    _proc: Proc,
    port: u16,
    log: PathBuf,
}

impl Server {
    fn start(dir: &Path, name: &str, cert: &Path, key: &Path, client_ca: &Path) -> Res<Server> {
        let port = free_port()?;
        let args: Vec<String> = [
            "s_server",
            "-accept",
            &format!("127.0.0.1:{port}"),
            "-cert",
            s(cert),
            "-key",
            s(key),
            "-CAfile",
            s(client_ca),
            "-Verify",
            "1",
            "-verify_return_error",
            "-www",
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
        let log = format!("{name}.log");
        let mut proc = spawn(dir, "openssl", &args, &log)?;
        wait_listening(port, &mut proc, Duration::from_secs(10))?;
        Ok(Server {
            _proc: proc,
            port,
            log: dir.join(log),
        })
    }

    /// One connection with `cert`/`key`, verifying the server against `trust`.
    fn connect(&self, cert: &Path, key: &Path, trust: &Path) -> Res<Outcome> {
        s_client(self.port, cert, key, trust, "GET / HTTP/1.0\r\n\r\n")
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// `openssl s_client` to 127.0.0.1:`port` with `cert`/`key`, verifying the server against
/// `trust`, sending `request` and reading the answer until the server closes.
fn s_client(port: u16, cert: &Path, key: &Path, trust: &Path, request: &str) -> Res<Outcome> {
    let connect = format!("127.0.0.1:{port}");
    let mut child = Command::new("timeout")
        .args([
            "20",
            "openssl",
            "s_client",
            "-connect",
            &connect,
            "-CAfile",
            s(trust),
            "-cert",
            s(cert),
            "-key",
            s(key),
            "-verify_return_error",
            "-ign_eof",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(request.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    Ok(Outcome::of(&out))
}

/// The client verified the server and the server accepted the client.
fn served(o: &Outcome) -> bool {
    o.output.contains("Verify return code: 0 (ok)") && o.output.contains("HTTP/1.0 200 ok")
}

/// The files of one CA's pair in a stage folder: (server cert, key, client CA file) and
/// (client cert, key, the client's trust file for the server).
struct Pair {
    name: &'static str,
    server: fn(&Path) -> (PathBuf, PathBuf, PathBuf),
    client: fn(&Path) -> (PathBuf, PathBuf, PathBuf),
}

const PAIRS: [Pair; 3] = [
    Pair {
        name: "ca",
        server: |d| {
            (
                d.join("pki/apiserver.crt"),
                d.join("pki/apiserver.key"),
                d.join("pki/ca.crt"),
            )
        },
        client: |d| {
            (
                d.join("admin.conf.crt"),
                d.join("admin.conf.key"),
                d.join("admin.conf.ca.crt"),
            )
        },
    },
    Pair {
        name: "front-proxy-ca",
        server: |d| {
            (
                d.join("pki/apiserver.crt"),
                d.join("pki/apiserver.key"),
                d.join("pki/front-proxy-ca.crt"),
            )
        },
        client: |d| {
            (
                d.join("pki/front-proxy-client.crt"),
                d.join("pki/front-proxy-client.key"),
                d.join("pki/ca.crt"),
            )
        },
    },
    Pair {
        name: "etcd-ca",
        server: |d| {
            (
                d.join("pki/etcd/server.crt"),
                d.join("pki/etcd/server.key"),
                d.join("pki/etcd/ca.crt"),
            )
        },
        client: |d| {
            (
                d.join("pki/apiserver-etcd-client.crt"),
                d.join("pki/apiserver-etcd-client.key"),
                d.join("pki/etcd/ca.crt"),
            )
        },
    },
];

/// Every leaf of a stage folder with the trust file of its CA (the kubeconfigs' client
/// certificates extracted by [`extract_kubeconfig`]).
fn leaves(d: &Path) -> Vec<(PathBuf, PathBuf)> {
    let ca = d.join("pki/ca.crt");
    let fp = d.join("pki/front-proxy-ca.crt");
    let etcd = d.join("pki/etcd/ca.crt");
    let mut v = vec![
        (d.join("pki/apiserver.crt"), ca.clone()),
        (d.join("pki/apiserver-kubelet-client.crt"), ca.clone()),
        (d.join("pki/front-proxy-client.crt"), fp),
        (d.join("pki/apiserver-etcd-client.crt"), etcd.clone()),
        (d.join("pki/etcd/server.crt"), etcd.clone()),
        (d.join("pki/etcd/peer.crt"), etcd.clone()),
        (d.join("pki/etcd/healthcheck-client.crt"), etcd),
    ];
    for k in KUBECONFIGS {
        v.push((d.join(format!("{k}.crt")), ca.clone()));
    }
    v
}

const KUBECONFIGS: [&str; 5] = [
    "admin.conf",
    "super-admin.conf",
    "controller-manager.conf",
    "scheduler.conf",
    "kubelet.conf",
];

/// For each CA and each boundary k -> k+1, servers of stages k and k+1 accept clients of
/// stages k and k+1 (both verify each other); after `finish` the old CA's client certificates
/// are refused and no stage-0 leaf verifies against the stage-3 trust files.
#[test]
fn tls_across_every_phase_boundary() -> R {
    let started = Instant::now();
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    let stages = snapshots(root)?;
    for (k, d) in stages.iter().enumerate() {
        for kc in KUBECONFIGS {
            extract_kubeconfig(&d.join(kc))?;
        }
        let n = count_blocks(&d.join("admin.conf.ca.crt"), "CERTIFICATE")?;
        let want = if k == 1 || k == 2 { 2 } else { 1 };
        assert_eq!(n, want, "stage {k}: admin.conf's CA data holds {n} certs");
    }
    let mut handshakes = 0;
    for pair in &PAIRS {
        // One server per stage, for every client stage that talks to it.
        let mut servers = Vec::new();
        for (st, d) in stages.iter().enumerate() {
            let (crt, key, client_ca) = (pair.server)(d);
            servers.push(Server::start(
                root,
                &format!("{}-s{st}", pair.name),
                &crt,
                &key,
                &client_ca,
            )?);
        }
        for k in 0..3 {
            for sst in [k, k + 1] {
                for cst in [k, k + 1] {
                    let (crt, key, trust) = (pair.client)(&stages[cst]);
                    let server = &servers[sst];
                    let o = server.connect(&crt, &key, &trust)?;
                    assert!(
                        served(&o),
                        "{}: boundary {k}->{}: server stage {sst}, client stage {cst} failed:\n{}\nserver log:\n{}",
                        pair.name,
                        k + 1,
                        o.output,
                        server.log()
                    );
                    handshakes += 1;
                }
            }
        }
        // After finish: the old CA's client certificates (stages 0 and 1) are refused by the
        // server of stage 3, even by a client that trusts that server (stage 3's trust).
        let server = &servers[3];
        let (_, _, trust3) = (pair.client)(&stages[3]);
        for old in [0, 1] {
            let (crt, key, own_trust) = (pair.client)(&stages[old]);
            let o = server.connect(&crt, &key, &trust3)?;
            assert!(
                !served(&o) && o.output.contains("Verify return code: 0 (ok)"),
                "{}: stage-{old} client accepted by the stage-3 server (or the server not verified):\n{}\nserver log:\n{}",
                pair.name,
                o.output,
                server.log()
            );
            let o = server.connect(&crt, &key, &own_trust)?;
            assert!(
                !served(&o),
                "{}: stage-{old} client with its own trust accepted by the stage-3 server:\n{}",
                pair.name,
                o.output
            );
        }
        // Stages two apart do not mix: the idle server (stage 0) trusts only the old CA and
        // refuses a client certificate the new CA issued (stage 2), even from a client that
        // trusts it.
        let (crt, key, _) = (pair.client)(&stages[2]);
        let (_, _, trust0) = (pair.client)(&stages[0]);
        let o = servers[0].connect(&crt, &key, &trust0)?;
        assert!(
            !served(&o) && o.output.contains("Verify return code: 0 (ok)"),
            "{}: stage-2 client accepted by the stage-0 server:\n{}",
            pair.name,
            o.output
        );
        // The server still serves the current clients after refusing (not crashed).
        let (crt, key, trust) = (pair.client)(&stages[3]);
        let o = server.connect(&crt, &key, &trust)?;
        assert!(served(&o), "{}: {}", pair.name, o.output);
        drop(servers);
    }
    assert_eq!(handshakes, 3 * 3 * 4);
    // Every stage-0 leaf fails against the stage-3 trust file of its CA; every stage-3 leaf
    // passes; stage-2 leaves (reissued by the new CA) pass too.
    for ((old, old_trust), (new, new_trust)) in
        leaves(&stages[0]).into_iter().zip(leaves(&stages[3]))
    {
        let trust3 = stages[3].join(new_trust.strip_prefix(&stages[3])?);
        assert_eq!(trust3, new_trust);
        let o = run(
            root,
            "openssl",
            &["verify", "-CAfile", s(&new_trust), s(&old)],
        )?;
        assert!(
            !o.ok,
            "stage-0 {} verifies against stage-3 {}: {}",
            old.display(),
            new_trust.display(),
            o.output
        );
        run_ok(
            root,
            "openssl",
            &["verify", "-CAfile", s(&new_trust), s(&new)],
        )?;
        // And the stage-0 leaf did verify against its own stage's trust.
        run_ok(
            root,
            "openssl",
            &["verify", "-CAfile", s(&old_trust), s(&old)],
        )?;
        let reissued = stages[2].join(new.strip_prefix(&stages[3])?);
        run_ok(
            root,
            "openssl",
            &["verify", "-CAfile", s(&new_trust), s(&reissued)],
        )?;
    }
    eprintln!("tls_across_every_phase_boundary: {:?}", started.elapsed());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// etcd.

/// One etcd member of the cluster, on its node's etcd files.
struct Member {
    name: String,
    node: PathBuf,
    client: u16,
    peer: u16,
    restarts: usize,
    proc: Option<Proc>,
}

impl Member {
    fn args(&self, cluster: &str, data: &Path) -> Vec<String> {
        etcd_member_args(
            &self.name,
            &data.join(format!("{}.etcd", self.name)),
            (self.client, self.peer),
            cluster,
            &self.node.join("pki/etcd"),
        )
    }

    fn start(&mut self, cluster: &str, data: &Path) -> R {
        let log = format!("{}-{}.log", self.name, self.restarts);
        self.restarts += 1;
        let mut p = spawn(data, "etcd", &self.args(cluster, data), &log)?;
        wait_listening(self.client, &mut p, Duration::from_secs(20)).map_err(|e| {
            format!(
                "{e}\n{}",
                fs::read_to_string(data.join(&log)).unwrap_or_default()
            )
        })?;
        self.proc = Some(p);
        Ok(())
    }

    /// The current process's whole log.
    fn full_log(&self, data: &Path) -> String {
        let log = format!("{}-{}.log", self.name, self.restarts.saturating_sub(1));
        fs::read_to_string(data.join(log)).unwrap_or_default()
    }

    /// The last lines of the current process's log.
    fn log(&self, data: &Path) -> String {
        let text = self.full_log(data);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

/// An apiserver-etcd-client of one stage: cert, key and the trust file (`etcd/ca.crt`).
struct EtcdClient {
    label: String,
    crt: PathBuf,
    key: PathBuf,
    cacert: PathBuf,
}

impl EtcdClient {
    fn of(label: String, d: &Path) -> EtcdClient {
        EtcdClient {
            label,
            crt: d.join("pki/apiserver-etcd-client.crt"),
            key: d.join("pki/apiserver-etcd-client.key"),
            cacert: d.join("pki/etcd/ca.crt"),
        }
    }

    fn ctl(&self, dir: &Path, port: u16, args: &[&str]) -> Res<Outcome> {
        self.ctl_trusting(dir, port, &self.cacert, args)
    }

    fn ctl_trusting(&self, dir: &Path, port: u16, cacert: &Path, args: &[&str]) -> Res<Outcome> {
        let ep = format!("https://127.0.0.1:{port}");
        let mut a = vec![
            "--endpoints",
            &ep,
            "--cacert",
            s(cacert),
            "--cert",
            s(&self.crt),
            "--key",
            s(&self.key),
            "--dial-timeout",
            "3s",
            "--command-timeout",
            "5s",
        ];
        a.extend_from_slice(args);
        Ok(run(dir, "etcdctl", &a)?)
    }
}

/// Waits until `port` answers `endpoint health` for `c` and the cluster lists 3 started
/// members.
fn wait_healthy(dir: &Path, port: u16, c: &EtcdClient, logs: &dyn Fn() -> String) -> R {
    let start = Instant::now();
    loop {
        let h = c.ctl(dir, port, &["endpoint", "health"])?;
        if h.ok {
            let m = c.ctl(dir, port, &["member", "list"])?;
            if m.ok && m.output.matches(", started,").count() == 3 {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(40) {
                return Err(format!("member list: {}\n{}", m.output, logs()).into());
            }
        } else if start.elapsed() > Duration::from_secs(40) {
            return Err(format!(
                "etcd on {port} never became healthy for {}: {}\n{}",
                c.label,
                h.output,
                logs()
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Three control-plane nodes (cp1 by init, cp2 and cp3 joined from cp1's CAs), a three-member
/// etcd cluster with client and peer TLS, each member on its node's files. Each phase runs on
/// one node at a time and its member restarts; after each restart the cluster is healthy and
/// every member takes writes from that node's apiserver-etcd-client of the stage before and
/// of the stage after. After `finish` everywhere, a stage-0 client is refused by every member.
#[test]
fn etcd_cluster_stays_healthy_through_a_rolling_rotation() -> R {
    let started = Instant::now();
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    let endpoint = Some("cp.example.test:6443");
    let nodes: Vec<PathBuf> = (1..=3).map(|i| root.join(format!("n{i}"))).collect();
    let specs: Vec<ClusterSpec> = nodes
        .iter()
        .enumerate()
        .map(|(i, d)| {
            spec(
                d,
                &format!("cp{}", i + 1),
                [192, 0, 2, 10 + i as u8],
                endpoint,
            )
        })
        .collect();
    kubepki_kubeadm::init_tree(&Plan::new(&specs[0])?, &Selection::all(), now(), false)?;
    let pki1 = nodes[0].join("pki");
    for sp in &specs[1..] {
        control_plane_node(&Plan::new(sp)?, &pki1, now())?;
    }
    // Stage-0 snapshots of every node.
    for (i, d) in nodes.iter().enumerate() {
        copy_dir(d, &root.join(format!("n{}-s0", i + 1)))?;
    }

    let data = root.join("etcd");
    fs::create_dir(&data)?;
    let mut members = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        members.push(Member {
            name: format!("cp{}", i + 1),
            node: node.clone(),
            client: free_port()?,
            peer: free_port()?,
            restarts: 0,
            proc: None,
        });
    }
    let cluster = members
        .iter()
        .map(|m| format!("{}=https://127.0.0.1:{}", m.name, m.peer))
        .collect::<Vec<_>>()
        .join(",");
    // Start all three (the first waits for a quorum: start them before waiting for health).
    for m in &mut members {
        let log = format!("{}-0.log", m.name);
        m.restarts = 1;
        m.proc = Some(spawn(&data, "etcd", &m.args(&cluster, &data), &log)?);
    }
    let logs = |members: &[Member]| -> String {
        members
            .iter()
            .map(|m| format!("--- {} ---\n{}", m.name, m.log(&data)))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let c0 = EtcdClient::of("cp1 stage 0".into(), &nodes[0]);
    for m in &members {
        wait_healthy(&data, m.client, &c0, &|| logs(&members))?;
    }

    let mut writes = 0;
    for (k, p) in PHASES.into_iter().enumerate() {
        for i in 0..3 {
            let before_dir = root.join(format!("n{}-s{k}", i + 1));
            if k > 0 {
                // The stage before this phase (stage k) is the node's current tree.
                copy_dir(&nodes[i], &before_dir)?;
            }
            let from = (i > 0).then_some(pki1.as_path());
            phase(&specs[i], p, from)?;
            let after_dir = root.join(format!("n{}-s{}", i + 1, k + 1));
            copy_dir(&nodes[i], &after_dir)?;
            // Restart this node's member on its new files.
            members[i].proc = None;
            members[i].start(&cluster, &data)?;
            let before = EtcdClient::of(format!("cp{} stage {k}", i + 1), &before_dir);
            let after = EtcdClient::of(format!("cp{} stage {}", i + 1, k + 1), &after_dir);
            wait_healthy(&data, members[i].client, &after, &|| logs(&members))?;
            eprintln!("{p} on cp{}: healthy after {:?}", i + 1, started.elapsed());
            for m in &members {
                for c in [&before, &after] {
                    let key = format!("/kubepki/{p}/cp{}/{}/{}", i + 1, m.name, c.label);
                    let value = format!("v{writes}");
                    let put = c.ctl(&data, m.client, &["put", &key, &value])?;
                    assert!(
                        put.ok && put.output.contains("OK"),
                        "{p} on cp{}: put through {} with {} failed: {}\n{}",
                        i + 1,
                        m.name,
                        c.label,
                        put.output,
                        logs(&members)
                    );
                    // Read back through every member (replicated over peer TLS).
                    for r in &members {
                        let get = c.ctl(&data, r.client, &["get", &key])?;
                        assert!(
                            get.ok && get.output.contains(&value),
                            "{p} on cp{}: get through {} with {} (written through {}): {}\n{}",
                            i + 1,
                            r.name,
                            c.label,
                            m.name,
                            get.output,
                            logs(&members)
                        );
                    }
                    writes += 1;
                }
            }
            // Still three started members.
            let list = after.ctl(&data, members[i].client, &["member", "list"])?;
            assert_eq!(
                list.output.matches(", started,").count(),
                3,
                "{}",
                list.output
            );
        }
    }
    assert_eq!(writes, 3 * 3 * 3 * 2);
    eprintln!("writes done after {:?}", started.elapsed());
    // All finished: a stage-0 apiserver-etcd-client is refused by every member, even by a
    // client that trusts the new CA (stage 3's etcd/ca.crt): the member refuses it (its log says
    // so), and a plain TLS handshake with it is refused too.
    for (i, m) in members.iter().enumerate() {
        let trust3 = nodes[i].join("pki/etcd/ca.crt");
        assert_eq!(count_blocks(&trust3, "CERTIFICATE")?, 1);
        let old = EtcdClient::of(
            format!("cp{} stage 0", i + 1),
            &root.join(format!("n{}-s0", i + 1)),
        );
        let rejected = |m: &Member| m.full_log(&data).matches("rejected connection").count();
        let before = rejected(m);
        let o = old.ctl_trusting(
            &data,
            m.client,
            &trust3,
            &["--command-timeout", "2s", "put", "/kubepki/old", "x"],
        )?;
        assert!(
            !o.ok && !o.output.contains("OK"),
            "{} accepted {}: {}",
            m.name,
            old.label,
            o.output
        );
        assert!(
            rejected(m) > before,
            "{}: no new rejected connection in its log for {}: {}\n{}",
            m.name,
            old.label,
            o.output,
            m.log(&data)
        );
        let cur = EtcdClient::of(format!("cp{} stage 3", i + 1), &nodes[i]);
        let version = "GET /version HTTP/1.0\r\n\r\n";
        let o = s_client(m.client, &cur.crt, &cur.key, &trust3, version)?;
        assert!(
            o.output.contains("Verify return code: 0 (ok)") && o.output.contains("etcdserver"),
            "{}: {}",
            m.name,
            o.output
        );
        for n in 1..=3 {
            let old = EtcdClient::of(format!("cp{n} stage 0"), &root.join(format!("n{n}-s0")));
            let o = s_client(m.client, &old.crt, &old.key, &trust3, version)?;
            assert!(
                o.output.contains("Verify return code: 0 (ok)") && !o.output.contains("etcdserver"),
                "{} accepted a TLS handshake from {}: {}",
                m.name,
                old.label,
                o.output
            );
        }
        let o = cur.ctl(&data, m.client, &["get", "/kubepki/old"])?;
        assert!(o.ok && !o.output.contains("/kubepki/old"), "{}", o.output);
    }
    drop(members);
    eprintln!(
        "etcd_cluster_stays_healthy_through_a_rolling_rotation: {:?}",
        started.elapsed()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Service-account tokens.

/// Signs a JWT with a PEM private key (RS256 for RSA, ES256 for EC P-256), printing it.
const SIGN_PY: &str = r#"
import base64, json, sys, time
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

key = serialization.load_pem_private_key(open(sys.argv[1], "rb").read(), password=None)
if isinstance(key, rsa.RSAPrivateKey):
    alg = "RS256"
elif isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1":
    alg = "ES256"
else:
    sys.exit("unsupported key type: %r" % (key,))
now = int(time.time())
header = {"alg": alg, "typ": "JWT"}
claims = {"iss": "https://kubernetes.default.svc.cluster.local",
          "sub": "system:serviceaccount:default:default",
          "aud": ["https://kubernetes.default.svc.cluster.local"],
          "iat": now, "nbf": now, "exp": now + 3600}
signing_input = (b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())).encode()
if alg == "RS256":
    sig = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
else:
    r, s = utils.decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
print(signing_input.decode() + "." + b64(sig))
"#;

/// Verifies a JWT against each PUBLIC KEY block of a PEM file, as the API server does
/// (`--service-account-key-file`: any key): prints which verified; exit 0 if one did, 1 if none.
const VERIFY_PY: &str = r#"
import base64, json, re, sys
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

def unb64(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))

pem = open(sys.argv[1]).read()
blocks = re.findall(r"-----BEGIN PUBLIC KEY-----.*?-----END PUBLIC KEY-----", pem, re.S)
if not blocks or len(blocks) != pem.count("-----BEGIN"):
    sys.exit("%s: no PUBLIC KEY blocks, or other blocks: %r" % (sys.argv[1], pem))
token = sys.argv[2]
h, c, sig = token.split(".")
header = json.loads(unb64(h))
signing_input = (h + "." + c).encode()
sig = unb64(sig)
ok = False
for i, block in enumerate(blocks):
    pub = serialization.load_pem_public_key(block.encode())
    try:
        if header["alg"] == "RS256" and isinstance(pub, rsa.RSAPublicKey):
            pub.verify(sig, signing_input, padding.PKCS1v15(), hashes.SHA256())
        elif header["alg"] == "ES256" and isinstance(pub, ec.EllipticCurvePublicKey):
            if len(sig) != 64:
                raise InvalidSignature()
            der = utils.encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
            pub.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
        else:
            print("key %d: %s does not match alg %s" % (i, type(pub).__name__, header["alg"]))
            continue
        print("key %d of %d: verified" % (i, len(blocks)))
        ok = True
    except InvalidSignature:
        print("key %d of %d: invalid signature" % (i, len(blocks)))
sys.exit(0 if ok else 1)
"#;

const PYTHON: &str = "/usr/bin/python3";

fn sign_token(dir: &Path, key: &Path) -> Res<String> {
    let out = run(dir, PYTHON, &["-c", SIGN_PY, s(key)])
        .map_err(|e| format!("{e} (Debian: apt-get install python3 python3-cryptography)"))?;
    assert!(out.ok, "signing with {}: {}", key.display(), out.output);
    let token = out.output.trim().to_owned();
    assert_eq!(token.split('.').count(), 3, "{token}");
    Ok(token)
}

fn verify_token(dir: &Path, public: &Path, token: &str) -> Res<Outcome> {
    let o = run(dir, PYTHON, &["-c", VERIFY_PY, s(public), token])?;
    // Exit 1 is "no key verified"; anything else is a broken script or input.
    assert!(
        o.ok || o.output.contains("invalid signature") && !o.output.contains("Traceback"),
        "verifying against {}: {}",
        public.display(),
        o.output
    );
    Ok(o)
}

/// A token signed with the old sa.key (stage 0) verifies against sa.pub of stages 1 and 2 and
/// not of stage 3; one signed with the new key (stage 2) verifies against stages 1, 2 and 3.
#[test]
fn service_account_tokens_across_phases() -> R {
    let started = Instant::now();
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    let stages = snapshots(root)?;
    let pubs: Vec<PathBuf> = stages.iter().map(|d| d.join("pki/sa.pub")).collect();

    let old = sign_token(root, &stages[0].join("pki/sa.key"))?;
    let header = String::from_utf8(base64_url_decode(old.split('.').next().unwrap_or(""))?)?;
    assert!(
        header.contains("\"ES256\""),
        "P-256 sa.key, header {header}"
    );
    // The stage-1 sa.key is still the old key; the stage-2 one the new key.
    assert_eq!(
        fs::read(stages[0].join("pki/sa.key"))?,
        fs::read(stages[1].join("pki/sa.key"))?,
        "start must not change sa.key"
    );
    assert_ne!(
        fs::read(stages[1].join("pki/sa.key"))?,
        fs::read(stages[2].join("pki/sa.key"))?,
        "reissue must change sa.key"
    );
    assert_eq!(
        fs::read(stages[2].join("pki/sa.key"))?,
        fs::read(stages[3].join("pki/sa.key"))?,
        "finish must not change sa.key"
    );
    for (st, want) in [(0, true), (1, true), (2, true), (3, false)] {
        let o = verify_token(root, &pubs[st], &old)?;
        assert_eq!(
            o.ok, want,
            "old-key token against stage-{st} sa.pub: {}",
            o.output
        );
    }
    let new = sign_token(root, &stages[2].join("pki/sa.key"))?;
    for (st, want) in [(0, false), (1, true), (2, true), (3, true)] {
        let o = verify_token(root, &pubs[st], &new)?;
        assert_eq!(
            o.ok, want,
            "new-key token against stage-{st} sa.pub: {}",
            o.output
        );
    }
    // Order: stage 1 = old + new, stage 2 = new + old (the signer first).
    let o = verify_token(root, &pubs[1], &new)?;
    assert!(o.output.contains("key 1 of 2: verified"), "{}", o.output);
    let o = verify_token(root, &pubs[2], &new)?;
    assert!(o.output.contains("key 0 of 2: verified"), "{}", o.output);
    eprintln!(
        "service_account_tokens_across_phases: {:?}",
        started.elapsed()
    );
    Ok(())
}

fn base64_url_decode(text: &str) -> Res<Vec<u8>> {
    base64_decode(&text.replace('-', "+").replace('_', "/"))
}
