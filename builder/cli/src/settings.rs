//! The only place kiln reads environment variables and well-known config locations: they
//! are resolved here into plain settings the libraries receive.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, bail};
use kiln_debian::Mirrors;
use kiln_debian::apt_sources::{SourcesFormat, default_mirror, default_security_mirror};
use kiln_lifecycle::{ProjectDescriptor, SandboxMode, SandboxSettings, toolchain_dirs};
use kiln_pipeline::BaseRegistry;
use kiln_registry::RegistrySettings;

use crate::args::{ColorArg, LogFormatArg, RegistryArgs};
use crate::output::Style;

/// A snapshot of the process environment, taken once at start-up.
#[derive(Clone, Debug, Default)]
pub struct Environment {
    vars: BTreeMap<String, String>,
}

impl Environment {
    /// Captures the current environment (variables that are not UTF-8 are skipped).
    pub fn capture() -> Self {
        Self {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        }
    }

    /// Returns a variable's value if it is set and not empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Returns a signing key's password: the first line of `file` when given, else
    /// `KILN_KEY_PASSWORD`, else `COSIGN_PASSWORD` (so cosign's keys and CI secrets work
    /// as they are); `None` when there is none. An empty variable is an empty password.
    pub fn key_password(&self, file: Option<&std::path::Path>) -> anyhow::Result<Option<Vec<u8>>> {
        if let Some(path) = file {
            let text = std::fs::read(path)
                .with_context(|| format!("reading the key password file `{}`", path.display()))?;
            let line = text.split(|b| *b == b'\n').next().unwrap_or_default();
            return Ok(Some(line.strip_suffix(b"\r").unwrap_or(line).to_vec()));
        }
        Ok(["KILN_KEY_PASSWORD", "COSIGN_PASSWORD"]
            .iter()
            .find_map(|k| self.vars.get(*k))
            .map(|v| v.as_bytes().to_vec()))
    }

    /// Returns the builder id provenance names: `KILN_BUILDER_ID` (a CI system's own
    /// identity, e.g. its Tekton task URI), else kiln's.
    pub fn builder_id(&self) -> String {
        self.get("KILN_BUILDER_ID").map_or_else(
            || {
                format!(
                    "https://kiln.dev/builder/cli@v{}",
                    env!("CARGO_PKG_VERSION")
                )
            },
            str::to_owned,
        )
    }

    fn home(&self) -> Option<PathBuf> {
        self.get("HOME").map(PathBuf::from).or_else(dirs::home_dir)
    }

    /// Lays kiln's environment settings for buildpacks over `project.toml`: the user's Maven
    /// `settings.xml` ([`Environment::maven_settings`]) becomes `[io.kiln.java]
    /// maven-settings` when the project sets none.
    pub fn apply_buildpack_settings(&self, project: &mut ProjectDescriptor) -> anyhow::Result<()> {
        if let Some(path) = self.maven_settings()? {
            project
                .buildpack_settings
                .entry("java".to_owned())
                .or_default()
                .entry("maven-settings")
                .or_insert_with(|| toml::Value::String(path.display().to_string()));
        }
        Ok(())
    }

    /// Returns the user's Maven `settings.xml`: `KILN_MAVEN_SETTINGS` (made absolute against
    /// the working directory), else `~/.m2/settings.xml` when there is one (Maven's own
    /// default; a build step's home is kiln's, so Maven would not find it there).
    pub fn maven_settings(&self) -> anyhow::Result<Option<PathBuf>> {
        if let Some(path) = self.get("KILN_MAVEN_SETTINGS") {
            let path = std::path::absolute(path)
                .with_context(|| format!("resolving KILN_MAVEN_SETTINGS `{path}`"))?;
            return Ok(Some(path));
        }
        Ok(self
            .home()
            .map(|h| h.join(".m2/settings.xml"))
            .filter(|p| p.is_file()))
    }

    /// Returns the host environment the toolchain environment is allow-listed from, with the
    /// toolchains pointed at the user's own settings files, which they would otherwise look
    /// for in the build's kiln-owned home: npm's `~/.npmrc` (`npm_config_userconfig`) and
    /// Go's `go env -w` file (`GOENV`), when the user has them and has not named others.
    pub fn toolchain_host_env(&self) -> BTreeMap<String, String> {
        let mut vars = self.vars.clone();
        let named = |keys: &[&str]| keys.iter().any(|k| self.get(k).is_some());
        if !named(&["npm_config_userconfig", "NPM_CONFIG_USERCONFIG"])
            && let Some(npmrc) = self
                .home()
                .map(|h| h.join(".npmrc"))
                .filter(|p| p.is_file())
        {
            vars.insert(
                "npm_config_userconfig".to_owned(),
                npmrc.display().to_string(),
            );
        }
        if !named(&["GOENV"])
            && let Some(goenv) = self
                .config_home()
                .map(|c| c.join("go/env"))
                .filter(|p| p.is_file())
        {
            vars.insert("GOENV".to_owned(), goenv.display().to_string());
        }
        vars
    }

