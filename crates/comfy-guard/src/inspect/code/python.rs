//! Python: is this text a program that reaches the system?
//!
//! The text is parsed with Ruff's parser (`ruff_python_parser`, Python up
//! to 3.14, error recovery, no generated tables). When it parses, the tree
//! is judged (see [`Judge`]); when it does not, each line is parsed on its
//! own, and what still fails is judged on its tokens: a dangerous name
//! followed by call, attribute or subscript syntax, an `import` of a system
//! module, a dunder attribute. The tokens come from the same lexer, so
//! comments, line continuations and brackets across lines are read as
//! Python reads them.
//!
//! Names fall into three groups:
//! - *strong* names (`eval`, `exec`, `__import__`, `getattr`, ...): any
//!   use other than standing alone as the whole statement is code (a call,
//!   `(exec)(...)`, `eval.__call__`, `map(exec, ...)`, `lambda e=exec:`,
//!   a decorator, an alias `e = exec`);
//! - *English* names (`open`, `compile`, `globals`, `locals`, `vars`),
//!   which prompts use as words: code only when called with a computed or
//!   literal argument, when what they return is used (`open(p).read()`,
//!   `globals()['x']`), or when passed on as a value;
//! - modules: an import of a system module (aliases and `\`-continued
//!   `from` lines included), or an attribute walk from one (`os.system`).

use ruff_python_ast::visitor::{Visitor, walk_expr, walk_stmt};
use ruff_python_ast::{Decorator, Expr, ModModule, Parameters, Stmt};
use ruff_python_parser::{Mode, ParseOptions, parse_unchecked};

mod tokens;

use tokens::judge_tokens;

/// Names whose every use is code.
const STRONG: &[&str] = &[
    "eval",
    "exec",
    "execfile",
    "getattr",
    "setattr",
    "delattr",
    "breakpoint",
    "__import__",
    "__builtins__",
    "__builtin__",
    "__loader__",
    "__spec__",
];

/// Builtins that are also English words.
const ENGLISH: &[&str] = &["open", "compile", "globals", "locals", "vars"];

/// Modules whose names are not English words: any attribute of one is a
/// walk into the system.
pub(super) const WALK_MODULES: &[&str] = &[
    "os",
    "sys",
    "subprocess",
    "socket",
    "shutil",
    "importlib",
    "ctypes",
    "pickle",
    "cPickle",
    "_pickle",
    "marshal",
    "builtins",
    "__builtin__",
    "pty",
    "io",
    "posix",
    "nt",
    "runpy",
    "urllib",
    "urllib2",
    "urllib3",
    "httplib",
    "httpx",
    "telnetlib",
    "ftplib",
    "smtplib",
    "webbrowser",
    "multiprocessing",
    "asyncio",
    "tempfile",
    "pathlib",
    "zipfile",
    "tarfile",
    "codecs",
    "base64",
    "zlib",
    "dill",
    "cloudpickle",
    "sysconfig",
    "codeop",
    "_thread",
    "selectors",
    "paramiko",
    "fcntl",
    "mmap",
    "shelve",
    "popen2",
];

/// The other modules whose import means system access: names that are
/// also words (or too common to read as a walk on their own).
const WORD_MODULES: &[&str] = &[
    "requests",
    "http",
    "aiohttp",
    "signal",
    "glob",
    "joblib",
    "platform",
    "types",
    "inspect",
    "gc",
    "code",
    "imp",
    "threading",
    "select",
    "ssl",
    "resource",
    "torch",
    "numpy",
    "yaml",
    "commands",
];

/// Whether importing `module` means system access: [`WALK_MODULES`] and
/// [`WORD_MODULES`].
fn is_system_module(module: &str) -> bool {
    WALK_MODULES.contains(&module) || WORD_MODULES.contains(&module)
}

/// Longest text parsed as one program; longer text is parsed in chunks.
pub(super) const WHOLE_MAX: usize = 64 * 1024;
/// Longest line parsed on its own.
const LINE_MAX: usize = 4 * 1024;
/// Deepest bracket nesting handed to the parser; deeper brackets are
/// blanked first (the code inside them stays visible to the token judge).
const MAX_NESTING: usize = 100;

fn is_dunder(name: &str) -> bool {
    name.len() > 4 && name.starts_with("__") && name.ends_with("__")
}

fn is_strong(name: &str) -> bool {
    STRONG.contains(&name) || is_dunder(name)
}

fn module_root(dotted: &str) -> &str {
    dotted.split('.').next().unwrap_or(dotted)
}

