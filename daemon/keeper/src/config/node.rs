//! The merged configuration as a tree that remembers where every value came from, and a serde
//! `Deserializer` over it.
//!
//! Why not deserialize straight from figment: figment stops at the first error and knows files,
//! not lines. Operators want every mistake in one run, each with `file:line:col` (or the
//! environment variable) and the key. So figment merges the layers, the merged values are copied
//! into [`Node`]s carrying an [`Origin`], and this deserializer:
//! - collects unknown keys instead of failing (structs are checked against their field lists);
//! - reads scalars leniently, because environment variables are strings: `"50"` is a fine
//!   priority, and `"1111"` stays the string `"1111"` for a password;
//! - reports the exact key path of a type error, so the caller can drop that key and try again,
//!   collecting every error (see [`deserialize_all`]).

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use super::named::Named;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};

/// Where a configuration value was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A TOML file, 1-based line and column of the key (or of the array element).
    File {
        /// Shared by every value of the file (one allocation per file, not per key).
        path: Arc<Path>,
        line: u32,
        col: u32,
    },
    /// An environment variable (`KEEPER_…`).
    Env { var: String },
    /// Not written anywhere: a built-in default.
    Default,
}

impl Origin {
    /// Orders diagnostics as an operator reads them: by file and line, then variables.
    pub fn sort_key(&self) -> (u8, String, u32, u32) {
        match self {
            Origin::File { path, line, col } => (0, path.display().to_string(), *line, *col),
            Origin::Env { var } => (1, var.clone(), 0, 0),
            Origin::Default => (2, String::new(), 0, 0),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line, col } => write!(f, "{}:{line}:{col}", path.display()),
            Origin::Env { var } => write!(f, "environment variable {var}"),
            Origin::Default => write!(f, "built-in default"),
        }
    }
}

/// A key path such as `vrrp_instance.VI_1.priority`; array elements are their index.
pub type KeyPath = Vec<String>;

/// Renders a key path the way an operator writes it in TOML.
pub fn display_path(path: &[String]) -> String {
    let mut out = String::new();
    for (i, seg) in path.iter().enumerate() {
        let bare = !seg.is_empty()
            && seg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if seg.parse::<usize>().is_ok() && i > 0 {
            out.push_str(&format!("[{seg}]"));
            continue;
        }
        if i > 0 {
            out.push('.');
        }
        if bare {
            out.push_str(seg);
        } else {
            out.push_str(&format!("{seg:?}"));
        }
    }
    out
}

/// A table's entries in key order (see [`Named`]: not a `BTreeMap`, whose smallest node made
/// every real server's table of two or three keys cost a kilobyte).
pub type Table = Named<Node>;

#[derive(Clone, Debug, PartialEq)]
pub enum NodeKind {
    Table(Table),
    Array(Vec<Node>),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    pub origin: Origin,
}

impl Node {
    pub fn table(entries: Table, origin: Origin) -> Node {
        Node {
            kind: NodeKind::Table(entries),
            origin,
        }
    }

    /// The node at `path`, if any.
    pub fn get(&self, path: &[String]) -> Option<&Node> {
        let mut node = self;
        for seg in path {
            node = match &node.kind {
                NodeKind::Table(t) => t.get(seg)?,
                NodeKind::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(node)
    }

    /// The origin of `path`, or of its nearest written ancestor.
    pub fn origin_of(&self, path: &[String]) -> Origin {
        let mut best = self.origin.clone();
        let mut node = self;
        for seg in path {
            let next = match &node.kind {
                NodeKind::Table(t) => t.get(seg),
                NodeKind::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
                _ => None,
            };
            match next {
                Some(n) => {
                    node = n;
                    if n.origin != Origin::Default {
                        best = n.origin.clone();
                    }
                }
                None => break,
            }
        }
        best
    }

    /// Calls `visit` with every leaf path that was written somewhere (not a default), for
    /// "accepted, not implemented"; the path is borrowed (no allocation per key).
    pub fn for_each_written(&self, visit: &mut dyn FnMut(&[&str], &Node)) {
        fn walk<'a>(
            node: &'a Node,
            path: &mut Vec<&'a str>,
            visit: &mut dyn FnMut(&[&str], &Node),
        ) {
            match &node.kind {
                NodeKind::Table(t) => {
                    for (k, v) in t.iter() {
                        path.push(k);
                        walk(v, path, visit);
                        path.pop();
                    }
                }
                _ => {
                    if node.origin != Origin::Default {
                        visit(path, node);
                    }
                }
            }
        }
        walk(self, &mut Vec::new(), visit);
    }

    fn kind_name(&self) -> &'static str {
        match self.kind {
            NodeKind::Table(_) => "a table",
            NodeKind::Array(_) => "an array",
            NodeKind::Str(_) => "a string",
            NodeKind::Int(_) => "an integer",
            NodeKind::Float(_) => "a float",
            NodeKind::Bool(_) => "a boolean",
        }
    }
}

