//! podman (+ runc) with private storage, so tests share no state with the machine or
//! each other beyond `/etc/containers/containers.conf` (see [`crate::ensure_containers_conf`]).

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::cmd::{run_checked, run_output};
use crate::kiln::ensure_containers_conf;
use crate::workspace::Workspace;

/// A podman whose storage, run state, temp files and auth file live in a directory of its
/// own: a temp dir removed on drop ([`Podman::new`]), or one the caller owns ([`Podman::at`]).
pub struct Podman {
    global: Vec<OsString>,
    dir: PathBuf,
    /// The temp dir of [`Podman::new`], removed (after every container) on drop.
    owned: Option<Workspace>,
}

impl Podman {
    /// Sets up private storage in a new temp dir (vfs driver, cgroupfs, file events);
    /// checks containers.conf.
    pub fn new() -> Self {
        let ws = Workspace::new();
        let mut podman = Self::at(ws.path());
        podman.owned = Some(ws);
        podman
    }

    /// Like [`Podman::new`], with storage under `dir` (created if missing), which outlives
    /// this value: a store several users share. Dropping it removes no container; see
    /// [`Podman::remove_all`].
    pub fn at(dir: &Path) -> Self {
        ensure_containers_conf();
        let mut global: Vec<OsString> = Vec::new();
        for (flag, sub) in [
            ("--root", "storage"),
            ("--runroot", "run"),
            ("--tmpdir", "tmp"),
        ] {
            let path = dir.join(sub);
            fs::create_dir_all(&path)
                .unwrap_or_else(|e| panic!("creating `{}`: {e}", path.display()));
            global.push(flag.into());
            global.push(path.into());
        }
        // podman insists that an auth file it is pointed at exists.
        let auth = dir.join("auth.json");
        fs::write(&auth, "{\"auths\": {}}")
            .unwrap_or_else(|e| panic!("writing `{}`: {e}", auth.display()));
        for arg in [
            "--storage-driver",
            "vfs",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
        ] {
            global.push(arg.into());
        }
        Self {
            global,
            dir: dir.to_path_buf(),
            owned: None,
        }
    }

    /// Returns the directory holding the store, run state, temp files and auth file.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Removes every container of this store, running or not.
    pub fn remove_all(&self) {
        let _ = run_output(
            self.command()
                .args(["rm", "--all", "--force", "--time", "0"]),
        );
    }

    /// Returns a `podman` command with the private global options and an empty auth file.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("podman");
        cmd.args(&self.global)
            .env("REGISTRY_AUTH_FILE", self.dir.join("auth.json"));
        cmd
    }

    /// Runs `podman ARGS...` and returns its output, whatever its status.
    pub fn output(&self, args: &[&str]) -> Output {
        run_output(self.command().args(args))
    }

    /// Runs `podman ARGS...`, panics unless it exits 0, and returns its stdout (trimmed).
    pub fn checked(&self, args: &[&str]) -> String {
        let out = run_checked(self.command().args(args));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Pulls `reference` (`--tls-verify=false` for plain-HTTP registries) and returns the image ID.
    pub fn pull(&self, reference: &str, tls_verify: bool) -> String {
        self.pull_with(reference, &[&format!("--tls-verify={tls_verify}")])
    }

    /// Pulls `reference` with extra options (`--creds u:p`, `--cert-dir DIR`, ...) and
    /// returns the image ID.
    pub fn pull_with(&self, reference: &str, extra: &[&str]) -> String {
        let mut args = vec!["pull", "--quiet"];
        args.extend_from_slice(extra);
        args.push(reference);
        self.checked(&args)
    }

    /// Loads an OCI or docker archive and returns what podman printed (the loaded names).
    pub fn load(&self, archive: &Path) -> String {
        let out = run_checked(self.command().arg("load").arg("--input").arg(archive));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Returns `podman image inspect REF` (the first and only element).
    pub fn image_inspect(&self, reference: &str) -> Value {
        let text = self.checked(&["image", "inspect", reference]);
        first(serde_json::from_str(&text).expect("`podman image inspect` printed JSON"))
    }

    /// Returns the image's config as podman reports it (`User`, `Env`, `Entrypoint`, ...).
    pub fn image_config(&self, reference: &str) -> Value {
        self.image_inspect(reference)["Config"].clone()
    }

    /// Runs `podman run --rm --network host IMAGE CMD...` and returns its output, whatever its status.
    pub fn run_once(&self, image: &str, cmd: &[&str]) -> Output {
        self.run_once_with(image, &[], cmd)
    }

    /// Like [`Podman::run_once`] with `podman run` options (`-e K=V`, `--user`, ...) before the image.
    pub fn run_once_with(&self, image: &str, options: &[&str], cmd: &[&str]) -> Output {
        let mut args = vec!["run", "--rm", "--network", "host"];
        args.extend_from_slice(options);
        args.push(image);
        args.extend_from_slice(cmd);
        self.output(&args)
    }

    /// Returns the bytes of the regular file `path` in `image`, read with `podman create` and
    /// `podman cp` (so images without any tool inside, distroless ones, work too).
    pub fn read_file(&self, image: &str, path: &str) -> Vec<u8> {
        let id = self.checked(&["create", image]).trim().to_owned();
        let out = self.output(&["cp", &format!("{id}:{path}"), "-"]);
        let _ = self.output(&["rm", &id]);
        assert!(
            out.status.success(),
            "podman cp {path} from {image}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // `podman cp … -` writes a tar of the one file.
        let mut archive = tar::Archive::new(out.stdout.as_slice());
        let mut entry = archive
            .entries()
            .expect("podman cp wrote a tar")
            .next()
            .expect("one entry")
            .expect("a readable entry");
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).expect("reading the entry");
        bytes
    }

    /// Starts `podman run -d --network host OPTIONS... IMAGE` (image's own entrypoint).
    ///
    /// `options` are `podman run` options placed before the image, e.g. `["-e", "PORT=8080"]`.
    pub fn run_detached(&self, image: &str, options: &[&str]) -> RunningContainer<'_> {
        self.run_detached_cmd(image, options, &[])
    }

    /// Like [`Podman::run_detached`] with a command (or entrypoint arguments) after the image.
    pub fn run_detached_cmd(
        &self,
        image: &str,
        options: &[&str],
        cmd: &[&str],
    ) -> RunningContainer<'_> {
        let mut args = vec!["run", "-d", "--network", "host"];
        args.extend_from_slice(options);
        args.push(image);
        args.extend_from_slice(cmd);
        let id = self.checked(&args);
        let mut container = RunningContainer {
            podman: self,
            id,
            pid: None,
        };
        container.pid = container.try_pid();
        container
    }
}

