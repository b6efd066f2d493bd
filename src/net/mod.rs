//! Networking: `none` (own namespace, loopback only), `host` (the host's
//! namespace) or `user` (own namespace with user-mode networking through
//! pasta or slirp4netns, started by the supervisor against the sandbox).
//!
//! This module resolves the network settings into a `Network` (part of the
//! Spec) and plans the helper's command line and the egress rules as data;
//! it also holds the gate's pure protocol work (`names`, `sniff`, `dns`).
//! `runtime` starts the helper and the gate.

pub mod dns;
pub mod egress;
pub mod names;
pub mod sniff;

use std::net::IpAddr;
use std::path::PathBuf;

use serde::Serialize;

use crate::error::{Context, Expected, Step, StepError, exit_cause};
pub use egress::{Egress, GATE_MARK, GATE_PORT, NameRule, nft_ruleset};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    None,
    Host,
    User,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "none" => Some(Mode::None),
            "host" => Some(Mode::Host),
            "user" => Some(Mode::User),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Mode::None => "none",
            Mode::Host => "host",
            Mode::User => "user",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DriverKind {
    Pasta,
    Slirp4netns,
}

impl DriverKind {
    pub fn parse(s: &str) -> Option<Option<DriverKind>> {
        match s {
            "auto" => Some(None),
            "pasta" => Some(Some(DriverKind::Pasta)),
            "slirp4netns" => Some(Some(DriverKind::Slirp4netns)),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            DriverKind::Pasta => "pasta",
            DriverKind::Slirp4netns => "slirp4netns",
        }
    }
    pub fn package(self) -> &'static str {
        match self {
            DriverKind::Pasta => "passt",
            DriverKind::Slirp4netns => "slirp4netns",
        }
    }
}

/// What `--net-driver auto` picks from the helpers installed (pasta with
/// what its `--version` says, slirp4netns), and why, in words for `-v`
/// and `nook doctor`. pasta is preferred (faster where it is sound, and
/// it publishes IPv6 host addresses) except for a build known to be
/// defective: the 2023 snapshots without a version string (Debian 12's),
/// whose upload through the helper stalls (0.03-2.2 Gbit/s run to run,
/// where slirp4netns moves 3.7-5.4 on the same machine: bench/net.sh).
pub fn choose_driver(pasta: Option<&str>, slirp4netns: bool) -> (DriverKind, String) {
    match (pasta, slirp4netns) {
        (Some(v), true) if v.contains("unknown version") => (
            DriverKind::Slirp4netns,
            format!(
                "pasta here is a build without a version ('{v}', a 2023 snapshot such as Debian 12's) whose upload stalls; slirp4netns is faster here"
            ),
        ),
        (Some(_), true) => (
            DriverKind::Pasta,
            "pasta is preferred; slirp4netns is the fallback".into(),
        ),
        (Some(_), false) => (DriverKind::Pasta, "only pasta is installed".into()),
        (None, true) => (
            DriverKind::Slirp4netns,
            "only slirp4netns is installed".into(),
        ),
        (None, false) => (DriverKind::Pasta, "no helper is installed".into()),
    }
}

/// A published port: HOST side -> SANDBOX side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Publish {
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub sandbox_port: u16,
    pub udp: bool,
    /// The entry as written, for messages.
    pub text: String,
}

/// The resolved network of a sandbox.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Network {
    pub mode: Mode,
    /// The user-mode helper, for `user`.
    pub driver: Option<DriverKind>,
    /// Why this driver: the user's choice, or what `auto` saw.
    pub driver_why: Option<String>,
    pub helper: Option<PathBuf>,
    pub allow_host_loopback: bool,
    /// Host loopback ports that appear on the sandbox's own loopback.
    pub allow_host_ports: Vec<u16>,
    pub publish: Vec<Publish>,
    /// Outbound allow-list: addresses the kernel admits, and names the
    /// gate admits; both empty means everything, with no gate.
    pub allow: Vec<Egress>,
    pub names: Vec<NameRule>,
    /// `nft`, when there is an allow-list to install.
    pub nft: Option<PathBuf>,
}

impl Network {
    pub fn none() -> Network {
        Network {
            mode: Mode::None,
            driver: None,
            driver_why: None,
            helper: None,
            allow_host_loopback: false,
            allow_host_ports: Vec::new(),
            publish: Vec::new(),
            allow: Vec::new(),
            names: Vec::new(),
            nft: None,
        }
    }

    /// Whether outbound traffic goes through the gate (an allow-list).
    pub fn gated(&self) -> bool {
        !self.allow.is_empty() || !self.names.is_empty()
    }

    /// The helper's DNS forwarder: what the sandbox's resolv.conf names,
    /// or, behind the gate, where the gate's stub sends what it admits.
    pub fn dns_address(&self) -> Option<&'static str> {
        match self.driver {
            Some(DriverKind::Pasta) => Some(PASTA_DNS),
            Some(DriverKind::Slirp4netns) => Some("10.0.2.3"),
            None => None,
        }
    }
}

