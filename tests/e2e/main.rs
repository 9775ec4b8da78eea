//! kiln's end-to-end tests, in one binary: a real registry, podman + runc, the real Go,
//! Maven and Node toolchains and the live Debian mirror, against the real `kiln` binary.
//!
//! One binary, so that what the tests share is made once per run: the golden bases
//! (`common::bases`), the warm download caches (`common::caches`), the podman store
//! (`common::suite`), and the kiln binary itself. The harness is libtest-mimic's (the
//! arguments `cargo test` passes work: a name filter, `--exact`, `--list`,
//! `--test-threads`, `--skip`). Tests run longest first, one per core ([`default_jobs`]),
//! so that the longest ones do not start last. A table of each test's and each fixture's
//! time is printed at the end.

mod common;

mod architecture;
mod bounds;
mod build_env;
mod cache_image;
mod cli_conventions;
mod cli_errors;
mod concurrency;
mod curated;
mod faults_auth;
mod faults_push;
mod go_build;
mod golden_base;
mod golden_java;
mod harness;
mod image_settings;
mod integrity;
mod java_apps;
mod java_build;
mod local_images;
mod machine_faults;
mod monorepo;
mod multi_platform;
mod node_build;
mod noop;
mod pod_build;
mod preflight;
mod project_toml;
mod rebase;
mod registry_auth;
mod sandbox;
mod supply_chain;

use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Trial};

/// How many tests run at once unless `--test-threads` (or `KILN_E2E_JOBS`) says otherwise:
/// one per core. On the 2-core CI machine the whole run took 339 s with 2, 331–353 s with
/// 3 and 339 s with 4: what the tests run (kiln, podman's vfs copies, the toolchains,
/// syft) keeps the cores busy, so more threads only slow each test down.
fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

/// `(name, function)` of each `module::function`, named as libtest would name it.
macro_rules! tests {
    ($($module:ident :: $test:ident),* $(,)?) => {
        [$((concat!(stringify!($module), "::", stringify!($test)), $module::$test as fn())),*]
    };
}

