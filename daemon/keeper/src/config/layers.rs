//! The configuration layers and their merge: built-in defaults < the TOML file < `conf.d/*.toml`
//! in lexical order < `KEEPER_…` environment variables (`__` separates key segments).
//!
//! figment does the merge and remembers which layer each value came from; this module adds what
//! figment cannot know: the line and column of every key (from a spanned `toml_edit` parse), and
//! environment keys matched to the names written in the files (figment's own `Env` lowercases
//! `VI_1` to `vi_1`, which would define a second instance instead of overriding the first).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};

use super::node::{KeyPath, Node, NodeKind, Origin};
use super::reload::{FileSource, Sources, VsBlocks};

/// Environment variable prefix; `KEEPER_A__B=1` sets key `a.b`.
pub const ENV_PREFIX: &str = "KEEPER_";

/// One problem found while reading a layer (before any schema check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerError {
    pub origin: Origin,
    pub message: String,
}

/// The TOML files to read: the main file, then `conf.d/*.toml` beside it in lexical order.
pub fn config_files(main: &Path) -> Result<Vec<PathBuf>, LayerError> {
    let mut files = vec![main.to_path_buf()];
    let dir = main.parent().unwrap_or(Path::new(".")).join("conf.d");
    match std::fs::read_dir(&dir) {
        Ok(entries) => {
            let mut extra: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
                .collect();
            extra.sort();
            files.extend(extra);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(LayerError {
                origin: Origin::File {
                    path: Arc::from(dir.as_path()),
                    line: 0,
                    col: 0,
                },
                message: format!("cannot read directory: {e}"),
            });
        }
    }
    Ok(files)
}

/// A parsed TOML file: its values for figment, and the position of every key.
pub struct FileLayer {
    /// The values, converted from the one parse (figment's own TOML provider would parse the
    /// text a second time: 7% of loading a large file).
    values: FileValues,
    positions: Positions,
    /// The text and where each virtual server is written in it, kept for the next reload
    /// (see [`super::reload`]).
    source: Option<FileSource>,
}

/// Where each key was written: line and column by joined key path ([`join`]). A flat map of
/// joined strings: one allocation per key (a map of `Vec<String>` paths made loading a file with
/// 10,000 real servers allocation-bound).
// FxHash: the keys are our own paths, not attacker-chosen, and SipHash was 7% of loading a large file.
type Positions = rustc_hash::FxHashMap<String, (u32, u32)>;

/// Joins key segments with a separator no configuration key uses.
pub(crate) const SEP: char = '\u{1f}';

fn push_seg(path: &mut String, seg: &str) -> usize {
    let len = path.len();
    if !path.is_empty() {
        path.push(SEP);
    }
    path.push_str(seg);
    len
}

impl FileLayer {
    pub fn read(path: &Path) -> Result<FileLayer, LayerError> {
        let text = std::fs::read_to_string(path).map_err(|e| LayerError {
            origin: Origin::File {
                path: Arc::from(path),
                line: 0,
                col: 0,
            },
            message: format!("cannot read configuration file: {e}"),
        })?;
        Self::parse(path, text)
    }

    pub fn parse(path: &Path, text: String) -> Result<FileLayer, LayerError> {
        let doc = toml_edit::Document::parse(text.as_str()).map_err(|e| {
            let (line, col) = e.span().map(|s| line_col(&text, s.start)).unwrap_or((0, 0));
            LayerError {
                origin: Origin::File {
                    path: Arc::from(path),
                    line,
                    col,
                },
                message: format!("TOML syntax error: {}", e.message()),
            }
        })?;
        let mut positions = Positions::default();
        collect_table(
            doc.as_table(),
            &Lines::new(&text),
            &mut String::new(),
            &mut positions,
        );
        let blocks = VsBlocks::index(&doc, &text);
        let data = table_dict(doc.as_table().iter());
        drop(doc);
        Ok(FileLayer {
            values: FileValues::new(path.to_path_buf(), data),
            positions,
            source: Some(FileSource {
                path: path.to_path_buf(),
                text,
                blocks,
            }),
        })
    }

    pub(crate) fn source(&self) -> Option<&FileSource> {
        self.source.as_ref()
    }

