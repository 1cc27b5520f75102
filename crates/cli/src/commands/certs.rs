//! `blindlink certs`: a development CA and one certificate and key per party, for trying
//! blindlink with mutual TLS. Production deployments use their own CA.
//!
//! Writes `ca.pem`, and for each name `NAME.pem` (its certificate, SAN DNS name = NAME, usable
//! as TLS server and client) and `NAME.key` (its private key, mode 0600). The CA's private key
//! is not written: the development CA issues these certificates and nothing else; run the
//! command again, into a new directory, for another set. Existing files are never overwritten.

use std::path::PathBuf;

use anyhow::Context;
use blindlink_service::DevPki;

use super::keygen::{persist_new, stage_private_file};

/// Arguments of `blindlink certs`.
#[derive(Debug, clap::Args)]
pub struct CertsArgs {
    /// Directory to write into (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Party names, comma separated; each becomes a certificate's DNS name.
    #[arg(long, value_delimiter = ',', required = true)]
    pub names: Vec<String>,
}

/// Generates and writes the CA and party certificates.
///
/// # Errors
/// A bad or duplicate name, an existing output file, or a failed write.
pub fn run(args: CertsArgs) -> anyhow::Result<()> {
    let names: Vec<&str> = args.names.iter().map(|n| n.trim()).collect();
    // Check names before touching the file system.
    for name in &names {
        blindlink_service::check_party_name(name)
            .map_err(|e| anyhow::anyhow!("{}", strip_prefix(&e)))?;
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let pki = DevPki::generate(&names).map_err(|e| anyhow::anyhow!("{}", strip_prefix(&e)))?;

    let mut files = vec![(
        args.out.join("ca.pem"),
        pki.ca_pem.as_bytes().to_vec(),
        false,
    )];
    for party in &pki.parties {
        files.push((
            args.out.join(format!("{}.pem", party.name)),
            party.cert_pem.as_bytes().to_vec(),
            false,
        ));
        files.push((
            args.out.join(format!("{}.key", party.name)),
            party.key_pem.as_bytes().to_vec(),
            true,
        ));
    }
    // Stage every file first so that an existing file stops the command before any is written.
    let mut staged = Vec::with_capacity(files.len());
    for (path, contents, private) in &files {
        let what = if *private {
            "a private key"
        } else {
            "a certificate"
        };
        let temp = stage_private_file(path, contents, what)?;
        if !private {
            make_world_readable(&temp)?;
        }
        staged.push((temp, path, what));
    }
    for (temp, path, what) in staged {
        persist_new(temp, path, what)?;
    }
    eprintln!(
        "wrote a development CA and certificates for {} to {}",
        names.join(", "),
        args.out.display()
    );
    Ok(())
}

/// `certificate generation: party name ...` reads oddly on the command line; drop the prefix.
fn strip_prefix(error: &blindlink_service::ServiceError) -> String {
    let text = error.to_string();
    text.strip_prefix("certificate generation: ")
        .map_or(text.clone(), str::to_owned)
}

#[cfg(unix)]
fn make_world_readable(file: &tempfile::NamedTempFile) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .context("cannot set a certificate's permissions")
}

#[cfg(not(unix))]
fn make_world_readable(_file: &tempfile::NamedTempFile) -> anyhow::Result<()> {
    Ok(())
}