/// A link-local address pasta forwards DNS queries from (to the host's
/// resolver); outside every real network.
const PASTA_DNS: &str = "169.254.0.53";

/// `[HOSTIP:]HOSTPORT:SANDBOXPORT[/tcp|/udp]`.
pub fn parse_publish(s: &str) -> Result<Publish, Expected> {
    let expected = "expected [HOSTIP:]HOSTPORT:SANDBOXPORT[/tcp|/udp], ports 1 to 65535";
    let (body, udp) = match s.rsplit_once('/') {
        Some((b, "tcp")) => (b, false),
        Some((b, "udp")) => (b, true),
        Some(_) => return Err(expected.into()),
        None => (s, false),
    };
    let (head, sandbox) = body.rsplit_once(':').ok_or(expected)?;
    let (host_ip, host) = match head.rsplit_once(':') {
        Some((ip, port)) => {
            let ip = ip.trim_start_matches('[').trim_end_matches(']');
            (Some(ip.parse::<IpAddr>().map_err(|_| expected)?), port)
        }
        None => (None, head),
    };
    let port = |p: &str| p.parse::<u16>().ok().filter(|&p| p > 0).ok_or(expected);
    Ok(Publish {
        host_ip,
        host_port: port(host)?,
        sandbox_port: port(sandbox)?,
        udp,
        text: s.to_string(),
    })
}

/// The helper's command line, without the target pid (appended at run
/// time). Host loopback stays unreachable unless asked: pasta's gateway
/// mapping is off and no host port is forwarded into the sandbox.
pub fn helper_args(net: &Network) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    match net.driver {
        Some(DriverKind::Pasta) => {
            a.extend(["-f", "-q", "--config-net"].map(String::from));
            let spec = |udp: bool| -> String {
                let list: Vec<String> = net
                    .publish
                    .iter()
                    .filter(|p| p.udp == udp)
                    .map(|p| match p.host_ip {
                        Some(ip) => format!("{ip}/{}:{}", p.host_port, p.sandbox_port),
                        None => format!("{}:{}", p.host_port, p.sandbox_port),
                    })
                    .collect();
                if list.is_empty() {
                    "none".into()
                } else {
                    list.join(",")
                }
            };
            a.extend(["-t".into(), spec(false), "-u".into(), spec(true)]);
            let host_ports: Vec<String> =
                net.allow_host_ports.iter().map(|p| p.to_string()).collect();
            a.push("-T".into());
            a.push(if host_ports.is_empty() {
                "none".into()
            } else {
                host_ports.join(",")
            });
            a.extend(["-U".into(), "none".into()]);
            if !net.allow_host_loopback {
                a.push("--no-map-gw".into());
            }
            a.extend(["--dns-forward".into(), PASTA_DNS.into()]);
        }
        Some(DriverKind::Slirp4netns) => {
            // No --enable-ipv6: it is experimental in slirp4netns 1.2 (the
            // address comes by router advertisement seconds after the
            // start, and outbound IPv6 failed in the tests' lab).
            a.extend(["--configure", "--mtu=65520"].map(String::from));
            // Single host ports come through nook's own relay onto the
            // sandbox's loopback (as pasta's -T does), so slirp's gateway
            // stays closed for them.
            if !net.allow_host_loopback {
                a.push("--disable-host-loopback".into());
            }
        }
        None => {}
    }
    a
}

/// The slirp4netns API requests (one JSON object per connection to its
/// `--api-socket`) that publish `publish`: the host side on the given
/// address (all IPv4 ones by default), the sandbox side on its interface
/// address, where a server listening on every address is found.
pub fn slirp_forwards(publish: &[Publish]) -> Vec<String> {
    publish
        .iter()
        .map(|p| {
            serde_json::json!({
                "execute": "add_hostfwd",
                "arguments": {
                    "proto": if p.udp { "udp" } else { "tcp" },
                    "host_addr": p.host_ip.map_or("0.0.0.0".to_string(), |ip| ip.to_string()),
                    "host_port": p.host_port,
                    "guest_port": p.sandbox_port,
                }
            })
            .to_string()
        })
        .collect()
}