    fn config_home(&self) -> Option<PathBuf> {
        self.get("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| self.home().map(|h| h.join(".config")))
    }

    /// Returns the build sandbox's settings: `--sandbox`, else `KILN_SANDBOX`, else `auto`;
    /// kiln itself as the launcher; what steps may read (the toolchains on `PATH` and
    /// `JAVA_HOME`, of the environment and of `--env`, the CA files and toolchain settings
    /// files they name, and `KILN_SANDBOX_READ`), what they may write besides their own dirs
    /// (`KILN_SANDBOX_WRITE`), and what they may never touch (`secrets`, and the home's
    /// credential stores).
    pub fn sandbox_settings(
        &self,
        flag: Option<SandboxMode>,
        user_env: &BTreeMap<String, String>,
        secrets: Vec<PathBuf>,
    ) -> anyhow::Result<SandboxSettings> {
        let mode = match flag {
            Some(mode) => mode,
            None => match self.get("KILN_SANDBOX") {
                None | Some("auto") => SandboxMode::Auto,
                Some("require") => SandboxMode::Require,
                Some("off") => SandboxMode::Off,
                Some(other) => bail!("`KILN_SANDBOX` is `{other}`, not `auto`, `require` or `off`"),
            },
        };
        let homes: Vec<PathBuf> = self.home().into_iter().collect();
        let host = self.toolchain_host_env();
        let trusted = [&host, user_env];
        let mut read = Vec::new();
        for vars in trusted {
            if let Some(path) = vars.get("PATH") {
                read.extend(toolchain_dirs(path, &homes));
            }
            for key in [
                "JAVA_HOME",
                "SSL_CERT_FILE",
                "SSL_CERT_DIR",
                "NODE_EXTRA_CA_CERTS",
                "npm_config_userconfig",
                "NPM_CONFIG_USERCONFIG",
                "GOENV",
            ] {
                read.extend(vars.get(key).filter(|v| !v.is_empty()).map(PathBuf::from));
            }
            for key in ["MAVEN_OPTS", "JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS"] {
                read.extend(vars.get(key).into_iter().flat_map(|v| jvm_store_paths(v)));
            }
        }
        read.extend(self.maven_settings()?);
        read.extend(self.path_list("KILN_SANDBOX_READ"));
        Ok(SandboxSettings {
            mode,
            launcher: launcher(),
            read,
            write: self.path_list("KILN_SANDBOX_WRITE"),
            homes,
            secrets,
        })
    }

    /// Returns the absolute paths of the `PATH`-style list in `key`.
    fn path_list(&self, key: &str) -> Vec<PathBuf> {
        self.get(key)
            .map(|v| {
                std::env::split_paths(v)
                    .filter(|p| p.is_absolute())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Returns the base registry: `--base-registry`, else `KILN_BASE_REGISTRY` (else none:
    /// the build may still read `[io.kiln] base-registry`).
    pub fn base_registry(&self, flag: Option<&str>) -> anyhow::Result<Option<BaseRegistry>> {
        let (text, from) = match (flag, self.get("KILN_BASE_REGISTRY")) {
            (Some(flag), _) => (flag, "--base-registry"),
            (None, Some(env)) if !env.is_empty() => (env, "KILN_BASE_REGISTRY"),
            _ => return Ok(None),
        };
        BaseRegistry::parse(text)
            .map(Some)
            .with_context(|| format!("{from} `{text}`"))
    }

    /// Returns the output style: JSON lines for `--log-format json`; colour for
    /// `--color always`, or `auto` on a terminal when `NO_COLOR` is unset or empty
    /// (<https://no-color.org>).
    pub fn output_style(&self, color: ColorArg, format: LogFormatArg) -> Style {
        let json = format == LogFormatArg::Json;
        let color = !json
            && match color {
                ColorArg::Always => true,
                ColorArg::Never => false,
                ColorArg::Auto => {
                    std::io::IsTerminal::is_terminal(&std::io::stderr())
                        && self.get("NO_COLOR").is_none_or(str::is_empty)
                }
            };
        Style { color, json }
    }

    /// Returns `--cache-dir`, else `$KILN_CACHE_DIR`, else `$XDG_CACHE_HOME/kiln`, else `~/.cache/kiln`.
    pub fn cache_dir(&self, flag: Option<&PathBuf>) -> anyhow::Result<PathBuf> {
        if let Some(p) = flag {
            return Ok(p.clone());
        }
        if let Some(p) = self.get("KILN_CACHE_DIR") {
            return Ok(PathBuf::from(p));
        }
        if let Some(p) = self.get("XDG_CACHE_HOME") {
            return Ok(PathBuf::from(p).join("kiln"));
        }
        match self.home() {
            Some(h) => Ok(h.join(".cache").join("kiln")),
            None => bail!("no cache directory: `HOME` is not set; pass `--cache-dir DIR`"),
        }
    }

    /// Returns `SOURCE_DATE_EPOCH` as unix seconds, if set.
    pub fn source_date_epoch(&self) -> anyhow::Result<Option<i64>> {
        self.get("SOURCE_DATE_EPOCH")
            .map(|v| {
                v.parse::<i64>().ok().filter(|t| *t >= 0).with_context(|| {
                    format!("`SOURCE_DATE_EPOCH` is `{v}`, not a count of seconds since 1970")
                })
            })
            .transpose()
    }

    /// Returns how long a credential helper may take: `KILN_CREDENTIAL_HELPER_TIMEOUT`
    /// (seconds), else [`kiln_registry::DEFAULT_HELPER_TIMEOUT`].
    pub fn helper_timeout(&self) -> anyhow::Result<std::time::Duration> {
        let Some(v) = self.get("KILN_CREDENTIAL_HELPER_TIMEOUT") else {
            return Ok(kiln_registry::DEFAULT_HELPER_TIMEOUT);
        };
        v.parse::<u64>()
            .ok()
            .filter(|s| *s > 0)
            .map(std::time::Duration::from_secs)
            .with_context(|| {
                format!("`KILN_CREDENTIAL_HELPER_TIMEOUT` is `{v}`, not a number of seconds")
            })
    }

    /// Returns the registry settings: docker's and podman's credential and certificate
    /// locations, the credential helper timeout, plus the flags.
    pub fn registry_settings(&self, args: &RegistryArgs) -> anyhow::Result<RegistrySettings> {
        let home = self.home();
        let docker_config_dir = self
            .get("DOCKER_CONFIG")
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".docker")));
        let mut auth_files = Vec::new();
        if let Some(f) = self.get("REGISTRY_AUTH_FILE") {
            auth_files.push(PathBuf::from(f));
        }
        if let Some(d) = self.get("XDG_RUNTIME_DIR") {
            auth_files.push(PathBuf::from(d).join("containers/auth.json"));
        }
        let config_home = self.config_home();
        if let Some(c) = &config_home {
            auth_files.push(c.join("containers/auth.json"));
        }
        let mut certs_dirs = vec![
            PathBuf::from("/etc/docker/certs.d"),
            PathBuf::from("/etc/containers/certs.d"),
        ];
        if let Some(c) = &config_home {
            certs_dirs.push(c.join("containers/certs.d"));
        }
        if let Some(d) = &docker_config_dir {
            certs_dirs.push(d.join("certs.d"));
        }
        Ok(RegistrySettings {
            insecure_registries: args.insecure_registries.clone(),
            allow_http_credentials: args.allow_http_credentials,
            ca_files: args.registry_ca.clone(),
            certs_dirs,
            docker_config_dir,
            auth_files,
            user_agent: format!("kiln/{}", env!("CARGO_PKG_VERSION")),
            helper_timeout: self.helper_timeout()?,
            helper_dirs: self.path_list("PATH"),
            ..RegistrySettings::default()
        })
    }

    /// Returns the Debian archives to use: the main mirror from `--mirror`, else
    /// `KILN_DEBIAN_MIRROR`, else the machine's apt sources; the security archive from
    /// `--security-mirror`, else `KILN_DEBIAN_SECURITY_MIRROR`, else the apt sources' source
    /// of a `*-security` suite (none is fine until a definition needs one).
    pub fn debian_mirrors(
        &self,
        flag: Option<&str>,
        security_flag: Option<&str>,
    ) -> anyhow::Result<Mirrors> {
        let parse =
            |m: &str| url::Url::parse(m).with_context(|| format!("mirror `{m}` is not a URL"));
        let files = apt_source_files();
        let files = || files.iter().map(|(f, t)| (*f, t.as_str()));
        let main = match flag.or(self.get("KILN_DEBIAN_MIRROR")) {
            Some(m) => parse(m)?,
            None => default_mirror(files())
                .context("no Debian mirror found in the apt sources (`/etc/apt/sources.list*`)")?,
        };
        let security = match security_flag.or(self.get("KILN_DEBIAN_SECURITY_MIRROR")) {
            Some(m) => Some(parse(m)?),
            None => default_security_mirror(files()),
        };
        Ok(Mirrors { main, security })
    }
}

/// Returns the sandbox launcher: this very binary. `/proc/self/exe` names it even when the
/// file was replaced or removed since kiln started (an upgrade in the middle of a build);
/// in the child about to exec, it is still kiln.
fn launcher() -> Option<PathBuf> {
    let proc_exe = PathBuf::from("/proc/self/exe");
    if proc_exe.exists() {
        return Some(proc_exe);
    }
    std::env::current_exe().ok()
}

/// Returns the trust and key stores JVM options name (`-Djavax.net.ssl.trustStore=PATH`):
/// a JVM a build step starts reads them.
fn jvm_store_paths(options: &str) -> Vec<PathBuf> {
    const STORES: &[&str] = &["-Djavax.net.ssl.trustStore=", "-Djavax.net.ssl.keyStore="];
    options
        .split_whitespace()
        .filter_map(|o| STORES.iter().find_map(|p| o.strip_prefix(p)))
        .filter(|p| p.starts_with('/'))
        .map(PathBuf::from)
        .collect()
}

/// Parses `--env K=V` values. A malformed one is named by its position, never quoted: a
/// token pasted without its name must not land in a CI log.
pub fn parse_env_flags(values: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    values
        .iter()
        .enumerate()
        .map(|(i, kv)| match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!(
                "`--env` value {} of {} is not `NAME=VALUE` (not shown: it may be a secret)",
                i + 1,
                values.len()
            ),
        })
        .collect()
}

/// Returns the texts of `/etc/apt/sources.list` and `/etc/apt/sources.list.d/*.{list,sources}`,
/// in apt's order.
fn apt_source_files() -> Vec<(SourcesFormat, String)> {
    let mut files: Vec<(SourcesFormat, String)> = Vec::new();
    if let Ok(t) = std::fs::read_to_string("/etc/apt/sources.list") {
        files.push((SourcesFormat::OneLine, t));
    }
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut paths: Vec<PathBuf> = dir.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let Some(format) = SourcesFormat::from_file_name(name) else {
                continue;
            };
            if let Ok(t) = std::fs::read_to_string(&p) {
                files.push((format, t));
            }
        }
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jvm_options_name_their_stores() {
        assert_eq!(
            jvm_store_paths(
                "-Xmx1g -Djavax.net.ssl.trustStore=/ca/cacerts -Djavax.net.ssl.keyStore=rel -Dx=/y"
            ),
            [PathBuf::from("/ca/cacerts")]
        );
    }