    /// The top-level keys the file writes.
    pub(crate) fn root_keys(&self) -> Vec<String> {
        self.values
            .data
            .lock()
            .map(|d| d.as_ref().map(|d| d.keys().cloned().collect()))
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    /// The file's values as a tree, every value placed in this file: what [`merge`] gives for
    /// a key that no other layer writes (see [`super::reload`]).
    pub(crate) fn into_node(self) -> Node {
        let shared: Arc<Path> = Arc::from(self.values.path.as_path());
        let data = self
            .values
            .data
            .into_inner()
            .map(Option::unwrap_or_default)
            .unwrap_or_default();
        let positions = self.positions;
        let origin_of = |_: &Value, path: &str| -> Origin {
            let (line, col) = positions.get(path).copied().unwrap_or((0, 0));
            Origin::File {
                path: shared.clone(),
                line,
                col,
            }
        };
        to_node(Value::from(data), &mut String::new(), &origin_of, true)
    }
}

/// A file's values as a figment layer (its source: the file).
struct FileValues {
    path: PathBuf,
    /// Handed to figment once, without a copy.
    data: std::sync::Mutex<Option<Dict>>,
}

impl FileValues {
    fn new(path: PathBuf, data: Dict) -> FileValues {
        FileValues {
            path,
            data: std::sync::Mutex::new(Some(data)),
        }
    }
}

impl Provider for FileValues {
    fn metadata(&self) -> Metadata {
        Metadata::from(
            self.path.display().to_string(),
            Source::File(self.path.clone()),
        )
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        // figment asks once per merge; a second ask (none today) gets an empty layer.
        let data = self
            .data
            .lock()
            .map(|mut d| d.take())
            .unwrap_or_default()
            .unwrap_or_default();
        Ok(Profile::Default.collect(data))
    }
}

/// TOML values as figment's, the way figment's TOML provider reads them (a date-time, which no
/// key takes, becomes its text).
fn table_dict<'a>(entries: impl Iterator<Item = (&'a str, &'a toml_edit::Item)>) -> Dict {
    entries
        .filter_map(|(k, item)| item_value(item).map(|v| (k.to_string(), v)))
        .collect()
}

fn item_value(item: &toml_edit::Item) -> Option<Value> {
    match item {
        toml_edit::Item::None => None,
        toml_edit::Item::Value(v) => Some(toml_value(v)),
        toml_edit::Item::Table(t) => Some(Value::from(table_dict(t.iter()))),
        toml_edit::Item::ArrayOfTables(a) => Some(Value::from(
            a.iter()
                .map(|t| Value::from(table_dict(t.iter())))
                .collect::<Vec<Value>>(),
        )),
    }
}

fn toml_value(v: &toml_edit::Value) -> Value {
    match v {
        toml_edit::Value::String(s) => Value::from(s.value().clone()),
        toml_edit::Value::Integer(i) => Value::from(*i.value()),
        toml_edit::Value::Float(f) => Value::from(*f.value()),
        toml_edit::Value::Boolean(b) => Value::from(*b.value()),
        toml_edit::Value::Datetime(d) => Value::from(d.value().to_string()),
        toml_edit::Value::Array(a) => Value::from(a.iter().map(toml_value).collect::<Vec<Value>>()),
        toml_edit::Value::InlineTable(t) => Value::from(
            t.iter()
                .map(|(k, v)| (k.to_string(), toml_value(v)))
                .collect::<Dict>(),
        ),
    }
}

fn line_col(text: &str, offset: usize) -> (u32, u32) {
    Lines::new(text).line_col(offset)
}

/// The line starts of a text, so that placing every key is a binary search rather than a
/// scan from the top (which made files with 10,000 real servers take seconds to load).
pub(crate) struct Lines<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    pub(crate) fn new(text: &'a str) -> Lines<'a> {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Lines { text, starts }
    }

    /// 1-based line and column (in characters) of byte `offset`.
    pub(crate) fn line_col(&self, offset: usize) -> (u32, u32) {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self
            .starts
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or(0);
        let col = self
            .text
            .get(start..offset)
            .map_or(0, |l| l.chars().count())
            + 1;
        (
            u32::try_from(line).unwrap_or(u32::MAX),
            u32::try_from(col).unwrap_or(u32::MAX),
        )
    }
}

