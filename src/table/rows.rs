//! [`Rows`]: many items with the same attribute names, packed into one buffer.
//!
//! A bulk load (the `orders` job writes a million rows of 15 attributes) spends
//! more time allocating, building and freeing one JSON map per item than
//! storing it. `Rows` holds the attribute names once and every row's key and
//! values back to back in one string, so pushing a row copies its values and
//! allocates nothing per value. [`super::Table::put_rows`] writes them; its
//! default turns them into [`Item`]s for `put_batch` (what the DynamoDB adapter
//! sends is the same either way), the SQLite table encodes them directly.

use serde_json::{Map, Value};

use super::{Item, Key, PK, SK};
use crate::error::PortError;

/// One value of a row.
#[derive(Debug, Clone, Copy)]
pub enum Cell<'a> {
    /// A string attribute.
    Str(&'a str),
    /// Any other attribute value.
    Json(&'a Value),
}

impl<'a> From<&'a str> for Cell<'a> {
    fn from(s: &'a str) -> Self {
        Cell::Str(s)
    }
}

impl<'a> From<&'a String> for Cell<'a> {
    fn from(s: &'a String) -> Self {
        Cell::Str(s)
    }
}

impl<'a> From<&'a Value> for Cell<'a> {
    fn from(v: &'a Value) -> Self {
        match v {
            Value::String(s) => Cell::Str(s),
            other => Cell::Json(other),
        }
    }
}

/// Marks a part that holds JSON text rather than a raw string.
const JSON_BIT: u32 = 1 << 31;

/// Rows that share attribute names: `pk`, `sk`, then one value per name.
#[derive(Debug, Clone)]
pub struct Rows {
    names: Vec<String>,
    /// Every part of every row back to back: pk, sk, values.
    buf: String,
    /// End offset of each part in `buf`; [`JSON_BIT`] set when the part is JSON text.
    ends: Vec<u32>,
}

/// A row borrowed from [`Rows`].
#[derive(Debug, Clone, Copy)]
pub struct RowRef<'a> {
    pub pk: &'a str,
    pub sk: &'a str,
    rows: &'a Rows,
    /// Index in `rows.ends` of this row's first value.
    first: usize,
}

impl Rows {
    /// Rows with attributes `names` (in this order). Names must be unique,
    /// non-empty, and not the key's (`pk`, `sk`).
    pub fn new<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Result<Rows, PortError> {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        for (i, name) in names.iter().enumerate() {
            if name.is_empty() || name == PK || name == SK {
                return Err(PortError::invalid(format!(
                    "attribute name {name:?} is not allowed in Rows: names must be non-empty and not {PK:?} or {SK:?} (the key is given per row)"
                )));
            }
            if names[..i].contains(name) {
                return Err(PortError::invalid(format!(
                    "attribute name {name:?} appears twice in Rows: name each attribute once"
                )));
            }
        }
        Ok(Rows { names, buf: String::new(), ends: Vec::new() })
    }