/// Feed `rules` to `nft -f -` (in the gate, in the sandbox's namespaces).
pub fn install_rules(nft: &std::path::Path, rules: &str) -> Result<(), StepError> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let step = Step::InstallEgress;
    let mut cmd = Command::new(nft);
    cmd.args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    crate::sys::keep_net_admin_across_exec(&mut cmd);
    let mut child = cmd.spawn().step(step, Some(nft))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(rules.as_bytes()).step(step, Some(nft))?;
    }
    let out = child.wait_with_output().step(step, Some(nft))?;
    if out.status.success() {
        return Ok(());
    }
    Err(StepError::failed(step, Some(nft))
        .because(exit_cause(out.status))
        .hint(format!(
            "nft said: {}; the kernel needs nf_tables (CONFIG_NF_TABLES) for network namespaces",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
}

/// Wait until this network namespace has a default route (IPv4 or IPv6),
/// which the helper adds when it configures the interface, and a listening
/// socket on each of `ports` (the host ports pasta forwards into the
/// sandbox's loopback, which it binds a little later).
pub fn wait_for_network(ports: &[u16], timeout: std::time::Duration) -> Result<(), StepError> {
    let start = std::time::Instant::now();
    let ready = || {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let (v4, v6) = (read("/proc/net/route"), read("/proc/net/ipv6_route"));
        let route = v4
            .lines()
            .skip(1)
            .any(|l| l.split_whitespace().nth(1) == Some("00000000"))
            || v6.lines().any(|l| {
                l.starts_with("00000000000000000000000000000000 00") && !l.ends_with(" lo")
            });
        route && {
            let tcp = read("/proc/net/tcp") + &read("/proc/net/tcp6");
            ports.iter().all(|p| listening(&tcp, *p))
        }
    };
    let mut pause = std::time::Duration::from_micros(200);
    while !ready() {
        if start.elapsed() > timeout {
            return Err(
                StepError::new(Step::WaitNetwork, None, nix::errno::Errno::ETIMEDOUT)
                    .hint("the helper did not bring the network up in time"),
            );
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_millis(1));
    }
    Ok(())
}

/// Whether /proc/net/tcp{,6} text shows a socket listening on `port`.
fn listening(table: &str, port: u16) -> bool {
    let want = format!(":{port:04X}");
    table.lines().any(|l| {
        let mut f = l.split_whitespace();
        let local = f.nth(1).unwrap_or("");
        // Field 4 is the state; 0A is LISTEN.
        local.ends_with(&want) && f.nth(1) == Some("0A")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_sockets_are_found_by_port() {
        let table = "  sl  local_address rem_address   st\n   0: 0100007F:1F41 00000000:0000 0A 0\n   1: 0100007F:0050 0100007F:9C40 01 0\n";
        assert!(listening(table, 8001));
        assert!(!listening(table, 80), "established, not listening");
        assert!(!listening(table, 8002));
    }

    #[test]
    fn publish_specs() {
        let p = parse_publish("8080:80").unwrap();
        assert_eq!(
            (p.host_ip, p.host_port, p.sandbox_port, p.udp),
            (None, 8080, 80, false)
        );
        let p = parse_publish("127.0.0.1:5353:53/udp").unwrap();
        assert_eq!(p.host_ip, Some("127.0.0.1".parse().unwrap()));
        assert!(p.udp);
        let p = parse_publish("[::1]:8443:443").unwrap();
        assert_eq!(p.host_ip, Some("::1".parse().unwrap()));
        for bad in ["80", "0:80", "a:80", "1:2/sctp", "1.2.3:1:2", "70000:1"] {
            assert!(parse_publish(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn auto_prefers_pasta_unless_it_is_a_known_defective_build() {
        let pick = |p, s| choose_driver(p, s).0;
        assert_eq!(
            pick(Some("pasta 2024_08_21.1d6142f"), true),
            DriverKind::Pasta
        );
        assert_eq!(
            pick(Some("pasta unknown version"), true),
            DriverKind::Slirp4netns
        );
        assert_eq!(
            pick(Some("pasta unknown version"), false),
            DriverKind::Pasta
        );
        assert_eq!(pick(None, true), DriverKind::Slirp4netns);
        assert!(
            choose_driver(Some("pasta unknown version"), true)
                .1
                .contains("Debian 12")
        );
    }

    #[test]
    fn slirp_publishes_through_its_api() {
        let p = [
            parse_publish("127.0.0.1:8080:8000").unwrap(),
            parse_publish("5353:53/udp").unwrap(),
        ];
        assert_eq!(
            slirp_forwards(&p),
            [
                r#"{"arguments":{"guest_port":8000,"host_addr":"127.0.0.1","host_port":8080,"proto":"tcp"},"execute":"add_hostfwd"}"#,
                r#"{"arguments":{"guest_port":53,"host_addr":"0.0.0.0","host_port":5353,"proto":"udp"},"execute":"add_hostfwd"}"#,
            ]
        );
    }

    #[test]
    fn pasta_keeps_host_loopback_closed_by_default() {
        let mut n = Network::none();
        n.mode = Mode::User;
        n.driver = Some(DriverKind::Pasta);
        let a = helper_args(&n).join(" ");
        assert_eq!(
            a,
            "-f -q --config-net -t none -u none -T none -U none --no-map-gw --dns-forward 169.254.0.53"
        );
        n.allow_host_loopback = true;
        n.allow_host_ports = vec![5432];
        n.publish = vec![
            parse_publish("127.0.0.1:8080:8000").unwrap(),
            parse_publish("5353:53/udp").unwrap(),
        ];
        let a = helper_args(&n).join(" ");
        assert_eq!(
            a,
            "-f -q --config-net -t 127.0.0.1/8080:8000 -u 5353:53 -T 5432 -U none --dns-forward 169.254.0.53"
        );
    }
}
