//! Helpers for the interop tests: run real external tools and report their output.
//!
//! The tools (`openssl`, GnuTLS `certtool`) are required: `.ci/run` installs them, and a test
//! that needs a missing tool fails with the install hint instead of skipping.

#[path = "fuzz_bodies.rs"]
pub mod fuzz;

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The result of one external command.
#[derive(Debug)]
pub struct Outcome {
    /// Whether it exited 0.
    pub ok: bool,
    /// stdout + stderr.
    pub output: String,
}

impl Outcome {
    /// A finished process's exit status and its stdout + stderr.
    pub fn of(out: &std::process::Output) -> Outcome {
        Outcome {
            ok: out.status.success(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }
}

/// Runs `tool` with `args` in `dir`. A missing tool is an error naming the Debian package.
pub fn run(dir: &Path, tool: &str, args: &[&str]) -> Result<Outcome, String> {
    let out = Command::new(tool)
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| {
            format!(
                "cannot run `{tool}` ({e}); install it (Debian: apt-get install openssl gnutls-bin)"
            )
        })?;
    Ok(Outcome::of(&out))
}

/// Runs and requires success.
pub fn run_ok(dir: &Path, tool: &str, args: &[&str]) -> Result<String, String> {
    let o = run(dir, tool, args)?;
    if o.ok {
        Ok(o.output)
    } else {
        Err(format!("`{tool} {}` failed:\n{}", args.join(" "), o.output))
    }
}

/// `openssl verify -x509_strict -purpose PURPOSE -CAfile CA CERT`, run in `dir`.
pub fn openssl_verify(dir: &Path, purpose: &str, ca: &str, cert: &str) -> Result<Outcome, String> {
    run(dir, "openssl", &verify_args(purpose, ca, cert))
}

/// [`openssl_verify`] that must succeed: its output.
pub fn openssl_verify_ok(
    dir: &Path,
    purpose: &str,
    ca: &str,
    cert: &str,
) -> Result<String, String> {
    run_ok(dir, "openssl", &verify_args(purpose, ca, cert))
}

fn verify_args<'a>(purpose: &'a str, ca: &'a str, cert: &'a str) -> [&'a str; 7] {
    [
        "verify",
        "-x509_strict",
        "-purpose",
        purpose,
        "-CAfile",
        ca,
        cert,
    ]
}

/// Writes the client certificate and key of the current user of the kubeconfig `path`
/// (embedded or referenced) to `crt` and `key`.
pub fn extract_client(
    path: &Path,
    crt: &Path,
    key: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let kc = kubepki_kubeadm::Kubeconfig::from_slice(path, &fs::read(path)?)?;
    fs::write(crt, kc.current_client_cert_pem(path)?.ok_or("no cert")?)?;
    fs::write(
        key,
        kc.current_client_key_pem(path)?.ok_or("no key")?.as_slice(),
    )?;
    Ok(())
}