/// Judges `text` as Python; `None` when it is not code that reaches the
/// system. `text` is at most [`WHOLE_MAX`] bytes (the caller chunks).
pub(super) fn judge(text: &str) -> Option<&'static str> {
    let flat = flatten_nesting(text);
    let text = flat.as_deref().unwrap_or(text);
    let parsed = parse_unchecked(text, ParseOptions::from(Mode::Module));
    if !parsed.has_syntax_errors() {
        if let Some(module) = parsed.syntax().as_module()
            && let Some(hit) = judge_module(module)
        {
            return Some(hit);
        }
        // A program that parses but calls nothing may still hold a call a
        // comment or newline splits (`eval  # x` newline `("...")`), which
        // a node that strips comments would run.
        return judge_tokens(text, parsed.tokens());
    }
    // Statements and lines on their own.
    for line in logical_lines(text) {
        if line.len() > LINE_MAX || line.trim().is_empty() {
            continue;
        }
        let part = parse_unchecked(line, ParseOptions::from(Mode::Module));
        if !part.has_syntax_errors()
            && let Some(module) = part.syntax().as_module()
            && let Some(hit) = judge_module(module)
        {
            return Some(hit);
        }
    }
    // What still fails: its tokens, as written and with quotes and comment
    // marks blanked (prose apostrophes open strings that swallow the rest
    // of a line).
    if let Some(hit) = judge_tokens(text, parsed.tokens()) {
        return Some(hit);
    }
    if text.contains(['\'', '"', '#']) {
        let blanked: String = text
            .chars()
            .map(|c| if matches!(c, '\'' | '"' | '#') { ' ' } else { c })
            .collect();
        let again = parse_unchecked(&blanked, ParseOptions::from(Mode::Module));
        return judge_tokens(&blanked, again.tokens());
    }
    None
}

/// Lines, with `\`-continued lines joined into one.
fn logical_lines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'\n' {
            let mut end = i;
            if end > start && bytes[end - 1] == b'\r' {
                end -= 1;
            }
            if end > start && bytes[end - 1] == b'\\' {
                continue;
            }
            out.push(&text[start..i]);
            start = i + 1;
        }
    }
    out.push(&text[start..]);
    out
}

/// Blanks brackets nested deeper than [`MAX_NESTING`], so the recursive
/// parser never goes deep; `None` when nothing is that deep.
fn flatten_nesting(text: &str) -> Option<String> {
    let mut depth = 0usize;
    let mut deepest = 0usize;
    for b in text.bytes() {
        match b {
            b'(' | b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if deepest <= MAX_NESTING {
        return None;
    }
    let mut depth = 0usize;
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '(' | '[' | '{' => {
                depth += 1;
                out.push(if depth > MAX_NESTING { ' ' } else { c });
            }
            ')' | ']' | '}' => {
                out.push(if depth > MAX_NESTING { ' ' } else { c });
                depth = depth.saturating_sub(1);
            }
            _ => out.push(c),
        }
    }
    Some(out)
}

/// A parsed program: the first construct that reaches the system.
fn judge_module(module: &ModModule) -> Option<&'static str> {
    let mut judge = Judge { hit: None };
    for stmt in &module.body {
        // A name standing alone as a whole statement ("open", "eval") is a
        // word, not a use.
        if let Stmt::Expr(e) = stmt {
            let bare = match &*e.value {
                Expr::Name(_) => true,
                Expr::Tuple(t) => t.elts.iter().all(Expr::is_name_expr),
                _ => false,
            };
            if bare {
                continue;
            }
        }
        judge.visit_stmt(stmt);
        if judge.hit.is_some() {
            break;
        }
    }
    judge.hit
}

/// Walks a tree and records the first construct that reaches the system.
struct Judge {
    hit: Option<&'static str>,
}

impl Judge {
    fn found(&mut self, what: &'static str) {
        if self.hit.is_none() {
            self.hit = Some(what);
        }
    }

    /// An English builtin passed on as a value (`map(open, ...)`,
    /// `x = compile`, a default, a decorator).
    fn passed_on(&mut self, value: &Expr) {
        if let Expr::Name(n) = value
            && ENGLISH.contains(&n.id.as_str())
        {
            self.found("a builtin that opens files or evaluates code, passed on as a value");
        }
    }
}

impl<'a> Visitor<'a> for Judge {
    fn visit_stmt(&mut self, stmt: &'a Stmt) {
        if self.hit.is_some() {
            return;
        }
        match stmt {
            Stmt::Import(import)
                if import
                    .names
                    .iter()
                    .any(|a| is_system_module(module_root(a.name.id.as_str()))) =>
            {
                self.found("an import of a system module");
                return;
            }
            Stmt::ImportFrom(from) => {
                let module = from.module.as_ref().map_or("", |m| m.id.as_str());
                if from.level == 0 && is_system_module(module_root(module)) {
                    self.found("an import of a system module");
                    return;
                }
                if from.names.iter().any(|a| is_strong(a.name.id.as_str())) {
                    self.found("an import of an evaluating builtin");
                    return;
                }
            }
            Stmt::Assign(assign) => self.passed_on(&assign.value),
            _ => {}
        }
        walk_stmt(self, stmt);
    }

