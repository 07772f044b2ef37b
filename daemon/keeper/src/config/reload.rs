//! A reload (SIGHUP) that re-reads only the virtual server whose text changed.
//!
//! Why: a director with 1,000 virtual servers x 10 real servers has a 35,000-line file; parsing,
//! merging and deserializing all of it again takes hundreds of milliseconds in a small VM, while
//! the usual edit is one weight or one address. So every load keeps each file's text and where
//! each virtual server is written in it (its *block*: the lines from its first table header to
//! the next header that is not its own). A reload compares bytes; when the only change lies in
//! one block, only that block is parsed and deserialized, and it replaces that virtual server.
//!
//! The result must be exactly what a full load gives, or the fast path is not taken. It is taken
//! only when all of this holds (otherwise [`super::reload`] does a full load):
//! - the same files, and the same `KEEPER_…` variables, none of them under `virtual_server`;
//! - exactly one file changed, and its changed bytes lie inside one virtual server's block;
//! - that virtual server is written in no other file, and its block holds all of its headers;
//! - the new block, parsed alone, holds that virtual server and nothing else, ends at a line
//!   end, and keeps its number of lines (so every other key keeps its line and column);
//! - the new configuration deserializes and validates without an error, and every finding
//!   outside that virtual server is one the previous load reported too.
//!
//! Why the block parsed alone equals its part of the whole file: TOML is read line by line and
//! each table header starts a new section; the unchanged text before the block ends at a line
//! start where the previous parse found a header, and the text after it starts at one. A block
//! that parses alone ends outside any string, array or inline table, so the text after it reads
//! as before.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::layers::{self, ENV_PREFIX, FileLayer};
use super::node::{KeyPath, Origin};
use super::{Diagnostic, Loaded, Severity, support};
use crate::lvs::plan::SharedPlanCache;

pub(crate) const VS: &str = "virtual_server";

/// The texts of the last load, and the `KEEPER_…` variables it saw.
#[derive(Clone, Default)]
pub struct Sources {
    files: Vec<FileSource>,
    env: Vec<(String, String)>,
    /// The IPVS plans of the virtual servers, passed on from load to load (and to the IPVS
    /// task): a reload plans only the changed one.
    pub lvs_plans: SharedPlanCache,
}

impl fmt::Debug for Sources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sources")
            .field(
                "files",
                &self
                    .files
                    .iter()
                    .map(|s| (&s.path, s.text.len()))
                    .collect::<Vec<_>>(),
            )
            .field("env", &self.env.len())
            .finish()
    }
}

impl Sources {
    /// The files read, in layer order.
    #[cfg(test)]
    pub(crate) fn files(&self) -> &[FileSource] {
        &self.files
    }

    pub(crate) fn new(files: Vec<FileSource>, env: Vec<(String, String)>) -> Sources {
        Sources {
            files,
            env,
            lvs_plans: SharedPlanCache::default(),
        }
    }

    /// The variables a load reads, sorted (the comparison of two reloads' environments).
    pub(crate) fn keeper_vars(env: &[(String, String)]) -> Vec<(String, String)> {
        let mut vars: Vec<(String, String)> = env
            .iter()
            .filter(|(k, _)| k.len() > ENV_PREFIX.len() && k.starts_with(ENV_PREFIX))
            .cloned()
            .collect();
        vars.sort();
        vars
    }
}

/// One file as the last load read it.
#[derive(Clone)]
pub struct FileSource {
    pub(crate) path: PathBuf,
    pub(crate) text: String,
    pub(crate) blocks: VsBlocks,
}

/// Where each virtual server of one file is written.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VsBlocks {
    /// Every virtual server this file writes; `None` if the file writes `virtual_server` in a
    /// way this index does not follow (a `[virtual_server]` header, a dotted key, an inline
    /// table): then any virtual server may be in it.
    names: Option<HashSet<String>>,
    /// The byte range of each virtual server whose headers are all in one run.
    ranges: HashMap<String, Range<usize>>,
}

