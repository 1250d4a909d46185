//! The lab itself: naming, creating and deleting namespaces, the public net and its hosts.

use std::collections::BTreeSet;
use std::fs;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, geteuid};

use crate::exec::{ip, ip_in, sysctl_in};
use crate::{Home, HomeOptions, Host, LabError, Nat};

/// Every lab namespace is called `dl-PID-N-TAG-ROLE`; the PID lets a later run find and delete
/// the namespaces of a process that died without cleaning up.
const NS_PREFIX: &str = "dl-";

/// The public net's bridge address inside the public namespace; every public host and home
/// router routes by default through it.
pub const PUBLIC_GATEWAY: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);

/// The public net, `203.0.113.0/24` (TEST-NET-3), only ever used inside the lab.
pub const PUBLIC_NET: (Ipv4Addr, u8) = (Ipv4Addr::new(203, 0, 113, 0), 24);

/// Home routers' WAN addresses come from `203.0.113.100..=203.0.113.250`; public hosts may use
/// any other free address of the public net (`.2` to `.99` by convention).
const HOME_WAN_POOL: std::ops::RangeInclusive<u8> = 100..=250;

static NEXT_LAB: AtomicU32 = AtomicU32::new(0);

/// State shared by the lab and its homes.
#[derive(Debug)]
pub(crate) struct Shared {
    prefix: String,
    pub(crate) public_ns: String,
    /// Every namespace made, in creation order; deleted in reverse.
    namespaces: Vec<String>,
    names: BTreeSet<String>,
    /// Last octets of the public net in use (`.0`, `.1` and `.255` are reserved at start).
    used_public: BTreeSet<u8>,
    next_port: u32,
    next_home: u32,
}

impl Shared {
    /// A fresh namespace `PREFIX-ROLE`, recorded for deletion before it is configured, with
    /// IPv6 off for the links made later and `lo` up.
    pub(crate) fn add_netns(&mut self, role: &str) -> Result<String, LabError> {
        let name = format!("{}-{role}", self.prefix);
        ip(&["netns", "add", &name])?;
        self.namespaces.push(name.clone());
        sysctl_in(&name, &["net.ipv6.conf.default.disable_ipv6=1"])?;
        ip_in(&name, &["link", "set", "lo", "up"])?;
        Ok(name)
    }

    /// The next bridge port name in the public namespace (`p0`, `p1`, ...).
    pub(crate) fn next_bridge_port(&mut self) -> String {
        let port = format!("p{}", self.next_port);
        self.next_port += 1;
        port
    }

    /// Reserves a free address of the home WAN pool.
    pub(crate) fn alloc_home_wan(&mut self) -> Result<Ipv4Addr, LabError> {
        let octet = HOME_WAN_POOL
            .clone()
            .find(|octet| !self.used_public.contains(octet))
            .ok_or_else(|| LabError::Config("no free home WAN address left".to_owned()))?;
        self.used_public.insert(octet);
        Ok(public_addr(octet))
    }

    /// Returns a public address to the pool.
    pub(crate) fn release_public(&mut self, addr: Ipv4Addr) {
        self.used_public.remove(&addr.octets()[3]);
    }

    fn claim_name(&mut self, name: &str) -> Result<(), LabError> {
        check_name(name)?;
        if !self.names.insert(name.to_owned()) {
            return Err(LabError::Config(format!(
                "name {name:?} is already used in this lab"
            )));
        }
        Ok(())
    }

    fn take_namespaces(&mut self) -> Vec<String> {
        std::mem::take(&mut self.namespaces)
    }
}

pub(crate) fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

fn public_addr(octet: u8) -> Ipv4Addr {
    let [a, b, c, _] = PUBLIC_NET.0.octets();
    Ipv4Addr::new(a, b, c, octet)
}

/// Names become parts of namespace names: short, plain and free of the `-` separator.
fn check_name(name: &str) -> Result<(), LabError> {
    let ok = !name.is_empty()
        && name.len() <= 16
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(LabError::Config(format!(
            "name {name:?} must be 1 to 16 ASCII letters, digits or '_'"
        )))
    }
}

/// A network lab: a set of network namespaces forming a small internet.
///
/// See the [crate docs](crate) for the topology. Dropping the lab (also while unwinding from a
/// panic) kills the processes left in its namespaces and deletes the namespaces, and with them
/// every veth, bridge, rule and qdisc of the lab.
#[derive(Debug)]
pub struct Lab {
    shared: Arc<Mutex<Shared>>,
    public: Host,
}

