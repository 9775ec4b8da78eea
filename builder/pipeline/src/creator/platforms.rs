//! The builds of a multi-platform image: one build serving every platform when its layers
//! are tied to no CPU (Java's classes, a Node app without native code), else one per
//! platform, side by side; then one image per platform over that platform's run image.

use std::path::Path;

use kiln_lifecycle::{BuildResult, NativeCode, RunImage, Scratch};
use kiln_model::Platform;

use super::finish::CachePush;
use super::{CreateError, Creator, Detected, PlatformImage};
use crate::{Progress, is_host};

/// The builds of one `kiln build`, and which of them each platform's image comes from.
pub(super) struct Builds {
    /// Each build, with the scratch dir it holds until its layers are exported.
    pub built: Vec<(BuildResult, Scratch)>,
    /// For each platform, in the index's order, the build its image is exported from.
    pub of_platform: Vec<usize>,
}

impl Creator<'_> {
    /// Builds the app for each platform of `detected`: once when the buildpack's output
    /// serves all, else once per platform, concurrently.
    pub(super) fn build_platforms(
        &self,
        detected: &Detected<'_>,
        buildpack_cache: &Path,
        progress: &dyn Progress,
    ) -> Result<Builds, CreateError> {
        let runs = &detected.runs;
        let build = |i: usize, progress: &dyn Progress| {
            let (platform, run) = &runs[i];
            self.build(
                detected,
                (platform.as_ref(), run),
                buildpack_cache,
                progress,
            )
        };
        if runs.len() == 1 {
            return Ok(Builds {
                built: vec![build(0, progress)?],
                of_platform: vec![0],
            });
        }
        // One build may serve all: try the host's platform first (its native code, if any,
        // is the kind the build machine makes).
        let mut todo: Vec<usize> = (0..runs.len()).collect();
        let mut built = Vec::new();
        let mut of_platform = vec![usize::MAX; runs.len()];
        if detected.buildpack.may_serve_all_platforms() {
            let first = runs
                .iter()
                .position(|(p, _)| p.as_ref().is_some_and(is_host))
                .unwrap_or(0);
            let one = build(first, &Prefixed::new(progress, runs[first].0.as_ref()))?;
            let neutral = one.0.output.platform_neutral;
            built.push(one);
            todo.retain(|&i| i != first);
            of_platform[first] = 0;
            if neutral {
                progress.info(&format!(
                    "the layers hold no native code: one build serves all {} platforms",
                    runs.len()
                ));
                return Ok(Builds {
                    built,
                    of_platform: vec![0; runs.len()],
                });
            }
            progress.info("the layers hold native code: building again for each other platform");
        }
        let results: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = todo
                .iter()
                .map(|&i| {
                    let build = &build;
                    scope.spawn(move || build(i, &Prefixed::new(progress, runs[i].0.as_ref())))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a platform's build panicked"))
                .collect()
        });
        for (i, result) in todo.into_iter().zip(results) {
            of_platform[i] = built.len();
            built.push(result?);
        }
        Ok(Builds { built, of_platform })
    }

    /// Exports each platform's image over its run image, from the build that serves it;
    /// starts the cache image's push once.
    pub(super) fn export_platforms(
        &self,
        detected: &Detected<'_>,
        builds: &Builds,
        buildpack_cache: &Path,
        progress: &dyn Progress,
    ) -> Result<(Vec<PlatformImage>, Option<CachePush<'_>>), CreateError> {
        let mut images = Vec::new();
        let mut cache_push = None;
        for (i, (platform, run)) in detected.runs.iter().enumerate() {
            let built = &builds.built[builds.of_platform[i]].0;
            let cache = (i == 0).then_some(buildpack_cache);
            let prefixed = Prefixed::new(progress, platform.as_ref());
            let platform = platform.clone().unwrap_or_else(|| platform_of(run));
            for lacking in lacking_native_code(&built.output.native, &platform) {
                prefixed.warn(&lacking);
            }
            let (image, layers, push) = self.export(detected, run, built, cache, &prefixed)?;
            cache_push = cache_push.or(push);
            images.push(PlatformImage {
                platform,
                image,
                run_image: run.clone(),
                layers,
            });
        }
        Ok((images, cache_push))
    }
}

/// Returns a warning for each piece of native code that has nothing for `platform`'s
/// architecture: the image may not work there.
fn lacking_native_code(native: &[NativeCode], platform: &Platform) -> Vec<String> {
    native
        .iter()
        .filter(|n| !n.architectures.contains(&platform.architecture))
        .map(|n| {
            format!(
                "`{}` carries native libraries for {} only, none for this image's `{}`: what uses them will fail or fall back there",
                n.location,
                n.architectures.join(", "),
                platform.architecture
            )
        })
        .collect()
}

/// Returns the platform a run image's config names.
fn platform_of(run: &RunImage) -> Platform {
    let config = &run.image.config;
    Platform {
        os: config.os().to_string(),
        architecture: config.architecture().to_string(),
        variant: config.variant().clone(),
    }
}

/// Progress of one platform's build, its lines marked with the platform when the build
/// makes several.
struct Prefixed<'p> {
    inner: &'p dyn Progress,
    prefix: String,
}

impl<'p> Prefixed<'p> {
    fn new(inner: &'p dyn Progress, platform: Option<&Platform>) -> Self {
        Self {
            inner,
            prefix: platform.map_or(String::new(), |p| format!("[{p}] ")),
        }
    }
}

impl Progress for Prefixed<'_> {
    fn phase(&self, name: &str) {
        self.inner.phase(name);
    }
    fn info(&self, line: &str) {
        self.inner.info(&format!("{}{line}", self.prefix));
    }
    fn warn(&self, line: &str) {
        self.inner.warn(&format!("{}{line}", self.prefix));
    }
    fn debug(&self, line: &str) {
        self.inner.debug(&format!("{}{line}", self.prefix));
    }
    fn toolchain(&self, line: &str) {
        self.inner.toolchain(&format!("{}{line}", self.prefix));
    }
    fn count(&self, done: u64, total: u64) {
        self.inner.count(done, total);
    }
    fn push_observer(&self) -> Box<dyn kiln_image::PushObserver + '_> {
        self.inner.push_observer()
    }
    fn delivered(&self, destination: kiln_image::Destination<'_>, written: &kiln_image::Written) {
        self.inner.delivered(destination, written);
    }
    fn generated_base(&self, name: &str) {
        self.inner.generated_base(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_code_without_the_platforms_architecture_is_named() {
        let native = [
            NativeCode {
                location: "/workspace/lib/epoll-linux-x86_64.jar".into(),
                architectures: vec!["amd64".into()],
            },
            NativeCode {
                location: "/workspace/lib/sqlite.jar".into(),
                architectures: vec!["amd64".into(), "arm64".into()],
            },
        ];
        let arm = crate::parse_platform("linux/arm64").unwrap();
        let amd = crate::parse_platform("linux/amd64").unwrap();
        let warned = lacking_native_code(&native, &arm);
        assert_eq!(warned.len(), 1, "{warned:?}");
        assert!(warned[0].contains("epoll-linux-x86_64.jar") && warned[0].contains("`arm64`"));
        assert!(lacking_native_code(&native, &amd).is_empty());
    }
}
