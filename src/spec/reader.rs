//! A walker over a parsed TOML document that records every problem it meets,
//! with its position, instead of stopping at the first one.

use std::ops::Range;

use toml_edit::{Item, TableLike, Value};

use super::{
    suggest::{shorten, suggest},
    SpecError,
};

/// A byte range in the spec text (`None` when the parser kept none).
pub(crate) type Span = Option<Range<usize>>;

/// A value and where it was written.
#[derive(Debug, Clone)]
pub(crate) struct At<T> {
    pub v: T,
    pub span: Span,
}

/// A table being read, and what to call it in messages.
#[derive(Clone)]
pub(crate) struct Tab<'a> {
    pub t: &'a dyn TableLike,
    pub span: Span,
    /// Dotted path, empty for the top level (`stages`, `triggers.cron`).
    pub path: String,
}

impl<'a> Tab<'a> {
    /// The top-level table.
    pub fn root(t: &'a dyn TableLike) -> Self {
        Tab { t, span: Some(0..0), path: String::new() }
    }

    /// How the table is named in messages: `[stages.retry]` or `the top level`.
    pub fn label(&self) -> String {
        if self.path.is_empty() {
            "the top level".into()
        } else {
            format!("[{}]", self.path)
        }
    }

    /// The item under `key` and its span (the value's, else the key's).
    pub fn get(&self, key: &str) -> Option<(&'a Item, Span)> {
        let item = self.t.get(key)?;
        let span = item.span().or_else(|| self.key_span(key)).or_else(|| self.span.clone());
        Some((item, span))
    }

    /// Where the key `key` is written.
    pub fn key_span(&self, key: &str) -> Span {
        self.t.key(key).and_then(|k| k.span())
    }

    fn child_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }
}

/// Collects problems, each at a position in the spec text.
pub(crate) struct Reader<'s> {
    file: &'s str,
    line_starts: Vec<usize>,
    src: &'s str,
    errors: Vec<(usize, SpecError)>,
}

impl<'s> Reader<'s> {
    pub fn new(file: &'s str, src: &'s str) -> Self {
        let line_starts =
            std::iter::once(0).chain(memchr::memchr_iter(b'\n', src.as_bytes()).map(|i| i + 1)).collect();
        Reader { file, line_starts, src, errors: Vec::new() }
    }

    /// Records a problem at `span` (the start of the text when unknown).
    pub fn error(&mut self, span: &Span, message: impl Into<String>) {
        let offset = span.as_ref().map_or(0, |r| r.start).min(self.src.len());
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts[line - 1];
        let col = self.src.get(start..offset).map_or(1, |s| s.chars().count() + 1);
        let err = SpecError { file: self.file.to_owned(), line, col, message: message.into() };
        self.errors.push((offset, err));
    }

    /// Every problem so far, in the order they appear in the text.
    pub fn into_errors(mut self) -> Vec<SpecError> {
        self.errors.sort_by_key(|(offset, _)| *offset);
        self.errors.into_iter().map(|(_, e)| e).collect()
    }

    /// The text at `span`, shortened for messages.
    pub fn text(&self, span: &Span) -> String {
        let raw = span.as_ref().and_then(|r| self.src.get(r.clone())).unwrap_or("");
        shorten(raw.trim(), 40)
    }

    fn wrong_type(
        &mut self,
        t: &Tab<'_>,
        key: &str,
        item: &Item,
        span: &Span,
        expected: &str,
        example: &str,
    ) {
        let found = kind(item);
        let text = self.text(span);
        let fix = match item.as_str() {
            Some(inner) if expected == "an integer" && inner.trim().parse::<i64>().is_ok() => {
                format!("remove the quotes: {key} = {}", inner.trim())
            }
            Some(inner) if expected == "a number" && inner.trim().parse::<f64>().is_ok() => {
                format!("remove the quotes: {key} = {}", inner.trim())
            }
            Some(inner) if expected == "a boolean" && matches!(inner.trim(), "true" | "false") => {
                format!("remove the quotes: {key} = {}", inner.trim())
            }
            _ => format!("e.g. {key} = {example}"),
        };
        let shown = if text.is_empty() { String::new() } else { format!(" ({text})") };
        self.error(span, format!("{key} in {} must be {expected}, found {found}{shown}: {fix}", t.label()));
    }