/// A deserialization error at a key path.
#[derive(Debug, Clone)]
pub struct DeError {
    pub path: Option<KeyPath>,
    pub message: String,
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            path: None,
            message: msg.to_string(),
        }
    }
}

impl DeError {
    fn at(mut self, at: &At<'_>) -> Self {
        if self.path.is_none() {
            self.path = Some(at.path());
        }
        self
    }
}

/// Shared by every deserializer of one pass: the keys to skip (they failed in an earlier pass)
/// and the unknown keys found.
struct Pass<'a> {
    skip: &'a HashSet<KeyPath>,
    unknown: RefCell<Vec<KeyPath>>,
}

/// Deserializes `T` from `root`, collecting every error: unknown keys, and each key whose value
/// does not fit (that key is dropped and the pass repeated, so one mistake hides no other).
pub fn deserialize_all<T: DeserializeOwned>(root: &Node) -> (Option<T>, Vec<(KeyPath, String)>) {
    let mut skip: HashSet<KeyPath> = HashSet::new();
    let mut errors: Vec<(KeyPath, String)> = Vec::new();
    let mut unknown: Vec<KeyPath> = Vec::new();
    let finish = |mut errors: Vec<(KeyPath, String)>, unknown: Vec<KeyPath>| {
        errors.extend(unknown.into_iter().map(|p| (p, "unknown key".to_string())));
        errors.sort_by(|a, b| a.0.cmp(&b.0));
        errors.dedup();
        errors
    };
    // Each failed pass removes one key, so this ends; the bound only guards against a bug.
    for _ in 0..10_000 {
        let pass = Pass {
            skip: &skip,
            unknown: RefCell::new(Vec::new()),
        };
        let result = T::deserialize(NodeDe {
            node: root,
            at: &At::ROOT,
            pass: &pass,
        });
        // A table dropped in a later pass hides its unknown keys: keep those of every pass.
        unknown.extend(pass.unknown.into_inner());
        match result {
            Ok(value) => return (Some(value), finish(errors, unknown)),
            Err(e) => {
                let path = e.path.unwrap_or_default();
                // "missing field `a`" after `a` itself was dropped for a bad value says nothing new.
                let echo = e
                    .message
                    .strip_prefix("missing field `")
                    .and_then(|m| m.strip_suffix('`'))
                    .is_some_and(|field| {
                        let mut child = path.clone();
                        child.push(field.to_string());
                        skip.contains(&child)
                    });
                if !echo {
                    errors.push((path.clone(), e.message));
                }
                if path.is_empty() || !skip.insert(path) {
                    return (None, finish(errors, unknown));
                }
            }
        }
    }
    (None, finish(errors, unknown))
}

/// Where the value being read is: a chain of borrowed segments up to the root, turned into a
/// [`KeyPath`] only for an error or an unknown key (a path cloned for every value made reading
/// 10,000 real servers allocation-bound).
#[derive(Clone, Copy)]
struct At<'l> {
    seg: Seg<'l>,
    up: Option<&'l At<'l>>,
}

#[derive(Clone, Copy)]
enum Seg<'l> {
    Root,
    Key(&'l str),
    Index(usize),
}

impl<'l> At<'l> {
    const ROOT: At<'static> = At {
        seg: Seg::Root,
        up: None,
    };

    fn child(&'l self, seg: Seg<'l>) -> At<'l> {
        At {
            seg,
            up: Some(self),
        }
    }

    fn path(&self) -> KeyPath {
        let mut segs = Vec::new();
        let mut at = Some(self);
        while let Some(a) = at {
            match a.seg {
                Seg::Root => {}
                Seg::Key(k) => segs.push(k.to_string()),
                Seg::Index(i) => segs.push(i.to_string()),
            }
            at = a.up;
        }
        segs.reverse();
        segs
    }
}

