//! Resource limits as data: the cgroup v2 settings, the rlimits, the
//! timeout and the disk quota, parsed from their flag or profile values
//! (pure; `cgroup` and `runtime` apply them).

use std::time::Duration;

use serde::Serialize;

use super::units::{parse_duration, parse_size};
use crate::error::{Error, Expected};
use crate::settings::{Key, Layer, Val};

/// Limits enforced through a cgroup v2 leaf.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CgroupLimits {
    pub memory_max: Option<u64>,
    pub memory_swap_max: Option<u64>,
    pub pids_max: Option<u64>,
    /// (quota, period) in microseconds, for cpu.max.
    pub cpu_max: Option<(u64, u64)>,
    pub cpu_weight: Option<u64>,
    pub io_weight: Option<u64>,
    /// ("MAJ:MIN", "rbps=N wbps=N ...") for io.max.
    pub io_max: Vec<(String, String)>,
}

impl CgroupLimits {
    pub fn any(&self) -> bool {
        *self != CgroupLimits::default()
    }

    /// The controllers these limits need, in the order cgroup.subtree_control
    /// takes them.
    pub fn controllers(&self) -> Vec<&'static str> {
        let mut c = Vec::new();
        if self.cpu_max.is_some() || self.cpu_weight.is_some() {
            c.push("cpu");
        }
        if self.io_weight.is_some() || !self.io_max.is_empty() {
            c.push("io");
        }
        if self.memory_max.is_some() || self.memory_swap_max.is_some() {
            c.push("memory");
        }
        if self.pids_max.is_some() {
            c.push("pids");
        }
        c
    }

    /// Interface files and the values written to them.
    pub fn files(&self) -> Vec<(&'static str, String)> {
        let mut f = Vec::new();
        if let Some(m) = self.memory_max {
            f.push(("memory.max", m.to_string()));
        }
        if let Some(s) = self.memory_swap_max {
            f.push(("memory.swap.max", s.to_string()));
        }
        if let Some(p) = self.pids_max {
            f.push(("pids.max", p.to_string()));
        }
        if let Some((q, p)) = self.cpu_max {
            f.push(("cpu.max", format!("{q} {p}")));
        }
        if let Some(w) = self.cpu_weight {
            f.push(("cpu.weight", w.to_string()));
        }
        if let Some(w) = self.io_weight {
            f.push(("io.weight", format!("default {w}")));
        }
        for (dev, settings) in &self.io_max {
            f.push(("io.max", format!("{dev} {settings}")));
        }
        f
    }
}

/// One rlimit: soft and hard set to the same value. Written and read as
/// its name and value (a record of a running sandbox holds it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(into = "NamedLimit")]
pub struct Rlimit {
    pub name: &'static str,
    pub resource: nix::sys::resource::Resource,
    pub value: u64,
}

#[derive(Serialize, serde::Deserialize)]
struct NamedLimit {
    name: String,
    value: u64,
}

impl From<Rlimit> for NamedLimit {
    fn from(r: Rlimit) -> Self {
        NamedLimit {
            name: r.name.to_string(),
            value: r.value,
        }
    }
}

