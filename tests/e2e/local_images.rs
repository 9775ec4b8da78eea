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

/// `kiln cache prune` on a store whose images share blobs: garbage goes by default, cached
/// items by age and size, named images and every blob they need never; each image that
/// stays still validates (skopeo copies it, checking every digest; umoci unpacks it).
pub(crate) fn cache_prune_frees_space_and_never_breaks_a_remaining_image() {
    let kiln = Kiln::new();
    let app = hello(&kiln, "app");
    let one = build(&kiln, "team/app:1", &app, &[]).ok();
    kiln.ws.write(
        "app/main.go",
        "package main\n\nfunc main() { println(\"hello again\") }\n",
    );
    let two = build(&kiln, "team/app:2", &app, &[]).ok();
    let kept = build(&kiln, "team/kept:1", &app, &[]).ok();
    assert_ne!(one.split('@').nth(1), two.split('@').nth(1));
    let cache = kiln.ws.join("cache");
    let cache_arg = cache.to_str().unwrap();
    let store = cache.join("oci");
    let prune = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec![
            "cache",
            "prune",
            "--format",
            "json",
            "--cache-dir",
            cache_arg,
        ];
        args.extend_from_slice(extra);
        serde_json::from_str(&kiln.run(&args).ok_output()).unwrap()
    };
    let blobs = || -> std::collections::BTreeSet<String> {
        std::fs::read_dir(store.join("blobs/sha256"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let validate = |name: &str| {
        let copy = kiln
            .ws
            .join(format!("copy-{}", name.replace(['/', ':'], "-")));
        let _ = std::fs::remove_dir_all(&copy);
        kiln_e2e::run_checked(std::process::Command::new("skopeo").args([
            "copy",
            &format!("oci:{}:{name}", store.display()),
            &format!("dir:{}", copy.display()),
        ]));
        let bundle = kiln
            .ws
            .join(format!("bundle-{}", name.replace(['/', ':'], "-")));
        let _ = std::fs::remove_dir_all(&bundle);
        kiln_e2e::run_checked(std::process::Command::new("umoci").args([
            "unpack",
            "--rootless",
            "--image",
            &format!("{}:{name}", store.display()),
            bundle.to_str().unwrap(),
        ]));
    };

    // The first image's own blobs (its app layer, config, manifest) are shared with nobody.
    kiln.run(&["rm", "team/app:1", "--cache-dir", cache_arg])
        .ok_output();
    let before = blobs();

    // A dry run removes nothing.
    let dry = prune(&["--dry-run", "--older-than", "0s"]);
    assert_eq!(dry["dry_run"], true, "{dry}");
    assert_eq!(blobs(), before);

    // By default only garbage goes: the first image's manifest and config (its layer is
    // still a layer-reuse entry), never a blob of the images that stay.
    let garbage = prune(&[]);
    let removed = garbage["removed"].as_array().unwrap();
    assert!(
        removed.iter().all(|i| i["reason"] == "garbage"),
        "{garbage}"
    );
    let one_digest = one.split("@sha256:").nth(1).unwrap();
    assert!(
        !blobs().contains(one_digest),
        "the removed image's manifest stayed"
    );
    for name in ["team/app:2", "team/kept:1"] {
        validate(name);
    }

    // By age: every cached item goes (toolchain caches, layer-reuse entries), images stay.
    let aged = prune(&["--older-than", "0s"]);
    let reasons: Vec<&str> = aged["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["reason"].as_str().unwrap())
        .collect();
    assert!(reasons.contains(&"age"), "{aged}");
    assert!(
        aged["removed"].as_array().unwrap().iter().any(|i| i["item"]
            .as_str()
            .unwrap()
            .starts_with("buildpacks/kiln-go/")),
        "{aged}"
    );
    assert!(aged["freed"].as_u64().unwrap() > 0, "{aged}");
    for name in ["team/app:2", "team/kept:1"] {
        validate(name);
    }
    let listed = kiln
        .run(&["images", "--format", "json", "--cache-dir", cache_arg])
        .ok_output();
    assert!(
        listed.contains("team/app:2") && listed.contains("team/kept:1"),
        "{listed}"
    );

    // By size: a rebuild fills the caches again; `--max-size 0` empties them, and what is
    // left is the images.
    build(&kiln, "team/app:3", &app, &[]).ok();
    let sized = prune(&["--max-size", "0"]);
    assert!(
        sized["removed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["reason"] == "size"),
        "{sized}"
    );
    assert!(
        sized["remaining"].as_u64().unwrap() >= sized["images"].as_u64().unwrap(),
        "{sized}"
    );
    for name in ["team/app:2", "team/app:3", "team/kept:1"] {
        validate(name);
    }
    // And the next build of the app works, cold.
    assert_eq!(
        build(&kiln, "team/app:4", &app, &[]).ok().split('@').nth(1),
        two.split('@').nth(1)
    );
    assert_eq!(kept.split('@').nth(1), two.split('@').nth(1));
}
