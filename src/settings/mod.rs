//! Settings: the table of keys (`keys`), the layers that give them values
//! (`layer`), and the one profile writer. Depends on nothing else in nook:
//! the command line (`cli`) and profile files (`profile`) both produce
//! layers, and `spec` reads the merged one.

pub mod keys;
pub mod layer;

pub use keys::{FsFlag, Key, Kind, PathParts, Section};
pub use layer::{FromValue, Layer, Origin, Val, Value};

/// Merge layers, first to last.
pub fn merge(layers: Vec<Layer>) -> Layer {
    let mut acc = Layer::default();
    for l in layers {
        acc.merge(l);
    }
    acc
}

/// The layer as a profile file (what `nook profile show` and
/// `import-firejail` print), written by the `toml` crate: `extends` first,
/// then every key in table order under its section.
pub fn to_toml(layer: &Layer, extends: &[String]) -> String {
    let mut top = toml::Table::new();
    if !extends.is_empty() {
        top.insert(
            "extends".into(),
            toml::Value::Array(extends.iter().map(|e| e.clone().into()).collect()),
        );
    }
    for section in Section::ALL {
        let mut table = toml::Table::new();
        for key in Key::in_section(section) {
            let values = layer.values(key).map(|v| toml_value(&v.v));
            let item = if key.def().list {
                let all: Vec<toml::Value> = values.collect();
                (!all.is_empty()).then_some(toml::Value::Array(all))
            } else {
                values.last()
            };
            if let Some(item) = item {
                table.insert(key.name().into(), item);
            }
        }
        match section.table() {
            None => top.extend(table),
            Some(name) if !table.is_empty() => {
                top.insert(name.into(), toml::Value::Table(table));
            }
            Some(_) => {}
        }
    }
    toml::to_string_pretty(&top).unwrap_or_default()
}

/// The order in which a merged layer's filesystem entries apply, as a
/// TOML comment (a file groups them by key; `profile show` adds this).
pub fn fs_order_comment(layer: &Layer) -> String {
    let fs = layer.fs();
    if fs.is_empty() {
        return String::new();
    }
    let mut out =
        String::from("\n# Filesystem entries apply in this order (then the secrets are hidden):\n");
    for (f, v) in fs {
        out.push_str(&format!("#   {} {}\n", f.key().name(), v.v));
    }
    out
}

fn toml_value(v: &Value) -> toml::Value {
    match v {
        Value::Bool(b) => toml::Value::Boolean(*b),
        Value::Int(i) => toml::Value::Integer(*i),
        Value::Float(f) => toml::Value::Float(*f),
        Value::Str(s) => toml::Value::String(s.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_sections_lists_and_the_fs_order() {
        let l = Layer::default()
            .with(Key::ShareNet, true)
            .with(Key::Tmpfs, "/a".to_string())
            .with(Key::RoBind, "/usr".to_string())
            .with(Key::Tmpfs, "/b".to_string())
            .with(Key::Net, "user".to_string())
            .with(Key::Cpus, 0.5)
            .with(Key::Uid, 1u32)
            .with(Key::Uid, 2u32);
        let text = to_toml(&l, &["default".into()]) + &fs_order_comment(&l);
        let parsed: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(parsed["extends"][0].as_str(), Some("default"));
        let keys: Vec<&str> = parsed.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "extends",
                "uid",
                "share-net",
                "ro-bind",
                "tmpfs",
                "network",
                "limits"
            ],
            "table order"
        );
        assert_eq!(parsed["uid"].as_integer(), Some(2));
        assert_eq!(parsed["share-net"].as_bool(), Some(true));
        assert_eq!(parsed["tmpfs"].as_array().unwrap().len(), 2);
        assert_eq!(parsed["network"]["net"].as_str(), Some("user"));
        assert_eq!(parsed["limits"]["cpus"].as_float(), Some(0.5));
        assert!(
            text.ends_with("#   tmpfs /a\n#   ro-bind /usr\n#   tmpfs /b\n"),
            "{text}"
        );
    }
}