    fn visit_decorator(&mut self, decorator: &'a Decorator) {
        self.passed_on(&decorator.expression);
        self.visit_expr(&decorator.expression);
    }

    fn visit_parameters(&mut self, parameters: &'a Parameters) {
        for p in parameters.iter_non_variadic_params() {
            if let Some(default) = p.default() {
                self.passed_on(default);
            }
        }
        ruff_python_ast::visitor::walk_parameters(self, parameters);
    }

    fn visit_expr(&mut self, expr: &'a Expr) {
        if self.hit.is_some() {
            return;
        }
        match expr {
            Expr::Name(n) if is_strong(n.id.as_str()) => {
                self.found(if STRONG.contains(&n.id.as_str()) {
                    "a use of an evaluating or reflective builtin"
                } else {
                    "a dunder name"
                });
                return;
            }
            Expr::Attribute(a) => {
                if is_dunder(a.attr.id.as_str()) {
                    self.found("a dunder attribute");
                    return;
                }
                match &*a.value {
                    Expr::Name(m) if WALK_MODULES.contains(&m.id.as_str()) => {
                        self.found("an attribute walk from a system module");
                        return;
                    }
                    Expr::Call(c) if is_english_call(c) => {
                        self.found("a use of what a file or reflection builtin returns");
                        return;
                    }
                    _ => {}
                }
            }
            Expr::Subscript(s) => {
                if let Expr::StringLiteral(key) = &*s.slice
                    && looked_up(key.value.to_str())
                {
                    self.found("a builtins lookup by name");
                    return;
                }
                if let Expr::Call(c) = &*s.value
                    && is_english_call(c)
                {
                    self.found("a use of what a file or reflection builtin returns");
                    return;
                }
            }
            Expr::Call(call) => {
                match &*call.func {
                    Expr::Name(n) if STRONG.contains(&n.id.as_str()) => {
                        self.found(if matches!(n.id.as_str(), "getattr" | "setattr" | "delattr") {
                            "a reflective builtin call"
                        } else {
                            "a call of an evaluating builtin"
                        });
                        return;
                    }
                    Expr::Attribute(a)
                        if a.attr.id.as_str() == "get"
                            && call.arguments.args.first().is_some_and(
                                |k| matches!(k, Expr::StringLiteral(key) if looked_up(key.value.to_str())),
                            ) =>
                    {
                        self.found("a builtins lookup by name");
                        return;
                    }
                    Expr::Name(n)
                        if matches!(n.id.as_str(), "open" | "compile")
                            && call
                                .arguments
                                .args
                                .iter()
                                .chain(call.arguments.keywords.iter().map(|k| &k.value))
                                .any(|a| !matches!(a, Expr::Name(_) | Expr::NumberLiteral(_))) =>
                    {
                        self.found(if n.id.as_str() == "open" {
                            "a file opened by name"
                        } else {
                            "a call of compile"
                        });
                        return;
                    }
                    Expr::Call(inner) if is_english_call(inner) => {
                        self.found("a use of what a file or reflection builtin returns");
                        return;
                    }
                    Expr::Attribute(a) => {
                        if let Expr::Name(m) = &*a.value
                            && WORD_MODULES.contains(&m.id.as_str())
                            && !matches!(m.id.as_str(), "code" | "types" | "inspect")
                        {
                            self.found("a call into a system module");
                            return;
                        }
                    }
                    _ => {}
                }
                for arg in call
                    .arguments
                    .args
                    .iter()
                    .chain(call.arguments.keywords.iter().map(|k| &k.value))
                {
                    self.passed_on(arg);
                }
            }
            _ => {}
        }
        // The callee of an English builtin is judged above; do not judge
        // it again as a bare reference.
        walk_expr(self, expr);
    }
}

/// A name looked up in a namespace (`x['__import__']`, `d.get('eval')`).
fn looked_up(key: &str) -> bool {
    is_strong(key) || matches!(key, "open" | "compile" | "system" | "popen")
}

/// `open(...)`, `compile(...)`, `globals()`, `locals()`, `vars(...)`.
fn is_english_call(call: &ruff_python_ast::ExprCall) -> bool {
    matches!(&*call.func, Expr::Name(n) if ENGLISH.contains(&n.id.as_str()))
}

#[cfg(test)]
mod tests;