    /// The attribute names, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.ends.len() / self.width()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn width(&self) -> usize {
        self.names.len() + 2
    }

    /// Reserves room for `rows` more rows of about `bytes_per_row` bytes.
    pub fn reserve(&mut self, rows: usize, bytes_per_row: usize) {
        self.buf.reserve(rows * bytes_per_row);
        self.ends.reserve(rows * self.width());
    }

    /// Appends a row: its key (both parts non-empty), then exactly one value per name.
    pub fn push<'v, C: Into<Cell<'v>>>(
        &mut self,
        pk: &str,
        sk: &str,
        values: impl IntoIterator<Item = C>,
    ) -> Result<(), PortError> {
        if pk.is_empty() || sk.is_empty() {
            return Err(PortError::invalid(format!(
                "row ({pk:?}, {sk:?}) has an empty key part: give every row a non-empty {PK} and {SK}"
            )));
        }
        let (buf_len, ends_len) = (self.buf.len(), self.ends.len());
        self.part(pk, 0)?;
        self.part(sk, 0)?;
        let mut count = 0;
        for value in values {
            count += 1;
            if count > self.names.len() {
                break;
            }
            match value.into() {
                Cell::Str(s) => self.part(s, 0)?,
                Cell::Json(v) => {
                    let text = serde_json::to_string(v).map_err(|e| {
                        PortError::invalid(format!("cannot encode a value of row ({pk:?}, {sk:?}): {e}"))
                    })?;
                    self.part(&text, JSON_BIT)?
                }
            }
        }
        if count != self.names.len() {
            self.buf.truncate(buf_len);
            self.ends.truncate(ends_len);
            return Err(PortError::invalid(format!(
                "row ({pk:?}, {sk:?}) has {count}{} values for {} attribute names: give one value per name",
                if count > self.names.len() { "+" } else { "" },
                self.names.len()
            )));
        }
        Ok(())
    }

    fn part(&mut self, text: &str, flag: u32) -> Result<(), PortError> {
        self.buf.push_str(text);
        let end = u32::try_from(self.buf.len())
            .ok()
            .filter(|end| end & JSON_BIT == 0)
            .ok_or_else(|| PortError::invalid("Rows holds more than 2 GiB: write it in smaller batches"))?;
        self.ends.push(end | flag);
        Ok(())
    }

    fn span(&self, i: usize) -> (&str, bool) {
        let start = if i == 0 { 0 } else { (self.ends[i - 1] & !JSON_BIT) as usize };
        let end = self.ends[i];
        (&self.buf[start..(end & !JSON_BIT) as usize], end & JSON_BIT != 0)
    }

    /// The packed form, to send the rows to another process
    /// ([`crate::table::relay`]): the names, the buffer, and the end offset
    /// in it of every part (pk, sk, then each value; the high bit marks JSON text).
    pub fn packed(&self) -> (&[String], &str, &[u32]) {
        (&self.names, &self.buf, &self.ends)
    }

    /// Rows from their [`Rows::packed`] form, checked as [`Rows::push`] checks
    /// them: valid names, whole rows, offsets in order on character
    /// boundaries, non-empty keys, JSON values that parse.
    pub fn from_packed(names: Vec<String>, buf: String, ends: Vec<u32>) -> Result<Rows, PortError> {
        let rows = Rows { buf, ends, ..Rows::new(names)? };
        let bad = |what: String| PortError::invalid(format!("packed rows are not valid: {what}"));
        if !rows.ends.len().is_multiple_of(rows.width()) {
            return Err(bad(format!("{} parts are not whole rows of {}", rows.ends.len(), rows.width())));
        }
        let (mut start, mut column, width) = (0, 0, rows.width());
        for (i, &end) in rows.ends.iter().enumerate() {
            let at = (end & !JSON_BIT) as usize;
            if at < start || at > rows.buf.len() || !rows.buf.is_char_boundary(at) {
                return Err(bad(format!(
                    "part {i} ends at {at}, not between {start} and {}",
                    rows.buf.len()
                )));
            }
            // The column counted along (not `i % width`: a division per part,
            // 17 million of them in a million `orders` rows).
            if column < 2 && (at == start || end & JSON_BIT != 0) {
                return Err(bad(format!("part {i} is an empty or JSON key")));
            }
            if end & JSON_BIT != 0 {
                serde_json::from_str::<serde::de::IgnoredAny>(&rows.buf[start..at])
                    .map_err(|e| bad(format!("part {i} is marked JSON but is not: {e}")))?;
            }
            start = at;
            column = if column + 1 == width { 0 } else { column + 1 };
        }
        Ok(rows)
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> RowRef<'_> {
        let at = i * self.width();
        RowRef { pk: self.span(at).0, sk: self.span(at + 1).0, rows: self, first: at + 2 }
    }

    /// The rows in order.
    pub fn iter(&self) -> impl Iterator<Item = RowRef<'_>> {
        (0..self.len()).map(|i| self.row(i))
    }

    /// The rows as items (what `put_batch` takes).
    pub fn to_items(&self) -> Result<Vec<Item>, PortError> {
        self.iter().map(|row| row.to_item()).collect()
    }
}