fn collect_table(
    table: &toml_edit::Table,
    text: &Lines<'_>,
    path: &mut String,
    out: &mut Positions,
) {
    for (key, item) in table.iter() {
        let len = push_seg(path, key);
        let span = table
            .key(key)
            .and_then(|k| k.span())
            .or_else(|| item.span());
        if let Some(span) = span {
            out.entry(path.clone())
                .or_insert_with(|| text.line_col(span.start));
        }
        collect_item(item, text, path, out);
        path.truncate(len);
    }
}

fn collect_item(item: &toml_edit::Item, text: &Lines<'_>, path: &mut String, out: &mut Positions) {
    match item {
        toml_edit::Item::Table(t) => collect_table(t, text, path, out),
        toml_edit::Item::Value(v) => collect_value(v, text, path, out),
        toml_edit::Item::ArrayOfTables(a) => {
            for (i, t) in a.iter().enumerate() {
                let len = push_seg(path, &i.to_string());
                if let Some(span) = t.span() {
                    out.entry(path.clone())
                        .or_insert_with(|| text.line_col(span.start));
                }
                collect_table(t, text, path, out);
                path.truncate(len);
            }
        }
        toml_edit::Item::None => {}
    }
}

fn collect_value(
    value: &toml_edit::Value,
    text: &Lines<'_>,
    path: &mut String,
    out: &mut Positions,
) {
    match value {
        toml_edit::Value::InlineTable(t) => {
            for (key, v) in t.iter() {
                let len = push_seg(path, key);
                let span = t.key(key).and_then(|k| k.span()).or_else(|| v.span());
                if let Some(span) = span {
                    out.entry(path.clone())
                        .or_insert_with(|| text.line_col(span.start));
                }
                collect_value(v, text, path, out);
                path.truncate(len);
            }
        }
        toml_edit::Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                let len = push_seg(path, &i.to_string());
                if let Some(span) = v.span() {
                    out.entry(path.clone())
                        .or_insert_with(|| text.line_col(span.start));
                }
                collect_value(v, text, path, out);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// The `KEEPER_…` variables as a figment layer. Values stay strings (the schema reads them
/// leniently), and each key segment takes the spelling of the key already written in the files
/// at that place, compared without case; a segment that matches nothing is lowercased.
pub struct EnvLayer {
    entries: Vec<(String, KeyPath, String)>,
}

impl EnvLayer {
    pub fn new(vars: impl IntoIterator<Item = (String, String)>, files: &Dict) -> Self {
        let mut entries = Vec::new();
        for (var, value) in vars {
            let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if rest.is_empty() {
                continue;
            }
            let mut path = Vec::new();
            let mut level: Option<&Dict> = Some(files);
            for raw in rest.split("__") {
                let found = level.and_then(|d| d.keys().find(|k| k.eq_ignore_ascii_case(raw)));
                let seg = found.cloned().unwrap_or_else(|| raw.to_ascii_lowercase());
                level = level.and_then(|d| d.get(&seg)).and_then(|v| v.as_dict());
                path.push(seg);
            }
            entries.push((var, path, value));
        }
        entries.sort();
        EnvLayer { entries }
    }

    /// The variable that set `path`, if any.
    pub fn var_for(&self, path: &[String]) -> Option<&str> {
        self.entries
            .iter()
            .find(|(_, p, _)| p == path)
            .map(|(v, _, _)| v.as_str())
    }

    /// The variable behind `path`: the one that set it, else one that set an ancestor (an array
    /// from one variable), else the first that set a key inside it (a table created by
    /// `KEEPER_A__B__C` alone).
    pub fn var_behind(&self, path: &[String]) -> Option<&str> {
        (0..=path.len())
            .rev()
            .find_map(|n| self.var_for(&path[..n]))
            .or_else(|| {
                self.entries
                    .iter()
                    .find(|(_, p, _)| p.starts_with(path))
                    .map(|(v, _, _)| v.as_str())
            })
    }
}

const ENV_SOURCE: &str = "keeper-environment";

impl Provider for EnvLayer {
    fn metadata(&self) -> Metadata {
        Metadata::from("environment", Source::Custom(ENV_SOURCE.to_string()))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut root = Dict::new();
        for (var, path, value) in &self.entries {
            let mut dict = &mut root;
            let (last, parents) = path
                .split_last()
                .ok_or_else(|| figment::Error::from(format!("{var}: empty key")))?;
            for seg in parents {
                let entry = dict
                    .entry(seg.clone())
                    .or_insert_with(|| Value::from(Dict::new()));
                if entry.as_dict().is_none() {
                    // `KEEPER_A=1` and `KEEPER_A__B=2` together: the table wins.
                    *entry = Value::from(Dict::new());
                }
                dict = match entry {
                    Value::Dict(_, d) => d,
                    _ => return Err(format!("{var}: cannot nest under a value").into()),
                };
            }
            dict.insert(last.clone(), Value::from(value.clone()));
        }
        Ok(Profile::Default.collect(root))
    }
}

/// All layers merged, as a [`Node`] tree whose every value knows its origin.
pub struct Merged {
    pub root: Node,
    pub files: Vec<PathBuf>,
    /// What the next reload compares against.
    pub sources: Sources,
}

/// Reads and merges every layer. `env` is the process environment (passed in for tests).
pub fn merge(
    main: &Path,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Merged, Vec<LayerError>> {
    let paths = config_files(main).map_err(|e| vec![e])?;
    let env: Vec<(String, String)> = env.into_iter().collect();
    let env_snapshot = Sources::keeper_vars(&env);
    let mut layers = Vec::new();
    let mut errors = Vec::new();
    for p in &paths {
        match FileLayer::read(p) {
            Ok(l) => layers.push(l),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let (figment, env, data) = merge_values(layers.iter().map(|l| &l.values), env)?;
    let root = {
        let files: HashMap<&Path, &Positions> = layers
            .iter()
            .map(|l| (l.values.path.as_path(), &l.positions))
            .collect();
        let origin_of = origins(&figment, &env, |file, path| {
            files
                .get(file)
                .and_then(|positions| positions.get(path))
                .copied()
        });
        to_node(Value::from(data), &mut String::new(), &origin_of, true)
    };
    let sources = Sources::new(
        layers.iter_mut().filter_map(|l| l.source.take()).collect(),
        env_snapshot,
    );
    Ok(Merged {
        root,
        files: paths,
        sources,
    })
}

/// The layers merged from trees already read (see [`super::direct`]), in layer order; `None`
/// when figment refuses the merge ([`merge`] then reports it).
///
/// A top-level key written by one file alone is that file's subtree as read. The others, written
/// by several files or by a `KEEPER_…` variable, are merged by figment exactly as [`merge`]
/// merges them: figment merges a table key by key, so merging only those top-level keys gives
/// the same values, and each value is placed where the tree of the file it came from placed it
/// (the same place as the positions [`merge`] records: tests compare the two).
pub(crate) fn merge_trees(files: Vec<(PathBuf, Node)>, env: &[(String, String)]) -> Option<Node> {
    let mut roots: Vec<(PathBuf, Node)> = Vec::with_capacity(files.len());
    let mut writers: BTreeMap<String, usize> = BTreeMap::new();
    for (path, node) in files {
        let NodeKind::Table(t) = &node.kind else {
            return None;
        };
        for (k, _) in t.iter() {
            *writers.entry(k.clone()).or_default() += 1;
        }
        roots.push((path, node));
    }
    // The top-level keys the variables write, spelled as [`merge`] spells them: a variable's
    // first segment is matched against the files' top-level keys, which is all it needs here.
    let keys_only: Dict = writers
        .keys()
        .map(|k| (k.clone(), Value::from(Dict::new())))
        .collect();
    let touched = EnvLayer::new(env.iter().cloned(), &keys_only)
        .entries
        .into_iter()
        .filter_map(|(_, path, _)| path.into_iter().next());
    let shared: BTreeSet<String> = writers
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| k.clone())
        .chain(touched)
        .collect();

    // Top-level keys written once go into the result as read; the shared ones go to figment,
    // and stay in `kept` (one tree per file) to place the merged values.
    let mut entries: Vec<(String, Node)> = Vec::new();
    let mut layers = Vec::with_capacity(roots.len());
    let mut kept: Vec<(PathBuf, Node)> = Vec::with_capacity(roots.len());
    for (path, node) in roots {
        let NodeKind::Table(t) = node.kind else {
            return None;
        };
        let mut data = Dict::new();
        let mut mine = Vec::new();
        for (k, v) in t {
            if shared.contains(&k) {
                data.insert(k.clone(), value_of(&v));
                mine.push((k, v));
            } else {
                entries.push((k, v));
            }
        }
        layers.push(FileValues::new(path.clone(), data));
        kept.push((
            path,
            Node::table(mine.into_iter().collect(), Origin::Default),
        ));
    }
    if !shared.is_empty() {
        let (figment, env, data) = merge_values(layers.iter(), env.iter().cloned()).ok()?;
        let files: HashMap<&Path, &Node> = kept.iter().map(|(p, n)| (p.as_path(), n)).collect();
        let origin_of = origins(&figment, &env, |file, path| {
            files
                .get(file)
                .and_then(|tree| find(tree, path))
                .and_then(|n| match n.origin {
                    Origin::File { line, col, .. } => Some((line, col)),
                    _ => None,
                })
        });
        for (k, v) in data {
            let mut path = k.clone();
            entries.push((k, to_node(v, &mut path, &origin_of, false)));
        }
    }
    Some(Node::table(entries.into_iter().collect(), Origin::Default))
}

/// figment's merge of the files' values, in order, then of the `KEEPER_…` variables, whose
/// key segments are spelled as the files' merge spells them (see [`EnvLayer`]).
fn merge_values<'l>(
    files: impl Iterator<Item = &'l FileValues>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(Figment, EnvLayer, Dict), Vec<LayerError>> {
    let mut figment = Figment::new();
    for f in files {
        figment = figment.merge(f);
    }
    let file_data = figment_dict(&figment)?;
    let env = EnvLayer::new(env, &file_data);
    // The environment usually sets nothing: then the files' merge is the result (no second
    // merge, no second copy of a large configuration).
    if env.entries.is_empty() {
        return Ok((figment, env, file_data));
    }
    let figment = figment.merge(&env);
    let data = figment_dict(&figment)?;
    Ok((figment, env, data))
}

/// Where a value of figment's merge came from: a file's (placed at the line and column
/// `in_file(file, joined path)` gives, else the file alone), or the variable behind it.
fn origins<'a>(
    figment: &'a Figment,
    env: &'a EnvLayer,
    in_file: impl Fn(&Path, &str) -> Option<(u32, u32)> + 'a,
) -> impl Fn(&Value, &str) -> Origin + 'a {
    let mut shared: HashMap<PathBuf, Arc<Path>> = HashMap::new();
    for m in figment.metadata() {
        if let Some(Source::File(f)) = &m.source {
            shared.insert(f.clone(), Arc::from(f.as_path()));
        }
    }
    move |value: &Value, path: &str| -> Origin {
        match figment
            .get_metadata(value.tag())
            .and_then(|m| m.source.as_ref())
        {
            Some(Source::File(file)) => {
                let (line, col) = in_file(file, path).unwrap_or((0, 0));
                Origin::File {
                    path: shared
                        .get(file)
                        .cloned()
                        .unwrap_or_else(|| Arc::from(file.as_path())),
                    line,
                    col,
                }
            }
            Some(Source::Custom(s)) if s == ENV_SOURCE => {
                let segs: KeyPath = path.split(SEP).map(str::to_string).collect();
                let var = env.var_behind(&segs).unwrap_or("KEEPER_?");
                Origin::Env {
                    var: var.to_string(),
                }
            }
            _ => Origin::Default,
        }
    }
}

/// A tree's values as figment's, as [`FileLayer`] reads them from TOML.
fn value_of(node: &Node) -> Value {
    match &node.kind {
        NodeKind::Table(t) => Value::from(
            t.iter()
                .map(|(k, v)| (k.clone(), value_of(v)))
                .collect::<Dict>(),
        ),
        NodeKind::Array(a) => Value::from(a.iter().map(value_of).collect::<Vec<Value>>()),
        NodeKind::Str(s) => Value::from(s.clone()),
        NodeKind::Int(i) => Value::from(*i),
        NodeKind::Float(f) => Value::from(*f),
        NodeKind::Bool(b) => Value::from(*b),
    }
}

/// The node at a path joined with [`SEP`].
fn find<'a>(node: &'a Node, path: &str) -> Option<&'a Node> {
    path.split(SEP).try_fold(node, |n, seg| match &n.kind {
        NodeKind::Table(t) => t.get(seg),
        NodeKind::Array(a) => a.get(seg.parse::<usize>().ok()?),
        _ => None,
    })
}