/// Every test, longest first (from the timings a run prints), so the long ones do not
/// start last. A test missing from this list is dead code, which the lints refuse.
const TESTS: &[(&str, fn())] = &tests![
    pod_build::builder_image_builds_apps_in_a_locked_down_pod_with_a_registry_cache,
    concurrency::w10_twenty_concurrent_builds_share_one_cache_dir_and_registry,
    rebase::r17_d_go_java_and_node_apps_move_to_base_v2_uploading_only_configs_and_manifests,
    golden_base::static_golden_base_locks_builds_reproducibly_and_runs_a_go_app,
    curated::node_and_java_apps_build_anywhere_on_curated_bases_kiln_carries,
    curated::with_a_base_registry_builds_pull_the_bases_and_fetch_no_deb,
    node_build::b02_express_app_ships_production_dependencies_only_and_a_code_change_reuses_node_modules,
    java_build::spring_boot_app_runs_layered_and_a_code_change_pushes_only_its_layer,
    supply_chain::sboms_signatures_and_provenance_of_a_go_app,
    golden_java::java17_runs_as_nonroot_and_trusts_its_generated_keystore,
    node_build::typescript_pnpm_app_builds_with_its_devdependencies_and_ships_without_them,
    node_build::node_builds_are_reproducible_across_paths_and_caches,
    go_build::b02_go_web_app_publishes_runs_and_keeps_secrets_out,
    multi_platform::java_layers_are_built_once_and_shared_by_every_platform,
    image_settings::labels_env_ports_user_and_workdir_reach_the_config_and_tags_share_one_digest,
    multi_platform::go_app_is_one_index_of_images_cross_compiled_for_each_platform,
    multi_platform::node_apps_share_their_layers_across_platforms_unless_they_hold_native_code,
    cache_image::a_code_change_uploads_only_the_cache_entries_it_added,
    rebase::r17_refusals_name_their_reason_and_leave_the_tag,
    golden_base::arm64_bases_build_from_the_same_locks,
    java_apps::b02_settings_pick_the_jar_and_a_settings_xml_password_stays_out_of_everything,
    java_apps::multi_module_web_app_runs_with_module_and_dependency_layers,
    java_apps::java21_app_needs_a_new_enough_jdk_and_runs_on_the_java21_base,
    node_build::no_lockfile_start_scripts_broken_builds_and_version_ranges,
    node_build::native_addon_runs_and_another_architecture_is_refused,
    rebase::a_multi_arch_app_is_rebased_per_platform,
    rebase::r17_e_a_killed_rebase_leaves_the_old_tag,
    golden_base::base_golden_base_shares_static_layers_and_runs_glibc,
    golden_base::node_golden_base_runs_node,
    golden_java::java21_runs_as_nonroot_with_its_generated_keystore,
    go_build::builds_are_reproducible_across_paths_mtimes_and_caches,
    go_build::unchanged_rebuild_reuses_layers_and_uploads_nothing,
    faults_push::r12_b_a_killed_push_leaves_the_tag_and_a_rerun_completes,
    machine_faults::c06_an_interrupted_push_cancels_its_upload_sessions_and_leaves_the_tag,
    machine_faults::c06_a_full_disk_mid_layer_and_a_read_only_cache_fail_cleanly,
    go_build::multi_binary_app_needs_and_honours_process_choice,
    go_build::local_layout_archive_and_zstd,
    go_build::errors_have_exit_codes_messages_and_hints,
    node_build::yarn_berry_and_classic_apps_run,
    node_build::workspace_member_builds_from_the_root_lockfile,
    node_build::an_app_without_dependencies_ships_its_app_layer_alone,
    sandbox::b01_a_hostile_maven_plugin_reaches_no_secret,
    java_build::executable_jar_runs_with_its_dependencies_layer,
    java_build::broken_and_gradle_projects_fail_with_their_exit_codes,
    java_apps::b05_zip_slip_and_zip_bomb_jars_are_refused_naming_the_entry,
    registry_auth::token_registry_bearer_flow_with_scopes_and_mounts,
    registry_auth::htpasswd_registry_needs_login_and_login_stores_docker_credentials,
    registry_auth::tls_registry_with_private_ca,
    registry_auth::run_image_from_oci_layout,
    sandbox::b01_a_hostile_go_toolexec_reaches_no_secret,
    sandbox::b01_a_hostile_npm_script_reaches_no_secret,
    sandbox::b01_without_landlock_kiln_says_so_once_and_require_refuses,
    build_env::toolchain_gets_no_credentials_or_docker_config,
    go_build::git_checkouts_stamp_revision_source_and_commit_time,
    go_build::missing_toolchain_is_a_kiln_build_failure,
    golden_base::a_stale_lock_is_refused,
    bounds::b04_huge_project_files_are_refused_unread,
    integrity::w09_a_rotten_blob_in_the_store_is_never_shipped,
    node_build::b04_a_go_app_with_a_package_json_asks_which_buildpack,
    pod_build::kubernetes_manifests_lock_the_pod_down,
    harness::podman_runs_a_static_go_server_as_the_image_user,
    harness::podman_loads_an_oci_archive_and_runs_it_once,
    harness::token_registry_does_the_bearer_flow_against_the_issuer,
    harness::anonymous_registry_takes_a_push_and_serves_it_back,
    harness::htpasswd_registry_refuses_anonymous_pushes,
    harness::tls_registry_is_trusted_only_with_its_ca,
    harness::builder_combines_tls_and_htpasswd,
    harness::workspace_and_copy_dir_keep_the_tree,
    faults_auth::c02_verbose_output_and_errors_never_show_credentials_tokens_or_signatures,
    cli_errors::c06_push_failures_render_their_cause_once_with_a_hint,
    curated::a_stale_embedded_lock_says_to_update_kiln,
    preflight::preflight_stops_a_push_that_cannot_succeed_before_building,
    project_toml::pack_schemas_are_read_and_what_kiln_ignores_is_named,
    monorepo::maven_module_with_a_parent_pom_above_the_path_builds,
    noop::an_unchanged_rebuild_publishes_nothing_and_keeps_its_digest,
    monorepo::go_replace_and_go_work_outside_the_path_build,
    cli_conventions::a_terminal_gets_colour_a_spinner_and_the_reference_last,
    cli_conventions::log_format_json_writes_one_event_a_line,
    cli_conventions::login_asks_for_the_password_on_a_terminal_without_echo,
    local_images::images_are_listed_removed_and_the_cache_measured,
    local_images::the_printed_run_command_runs_a_local_image,
    local_images::cache_prune_frees_space_and_never_breaks_a_remaining_image,
    cli_errors::c06_build_failures_render_their_cause_once_with_a_hint,
    architecture::crates_depend_only_in_the_designed_direction,
    architecture::buildpacks_reach_no_network_crate,
    architecture::libraries_neither_print_nor_read_the_environment,
    architecture::error_messages_never_repeat_their_source,
    architecture::library_errors_name_no_command_line,
    architecture::cli_commands_stay_thin,
];

