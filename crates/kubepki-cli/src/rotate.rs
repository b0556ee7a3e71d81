//! `kubepki ca rotate start|reissue|finish|status`: CA rotation of the kubeadm tree
//! (docs/rotation.md). The library decides and writes; this turns flags into options and the
//! result into text or JSON.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use kubepki_kubeadm::{
    FileRole, Generation, RotateOptions, RotationPhase, RotationStage, RotationStatus,
    RotationTarget, rotate, rotation_status,
};
use time::OffsetDateTime;

use crate::cmd::Format;
use crate::errors::{CliError, flag_err, lib_err, other_err};
use crate::flags::ClusterFlags;
use crate::out::{esc, esc_path};

/// The phases, and `status`.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum RotateStep {
    /// New CAs next to the old ones; everything trusts both; the old ones still sign.
    Start,
    /// The new CAs sign; every leaf and kubeconfig client certificate is issued again.
    Reissue,
    /// The old CAs (and the old service-account key) leave every file.
    Finish,
    /// Show each CA's stage and each file's, read from the files; the phase to run next.
    Status,
}

/// `kubepki ca rotate`.
#[derive(Args, Debug)]
#[command(
    after_help = "Run the phases in order on every control-plane node (the first node without --from-cert-dir, the others with it) and restart the components after each phase, as docs/rotation.md says. Exit codes: 0 done (or nothing to do), 1 refused or failed (nothing was written), 64 usage."
)]
pub struct RotateArgs {
    /// The phase to run, or `status`.
    #[arg(value_enum)]
    step: RotateStep,
    /// What to rotate: ca, front-proxy-ca, etcd-ca, sa (the service-account key pair), or all.
    #[arg(long = "ca", default_value = "all")]
    ca: String,
    /// The certificate folder of the control-plane node that ran this phase first: `start`
    /// takes its new CAs (instead of making new ones); every phase checks that both nodes
    /// rotate to the same CAs.
    #[arg(long)]
    from_cert_dir: Option<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    output: Format,
    #[command(flatten)]
    flags: ClusterFlags,
}

/// Runs `kubepki ca rotate`.
pub fn run(a: RotateArgs) -> Result<(), CliError> {
    let (spec, warnings) = a.flags.spec()?;
    for w in &warnings {
        diag!("warning: {}", esc(w));
    }
    a.flags.validate(&spec)?;
    let targets =
        RotationTarget::parse_for(&spec, &a.ca).map_err(|e| flag_err(format!("--ca: {e}")))?;
    let phase = match a.step {
        RotateStep::Start => RotationPhase::Start,
        RotateStep::Reissue => RotationPhase::Reissue,
        RotateStep::Finish => RotationPhase::Finish,
        RotateStep::Status => {
            if a.from_cert_dir.is_some() {
                return Err(flag_err("--from-cert-dir is for the phases, not status"));
            }
            let mut status = rotation_status(&spec).map_err(lib_err)?;
            status.targets.retain(|t| targets.contains(&t.target));
            return print_status(&status, a.output);
        }
    };
    let mut opts = RotateOptions::default();
    // `all`: every target for start; for reissue and finish, those being rotated.
    if a.ca != "all" {
        opts.targets = targets;
    }
    if a.flags.encryption_algorithm.is_some() {
        opts.algorithm = Some(spec.encryption_algorithm);
    }
    opts.from_cert_dir = a.from_cert_dir.clone();
    let done = crate::progress::during(a.output == Format::Text, || {
        rotate(&spec, phase, &opts, OffsetDateTime::now_utc())
    })
    .map_err(lib_err)?;
    for w in &done.warnings {
        diag!("warning: {}", esc(w));
    }
    if a.output == Format::Json {
        let json = serde_json::json!({
            "phase": phase,
            "changed": !done.unchanged(),
            "targets": done.changes,
            "written": done.written,
            "removed": done.deleted,
        });
        let text = serde_json::to_string_pretty(&json).map_err(other_err)?;
        outln!("{}", crate::out::json(&text))?;
        return Ok(());
    }
    for c in &done.changes {
        let what = match (c.before, c.after) {
            (b, a) if b == a && done.unchanged() => "already there, nothing to change".to_owned(),
            (b, a) if b == a => {
                "already at this stage; files that lagged behind were brought along".to_owned()
            }
            (RotationStage::Idle, RotationStage::Started) => {
                "a new CA is trusted next to the old one, which still signs".to_owned()
            }
            (_, RotationStage::Reissued) => format!(
                "the new CA signs{}",
                if c.reissued.is_empty() {
                    String::new()
                } else {
                    format!("; issued again: {}", c.reissued.join(", "))
                }
            ),
            (_, RotationStage::Idle) => "the old CA is no longer trusted".to_owned(),
            _ => String::new(),
        };
        let what = if c.target == RotationTarget::ServiceAccount {
            what.replace("CA", "key")
        } else {
            what
        };
        outln!(
            "[rotate] {}: {} -> {}: {}",
            c.target,
            c.before,
            c.after,
            esc(&what)
        )?;
    }
    for f in &done.written {
        outln!("[rotate] Wrote {}", esc_path(f))?;
    }
    for f in &done.deleted {
        outln!("[rotate] Removed {}", esc_path(f))?;
    }
    if done.unchanged() {
        outln!("[rotate] Nothing to do: phase {phase} had already run here.")?;
        return Ok(());
    }
    let targets: Vec<RotationTarget> = done.changes.iter().map(|c| c.target).collect();
    outln!("\n{}", next_steps(phase, &targets))?;
    Ok(())
}

