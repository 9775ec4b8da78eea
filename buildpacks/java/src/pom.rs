//! The Java release a Maven project compiles for, read from its `pom.xml`, and the golden
//! base that runs it.
//!
//! Maven's compiler plugin takes `release` (or the older `target`) from its own
//! `<configuration>`, else from the `maven.compiler.release` / `maven.compiler.target`
//! properties (<https://maven.apache.org/plugins/maven-compiler-plugin/compile-mojo.html>);
//! Spring Boot projects set `java.version` and reference it from those properties.

use std::collections::BTreeMap;

use quick_xml::Reader;
use quick_xml::events::Event;

/// The golden base for apps that need Java 17 or older.
pub const JAVA17_BASE: &str = "kiln-base/java17";
/// The golden base for apps that need Java 18 to 21.
pub const JAVA21_BASE: &str = "kiln-base/java21";

/// Why no golden base fits an app.
#[derive(Debug, thiserror::Error)]
pub enum BaseError {
    /// The app needs a Java release newer than any base kiln has.
    #[error(
        "choosing a run image for java release `{release}`: kiln's bases run up to java 21 \
         (`{JAVA17_BASE}` for 17 and older, `{JAVA21_BASE}` for 18 to 21)"
    )]
    Unsupported {
        /// The release the app asked for.
        release: u32,
    },
}

/// Returns the golden base that runs an app compiled for Java `release`.
pub fn base_for(release: u32) -> Result<&'static str, BaseError> {
    match release {
        0..=17 => Ok(JAVA17_BASE),
        18..=21 => Ok(JAVA21_BASE),
        _ => Err(BaseError::Unsupported { release }),
    }
}

/// Returns the Java release `pom_xml` compiles for, `None` when it does not say (or is not
/// well-formed XML: Maven itself reports that, with better words, when it builds).
pub fn java_release(pom_xml: &str) -> Option<u32> {
    let pom = Pom::read(pom_xml)?;
    let lookup = |value: &Option<String>| value.as_deref().and_then(|v| pom.resolve(v));
    let property = |name: &str| pom.properties.get(name).and_then(|v| pom.resolve(v));
    // `release` beats `target` wherever it is set; the plugin's own configuration beats
    // the properties it defaults from.
    lookup(&pom.plugin_release)
        .or_else(|| property("maven.compiler.release"))
        .or_else(|| lookup(&pom.plugin_target))
        .or_else(|| property("maven.compiler.target"))
        .or_else(|| property("java.version"))
}

/// Returns the major release in `version`: `1.8` → 8, `17` → 17, `21.0.2` → 21.
pub(crate) fn normalize_release(version: &str) -> Option<u32> {
    let version = version.trim();
    let version = version.strip_prefix("1.").unwrap_or(version);
    version.split('.').next()?.parse().ok()
}

/// What of a `pom.xml` matters for the Java release.
#[derive(Debug, Default)]
struct Pom {
    properties: BTreeMap<String, String>,
    plugin_release: Option<String>,
    plugin_target: Option<String>,
}

impl Pom {
    /// Returns the parsed document, `None` when it is not well-formed.
    fn read(xml: &str) -> Option<Pom> {
        let mut reader = Reader::from_str(xml);
        let mut pom = Pom::default();
        let mut path: Vec<String> = Vec::new();
        let mut text = String::new();
        // The compiler settings of the plugin being read; kept only if it turns out to be
        // `maven-compiler-plugin` (its `<artifactId>` may come after its configuration).
        let mut plugin = Plugin::default();
        loop {
            match reader.read_event().ok()? {
                Event::Start(e) => {
                    path.push(String::from_utf8_lossy(e.local_name().as_ref()).into_owned());
                    text.clear();
                }
                Event::Text(t) => text.push_str(&t.decode().ok()?),
                Event::CData(t) => text.push_str(&t.decode().ok()?),
                Event::End(_) => {
                    let names: Vec<&str> = path.iter().map(String::as_str).collect();
                    pom.element(&names, text.trim(), &mut plugin);
                    path.pop();
                    text.clear();
                }
                Event::Eof => break,
                _ => {}
            }
        }
        path.is_empty().then_some(pom)
    }

    /// Records the element at `path` (just closed, holding `text`).
    fn element(&mut self, path: &[&str], text: &str, plugin: &mut Plugin) {
        match path {
            ["project", "properties", name] => {
                self.properties.insert((*name).to_owned(), text.to_owned());
            }
            ["project", "build", "plugins", "plugin", rest @ ..]
            | [
                "project",
                "build",
                "pluginManagement",
                "plugins",
                "plugin",
                rest @ ..,
            ] => match rest {
                ["artifactId"] => plugin.artifact = Some(text.to_owned()),
                ["configuration", "release"] => plugin.release = Some(text.to_owned()),
                ["configuration", "target"] => plugin.target = Some(text.to_owned()),
                [] => {
                    let plugin = std::mem::take(plugin);
                    if plugin.artifact.as_deref() == Some("maven-compiler-plugin") {
                        self.plugin_release = self.plugin_release.take().or(plugin.release);
                        self.plugin_target = self.plugin_target.take().or(plugin.target);
                    }
                }
                _ => {}
            },
            _ => {}
        }
    }

