//! Local file reads: regular files only, no symlinks, bounded, and errors
//! that never show the host path.

use comfy_guard::{LocalFileError, read_regular_file};

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir(tag: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("comfy-guard-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

#[test]
fn regular_files_are_read_within_the_bound() {
    let dir = temp_dir("read");
    let file = dir.0.join("w.json");
    std::fs::write(&file, b"{}").unwrap();
    assert_eq!(read_regular_file(&file, 2).unwrap(), b"{}");
    assert_eq!(
        read_regular_file(&file, 1).unwrap_err(),
        LocalFileError::TooLarge { limit: 1 }
    );
    assert_eq!(
        read_regular_file(&dir.0.join("missing.json"), 10).unwrap_err(),
        LocalFileError::NotFound
    );
    assert_eq!(read_regular_file(&dir.0, 10).unwrap_err(), LocalFileError::NotRegular);
}

#[cfg(unix)]
#[test]
fn symlinks_are_refused_and_errors_hide_the_path() {
    let dir = temp_dir("link");
    let target = dir.0.join("secret.txt");
    std::fs::write(&target, b"secret").unwrap();
    let link = dir.0.join("innocent.json");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let err = read_regular_file(&link, 100).unwrap_err();
    assert_eq!(err, LocalFileError::Symlink);
    assert!(!err.to_string().contains(dir.0.to_str().unwrap()), "{err}");
    // A FIFO would block a naive reader forever.
    let fifo = dir.0.join("pipe");
    let status = std::process::Command::new("mkfifo").arg(&fifo).status();
    if status.is_ok_and(|s| s.success()) {
        assert_eq!(read_regular_file(&fifo, 100).unwrap_err(), LocalFileError::NotRegular);
    }
    assert_eq!(
        read_regular_file(std::path::Path::new("/dev/zero"), 100).unwrap_err(),
        LocalFileError::NotRegular
    );
}
