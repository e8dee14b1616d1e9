//! Build-time facts for `gotalk --version`: the commit the binary was
//! built from, as `git describe --always --dirty` gives it (`-dirty` when
//! the tree had uncommitted changes), or `unknown commit` when there is no
//! git or no repository (a source tarball). Passed to the crate as the
//! compile-time variable `BUILD_COMMIT`.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

fn main() {
    let commit = git(&["describe", "--always", "--dirty", "--tags"])
        .unwrap_or_else(|| "unknown commit".to_string());
    println!("cargo:rustc-env=BUILD_COMMIT={commit}");
    // Run again when the sources change (for `-dirty`) and when HEAD moves
    // (a commit or a checkout); in a worktree these paths are elsewhere,
    // so git names them.
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=Cargo.toml");
    println!("cargo:rerun-if-changed=build.rs");
    for name in ["HEAD", "index", "packed-refs"] {
        if let Some(path) = git(&["rev-parse", "--git-path", name]) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        if let Some(path) = git(&["rev-parse", "--git-path", &branch]) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
