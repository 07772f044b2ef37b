//! A configuration file read straight into the [`Node`] tree, in one pass over `toml_parser`'s
//! events.
//!
//! Why: the layered loader ([`super::layers::merge`]) parses each file into a `toml_edit`
//! document (every token, every event and the document in memory at once), records the position
//! of every key, hands all the values to figment and copies the merge into the tree. For a file
//! of 1,000 virtual servers x 10 real servers that touched about 36 MB, and in a small VM, where
//! every page touched for the first time is a round trip to the host, it was most of keeperd's
//! cold start. This module builds the tree of one file directly: the tokens are lexed and parsed
//! one table at a time, each key and value goes into the tree when its event arrives, and
//! positions are computed from spans. [`super::layers::merge_trees`] then layers the files'
//! trees and the `KEEPER_…` variables, with figment merging only what more than one layer writes.
//!
//! The result must be exactly the layered loader's: the same tree, the same origins, the same
//! index of virtual servers (tests compare the two on every configuration in the repository, on
//! edge cases, and on layered files and variables). Whatever this module does not follow (a
//! syntax error, a duplicate key, a table defined twice, an array of tables, a date) makes it
//! give up, and the layered loader reads the files and reports the errors with their places as
//! it always did.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

use toml_parser::decoder::{Encoding, ScalarKind};
use toml_parser::lexer::{Token, TokenKind};
use toml_parser::parser::{EventReceiver, RecursionGuard, ValidateWhitespace};
use toml_parser::{ErrorSink, ParseError, Source, Span};

use super::layers::Lines;
use super::node::{Node, NodeKind, Origin};
use super::reload::{VS, VsBlocks, VsTable, line_start};

/// Nesting of arrays and inline tables allowed (the `toml` crate's limit).
const MAX_DEPTH: u32 = 80;

/// The tree of `text` (read from `path`) and where its virtual servers are written, or `None`
/// when the layered loader must read it.
pub(crate) fn parse(path: &Path, text: &str) -> Option<(Node, VsBlocks)> {
    let source = Source::new(text);
    let mut builder = Builder::new(source);
    let mut failed = false;
    {
        let mut sink = |_: ParseError| failed = true;
        let mut validate = ValidateWhitespace::new(&mut builder, source);
        let mut guard = RecursionGuard::new(&mut validate, MAX_DEPTH);
        let mut section = SectionSplitter::default();
        // One table's tokens at a time: the token list of a large file would otherwise be the
        // largest thing in memory (24 bytes a token, 6 to 10 tokens a line).
        let mut tokens: Vec<Token> = Vec::with_capacity(256);
        for token in source.lex() {
            if section.starts_before(&token) && !tokens.is_empty() {
                toml_parser::parser::parse_document(&tokens, &mut guard, &mut sink);
                tokens.clear();
            }
            tokens.push(token);
        }
        toml_parser::parser::parse_document(&tokens, &mut guard, &mut sink);
    }
    if failed || builder.failed {
        return None;
    }
    builder.finish(path, text)
}

/// Finds where a table header starts: a `[` first on its line, outside any array or inline
/// table. Strings and comments are single tokens, so brackets inside them are not counted. In
/// a file that is not valid TOML the split may fall elsewhere; the parser then reports an error
/// and the file goes to the layered loader.
#[derive(Default)]
struct SectionSplitter {
    depth: i64,
    /// Something other than whitespace since the last newline.
    mid_line: bool,
}

impl SectionSplitter {
    fn starts_before(&mut self, token: &Token) -> bool {
        let kind = token.kind();
        let header = kind == TokenKind::LeftSquareBracket && self.depth == 0 && !self.mid_line;
        match kind {
            TokenKind::LeftSquareBracket | TokenKind::LeftCurlyBracket => self.depth += 1,
            TokenKind::RightSquareBracket | TokenKind::RightCurlyBracket => self.depth -= 1,
            _ => {}
        }
        self.mid_line = match kind {
            TokenKind::Newline => false,
            TokenKind::Whitespace => self.mid_line,
            _ => true,
        };
        header
    }
}

