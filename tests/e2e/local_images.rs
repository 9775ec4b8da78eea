//! kiln's local store as users manage it (issue 22): `kiln images` lists what local builds
//! saved, `kiln inspect` reads them, `kiln rm` drops a name and leaves every other image whole (skopeo still reads
//! it), and `kiln cache du` says what the cache dir holds.

use kiln_e2e::skopeo_inspect;

use crate::cli_errors::{build, hello};
use crate::common::{self, Kiln};

pub(crate) fn images_are_listed_removed_and_the_cache_measured() {
    let kiln = Kiln::new();
    let app = hello(&kiln, "app");
    let one = build(&kiln, "team/app:1", &app, &[]).ok();
    let two = build(&kiln, "team/app:2", &app, &[]).ok();
    let cache = kiln.ws.join("cache");
    let cache_arg = cache.to_str().unwrap();

    let listed = kiln.run(&["images", "--format", "json", "--cache-dir", cache_arg]);
    let images: serde_json::Value = serde_json::from_str(&listed.ok_output()).unwrap();
    let names: Vec<&str> = images
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["team/app:1", "team/app:2"], "{images}");
    let digest = |i: usize| images[i]["digest"].as_str().unwrap().to_owned();
    assert!(
        one.ends_with(&digest(0)) && two.ends_with(&digest(1)),
        "{images}"
    );
    assert!(images[0]["size"].as_u64().unwrap() > 0, "{images}");
    assert!(
        images[0]["platforms"][0]
            .as_str()
            .unwrap()
            .starts_with("linux/")
    );
    let table = kiln.run(&["images", "--cache-dir", cache_arg]).ok_output();
    assert!(
        table.lines().any(|l| l.starts_with("team/app:2")),
        "{table}"
    );

    // `kiln inspect` reads a local image by its store name, or as `oci:PATH:NAME`.
    let store = cache.join("oci");
    let by_name = [
        "inspect",
        "team/app:2",
        "--format",
        "json",
        "--cache-dir",
        cache_arg,
    ];
    let by_path = format!("oci:{}:team/app:2", store.display());
    for args in [
        by_name.to_vec(),
        vec!["inspect", &by_path, "--format", "json"],
    ] {
        let seen: serde_json::Value = serde_json::from_str(&kiln.run(&args).ok_output()).unwrap();
        assert_eq!(seen["digest"].as_str().unwrap(), digest(1), "{seen}");
        assert_eq!(seen["buildpacks"][0]["id"], "kiln/go", "{seen}");
        assert_eq!(seen["user"], "65532:65532", "{seen}");
        assert!(!seen["layers"].as_array().unwrap().is_empty(), "{seen}");
        assert!(
            seen["sbom"].is_null(),
            "a local image has nothing attached: {seen}"
        );
    }

    // The two share every blob: removing one name leaves the other whole.
    kiln.run(&["rm", "team/app:1", "--cache-dir", cache_arg])
        .ok_output();
    let store = cache.join("oci");
    let inspected = skopeo_inspect(&format!("oci:{}:team/app:2", store.display()), false);
    assert_eq!(inspected["Digest"].as_str().unwrap(), digest(1));
    let after = kiln.run(&["images", "--format", "json", "--cache-dir", cache_arg]);
    assert!(!after.ok_output().contains("team/app:1"));
    let missing = kiln.run(&["rm", "team/app:1", "--cache-dir", cache_arg]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("no image named team/app:1"),
        "{}",
        missing.stderr
    );

    let du = kiln
        .run(&["cache", "du", "--cache-dir", cache_arg])
        .ok_output();
    assert!(du.lines().any(|l| l.ends_with("  oci")), "{du}");
    assert!(du.lines().any(|l| l.contains("buildpacks/kiln-go")), "{du}");
    assert!(du.lines().last().unwrap().contains("total in"), "{du}");
}

/// A local build's last lines say how to run the image, and that command runs it here, on
/// Debian's podman 4.3, also from the default cache dir under `~/.cache` (whose dot podman
/// refuses in an image path); its printed reference names the image in kiln's store.
pub(crate) fn the_printed_run_command_runs_a_local_image() {
    let kiln = Kiln::new();
    let app = hello(&kiln, "app");
    let cache = common::warm_cache(&kiln, "home/.cache/kiln");
    let built = kiln.run(&[
        "build",
        "team/hello:1",
        "--path",
        &app,
        "--cache-dir",
        cache.to_str().unwrap(),
    ]);
    let pinned = built.ok();
    assert!(pinned.starts_with("team/hello:1@sha256:"), "{pinned}");
    let command = built
        .stderr
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("run it:"))
        .unwrap_or_else(|| panic!("no run command in:\n{}", built.stderr))
        .trim();
    assert!(command.contains("podman run --rm oci:"), "{command}");
    // The suite's podman has private storage: the same command, with its global options.
    let podman = common::suite::podman();
    let global = kiln_e2e::command_line(&podman.command());
    let script = format!(
        "podman() {{ {global} \"$@\"; }}\n{command}",
        global = global.replacen("podman", "command podman", 1)
    );
    let out = kiln_e2e::run_output(
        std::process::Command::new("sh").args(["-c", &script]).envs(
            podman
                .command()
                .get_envs()
                .filter_map(|(k, v)| Some((k, v?))),
        ),
    );
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stderr).contains("hello"),
        "`{command}` failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