impl<'de> serde::Deserialize<'de> for Rlimit {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = NamedLimit::deserialize(d)?;
        resource_of(&n.name)
            .map(|(name, resource, _)| Rlimit {
                name,
                resource,
                value: n.value,
            })
            .ok_or_else(|| serde::de::Error::custom(format!("unknown rlimit {}", n.name)))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Limits {
    pub cgroup: CgroupLimits,
    pub rlimits: Vec<Rlimit>,
    #[serde(with = "opt_secs")]
    pub timeout: Option<Duration>,
    /// Bytes all the sandbox's scratch areas (the tmpfs mounts nook makes
    /// without an explicit size) may hold together.
    pub disk_quota: Option<u64>,
}

pub mod opt_secs {
    pub fn serialize<S: serde::Serializer>(
        d: &Option<std::time::Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }
}

/// cpu.max for a number of CPUs over the default 100 ms period.
pub fn cpu_max(cpus: f64) -> Result<(u64, u64), Expected> {
    const PERIOD: u64 = 100_000;
    if !cpus.is_finite() || !(0.01..=4096.0).contains(&cpus) {
        return Err("expected a number of CPUs from 0.01 up, e.g. 0.5 or 2".into());
    }
    Ok(((cpus * PERIOD as f64).round() as u64, PERIOD))
}

/// An rlimit by name: its canonical name, resource, and whether its
/// value is a size.
fn resource_of(name: &str) -> Option<(&'static str, nix::sys::resource::Resource, bool)> {
    use nix::sys::resource::Resource as R;
    Some(match name {
        "nofile" => ("nofile", R::RLIMIT_NOFILE, false),
        "nproc" => ("nproc", R::RLIMIT_NPROC, false),
        "fsize" => ("fsize", R::RLIMIT_FSIZE, true),
        "core" => ("core", R::RLIMIT_CORE, true),
        "cpu" => ("cpu", R::RLIMIT_CPU, false),
        "as" => ("as", R::RLIMIT_AS, true),
        "stack" => ("stack", R::RLIMIT_STACK, true),
        "memlock" => ("memlock", R::RLIMIT_MEMLOCK, true),
        _ => return None,
    })
}

/// `nofile=1024`; `unlimited` where the kernel allows it.
pub fn parse_rlimit(s: &str) -> Result<Rlimit, Expected> {
    const NAMES: &str = "nofile, nproc, fsize, core, cpu, as, stack, memlock";
    let (name, value) = s
        .split_once('=')
        .ok_or(format!("expected NAME=VALUE with NAME one of {NAMES}"))?;
    let Some((name, resource, size_like)) = resource_of(name) else {
        return Err(format!("'{name}' is not an rlimit; expected one of {NAMES}").into());
    };
    let value = if value == "unlimited" {
        libc::RLIM_INFINITY
    } else if name == "cpu" {
        parse_duration(value)?.as_secs().max(1)
    } else if size_like {
        // Zero is a meaningful size here (no core files at all).
        if value == "0" { 0 } else { parse_size(value)? }
    } else {
        value
            .parse::<u64>()
            .map_err(|_| format!("expected a whole number for {name}, or unlimited"))?
    };
    Ok(Rlimit {
        name,
        resource,
        value,
    })
}

/// `DEV:rbps=N,wbps=N,riops=N,wiops=N` with DEV a MAJ:MIN pair or a block
/// device path (looked up by `rdev`).
pub fn parse_io_max(
    s: &str,
    rdev: &dyn Fn(&str) -> Option<(u64, u64)>,
) -> Result<(String, String), Expected> {
    const EXPECTED: &str = "expected DEV:KEY=VALUE[,KEY=VALUE...] with DEV a MAJ:MIN pair or a block device, KEY rbps, wbps, riops or wiops";
    let (dev, settings) = if s.starts_with('/') {
        s.split_once(':').ok_or(EXPECTED)?
    } else {
        // MAJ:MIN:settings
        let mut it = s.splitn(3, ':');
        let (maj, min, rest) = (it.next(), it.next(), it.next());
        match (maj, min, rest) {
            (Some(a), Some(b), Some(r)) => (&s[..a.len() + 1 + b.len()], r),
            _ => return Err(EXPECTED.into()),
        }
    };
    let dev = if dev.starts_with('/') {
        let (maj, min) = rdev(dev).ok_or(format!("{dev} is not a block device"))?;
        format!("{maj}:{min}")
    } else {
        let (a, b) = dev.split_once(':').ok_or(EXPECTED)?;
        if a.parse::<u64>().is_err() || b.parse::<u64>().is_err() {
            return Err(EXPECTED.into());
        }
        dev.to_string()
    };
    let mut out = Vec::new();
    for kv in settings.split(',') {
        let (k, v) = kv.split_once('=').ok_or(EXPECTED)?;
        let v = match k {
            "rbps" | "wbps" => parse_size(v)?.to_string(),
            "riops" | "wiops" => v.parse::<u64>().map_err(|_| EXPECTED)?.to_string(),
            _ => return Err(EXPECTED.into()),
        };
        out.push(format!("{k}={v}"));
    }
    Ok((dev, out.join(" ")))
}

/// The block device number of a path, for io-max.
pub fn block_device(path: &str) -> Option<(u64, u64)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let m = std::fs::metadata(path).ok()?;
    if !m.file_type().is_block_device() {
        return None;
    }
    let rdev = m.rdev();
    Some((libc::major(rdev) as u64, libc::minor(rdev) as u64))
}

