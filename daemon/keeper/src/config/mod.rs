//! Configuration: layered loading, schema, validation, and the effective dump.
//!
//! `load` reads every layer (see [`layers`]), deserializes the merge into [`Config`] collecting
//! every error (see [`node`]), validates it (see [`validate`]), and attaches to each problem the
//! place it was written: `file:line:col` or the environment variable.

mod direct;
pub mod duration;
pub mod layers;
pub mod named;
pub mod node;
pub mod reload;
pub mod schema;
pub mod support;
pub mod syntax;
pub mod validate;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use duration::Secs;
pub use node::{KeyPath, Node, Origin, display_path};
pub use schema::*;
pub use validate::Severity;

/// The default configuration file.
pub const DEFAULT_PATH: &str = "/etc/keeper/keeper.toml";

/// A problem with the configuration, placed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub origin: Origin,
    /// Empty for problems of a whole file.
    pub path: KeyPath,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}: {sev}: ", self.origin)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", display_path(&self.path))?;
        }
        f.write_str(&self.message)
    }
}

/// A configuration that passed every check.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub config: Config,
    /// The keys this load placed, for the origins of later problems: every key after a full
    /// load; after a fast reload (see [`reload`]) only the changed virtual server's, the other
    /// warnings keeping the places they had. The daemon drops it once a load is accepted.
    pub root: Arc<Node>,
    /// The texts read, for the next reload.
    pub sources: Arc<reload::Sources>,
    /// The files read, in layer order.
    pub files: Vec<PathBuf>,
    /// Warnings, including keys accepted but not implemented yet.
    pub warnings: Vec<Diagnostic>,
}

impl Loaded {
    pub fn origin_of(&self, path: &[String]) -> Origin {
        self.root.origin_of(path)
    }

    /// Drops `root` once the load is accepted: it places only this load's problems (a later
    /// reload places its own, or carries the warnings with their places), and kept for the
    /// daemon's life it is the largest thing keeperd holds: about 20 MB for 10,000 real servers
    /// (massif).
    pub fn forget_places(&mut self) {
        self.root = Arc::new(Node::table(Default::default(), Origin::Default));
    }

    /// The IPVS plans this configuration was checked with (see `lvs::plan::plan_shared`).
    pub fn lvs_plans(&self) -> crate::lvs::plan::SharedPlanCache {
        self.sources.lvs_plans.clone()
    }
}