    /// A string value.
    pub fn string(&mut self, t: &Tab<'_>, key: &str) -> Option<At<String>> {
        let (item, span) = t.get(key)?;
        match item.as_str() {
            Some(s) => Some(At { v: s.to_owned(), span }),
            None => {
                self.wrong_type(t, key, item, &span, "a string", "\"...\"");
                None
            }
        }
    }

    /// An integer value.
    pub fn int(&mut self, t: &Tab<'_>, key: &str) -> Option<At<i64>> {
        let (item, span) = t.get(key)?;
        match item.as_integer() {
            Some(i) => Some(At { v: i, span }),
            None => {
                self.wrong_type(t, key, item, &span, "an integer", "1");
                None
            }
        }
    }

    /// A number (integer or float) value.
    pub fn number(&mut self, t: &Tab<'_>, key: &str) -> Option<At<f64>> {
        let (item, span) = t.get(key)?;
        match item.as_float().or_else(|| item.as_integer().map(|i| i as f64)) {
            Some(f) => Some(At { v: f, span }),
            None => {
                self.wrong_type(t, key, item, &span, "a number", "1.0");
                None
            }
        }
    }

    /// A boolean value.
    pub fn boolean(&mut self, t: &Tab<'_>, key: &str) -> Option<At<bool>> {
        let (item, span) = t.get(key)?;
        match item.as_bool() {
            Some(b) => Some(At { v: b, span }),
            None => {
                self.wrong_type(t, key, item, &span, "a boolean", "true");
                None
            }
        }
    }

    /// One of `allowed` (compared case-insensitively when `any_case`), as its index.
    pub fn choice(&mut self, t: &Tab<'_>, key: &str, allowed: &[&str], any_case: bool) -> Option<At<usize>> {
        let s = self.string(t, key)?;
        let found =
            allowed.iter().position(|a| if any_case { a.eq_ignore_ascii_case(&s.v) } else { *a == s.v });
        if found.is_none() {
            let hint = suggest(&s.v, allowed).map(|g| format!("did you mean {g:?}? ")).unwrap_or_default();
            self.error(
                &s.span,
                format!("{key} {:?} is not valid: {hint}use one of {}", s.v, allowed.join(", ")),
            );
        }
        found.map(|v| At { v, span: s.span })
    }

    /// An array of strings; a plain string is refused with the fix.
    pub fn str_list(&mut self, t: &Tab<'_>, key: &str) -> Option<At<Vec<String>>> {
        let (item, span) = t.get(key)?;
        if let Some(s) = item.as_str() {
            let words: Vec<String> = s.split_whitespace().map(|w| format!("{w:?}")).collect();
            let example = if words.is_empty() { "\"prog\", \"arg\"".to_owned() } else { words.join(", ") };
            self.error(
                &span,
                format!(
                    "{key} must be an array of strings, not the string {s:?}: use an array, e.g. [{example}]"
                ),
            );
            return None;
        }
        let Some(array) = item.as_array() else {
            self.wrong_type(t, key, item, &span, "an array of strings", "[\"prog\", \"arg\"]");
            return None;
        };
        let mut out = Vec::with_capacity(array.len());
        for v in array.iter() {
            match v.as_str() {
                Some(s) => out.push(s.to_owned()),
                None => {
                    let vs = v.span();
                    let text = self.text(&vs);
                    self.error(
                        &vs,
                        format!("{key} must hold only strings, found {text}: quote it, e.g. \"{text}\""),
                    );
                }
            }
        }
        (out.len() == array.len()).then_some(At { v: out, span })
    }