pub fn resolve(set: &Layer) -> Result<Limits, Error> {
    fn get<T: Clone, U>(
        v: &Option<Val<T>>,
        f: impl Fn(&T) -> Result<U, Expected>,
        show: impl Fn(&T) -> String,
    ) -> Result<Option<U>, Error> {
        v.as_ref()
            .map(|x| f(&x.v).map_err(|e| Error::usage(&x.from.to_string(), &show(&x.v), e)))
            .transpose()
    }
    let s = |x: &String| x.clone();
    let n = |x: &u64| x.to_string();
    let weight = |&w: &u64| -> Result<u64, Expected> {
        if (1..=10000).contains(&w) {
            Ok(w)
        } else {
            Err("expected a weight from 1 to 10000 (100 is the default)".into())
        }
    };
    let mut cg = CgroupLimits {
        memory_max: get(&set.get(Key::Memory), |x| parse_size(x), s)?,
        // Zero swap is a real choice (none at all).
        memory_swap_max: get(
            &set.get(Key::MemorySwap),
            |x| {
                if x.trim() == "0" {
                    Ok(0)
                } else {
                    parse_size(x)
                }
            },
            s,
        )?,
        pids_max: get(
            &set.get(Key::Pids),
            |&p| {
                if p == 0 {
                    Err("expected a number of processes from 1".into())
                } else {
                    Ok(p)
                }
            },
            n,
        )?,
        cpu_max: get(&set.get(Key::Cpus), |&c| cpu_max(c), |c| c.to_string())?,
        cpu_weight: get(&set.get(Key::CpuWeight), weight, n)?,
        io_weight: get(&set.get(Key::IoWeight), weight, n)?,
        io_max: Vec::new(),
    };
    for v in &set.list::<String>(Key::IoMax) {
        cg.io_max.push(
            parse_io_max(&v.v, &block_device)
                .map_err(|e| Error::usage(&v.from.to_string(), &v.v, e))?,
        );
    }
    // A later entry for the same resource replaces an earlier one (a flag
    // after a profile's value).
    let mut rlimits: Vec<Rlimit> = Vec::new();
    for v in &set.list::<String>(Key::Rlimit) {
        let r = parse_rlimit(&v.v).map_err(|e| Error::usage(&v.from.to_string(), &v.v, e))?;
        rlimits.retain(|x| x.name != r.name);
        rlimits.push(r);
    }
    Ok(Limits {
        cgroup: cg,
        rlimits,
        timeout: get(&set.get(Key::Timeout), |x| parse_duration(x), s)?,
        disk_quota: get(&set.get(Key::DiskQuota), |x| parse_size(x), s)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpus_become_quota_over_period() {
        assert_eq!(cpu_max(0.5), Ok((50_000, 100_000)));
        assert_eq!(cpu_max(2.0), Ok((200_000, 100_000)));
        assert!(cpu_max(0.0).is_err());
    }

    #[test]
    fn rlimits() {
        let r = parse_rlimit("nofile=64").unwrap();
        assert_eq!((r.name, r.value), ("nofile", 64));
        assert_eq!(parse_rlimit("fsize=1m").unwrap().value, 1 << 20);
        assert_eq!(parse_rlimit("core=0").unwrap().value, 0);
        assert_eq!(parse_rlimit("cpu=2m").unwrap().value, 120);
        assert_eq!(
            parse_rlimit("as=unlimited").unwrap().value,
            libc::RLIM_INFINITY
        );
        for bad in ["nofile", "files=1", "nofile=lots", "nproc=1.5"] {
            assert!(parse_rlimit(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn io_max_entries() {
        let rdev = |p: &str| (p == "/dev/vda").then_some((254, 0));
        assert_eq!(
            parse_io_max("8:0:rbps=1m,wiops=100", &rdev),
            Ok(("8:0".into(), "rbps=1048576 wiops=100".into()))
        );
        assert_eq!(
            parse_io_max("/dev/vda:wbps=2m", &rdev),
            Ok(("254:0".into(), "wbps=2097152".into()))
        );
        for bad in ["8:0", "8:0:speed=1", "/dev/sdz:rbps=1m", "a:b:rbps=1"] {
            assert!(parse_io_max(bad, &rdev).is_err(), "{bad}");
        }
    }

    #[test]
    fn controllers_follow_the_limits() {
        let l = CgroupLimits {
            memory_max: Some(1 << 20),
            pids_max: Some(10),
            cpu_max: Some((50_000, 100_000)),
            ..Default::default()
        };
        assert_eq!(l.controllers(), ["cpu", "memory", "pids"]);
        assert!(l.files().contains(&("cpu.max", "50000 100000".into())));
        assert!(!CgroupLimits::default().any());
    }
}
