//! The Docker image's runtime stage, checked without a Docker engine (none on our machines):
//! `docker/check-without-docker` runs the Dockerfile's RUN lines in a fresh Debian bookworm
//! root, serves both sites of docker/compose.yaml through the image's entrypoint, asks the
//! image's health check, and stops it with SIGTERM.

mod support;

use std::path::Path;
use std::process::Command;

#[test]
fn the_images_runtime_stage_installs_serves_and_stops() {
    let _built = support::artifacts(); // the script copies the built files
    let work = tempfile::Builder::new()
        .prefix("rustapp-image-check-")
        .tempdir()
        .unwrap();
    let out =
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("docker/check-without-docker"))
            .arg(work.path())
            .output()
            .expect("run docker/check-without-docker");
    // Never delete a tree something is still mounted in.
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    let work_path = work.path().display().to_string();
    if mounts.contains(&work_path) {
        let kept = work.keep();
        panic!("{} is still mounted; left in place", kept.display());
    }
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
