//! What `kiln build` users set on their image and build, in the words pack, ko and Jib use:
//! more tags, labels, launch environment, exposed ports, user and working directory (from
//! flags over `[io.kiln]` in project.toml), an env file and the creation time.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, bail};
use kiln_lifecycle::{ImageSettings, ProjectDescriptor};
use kiln_oci::Reference;

use crate::args::BuildArgs;
use crate::failure::{Failure, exit};
use crate::session::parse_image;

/// Labels kiln writes itself, and `kiln rebase` and `kiln inspect` read.
const KILN_LABELS: &str = "io.buildpacks.";

/// Returns the image config settings: project.toml's, then the flags' over them (labels and
/// launch env key by key; ports added; user and working directory replaced).
pub fn image_settings(
    args: &BuildArgs,
    project: &ProjectDescriptor,
) -> Result<ImageSettings, Failure> {
    let usage = |e: anyhow::Error| Failure::new(exit::USAGE, e);
    let mut labels = project.labels.clone();
    labels.extend(pairs("--label", &args.label).map_err(usage)?);
    if let Some(key) = labels.keys().find(|k| k.starts_with(KILN_LABELS)) {
        return Err(usage(anyhow!("the label `{key}` is kiln's own"))
            .hint(Some(format!("name your labels outside `{KILN_LABELS}*`"))));
    }
    let mut env = project.launch_env.clone();
    env.extend(pairs("--launch-env", &args.launch_env).map_err(usage)?);
    let mut exposed_ports = Vec::new();
    for port in project.expose.iter().chain(&args.expose) {
        exposed_ports.push(exposed_port(port).map_err(usage)?);
    }
    let user = args.user.clone().or_else(|| project.user.clone());
    if let Some(user) = &user {
        check_user(user, args.allow_root).map_err(|e| {
            usage(e).hint(Some(
                "run as a non-root UID (kiln's bases have `nonroot`, 65532), or add `--allow-root`"
                    .into(),
            ))
        })?;
    }
    let working_dir = args.workdir.clone().or_else(|| project.workdir.clone());
    if let Some(dir) = working_dir.as_deref().filter(|d| !d.starts_with('/')) {
        return Err(usage(anyhow!(
            "the working directory `{dir}` is not absolute"
        )));
    }
    Ok(ImageSettings {
        labels,
        env,
        exposed_ports,
        user,
        working_dir,
    })
}

/// Returns the further references of the image, each with its name as written: `--tag`,
/// else `[io.kiln] tags`.
pub fn also_tags(
    args: &BuildArgs,
    project: &ProjectDescriptor,
) -> Result<Vec<(Reference, String)>, Failure> {
    let written = match args.tag.is_empty() {
        true => &project.tags,
        false => &args.tag,
    };
    written
        .iter()
        .map(|tag| Ok((parse_image(tag)?, tag.clone())))
        .collect()
}

/// Writes `name:tag@digest` for the image and each further tag, as written, a line each
/// (ko's `--image-refs`), for the next step of a pipeline.
pub fn write_image_refs<'n>(
    path: &Path,
    names: impl Iterator<Item = &'n String>,
    digest: &str,
) -> Result<(), Failure> {
    let text: String = names.map(|n| format!("{n}@{digest}\n")).collect();
    std::fs::write(path, text)
        .map_err(|e| Failure::new(exit::FAILURE, anyhow!("writing `{}`: {e}", path.display())))
}

/// Returns the build's creation time from `--creation-time` (`now` or seconds since
/// 1970), if given.
pub fn creation_time(written: Option<&str>) -> Result<Option<i64>, Failure> {
    let Some(written) = written else {
        return Ok(None);
    };
    let seconds = match written {
        "now" => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
        _ => written
            .parse::<i64>()
            .ok()
            .filter(|t| *t >= 0)
            .ok_or_else(|| {
                Failure::new(
                    exit::USAGE,
                    anyhow!("`--creation-time {written}` is neither `now` nor seconds since 1970"),
                )
            })?,
    };
    Ok(Some(seconds))
}

