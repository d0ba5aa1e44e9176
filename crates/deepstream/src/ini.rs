//! The INI dialect `DeepStream` reads (`GKeyFile`): `[group]`s of `key=value`, `#` comments.

use std::fmt::Display;
use std::path::{Path, PathBuf};

use eyre::{bail, eyre};
use vigil_config::Unit;

/// One `key=value` with where it stood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The file as the user would name it.
    pub file: PathBuf,
    pub line: usize,
    pub key: String,
    pub value: String,
}

impl Entry {
    /// `file:line: key=value`, the head of every message about this entry.
    pub fn at(&self) -> String {
        format!(
            "{}:{}: {}={}",
            self.file.display(),
            self.line,
            self.key,
            self.value
        )
    }

    /// The value parsed, or an error naming file, line, key and value.
    pub fn parse<T: std::str::FromStr>(&self, expected: &str) -> eyre::Result<T>
    where
        T::Err: Display,
    {
        self.value
            .parse()
            .map_err(|err| eyre!("{}: expected {expected} ({err})", self.at()))
    }

    /// A finite number.
    pub fn number(&self) -> eyre::Result<f32> {
        let v: f32 = self.parse("a number")?;
        if !v.is_finite() {
            bail!("{}: expected a finite number", self.at());
        }
        Ok(v)
    }

    /// `0`/`1` (or `false`/`true`).
    pub fn flag(&self) -> eyre::Result<bool> {
        match self.value.as_str() {
            "0" | "false" => Ok(false),
            "1" | "true" => Ok(true),
            _ => bail!("{}: expected 0 or 1", self.at()),
        }
    }

    /// A threshold in 0..=1.
    pub fn unit(&self) -> eyre::Result<Unit> {
        Unit::try_from(self.number()?).map_err(|_| eyre!("{}: expected 0..=1", self.at()))
    }

    /// `a;b;c` (empty items, as a trailing `;`, skipped).
    pub fn list<T: std::str::FromStr>(&self) -> Option<Vec<T>> {
        self.value
            .split(';')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(|x| x.parse().ok())
            .collect()
    }
}

/// One `[group]`: its name, the line of its header and its entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Group {
    pub name: String,
    pub line: usize,
    pub entries: Vec<Entry>,
}

/// The groups of an INI file in file order. As `GKeyFile` does, a group named twice is one
/// group and a key set twice in a group keeps its last value.
pub(crate) fn parse(path: &Path, text: &str) -> eyre::Result<Vec<Group>> {
    let mut groups: Vec<Group> = Vec::new();
    let mut current = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim();
            let at = groups.iter().position(|g| g.name == name);
            current = Some(at.unwrap_or_else(|| {
                groups.push(Group {
                    name: name.to_owned(),
                    line: i + 1,
                    entries: Vec::new(),
                });
                groups.len() - 1
            }));
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            bail!(
                "{}:{}: `{line}` is neither [group] nor key=value",
                path.display(),
                i + 1
            );
        };
        let Some(group) = current.and_then(|at| groups.get_mut(at)) else {
            bail!(
                "{}:{}: `{line}` comes before any [group]",
                path.display(),
                i + 1
            );
        };
        // A trailing `# comment` after the value is not part of it.
        let value = value.split(" #").next().unwrap_or_default().trim();
        set(
            &mut group.entries,
            Entry {
                file: path.to_owned(),
                line: i + 1,
                key: key.trim().to_owned(),
                value: value.to_owned(),
            },
        );
    }
    Ok(groups)
}

/// Adds `entry`, replacing an earlier one with the same key.
pub(crate) fn set(entries: &mut Vec<Entry>, entry: Entry) {
    entries.retain(|e| e.key != entry.key);
    entries.push(entry);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_merge_keys_keep_their_last_value_and_comments_go() {
        let text = "# head\n[a]\nx=1 # one\ny=2\n\n[b]\nz=3\n[a]\nx=4\n";
        let groups = parse(Path::new("f.txt"), text).expect("parses");
        assert_eq!(groups.len(), 2);
        let a = &groups[0];
        assert_eq!((a.name.as_str(), a.line), ("a", 2));
        let kv: Vec<(&str, &str, usize)> = a
            .entries
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str(), e.line))
            .collect();
        assert_eq!(kv, [("y", "2", 4), ("x", "4", 9)]);
        assert_eq!(a.entries[1].at(), "f.txt:9: x=4");
    }

    #[test]
    fn malformed_lines_name_file_and_line() {
        let e = parse(Path::new("f.txt"), "x=1\n")
            .expect_err("no group")
            .to_string();
        assert!(e.starts_with("f.txt:1:"), "{e}");
        let e = parse(Path::new("f.txt"), "[a]\n\nnonsense\n")
            .expect_err("no =")
            .to_string();
        assert!(e.starts_with("f.txt:3:"), "{e}");
    }

    #[test]
    fn values_are_checked_and_errors_name_the_entry() {
        let e = |value: &str| Entry {
            file: PathBuf::from("f.txt"),
            line: 7,
            key: "k".into(),
            value: value.into(),
        };
        assert_eq!(e("0.5").unit().ok(), Unit::try_from(0.5).ok());
        let err = e("1.5").unit().expect_err("range").to_string();
        assert!(err.starts_with("f.txt:7: k=1.5: expected 0..=1"), "{err}");
        assert!(e("inf").number().is_err());
        assert!(e("yes").flag().is_err());
        assert_eq!(e("1;2;3;").list::<u32>(), Some(vec![1, 2, 3]));
        assert_eq!(e("1;x").list::<u32>(), None);
    }
}