/// How a table came to be, for TOML's rules on defining tables (the `toml` crate's
/// `implicit` / `dotted` / inline distinctions).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum How {
    /// Created on the way to a header's table (`a` of `[a.b]`); a header may define it later.
    Implicit,
    /// Created or extended by a dotted key (`a.b = 1`): no header may define it.
    Dotted,
    /// Defined by its own header.
    Header,
    /// Created by a dotted key inside an inline table still being read.
    InlineDotted,
    /// An inline table (frozen once closed), or a table inside one.
    Inline,
}

#[derive(Debug)]
struct Table {
    /// Sorted by key.
    entries: Vec<(String, Entry)>,
    how: How,
}

impl Table {
    fn new(how: How) -> Table {
        Table {
            entries: Vec::new(),
            how,
        }
    }
}

#[derive(Debug)]
struct Entry {
    /// Where it was first written (byte offset): the key, or the value in an array.
    at: usize,
    value: Value,
}

#[derive(Debug)]
enum Value {
    Table(Table),
    Array(Vec<Entry>),
    Scalar(NodeKind),
}

/// A value being read: an array or an inline table, with the keys of the statement it is in.
enum Frame {
    Array {
        at: usize,
        items: Vec<Entry>,
    },
    Inline {
        at: usize,
        table: Table,
        keys: Vec<(String, usize)>,
    },
}

struct Builder<'s> {
    source: Source<'s>,
    /// Top-level entries (the root table is never defined by a header).
    root: Vec<(String, Entry)>,
    /// The path of the current section's header (empty before the first header).
    section: Vec<String>,
    /// The keys of the statement being read at the top of a section, or of the header.
    keys: Vec<(String, usize)>,
    in_header: bool,
    /// Where the current header starts (its `[`).
    header_at: usize,
    /// Arrays and inline tables being read, innermost last.
    stack: Vec<Frame>,
    /// Every table header: where its `[` is, and the virtual server it is under, if any.
    headers: Vec<(usize, Option<String>)>,
    /// A construct this module leaves to the layered loader, or a TOML error.
    failed: bool,
}

