//! Tidy: the domain stays pure and layered. Its normal (non-dev) dependency graph, transitively,
//! holds no adapter: no sea-orm, sqlx, actix, reqwest, hyper, no tokio (runtime) and no JSON.
//! And its files import each other without cycles.

use std::collections::{BTreeSet, HashMap};
use std::process::Command;

const FORBIDDEN: &[&str] = &[
    "sea-orm",
    "sea-query",
    "sqlx",
    "actix-web",
    "actix-rt",
    "reqwest",
    "hyper",
    "tokio",
    "ring",
    "aes-gcm",
    "argon2",
    // Wire formats are the adapters' business (webhook payloads are shaped in storage).
    "serde_json",
];

#[test]
fn domain_depends_on_no_adapter_or_runtime() {
    let rustc = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into())).arg("-vV").output().unwrap();
    let rustc = String::from_utf8(rustc.stdout).unwrap();
    let host = rustc.lines().find_map(|l| l.strip_prefix("host: ")).expect("rustc -vV names the host").to_owned();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--filter-platform", &host, "--manifest-path"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).expect("cargo metadata is JSON");

    let names: HashMap<&str, &str> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let nodes: HashMap<&str, &serde_json::Value> =
        metadata["resolve"]["nodes"].as_array().unwrap().iter().map(|n| (n["id"].as_str().unwrap(), n)).collect();
    let root = names.iter().find(|(_, name)| **name == "otesse-domain").map(|(id, _)| *id).unwrap();

    // Walk normal dependencies only (dev and build dependencies do not ship).
    let mut seen = BTreeSet::new();
    let mut stack = vec![root];
    while let Some(id) = stack.pop() {
        for dep in nodes[id]["deps"].as_array().unwrap() {
            let normal = dep["dep_kinds"].as_array().unwrap().iter().any(|k| k["kind"].is_null());
            let dep_id = dep["pkg"].as_str().unwrap();
            if normal && seen.insert(names[dep_id]) {
                stack.push(dep_id);
            }
        }
    }
    let found: Vec<_> = seen.iter().filter(|name| FORBIDDEN.contains(name)).collect();
    assert!(found.is_empty(), "crates/domain depends (transitively) on {found:?}");
    assert!(seen.contains("uuid"), "the walk found the domain's real dependencies: {seen:?}");
}

/// The domain's files, their module paths, and the files each one uses (non-test code): an edge
/// for every `use` and every `crate::`/`super::`/`self::` path, resolved to the file that
/// defines what it names, through re-exports (`crate::api_key::ApiKey` is the file of
/// `api_key/mod.rs`'s `pub use model::ApiKey`). A re-export is a facade, not code that depends
/// on what it re-exports, so it adds no edge itself.
mod imports {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    pub struct Graph {
        /// Module path (`api_key::service`) → the modules it uses.
        pub edges: BTreeMap<String, BTreeSet<String>>,
    }

    fn module_of(root: &Path, file: &Path) -> Vec<String> {
        let relative = file.strip_prefix(root).unwrap();
        let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
        let last = parts.pop().unwrap();
        match last.as_str() {
            "lib.rs" | "mod.rs" => {}
            name => parts.push(name.trim_end_matches(".rs").to_owned()),
        }
        parts
    }

