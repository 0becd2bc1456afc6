//! File access for TLS material: PEM reading that names the file in every error, and whole-file
//! writes (a temporary file renamed over the target) whose mode is set when the file is created,
//! so a private key is never readable by others, not even for an instant. No certificate logic.

use std::fs::{DirBuilder, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::CertError;

/// Mode of every private key file: readable and writable by the owner only.
pub(crate) const KEY_MODE: u32 = 0o600;
/// Mode of certificate files: they are public.
pub(crate) const CERTIFICATE_MODE: u32 = 0o644;
/// Mode of directories this crate creates: they hold private keys.
pub(crate) const DIRECTORY_MODE: u32 = 0o700;

/// Reads every certificate in a PEM file, in file order; other PEM sections are skipped.
pub(crate) fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let bytes = std::fs::read(path).map_err(CertError::io(path))?;
    let certificates = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| CertError::Pem {
            path: path.to_owned(),
            source,
        })?;
    if certificates.is_empty() {
        return Err(CertError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certificates)
}

/// Adds every certificate of the PEM file at `path` to `roots` as a trust anchor.
pub(crate) fn add_trust_anchors(
    roots: &mut rustls::RootCertStore,
    path: &Path,
) -> Result<(), CertError> {
    for certificate in read_certificates(path)? {
        roots
            .add(certificate)
            .map_err(|source| CertError::TrustAnchor {
                path: path.to_owned(),
                source,
            })?;
    }
    Ok(())
}

/// Reads the first private key (PKCS#8, SEC1 or PKCS#1) in a PEM file.
pub(crate) fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, CertError> {
    let bytes = std::fs::read(path).map_err(CertError::io(path))?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|source| match source {
        pem::Error::NoItemsFound => CertError::NoPrivateKey {
            path: path.to_owned(),
        },
        source => CertError::Pem {
            path: path.to_owned(),
            source,
        },
    })
}

/// Whether a file exists; an error to find out (a permission problem) is reported, not guessed.
pub(crate) fn exists(path: &Path) -> Result<bool, CertError> {
    path.try_exists().map_err(CertError::io(path))
}

/// Creates `directory` and its missing parents with mode 0700; an existing one is left as is.
pub(crate) fn create_private_directory(directory: &Path) -> Result<(), CertError> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIRECTORY_MODE)
        .create(directory)
        .map_err(CertError::io(directory))
}

/// Replaces `path` with `contents` as a whole: readers see the old file or the new one, never a
/// part. The temporary file is created with `mode`, so the permissions hold from the first byte.
pub(crate) fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), CertError> {
    let temporary = temporary_path(path);
    // A temporary file left by an interrupted write may have any content; start afresh.
    match std::fs::remove_file(&temporary) {
        Err(error) if error.kind() != ErrorKind::NotFound => {
            return Err(CertError::io(&temporary)(error));
        }
        _ => {}
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temporary)
        .map_err(CertError::io(&temporary))?;
    file.write_all(contents)
        .map_err(CertError::io(&temporary))?;
    file.sync_all().map_err(CertError::io(&temporary))?;
    drop(file);
    std::fs::rename(&temporary, path).map_err(CertError::io(path))
}

/// `dir/.name.tmp` beside `dir/name`, so the rename stays within one file system.
fn temporary_path(path: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(".tmp");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn write_file_sets_the_mode_and_replaces_the_content() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("key.pem");
        write_file(&path, b"first", KEY_MODE).unwrap();
        write_file(&path, b"second", KEY_MODE).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!temporary_path(&path).exists());
    }

    #[test]
    fn a_file_without_pem_sections_is_reported_by_kind() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("empty.pem");
        std::fs::write(&path, "not pem at all\n").unwrap();
        assert!(matches!(
            read_certificates(&path),
            Err(CertError::NoCertificate { .. })
        ));
        assert!(matches!(
            read_private_key(&path),
            Err(CertError::NoPrivateKey { .. })
        ));
        let missing = directory.path().join("missing.pem");
        match read_certificates(&missing) {
            Err(CertError::Io { path, .. }) => assert_eq!(path, missing),
            other => panic!("expected an io error, got {other:?}"),
        }
    }
}
