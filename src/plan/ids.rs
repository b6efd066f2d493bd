//! uid_map / gid_map contents (user_namespaces(7)).

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::host::SubRange;
use crate::spec::Ids;

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct IdMapLine {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IdMap {
    pub lines: Vec<IdMapLine>,
    /// newuidmap/newgidmap when the map covers subordinate ids; otherwise
    /// the supervisor writes the single line itself.
    pub helper: Option<PathBuf>,
}

impl IdMap {
    /// The text written to /proc/PID/uid_map.
    pub fn proc_text(&self) -> String {
        self.lines
            .iter()
            .map(|l| format!("{} {} {}\n", l.inside, l.outside, l.count))
            .collect()
    }

    /// Arguments for newuidmap/newgidmap after the pid.
    pub fn helper_args(&self) -> Vec<String> {
        self.lines
            .iter()
            .flat_map(|l| [l.inside, l.outside, l.count])
            .map(|n| n.to_string())
            .collect()
    }
}

impl fmt::Display for IdMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self
            .lines
            .iter()
            .map(|l| format!("{} {} {}", l.inside, l.outside, l.count))
            .collect();
        write!(f, "{}", lines.join(", "))?;
        if let Some(h) = &self.helper {
            write!(f, " (via {})", h.display())?;
        }
        Ok(())
    }
}

pub fn uid_map(ids: &Ids) -> IdMap {
    let sub = ids.subids.as_ref();
    map(
        ids.uid,
        ids.host_uid,
        sub.map(|s| s.uid_range),
        sub.map(|s| s.newuidmap.clone()),
    )
}

pub fn gid_map(ids: &Ids) -> IdMap {
    let sub = ids.subids.as_ref();
    map(
        ids.gid,
        ids.host_gid,
        sub.map(|s| s.gid_range),
        sub.map(|s| s.newgidmap.clone()),
    )
}

/// The caller's own id appears as `inside`; with a subordinate range, the
/// ids around it are filled from the range, lowest first, so that 0..N work.
fn map(inside: u32, outside: u32, range: Option<SubRange>, helper: Option<PathBuf>) -> IdMap {
    let mut lines = vec![IdMapLine {
        inside,
        outside,
        count: 1,
    }];
    if let Some(r) = range {
        let below = r.count.min(inside);
        if below > 0 {
            lines.push(IdMapLine {
                inside: 0,
                outside: r.start,
                count: below,
            });
        }
        let above = r.count - below;
        if above > 0 && inside < u32::MAX {
            lines.push(IdMapLine {
                inside: inside + 1,
                outside: r.start + below,
                count: above.min(u32::MAX - inside),
            });
        }
        lines.sort_by_key(|l| l.inside);
    }
    IdMap { lines, helper }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(inside: u32, outside: u32, count: u32) -> IdMapLine {
        IdMapLine {
            inside,
            outside,
            count,
        }
    }

    #[test]
    fn single_id_map() {
        let m = map(0, 1000, None, None);
        assert_eq!(m.proc_text(), "0 1000 1\n");
    }

    #[test]
    fn subordinate_range_fills_around_own_id() {
        let r = SubRange {
            start: 100000,
            count: 65536,
        };
        let m = map(1000, 1000, Some(r), Some("/usr/bin/newuidmap".into()));
        assert_eq!(
            m.lines,
            vec![l(0, 100000, 1000), l(1000, 1000, 1), l(1001, 101000, 64536)]
        );
        assert_eq!(
            m.helper_args()[..3],
            ["0".to_string(), "100000".into(), "1000".into()]
        );
        let root = map(0, 1000, Some(r), None);
        assert_eq!(root.lines, vec![l(0, 1000, 1), l(1, 100000, 65536)]);
    }
}
