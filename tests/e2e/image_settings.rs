//! What users set on their images in the words pack, ko and Jib use (issue 25): more tags,
//! `--image-refs`, labels, launch environment, exposed ports, user and working directory,
//! from flags or from a project descriptor; `--creation-time`, `--env-file`,
//! `--default-process`.

use std::time::Duration;

use kiln_e2e::{
    Registry, ensure_containers_conf, free_port, skopeo_inspect, skopeo_inspect_config, wait_http,
};

use crate::common::{self, Kiln};

/// The settings both ways: as flags, and as the `[io.kiln]` table of a descriptor.
const FLAGS: &[&str] = &[
    "--label",
    "org.opencontainers.image.title=settings",
    "--launch-env",
    "GREETING=hi",
    "--expose",
    "8080",
    "--user",
    "1000:1000",
    "--workdir",
    "/tmp",
];
const DESCRIPTOR: &str = r#"[io.kiln]
labels = { "org.opencontainers.image.title" = "settings" }
launch-env = { GREETING = "hi" }
expose = ["8080"]
user = "1000:1000"
workdir = "/tmp"
"#;

/// Labels, launch env, ports, user and working directory are in the pushed config, and
/// podman runs the app as that user; `--tag` gives every tag the one digest and
/// `--image-refs` lists them; the same settings from `--descriptor` give the same digest;
/// root is refused unless allowed.
pub(crate) fn labels_env_ports_user_and_workdir_reach_the_config_and_tags_share_one_digest() {
    ensure_containers_conf();
    let kiln = Kiln::new();
    let registry = Registry::anonymous();
    let cache = common::warm_cache(&kiln, "cache");
    let cache = cache.to_str().unwrap();
    let app = kiln.fixture("go-web", "app");
    let app = app.to_str().unwrap();
    let image = registry.reference("team/settings:1");
    let tags = [
        registry.reference("team/settings:latest"),
        registry.reference("team/settings:sha-0f28ea7"),
    ];
    let refs = kiln.ws.join("image-refs.txt");
    let env_file = kiln
        .ws
        .write("build.env", "# the build's own\nKILN_E2E_UNUSED=1\n");
    let mut args = vec![
        "build",
        &image,
        "--path",
        app,
        "--cache-dir",
        cache,
        "--publish",
    ];
    args.extend([
        "--creation-time",
        "1700000000",
        "--default-process",
        "goweb",
    ]);
    args.extend(["--env-file", env_file.to_str().unwrap()]);
    for tag in &tags {
        args.extend(["--tag", tag.as_str()]);
    }
    args.extend(["--image-refs", refs.to_str().unwrap()]);
    args.extend_from_slice(FLAGS);
    let pinned = kiln.run(&args).ok();
    let digest = pinned.rsplit_once('@').unwrap().1.to_owned();

    let config = skopeo_inspect_config(&format!("docker://{image}"), false);
    let c = &config["config"];
    assert_eq!(
        c["Labels"]["org.opencontainers.image.title"], "settings",
        "{config}"
    );
    let env: Vec<&str> = c["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(env.contains(&"GREETING=hi"), "{env:?}");
    assert!(c["ExposedPorts"]["8080/tcp"].is_object(), "{config}");
    assert_eq!(c["User"], "1000:1000");
    assert_eq!(c["WorkingDir"], "/tmp");
    assert_eq!(config["created"], "2023-11-14T22:13:20Z", "--creation-time");
    assert!(
        c["Labels"]["io.buildpacks.lifecycle.metadata"].is_string(),
        "kiln's own labels stay beside the user's"
    );

    for tag in &tags {
        let got = skopeo_inspect(&format!("docker://{tag}"), false);
        assert_eq!(got["Digest"], digest.as_str(), "{tag}");
    }
    let listed = std::fs::read_to_string(&refs).unwrap();
    let want: Vec<String> = std::iter::once(&image)
        .chain(&tags)
        .map(|name| format!("{name}@{digest}"))
        .collect();
    assert_eq!(listed.lines().collect::<Vec<_>>(), want);

    let podman = common::suite::podman();
    podman.pull(&pinned, false);
    let port = free_port().to_string();
    let env = format!("PORT={port}");
    let ctr = podman.run_detached(&pinned, &["-e", &env]);
    let hello = wait_http(
        &format!("http://127.0.0.1:{port}/"),
        Duration::from_secs(60),
    );
    assert!(hello.contains("hello from kiln"), "{hello}");
    assert_eq!(ctr.process_uid(), 1000);
    drop(ctr);

    // The same settings from a descriptor kept outside the app: the same image.
    let descriptor = kiln.ws.write("settings.toml", DESCRIPTOR);
    let other = registry.reference("team/settings:2");
    let again = kiln
        .run(&[
            "build",
            &other,
            "--path",
            app,
            "--cache-dir",
            cache,
            "--publish",
            "--descriptor",
            descriptor.to_str().unwrap(),
            "--creation-time",
            "1700000000",
        ])
        .ok();
    assert_eq!(
        again.rsplit_once('@').unwrap().1,
        digest,
        "flags and descriptor differ"
    );

    let refused = kiln.run(&[
        "build",
        "local/root:1",
        "--path",
        app,
        "--cache-dir",
        cache,
        "--user",
        "0",
    ]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("as root") && refused.stderr.contains("--allow-root"),
        "{}",
        refused.stderr
    );
    let mine = kiln.run(&[
        "build",
        "local/x:1",
        "--path",
        app,
        "--cache-dir",
        cache,
        "--label",
        "io.buildpacks.build.metadata=x",
    ]);
    assert_eq!(mine.code, 2, "{}", mine.stderr);
}
