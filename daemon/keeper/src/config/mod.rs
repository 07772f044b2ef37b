//! Configuration: layered loading, schema, validation, and the effective dump.
//!
//! `load` reads every layer (see [`layers`]), deserializes the merge into [`Config`] collecting
//! every error (see [`node`]), validates it (see [`validate`]), and attaches to each problem the
//! place it was written: `file:line:col` or the environment variable.

pub mod duration;
pub mod layers;
pub mod node;
pub mod reload;
pub mod schema;
pub mod support;
pub mod syntax;
pub mod validate;

use std::collections::BTreeMap;
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
    /// The merged tree, for origins of keys.
    pub root: Arc<Node>,
    /// Virtual servers re-read since `root` was built (see [`reload`]): their keys' places.
    pub replaced: BTreeMap<String, Arc<Node>>,
    /// The texts read, for the next reload.
    pub sources: Arc<reload::Sources>,
    /// The files read, in layer order.
    pub files: Vec<PathBuf>,
    /// Warnings, including keys accepted but not implemented yet.
    pub warnings: Vec<Diagnostic>,
}

impl Loaded {
    pub fn origin_of(&self, path: &[String]) -> Origin {
        reload::origin_in(&self.replaced, path).unwrap_or_else(|| self.root.origin_of(path))
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

/// Loads, merges and validates every layer; on failure returns every problem found.
/// `env` is the process environment (a parameter so tests can give their own).
pub fn load(
    main: &Path,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Loaded, Vec<Diagnostic>> {
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
    let root = merged.root;
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
        let findings = validate::validate(cfg);
        let clean = !findings.iter().any(|f| f.severity == Severity::Error);
        diags.extend(findings.into_iter().map(|f| Diagnostic {
            severity: f.severity,
            origin: root.origin_of(&f.path),
            path: f.path,
            message: f.message,
        }));
        // The VRRP plan is part of validation so that --check and the running driver agree.
        if clean {
            let mut note = |error: bool, path: KeyPath, message: String| {
                diags.push(Diagnostic {
                    severity: if error {
                        Severity::Error
                    } else {
                        Severity::Warning
                    },
                    origin: root.origin_of(&path),
                    path,
                    message,
                })
            };
            for n in crate::vrrp::plan::plan(cfg).1 {
                note(n.error, n.path, n.message);
            }
            // So is the IPVS plan (groups, services claimed twice, families, sync daemon).
            for n in crate::lvs::plan::plan_shared(cfg, &merged.sources.lvs_plans).1 {
                note(n.error, n.path, n.message);
            }
        }
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
            replaced: BTreeMap::new(),
            sources: Arc::new(merged.sources),
            files: merged.files,
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