/// How a file writes the `virtual_server` table, for [`VsBlocks::from_headers`].
pub(crate) enum VsTable<'a> {
    /// Not at all.
    Absent,
    /// Only through table headers below it (`[virtual_server.NAME…]`): the names it holds, each
    /// with whether its own table is written by headers alone (not inline, not an array of
    /// tables, not by dotted keys).
    Headers(Vec<(&'a str, bool)>),
    /// Some other way (its own `[virtual_server]` header, dotted keys, an inline table).
    Other,
}

impl VsBlocks {
    /// Indexes a parsed file: every table header's line start, in order, with the virtual
    /// server it belongs to.
    pub(crate) fn index(doc: &toml_edit::Document<&str>, text: &str) -> VsBlocks {
        let root = doc.as_table();
        let vs = match root.get(VS) {
            None => VsTable::Absent,
            Some(toml_edit::Item::Table(t)) if t.is_implicit() && !t.is_dotted() => {
                VsTable::Headers(
                    t.iter()
                        .map(|(k, item)| {
                            (
                                k,
                                matches!(item, toml_edit::Item::Table(t) if !t.is_dotted()),
                            )
                        })
                        .collect(),
                )
            }
            Some(_) => VsTable::Other,
        };
        let mut headers: Vec<(usize, Option<&str>)> = Vec::new();
        collect_headers(root, Owner::Root, text, &mut headers);
        VsBlocks::from_headers(vs, headers, text.len())
    }

    /// The index from how the file writes `virtual_server` and each table header's line start
    /// with the virtual server it is under (`None`: outside `virtual_server`); `end`: the
    /// text's length.
    pub(crate) fn from_headers(
        vs: VsTable<'_>,
        mut headers: Vec<(usize, Option<&str>)>,
        end: usize,
    ) -> VsBlocks {
        let vs = match vs {
            VsTable::Absent => {
                return VsBlocks {
                    names: Some(HashSet::new()),
                    ranges: HashMap::new(),
                };
            }
            VsTable::Other => return VsBlocks::default(),
            VsTable::Headers(vs) => vs,
        };
        let names: HashSet<String> = vs.iter().map(|(k, _)| k.to_string()).collect();
        headers.sort_by_key(|h| h.0);
        let mut ranges = HashMap::new();
        let mut i = 0;
        let mut seen: HashSet<&str> = HashSet::new();
        let mut split: HashSet<&str> = HashSet::new();
        while i < headers.len() {
            let (start, owner) = headers[i];
            let mut j = i + 1;
            while j < headers.len() && headers[j].1 == owner {
                j += 1;
            }
            if let Some(name) = owner {
                if !seen.insert(name) {
                    split.insert(name);
                }
                let end = headers.get(j).map_or(end, |h| h.0);
                ranges.insert(name.to_string(), start..end);
            }
            i = j;
        }
        for name in split {
            ranges.remove(name);
        }
        // A virtual server whose table is not a header-only table (an inline table, an array
        // of tables) is not indexed.
        let by_headers: HashSet<&str> = vs
            .iter()
            .filter(|(_, headers_only)| *headers_only)
            .map(|(k, _)| *k)
            .collect();
        ranges.retain(|name, _| by_headers.contains(name.as_str()));
        VsBlocks {
            names: Some(names),
            ranges,
        }
    }

    fn may_write(&self, name: &str) -> bool {
        self.names.as_ref().is_none_or(|n| n.contains(name))
    }
}

/// Where a table is, for [`collect_headers`].
#[derive(Clone, Copy)]
enum Owner<'a> {
    /// The document's top level.
    Root,
    /// The `virtual_server` table: its keys are virtual servers.
    VirtualServers,
    /// Under virtual server NAME, or (`None`) outside `virtual_server`.
    Of(Option<&'a str>),
}

/// Records each header's line start with the virtual server its table is under, if any.
fn collect_headers<'a>(
    table: &'a toml_edit::Table,
    at: Owner<'a>,
    text: &str,
    out: &mut Vec<(usize, Option<&'a str>)>,
) {
    for (key, item) in table.iter() {
        let inner = match at {
            Owner::Root if key == VS => Owner::VirtualServers,
            Owner::Root => Owner::Of(None),
            Owner::VirtualServers => Owner::Of(Some(key)),
            Owner::Of(owner) => Owner::Of(owner),
        };
        let owner = match inner {
            Owner::Of(owner) => owner,
            Owner::Root | Owner::VirtualServers => None,
        };
        let tables: Vec<&toml_edit::Table> = match item {
            toml_edit::Item::Table(t) => vec![t],
            toml_edit::Item::ArrayOfTables(a) => a.iter().collect(),
            _ => Vec::new(),
        };
        for t in tables {
            if let Some(span) = t.span() {
                out.push((line_start(text, span.start), owner));
            }
            collect_headers(t, inner, text, out);
        }
    }
}

/// The first byte of the line holding `offset` (a header may be indented).
pub(crate) fn line_start(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .and_then(|t| t.rfind('\n'))
        .map_or(0, |i| i + 1)
}

/// The fast path. `None`: not applicable, do a full load (it also reports every error).
pub(crate) fn try_incremental(
    main: &Path,
    env: &[(String, String)],
    running: &Loaded,
) -> Option<Loaded> {
    let prev = &running.sources;
    let env_now = Sources::keeper_vars(env);
    if env_now != prev.env
        || env_now.iter().any(|(k, _)| {
            k[ENV_PREFIX.len()..]
                .split("__")
                .next()
                .is_some_and(|s| s.eq_ignore_ascii_case(VS))
        })
    {
        return None;
    }
    let paths = layers::config_files(main).ok()?;
    if paths.len() != prev.files.len() || paths.iter().zip(&prev.files).any(|(p, f)| *p != f.path) {
        return None;
    }
    let mut changed: Option<(usize, String)> = None;
    for (i, file) in prev.files.iter().enumerate() {
        let text = std::fs::read_to_string(&file.path).ok()?;
        if text != file.text {
            if changed.is_some() {
                return None;
            }
            changed = Some((i, text));
        }
    }
    let Some((index, text)) = changed else {
        // Nothing changed: the running configuration is the answer.
        return Some(running.clone());
    };
    let old = &prev.files[index];
    let (name, block) = changed_block(old, &text)?;
    if prev
        .files
        .iter()
        .enumerate()
        .any(|(i, f)| i != index && f.blocks.may_write(&name))
    {
        return None;
    }
    let delta = text.len() as isize - old.text.len() as isize;
    let new_end = usize::try_from(block.end as isize + delta).ok()?;
    let new_block = text.get(block.start..new_end)?;
    let old_block = old.text.get(block.clone())?;
    if new_block.matches('\n').count() != old_block.matches('\n').count()
        || !(new_block.ends_with('\n') || new_end == text.len())
    {
        return None;
    }
    // Parsed alone, with the lines before it as empty lines: every key keeps its line.
    let lines_before = text[..block.start].matches('\n').count();
    let mut padded = "\n".repeat(lines_before);
    padded.push_str(new_block);
    let layer = FileLayer::parse(&old.path, padded).ok()?;
    if !layer.writes_only_virtual_server(&name) {
        return None;
    }
    let tree = layer.into_node();
    let node = tree.get(&[VS.to_string(), name.clone()])?;
    let (vs, errors) = super::node::deserialize_all::<super::VirtualServer>(node);
    if !errors.is_empty() {
        return None;
    }
    let mut config = running.config.clone();
    config.virtual_server.insert(name.clone(), Arc::new(vs?));

    let findings = super::findings(&config, Some(&name), &prev.lvs_plans);
    let prefix = [VS.to_string(), name.clone()];
    let under = |path: &[String]| path.starts_with(&prefix);
    let other_vs = |path: &[String]| path.first().is_some_and(|s| s == VS) && !under(path);
    // Under another virtual server, the warnings are the previous load's: they come from
    // checks of that virtual server alone (its keys, its IPVS plan), and its text is unchanged.
    // So are the keys accepted but not implemented, outside the changed virtual server.
    let mut warnings: Vec<Diagnostic> = running
        .warnings
        .iter()
        .filter(|w| other_vs(&w.path) || (!under(&w.path) && w.message == support::NOT_IMPLEMENTED))
        .cloned()
        .collect();
    let carried: BTreeSet<(Severity, &KeyPath, &str)> = warnings
        .iter()
        .map(|w| (w.severity, &w.path, w.message.as_str()))
        .collect();
    // Outside any virtual server, the findings must be the previous load's.
    let mut previous: BTreeMap<(Severity, KeyPath, String), Vec<Origin>> = BTreeMap::new();
    for w in &running.warnings {
        if w.path.first().is_none_or(|s| s != VS) && w.message != support::NOT_IMPLEMENTED {
            previous
                .entry((w.severity, w.path.clone(), w.message.clone()))
                .or_default()
                .push(w.origin.clone());
        }
    }
    let mut fresh: Vec<Diagnostic> = Vec::new();
    for f in findings {
        if f.severity == Severity::Error {
            return None;
        }
        let key = (f.severity, f.path, f.message);
        let origin = if under(&key.1) {
            node.origin_of(&key.1[2..])
        } else if other_vs(&key.1) {
            // Computed again by a check that covers every virtual server: already carried.
            if !carried.contains(&(key.0, &key.1, key.2.as_str())) {
                return None;
            }
            continue;
        } else {
            previous.get_mut(&key)?.pop()?
        };
        let (severity, path, message) = key;
        fresh.push(Diagnostic {
            severity,
            origin,
            path,
            message,
        });
    }
    drop(carried);
    warnings.append(&mut fresh);
    if previous.values().any(|o| !o.is_empty()) {
        return None;
    }
    node.for_each_written(&mut |path, n| {
        let full: Vec<&str> = [VS, name.as_str()]
            .into_iter()
            .chain(path.iter().copied())
            .collect();
        if let Some(d) = support::not_implemented_at(&full, n) {
            warnings.push(d);
        }
    });
    super::sort_diagnostics(&mut warnings);

    let mut changed_file = Some(FileSource {
        path: old.path.clone(),
        blocks: old.blocks.shifted(&block, delta),
        text,
    });
    let files = prev
        .files
        .iter()
        .enumerate()
        .map(|(i, f)| match changed_file.take_if(|_| i == index) {
            Some(changed) => changed,
            None => f.clone(),
        })
        .collect();
    Some(Loaded {
        config,
        root: Arc::new(tree),
        files: running.files.clone(),
        warnings,
        sources: Arc::new(Sources {
            files,
            env: env_now,
            lvs_plans: prev.lvs_plans.clone(),
        }),
    })
}

/// Compared 4 KiB at a time (`==` on slices is memcmp), then byte by byte: a byte-wise scan of a
/// 1 MB file was 7% of a fast reload.
const CHUNK: usize = 4096;

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + CHUNK <= n && a[i..i + CHUNK] == b[i..i + CHUNK] {
        i += CHUNK;
    }
    i + a[i..n]
        .iter()
        .zip(&b[i..n])
        .take_while(|(x, y)| x == y)
        .count()
}