impl<'s> Builder<'s> {
    fn new(source: Source<'s>) -> Builder<'s> {
        Builder {
            source,
            root: Vec::new(),
            section: Vec::new(),
            keys: Vec::new(),
            in_header: false,
            header_at: 0,
            stack: Vec::new(),
            headers: Vec::new(),
            failed: false,
        }
    }

    /// Decodes a key or a scalar (`ScalarKind::String` for a key); `None` if its span is not
    /// in the text (a `toml_parser` bug, not an input error).
    fn decode(
        &self,
        span: Span,
        encoding: Option<Encoding>,
        key: bool,
        error: &mut dyn ErrorSink,
    ) -> Option<(ScalarKind, Cow<'s, str>)> {
        let text = self.source.input().get(span.start()..span.end())?;
        let raw = toml_parser::Raw::new_unchecked(text, encoding, span);
        let mut out: Cow<'s, str> = Cow::Borrowed("");
        let kind = if key {
            raw.decode_key(&mut out, error);
            ScalarKind::String
        } else {
            raw.decode_scalar(&mut out, error)
        };
        Some((kind, out))
    }

    /// A complete value: into the array or inline table being read, else into the section.
    fn value(&mut self, at: usize, value: Value) {
        let done = match self.stack.last_mut() {
            Some(Frame::Array { items, .. }) => {
                items.push(Entry { at, value });
                Some(())
            }
            Some(Frame::Inline { table, keys, .. }) => {
                let keys = std::mem::take(keys);
                insert(&mut table.entries, &keys, value, How::InlineDotted)
            }
            None => {
                let keys = std::mem::take(&mut self.keys);
                section_entries(&mut self.root, &self.section)
                    .and_then(|entries| insert(entries, &keys, value, How::Dotted))
            }
        };
        if done.is_none() {
            self.failed = true;
        }
    }

    /// A header read: its table is defined (TOML: once, and never one made by dotted keys).
    fn header(&mut self) {
        let keys = std::mem::take(&mut self.keys);
        let defined = keys.split_last().and_then(|((last, last_at), parents)| {
            let mut entries = &mut self.root;
            for (k, k_at) in parents {
                entries = child(entries, k, *k_at, How::Implicit)?;
            }
            define(entries, last, *last_at).then_some(())
        });
        if defined.is_none() {
            self.failed = true;
            return;
        }
        let path: Vec<String> = keys.into_iter().map(|(k, _)| k).collect();
        let owner = match path.as_slice() {
            [vs, name, ..] if vs == VS => Some(name.clone()),
            _ => None,
        };
        self.headers.push((self.header_at, owner));
        self.section = path;
    }

    fn finish(self, path: &Path, text: &str) -> Option<(Node, VsBlocks)> {
        if !self.stack.is_empty() || self.in_header || !self.keys.is_empty() {
            return None;
        }
        let vs = match self.root.iter().find(|(k, _)| k == VS) {
            None => VsTable::Absent,
            Some((
                _,
                Entry {
                    value: Value::Table(t),
                    ..
                },
            )) if t.how == How::Implicit => VsTable::Headers(
                t.entries
                    .iter()
                    .map(|(k, e)| {
                        let by_headers = matches!(&e.value,
                                Value::Table(t) if matches!(t.how, How::Implicit | How::Header));
                        (k.as_str(), by_headers)
                    })
                    .collect(),
            ),
            Some(_) => VsTable::Other,
        };
        let headers: Vec<(usize, Option<&str>)> = self
            .headers
            .iter()
            .map(|(at, owner)| (line_start(text, *at), owner.as_deref()))
            .collect();
        let blocks = VsBlocks::from_headers(vs, headers, text.len());
        let lines = Lines::new(text);
        let file: Arc<Path> = Arc::from(path);
        let root = Node {
            kind: NodeKind::Table(
                self.root
                    .into_iter()
                    .map(|(k, e)| (k, to_node(e, &lines, &file)))
                    .collect(),
            ),
            origin: Origin::Default,
        };
        Some((root, blocks))
    }
}

/// Descends into table `key` of `entries`, creating it (as `how`) when absent. TOML's rules:
/// an inline table cannot be extended; a dotted key cannot extend a table defined by a header;
/// a table made by dotted keys inside an inline table is extended only while that inline table
/// is being read (`how == InlineDotted`).
fn child<'a>(
    entries: &'a mut Vec<(String, Entry)>,
    key: &str,
    at: usize,
    how: How,
) -> Option<&'a mut Vec<(String, Entry)>> {
    let i = match entries.binary_search_by(|(k, _)| k.as_str().cmp(key)) {
        Ok(i) => i,
        Err(i) => {
            let value = Value::Table(Table::new(how));
            entries.insert(i, (key.to_string(), Entry { at, value }));
            i
        }
    };
    let Value::Table(t) = &mut entries[i].1.value else {
        return None;
    };
    match (t.how, how) {
        (How::Inline, _) => return None,
        (How::InlineDotted, How::InlineDotted) => {}
        (How::InlineDotted, _) | (_, How::InlineDotted) => return None,
        (How::Implicit, How::Dotted) => t.how = How::Dotted,
        (How::Header, How::Dotted) => return None,
        _ => {}
    }
    Some(&mut t.entries)
}

/// Defines table `key` of `entries` by a header: new, or implicit until now (then it is
/// placed at this header, as `toml_edit` places it).
fn define(entries: &mut Vec<(String, Entry)>, key: &str, at: usize) -> bool {
    match entries.binary_search_by(|(k, _)| k.as_str().cmp(key)) {
        Ok(i) => match &mut entries[i].1 {
            Entry {
                at: placed,
                value: Value::Table(t),
            } if t.how == How::Implicit => {
                t.how = How::Header;
                *placed = at;
                true
            }
            _ => false,
        },
        Err(i) => {
            let value = Value::Table(Table::new(How::Header));
            entries.insert(i, (key.to_string(), Entry { at, value }));
            true
        }
    }
}