/// libtest's options that take a value (so the next word is not a filter).
const VALUE_OPTIONS: &[&str] = &[
    "--test-threads",
    "--skip",
    "--color",
    "--format",
    "--logfile",
    "-Z",
];

/// Returns the arguments without their name filters, and those filters: libtest takes
/// several (`cargo test -- rebase node_build`), libtest-mimic one.
fn split_filters(argv: Vec<String>) -> (Vec<String>, Vec<String>) {
    let (mut rest, mut filters) = (Vec::new(), Vec::new());
    let mut words = argv.into_iter();
    rest.extend(words.next());
    while let Some(word) = words.next() {
        if VALUE_OPTIONS.contains(&word.as_str()) {
            rest.push(word);
            rest.extend(words.next());
        } else if word.starts_with('-') {
            rest.push(word);
        } else {
            filters.push(word);
        }
    }
    (rest, filters)
}

fn main() {
    let (argv, filters) = split_filters(std::env::args().collect());
    let mut args = Arguments::from_iter(argv);
    if args.test_threads.is_none() {
        let jobs = std::env::var("KILN_E2E_JOBS")
            .ok()
            .and_then(|j| j.parse().ok());
        args.test_threads = Some(jobs.unwrap_or_else(default_jobs));
    }
    let wanted = |name: &str| {
        filters.is_empty()
            || filters.iter().any(|f| {
                if args.exact {
                    name == f
                } else {
                    name.contains(f.as_str())
                }
            })
    };
    let trials = TESTS
        .iter()
        .filter(|(name, _)| wanted(name))
        .map(|&(name, test)| {
            Trial::test(name, move || {
                // Recorded on the way out, a failing (panicking) test included.
                let _timer = Timer(name, Instant::now());
                test();
                Ok(())
            })
        })
        .collect();
    common::suite::start_clock();
    let started = Instant::now();
    let conclusion = libtest_mimic::run(&args, trials);
    common::suite::teardown();
    if !args.list {
        print_timings(started.elapsed());
    }
    conclusion.exit();
}

/// Records a test's time when dropped.
struct Timer(&'static str, Instant);

impl Drop for Timer {
    fn drop(&mut self) {
        common::suite::record(self.0, self.1);
    }
}

/// Prints every recorded time, longest first, with when it started, and the run's wall time.
fn print_timings(wall: Duration) {
    let mut timings = common::suite::timings();
    if timings.is_empty() {
        return;
    }
    timings.sort_by_key(|t| std::cmp::Reverse(t.took));
    let width = timings.iter().map(|t| t.what.len()).max().unwrap_or(0);
    eprintln!("\ne2e timings (tests include the fixtures they waited for):");
    eprintln!("  {:<width$}  {:>8}  {:>9}", "", "took", "started");
    for t in &timings {
        eprintln!(
            "  {:<width$}  {:>6.1} s  {:>+7.1} s",
            t.what,
            t.took.as_secs_f64(),
            t.started.as_secs_f64()
        );
    }
    eprintln!("  {:<width$}  {:>6.1} s", "wall time", wall.as_secs_f64());
    if let Some((own, children)) = cpu_seconds() {
        eprintln!(
            "  {:<width$}  {own:>6.1} s",
            "CPU time of this process (its checks)"
        );
        eprintln!(
            "  {:<width$}  {children:>6.1} s",
            "CPU time of the processes it ran (kiln, podman, toolchains, ...)"
        );
    }
}

/// Returns the CPU seconds (user + system) of this process and of its waited-for children,
/// from `/proc/self/stat` (fields 14–17, in clock ticks of 1/100 s on Linux).
fn cpu_seconds() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let fields: Vec<f64> = stat
        .rsplit_once(')')?
        .1
        .split_whitespace()
        .skip(11)
        .take(4)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let [utime, stime, cutime, cstime] = fields[..] else {
        return None;
    };
    Some(((utime + stime) / 100.0, (cutime + cstime) / 100.0))
}