impl Lab {
    /// Builds an empty lab: the public net (a bridge with a blackhole default route behind it).
    ///
    /// `tag` (1 to 16 ASCII letters, digits or `_`) goes into the namespace names to tell labs
    /// apart in `ip netns list`. First deletes namespaces left by dead processes of earlier runs.
    /// Returns [`LabError::Unavailable`] when the machine cannot host a lab (not root, no
    /// `ip netns`, `nft`, `tc`, `conntrack` or `sysctl`, or namespaces cannot be made).
    pub fn new(tag: &str) -> Result<Lab, LabError> {
        check_name(tag)?;
        check_available()?;
        remove_stale_namespaces();
        let prefix = format!(
            "{NS_PREFIX}{}-{}-{tag}",
            std::process::id(),
            NEXT_LAB.fetch_add(1, Ordering::Relaxed)
        );
        let mut shared = Shared {
            prefix,
            public_ns: String::new(),
            namespaces: Vec::new(),
            names: BTreeSet::new(),
            used_public: [0, 1, 255].into_iter().collect(),
            next_port: 0,
            next_home: 0,
        };
        // Creation failures after this point still delete what was made (Lab's Drop).
        let public_ns = match shared.add_netns("pub") {
            Ok(name) => name,
            Err(err @ LabError::Command { .. }) if shared.namespaces.is_empty() => {
                return Err(LabError::Unavailable(format!(
                    "cannot create a network namespace: {err}"
                )));
            }
            Err(err) => {
                cleanup_namespaces(shared.take_namespaces())?;
                return Err(err);
            }
        };
        shared.public_ns = public_ns.clone();
        let lab = Lab {
            shared: Arc::new(Mutex::new(shared)),
            public: Host::new(public_ns.clone(), PUBLIC_GATEWAY),
        };
        let gateway = format!("{PUBLIC_GATEWAY}/{}", PUBLIC_NET.1);
        ip_in(&public_ns, &["link", "add", "br0", "type", "bridge"])?;
        ip_in(&public_ns, &["addr", "add", &gateway, "dev", "br0"])?;
        ip_in(&public_ns, &["link", "set", "br0", "up"])?;
        sysctl_in(
            &public_ns,
            &[
                "net.ipv4.ip_forward=1",
                "net.ipv4.conf.all.send_redirects=0",
                "net.ipv4.conf.br0.send_redirects=0",
            ],
        )?;
        // The silent sink: whatever is addressed outside the lab's routed nets (a home's private
        // address, say) is forwarded here and discarded without an ICMP error, so a server
        // sending there never sees ENETUNREACH or EHOSTUNREACH.
        ip_in(&public_ns, &["route", "add", "blackhole", "default"])?;
        Ok(lab)
    }

    /// The public net's own namespace (the bridge `br0` and the blackhole route live there);
    /// its [`Host::ip`] is [`PUBLIC_GATEWAY`]. Useful for `tcpdump -i br0`.
    pub fn public_net(&self) -> &Host {
        &self.public
    }

    /// Adds a host on the public net with address `ip` (from `203.0.113.0/24`, not `.0`, `.1`
    /// or `.255`, by convention `.2` to `.99`), for signalling, STUN and TURN servers.
    ///
    /// Its one interface is `eth0`; its default route is [`PUBLIC_GATEWAY`].
    pub fn public_host(&self, name: &str, ip: Ipv4Addr) -> Result<Host, LabError> {
        let mut shared = lock(&self.shared);
        let [a, b, c, octet] = ip.octets();
        let [na, nb, nc, _] = PUBLIC_NET.0.octets();
        if [a, b, c] != [na, nb, nc] {
            return Err(LabError::Config(format!(
                "{ip} is not on the public net {}/{}",
                PUBLIC_NET.0, PUBLIC_NET.1
            )));
        }
        if shared.used_public.contains(&octet) {
            return Err(LabError::Config(format!("{ip} is reserved or in use")));
        }
        shared.claim_name(name)?;
        shared.used_public.insert(octet);
        let netns = shared.add_netns(&format!("p-{name}"))?;
        let port = shared.next_bridge_port();
        let public_ns = shared.public_ns.clone();
        ip_in(
            &public_ns,
            &[
                "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &netns,
            ],
        )?;
        ip_in(&public_ns, &["link", "set", &port, "master", "br0", "up"])?;
        let cidr = format!("{ip}/{}", PUBLIC_NET.1);
        ip_in(&netns, &["addr", "add", &cidr, "dev", "eth0"])?;
        ip_in(&netns, &["link", "set", "eth0", "up"])?;
        ip_in(
            &netns,
            &[
                "route",
                "add",
                "default",
                "via",
                &PUBLIC_GATEWAY.to_string(),
            ],
        )?;
        Ok(Host::new(netns, ip))
    }

