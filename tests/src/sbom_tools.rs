//! The SBOM schema checkers the tests trust: SPDX's `spdx-tools` (`pyspdxtools`) and
//! CycloneDX's `cyclonedx-python-lib` strict JSON validator, both the projects' own
//! reference libraries from PyPI, installed with pip into a virtualenv once per Cargo
//! target dir.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::cmd::{run_checked, run_output};
use crate::kiln::target_dir;

/// The pinned reference tools.
const REQUIREMENTS: &[&str] = &[
    "spdx-tools==0.8.5",
    "cyclonedx-python-lib[json-validation]==11.12.0",
];

/// `pyspdxtools -i FILE`, through the module (see [`sbom_tools_python`]).
const SPDX_CHECK: &str = "from spdx_tools.spdx.clitools.pyspdxtools import main; main()";

const CYCLONEDX_CHECK: &str = "\
import sys
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
errors = JsonStrictValidator(SchemaVersion.V1_5).validate_str(open(sys.argv[1]).read())
if errors:
    print(errors)
    sys.exit(1)
print('valid')
";

/// Returns the virtualenv's `python`, creating the virtualenv first when missing (pip
/// needs the machine's Python index; a minute, once).
///
/// Once per process; concurrent processes each build in their own `build-<pid>` dir and
/// move it into place with one rename. Only `bin/python` is used afterwards: the scripts'
/// shebangs name the build dir, but Python finds the environment relative to itself.
pub fn sbom_tools_python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let tag = REQUIREMENTS.join("-").replace(['=', '[', ']'], "-");
            let root = target_dir().join("kiln-tools").join(format!("py-{tag}"));
            let python = root.join("bin/python");
            if root.join("ready").is_file() {
                return python;
            }
            let build = target_dir()
                .join("kiln-tools")
                .join(format!("py-build-{}", std::process::id()));
            let _ = fs::remove_dir_all(&build);
            fs::create_dir_all(build.parent().unwrap()).expect("creating kiln-tools");
            run_checked(Command::new("python3").args(["-m", "venv"]).arg(&build));
            run_checked(
                Command::new(build.join("bin/python"))
                    .args([
                        "-m",
                        "pip",
                        "install",
                        "--quiet",
                        "--disable-pip-version-check",
                    ])
                    .args(REQUIREMENTS),
            );
            fs::write(build.join("ready"), "").expect("marking the virtualenv ready");
            if fs::rename(&build, &root).is_err() {
                // Another process got there first.
                let _ = fs::remove_dir_all(&build);
            }
            python
        })
        .clone()
}

/// Validates the SPDX JSON document at `path` with `pyspdxtools -i`; returns its
/// complaints, empty when it is valid.
pub fn validate_spdx(path: &Path) -> String {
    let out = run_output(
        Command::new(sbom_tools_python())
            .args(["-c", SPDX_CHECK, "-i"])
            .arg(path),
    );
    complaints(&out)
}

/// Validates the CycloneDX 1.5 JSON document at `path` strictly; returns its complaints,
/// empty when it is valid.
pub fn validate_cyclonedx(path: &Path) -> String {
    let out = run_output(
        Command::new(sbom_tools_python())
            .args(["-c", CYCLONEDX_CHECK])
            .arg(path),
    );
    complaints(&out)
}

fn complaints(out: &std::process::Output) -> String {
    if out.status.success() {
        String::new()
    } else {
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}
