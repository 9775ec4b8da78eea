//! The SBOM schema checkers the tests trust: SPDX's `spdx-tools` (`pyspdxtools`) and
//! CycloneDX's `cyclonedx-python-lib` strict JSON validator, both the projects' own
//! reference libraries from PyPI, installed with pip into a virtualenv once per machine
//! by `tests/tools/install.sh`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd::run_output;
use crate::tools::tool;

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

/// Returns the virtualenv's `python` (the pinned validators `tests/tools/install.sh`
/// installs), creating the virtualenv first when it is missing (pip needs the machine's
/// Python index; a minute, once per machine).
pub fn sbom_tools_python() -> PathBuf {
    tool("sbom-validators")
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