impl<'a> RowRef<'a> {
    /// The row's values with their names: `(name, text, is_json)`; a string
    /// value's text is the raw string, any other value's is its JSON.
    pub fn values(&self) -> impl Iterator<Item = (&'a str, &'a str, bool)> + 'a {
        let rows = self.rows;
        let first = self.first;
        rows.names.iter().enumerate().map(move |(j, name)| {
            let (text, json) = rows.span(first + j);
            (name.as_str(), text, json)
        })
    }

    /// The row as an item.
    pub fn to_item(&self) -> Result<Item, PortError> {
        let mut attrs = Map::new();
        for (name, text, json) in self.values() {
            let value = if json {
                serde_json::from_str(text).map_err(|e| {
                    PortError::backend(format!("Rows holds a value that is not JSON: {e}")).caused_by(e)
                })?
            } else {
                Value::String(text.to_owned())
            };
            attrs.insert(name.to_owned(), value);
        }
        Ok(Item { key: Key::new(self.pk, self.sk), attrs })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_packed_form_round_trips_and_bad_ones_are_refused() {
        let mut rows = Rows::new(["name", "n"]).unwrap();
        rows.push("p1", "s", [Cell::Str("é\"x"), Cell::Json(&json!({"a": [1]}))]).unwrap();
        rows.push("p2", "t", [Cell::Str(""), Cell::Json(&json!(2))]).unwrap();
        let (names, buf, ends) = rows.packed();
        let back = Rows::from_packed(names.to_vec(), buf.to_owned(), ends.to_vec()).unwrap();
        assert_eq!(back.to_items().unwrap(), rows.to_items().unwrap());
        let refused = |names: Vec<String>, buf: &str, ends: Vec<u32>, says: &str| {
            let err = Rows::from_packed(names, buf.to_owned(), ends).unwrap_err();
            assert!(matches!(err, PortError::Invalid(_)) && err.message().contains(says), "{err}");
        };
        let n = || vec!["v".to_owned()];
        refused(n(), "pks", vec![1, 2], "not whole rows");
        refused(n(), "pks", vec![1, 5, 3], "ends at 5");
        refused(n(), "pké", vec![1, 3, 4], "ends at 3");
        refused(n(), "ps{", vec![1, 2, 3 | JSON_BIT], "marked JSON");
        refused(n(), "psv", vec![1, 1, 3], "empty or JSON key");
        refused(vec!["pk".into()], "psv", vec![1, 2, 3], "not allowed");
    }

    #[test]
    fn rows_round_trip_to_items() {
        let mut rows = Rows::new(["name", "n"]).unwrap();
        rows.push("p1", "s", [Cell::Str("a\"b"), Cell::Json(&json!(3))]).unwrap();
        let n = json!({"x": [1, null]});
        rows.push("p2", "s", [Cell::from("é"), Cell::from(&n)]).unwrap();
        assert_eq!(rows.len(), 2);
        let items = rows.to_items().unwrap();
        assert_eq!(items[0], Item::new(Key::new("p1", "s")).with("name", "a\"b").with("n", 3));
        assert_eq!(items[1], Item::new(Key::new("p2", "s")).with("name", "é").with("n", n));
    }

    #[test]
    fn a_row_with_the_wrong_number_of_values_is_refused_and_not_kept() {
        let mut rows = Rows::new(["a", "b"]).unwrap();
        let err = rows.push("p", "s", ["x"]).unwrap_err();
        assert!(err.to_string().contains("has 1 values for 2 attribute names"), "{err}");
        let err = rows.push("p", "s", ["x", "y", "z"]).unwrap_err();
        assert!(err.to_string().contains("has 3+ values"), "{err}");
        assert!(rows.push("", "s", ["x", "y"]).unwrap_err().to_string().contains("empty key part"));
        assert!(rows.push("p", "", ["x", "y"]).is_err());
        assert!(rows.is_empty());
        rows.push("p", "s", ["x", "y"]).unwrap();
        assert_eq!(
            rows.row(0).values().map(|(n, t, _)| (n, t)).collect::<Vec<_>>(),
            [("a", "x"), ("b", "y")]
        );
    }

    #[test]
    fn names_must_be_unique_and_not_the_key() {
        assert!(Rows::new(["a", "a"]).unwrap_err().to_string().contains("appears twice"));
        assert!(Rows::new(["pk"]).unwrap_err().to_string().contains("not allowed"));
        assert!(Rows::new([""]).is_err());
        assert!(Rows::new(Vec::<String>::new()).is_ok());
    }
}