    /// A sub-table (a `[header]` table or an inline table).
    pub fn table<'a>(&mut self, t: &Tab<'a>, key: &str) -> Option<Tab<'a>> {
        let (item, span) = t.get(key)?;
        match item.as_table_like() {
            Some(sub) => Some(Tab { t: sub, span, path: t.child_path(key) }),
            None => {
                let path = t.child_path(key);
                self.wrong_type(t, key, item, &span, "a table", &format!("{{ ... }} or a [{path}] section"));
                None
            }
        }
    }

    /// An array of tables (`[[key]]` sections or an array of inline tables).
    pub fn tables<'a>(&mut self, t: &Tab<'a>, key: &str) -> Option<At<Vec<Tab<'a>>>> {
        let (item, span) = t.get(key)?;
        let path = t.child_path(key);
        if let Some(aot) = item.as_array_of_tables() {
            let v = aot.iter().map(|tb| Tab { t: tb, span: tb.span(), path: path.clone() }).collect();
            return Some(At { v, span });
        }
        if let Some(array) = item.as_array() {
            let mut out = Vec::new();
            for v in array.iter() {
                match v {
                    Value::InlineTable(it) => out.push(Tab { t: it, span: v.span(), path: path.clone() }),
                    other => {
                        let vs = other.span();
                        let text = self.text(&vs);
                        self.error(
                            &vs,
                            format!("{key} must hold only tables, found {text}: write {{ key = value }}"),
                        );
                    }
                }
            }
            return (out.len() == array.len()).then_some(At { v: out, span });
        }
        let fix = if item.is_table() {
            format!("write [[{path}]], not [{path}]")
        } else {
            format!("write [[{path}]]")
        };
        self.error(
            &span,
            format!("{key} in {} must be an array of tables, found {}: {fix}", t.label(), kind(item)),
        );
        None
    }

    /// A table of string values, in written order.
    pub fn str_map(&mut self, t: &Tab<'_>, key: &str) -> Option<Vec<(At<String>, At<String>)>> {
        let sub = self.table(t, key)?;
        let mut out = Vec::new();
        for (k, item) in sub.t.iter() {
            let kspan = sub.key_span(k);
            match item.as_str() {
                Some(v) => {
                    out.push((At { v: k.to_owned(), span: kspan }, At { v: v.to_owned(), span: item.span() }))
                }
                None => {
                    let vspan = item.span().or(kspan);
                    self.wrong_type(&sub, k, item, &vspan, "a string", "\"value\"");
                }
            }
        }
        Some(out)
    }

    /// Reports the missing required `key` at the table that lacks it.
    pub fn missing(&mut self, t: &Tab<'_>, key: &str, example: &str) {
        self.error(
            &t.span,
            format!("{} is missing the required key {key}: add {key} = {example}", t.label()),
        );
    }

    /// Reports every key of `t` that is not in `allowed`, with a suggestion when one is close.
    pub fn check_keys(&mut self, t: &Tab<'_>, allowed: &[&str]) {
        for (k, _) in t.t.iter() {
            if allowed.contains(&k) {
                continue;
            }
            let span = t.key_span(k).or_else(|| t.span.clone());
            let fix = match suggest(k, allowed) {
                Some(g) => format!("did you mean {g}?"),
                None => format!("allowed keys are {}", allowed.join(", ")),
            };
            self.error(&span, format!("unknown key {k} in {}: {fix}", t.label()));
        }
    }
}

/// What kind of TOML item this is, for messages.
pub(crate) fn kind(item: &Item) -> &'static str {
    match item {
        Item::None => "nothing",
        Item::Table(_) => "a table",
        Item::ArrayOfTables(_) => "an array of tables",
        Item::Value(v) => match v {
            Value::String(_) => "a string",
            Value::Integer(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Boolean(_) => "a boolean",
            Value::Datetime(_) => "a date-time",
            Value::Array(_) => "an array",
            Value::InlineTable(_) => "a table",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_lines_and_columns() {
        let src = "a = 1\nbé = 2\n";
        let mut r = Reader::new("x.toml", src);
        r.error(&Some(11..12), "m");
        r.error(&None, "first");
        let errs = r.into_errors();
        assert_eq!(errs[0].to_string(), "x.toml:1:1: first");
        assert_eq!((errs[1].line, errs[1].col), (2, 5));
    }
}