/// The entries of the current section's table (the root's before the first header).
fn section_entries<'a>(
    root: &'a mut Vec<(String, Entry)>,
    section: &[String],
) -> Option<&'a mut Vec<(String, Entry)>> {
    let mut entries = root;
    for k in section {
        let i = entries.binary_search_by(|(e, _)| e.as_str().cmp(k)).ok()?;
        let Value::Table(t) = &mut entries[i].1.value else {
            return None;
        };
        entries = &mut t.entries;
    }
    Some(entries)
}

/// Puts `value` at the dotted `keys` below `entries`; the tables on the way are made or
/// extended as `how` (`Dotted` in a section, `InlineDotted` in an inline table).
fn insert(
    entries: &mut Vec<(String, Entry)>,
    keys: &[(String, usize)],
    value: Value,
    how: How,
) -> Option<()> {
    let ((last, last_at), parents) = keys.split_last()?;
    let mut entries = entries;
    for (k, k_at) in parents {
        entries = child(entries, k, *k_at, how)?;
    }
    // A key written twice (TOML forbids it).
    let i = entries
        .binary_search_by(|(k, _)| k.as_str().cmp(last))
        .err()?;
    let entry = Entry {
        at: *last_at,
        value,
    };
    entries.insert(i, (last.clone(), entry));
    Some(())
}

/// Everything inside a closed inline table is frozen.
fn freeze(table: &mut Table) {
    table.how = How::Inline;
    for (_, e) in &mut table.entries {
        if let Value::Table(t) = &mut e.value {
            freeze(t);
        }
    }
}

fn to_node(entry: Entry, lines: &Lines<'_>, file: &Arc<Path>) -> Node {
    let (line, col) = lines.line_col(entry.at);
    let origin = Origin::File {
        path: file.clone(),
        line,
        col,
    };
    let kind = match entry.value {
        Value::Scalar(k) => k,
        Value::Array(items) => {
            NodeKind::Array(items.into_iter().map(|e| to_node(e, lines, file)).collect())
        }
        Value::Table(t) => NodeKind::Table(
            t.entries
                .into_iter()
                .map(|(k, e)| (k, to_node(e, lines, file)))
                .collect(),
        ),
    };
    Node { kind, origin }
}