fn common_suffix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let (a, b) = (&a[a.len() - n..], &b[b.len() - n..]);
    let mut i = 0;
    while i + CHUNK <= n && a[n - i - CHUNK..n - i] == b[n - i - CHUNK..n - i] {
        i += CHUNK;
    }
    i + a[..n - i]
        .iter()
        .rev()
        .zip(b[..n - i].iter().rev())
        .take_while(|(x, y)| x == y)
        .count()
}

/// The virtual server whose block holds every changed byte of `new` (compared with `old`).
fn changed_block(old: &FileSource, new: &str) -> Option<(String, Range<usize>)> {
    let (a, b) = (old.text.as_bytes(), new.as_bytes());
    let prefix = common_prefix(a, b);
    let max_suffix = a.len().min(b.len()) - prefix;
    let suffix = common_suffix(&a[prefix..], &b[prefix..]).min(max_suffix);
    let (start, end) = (prefix, a.len() - suffix);
    old.blocks
        .ranges
        .iter()
        .find(|(_, r)| r.start <= start && end <= r.end && (start < r.end || r.start == start))
        .map(|(n, r)| (n.clone(), r.clone()))
}

impl VsBlocks {
    /// The index after `block` grew by `delta` bytes.
    fn shifted(&self, block: &Range<usize>, delta: isize) -> VsBlocks {
        let shift = |x: usize| (x as isize + delta) as usize;
        VsBlocks {
            names: self.names.clone(),
            ranges: self
                .ranges
                .iter()
                .map(|(n, r)| {
                    let r = if r.start >= block.end {
                        shift(r.start)..shift(r.end)
                    } else if r.start == block.start {
                        r.start..shift(r.end)
                    } else {
                        r.clone()
                    };
                    (n.clone(), r)
                })
                .collect(),
        }
    }
}

