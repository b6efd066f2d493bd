//! The profile file format: the TOML keys are the table of settings
//! (`settings::keys`), read strictly (unknown keys and wrong types refused
//! with their position), and the one conversion into a `Layer` that
//! expands variables and checks paths, naming the file, line and column on
//! failure.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::vars::Vars;
use crate::error::Error;
use crate::settings::keys::one_of;
use crate::settings::{FsFlag, Key, Kind, Layer, Origin, PathParts, Section, Val, Value};

pub struct Parsed {
    pub extends: Vec<Val<String>>,
    pub layer: Layer,
}

/// 1-based line and column of byte offset `at` in `text`.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    (line, col)
}

struct Ctx<'a> {
    text: &'a str,
    path: &'a Path,
    vars: &'a Vars,
    /// Byte offsets where each line starts: a value's line is a binary
    /// search, not a count from the top (imported profiles run to
    /// thousands of lines).
    line_starts: Vec<usize>,
}

impl Ctx<'_> {
    fn origin(&self, span: std::ops::Range<usize>, key: &'static str) -> Origin {
        let at = span.start.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= at);
        let col = at - self.line_starts[line - 1] + 1;
        Origin::File {
            path: self.path.to_path_buf(),
            line,
            col,
            key,
        }
    }

    fn err(&self, origin: &Origin, what: String) -> Error {
        Error::At {
            at: origin.to_string(),
            what,
        }
    }

    /// An error at a position, without a key (as serde's would read).
    fn err_at(&self, span: std::ops::Range<usize>, what: String) -> Error {
        let (line, col) = line_col(self.text, span.start);
        Error::At {
            at: format!("{}:{line}:{col}", self.path.display()),
            what,
        }
    }

    /// A string value with variables expanded; `path_parts` says which
    /// ':'-separated parts are paths (for `~` and the absolute check).
    fn string(&self, raw: &str, from: Origin, path_parts: PathParts) -> Result<Val<String>, Error> {
        let (first, second) = match (path_parts, raw.split_once(':')) {
            (PathParts::None, _) => (raw, None),
            (_, Some((a, b))) => (a, Some(b)),
            (_, None) => (raw, None),
        };
        let first_is_path = !matches!(path_parts, PathParts::None | PathParts::Second);
        let second_is_path = matches!(
            path_parts,
            PathParts::Both | PathParts::Second | PathParts::FirstOptSecond
        );
        let mut parts = Vec::new();
        for (part, is_path) in [(Some(first), first_is_path), (second, second_is_path)] {
            let Some(part) = part else { continue };
            let e = self
                .vars
                .expand(part, is_path)
                .map_err(|m| self.err(&from, m.into()))?;
            if is_path && !e.starts_with('/') {
                return Err(self.err(
                    &from,
                    format!(
                        "relative path '{part}' in '{raw}', expected an absolute path, ~/..., or one starting with ${{HOME}}, ${{CWD}} or another variable"
                    ),
                ));
            }
            parts.push(e);
        }
        Ok(Val {
            v: parts.join(":"),
            from,
        })
    }

    /// A value of the wrong type, in the words of serde's type errors.
    fn wrong_type(&self, v: &Spanned<DeValue<'_>>, expected: &str) -> Error {
        self.err_at(
            v.span(),
            format!(
                "invalid type: {}, expected {expected}",
                unexpected(v.get_ref())
            ),
        )
    }

    /// One value of `key`, checked against its kind.
    fn value(&self, key: Key, v: &Spanned<DeValue<'_>>) -> Result<Val<Value>, Error> {
        let def = key.def();
        let from = self.origin(v.span(), def.name());
        let wrong = |expected: &str| {
            self.err_at(
                v.span(),
                format!(
                    "invalid type: {}, expected {expected}",
                    unexpected(v.get_ref())
                ),
            )
        };
        let int = |ty: &str, min: i64, max: i64| -> Result<Val<Value>, Error> {
            let DeValue::Integer(i) = v.get_ref() else {
                return Err(wrong(ty));
            };
            let n = parse_int(i.as_str(), i.radix()).ok_or_else(|| wrong(ty))?;
            if !(min..=max).contains(&n) {
                return Err(self.err_at(
                    v.span(),
                    format!("invalid value: integer `{n}`, expected {ty}"),
                ));
            }
            Ok(Val {
                v: Value::Int(n),
                from: from.clone(),
            })
        };
        match def.kind {
            Kind::Bool => match v.get_ref() {
                DeValue::Boolean(b) => Ok(Val {
                    v: Value::Bool(*b),
                    from,
                }),
                _ => Err(wrong("a boolean")),
            },
            Kind::U16 => int("u16", 0, u16::MAX.into()),
            Kind::U32 => int("u32", 0, u32::MAX.into()),
            Kind::U64 => int("u64", 0, i64::MAX),
            Kind::I32 => int("i32", i32::MIN.into(), i32::MAX.into()),
            Kind::F64 => match v.get_ref() {
                DeValue::Float(f) => f
                    .as_str()
                    .replace('_', "")
                    .parse::<f64>()
                    .map(|f| Val {
                        v: Value::Float(f),
                        from: from.clone(),
                    })
                    .map_err(|_| wrong("f64")),
                DeValue::Integer(_) => int("f64", i64::MIN, i64::MAX).map(|x| Val {
                    v: match x.v {
                        Value::Int(n) => Value::Float(n as f64),
                        other => other,
                    },
                    from: x.from,
                }),
                _ => Err(wrong("f64")),
            },
            Kind::Str(parts) | Kind::Fs(_, parts) => match v.get_ref() {
                DeValue::String(s) => self.string(s, from, parts).map(|s| Val {
                    v: Value::Str(s.v),
                    from: s.from,
                }),
                _ => Err(wrong("a string")),
            },
            Kind::Choice { words, noun } => match v.get_ref() {
                DeValue::String(s) if words.contains(&s.as_ref()) => Ok(Val {
                    v: Value::Str(s.to_string()),
                    from,
                }),
                DeValue::String(s) => Err(self.err(
                    &from,
                    format!("'{s}' is not {noun}, expected {}", one_of(words, true)),
                )),
                _ => Err(wrong("a string")),
            },
        }
    }

    /// Every key of one table of the file, checked; sections recurse.
    fn table(
        &self,
        table: &DeTable<'_>,
        section: Section,
        found: &mut HashMap<Key, Vec<Val<Value>>>,
        extends: &mut Vec<Val<String>>,
    ) -> Result<(), Error> {
        for (k, v) in table {
            let name: &str = k.get_ref();
            if section == Section::Top && name == "extends" {
                let DeValue::Array(items) = v.get_ref() else {
                    return Err(self.wrong_type(v, "a sequence"));
                };
                for item in items {
                    match item.get_ref() {
                        DeValue::String(s) => extends.push(Val {
                            v: s.to_string(),
                            from: self.origin(item.span(), "extends"),
                        }),
                        _ => return Err(self.wrong_type(item, "a string")),
                    }
                }
                continue;
            }
            if section == Section::Top
                && let Some(sub) = Section::ALL.into_iter().find(|s| s.table() == Some(name))
            {
                let DeValue::Table(t) = v.get_ref() else {
                    return Err(self.wrong_type(v, "a table"));
                };
                self.table(t, sub, found, extends)?;
                continue;
            }
            let Some(key) = Key::by_name(section, name) else {
                return Err(self.err_at(
                    k.span(),
                    format!(
                        "unknown field `{name}`, expected one of {}",
                        field_names(section).join(", ")
                    ),
                ));
            };
            let values = found.entry(key).or_default();
            if key.def().list {
                let DeValue::Array(items) = v.get_ref() else {
                    return Err(self.wrong_type(v, "a sequence"));
                };
                for item in items {
                    values.push(self.value(key, item)?);
                }
            } else {
                values.push(self.value(key, v)?);
            }
        }
        Ok(())
    }
}