    fn files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// The code without comments, string and char literals, and `#[cfg(test)]` items.
    pub fn code_of(text: &str) -> String {
        // Comments and literals first, so braces and paths inside them do not count.
        let chars: Vec<char> = text.chars().collect();
        let mut code = String::with_capacity(text.len());
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '/' && chars.get(i + 1) == Some(&'/') {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            } else if c == '/' && chars.get(i + 1) == Some(&'*') {
                i += 2;
                while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                    i += 1;
                }
                i += 2;
            } else if c == 'r'
                && (chars.get(i + 1) == Some(&'"') || chars.get(i + 1) == Some(&'#'))
                && !chars.get(i.wrapping_sub(1)).is_some_and(|p| p.is_alphanumeric() || *p == '_')
            {
                // Raw string: r"..." or r#"..."#.
                let mut j = i + 1;
                let mut hashes = 0;
                while chars.get(j) == Some(&'#') {
                    hashes += 1;
                    j += 1;
                }
                if chars.get(j) != Some(&'"') {
                    code.push(c);
                    i += 1;
                    continue;
                }
                j += 1;
                loop {
                    if j >= chars.len() {
                        break;
                    }
                    if chars[j] == '"' && (0..hashes).all(|h| chars.get(j + 1 + h) == Some(&'#')) {
                        j += 1 + hashes;
                        break;
                    }
                    j += 1;
                }
                code.push_str("\"\"");
                i = j;
            } else if c == '"' {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
                code.push_str("\"\"");
            } else if c == '\''
                && (chars.get(i + 2) == Some(&'\'')
                    || (chars.get(i + 1) == Some(&'\\') && chars.get(i + 3) == Some(&'\'')))
            {
                // A char literal ('x' or '\n'); lifetimes ('a) are left alone.
                i += if chars.get(i + 1) == Some(&'\\') { 4 } else { 3 };
                code.push_str("' '");
            } else {
                code.push(c);
                i += 1;
            }
        }
        // Then every item under #[cfg(test)].
        let mut out = String::with_capacity(code.len());
        let mut rest = code.as_str();
        while let Some(at) = rest.find("#[cfg(test)]") {
            out.push_str(&rest[..at]);
            let after = &rest[at + "#[cfg(test)]".len()..];
            // The item ends at the first `;` before any `{`, or at the `}` matching its first `{`.
            let semi = after.find(';');
            let brace = after.find('{');
            let end = match (semi, brace) {
                (Some(s), Some(b)) if s < b => s + 1,
                (_, Some(b)) => {
                    let mut depth = 0;
                    let mut end = after.len();
                    for (k, ch) in after[b..].char_indices() {
                        match ch {
                            '{' => depth += 1,
                            '}' => {
                                depth -= 1;
                                if depth == 0 {
                                    end = b + k + 1;
                                    break;
                                }
                            }
                            _ => {}
                        }
                    }
                    end
                }
                (Some(s), None) => s + 1,
                (None, None) => after.len(),
            };
            rest = &after[end..];
        }
        out.push_str(rest);
        out
    }

    fn is_ident(c: char) -> bool {
        c.is_alphanumeric() || c == '_'
    }

    /// Every path a `use` tree names, its groups expanded: `a::{b::C, d}` → `a::b::C`, `a::d`.
    fn expand(tree: &str, prefix: &str, out: &mut Vec<String>) {
        let tree = tree.trim();
        if let Some(open) = tree.find('{') {
            let head = tree[..open].trim().trim_end_matches("::");
            let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
            let base = join(prefix, head);
            let mut depth = 0;
            let mut start = 0;
            for (k, ch) in inner.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        expand(&inner[start..k], &base, out);
                        start = k + 1;
                    }
                    _ => {}
                }
            }
            expand(&inner[start..], &base, out);
        } else {
            let path = tree.split(" as ").next().unwrap().trim();
            if !path.is_empty() {
                out.push(join(prefix, path));
            }
        }
    }

    fn join(prefix: &str, path: &str) -> String {
        match (prefix.is_empty(), path.is_empty()) {
            (true, _) => path.to_owned(),
            (_, true) => prefix.to_owned(),
            _ => format!("{prefix}::{path}"),
        }
    }

    /// Paths named in the code: every `use` tree, and every `crate::`, `super::`, `self::` path.
    /// The second list holds the re-exports (`pub use`) by the name they export.
    fn paths(code: &str) -> (Vec<String>, Vec<(String, String)>) {
        let mut used = Vec::new();
        let mut exported = Vec::new();
        let mut rest = code;
        let mut spans = Vec::new();
        // `use` statements (also `pub use`, `pub(crate) use`).
        let mut offset = 0;
        while let Some(found) = rest.find("use ") {
            let at = offset + found;
            let before = code[..at].chars().last();
            let end = code[at..].find(';').map_or(code.len(), |e| at + e);
            if before.is_none_or(|c| !is_ident(c)) {
                let line_start = code[..at].rfind(['\n', ';', '}', '{']).map_or(0, |p| p + 1);
                let is_pub = code[line_start..at].contains("pub");
                let mut trees = Vec::new();
                expand(&code[at + 4..end], "", &mut trees);
                if is_pub {
                    let raw = &code[at + 4..end];
                    for path in trees {
                        let name = exported_name(raw, &path);
                        exported.push((name, path));
                    }
                } else {
                    used.extend(trees);
                }
                spans.push((at, end));
            }
            offset = at + 4;
            rest = &code[offset.min(code.len())..];
        }
        // Inline paths, outside the `use` statements.
        for anchor in ["crate::", "super::", "self::"] {
            let mut from = 0;
            while let Some(found) = code[from..].find(anchor) {
                let at = from + found;
                from = at + anchor.len();
                let prev = code[..at].chars().last();
                if prev.is_some_and(|c| is_ident(c) || c == ':') || spans.iter().any(|(s, e)| (*s..*e).contains(&at)) {
                    continue;
                }
                let tail: Vec<char> = code[at..].chars().collect();
                let mut k = 0;
                while k < tail.len() && (is_ident(tail[k]) || (tail[k] == ':' && tail.get(k + 1) == Some(&':'))) {
                    k += if tail[k] == ':' { 2 } else { 1 };
                }
                let end = at + tail[..k].iter().map(|c| c.len_utf8()).sum::<usize>();
                used.push(code[at..end].trim_end_matches(':').to_owned());
            }
        }
        (used, exported)
    }

    /// The name a re-export makes visible: its alias (`as`), or its last segment.
    fn exported_name(raw: &str, path: &str) -> String {
        let last = path.rsplit("::").next().unwrap_or(path).trim();
        let alias = format!("{last} as ");
        match raw.find(&alias) {
            Some(at) => raw[at + alias.len()..].split(|c: char| !is_ident(c)).next().unwrap_or(last).to_owned(),
            None => last.to_owned(),
        }
    }

    type Module = Vec<String>;

    /// Where a path starts: `crate`, `super`, `self`, or a child module of `module`; `None` for
    /// another crate or a name in scope.
    fn start(module: &Module, modules: &BTreeMap<Module, PathBuf>, path: &str) -> Option<(Module, Vec<String>)> {
        let mut segments: Vec<String> =
            path.split("::").map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
        let base = match segments.first().map(String::as_str) {
            Some("crate") => {
                segments.remove(0);
                Vec::new()
            }
            Some("super") => {
                let mut base = module.clone();
                while segments.first().map(String::as_str) == Some("super") {
                    segments.remove(0);
                    base.pop();
                }
                base
            }
            Some("self") => {
                segments.remove(0);
                module.clone()
            }
            Some(first) => {
                let mut child = module.clone();
                child.push(first.to_owned());
                if !modules.contains_key(&child) {
                    return None;
                }
                module.clone()
            }
            None => return None,
        };
        Some((base, segments))
    }

    /// The module that defines what `segments` (from `base`) names, following re-exports.
    fn resolve(
        base: Module,
        segments: &[String],
        modules: &BTreeMap<Module, PathBuf>,
        exports: &BTreeMap<Module, Vec<(String, String)>>,
        depth: usize,
    ) -> Module {
        let mut target = base.clone();
        let mut current = base;
        let mut rest = segments;
        while let Some((first, tail)) = rest.split_first() {
            current.push(first.clone());
            if modules.contains_key(&current) {
                target = current.clone();
                rest = tail;
            } else {
                break;
            }
        }
        // The next segment names an item of `target`: re-exported from elsewhere, or its own.
        if let Some(item) = rest.first()
            && depth < 16
            && let Some((_, path)) = exports.get(&target).and_then(|e| e.iter().find(|(name, _)| name == item))
            && let Some((base, segments)) = start(&target, modules, path)
        {
            return resolve(base, &segments, modules, exports, depth + 1);
        }
        target
    }

    pub fn build(root: &Path) -> Graph {
        let mut all = Vec::new();
        files(root, &mut all);
        let modules: BTreeMap<Module, PathBuf> = all.iter().map(|f| (module_of(root, f), f.clone())).collect();
        let mut uses = BTreeMap::new();
        let mut exports = BTreeMap::new();
        for (module, file) in &modules {
            let (used, exported) = paths(&code_of(&std::fs::read_to_string(file).unwrap()));
            uses.insert(module.clone(), used);
            exports.insert(module.clone(), exported);
        }
        let mut edges = BTreeMap::new();
        for (module, used) in &uses {
            let mut targets = BTreeSet::new();
            for path in used {
                let Some((base, segments)) = start(module, &modules, path) else { continue };
                let target = resolve(base, &segments, &modules, &exports, 0);
                if &target != module {
                    targets.insert(target.join("::"));
                }
            }
            edges.insert(module.join("::"), targets);
        }
        Graph { edges }
    }

    /// Every cycle's modules (the strongly connected components of more than one module).
    pub fn cycles(graph: &Graph) -> Vec<Vec<String>> {
        // Tarjan's algorithm.
        struct State<'a> {
            graph: &'a Graph,
            index: BTreeMap<&'a str, usize>,
            low: BTreeMap<&'a str, usize>,
            stack: Vec<&'a str>,
            on_stack: BTreeSet<&'a str>,
            next: usize,
            found: Vec<Vec<String>>,
        }
        fn visit<'a>(s: &mut State<'a>, v: &'a str) {
            s.index.insert(v, s.next);
            s.low.insert(v, s.next);
            s.next += 1;
            s.stack.push(v);
            s.on_stack.insert(v);
            let graph = s.graph;
            for w in graph.edges.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !graph.edges.contains_key(w) {
                    continue;
                }
                if !s.index.contains_key(w) {
                    visit(s, w);
                    let low = s.low[w].min(s.low[v]);
                    s.low.insert(v, low);
                } else if s.on_stack.contains(w) {
                    let low = s.index[w].min(s.low[v]);
                    s.low.insert(v, low);
                }
            }
            if s.low[v] == s.index[v] {
                let mut component = Vec::new();
                while let Some(w) = s.stack.pop() {
                    s.on_stack.remove(w);
                    component.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    s.found.push(component);
                }
            }
        }
        let mut state = State {
            graph,
            index: BTreeMap::new(),
            low: BTreeMap::new(),
            stack: Vec::new(),
            on_stack: BTreeSet::new(),
            next: 0,
            found: Vec::new(),
        };
        for v in graph.edges.keys() {
            if !state.index.contains_key(v.as_str()) {
                visit(&mut state, v);
            }
        }
        state.found
    }
}