/// A child process killed (by its PID) when dropped.
pub struct Proc(pub Child, pub &'static str);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> Result<u16, Box<dyn std::error::Error>> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits until `port` accepts connections or the process exits.
pub fn wait_listening(
    port: u16,
    p: &mut Proc,
    deadline: Duration,
) -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if let Some(status) = p.0.try_wait()? {
            return Err(format!("{} exited early: {status}", p.1).into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("{} did not listen on {port} within {deadline:?}", p.1).into())
}

/// Starts `tool` in `dir` with its output in `dir/log`.
pub fn spawn(
    dir: &Path,
    tool: &'static str,
    args: &[String],
    log: &str,
) -> Result<Proc, Box<dyn std::error::Error>> {
    let log = fs::File::create(dir.join(log))?;
    let child = Command::new(tool)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot run `{tool}` ({e}); install it (Debian: apt-get install etcd-server etcd-client)"))?;
    Ok(Proc(child, tool))
}

/// The arguments of one etcd member on 127.0.0.1 with client and peer TLS from the etcd files
/// of a kubeadm tree (`etcd_pki`: `server.crt`, `peer.crt`, `ca.crt`, ...), client-certificate
/// auth on both, its data in `data_dir`, in the cluster `cluster` (`name=https://...,...`).
pub fn etcd_member_args(
    name: &str,
    data_dir: &Path,
    (client, peer): (u16, u16),
    cluster: &str,
    etcd_pki: &Path,
) -> Vec<String> {
    let e = |f: &str| etcd_pki.join(f).display().to_string();
    [
        "--name",
        name,
        "--data-dir",
        &data_dir.display().to_string(),
        "--listen-client-urls",
        &format!("https://127.0.0.1:{client}"),
        "--advertise-client-urls",
        &format!("https://127.0.0.1:{client}"),
        "--listen-peer-urls",
        &format!("https://127.0.0.1:{peer}"),
        "--initial-advertise-peer-urls",
        &format!("https://127.0.0.1:{peer}"),
        "--initial-cluster",
        cluster,
        "--initial-cluster-state",
        "new",
        "--cert-file",
        &e("server.crt"),
        "--key-file",
        &e("server.key"),
        "--client-cert-auth",
        "--trusted-ca-file",
        &e("ca.crt"),
        "--peer-cert-file",
        &e("peer.crt"),
        "--peer-key-file",
        &e("peer.key"),
        "--peer-client-cert-auth",
        "--peer-trusted-ca-file",
        &e("ca.crt"),
        "--listen-metrics-urls",
        "",
    ]
    .iter()
    .map(|x| x.to_string())
    .collect()
}

/// An `openssl s_server` that requires client certificates from a CA (`-Verify 2
/// -verify_return_error`), serving its status page; stopped by PID when dropped.
pub struct TlsServer {
    proc: Proc,
    accept: String,
    ca: std::path::PathBuf,
    dir: std::path::PathBuf,
}

impl TlsServer {
    /// Starts the server on a free port with `cert`/`key`, trusting client certificates from `ca`.
    pub fn start(
        dir: &Path,
        cert: &Path,
        key: &Path,
        ca: &Path,
    ) -> Result<TlsServer, Box<dyn std::error::Error>> {
        let port = free_port()?;
        let accept = format!("127.0.0.1:{port}");
        let p = |x: &Path| x.display().to_string();
        let args: Vec<String> = vec![
            "s_server".into(),
            "-accept".into(),
            accept.clone(),
            "-cert".into(),
            p(cert),
            "-key".into(),
            p(key),
            "-CAfile".into(),
            p(ca),
            "-Verify".into(),
            "2".into(),
            "-verify_return_error".into(),
            "-www".into(),
        ];
        let mut proc = spawn(dir, "openssl", &args, "s_server.log")?;
        wait_listening(port, &mut proc, Duration::from_secs(10))?;
        Ok(TlsServer {
            proc,
            accept,
            ca: ca.to_owned(),
            dir: dir.to_owned(),
        })
    }

    /// One TLS connection with `cert`/`key` as client certificate, server name `kubernetes`,
    /// the server verified against the CA, an HTTP request sent and the answer read.
    pub fn connect(
        &self,
        cert: &Path,
        key: &Path,
        extra: &[&str],
    ) -> Result<Outcome, Box<dyn std::error::Error>> {
        let (ca, cert, key) = (
            self.ca.display().to_string(),
            cert.display().to_string(),
            key.display().to_string(),
        );
        let mut a: Vec<&str> = vec![
            "s_client",
            "-connect",
            &self.accept,
            "-CAfile",
            &ca,
            "-cert",
            &cert,
            "-key",
            &key,
            "-servername",
            "kubernetes",
            "-verify_return_error",
            "-ign_eof",
        ];
        a.extend_from_slice(extra);
        let mut child = Command::new("openssl")
            .args(&a)
            .current_dir(&self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write;
            stdin.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
        }
        let out = child.wait_with_output()?;
        Ok(Outcome::of(&out))
    }

    /// The subjects of the client certificates the server verified so far (`depth=0` lines of
    /// its log), e.g. `O = dev + O = ops, CN = jane`.
    pub fn verified_clients(&self) -> Vec<String> {
        fs::read_to_string(self.dir.join("s_server.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.strip_prefix("depth=0 "))
            .map(str::to_owned)
            .collect()
    }

    /// The process (for its PID).
    pub fn process(&self) -> &Proc {
        &self.proc
    }
}

/// Parses an OpenSSL one-line subject (`O = a + O = b, CN = c`) into CN and the O values.
pub fn cn_and_orgs(subject: &str) -> (String, Vec<String>) {
    let mut cn = String::new();
    let mut orgs = Vec::new();
    for part in subject.split([',', '+']) {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("CN = ") {
            cn = v.to_owned();
        } else if let Some(v) = part.strip_prefix("O = ") {
            orgs.push(v.to_owned());
        }
    }
    (cn, orgs)
}

mod softhsm_token;
pub use softhsm_token::{
    SOFTHSM_MODULE, SOFTHSM_PIN, softhsm_installed, softhsm_token, with_softhsm_token,
};
