//! `nook why [NAME | --last] [--json]`: what a traced run (`nook run
//! --trace`, `nook learn`) asked for and did not get, limits first, then
//! the most frequent first, each with the flag and the profile key that
//! would allow it (the rules are in [`super::advice`]). Everything in a
//! trace was chosen by the command (paths, names), so every line is
//! escaped as it is printed.

use std::path::Path;

use super::advice::{self, Advice, Grant};
use crate::cli::WhyArgs;
use crate::error::Error;
use crate::escape;
use crate::host::Host;
use crate::state::{layers, trace};

pub fn command(a: WhyArgs, host: &Host) -> Result<i32, Error> {
    if let Some(n) = &a.name {
        layers::check_name(n).map_err(|e| Error::usage("nook why", n, e))?;
    }
    let file = trace::file(&trace::dir(&host.env, &host.home), a.name.as_deref());
    let t = trace::load(&file).map_err(Error::Input)?;
    let advice = advice::advise(&t, &host.home);
    super::out(&if a.json {
        escape::json(&json(&t, &advice, &host.home)) + "\n"
    } else {
        render(&t, &advice, &host.home)
    });
    Ok(0)
}

/// The summary: which run, how it ended, one line per refusal.
pub fn render(t: &trace::Trace, advice: &[Advice], home: &Path) -> String {
    let command = escape::line(&advice::command_line(&t.command)).into_owned();
    let mut out = format!(
        "`{}` ({}, profile {}) exited with status {}\n",
        command,
        escape::name(&t.name),
        escape::line(&t.profiles.join(", ")),
        t.exit_status
    );
    if advice.is_empty() {
        out.push_str(
            "nothing was refused that the trace records (paths outside the view, system calls, connections, limits)\n",
        );
        return out;
    }
    out.push_str(&match advice.len() {
        1 => "1 refusal:\n".to_string(),
        n => format!("{n} refusals, limits first, then the most frequent:\n"),
    });
    for a in advice {
        out.push_str("  ");
        out.push_str(&escape::line(&a.line(home)));
        out.push('\n');
    }
    if advice.iter().any(|a| matches!(a.grant, Grant::Propose(_))) {
        out.push_str(&format!(
            "`nook learn --output FILE -- {}` runs it again and writes these as a profile\n",
            command
        ));
    }
    out
}

/// `--json`: the trace, plus `suggestions`, one per refusal in the order
/// of the summary.
pub fn json(t: &trace::Trace, advice: &[Advice], home: &Path) -> serde_json::Value {
    let mut v = serde_json::to_value(t).expect("a trace serializes");
    v["suggestions"] = advice.iter().map(|a| a.to_json(home)).collect();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::trace::{Access, HostKind, LimitHit, PathDenial, Trace, Why};

    fn trace() -> Trace {
        let d = |path: &str, access, count| PathDenial {
            path: path.into(),
            access,
            why: Why::Absent,
            host: HostKind::File,
            secret: false,
            count,
            first: 0.1,
        };
        Trace {
            version: trace::VERSION,
            name: "sb-7".into(),
            command: vec!["app".into(), "--x".into()],
            profiles: vec!["default".into()],
            exit_status: 1,
            paths: vec![
                d("/home/ana/.ssh/id_rsa", Access::Read, 1),
                d("/home/ana/.config/app/conf", Access::Read, 3),
                d("/home/ana/.config/\x1b]0;owned\x07/f", Access::Read, 2),
            ],
            limits: vec![LimitHit {
                what: "timeout".into(),
                setting: "--timeout".into(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn the_summary_names_the_flag_and_key_most_frequent_first() {
        let t = trace();
        let home = Path::new("/home/ana");
        let text = render(&t, &advice::advise(&t, home), home);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "`app --x` (sb-7, profile default) exited with status 1"
        );
        assert!(lines[2].starts_with("  limit timeout: the run hit --timeout; raise it with --timeout DURATION (profile: [limits] timeout)"), "{text}");
        assert_eq!(
            lines[3],
            r#"  ~/.config/app/conf (read, 3 times): not in the view; allow it with --ro-bind-try ~/.config/app (profile: ro-bind-try = ["~/.config/app"])"#
        );
        assert!(
            lines[4].contains(r"\x1b]0;owned\x07") && lines[4].contains("control characters"),
            "{text}"
        );
        assert_eq!(
            lines[5],
            format!(
                "  ~/.ssh/id_rsa (read, 1 time): not in the view; {}",
                advice::SECRET
            )
        );
        assert!(
            lines[6].starts_with("`nook learn --output FILE -- app --x`"),
            "{text}"
        );
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "raw control in {text:?}"
        );
    }

    #[test]
    fn json_is_the_trace_with_suggestions() {
        let t = trace();
        let home = Path::new("/home/ana");
        let v = json(&t, &advice::advise(&t, home), home);
        let back: Trace = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(back, t);
        let s = &v["suggestions"];
        assert_eq!(s.as_array().unwrap().len(), 4);
        assert_eq!(s[0]["flag"], "--timeout");
        assert_eq!(s[0]["profile_key"], "limits.timeout");
        assert_eq!(s[1]["flag"], "--ro-bind-try");
        assert_eq!(s[1]["value"], "~/.config/app");
        assert_eq!(s[1]["profile_key"], "ro-bind-try");
        assert_eq!(s[1]["reason"], "not in the view");
        assert_eq!(s[1]["advice"], "propose");
        assert_eq!(s[3]["advice"], "withhold");
        assert!(s[3]["flag"].is_null());
        let text = escape::json(&v);
        assert!(!text.chars().any(char::is_control), "{text}");
    }

    #[test]
    fn nothing_refused_says_so() {
        let t = Trace {
            command: vec!["true".into()],
            ..Default::default()
        };
        let text = render(&t, &[], Path::new("/home/ana"));
        assert!(text.contains("nothing was refused"), "{text}");
    }
}