/// What to restart and run next after `phase` for `targets` (docs/rotation.md has the whole
/// runbook).
fn next_steps(phase: RotationPhase, targets: &[RotationTarget]) -> String {
    let ca = targets.contains(&RotationTarget::Ca);
    let sa = targets.contains(&RotationTarget::ServiceAccount);
    let mut lines: Vec<&str> = Vec::new();
    match phase {
        RotationPhase::Start => {
            lines.push("Next: run `kubepki ca rotate start --from-cert-dir <this node's cert dir>` on every other control-plane node.");
            if ca {
                lines.push("kube-controller-manager's --cluster-signing-cert-file must name ca-signer.crt (it refuses the two CAs now in ca.crt). Every worker: the new ca.crt and a kubelet.conf trusting both (`kubepki node kubelet-kubeconfig --cert-dir <a control-plane node's cert dir>`); re-issue the kubeconfigs you handed out.");
            }
            lines.push("Restart etcd, kube-apiserver, kube-controller-manager, kube-scheduler and the kubelet on each node, one node at a time. Then run `kubepki ca rotate reissue`.");
        }
        RotationPhase::Reissue => {
            lines.push("Next: run `kubepki ca rotate reissue` on every other control-plane node (with --from-cert-dir of this one), and restart etcd, kube-apiserver, kube-controller-manager, kube-scheduler and the kubelet on each node, one at a time.");
            if ca {
                lines.push("Every worker: the new ca.crt and a new kubelet.conf; replace the kubeconfigs you handed out.");
            }
            if sa {
                lines.push("Service-account tokens are now signed with the new key; the old key's tokens still verify until finish (projected tokens are refreshed by the kubelet within their lifetime).");
            }
            lines.push("Then run `kubepki ca rotate finish`.");
        }
        RotationPhase::Finish => {
            lines.push("Next: run `kubepki ca rotate finish` on every other control-plane node and restart etcd, kube-apiserver, kube-controller-manager, kube-scheduler and the kubelet on each node.");
            if ca {
                lines.push("Every worker: a ca.crt and kubelet.conf with the new CA only.");
            }
            if sa {
                lines.push("Tokens signed with the old service-account key no longer verify.");
            }
            lines.push("What the old CAs signed no longer opens anything (docs/rotation.md).");
        }
        _ => {}
    }
    lines.join("\n")
}

fn holds(h: &[Generation]) -> String {
    if h.is_empty() {
        return "-".into();
    }
    h.iter()
        .map(|g| match g {
            Generation::Old => "old",
            Generation::New => "new",
            _ => "other",
        })
        .collect::<Vec<_>>()
        .join("+")
}

fn role(r: FileRole) -> &'static str {
    match r {
        FileRole::Trusts => "trusts",
        FileRole::SignedBy => "signed by",
        FileRole::Key => "signing key",
        FileRole::PendingKey => "waiting key",
        FileRole::SigningCert => "signer",
        FileRole::Record => "record",
        _ => "other",
    }
}

fn print_status(status: &RotationStatus, output: Format) -> Result<(), CliError> {
    let problems = status
        .targets
        .iter()
        // A CA kubepki does not rotate here (external, in a token) is shown, not a failure.
        .filter(|t| t.problem.is_some() && t.rotatable)
        .count();
    if output == Format::Json {
        let text = serde_json::to_string_pretty(status).map_err(other_err)?;
        outln!("{}", crate::out::json(&text))?;
    } else {
        outln!(
            "{:<16}{:<10}{:<11}{:<66}NEW (SHA-256)",
            "TARGET",
            "STAGE",
            "NEXT",
            "OLD (SHA-256)"
        )?;
        for t in &status.targets {
            outln!(
                "{:<16}{:<10}{:<11}{:<66}{}",
                t.target.name(),
                t.stage.map_or("?", RotationStage::name),
                t.next.map_or("-", RotationPhase::name),
                t.old.as_deref().unwrap_or("-"),
                t.new.as_deref().unwrap_or("-")
            )?;
        }
        for t in &status.targets {
            if let Some(p) = &t.problem {
                if t.rotatable {
                    outln!("\n{}: its stage cannot be read: {}", t.target, esc(p))?;
                } else {
                    outln!("\n{}: not rotated here: {}", t.target, esc(p))?;
                }
                continue;
            }
            outln!(
                "\n{} ({})",
                t.target,
                t.stage.map_or("?", RotationStage::name)
            )?;
            for f in &t.files {
                outln!(
                    "  {:<12}{:<16}{:<4}{}{}",
                    role(f.role),
                    holds(&f.holds),
                    if f.ok { "ok" } else { "LAG" },
                    esc_path(&f.path),
                    f.note
                        .as_deref()
                        .map(|n| format!(" ({})", esc(n)))
                        .unwrap_or_default()
                )?;
            }
        }
    }
    if problems > 0 {
        return Err(CliError::Exit(1));
    }
    Ok(())
}
