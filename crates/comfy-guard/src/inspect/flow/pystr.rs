//! Python's string operations as ComfyUI's string nodes run them, over
//! every alternative a value may take (the evaluator in `flow.rs` calls
//! these).

use crate::eval::MAX_ALTERNATIVES;

/// Every concatenation of one alternative from each part, capped just past
/// [`MAX_ALTERNATIVES`] (the caller turns that into unknown).
pub(super) fn product(parts: &[Vec<String>]) -> Vec<String> {
    let mut out = vec![String::new()];
    for part in parts {
        let mut next = Vec::new();
        'outer: for prefix in &out {
            for piece in part {
                next.push(format!("{prefix}{piece}"));
                if next.len() > MAX_ALTERNATIVES {
                    break 'outer;
                }
            }
        }
        out = next;
    }
    out
}

/// Python's `s.replace(find, with)`, within `max_len`. An empty `find`
/// matches before every character and at the end: `"ab".replace("", "X")`
/// is `"XaXbX"`, and `"".replace("", "X")` is `"X"`.
pub(super) fn py_replace(s: &str, find: &str, with: &str, max_len: usize) -> Option<String> {
    let out = if find.is_empty() {
        let n = s.chars().count() + 1;
        if s.len().saturating_add(n.saturating_mul(with.len())) > max_len {
            return None;
        }
        let mut out = String::with_capacity(s.len() + n * with.len());
        out.push_str(with);
        for c in s.chars() {
            out.push(c);
            out.push_str(with);
        }
        out
    } else {
        let count = s.matches(find).count();
        if s.len().saturating_add(count.saturating_mul(with.len())) > max_len.saturating_add(count * find.len()) {
            return None;
        }
        s.replace(find, with)
    };
    Some(out)
}

/// Python's `template.format(**fields)` for plain `{name}` fields and
/// `{{`/`}}`; `None` for anything richer (conversions, format specs,
/// attribute or index access, positional fields), which the inspector does
/// not evaluate.
pub(super) fn py_format(template: &str, fields: &[(String, String)]) -> Option<String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("{{") {
            out.push('{');
            rest = after;
        } else if let Some(after) = tail.strip_prefix("}}") {
            out.push('}');
            rest = after;
        } else if tail.starts_with('{') {
            let close = tail.find('}')?;
            let name = &tail[1..close];
            let (_, value) = fields.iter().find(|(n, _)| n == name)?;
            out.push_str(value);
            rest = &tail[close + 1..];
        } else {
            return None;
        }
    }
    out.push_str(rest);
    Some(out)
}

/// Whether Python's `str.title()` and `capitalize()` treat `c` as cased.
fn cased(c: char) -> bool {
    c.is_lowercase() || c.is_uppercase()
}

/// `CaseConverter`'s modes, as ComfyUI applies them.
pub(super) fn convert_case(s: &str, mode: Option<&str>) -> String {
    match mode {
        Some("UPPERCASE") => s.to_uppercase(),
        Some("lowercase") => s.to_lowercase(),
        Some("Capitalize") => {
            let mut chars = s.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars.flat_map(char::to_lowercase)).collect(),
                None => String::new(),
            }
        }
        Some("Title Case") => {
            let mut out = String::with_capacity(s.len());
            let mut start = true;
            for c in s.chars() {
                if start {
                    out.extend(c.to_uppercase());
                } else {
                    out.extend(c.to_lowercase());
                }
                start = !cased(c);
            }
            out
        }
        _ => s.to_owned(),
    }
}

/// Python's `s[start:end]` over characters.
pub(super) fn slice(s: &str, start: i64, end: i64) -> String {
    let len = i64::try_from(s.chars().count()).unwrap_or(i64::MAX);
    let clamp = |i: i64| if i < 0 { (len + i).max(0) } else { i.min(len) };
    let (from, to) = (clamp(start), clamp(end));
    if from >= to {
        return String::new();
    }
    let skip = usize::try_from(from).unwrap_or(usize::MAX);
    let take = usize::try_from(to - from).unwrap_or(0);
    s.chars().skip(skip).take(take).collect()
}

#[cfg(test)]
mod tests {
    use super::{convert_case, product, py_format, py_replace, slice};

    #[test]
    fn string_ops_match_python() {
        assert_eq!(slice("abcdef", 1, -1), "bcde");
        assert_eq!(slice("abcdef", -2, 100), "ef");
        assert_eq!(slice("abc", 2, 1), "");
        assert_eq!(convert_case("hello wORLD", Some("Title Case")), "Hello World");
        assert_eq!(convert_case("hello wORLD", Some("Capitalize")), "Hello world");
        assert_eq!(product(&[vec!["a".into(), "b".into()], vec!["1".into()]]), ["a1", "b1"]);
        assert_eq!(convert_case("中a 1b", Some("Title Case")), "中A 1B");
        // Values checked against CPython 3.11.
        assert_eq!(py_replace("ab", "", "X", 100).as_deref(), Some("XaXbX"));
        assert_eq!(py_replace("", "", "__imp", 100).as_deref(), Some("__imp"));
        assert_eq!(py_replace("aaa", "a", "bb", 100).as_deref(), Some("bbbbbb"));
        assert_eq!(py_replace("ab", "", "XXXX", 5), None);
        let f = [("a".to_owned(), "1".to_owned())];
        assert_eq!(py_format("{{{a}}}-{a}", &f).as_deref(), Some("{1}-1"));
        assert_eq!(py_format("{a.__class__}", &f), None);
        assert_eq!(py_format("{0}", &f), None);
    }
}