struct NodeDe<'a, 'p, 'l> {
    node: &'a Node,
    at: &'l At<'l>,
    pass: &'p Pass<'p>,
}

impl<'a, 'p, 'l> NodeDe<'a, 'p, 'l> {
    fn invalid(&self, expected: &str) -> DeError {
        DeError {
            path: Some(self.at.path()),
            message: format!("expected {expected}, found {}", self.node.kind_name()),
        }
    }

    fn parse_int(&self) -> Result<i64, DeError> {
        match &self.node.kind {
            NodeKind::Int(i) => Ok(*i),
            NodeKind::Str(s) => s.trim().parse::<i64>().map_err(|_| DeError {
                path: Some(self.at.path()),
                message: format!("expected an integer, found {s:?}"),
            }),
            _ => Err(self.invalid("an integer")),
        }
    }
}

macro_rules! int_method {
    ($($method:ident => $visit:ident : $ty:ty),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            let i = self.parse_int()?;
            let v = <$ty>::try_from(i).map_err(|_| DeError {
                path: Some(self.at.path()),
                message: format!("{i} is out of range ({}..={})", <$ty>::MIN, <$ty>::MAX),
            })?;
            visitor.$visit(v).map_err(|e: DeError| e.at(self.at))
        }
    )*};
}

impl<'de, 'a, 'p, 'l> de::Deserializer<'de> for NodeDe<'a, 'p, 'l> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let at = self.at;
        let r = match &self.node.kind {
            NodeKind::Table(t) => visitor.visit_map(TableAccess::new(&self, t, None)),
            NodeKind::Array(a) => visitor.visit_seq(ArrayAccess {
                de: &self,
                items: a,
                next: 0,
            }),
            NodeKind::Str(s) => visitor.visit_str(s),
            NodeKind::Int(i) => visitor.visit_i64(*i),
            NodeKind::Float(f) => visitor.visit_f64(*f),
            NodeKind::Bool(b) => visitor.visit_bool(*b),
        };
        r.map_err(|e: DeError| e.at(at))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let b = match &self.node.kind {
            NodeKind::Bool(b) => *b,
            NodeKind::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => true,
                "false" | "no" | "off" | "0" => false,
                _ => {
                    return Err(DeError {
                        path: Some(self.at.path()),
                        message: format!("expected a boolean, found {s:?}"),
                    });
                }
            },
            _ => return Err(self.invalid("a boolean")),
        };
        visitor.visit_bool(b).map_err(|e: DeError| e.at(self.at))
    }

    int_method! {
        deserialize_i8 => visit_i8: i8,
        deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32,
        deserialize_i64 => visit_i64: i64,
        deserialize_u8 => visit_u8: u8,
        deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32,
        deserialize_u64 => visit_u64: u64,
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let f = match &self.node.kind {
            NodeKind::Float(f) => *f,
            NodeKind::Int(i) => *i as f64,
            NodeKind::Str(s) => s.trim().parse::<f64>().map_err(|_| DeError {
                path: Some(self.at.path()),
                message: format!("expected a number, found {s:?}"),
            })?,
            _ => return Err(self.invalid("a number")),
        };
        visitor.visit_f64(f).map_err(|e: DeError| e.at(self.at))
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        // Integers are accepted where text is expected (`auth_pass = 1111`), as written.
        let r = match &self.node.kind {
            NodeKind::Str(s) => visitor.visit_str(s),
            NodeKind::Int(i) => visitor.visit_string(i.to_string()),
            _ => return Err(self.invalid("a string")),
        };
        r.map_err(|e: DeError| e.at(self.at))
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_some(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let at = self.at;
        visitor.visit_newtype_struct(self).map_err(|e| e.at(at))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let at = self.at;
        match &self.node.kind {
            NodeKind::Array(a) => visitor
                .visit_seq(ArrayAccess {
                    de: &self,
                    items: a,
                    next: 0,
                })
                .map_err(|e| e.at(at)),
            // From the environment a list is one string: "[a, b]" in TOML syntax, or one item.
            NodeKind::Str(s) => {
                let items = env_list(s, &self.node.origin).map_err(|m| DeError {
                    path: Some(at.path()),
                    message: m,
                })?;
                visitor
                    .visit_seq(ArrayAccess {
                        de: &self,
                        items: &items,
                        next: 0,
                    })
                    .map_err(|e| e.at(at))
            }
            _ => Err(self.invalid("an array")),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.kind {
            NodeKind::Table(t) => visitor
                .visit_map(TableAccess::new(&self, t, None))
                .map_err(|e: DeError| e.at(self.at)),
            _ => Err(self.invalid("a table")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.node.kind {
            NodeKind::Table(t) => visitor
                .visit_map(TableAccess::new(&self, t, Some(fields)))
                .map_err(|e: DeError| e.at(self.at)),
            _ => Err(self.invalid("a table")),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.node.kind {
            NodeKind::Str(s) => {
                // keepalived writes `DR`, `MASTER`, `PASS`; accept any case.
                let canonical = variants
                    .iter()
                    .find(|v| v.eq_ignore_ascii_case(s.trim()))
                    .ok_or_else(|| DeError {
                        path: Some(self.at.path()),
                        message: format!(
                            "unknown value {s:?}, expected one of {}",
                            variants.join(", ")
                        ),
                    })?;
                visitor
                    .visit_enum(UnitVariant(canonical))
                    .map_err(|e: DeError| e.at(self.at))
            }
            _ => Err(self.invalid("a string")),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

/// Parses a list given as one environment variable: `[ "a", "b" ]` (TOML) or a single item.
fn env_list(s: &str, origin: &Origin) -> Result<Vec<Node>, String> {
    let trimmed = s.trim();
    if !trimmed.starts_with('[') {
        return Ok(vec![Node {
            kind: NodeKind::Str(s.to_string()),
            origin: origin.clone(),
        }]);
    }
    let doc: toml::Table = toml::from_str(&format!("v = {trimmed}"))
        .map_err(|e| format!("cannot read {trimmed:?} as a TOML array: {}", e.message()))?;
    let Some(toml::Value::Array(items)) = doc.get("v") else {
        return Err(format!("cannot read {trimmed:?} as a TOML array"));
    };
    items
        .iter()
        .map(|v| match v {
            toml::Value::String(s) => Ok(NodeKind::Str(s.clone())),
            toml::Value::Integer(i) => Ok(NodeKind::Int(*i)),
            toml::Value::Float(f) => Ok(NodeKind::Float(*f)),
            toml::Value::Boolean(b) => Ok(NodeKind::Bool(*b)),
            other => Err(format!(
                "unsupported list item {other} in an environment variable"
            )),
        })
        .map(|k| {
            k.map(|kind| Node {
                kind,
                origin: origin.clone(),
            })
        })
        .collect()
}

struct TableAccess<'a, 'p, 'l, 'd> {
    parent: &'d NodeDe<'a, 'p, 'l>,
    entries: Vec<(&'a String, &'a Node)>,
    next: usize,
}

impl<'a, 'p, 'l, 'd> TableAccess<'a, 'p, 'l, 'd> {
    fn new(
        parent: &'d NodeDe<'a, 'p, 'l>,
        table: &'a Table,
        fields: Option<&'static [&'static str]>,
    ) -> Self {
        let mut entries = Vec::with_capacity(table.len());
        let path_of = |k: &str| parent.at.child(Seg::Key(k)).path();
        for (k, v) in table.iter() {
            // Paths are built only when some key was dropped (a later pass of
            // `deserialize_all`) or for an unknown key.
            if !parent.pass.skip.is_empty() && parent.pass.skip.contains(&path_of(k)) {
                continue;
            }
            if let Some(fields) = fields
                && !fields.contains(&k.as_str())
            {
                parent.pass.unknown.borrow_mut().push(path_of(k));
                continue;
            }
            entries.push((k, v));
        }
        TableAccess {
            parent,
            entries,
            next: 0,
        }
    }
}

impl<'de, 'a, 'p, 'l, 'd> MapAccess<'de> for TableAccess<'a, 'p, 'l, 'd> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.entries.get(self.next) {
            Some((k, _)) => seed.deserialize(k.as_str().into_deserializer()).map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let (k, v) = self.entries[self.next];
        self.next += 1;
        let at = self.parent.at.child(Seg::Key(k));
        let child = NodeDe {
            node: v,
            at: &at,
            pass: self.parent.pass,
        };
        seed.deserialize(child).map_err(|e| e.at(&at))
    }
}

struct ArrayAccess<'a, 'p, 'l, 'd> {
    de: &'d NodeDe<'a, 'p, 'l>,
    items: &'d [Node],
    next: usize,
}

impl<'de, 'a, 'p, 'l, 'd> SeqAccess<'de> for ArrayAccess<'a, 'p, 'l, 'd> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some(item) = self.items.get(self.next) else {
            return Ok(None);
        };
        let idx = self.next;
        self.next += 1;
        let at = self.de.at.child(Seg::Index(idx));
        let child = NodeDe {
            node: item,
            at: &at,
            pass: self.de.pass,
        };
        seed.deserialize(child).map(Some).map_err(|e| e.at(&at))
    }
}

struct UnitVariant(&'static str);

impl<'de> EnumAccess<'de> for UnitVariant {
    type Error = DeError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), DeError> {
        let v = seed.deserialize(self.0.into_deserializer())?;
        Ok((v, self))
    }
}

impl<'de> VariantAccess<'de> for UnitVariant {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, _seed: T) -> Result<T::Value, DeError> {
        Err(de::Error::custom("expected a plain name"))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, _visitor: V) -> Result<V::Value, DeError> {
        Err(de::Error::custom("expected a plain name"))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, DeError> {
        Err(de::Error::custom("expected a plain name"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    fn n(kind: NodeKind) -> Node {
        Node {
            kind,
            origin: Origin::Default,
        }
    }

    fn table(entries: Vec<(&str, Node)>) -> Node {
        n(NodeKind::Table(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        ))
    }

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(rename_all = "UPPERCASE")]
    enum Kind {
        Dr,
        Nat,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Inner {
        a: u8,
        #[serde(default)]
        s: String,
        #[serde(default)]
        k: Option<Kind>,
    }

    #[derive(Deserialize, Debug)]
    struct Outer {
        #[serde(default)]
        items: BTreeMap<String, Inner>,
        #[serde(default)]
        flag: bool,
    }

    #[test]
    fn collects_every_error_and_unknown_key() {
        let root = table(vec![
            (
                "items",
                table(vec![
                    (
                        "x",
                        table(vec![
                            ("a", n(NodeKind::Int(300))),
                            ("bogus", n(NodeKind::Int(1))),
                        ]),
                    ),
                    (
                        "y",
                        table(vec![
                            ("a", n(NodeKind::Str("7".into()))),
                            ("k", n(NodeKind::Str("dr".into()))),
                        ]),
                    ),
                    ("z", table(vec![("a", n(NodeKind::Bool(true)))])),
                ]),
            ),
            ("flag", n(NodeKind::Str("yes".into()))),
            ("nope", n(NodeKind::Int(1))),
        ]);
        let (cfg, errors) = deserialize_all::<Outer>(&root);
        let paths: Vec<String> = errors.iter().map(|(p, _)| display_path(p)).collect();
        assert_eq!(
            paths,
            ["items.x.a", "items.x.bogus", "items.z.a", "nope"],
            "{errors:?}"
        );
        let cfg = cfg.expect("deserializes once bad keys are dropped");
        assert!(cfg.flag);
        assert_eq!(
            cfg.items["y"],
            Inner {
                a: 7,
                s: String::new(),
                k: Some(Kind::Dr)
            }
        );
    }

    #[test]
    fn strings_stay_verbatim_and_integers_read_as_text() {
        let root = table(vec![
            ("a", n(NodeKind::Str("1".into()))),
            ("s", n(NodeKind::Int(1111))),
        ]);
        let (cfg, errors) = deserialize_all::<Inner>(&root);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(cfg.map(|c| c.s), Some("1111".to_string()));
        let root = table(vec![
            ("a", n(NodeKind::Int(1))),
            ("s", n(NodeKind::Str("0111".into()))),
        ]);
        let (cfg, _) = deserialize_all::<Inner>(&root);
        assert_eq!(cfg.map(|c| c.s), Some("0111".to_string()));
    }

    #[test]
    fn env_list_syntax() {
        let o = Origin::Env { var: "X".into() };
        let items = env_list(r#"["10.0.0.1/24 dev eth0", "10.0.0.2"]"#, &o).expect("parses");
        assert_eq!(items.len(), 2);
        assert_eq!(env_list("10.0.0.1", &o).map(|v| v.len()), Ok(1));
        assert!(env_list("[unclosed", &o).is_err());
    }

    #[test]
    fn path_display_quotes_odd_names() {
        let p: Vec<String> = ["virtual_server", "web 80", "real_server", "0"]
            .map(String::from)
            .into();
        assert_eq!(display_path(&p), "virtual_server.\"web 80\".real_server[0]");
    }
}
