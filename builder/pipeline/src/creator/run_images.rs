//! The run image of each platform of a build, and kiln's curated bases built into the store
//! (from the lock kiln carries) for the platforms the build needs.

use kiln_debian::Mirrors;
use kiln_debian::platform::debian_arch;
use kiln_layer::FileLock;
use kiln_lifecycle::RunImage;
use kiln_model::Platform;

use super::Creator;
use crate::Progress;
use crate::curated::{BuildCurated, CuratedError, curated_base};
use crate::run_image::{RunImageChoice, RunImageError, resolve_run_image};
use crate::source::{ImageSource, read_image};

impl Creator<'_> {
    /// Returns the platforms the build is for: those asked for, else one, unnamed (the run
    /// image's platform of this machine).
    fn wanted_platforms(&self) -> Vec<Option<Platform>> {
        match self.platforms.is_empty() {
            true => vec![None],
            false => self.platforms.iter().cloned().map(Some).collect(),
        }
    }

    /// Reads `choice`'s image for each platform of the build, side by side (files of a
    /// generated base dated `epoch`).
    pub(super) fn resolve_runs(
        &self,
        choice: &RunImageChoice,
        epoch: i64,
        progress: &dyn Progress,
    ) -> Result<Vec<(Option<Platform>, RunImage)>, RunImageError> {
        let platforms = self.wanted_platforms();
        let reads = platforms.iter().map(|platform| {
            resolve_run_image(
                choice,
                self.session.client(),
                self.store,
                (epoch, self.compression),
                platform.as_ref(),
            )
        });
        let runs = self
            .session
            .block_on(futures_util::future::try_join_all(reads))?;
        for (platform, run) in platforms.iter().zip(&runs) {
            let on = platform
                .as_ref()
                .map_or(String::new(), |p| format!(" for {p}"));
            progress.info(&format!("run image{on} {} ({})", run.name, run.digest));
        }
        Ok(platforms.into_iter().zip(runs).collect())
    }

    /// Builds the curated base `store_name` into the store from kiln's embedded lock, for
    /// every platform of the build (this machine's, without any): an index when several.
    pub(super) fn build_curated(
        &self,
        store_name: &str,
        mirrors: &Mirrors,
        progress: &dyn Progress,
    ) -> Result<(), RunImageError> {
        let not_in_store = || RunImageError::NotInStore {
            name: store_name.to_owned(),
        };
        let name = curated_base(store_name).ok_or_else(not_in_store)?;
        let platforms: Vec<String> = self
            .wanted_platforms()
            .into_iter()
            .map(|p| {
                p.map_or(format!("linux/{}", kiln_lifecycle::host_arch()), |p| {
                    p.to_string()
                })
            })
            .collect();
        let arches = platforms
            .iter()
            .map(|p| debian_arch(p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| not_in_store())?;
        // Builds that start together on one cache dir build the base once: the others wait
        // here, then find it in the store.
        let lock_path = self.cache_dir.join(format!("golden-base/{name}.lock"));
        let _building = FileLock::exclusive(&lock_path).map_err(|source| {
            RunImageError::Curated(Box::new(CuratedError::Unpack {
                dir: self.cache_dir.clone(),
                source,
            }))
        })?;
        if self.store_has(store_name) {
            progress.info(&format!(
                "the run image `{store_name}` was built meanwhile by another build on this cache dir"
            ));
            return Ok(());
        }
        progress.phase(&format!("PREPARING RUN IMAGE {store_name}"));
        let only = match self.platforms.is_empty() {
            true => String::new(),
            false => format!(" for {}", platforms.join(", ")),
        };
        progress.info(&format!(
            "the run image `{store_name}` is not in kiln's store{only}: building it once, from the lock kiln carries"
        ));
        BuildCurated {
            name,
            mirrors,
            cache_dir: &self.cache_dir,
            arches: &arches,
        }
        .run(self.session, self.store, progress)
        .map_err(|e| RunImageError::Curated(Box::new(e)))?;
        Ok(())
    }

    /// Whether kiln's store holds `name` for every platform of the build.
    fn store_has(&self, name: &str) -> bool {
        let source = ImageSource::Store(name.to_owned());
        self.wanted_platforms().iter().all(|p| {
            let arch = p
                .as_ref()
                .map_or(kiln_lifecycle::host_arch(), |p| p.architecture.as_str());
            let read = read_image(
                &source,
                "run image",
                self.session.client(),
                self.store,
                ("linux", arch),
            );
            match self.session.block_on(read) {
                Ok(run) => p.is_none() || run.image.config.architecture().to_string() == arch,
                Err(_) => false,
            }
        })
    }
}