impl EventReceiver for Builder<'_> {
    fn std_table_open(&mut self, span: Span, _error: &mut dyn ErrorSink) {
        if self.in_header || !self.stack.is_empty() || !self.keys.is_empty() {
            self.failed = true;
        }
        self.in_header = true;
        self.header_at = span.start();
    }

    fn std_table_close(&mut self, _span: Span, _error: &mut dyn ErrorSink) {
        self.in_header = false;
        self.header();
    }

    fn array_table_open(&mut self, _span: Span, _error: &mut dyn ErrorSink) {
        // Arrays of tables: no key of keeperd's takes one; left to the layered loader.
        self.failed = true;
    }

    fn inline_table_open(&mut self, span: Span, _error: &mut dyn ErrorSink) -> bool {
        self.stack.push(Frame::Inline {
            at: span.start(),
            table: Table::new(How::InlineDotted),
            keys: Vec::new(),
        });
        true
    }

    fn inline_table_close(&mut self, _span: Span, _error: &mut dyn ErrorSink) {
        match self.stack.pop() {
            Some(Frame::Inline {
                at,
                mut table,
                keys,
            }) if keys.is_empty() => {
                freeze(&mut table);
                self.value(at, Value::Table(table));
            }
            _ => self.failed = true,
        }
    }

    fn array_open(&mut self, span: Span, _error: &mut dyn ErrorSink) -> bool {
        self.stack.push(Frame::Array {
            at: span.start(),
            items: Vec::new(),
        });
        true
    }

    fn array_close(&mut self, _span: Span, _error: &mut dyn ErrorSink) {
        match self.stack.pop() {
            Some(Frame::Array { at, items }) => self.value(at, Value::Array(items)),
            _ => self.failed = true,
        }
    }

    fn simple_key(&mut self, span: Span, encoding: Option<Encoding>, error: &mut dyn ErrorSink) {
        let Some((_, key)) = self.decode(span, encoding, true, error) else {
            self.failed = true;
            return;
        };
        let key = (key.into_owned(), span.start());
        match self.stack.last_mut() {
            Some(Frame::Inline { keys, .. }) => keys.push(key),
            Some(Frame::Array { .. }) => self.failed = true,
            None => self.keys.push(key),
        }
    }

    fn scalar(&mut self, span: Span, encoding: Option<Encoding>, error: &mut dyn ErrorSink) {
        let Some((kind, text)) = self.decode(span, encoding, false, error) else {
            self.failed = true;
            return;
        };
        // As the `toml` crate reads them (`DeInteger::to_i64`, `DeFloat::to_f64`).
        let node = match kind {
            ScalarKind::String => Some(NodeKind::Str(text.into_owned())),
            ScalarKind::Boolean(v) => Some(NodeKind::Bool(v)),
            ScalarKind::Integer(radix) => i64::from_str_radix(&text, radix.value())
                .ok()
                .map(NodeKind::Int),
            ScalarKind::Float => text
                .parse::<f64>()
                .ok()
                .filter(|f| !f.is_infinite() || text.contains("inf"))
                .map(NodeKind::Float),
            // No key takes a date; the layered loader reads it (as text).
            ScalarKind::DateTime => None,
        };
        match node {
            Some(n) => self.value(span.start(), Value::Scalar(n)),
            None => self.failed = true,
        }
    }

    fn error(&mut self, _span: Span, _error: &mut dyn ErrorSink) {
        self.failed = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// What the layered loader gives for `text` as the only file: its tree and its index.
    fn layered(dir: &Path, text: &str) -> Result<(Node, VsBlocks), String> {
        let main = dir.join("keeper.toml");
        std::fs::write(&main, text).map_err(|e| e.to_string())?;
        let merged =
            super::super::layers::merge(&main, Vec::new()).map_err(|e| format!("{e:?}"))?;
        let blocks = merged
            .sources
            .files()
            .first()
            .map(|f| f.blocks.clone())
            .unwrap_or_default();
        Ok((merged.root, blocks))
    }

    fn direct(dir: &Path, text: &str) -> Option<(Node, VsBlocks)> {
        parse(&dir.join("keeper.toml"), text)
    }

    /// Both loaders give the same tree (values, kinds, the origin of every key) and index.
    fn same(text: &str) {
        let dir = tempfile::tempdir().expect("temp dir");
        let want = layered(dir.path(), text).unwrap_or_else(|e| panic!("layered: {e}\n{text}"));
        let got = direct(dir.path(), text).unwrap_or_else(|| panic!("direct gave up on\n{text}"));
        assert_eq!(got.0, want.0, "tree of\n{text}");
        assert_eq!(got.1, want.1, "index of\n{text}");
    }

    /// The one-pass reader gives up; the layered loader decides (usually: an error).
    fn gives_up(text: &str) {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(direct(dir.path(), text).is_none(), "took\n{text}");
    }

    #[test]
    fn every_example_configuration() {
        let top = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut n = 0;
        for dir in ["docs/examples", "vm-tests/configs"] {
            let mut files: Vec<PathBuf> = std::fs::read_dir(top.join(dir))
                .expect("examples")
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            files.sort();
            for f in files {
                same(&std::fs::read_to_string(&f).expect("read"));
                n += 1;
            }
        }
        assert!(n >= 10, "{n} files");
    }

    #[test]
    fn a_generated_director() {
        // The shape of the benchmarks' files (daemon/benches/ipvs-gen.py, checks-gen.py).
        let mut t = String::from("[global]\ncontrol_socket = \"/run/keeper/keeper.sock\"\n\n");
        for s in 0..20 {
            t += &format!(
                "[virtual_server.vs{s}]\nip = \"10.10.{s}.1\"\nport = 80\nlb_algo = \"wrr\"\nlb_kind = \"DR\"\n"
            );
            for r in 0..5 {
                t += &format!(
                    "[virtual_server.vs{s}.real_server.rs{r}]\nip = \"10.100.{s}.{r}\"\nweight = {r}\n"
                );
                if r % 2 == 0 {
                    t += "http_get = { url = { \"/\" = { status_code = 200 } }, connect_timeout = 3 }\n";
                }
            }
        }
        same(&t);
    }

    #[test]
    fn toml_forms() {
        let mut refused = 0;
        for text in [
            "",
            "# only a comment\n",
            "a = 1",
            "\u{feff}a = 1\n",
            "a = 1\r\nb = \"x\"\r\n[t]\r\nc = true\r\n",
            "[global]\n",
            "[global]\n[vrrp_instance.VI_1]\n",
            "  [ a . b ]  # indented, spaced\n  k = 1\n",
            "[a.b]\nx = 1\n[a]\ny = 2\n",
            "[a]\nb.c = 1\nb.d = 2\n",
            "a.b.c = 1\na.b.d = 2\n",
            "[virtual_server.\"vs 1\"]\nip = '10.0.0.1'\n[virtual_server.'vs 1'.real_server.\"r.1\"]\nip = \"x\"\n",
            "\"quoted key\" = 1\n'literal' = 2\n\"é\" = 3\n",
            "s = \"tab\\tquote\\\" \\u00e9 \\U0001F600\"\nl = 'C:\\path'\n",
            "m = \"\"\"\nline one\n  line two \\\n  joined\"\"\"\nn = '''\nraw\n'''\nafter = 1\n",
            "i = [1, 2, 3]\nj = [\n  \"a\", # comment\n  \"b\",\n]\nk = []\n",
            "nested = [[1, 2], [\"a\"], []]\n",
            "t = { a = 1, b = { c = \"x\" }, d.e = 2, d.f = 3 }\n",
            "arr = [{ a = 1 }, { b = [1, { c = 2 }] }]\n",
            "h = 0xff\no = 0o17\nb = 0b101\nu = 1_000\nneg = -5\npos = +7\n",
            "f = 1.5\ng = -0.25\ne = 1e3\nx = 6.626e-34\nu = 1_000.5\ninf1 = inf\ninf2 = -inf\n",
            "t = true\nf = false\n",
            "a = \"é\" ; \n",
            "k = \"ééé\"\n[x]\nv = 'ü'   # the column of v counts characters\nw = 1\n",
            "[a]\n[b]\n[a.c]\nz = 1\n",
            "[virtual_server.a]\nip = \"1\"\n[global]\nx = 1\n[virtual_server.a.real_server.r]\nip = \"2\"\n",
            "[virtual_server.a]\nip = \"1\"\n[virtual_server.b]\nx = { y = 1 }\n",
            "[virtual_server]\n[virtual_server.a]\n",
            "virtual_server.a.ip = \"1\"\n",
            "[virtual_server.a.real_server]\nr = { ip = \"1\" }\n",
        ] {
            // One of these is not TOML (`a = "é" ;`): then both must refuse it.
            let dir = tempfile::tempdir().expect("temp dir");
            match layered(dir.path(), text) {
                Ok(_) => same(text),
                Err(_) => {
                    refused += 1;
                    gives_up(text)
                }
            }
        }
        assert_eq!(refused, 1);
    }

    #[test]
    fn gives_up_on_errors_and_on_what_it_does_not_read() {
        for text in [
            "a = 1\na = 2\n",
            "[a]\n[a]\n",
            "[a]\nb = 1\n[a.b]\n",
            "a.b = 1\n[a.b]\n",
            "[a]\nx = 1\n[b]\n[a.x]\n",
            "[a.b]\n[a]\nb.c = 1\n",
            "t = { a = 1 }\n[t.b]\n",
            "t = { a = 1 }\nt.b = 2\n",
            "t = { a.b = 1, a = 2 }\n",
            "t = { a = { b = 1 }, a.c = 2 }\n",
            "[[servers]]\nip = \"1\"\n",
            "d = 1979-05-27T07:32:00Z\n",
            "a = \n",
            "a = \"unterminated\n",
            "a = 1 b = 2\n",
            "= 1\n",
            "[a\nb = 1\n",
            "a = [1, 2\n[b]\nc = 1\n",
            "s = \"bad \\q escape\"\n",
            "big = 9223372036854775808\n",
            "x = 1__0\n",
            "a = 1\n]\n",
        ] {
            gives_up(text);
        }
    }

    /// Files (the first is keeper.toml, the others conf.d/NAME) and variables: the layered
    /// loader's tree, and the one from the files read in one pass and `merge_trees`.
    fn layered_both(files: &[(&str, &str)], env: &[(&str, &str)]) {
        let dir = tempfile::tempdir().expect("temp dir");
        let main = dir.path().join("keeper.toml");
        std::fs::create_dir(dir.path().join("conf.d")).expect("conf.d");
        let mut paths = Vec::new();
        for (i, (name, text)) in files.iter().enumerate() {
            let path = if i == 0 {
                main.clone()
            } else {
                dir.path().join("conf.d").join(name)
            };
            std::fs::write(&path, text).expect("write");
            paths.push((path, *text));
        }
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let want = super::super::layers::merge(&main, env.clone())
            .unwrap_or_else(|e| panic!("layered: {e:?}"))
            .root;
        paths.sort_by(|a, b| (a.0 != main, &a.0).cmp(&(b.0 != main, &b.0)));
        let trees = paths
            .iter()
            .map(|(p, text)| (p.clone(), parse(p, text).expect("one pass").0))
            .collect();
        let got = super::super::layers::merge_trees(trees, &env).expect("merged");
        assert_eq!(got, want, "{files:?} {env:?}");
    }

    #[test]
    fn layers_merged_from_trees_as_the_layered_loader_merges_them() {
        let main = "[global]\nrouter_id = \"a\"\nvrrp_version = 2\n\n[vrrp_instance.VI_1]\ninterface = \"eth0\"\nvirtual_router_id = 51\npriority = 100\nvirtual_ipaddress = [\"10.0.0.1/24\"]\nauthentication = { auth_type = \"PASS\" }\n\n[virtual_server.web]\nip = \"10.0.0.1\"\nport = 80\n[virtual_server.web.real_server.a]\nip = \"10.0.0.11\"\n";
        // Nothing layered, a file beside it, files writing the same tables, a scalar replaced
        // by a table and a table by a scalar, and variables of every kind.
        layered_both(&[("", main)], &[]);
        layered_both(
            &[
                ("", main),
                (
                    "10-extra.toml",
                    "[vrrp_script.chk]\nscript = \"/bin/true\"\n",
                ),
            ],
            &[],
        );
        layered_both(
            &[
                ("", main),
                (
                    "10-web.toml",
                    "[virtual_server.web.real_server.b]\nip = \"10.0.0.12\"\n[virtual_server.api]\nip = \"10.0.0.2\"\nport = 443\n",
                ),
                (
                    "20-global.toml",
                    "[global]\nrouter_id = \"b\"\nvrrp_strict = true\n",
                ),
            ],
            &[],
        );
        layered_both(
            &[
                ("", main),
                ("10.toml", "global = 1\n[vrrp_instance]\nVI_1 = \"x\"\n"),
            ],
            &[],
        );
        layered_both(
            &[
                ("", "global = 1\n"),
                ("10.toml", "[global]\nrouter_id = \"c\"\n"),
            ],
            &[],
        );
        layered_both(
            &[("", main)],
            &[
                (
                    "KEEPER_VRRP_INSTANCE__VI_1__AUTHENTICATION__AUTH_PASS",
                    "s3cret",
                ),
                ("KEEPER_VRRP_INSTANCE__VI_1__PRIORITY", "50"),
                ("KEEPER_VRRP_INSTANCE__VI_2__PRIORITY", "20"),
                ("KEEPER_GLOBAL__VRRP_VERSION", "3"),
                ("KEEPER_NEW_SECTION__A", "1"),
                (
                    "KEEPER_VRRP_INSTANCE__VI_1__VIRTUAL_IPADDRESS",
                    "[\"10.0.0.9/24\"]",
                ),
                ("OTHER", "ignored"),
            ],
        );
        layered_both(
            &[
                ("", main),
                (
                    "10-web.toml",
                    "[virtual_server.web.real_server.b]\nip = \"10.0.0.12\"\n",
                ),
            ],
            &[
                ("KEEPER_VIRTUAL_SERVER__WEB__REAL_SERVER__A__WEIGHT", "5"),
                ("KEEPER_A", "1"),
                ("KEEPER_A__B", "2"),
            ],
        );
    }
}