/// Reloads: re-reads only the virtual server whose text changed when that gives exactly what
/// [`load`] gives (see [`reload`]), else loads everything again.
pub fn reload_from(
    running: &Loaded,
    main: &Path,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Loaded, Vec<Diagnostic>> {
    let env: Vec<(String, String)> = env.into_iter().collect();
    match reload::try_incremental(main, &env, running) {
        Some(loaded) => Ok(loaded),
        None => load(main, env),
    }
}

/// The order an operator reads problems in: errors first, then by file and line.
pub(crate) fn sort_diagnostics(diags: &mut [Diagnostic]) {
    diags.sort_by(|a, b| {
        (a.severity, a.origin.sort_key(), &a.path).cmp(&(b.severity, b.origin.sort_key(), &b.path))
    });
}

/// Every finding about a deserialized configuration: validation, then, when it found no error,
/// the VRRP and IPVS plans' notes (part of validation so that `--check` and the running drivers
/// agree: groups, services claimed twice, families, the sync daemon). `only_virtual_server`:
/// skip the other virtual servers' own keys (see [`validate::validate_changed_virtual_server`]).
pub(crate) fn findings(
    cfg: &Config,
    only_virtual_server: Option<&str>,
    lvs_plans: &crate::lvs::plan::SharedPlanCache,
) -> Vec<validate::Finding> {
    let mut out = match only_virtual_server {
        Some(name) => validate::validate_changed_virtual_server(cfg, name),
        None => validate::validate(cfg),
    };
    if out.iter().any(|f| f.severity == Severity::Error) {
        return out;
    }
    let notes = crate::vrrp::plan::plan(cfg)
        .1
        .into_iter()
        .map(|n| (n.error, n.path, n.message))
        .chain(
            crate::lvs::plan::plan_shared(cfg, lvs_plans)
                .1
                .into_iter()
                .map(|n| (n.error, n.path, n.message)),
        );
    out.extend(notes.map(|(error, path, message)| validate::Finding {
        severity: if error {
            Severity::Error
        } else {
            Severity::Warning
        },
        path,
        message,
    }));
    out
}

/// Loads, merges and validates every layer; on failure returns every problem found.
/// `env` is the process environment (a parameter so tests can give their own).
pub fn load(
    main: &Path,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Loaded, Vec<Diagnostic>> {
    let env: Vec<(String, String)> = env.into_iter().collect();
    if let Some(loaded) = load_direct(main, &env) {
        return loaded;
    }
    let merged = layers::merge(main, env).map_err(|errs| {
        errs.into_iter()
            .map(|e| Diagnostic {
                severity: Severity::Error,
                origin: e.origin,
                path: Vec::new(),
                message: e.message,
            })
            .collect::<Vec<_>>()
    })?;
    check(merged.root, merged.sources, merged.files)
}

/// Every file read in one pass (see [`direct`]) and the layers merged from those trees (see
/// [`layers::merge_trees`]: figment merges only what more than one layer writes). `None`: a file
/// this does not read, or a merge figment refuses; the layered loader reads them and reports.
fn load_direct(main: &Path, env: &[(String, String)]) -> Option<Result<Loaded, Vec<Diagnostic>>> {
    let files = layers::config_files(main).ok()?;
    let mut trees = Vec::with_capacity(files.len());
    let mut sources = Vec::with_capacity(files.len());
    for path in &files {
        let text = std::fs::read_to_string(path).ok()?;
        let (root, blocks) = direct::parse(path, &text)?;
        trees.push((path.clone(), root));
        sources.push(reload::FileSource {
            path: path.clone(),
            text,
            blocks,
        });
    }
    let root = layers::merge_trees(trees, env)?;
    let vars = reload::Sources::keeper_vars(env);
    Some(check(root, reload::Sources::new(sources, vars), files))
}

/// Deserializes and validates the merged tree; every problem placed.
fn check(
    root: Node,
    sources: reload::Sources,
    files: Vec<PathBuf>,
) -> Result<Loaded, Vec<Diagnostic>> {
    let (config, de_errors) = node::deserialize_all::<Config>(&root);
    let mut diags: Vec<Diagnostic> = de_errors
        .into_iter()
        .map(|(path, message)| Diagnostic {
            severity: Severity::Error,
            origin: root.origin_of(&path),
            path,
            message,
        })
        .collect();
    if let Some(cfg) = &config {
        diags.extend(
            findings(cfg, None, &sources.lvs_plans)
                .into_iter()
                .map(|f| Diagnostic {
                    origin: root.origin_of(&f.path),
                    severity: f.severity,
                    path: f.path,
                    message: f.message,
                }),
        );
    }
    diags.extend(support::not_implemented(&root));
    sort_diagnostics(&mut diags);
    let (errors, warnings): (Vec<_>, Vec<_>) = diags
        .into_iter()
        .partition(|d| d.severity == Severity::Error);
    match config {
        Some(config) if errors.is_empty() => Ok(Loaded {
            config,
            root: Arc::new(root),
            sources: Arc::new(sources),
            files,
            warnings,
        }),
        _ => Err(errors),
    }
}

/// The effective configuration as TOML, secrets replaced by `"<redacted>"`.
pub fn dump(cfg: &Config) -> Result<String, String> {
    let mut cfg = cfg.clone();
    for inst in cfg.vrrp_instance.values_mut() {
        if let Some(auth) = &mut inst.authentication
            && auth.auth_pass.is_some()
        {
            auth.auth_pass = Some(REDACTED.to_string());
        }
    }
    toml::to_string(&cfg).map_err(|e| format!("cannot print the configuration: {e}"))
}

pub const REDACTED: &str = "<redacted>";
