//! Detection: a Maven app has a `pom.xml` at its root. Files only, no programs. A module
//! whose parent POM is on the file system above it asks for the directory holding it as the
//! build's source root ([`crate::parent`]).
//!
//! Gradle builds (`build.gradle`, `build.gradle.kts`) are not supported yet. No
//! [`BuildpackError`] kind maps to exit 20 ("nothing detected"), so a Gradle-only app is not
//! detected (`Ok(None)`) and [`gradle_hint`] gives the words to show with that outcome.

use std::path::Path;

use kiln_lifecycle::{
    BuildpackError, Plan, RUN_IMAGE_FACT, SOURCE_ROOT_FACT, SOURCE_ROOT_REASON_FACT,
};

use crate::parent::local_parents;
use crate::pom::{base_for, java_release};

/// Plan fact: how the app is built: `maven` (the host's `mvn`) or `mavenw` (the project's `./mvnw`).
pub const BUILD_TOOL: &str = "java.build_tool";
/// Plan fact: the Java release the `pom.xml` compiles for, when it says (`8`, `17`, `21`).
pub const VERSION: &str = "java.version";

/// Returns a plan if `app_dir` holds a `pom.xml`, `None` otherwise.
pub(crate) fn detect(app_dir: &Path) -> Result<Option<Plan>, BuildpackError> {
    let pom = app_dir.join("pom.xml");
    if !pom.is_file() {
        return Ok(None);
    }
    let bytes = kiln_lifecycle::read_bounded(&pom, kiln_lifecycle::MANIFEST_LIMIT)
        .map_err(|e| BuildpackError::reading(&pom, e))?;
    let mut plan = Plan::default();
    // The wrapper is used whether or not its executable bit survived the checkout.
    let tool = if app_dir.join("mvnw").is_file() {
        "mavenw"
    } else {
        "maven"
    };
    plan.facts.insert(BUILD_TOOL.to_owned(), tool.to_owned());
    let xml = String::from_utf8_lossy(&bytes);
    let parents = local_parents(app_dir, &xml);
    if parents.levels > 0 {
        plan.facts.insert(
            SOURCE_ROOT_FACT.to_owned(),
            vec![".."; parents.levels].join("/"),
        );
        plan.facts
            .insert(SOURCE_ROOT_REASON_FACT.to_owned(), parents.reason.clone());
    }
    // The module's own setting, else its nearest parent's that has one.
    let release = std::iter::once(xml.as_ref())
        .chain(parents.poms.iter().map(String::as_str))
        .find_map(java_release);
    if let Some(release) = release {
        plan.facts.insert(VERSION.to_owned(), release.to_string());
        let base = base_for(release).map_err(|e| BuildpackError::Usage {
            message: e.to_string(),
            hint: Some("set `maven.compiler.release` to a Java kiln has a golden base for, or name a run image with `--run-image`".to_owned()),
        })?;
        plan.facts
            .insert(RUN_IMAGE_FACT.to_owned(), base.to_owned());
    }
    Ok(Some(plan))
}

