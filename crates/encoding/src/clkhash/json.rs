//! A JSON cursor that remembers its path, so every schema error names its location
//! (`features[2].hashing.strategy`).

use serde_json::{Map, Value};

use crate::EncodingError;

#[derive(Clone, Copy)]
pub(crate) struct Node<'a> {
    pub(crate) value: &'a Value,
    path: &'a str,
}

/// Owns the path strings of child nodes.
pub(crate) struct Located<'a> {
    pub(crate) value: &'a Value,
    pub(crate) path: String,
}

impl<'a> Located<'a> {
    pub(crate) fn root(value: &'a Value) -> Self {
        Self {
            value,
            path: String::new(),
        }
    }

    pub(crate) fn node(&self) -> Node<'_> {
        Node {
            value: self.value,
            path: &self.path,
        }
    }
}

impl<'a> Node<'a> {
    pub(crate) fn path(&self) -> &str {
        if self.path.is_empty() {
            "(top level)"
        } else {
            self.path
        }
    }

    pub(crate) fn error(&self, message: impl Into<String>) -> EncodingError {
        EncodingError::schema(self.path(), message)
    }

    fn child_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub(crate) fn object(&self) -> Result<&'a Map<String, Value>, EncodingError> {
        self.value
            .as_object()
            .ok_or_else(|| self.error("expected an object"))
    }

    /// Rejects keys outside `allowed` (the master schema's `additionalProperties: false`).
    pub(crate) fn only_keys(&self, allowed: &[&str]) -> Result<(), EncodingError> {
        for key in self.object()?.keys() {
            if !allowed.contains(&key.as_str()) {
                return Err(self.error(format!(
                    "unknown key '{key}' (allowed: {})",
                    allowed.join(", ")
                )));
            }
        }
        Ok(())
    }

    pub(crate) fn get(&self, key: &str) -> Result<Option<Located<'a>>, EncodingError> {
        Ok(self.object()?.get(key).map(|value| Located {
            value,
            path: self.child_path(key),
        }))
    }

    pub(crate) fn require(&self, key: &str) -> Result<Located<'a>, EncodingError> {
        self.get(key)?
            .ok_or_else(|| self.error(format!("missing required key '{key}'")))
    }

    pub(crate) fn items(&self) -> Result<Vec<Located<'a>>, EncodingError> {
        let array = self
            .value
            .as_array()
            .ok_or_else(|| self.error("expected an array"))?;
        Ok(array
            .iter()
            .enumerate()
            .map(|(i, value)| Located {
                value,
                path: format!("{}[{i}]", self.path),
            })
            .collect())
    }

    pub(crate) fn str(&self) -> Result<&'a str, EncodingError> {
        self.value
            .as_str()
            .ok_or_else(|| self.error("expected a string"))
    }

    pub(crate) fn bool(&self) -> Result<bool, EncodingError> {
        self.value
            .as_bool()
            .ok_or_else(|| self.error("expected true or false"))
    }

    pub(crate) fn int(&self) -> Result<i64, EncodingError> {
        self.value
            .as_i64()
            .ok_or_else(|| self.error("expected an integer"))
    }

    pub(crate) fn int_at_least(&self, min: i64) -> Result<i64, EncodingError> {
        let v = self.int()?;
        if v < min {
            return Err(self.error(format!("must be at least {min}, found {v}")));
        }
        Ok(v)
    }

    pub(crate) fn number(&self) -> Result<f64, EncodingError> {
        self.value
            .as_f64()
            .ok_or_else(|| self.error("expected a number"))
    }
}