impl Default for Podman {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Stragglers (e.g. from a test that leaked a container) must not outlive the storage.
        if self.owned.is_some() {
            self.remove_all();
        }
    }
}

/// A detached container, removed with `podman rm -f` when dropped (its main process is
/// killed by PID if that fails).
pub struct RunningContainer<'a> {
    podman: &'a Podman,
    id: String,
    pid: Option<u32>,
}

impl RunningContainer<'_> {
    /// Returns the container ID.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Returns `podman inspect` of the container.
    pub fn inspect(&self) -> Value {
        let text = self.podman.checked(&["container", "inspect", &self.id]);
        first(serde_json::from_str(&text).expect("`podman container inspect` printed JSON"))
    }

    fn try_pid(&self) -> Option<u32> {
        let out = self.podman.output(&[
            "container",
            "inspect",
            "--format",
            "{{.State.Pid}}",
            &self.id,
        ]);
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .ok()
            .filter(|pid| *pid != 0)
    }

    /// Returns the host PID of the container's main process; panics if it is not running.
    pub fn pid(&self) -> u32 {
        self.try_pid().unwrap_or_else(|| {
            panic!(
                "container `{}` is not running; logs:\n{}",
                self.id,
                self.logs()
            )
        })
    }

    /// Returns whether the main process is still running.
    pub fn is_running(&self) -> bool {
        self.try_pid().is_some()
    }

    /// Returns the real, effective, saved and fs UIDs of the main process, read from
    /// `/proc/PID/status` (works for distroless images, which have no `id`). Without a
    /// user namespace (podman as root) these are the container's own UIDs.
    pub fn process_uids(&self) -> [u32; 4] {
        proc_status_ids(self.pid(), "Uid:")
    }

    /// Returns the effective UID of the main process (see [`RunningContainer::process_uids`]).
    pub fn process_uid(&self) -> u32 {
        self.process_uids()[1]
    }

    /// Returns the effective GID of the main process.
    pub fn process_gid(&self) -> u32 {
        proc_status_ids(self.pid(), "Gid:")[1]
    }

    /// Runs `podman exec CONTAINER CMD...` and returns its output, whatever its status.
    pub fn exec(&self, cmd: &[&str]) -> Output {
        let mut args = vec!["exec", self.id.as_str()];
        args.extend_from_slice(cmd);
        self.podman.output(&args)
    }

    /// Returns the container's stdout and stderr so far.
    pub fn logs(&self) -> String {
        let out = self.podman.output(&["logs", &self.id]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// Removes the container now (the same as dropping it).
    pub fn remove(self) {}
}

impl Drop for RunningContainer<'_> {
    fn drop(&mut self) {
        let out = self
            .podman
            .output(&["rm", "--force", "--time", "0", &self.id]);
        if !out.status.success()
            && let Some(pid) = self.pid
        {
            let _ = run_output(Command::new("kill").args(["-KILL", &pid.to_string()]));
        }
    }
}

fn first(value: Value) -> Value {
    match value {
        Value::Array(mut items) if !items.is_empty() => items.swap_remove(0),
        other => panic!("expected a non-empty JSON array, got {other}"),
    }
}

fn proc_status_ids(pid: u32, field: &str) -> [u32; 4] {
    let path = format!("/proc/{pid}/status");
    let status = fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading `{path}`: {e}"));
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("`{path}` has no `{field}` line"));
    let ids: Vec<u32> = line[field.len()..]
        .split_whitespace()
        .map(|n| n.parse().expect("numeric id in /proc status"))
        .collect();
    ids.try_into()
        .unwrap_or_else(|_| panic!("`{path}`: `{field}` has not 4 ids: {line}"))
}