impl FileLayer {
    /// True if this (partial) file writes `[virtual_server.NAME…]` tables and nothing else:
    /// no other top-level key, no other virtual server, no `[virtual_server]` header, and all
    /// of NAME's headers in one run.
    fn writes_only_virtual_server(&self, name: &str) -> bool {
        let Some(source) = self.source() else {
            return false;
        };
        let blocks = &source.blocks;
        matches!(&blocks.names, Some(n) if n.len() == 1 && n.contains(name))
            && blocks.ranges.contains_key(name)
            && self.root_keys() == [VS]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{load, reload_from};

    /// Three virtual servers; `web` has a key keeperd does not act on and a warning, `db` a
    /// multi-line string with a line that looks like a header, `split` is written in two runs.
    const BASE: &str = r#"# a comment
[global]
router_id = "lab"

[virtual_server.web]
ip = "10.0.0.100"
port = 80
lb_algo = "wrr"
lb_kind = "DR"
ha_suspend = true

[virtual_server.web.real_server.a]
ip = "10.0.0.21"
weight = 1

[virtual_server.web.real_server.b]
ip = "10.0.0.22"
weight = 2
[virtual_server.web.real_server.b.misc_check]
misc_path = "/bin/true"
user = "nobody"

[virtual_server.split]
ip = "10.0.0.101"
port = 80

[virtual_server.db]
ip = "10.0.0.102"
port = 3306
[virtual_server.db.real_server.c]
ip = "10.0.0.31"
weight = 3
[virtual_server.db.real_server.c.http_get]
sni = "db.example"
url.root = { path = """/
[virtual_server.fake]
""", status_code = 200 }

[virtual_server.split.real_server.d]
ip = "10.0.0.41"
weight = 4
"#;

    struct Lab {
        _dir: tempfile::TempDir,
        main: PathBuf,
    }

    impl Lab {
        fn new(text: &str) -> Lab {
            let dir = tempfile::tempdir().expect("tempdir");
            let main = dir.path().join("keeper.toml");
            std::fs::write(&main, text).expect("write");
            Lab { _dir: dir, main }
        }

        fn write(&self, text: &str) {
            std::fs::write(&self.main, text).expect("write");
        }

        fn conf_d(&self, name: &str, text: &str) {
            let dir = self.main.parent().expect("dir").join("conf.d");
            std::fs::create_dir_all(&dir).expect("conf.d");
            std::fs::write(dir.join(name), text).expect("write");
        }
    }

    fn loaded(lab: &Lab) -> Loaded {
        load(&lab.main, Vec::new()).unwrap_or_else(|e| panic!("{e:?}"))
    }

    /// Reloads after an edit: whether the fast path applied; when it did, its result must be
    /// exactly a full load's (configuration, warnings, and the place of every key).
    fn reload(
        running: &Loaded,
        lab: &Lab,
        env: &[(String, String)],
    ) -> (bool, Result<Loaded, Vec<Diagnostic>>) {
        let fast = try_incremental(&lab.main, env, running);
        let full = load(&lab.main, env.to_vec());
        if let Some(f) = &fast {
            let full = full
                .as_ref()
                .expect("the fast path accepted what a full load refuses");
            assert_eq!(f.config, full.config);
            assert_eq!(f.warnings, full.warnings);
            // It places the keys it read (one virtual server's) where the full load does.
            f.root.for_each_written(&mut |path, node| {
                let path: KeyPath = path.iter().map(|s| s.to_string()).collect();
                assert_eq!(full.origin_of(&path), node.origin, "{path:?}");
            });
        }
        (
            fast.is_some(),
            reload_from(running, &lab.main, env.to_vec()),
        )
    }

    fn edit(text: &str, from: &str, to: &str) -> String {
        assert_eq!(text.matches(from).count(), 1, "{from}");
        text.replace(from, to)
    }

    #[test]
    fn the_index_follows_headers_not_text_that_looks_like_one() {
        let lab = Lab::new(BASE);
        let l = loaded(&lab);
        let blocks = &l.sources.files[0].blocks;
        let names = blocks.names.as_ref().expect("indexed");
        assert_eq!(names.len(), 3, "{names:?}");
        // `split` is written in two runs: not indexed.
        let mut indexed: Vec<&String> = blocks.ranges.keys().collect();
        indexed.sort();
        assert_eq!(indexed, ["db", "web"]);
        let db = &BASE[blocks.ranges["db"].clone()];
        assert!(
            db.starts_with("[virtual_server.db]\n") && db.contains("[virtual_server.fake]"),
            "{db}"
        );
        assert!(db.ends_with("}\n\n"), "{db}");
    }

    #[test]
    fn only_tables_under_virtual_server_belong_to_a_virtual_server() {
        // A VRRP instance named like a virtual server, between two of its runs, is not part of
        // it: `web` stays written in two runs, so it is not indexed.
        let text = "[virtual_server.web]\nport = 80\n[vrrp_instance.web]\npriority = 1\n\
                    [virtual_server.web.real_server.a]\nip = \"10.0.0.1\"\n\
                    [virtual_server.db]\nport = 1\n[global.lvs_sync_daemon]\ninterface = \"x\"\n";
        let doc = toml_edit::Document::parse(text).expect("parses");
        let blocks = VsBlocks::index(&doc, text);
        let mut indexed: Vec<&String> = blocks.ranges.keys().collect();
        indexed.sort();
        assert_eq!(indexed, ["db"]);
        // `db` ends where `[global.lvs_sync_daemon]` starts.
        assert_eq!(
            &text[blocks.ranges["db"].clone()],
            "[virtual_server.db]\nport = 1\n"
        );
    }

    #[test]
    fn a_changed_weight_reloads_one_virtual_server() {
        let lab = Lab::new(BASE);
        let l = loaded(&lab);
        let t1 = edit(BASE, "weight = 2", "weight = 20");
        lab.write(&t1);
        let (fast, new) = reload(&l, &lab, &[]);
        assert!(fast);
        let new = new.expect("valid");
        assert_eq!(new.config.virtual_server["web"].real_server["b"].weight, 20);
        // Unchanged virtual servers are shared, not copied.
        assert!(Arc::ptr_eq(
            &new.config.virtual_server["db"],
            &l.config.virtual_server["db"]
        ));
        // A second edit, in another virtual server, on top of the first.
        let t2 = edit(&t1, "weight = 3", "weight = 30");
        lab.write(&t2);
        let (fast, newer) = reload(&new, &lab, &[]);
        assert!(fast);
        assert_eq!(
            newer.expect("valid").config.virtual_server["db"].real_server["c"].weight,
            30
        );
        // And back in the first, after the text grew by a byte before it.
        let t3 = edit(&t2, "weight = 1\n", "weight = 7\n");
        lab.write(&t3);
        let (fast, _) = reload(&loaded(&Lab::new(&t2)), &lab, &[]);
        assert!(!fast, "a running configuration read from another file");
    }

    #[test]
    fn edits_in_a_multi_line_value_and_warnings_inside_stay_exact() {
        let lab = Lab::new(BASE);
        let l = loaded(&lab);
        assert!(
            l.warnings
                .iter()
                .any(|w| w.message == support::NOT_IMPLEMENTED)
        );
        for (from, to) in [
            ("[virtual_server.fake]", "[virtual_server.fakf]"),
            ("sni = \"db.example\"", "sni = \"db.example2\""),
            ("user = \"nobody\"", "user = \"root\"  "),
            ("ha_suspend = true", "ha_suspend = false"),
            ("sni = \"db.example\"", "# no sni            "),
        ] {
            lab.write(&edit(BASE, from, to));
            let (fast, new) = reload(&l, &lab, &[]);
            assert!(fast, "{to}");
            new.expect("valid");
        }
    }

    #[test]
    fn anything_else_loads_everything_and_gives_the_same_answer() {
        let lab = Lab::new(BASE);
        let l = loaded(&lab);
        for (from, to, valid) in [
            // Another line count.
            (
                "weight = 2\n",
                "weight = 2\ninhibit_on_failure = true\n",
                true,
            ),
            // A change outside any virtual server.
            ("router_id = \"lab\"", "router_id = \"lab2\"", true),
            // The virtual server written in two runs.
            ("weight = 4", "weight = 5", true),
            // A bad value, an unknown key: the full load reports them.
            ("weight = 2\n", "weight = \"x\"\n", false),
            ("weight = 2\n", "wieght = 2\n", false),
            // A header that renames the virtual server, or leaves it.
            (
                "[virtual_server.web.real_server.b]",
                "[virtual_server.wex.real_server.b]",
                false,
            ),
            ("weight = 1\n", "[global2]\n", false),
            // A key that moves to the section before the block.
            ("[virtual_server.db]\n", "mark = 1\n", false),
            // A line removed at the end of a block.
            ("status_code = 200 }\n\n", "status_code = 200 }\n", true),
        ] {
            lab.write(&edit(BASE, from, to));
            let (fast, new) = reload(&l, &lab, &[]);
            assert!(!fast, "{from} -> {to}");
            assert_eq!(new.is_ok(), valid, "{from} -> {to}: {new:?}");
        }
    }

    #[test]
    fn layers_and_the_environment_keep_the_full_load() {
        let lab = Lab::new(BASE);
        lab.conf_d(
            "10-web.toml",
            "[virtual_server.web.real_server.a]\nweight = 9\n",
        );
        let l = loaded(&lab);
        assert_eq!(l.config.virtual_server["web"].real_server["a"].weight, 9);
        // `web` is written in two files.
        lab.write(&edit(BASE, "weight = 2", "weight = 20"));
        let (fast, new) = reload(&l, &lab, &[]);
        assert!(!fast);
        new.expect("valid");
        // `db` is not, but a variable under virtual_server is set.
        lab.write(BASE);
        let l = loaded(&lab);
        lab.write(&edit(BASE, "weight = 3", "weight = 30"));
        let env = [(
            "KEEPER_VIRTUAL_SERVER__DB__PORT".to_string(),
            "3307".to_string(),
        )];
        let (fast, _) = reload(&l, &lab, &env);
        assert!(!fast);
        let (fast, _) = reload(&l, &lab, &[]);
        assert!(fast);
    }

    #[test]
    fn common_prefix_and_suffix_match_a_byte_scan() {
        let base: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        for (at, remove, insert) in [
            (0, 0, 1),
            (5000, 3, 0),
            (4096, 1, 1),
            (19_999, 1, 2),
            (8191, 0, 9000),
        ] {
            let mut other = base.clone();
            other.splice(at..at + remove, std::iter::repeat_n(7u8, insert));
            let slow_p = base.iter().zip(&other).take_while(|(x, y)| x == y).count();
            let p = common_prefix(&base, &other);
            assert_eq!(p, slow_p);
            let slow_s = base[p..]
                .iter()
                .rev()
                .zip(other[p..].iter().rev())
                .take_while(|(x, y)| x == y)
                .count();
            assert_eq!(
                common_suffix(&base[p..], &other[p..]),
                slow_s,
                "{at} {remove} {insert}"
            );
        }
    }

    #[test]
    fn an_unchanged_file_gives_the_running_configuration() {
        let lab = Lab::new(BASE);
        let l = loaded(&lab);
        let (fast, new) = reload(&l, &lab, &[]);
        assert!(fast);
        assert_eq!(new.expect("valid").config, l.config);
    }
}