/// Reads a file of `K=V` lines (pack's `--env-file`): blank lines and `#` comments are
/// skipped; a line without `=` is refused by its number (its text may be a secret).
pub fn read_env_file(path: &Path) -> Result<BTreeMap<String, String>, Failure> {
    let usage = |e: anyhow::Error| Failure::new(exit::USAGE, e);
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(anyhow!("--env-file `{}`: {e}", path.display())))?;
    parse_env_lines(&text).map_err(|n| {
        usage(anyhow!(
            "--env-file `{}`: line {n} is not `NAME=VALUE` (not shown: it may be a secret)",
            path.display()
        ))
    })
}

/// Parses `K=V` lines; the error is the number of the first bad line.
fn parse_env_lines(text: &str) -> Result<BTreeMap<String, String>, usize> {
    let mut env = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                env.insert(k.trim().to_owned(), v.to_owned());
            }
            _ => return Err(n + 1),
        }
    }
    Ok(env)
}

/// Parses `K=V` values of `flag`.
fn pairs(flag: &str, values: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    values
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => bail!("`{flag} {kv}` is not `KEY=VALUE`"),
        })
        .collect()
}

/// Returns `8080` or `53/udp` as the config writes it: `8080/tcp`, `53/udp`.
fn exposed_port(written: &str) -> anyhow::Result<String> {
    let (port, protocol) = written.split_once('/').unwrap_or((written, "tcp"));
    match port.parse::<u16>() {
        Ok(port) if port > 0 && ["tcp", "udp", "sctp"].contains(&protocol) => {
            Ok(format!("{port}/{protocol}"))
        }
        _ => bail!("`{written}` is no port: write it `8080` or `53/udp`"),
    }
}

/// Refuses a user that is root (UID 0 or `root`) unless allowed, and one that is not
/// `UID[:GID]` or a name.
fn check_user(user: &str, allow_root: bool) -> anyhow::Result<()> {
    let (uid, gid) = match user.split_once(':') {
        Some((uid, gid)) => (uid, Some(gid)),
        None => (user, None),
    };
    let fine = |part: &str| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
    };
    if !fine(uid) || gid.is_some_and(|g| !fine(g)) {
        bail!("`{user}` is no user: write it `UID[:GID]`, e.g. `1000:1000`");
    }
    let root = uid == "root" || uid.parse::<u32>() == Ok(0);
    if root && !allow_root {
        bail!("the image would run as root (`{user}`)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_written_with_their_protocol_and_bad_ones_refused() {
        assert_eq!(exposed_port("8080").unwrap(), "8080/tcp");
        assert_eq!(exposed_port("53/udp").unwrap(), "53/udp");
        assert_eq!(exposed_port("08080").unwrap(), "8080/tcp");
        for bad in ["0", "70000", "http", "80/icmp", ""] {
            assert!(exposed_port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn root_is_refused_unless_allowed() {
        assert!(check_user("1000:1000", false).is_ok());
        assert!(check_user("nonroot", false).is_ok());
        for root in ["0", "root", "0:0", "root:1000", "000"] {
            assert!(check_user(root, false).is_err(), "{root}");
            assert!(check_user(root, true).is_ok(), "{root}");
        }
        assert!(check_user("1000:", false).is_err());
        assert!(check_user("a b", false).is_err());
        assert!(check_user(":1000", false).is_err());
    }

    #[test]
    fn env_files_skip_comments_and_name_a_bad_line_by_number() {
        let env = parse_env_lines("# build\nGOFLAGS=-tags=prod\n\n  A=b=c\n").unwrap();
        assert_eq!(env["GOFLAGS"], "-tags=prod");
        assert_eq!(env["A"], "b=c");
        assert_eq!(parse_env_lines("A=1\nsecret-without-equals\n"), Err(2));
        assert_eq!(parse_env_lines("=x"), Err(1));
    }

    #[test]
    fn creation_times_are_now_or_seconds() {
        assert_eq!(
            creation_time(Some("1700000000")).unwrap(),
            Some(1_700_000_000)
        );
        assert!(creation_time(Some("now")).unwrap().unwrap() > 1_700_000_000);
        assert!(creation_time(Some("-1")).is_err());
        assert!(creation_time(Some("yesterday")).is_err());
        assert_eq!(creation_time(None).unwrap(), None);
    }

    #[test]
    fn pairs_need_a_key() {
        assert_eq!(pairs("--label", &["a=b=c".into()]).unwrap()["a"], "b=c");
        assert!(pairs("--label", &["=x".into()]).is_err());
        assert!(pairs("--label", &["novalue".into()]).is_err());
    }
}