fn figment_dict(figment: &Figment) -> Result<Dict, Vec<LayerError>> {
    let mut data = figment.data().map_err(|e| {
        vec![LayerError {
            origin: Origin::Default,
            message: format!("merging configuration layers: {e}"),
        }]
    })?;
    Ok(data.remove(&Profile::Default).unwrap_or_default())
}

fn to_node(
    value: Value,
    path: &mut String,
    origin_of: &dyn Fn(&Value, &str) -> Origin,
    root: bool,
) -> Node {
    let origin = if root {
        Origin::Default
    } else {
        origin_of(&value, path)
    };
    // Consumes the merged values: keys and strings move into the tree instead of being copied.
    let kind = match value {
        Value::Dict(_, d) => NodeKind::Table(
            d.into_iter()
                .map(|(k, v)| {
                    let len = push_seg(path, &k);
                    let n = to_node(v, path, origin_of, false);
                    path.truncate(len);
                    (k, n)
                })
                .collect(),
        ),
        Value::Array(_, a) => NodeKind::Array(
            a.into_iter()
                .enumerate()
                .map(|(i, v)| {
                    let len = push_seg(path, &i.to_string());
                    let n = to_node(v, path, origin_of, false);
                    path.truncate(len);
                    n
                })
                .collect(),
        ),
        Value::String(_, s) => NodeKind::Str(s),
        Value::Char(_, c) => NodeKind::Str(c.to_string()),
        Value::Bool(_, b) => NodeKind::Bool(b),
        Value::Num(_, n) => match (n.to_i128(), n.to_f64()) {
            (Some(i), _) if i64::try_from(i).is_ok() => NodeKind::Int(i as i64),
            (_, Some(f)) => NodeKind::Float(f),
            _ => NodeKind::Str(format!("{n:?}")),
        },
        Value::Empty(_, _) => NodeKind::Str(String::new()),
    };
    // A table's own origin is its header (or first key), which the positions map has as well.
    Node { kind, origin }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_of_keys_headers_and_array_items() {
        let text = "[global]\nrouter_id = \"a\"\n\n[vrrp_instance.VI_1]\n  priority = 100\n  virtual_ipaddress = [\n    \"10.0.0.1\",\n    \"10.0.0.2\",\n  ]\n".to_string();
        let l = FileLayer::parse(Path::new("k.toml"), text).expect("parses");
        let p = |s: &str| -> String { s.replace('.', &SEP.to_string()) };
        assert_eq!(
            l.positions.get(p("global.router_id").as_str()),
            Some(&(2, 1))
        );
        assert_eq!(
            l.positions.get(p("vrrp_instance.VI_1.priority").as_str()),
            Some(&(5, 3))
        );
        assert_eq!(
            l.positions
                .get(p("vrrp_instance.VI_1.virtual_ipaddress.1").as_str()),
            Some(&(8, 5))
        );
    }

    #[test]
    fn syntax_error_has_position() {
        let e = FileLayer::parse(Path::new("k.toml"), "[global]\nrouter_id = \n".to_string())
            .err()
            .expect("fails");
        assert!(matches!(e.origin, Origin::File { line: 2, .. }), "{e:?}");
    }

    #[test]
    fn env_keys_follow_file_spelling() {
        let files: Dict = serde_json_like();
        let env = EnvLayer::new(
            [
                (
                    "KEEPER_VRRP_INSTANCE__VI_1__PRIORITY".to_string(),
                    "50".to_string(),
                ),
                (
                    "KEEPER_VRRP_INSTANCE__NEW__PRIORITY".to_string(),
                    "1".to_string(),
                ),
                ("OTHER".to_string(), "x".to_string()),
            ],
            &files,
        );
        let paths: Vec<&KeyPath> = env.entries.iter().map(|(_, p, _)| p).collect();
        assert_eq!(
            paths,
            [
                &vec!["vrrp_instance".to_string(), "new".into(), "priority".into()],
                &vec![
                    "vrrp_instance".to_string(),
                    "VI_1".into(),
                    "priority".into()
                ],
            ]
        );
    }

    fn serde_json_like() -> Dict {
        let mut inst = Dict::new();
        inst.insert("priority".into(), Value::from(100));
        let mut vi = Dict::new();
        vi.insert("VI_1".into(), Value::from(inst));
        let mut root = Dict::new();
        root.insert("vrrp_instance".into(), Value::from(vi));
        root
    }
}