/// The keys a table may hold, as serde lists them.
fn field_names(section: Section) -> Vec<String> {
    let mut names: Vec<&str> = Vec::new();
    if section == Section::Top {
        names.push("extends");
    }
    names.extend(Key::in_section(section).map(Key::name));
    if section == Section::Top {
        names.extend(Section::ALL.iter().filter_map(|s| s.table()));
    }
    names.iter().map(|n| format!("`{n}`")).collect()
}

/// What a value is, in the words of serde's type errors.
fn unexpected(v: &DeValue<'_>) -> String {
    match v {
        DeValue::String(s) => format!("string {s:?}"),
        DeValue::Integer(i) => format!("integer `{}`", i.as_str()),
        DeValue::Float(f) => format!("floating point `{}`", f.as_str()),
        DeValue::Boolean(b) => format!("boolean `{b}`"),
        DeValue::Datetime(d) => format!("datetime `{d}`"),
        DeValue::Array(_) => "sequence".into(),
        DeValue::Table(_) => "map".into(),
    }
}

/// A TOML integer's text (sign, `_` separators, a `0x`/`0o`/`0b` prefix
/// for other radixes) as a number.
fn parse_int(text: &str, radix: u32) -> Option<i64> {
    let t = text.replace('_', "");
    let (neg, digits) = match t.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, t.strip_prefix('+').unwrap_or(&t)),
    };
    let digits = if radix == 10 {
        digits
    } else {
        digits.get(2..)?
    };
    let n = i64::from_str_radix(digits, radix).ok()?;
    Some(if neg { -n } else { n })
}

