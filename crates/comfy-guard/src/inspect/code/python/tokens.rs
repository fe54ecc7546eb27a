//! The fallback for Python that does not parse: its tokens, judged one
//! name or keyword at a time.

use ruff_python_ast::token::{Token, TokenKind};
use ruff_text_size::Ranged;
use unicode_normalization::UnicodeNormalization;

use super::{ENGLISH, WALK_MODULES, is_dunder, is_strong, is_system_module, looked_up};

/// The tokens of text that does not parse.
pub(super) fn judge_tokens(text: &str, tokens: &[Token]) -> Option<&'static str> {
    let sig: Vec<(TokenKind, &str)> = tokens
        .iter()
        .filter(|t| {
            !matches!(
                t.kind(),
                TokenKind::Comment
                    | TokenKind::NonLogicalNewline
                    | TokenKind::Newline
                    | TokenKind::Indent
                    | TokenKind::Dedent
                    | TokenKind::EndOfFile
            )
        })
        .map(|t| {
            let r = t.range();
            (
                t.kind(),
                text.get(usize::from(r.start())..usize::from(r.end())).unwrap_or(""),
            )
        })
        .collect();
    let name_at = |i: usize| -> Option<String> {
        match sig.get(i) {
            Some((TokenKind::Name, s)) if s.is_ascii() => Some((*s).to_owned()),
            Some((TokenKind::Name, s)) => Some(s.nfkc().collect()),
            _ => None,
        }
    };
    let kind_at = |i: usize| sig.get(i).map(|(k, _)| *k);
    for i in 0..sig.len() {
        match sig[i].0 {
            TokenKind::Import => {
                if let Some(m) = name_at(i + 1)
                    && is_system_module(m.as_str())
                {
                    return Some("an import of a system module");
                }
            }
            TokenKind::From => {
                if let Some(m) = name_at(i + 1)
                    && is_system_module(m.as_str())
                    && (i + 2..sig.len().min(i + 12)).any(|j| kind_at(j) == Some(TokenKind::Import))
                {
                    return Some("an import of a system module");
                }
            }
            TokenKind::Lsqb => {
                if let (Some((TokenKind::String, lit)), Some(TokenKind::Rsqb)) = (sig.get(i + 1), kind_at(i + 2))
                    && looked_up(lit.trim_matches(|c| c == '\'' || c == '"'))
                {
                    return Some("a builtins lookup by name");
                }
            }
            TokenKind::Name => {
                let Some(name) = name_at(i) else { continue };
                let prev = i.checked_sub(1).and_then(kind_at);
                // What follows the name, past closing brackets: `(exec)(`.
                let mut j = i + 1;
                while kind_at(j) == Some(TokenKind::Rpar) {
                    j += 1;
                }
                let next = kind_at(j);
                let applied = matches!(next, Some(TokenKind::Lpar | TokenKind::Dot | TokenKind::Lsqb));
                if is_strong(&name) {
                    if applied || prev == Some(TokenKind::At) {
                        return Some(if is_dunder(&name) {
                            "a dunder name"
                        } else {
                            "a use of an evaluating or reflective builtin"
                        });
                    }
                    if prev == Some(TokenKind::Dot) && is_dunder(&name) {
                        return Some("a dunder attribute");
                    }
                }
                if WALK_MODULES.contains(&name.as_str())
                    && next == Some(TokenKind::Dot)
                    && j == i + 1
                    && prev != Some(TokenKind::Dot)
                    && kind_at(j + 1) == Some(TokenKind::Name)
                    && matches!(kind_at(j + 2), Some(TokenKind::Lpar | TokenKind::Dot | TokenKind::Lsqb))
                {
                    return Some("an attribute walk from a system module");
                }
                if ENGLISH.contains(&name.as_str())
                    && j == i + 1
                    && next == Some(TokenKind::Lpar)
                    && english_call_is_code(&name, &sig, j)
                {
                    return Some("a use of a file or reflection builtin");
                }
            }
            _ => {}
        }
    }
    None
}

/// `open(` / `globals(` at `lpar` in prose that does not parse: code when
/// the first argument is a string, or what the call returns is used.
fn english_call_is_code(name: &str, sig: &[(TokenKind, &str)], lpar: usize) -> bool {
    let first = sig.get(lpar + 1).map(|(k, _)| *k);
    if matches!(name, "open" | "compile") && matches!(first, Some(TokenKind::String | TokenKind::FStringStart)) {
        return true;
    }
    // Find the matching parenthesis (bounded).
    let mut depth = 0usize;
    for (k, (kind, _)) in sig.iter().enumerate().skip(lpar).take(256) {
        match kind {
            TokenKind::Lpar => depth += 1,
            TokenKind::Rpar => {
                depth -= 1;
                if depth == 0 {
                    return matches!(
                        sig.get(k + 1).map(|(k, _)| *k),
                        Some(TokenKind::Dot | TokenKind::Lsqb | TokenKind::Lpar)
                    );
                }
            }
            _ => {}
        }
    }
    false
}
