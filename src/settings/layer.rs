//! A `Layer` is one source of settings: one profile file, or the command
//! line. It is the ordered list of what that source said, each value with
//! where it came from, so that an error can name the flag, or the file,
//! line and column.
//!
//! Merging is appending: a later layer's entries go after an earlier one's.
//! Reading gives the merge rule: a single value is the last one given, a
//! list is every value in order, and the filesystem entries of all keys
//! form one list in the order they apply.

use std::fmt;
use std::path::PathBuf;

use super::keys::{FsFlag, Key};

/// Where a value was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// On the command line, as this flag.
    Flag(&'static str),
    /// In a profile file, under this key.
    File {
        path: PathBuf,
        line: usize,
        col: usize,
        key: &'static str,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(flag) => write!(f, "{flag}"),
            Origin::File {
                path,
                line,
                col,
                key,
            } => write!(f, "{}:{line}:{col}: {key}", path.display()),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Val<T> {
    pub v: T,
    pub from: Origin,
}

impl<T> Val<T> {
    pub fn flag(v: T, flag: &'static str) -> Self {
        Val {
            v,
            from: Origin::Flag(flag),
        }
    }
}

/// One value of a key, already checked against the key's kind (a choice
/// is one of its words, an integer fits its type).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

/// The Rust types a key's values are read as.
pub trait FromValue: Sized {
    fn from_value(v: &Value) -> Option<Self>;
    fn into_value(self) -> Value;
}

impl FromValue for bool {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
    fn into_value(self) -> Value {
        Value::Bool(self)
    }
}

impl FromValue for String {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Str(s) => Some(s.clone()),
            _ => None,
        }
    }
    fn into_value(self) -> Value {
        Value::Str(self)
    }
}

impl FromValue for f64 {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }
    fn into_value(self) -> Value {
        Value::Float(self)
    }
}

macro_rules! int_value {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(v: &Value) -> Option<Self> {
                match v {
                    Value::Int(i) => <$t>::try_from(*i).ok(),
                    _ => None,
                }
            }
            fn into_value(self) -> Value {
                Value::Int(i64::from(self))
            }
        }
    )*};
}
int_value!(u16, u32, i32);

impl FromValue for u64 {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Int(i) => u64::try_from(*i).ok(),
            _ => None,
        }
    }
    fn into_value(self) -> Value {
        // Values come from i64 TOML integers or clap's u64 parser; the
        // few above i64::MAX saturate (a limit that large means none).
        Value::Int(i64::try_from(self).unwrap_or(i64::MAX))
    }
}

/// One source of settings, in the order it gave them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Layer {
    entries: Vec<(Key, Val<Value>)>,
}

impl Layer {
    /// Add one value (a list grows; a single value is replaced).
    pub fn push(&mut self, key: Key, v: Val<Value>) {
        self.entries.push((key, v));
    }

    /// Add a value given on the command line.
    pub fn with<T: FromValue>(mut self, key: Key, v: T) -> Self {
        self.push(key, Val::flag(v.into_value(), key.flag()));
        self
    }

    /// Apply `later` on top of `self`.
    pub fn merge(&mut self, later: Layer) {
        self.entries.extend(later.entries);
    }

    /// Every value given for `key`, in order.
    pub fn values(&self, key: Key) -> impl Iterator<Item = &Val<Value>> {
        self.entries
            .iter()
            .filter(move |(k, _)| *k == key)
            .map(|(_, v)| v)
    }

    /// The value in force for a single-valued key: the last one given.
    pub fn get<T: FromValue>(&self, key: Key) -> Option<Val<T>> {
        self.values(key).last().and_then(typed)
    }

    /// Every value of a list key, in order.
    pub fn list<T: FromValue>(&self, key: Key) -> Vec<Val<T>> {
        self.values(key).filter_map(typed).collect()
    }

    /// A switch that is on.
    pub fn on(&self, key: Key) -> bool {
        self.get::<bool>(key).is_some_and(|v| v.v)
    }

    /// The filesystem entries of every key, in the order they apply.
    pub fn fs(&self) -> Vec<(FsFlag, Val<String>)> {
        self.entries
            .iter()
            .filter_map(|(k, v)| Some((k.fs()?, typed(v)?)))
            .collect()
    }
}

fn typed<T: FromValue>(v: &Val<Value>) -> Option<Val<T>> {
    Some(Val {
        v: T::from_value(&v.v)?,
        from: v.from.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_scalars_win_and_lists_append() {
        let mut a = Layer::default()
            .with(Key::Uid, 1u32)
            .with(Key::ShareNet, true)
            .with(Key::Tmpfs, "/a".to_string());
        let b = Layer::default()
            .with(Key::Uid, 2u32)
            .with(Key::Dir, "/b".to_string());
        a.merge(b);
        assert_eq!(a.get::<u32>(Key::Uid).unwrap().v, 2);
        assert!(a.on(Key::ShareNet));
        let fs: Vec<_> = a.fs().into_iter().map(|(_, v)| v.v).collect();
        assert_eq!(fs, ["/a", "/b"]);
    }

    #[test]
    fn values_round_trip_through_their_types() {
        let l = Layer::default()
            .with(Key::AllowHostPort, 8080u16)
            .with(Key::PassFd, 3i32)
            .with(Key::Pids, 10u64)
            .with(Key::Cpus, 0.5f64);
        assert_eq!(l.list::<u16>(Key::AllowHostPort)[0].v, 8080);
        assert_eq!(l.list::<i32>(Key::PassFd)[0].v, 3);
        assert_eq!(l.get::<u64>(Key::Pids).unwrap().v, 10);
        assert_eq!(l.get::<f64>(Key::Cpus).unwrap().v, 0.5);
        assert_eq!(l.get::<u64>(Key::Pids).unwrap().from.to_string(), "--pids");
    }
}