    /// B02: a malformed `--env` value (a bare token, or `=token`) is refused by position,
    /// its text nowhere in the message.
    #[test]
    fn b02_a_malformed_env_value_is_refused_without_echoing_it() {
        let ok = parse_env_flags(&["A=1".into(), "B=x=y".into()]).unwrap();
        assert_eq!(ok["B"], "x=y");
        for bad in ["ghp_canary0123456789", "=ghp_canary0123456789"] {
            let err = parse_env_flags(&["A=1".into(), bad.into()]).unwrap_err();
            let text = format!("{err:#}");
            assert!(!text.contains("canary"), "{text}");
            assert!(text.contains("`--env` value 2 of 2"), "{text}");
        }
    }

    #[test]
    fn the_base_registry_flag_wins_over_the_environment() {
        let env = Environment {
            vars: [(
                "KILN_BASE_REGISTRY".to_owned(),
                "env.example.com/bases".to_owned(),
            )]
            .into(),
        };
        let from_env = env.base_registry(None).unwrap().unwrap();
        assert_eq!(from_env.image("node"), "env.example.com/bases/node");
        let from_flag = env
            .base_registry(Some("flag.example.com:5000"))
            .unwrap()
            .unwrap();
        assert_eq!(from_flag.image("node"), "flag.example.com:5000/node");
        assert!(
            Environment::default()
                .base_registry(None)
                .unwrap()
                .is_none()
        );
        let bad = env.base_registry(Some("bases")).unwrap_err();
        assert!(
            format!("{bad:#}").starts_with("--base-registry `bases`"),
            "{bad:#}"
        );
    }
}