fn domain_graph() -> imports::Graph {
    imports::build(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src")))
}

#[test]
fn the_domain_s_files_import_each_other_without_cycles() {
    let graph = domain_graph();
    assert!(graph.edges.len() > 20, "the walk found the domain's files: {:?}", graph.edges.keys());
    let cycles = imports::cycles(&graph);
    assert!(cycles.is_empty(), "import cycles between the domain's files: {cycles:#?}");
}

#[test]
fn webhooks_and_idempotency_do_not_import_the_integrations() {
    let graph = domain_graph();
    for (module, used) in &graph.edges {
        if module.starts_with("webhook") || module == "idempotency" {
            let borrowed: Vec<_> = used.iter().filter(|u| u.starts_with("integration")).collect();
            assert!(borrowed.is_empty(), "{module} imports {borrowed:?}");
        }
    }
}

#[test]
fn the_import_scan_sees_uses_groups_and_inline_paths_but_not_tests_or_comments() {
    let code = imports::code_of(
        "use crate::a::{b::C, d::{E, F}};\n// crate::hidden::X\nfn f() { crate::g::h(); let s = \"crate::str::Y\"; }\n#[cfg(test)]\nmod tests { use crate::test_only::Z; }\n",
    );
    assert!(code.contains("crate::a::{b::C, d::{E, F}}") && code.contains("crate::g::h"));
    assert!(!code.contains("hidden") && !code.contains("crate::str") && !code.contains("test_only"), "{code}");
}