pub fn parse(text: &str, path: &Path, vars: &Vars) -> Result<Parsed, Error> {
    let doc = DeTable::parse(text).map_err(|e| {
        let (line, col) = line_col(text, e.span().map_or(0, |s| s.start));
        Error::At {
            at: format!("{}:{line}:{col}", path.display()),
            what: e
                .message()
                .lines()
                .next()
                .unwrap_or("invalid TOML")
                .to_string(),
        }
    })?;
    let line_starts = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let cx = Ctx {
        text,
        path,
        vars,
        line_starts,
    };
    let mut found = HashMap::new();
    let mut extends = Vec::new();
    cx.table(doc.get_ref(), Section::Top, &mut found, &mut extends)?;

    // Keys in table order; filesystem entries parents first: a mount
    // inside another's target must come after it.
    let mut layer = Layer::default();
    let mut fs: Vec<(Key, Val<Value>)> = Vec::new();
    for &key in Key::ALL {
        for v in found.remove(&key).unwrap_or_default() {
            if key.fs().is_some() {
                fs.push((key, v));
            } else {
                layer.push(key, v);
            }
        }
    }
    fs.sort_by_key(|(key, v)| match (key.fs(), &v.v) {
        (Some(f), Value::Str(s)) => target(f, s).components().count(),
        _ => 0,
    });
    for (key, v) in fs {
        layer.push(key, v);
    }
    Ok(Parsed { extends, layer })
}
/// The sandbox path an entry mounts on, for ordering.
fn target(flag: FsFlag, v: &str) -> PathBuf {
    let (a, b) = match v.split_once(':') {
        Some((a, b)) => (a, Some(b)),
        None => (v, None),
    };
    PathBuf::from(match flag {
        FsFlag::Symlink => b.unwrap_or(a),
        FsFlag::RoBind
        | FsFlag::Bind
        | FsFlag::RoBindTry
        | FsFlag::BindTry
        | FsFlag::Overlay
        | FsFlag::TmpOverlay => b.unwrap_or(a),
        _ => a,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Parsed, String> {
        parse(
            text,
            Path::new("/p/t.toml"),
            &Vars::from_host(&crate::host::Host::fake()),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let cases = [
            (
                "uid = 1\nbogus = 2\n",
                "/p/t.toml:2:1: unknown field `bogus`, expected one of",
            ),
            (
                "share-net = \"yes\"\n",
                "/p/t.toml:1:13: invalid type: string \"yes\", expected a boolean",
            ),
            (
                "ro-bind = [\n  \"/usr\",\n  \"lib\",\n]\n",
                "/p/t.toml:3:3: ro-bind: relative path 'lib' in 'lib', expected an absolute path",
            ),
            (
                "tmpfs = [\"${NOPE}/x\"]\n",
                "/p/t.toml:1:10: tmpfs: unknown variable ${NOPE}, expected one of ${HOME}",
            ),
            ("uid = [\n", "/p/t.toml:1:8: "),
            (
                "share-cwd = \"maybe\"\n",
                "/p/t.toml:1:13: share-cwd: 'maybe' is not a mode, expected \"rw\", \"ro\", \"no\" or \"overlay\"",
            ),
        ];
        for (text, want) in cases {
            let got = parse_str(text).err().unwrap_or_default();
            assert!(got.starts_with(want), "{text:?}\n got: {got}\nwant: {want}");
        }
    }

    #[test]
    fn values_expand_and_sort_parents_first() {
        let p = parse_str(
            "hide = [\"~/.cache/x\"]\nro-bind-try = [\"~\"]\ntmpfs = [\"~/.cache\"]\nsymlink = [\"usr/bin:/bin\"]\nsetenv = [\"A=~\"]\n",
        )
        .unwrap();
        let fs: Vec<(&str, String)> = p
            .layer
            .fs()
            .into_iter()
            .map(|(f, v)| (f.key().name(), v.v))
            .collect();
        assert_eq!(
            fs,
            [
                ("symlink", "usr/bin:/bin".to_string()),
                ("ro-bind-try", "/home/ana".to_string()),
                ("tmpfs", "/home/ana/.cache".to_string()),
                ("hide", "/home/ana/.cache/x".to_string()),
            ]
        );
        assert_eq!(p.layer.list::<String>(Key::Setenv)[0].v, "A=~");
    }

    /// Every key of the table survives the writer and the reader: what
    /// `profile show` prints is a profile that means the same.
    #[test]
    fn every_key_round_trips_through_a_written_profile() {
        use crate::settings::{FromValue, to_toml};
        let mut layer = Layer::default();
        for &key in Key::ALL {
            let v = match key.def().kind {
                Kind::Bool => true.into_value(),
                Kind::U16 | Kind::U32 | Kind::U64 => Value::Int(7),
                Kind::I32 => Value::Int(3),
                Kind::F64 => Value::Float(0.5),
                Kind::Choice { words, .. } => Value::Str(words[words.len() - 1].into()),
                Kind::Str(PathParts::None) => Value::Str("a=b".into()),
                Kind::Str(_) | Kind::Fs(_, PathParts::First | PathParts::FirstOptSecond) => {
                    Value::Str(format!("/{}", key.name()))
                }
                Kind::Fs(_, PathParts::Second) => Value::Str("t:/s".into()),
                Kind::Fs(_, _) => Value::Str("/d:/s".into()),
            };
            layer.push(key, Val::flag(v, key.flag()));
        }
        let text = to_toml(&layer, &["default".to_string()]);
        let back = parse_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(back.extends[0].v, "default");
        for &key in Key::ALL {
            let want: Vec<&Value> = layer.values(key).map(|v| &v.v).collect();
            let got: Vec<&Value> = back.layer.values(key).map(|v| &v.v).collect();
            assert_eq!(got, want, "{}\n{text}", key.name());
        }
    }
}
