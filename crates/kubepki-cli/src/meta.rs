//! About kubepki itself: `version`, `completion`, and the hidden `man-pages` that `cargo
//! dist-man` runs (docs/install.md). Everything here comes from the clap definitions in
//! [`crate::cmd`] and the build facts of `build.rs`.

use std::path::PathBuf;
use std::sync::LazyLock;

use clap::{Args, CommandFactory};
use kubepki_files::{FileBatch, MODE_PUBLIC};

use crate::cmd::{Cli, Format};
use crate::errors::CliError;

/// `kubepki version`.
#[derive(Args, Debug)]
pub struct VersionArgs {
    /// Output format.
    #[arg(short = 'o', long = "output", default_value = "text")]
    output: Format,
}

/// `kubepki completion`.
#[derive(Args, Debug)]
pub struct CompletionArgs {
    /// The shell to write the completion script for (to standard output).
    shell: clap_complete::Shell,
}

/// `kubepki man-pages` (hidden; `cargo dist-man`).
#[derive(Args, Debug)]
pub struct ManArgs {
    /// The folder for one page per command and subcommand (kubepki.1, kubepki-certs-renew.1,
    /// ...); existing pages are replaced.
    #[arg(long)]
    out_dir: PathBuf,
}

/// What `kubepki version` reports, built into the binary.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Build {
    version: &'static str,
    git_commit: &'static str,
    crypto_backend: &'static str,
    aws_lc_rs_version: &'static str,
    aws_lc_version: &'static str,
    /// `true`: a statically linked executable (glibc `crt-static`), no loader, no shared library.
    static_linked: bool,
    pkcs11: bool,
    target: &'static str,
    rustc: &'static str,
}

const BUILD: Build = Build {
    version: env!("CARGO_PKG_VERSION"),
    git_commit: env!("KUBEPKI_GIT_COMMIT"),
    crypto_backend: "aws-lc-rs",
    aws_lc_rs_version: env!("KUBEPKI_AWS_LC_RS_VERSION"),
    aws_lc_version: env!("KUBEPKI_AWS_LC_VERSION"),
    static_linked: cfg!(target_feature = "crt-static"),
    pkcs11: cfg!(feature = "pkcs11"),
    target: env!("KUBEPKI_TARGET"),
    rustc: env!("KUBEPKI_RUSTC_VERSION"),
};

impl Build {
    fn text(&self) -> String {
        let linkage = if self.static_linked {
            "static (no dynamic loader, no shared library)"
        } else {
            "dynamic"
        };
        let pkcs11 = if self.pkcs11 {
            "built in (loads the token's module at run time)"
        } else {
            "not built in (the static binary cannot load a module: docs/hsm.md)"
        };
        format!(
            "kubepki {}\ngit commit: {}\ncrypto: {} {} (AWS-LC {})\nlinkage: {linkage}\npkcs11: {pkcs11}\ntarget: {}\nrustc: {}\n",
            self.version,
            self.git_commit,
            self.crypto_backend,
            self.aws_lc_rs_version,
            self.aws_lc_version,
            self.target,
            self.rustc
        )
    }
}

/// `--version`'s text after "kubepki ": the same facts as `kubepki version`.
pub fn long_version() -> &'static str {
    static TEXT: LazyLock<String> = LazyLock::new(|| {
        let text = BUILD.text();
        text.strip_prefix("kubepki ")
            .unwrap_or(&text)
            .trim_end()
            .to_owned()
    });
    TEXT.as_str()
}

/// `kubepki version [-o json]`.
pub fn version(a: &VersionArgs) -> Result<(), CliError> {
    match a.output {
        Format::Text => out!("{}", BUILD.text()),
        Format::Json => {
            let text =
                serde_json::to_string_pretty(&BUILD).map_err(|e| CliError::Other(e.to_string()))?;
            outln!("{}", crate::out::json(&text))
        }
    }
}

/// `kubepki completion SHELL`: the script on standard output.
pub fn completion(a: &CompletionArgs) -> Result<(), CliError> {
    let mut buf = Vec::new();
    clap_complete::generate(a.shell, &mut Cli::command(), "kubepki", &mut buf);
    crate::out::bytes(&buf)
}

/// `kubepki man-pages --out-dir DIR`: one page per visible command and subcommand, written as
/// one batch.
pub fn man_pages(a: &ManArgs) -> Result<(), CliError> {
    // The pages name the version only: the build facts of `--version` change with every commit.
    let mut cmd = Cli::command()
        .long_version(None::<&'static str>)
        .disable_help_subcommand(true);
    cmd.build();
    let mut pages = Vec::new();
    collect(&cmd, &mut pages)?;
    let mut batch = FileBatch::overwriting();
    for (name, page) in &pages {
        batch
            .stage(&a.out_dir.join(name), page, MODE_PUBLIC)
            .map_err(crate::errors::write_err)?;
    }
    batch.commit().map_err(crate::errors::write_err)?;
    outln!(
        "wrote {} man pages to {}",
        pages.len(),
        crate::out::esc_path(&a.out_dir)
    )
}

fn collect(cmd: &clap::Command, pages: &mut Vec<(String, Vec<u8>)>) -> Result<(), CliError> {
    let man = clap_mangen::Man::new(cmd.clone());
    let mut page = Vec::new();
    man.render(&mut page)
        .map_err(|e| CliError::Other(format!("man page {}: {e}", man.get_filename())))?;
    pages.push((man.get_filename(), page));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        collect(sub, pages)?;
    }
    Ok(())
}