/// Returns why a Gradle app at `app_dir` is not detected, `None` when it is no Gradle app
/// (or has a `pom.xml`, which wins).
pub fn gradle_hint(app_dir: &Path) -> Option<String> {
    if app_dir.join("pom.xml").is_file() {
        return None;
    }
    let file = ["build.gradle.kts", "build.gradle"]
        .into_iter()
        .find(|f| app_dir.join(f).is_file())?;
    Some(format!(
        "found `{file}`: Gradle builds are not supported yet by `kiln/java`, only Maven \
         (`pom.xml`); build the jar yourself or add a `pom.xml`"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    fn facts(files: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        let dir = dir_with(files);
        detect(dir.path())
            .unwrap()
            .map(|p| p.facts.into_iter().collect())
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const POM: &str =
        "<project><properties><java.version>1.8</java.version></properties></project>";

    #[test]
    fn pom_passes_with_tool_and_version() {
        let want = pairs(&[
            (BUILD_TOOL, "maven"),
            (VERSION, "8"),
            (RUN_IMAGE_FACT, "kiln-base/java17"),
        ]);
        assert_eq!(facts(&[("pom.xml", POM)]), Some(want));
        let bare = pairs(&[(BUILD_TOOL, "maven")]);
        assert_eq!(facts(&[("pom.xml", "<project/>")]), Some(bare));
    }

    #[test]
    fn a_java_newer_than_any_base_is_a_usage_error() {
        let dir = dir_with(&[(
            "pom.xml",
            "<project><properties><maven.compiler.release>25</maven.compiler.release></properties></project>",
        )]);
        let err = detect(dir.path()).unwrap_err();
        assert!(matches!(err, BuildpackError::Usage { .. }), "{err:?}");
        let java21 = dir_with(&[(
            "pom.xml",
            "<project><properties><maven.compiler.release>21</maven.compiler.release></properties></project>",
        )]);
        let plan = detect(java21.path()).unwrap().unwrap();
        assert_eq!(plan.facts[RUN_IMAGE_FACT], "kiln-base/java21");
    }

    #[test]
    fn mvnw_makes_it_mavenw_even_without_the_exec_bit() {
        let got = facts(&[("pom.xml", POM), ("mvnw", "#!/bin/sh\n")]).unwrap();
        assert!(got.contains(&(BUILD_TOOL.to_owned(), "mavenw".to_owned())));
    }

    #[test]
    fn others_are_not_detected() {
        assert_eq!(facts(&[("go.mod", "module x\n")]), None);
        assert_eq!(facts(&[]), None);
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("pom.xml")).unwrap();
        assert_eq!(detect(dir.path()).unwrap(), None);
    }

    #[test]
    fn gradle_is_not_detected_but_explained() {
        for file in ["build.gradle", "build.gradle.kts"] {
            let dir = dir_with(&[(file, "plugins { java }\n")]);
            assert_eq!(detect(dir.path()).unwrap(), None);
            let hint = gradle_hint(dir.path()).unwrap();
            assert!(hint.contains(&format!("`{file}`")), "{hint}");
            assert!(hint.contains("not supported yet"), "{hint}");
        }
        let both = dir_with(&[("build.gradle", ""), ("pom.xml", POM)]);
        assert!(detect(both.path()).unwrap().is_some());
        assert_eq!(gradle_hint(both.path()), None);
        assert_eq!(gradle_hint(dir_with(&[]).path()), None);
    }

    /// B04: a billion-laughs `pom.xml`, and one whose entities name a file outside the
    /// project: no DTD is honoured, no entity expanded, no file read (the release the file and
    /// the internal entity would give is never seen), at once; the app is still detected and
    /// Maven, which builds it, has the last word.
    #[test]
    fn b04_entities_in_a_pom_are_never_expanded_or_fetched() {
        let mut laughs =
            String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE project [\n<!ENTITY lol0 \"lol\">\n");
        for i in 1..=9 {
            let refs = format!("&lol{};", i - 1).repeat(10);
            laughs.push_str(&format!("<!ENTITY lol{i} \"{refs}\">\n"));
        }
        laughs.push_str(
            "]>\n<project><properties><maven.compiler.release>&lol9;</maven.compiler.release>\
             <maven.compiler.target>11</maven.compiler.target></properties></project>\n",
        );
        let outside = tempfile::tempdir().unwrap();
        let file = outside.path().join("release.txt");
        std::fs::write(&file, "21").unwrap();
        let external = format!(
            "<?xml version=\"1.0\"?>\n<!DOCTYPE project [\n\
             <!ENTITY release SYSTEM \"file://{}\">\n\
             <!ENTITY passwd SYSTEM \"file:///etc/passwd\">\n\
             <!ENTITY % dtd SYSTEM \"file:///etc/passwd\">\n%dtd;\n\
             <!ENTITY seventeen \"17\">\n]>\n\
             <project><name>&passwd;</name><properties>\
             <maven.compiler.release>&release;</maven.compiler.release>\
             <maven.compiler.target>11</maven.compiler.target></properties>\
             <build><plugins><plugin><artifactId>maven-compiler-plugin</artifactId>\
             <configuration><release>&seventeen;</release></configuration></plugin></plugins>\
             </build></project>\n",
            file.display()
        );
        // Parsed, but without the entities: the release is the plain `target` 11, not the
        // 21 of the outside file nor the 17 of the internal entity.
        let started = std::time::Instant::now();
        for pom in [laughs, external] {
            let plan = facts(&[("pom.xml", &pom)]).unwrap();
            assert!(
                plan.contains(&(VERSION.to_owned(), "11".to_owned())),
                "{plan:?}"
            );
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    /// B04: bytes that are not UTF-8 (a Latin-1 `pom.xml`, which XML allows when the file
    /// declares it) do not stop detection or hide the release.
    #[test]
    fn b04_a_pom_that_is_not_utf8_is_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut pom = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<project><name>caf\xe9 \xff\xfe</name>".to_vec();
        pom.extend_from_slice(
            b"<properties><java.version>17</java.version></properties></project>\n",
        );
        std::fs::write(dir.path().join("pom.xml"), pom).unwrap();
        let plan = detect(dir.path()).unwrap().unwrap();
        assert_eq!(plan.facts[VERSION], "17");
    }
}
