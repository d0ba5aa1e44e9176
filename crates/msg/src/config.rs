//! Reading node settings from `env:` values through a lookup function, so tests never touch
//! the process environment. Every error names the key and the bad value.

use std::fmt::Display;
use std::str::FromStr;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("setting {key}={value:?}: {reason}")]
pub struct ConfigError {
    pub key: String,
    pub value: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(key: &str, value: &str, reason: impl Display) -> Self {
        Self {
            key: key.to_owned(),
            value: value.to_owned(),
            reason: reason.to_string(),
        }
    }
}

/// A lookup from setting names to values: `std::env::var` in nodes, a map in tests.
pub trait Lookup {
    fn get(&self, key: &str) -> Option<String>;

    /// The parsed value of `key`, or `default` when unset or empty.
    fn parse_or<T: FromStr>(&self, key: &str, default: T) -> Result<T, ConfigError>
    where
        T::Err: Display,
    {
        match self.get(key).filter(|v| !v.trim().is_empty()) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|e| ConfigError::new(key, &v, e)),
        }
    }

    /// The parsed value of `key`, which must be set.
    fn parse_required<T: FromStr>(&self, key: &str) -> Result<T, ConfigError>
    where
        T::Err: Display,
    {
        let v = self
            .get(key)
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| ConfigError::new(key, "", "must be set"))?;
        v.trim().parse().map_err(|e| ConfigError::new(key, &v, e))
    }

    /// A boolean: `true/false`, `1/0`, `yes/no`.
    fn flag_or(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(key).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if v.is_empty() => Ok(default),
            Some(v) if matches!(v.as_str(), "1" | "true" | "yes" | "on") => Ok(true),
            Some(v) if matches!(v.as_str(), "0" | "false" | "no" | "off") => Ok(false),
            Some(v) => Err(ConfigError::new(key, &v, "expected true or false")),
        }
    }
}

impl<F: Fn(&str) -> Option<String>> Lookup for F {
    fn get(&self, key: &str) -> Option<String> {
        self(key)
    }
}

/// The process environment, for node entry points.
pub fn env_lookup() -> impl Fn(&str) -> Option<String> {
    |k: &str| std::env::var(k).ok()
}

/// This process's node as dora started it (`DORA_NODE_CONFIG`: its id, its inputs and
/// outputs), read before connecting; `None` when started by hand.
pub fn dora_node() -> Result<Option<dora_message::daemon_to_node::NodeConfig>, ConfigError> {
    const KEY: &str = "DORA_NODE_CONFIG";
    match std::env::var(KEY) {
        Ok(raw) => serde_yaml::from_str(&raw)
            .map(Some)
            .map_err(|e| ConfigError::new(KEY, "…", e)),
        Err(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn parses_defaults_and_names_bad_values() {
        let l = map(&[("A", " 7 "), ("B", "x"), ("F", "yes"), ("E", "")]);
        assert_eq!(l.parse_or("A", 1u32), Ok(7));
        assert_eq!(l.parse_or("E", 3u32), Ok(3));
        assert_eq!(l.parse_or("MISSING", 3u32), Ok(3));
        let err = l.parse_or("B", 1u32).expect_err("bad");
        assert!(err.to_string().contains("B=\"x\""), "{err}");
        assert_eq!(l.flag_or("F", false), Ok(true));
        assert!(l.flag_or("B", false).is_err());
        assert!(l.parse_required::<u32>("MISSING").is_err());
    }
}