    /// Adds a home with the given NAT and a default LAN (see [`HomeOptions`]).
    pub fn home(&self, name: &str, nat: Nat) -> Result<Home, LabError> {
        self.home_with(name, HomeOptions::new(nat))
    }

    /// Adds a home: a router on the public net (WAN address from `203.0.113.100..=250`) and one
    /// host behind it on the LAN.
    pub fn home_with(&self, name: &str, options: HomeOptions) -> Result<Home, LabError> {
        let mut shared = lock(&self.shared);
        shared.claim_name(name)?;
        let index = shared.next_home;
        shared.next_home += 1;
        Home::create(&self.shared, &mut shared, name, index, options)
    }

    /// The names of the namespaces this lab made and has not deleted yet.
    pub fn namespaces(&self) -> Vec<String> {
        lock(&self.shared).namespaces.clone()
    }

    /// The common start of this lab's namespace names (`dl-PID-N-TAG`).
    pub fn prefix(&self) -> String {
        lock(&self.shared).prefix.clone()
    }

    /// Kills the processes left in the lab's namespaces and deletes the namespaces now (Drop
    /// does the same). Idempotent; returns the first error after trying every namespace.
    pub fn cleanup(&self) -> Result<(), LabError> {
        let namespaces = lock(&self.shared).take_namespaces();
        cleanup_namespaces(namespaces)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Err(err) = self.cleanup() {
            eprintln!("netlab: cleaning up {}: {err}", self.public.netns());
        }
    }
}

fn cleanup_namespaces(mut namespaces: Vec<String>) -> Result<(), LabError> {
    let mut first_error = None;
    while let Some(name) = namespaces.pop() {
        if let Err(err) = delete_netns(&name) {
            first_error.get_or_insert(err);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Kills the processes inside `name` (never this one) and deletes the namespace.
fn delete_netns(name: &str) -> Result<(), LabError> {
    if let Ok(pids) = ip(&["netns", "pids", name]) {
        let own = std::process::id();
        for pid in pids
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            if u32::try_from(pid).ok() != Some(own) {
                // Already gone is fine.
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
    ip(&["netns", "delete", name]).map(drop)
}

/// Deletes `dl-PID-...` namespaces whose PID no longer runs (left by a crashed or killed test).
fn remove_stale_namespaces() {
    let Ok(entries) = fs::read_dir("/run/netns") else {
        return;
    };
    let own = std::process::id().to_string();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(NS_PREFIX)
            .and_then(|rest| rest.split('-').next())
            .filter(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        if pid != own && !Path::new("/proc").join(pid).exists() {
            // Another lab may be deleting it at the same moment.
            let _ = delete_netns(&name);
        }
    }
}

fn check_available() -> Result<(), LabError> {
    if !geteuid().is_root() {
        return Err(LabError::Unavailable(
            "needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) to make network namespaces".to_owned(),
        ));
    }
    let probes: [(&str, &[&str]); 5] = [
        ("ip", &["netns", "list"]),
        ("nft", &["--version"]),
        ("tc", &["-V"]),
        ("conntrack", &["--version"]),
        ("sysctl", &["--version"]),
    ];
    let missing: Vec<String> = probes
        .iter()
        .filter_map(|(program, args)| {
            crate::exec::run(Command::new(program).args(args.iter()))
                .err()
                .map(|err| format!("{program}: {err}"))
        })
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(LabError::Unavailable(format!(
            "missing tools (packages iproute2, nftables, conntrack, procps): {}",
            missing.join("; ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("alice_1").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a-b").is_err());
        assert!(check_name("a/b").is_err());
        assert!(check_name("abcdefghijklmnopq").is_err());
    }
}