    /// Returns `value` as a release, resolving one `${property}` reference.
    fn resolve(&self, value: &str) -> Option<u32> {
        let value = value.trim();
        match value.strip_prefix("${").and_then(|v| v.strip_suffix('}')) {
            Some(name) => normalize_release(self.properties.get(name)?),
            None => normalize_release(value),
        }
    }
}

/// The compiler-relevant parts of one `<plugin>`.
#[derive(Debug, Default)]
struct Plugin {
    artifact: Option<String>,
    release: Option<String>,
    target: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pom(body: &str) -> String {
        format!(
            "<?xml version=\"1.0\"?>\n<project xmlns=\"http://maven.apache.org/POM/4.0.0\">\
             <modelVersion>4.0.0</modelVersion>{body}</project>"
        )
    }

    fn props(inner: &str) -> String {
        pom(&format!("<properties>{inner}</properties>"))
    }

    fn compiler(config: &str) -> String {
        format!(
            "<build><plugins><plugin><groupId>org.apache.maven.plugins</groupId>\
             <artifactId>maven-compiler-plugin</artifactId>\
             <configuration>{config}</configuration></plugin></plugins></build>"
        )
    }

    #[test]
    fn properties_in_priority_order() {
        let all = "<java.version>11</java.version><maven.compiler.target>1.8</maven.compiler.target>\
                   <maven.compiler.release>17</maven.compiler.release>";
        assert_eq!(java_release(&props(all)), Some(17));
        let no_release =
            "<java.version>11</java.version><maven.compiler.target>1.8</maven.compiler.target>";
        assert_eq!(java_release(&props(no_release)), Some(8));
        assert_eq!(
            java_release(&props("<java.version> 21 </java.version>")),
            Some(21)
        );
    }

    #[test]
    fn resolves_one_property_reference() {
        let spring = "<java.version>21</java.version>\
                      <maven.compiler.release>${java.version}</maven.compiler.release>";
        assert_eq!(java_release(&props(spring)), Some(21));
        // An unresolvable reference falls through to the next source.
        let dangling = "<maven.compiler.release>${nope}</maven.compiler.release>\
                        <java.version>11</java.version>";
        assert_eq!(java_release(&props(dangling)), Some(11));
        // One level only: a chain of references is not followed.
        let chain = "<a>${b}</a><b>17</b><maven.compiler.release>${a}</maven.compiler.release>";
        assert_eq!(java_release(&props(chain)), None);
    }

    #[test]
    fn compiler_plugin_configuration_beats_properties() {
        let text = pom(&format!(
            "<properties><maven.compiler.release>11</maven.compiler.release><jdk>1.8</jdk></properties>{}",
            compiler("<release>21</release>")
        ));
        assert_eq!(java_release(&text), Some(21));
        let target = pom(&format!(
            "<properties><jdk>1.8</jdk></properties>{}",
            compiler("<source>${jdk}</source><target>${jdk}</target>")
        ));
        assert_eq!(java_release(&target), Some(8));
        let managed = pom(
            "<build><pluginManagement><plugins><plugin><configuration><release>17</release>\
             </configuration><artifactId>maven-compiler-plugin</artifactId></plugin></plugins>\
             </pluginManagement></build>",
        );
        assert_eq!(java_release(&managed), Some(17));
    }

    #[test]
    fn ignores_other_plugins_profiles_and_comments() {
        let other = pom(
            "<build><plugins><plugin><artifactId>maven-surefire-plugin</artifactId>\
             <configuration><release>9</release></configuration></plugin></plugins></build>",
        );
        assert_eq!(java_release(&other), None);
        let profile = pom(
            "<profiles><profile><properties><java.version>9</java.version></properties>\
             </profile></profiles><!-- <properties><java.version>7</java.version></properties> -->",
        );
        assert_eq!(java_release(&profile), None);
        let cdata = props("<java.version><![CDATA[17]]></java.version>");
        assert_eq!(java_release(&cdata), Some(17));
    }

    #[test]
    fn malformed_or_silent_poms_give_none() {
        assert_eq!(java_release("<project><properties>"), None);
        assert_eq!(java_release("not xml at all <"), None);
        assert_eq!(java_release(&pom("")), None);
        assert_eq!(
            java_release(&props("<java.version>latest</java.version>")),
            None
        );
    }

    #[test]
    fn normalizes_old_style_versions() {
        assert_eq!(normalize_release("1.8"), Some(8));
        assert_eq!(normalize_release("1.7"), Some(7));
        assert_eq!(normalize_release("8"), Some(8));
        assert_eq!(normalize_release("21.0.2"), Some(21));
        assert_eq!(normalize_release(""), None);
    }

    #[test]
    fn bases_by_release() {
        assert_eq!(base_for(8).unwrap(), JAVA17_BASE);
        assert_eq!(base_for(17).unwrap(), JAVA17_BASE);
        assert_eq!(base_for(18).unwrap(), JAVA21_BASE);
        assert_eq!(base_for(21).unwrap(), JAVA21_BASE);
        let err = base_for(25).unwrap_err().to_string();
        assert!(err.contains("`25`"), "{err}");
        assert!(
            err.contains(JAVA17_BASE) && err.contains(JAVA21_BASE),
            "{err}"
        );
    }
}
