//! A home: a NAT router on the public net with one host behind it, and the impairments of its
//! WAN link.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, PoisonError};

use crate::exec::{exec_in, ip_in, nft_in, sysctl_in, tc_batch_in};
use crate::lab::{PUBLIC_GATEWAY, PUBLIC_NET, Shared, lock};
use crate::{Host, LabError};

/// How a home's router translates addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nat {
    /// Endpoint-independent mapping and filtering by address and port, like most home routers:
    /// one LAN socket keeps one public port whatever it talks to, so UDP hole punching works.
    /// nftables `masquerade to :20000-29999` (a fresh mapping gets a random port of that range),
    /// plus dropping unsolicited inbound packets in the router's input hook (see the crate docs).
    Cone,
    /// Endpoint-dependent mapping: each destination gets its own public port, so a port learned
    /// from a STUN server is useless to a peer. nftables `masquerade ... random`.
    Symmetric,
    /// No translation: the home's host has a routed public address (`198.18.N.2`, reachable
    /// from the public net through the router) and nothing is filtered.
    None,
}

impl Nat {
    fn translates(self) -> bool {
        !matches!(self, Nat::None)
    }
}

/// How to build a home; `HomeOptions::new(nat)` gives the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HomeOptions {
    nat: Nat,
    lan_subnet: Option<u8>,
}

impl HomeOptions {
    /// A home behind `nat`, on its own LAN `192.168.(10 + N).0/24` for the Nth home of the lab
    /// (or `198.18.N.0/24` with [`Nat::None`]).
    pub fn new(nat: Nat) -> Self {
        Self {
            nat,
            lan_subnet: None,
        }
    }

    /// Puts the LAN on `192.168.THIRD_OCTET.0/24` instead. Two homes may share a subnet (real
    /// homes often both use `192.168.1.0/24`): their hosts then have the same private address.
    /// Not allowed with [`Nat::None`].
    pub fn lan_subnet(mut self, third_octet: u8) -> Self {
        self.lan_subnet = Some(third_octet);
        self
    }
}

/// Impairment settings of a home's WAN link, reapplied as a whole on every change.
#[derive(Debug, Clone, Copy, Default)]
struct LinkState {
    wan_ip: Option<Ipv4Addr>,
    rate_kbit: Option<u32>,
    loss_up_permille: u32,
    loss_down_permille: u32,
    block_udp: bool,
    /// UDP is masqueraded to the alternate port range (see [`Home::flush_udp_mappings`]).
    udp_alternate_ports: bool,
}

/// A home: a router namespace (interfaces `wan`, on the public bridge, and `lan`) and a host
/// namespace behind it (interface `eth0`, default route via the router).
///
/// Every setter works at runtime, while traffic flows; methods take `&self` so a test can step
/// impairments from any thread. The router never answers or forwards unsolicited traffic from
/// the WAN (except with [`Nat::None`], which forwards everything).
#[derive(Debug)]
pub struct Home {
    shared: Arc<Mutex<Shared>>,
    nat: Nat,
    router: Host,
    host: Host,
    lan_subnet: Ipv4Addr,
    link: Mutex<LinkState>,
}

impl Home {
    pub(crate) fn create(
        shared_arc: &Arc<Mutex<Shared>>,
        shared: &mut Shared,
        name: &str,
        index: u32,
        options: HomeOptions,
    ) -> Result<Home, LabError> {
        let nat = options.nat;
        let lan_subnet = match (nat, options.lan_subnet) {
            (Nat::None, Some(_)) => {
                return Err(LabError::Config(
                    "a home without NAT has a routed LAN; lan_subnet does not apply".to_owned(),
                ));
            }
            (Nat::None, None) => Ipv4Addr::new(198, 18, octet(index, 0)?, 0),
            (_, Some(third)) => Ipv4Addr::new(192, 168, third, 0),
            (_, None) => Ipv4Addr::new(192, 168, octet(index, 10)?, 0),
        };
        let [a, b, c, _] = lan_subnet.octets();
        let gateway = Ipv4Addr::new(a, b, c, 1);
        let host_ip = Ipv4Addr::new(a, b, c, 2);
        let wan_ip = shared.alloc_home_wan()?;

        let router_ns = shared.add_netns(&format!("r-{name}"))?;
        let host_ns = shared.add_netns(&format!("h-{name}"))?;
        let public_ns = shared.public_ns.clone();
        let port = shared.next_bridge_port();

        sysctl_in(&router_ns, &["net.ipv4.ip_forward=1"])?;
        // WAN: a veth from the public bridge.
        ip_in(
            &public_ns,
            &[
                "link", "add", &port, "type", "veth", "peer", "name", "wan", "netns", &router_ns,
            ],
        )?;
        ip_in(&public_ns, &["link", "set", &port, "master", "br0", "up"])?;
        set_wan_address(&router_ns, None, wan_ip)?;
        // LAN: a veth from the router to the host.
        ip_in(
            &router_ns,
            &[
                "link", "add", "lan", "type", "veth", "peer", "name", "eth0", "netns", &host_ns,
            ],
        )?;
        ip_in(
            &router_ns,
            &["addr", "add", &format!("{gateway}/24"), "dev", "lan"],
        )?;
        ip_in(&router_ns, &["link", "set", "lan", "up"])?;
        ip_in(
            &host_ns,
            &["addr", "add", &format!("{host_ip}/24"), "dev", "eth0"],
        )?;
        ip_in(&host_ns, &["link", "set", "eth0", "up"])?;
        ip_in(
            &host_ns,
            &["route", "add", "default", "via", &gateway.to_string()],
        )?;
        nft_in(&router_ns, &router_ruleset(nat))?;
        if !nat.translates() {
            ip_in(
                &public_ns,
                &[
                    "route",
                    "add",
                    &format!("{lan_subnet}/24"),
                    "via",
                    &wan_ip.to_string(),
                ],
            )?;
        }
        Ok(Home {
            shared: Arc::clone(shared_arc),
            nat,
            router: Host::new(router_ns, gateway),
            host: Host::new(host_ns, host_ip),
            lan_subnet,
            link: Mutex::new(LinkState {
                wan_ip: Some(wan_ip),
                ..LinkState::default()
            }),
        })
    }

    /// The host behind the router.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The router (its [`Host::ip`] is the LAN gateway address). Run `conntrack -L` or
    /// `tcpdump -i wan` there.
    pub fn router(&self) -> &Host {
        &self.router
    }

    /// The NAT this home was built with.
    pub fn nat(&self) -> Nat {
        self.nat
    }

    /// The LAN's network address (a `/24`).
    pub fn lan_subnet(&self) -> Ipv4Addr {
        self.lan_subnet
    }

    /// The router's current WAN address: what public hosts see as the home's source address.
    pub fn public_ip(&self) -> Ipv4Addr {
        self.link_state().wan_ip.unwrap_or(Ipv4Addr::UNSPECIFIED)
    }

    fn link_state(&self) -> LinkState {
        *self.link.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Caps the WAN link at `rate_kbit` kbit/s in both directions (`None` removes the cap).
    ///
    /// tc `htb` on the egress of the router's `wan` (upload) and `lan` (download) interfaces,
    /// each with a `pfifo` queue holding about 150 ms of 1200-byte packets (at least 4), so a
    /// sender above the cap sees loss after a bounded delay, not an ever-growing queue.
    pub fn set_rate_kbit(&self, rate_kbit: Option<u32>) -> Result<(), LabError> {
        if rate_kbit == Some(0) {
            return Err(LabError::Config(
                "a rate of 0 kbit/s; use block_udp to cut traffic".to_owned(),
            ));
        }
        let mut link = self.link.lock().unwrap_or_else(PoisonError::into_inner);
        let mut script = String::new();
        for dev in ["wan", "lan"] {
            match rate_kbit {
                Some(kbit) => {
                    let limit = queue_packets(kbit);
                    // A pfifo cannot change its limit in place: a new rate replaces the whole
                    // tree (packets queued at that instant are dropped, as on a real re-shape).
                    if link.rate_kbit.is_some() {
                        let _ = writeln!(script, "qdisc del dev {dev} root");
                    }
                    let _ = writeln!(
                        script,
                        "qdisc add dev {dev} root handle 1: htb default 1\n\
                         class add dev {dev} parent 1: classid 1:1 htb rate {kbit}kbit \
                         ceil {kbit}kbit quantum 1514\n\
                         qdisc add dev {dev} parent 1:1 handle 10: pfifo limit {limit}"
                    );
                }
                None if link.rate_kbit.is_some() => {
                    let _ = writeln!(script, "qdisc del dev {dev} root");
                }
                None => {}
            }
        }
        if !script.is_empty() {
            tc_batch_in(self.router.netns(), &script)?;
        }
        link.rate_kbit = rate_kbit;
        Ok(())
    }

    /// Drops forwarded UDP at random: `up_permille` of the packets from the LAN to the WAN and
    /// `down_permille` of those from the WAN to the LAN (per mille, 0 to 1000).
    ///
    /// nftables `numgen random mod 1000 < N drop` in the router's forward hook, UDP only: media
    /// suffers while TCP signalling stays reliable, and the router's own traffic is untouched.
    pub fn set_loss_permille(&self, up_permille: u32, down_permille: u32) -> Result<(), LabError> {
        if up_permille > 1000 || down_permille > 1000 {
            return Err(LabError::Config(format!(
                "loss {up_permille}/{down_permille} per mille is above 1000"
            )));
        }
        self.update_filter(|link| {
            link.loss_up_permille = up_permille;
            link.loss_down_permille = down_permille;
        })
    }

    /// Drops all UDP forwarded through the router, both ways (`true`), or stops doing so.
    /// A UDP-blocking firewall: ICE must fall back to TURN over TCP.
    pub fn block_udp(&self, block: bool) -> Result<(), LabError> {
        self.update_filter(|link| link.block_udp = block)
    }

    /// Forgets every NAT mapping (`conntrack -F` in the router). The next packet of each flow
    /// gets a fresh mapping: with [`Nat::Cone`] and [`Nat::Symmetric`] almost surely a new public
    /// port, as when a real router reboots or times a mapping out.
    pub fn flush_conntrack(&self) -> Result<(), LabError> {
        exec_in(self.router.netns(), "conntrack", &["-F"]).map(drop)
    }

    /// Forgets the UDP mappings only (`conntrack -D -p udp`): media flows get new public ports
    /// while TCP connections (signalling) live on, as when a router times out idle UDP
    /// mappings or a carrier NAT rebinds them. The new ports are sure to differ: UDP moves
    /// between two port ranges (20000-29999 and 30000-39999) at each call, since masquerade
    /// would otherwise often pick the very port it had (its choice hashes the flow).
    pub fn flush_udp_mappings(&self) -> Result<(), LabError> {
        if self.nat.translates() {
            let mut link = self.link.lock().unwrap_or_else(PoisonError::into_inner);
            link.udp_alternate_ports = !link.udp_alternate_ports;
            nft_in(
                self.router.netns(),
                &postrouting_rules(self.nat, link.udp_alternate_ports),
            )?;
        }
        // conntrack exits 1 when nothing matched; that is not an error here.
        match exec_in(self.router.netns(), "conntrack", &["-D", "-p", "udp"]) {
            Ok(_) | Err(LabError::Command { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Gives the router a new WAN address from the pool and flushes its mappings, as when an ISP
    /// reassigns the home's address mid-call. Returns the new address.
    pub fn renumber(&self) -> Result<Ipv4Addr, LabError> {
        let mut link = self.link.lock().unwrap_or_else(PoisonError::into_inner);
        let old = link.wan_ip;
        let new = {
            let mut shared = lock(&self.shared);
            let new = shared.alloc_home_wan()?;
            if let Some(old) = old {
                shared.release_public(old);
            }
            new
        };
        set_wan_address(self.router.netns(), old, new)?;
        link.wan_ip = Some(new);
        if !self.nat.translates() {
            let public_ns = lock(&self.shared).public_ns.clone();
            ip_in(
                &public_ns,
                &[
                    "route",
                    "replace",
                    &format!("{}/24", self.lan_subnet),
                    "via",
                    &new.to_string(),
                ],
            )?;
        }
        drop(link);
        self.flush_conntrack()?;
        Ok(new)
    }

    fn update_filter(&self, change: impl FnOnce(&mut LinkState)) -> Result<(), LabError> {
        let mut link = self.link.lock().unwrap_or_else(PoisonError::into_inner);
        let mut next = *link;
        change(&mut next);
        nft_in(self.router.netns(), &impair_rules(&next))?;
        *link = next;
        Ok(())
    }
}

/// The third octet for the Nth home, or an error when the lab has too many homes.
fn octet(index: u32, base: u32) -> Result<u8, LabError> {
    u8::try_from(index + base).map_err(|_| LabError::Config("too many homes in one lab".to_owned()))
}

/// Packets of queue for about 150 ms at `kbit` with 1200-byte packets; at least 4.
fn queue_packets(kbit: u32) -> u64 {
    let bytes = u64::from(kbit) * 1000 / 8 * 150 / 1000;
    (bytes / 1200).clamp(4, 10_000)
}

/// (Re)addresses the router's WAN and its default route.
fn set_wan_address(router_ns: &str, old: Option<Ipv4Addr>, new: Ipv4Addr) -> Result<(), LabError> {
    if old.is_some() {
        ip_in(router_ns, &["addr", "flush", "dev", "wan"])?;
    }
    ip_in(
        router_ns,
        &[
            "addr",
            "add",
            &format!("{new}/{}", PUBLIC_NET.1),
            "dev",
            "wan",
        ],
    )?;
    ip_in(router_ns, &["link", "set", "wan", "up"])?;
    ip_in(
        router_ns,
        &[
            "route",
            "replace",
            "default",
            "via",
            &PUBLIC_GATEWAY.to_string(),
            "dev",
            "wan",
        ],
    )?;
    Ok(())
}

/// The router's nftables ruleset. Table `ip lab`; the `impair` chain is rewritten at runtime.
///
/// The input hook drops everything unsolicited from the WAN. For the cone NAT this is what makes
/// hole punching work: without it, a peer's early packet to the home's public port is delivered
/// locally, conntrack confirms an entry for it, and that entry clashes with the mapping the
/// home's own later packet to that peer needs, so masquerade picks another port.
/// Replaces the router's `postrouting` chain: UDP masqueraded to 20000-29999, or to
/// 30000-39999 when `udp_alternate`, TCP and the rest as [`router_ruleset`] has them.
fn postrouting_rules(nat: Nat, udp_alternate: bool) -> String {
    let random = if nat == Nat::Symmetric { " random" } else { "" };
    let udp = if udp_alternate {
        "30000-39999"
    } else {
        "20000-29999"
    };
    format!(
        "flush chain ip lab postrouting
         add rule ip lab postrouting oifname \"wan\" meta l4proto udp masquerade to :{udp}{random}
         add rule ip lab postrouting oifname \"wan\" meta l4proto tcp masquerade to :20000-29999{random}
         add rule ip lab postrouting oifname \"wan\" masquerade{random}
"
    )
}

fn router_ruleset(nat: Nat) -> String {
    let random = if nat == Nat::Symmetric { " random" } else { "" };
    let (forward_filter, postrouting) = if nat.translates() {
        (
            "    iifname \"wan\" oifname \"lan\" ct state established,related accept\n    \
             iifname \"wan\" oifname \"lan\" drop\n"
                .to_owned(),
            format!(
                "  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n    \
                 oifname \"wan\" meta l4proto {{ tcp, udp }} masquerade to :20000-29999{random}\n    \
                 oifname \"wan\" masquerade{random}\n  }}\n"
            ),
        )
    } else {
        (String::new(), String::new())
    };
    format!(
        "table ip lab {{\n  \
         chain input {{\n    type filter hook input priority filter; policy accept;\n    \
         iifname \"wan\" ct state established,related accept\n    \
         iifname \"wan\" drop\n  }}\n  \
         chain impair {{\n  }}\n  \
         chain forward {{\n    type filter hook forward priority filter; policy accept;\n    \
         jump impair\n{forward_filter}  }}\n{postrouting}}}\n"
    )
}

/// The `impair` chain's contents for `link`, as one atomic nft script.
fn impair_rules(link: &LinkState) -> String {
    let mut script = String::from("flush chain ip lab impair\n");
    if link.block_udp {
        script.push_str("add rule ip lab impair meta l4proto udp drop\n");
    }
    for (permille, from, to) in [
        (link.loss_up_permille, "lan", "wan"),
        (link.loss_down_permille, "wan", "lan"),
    ] {
        if permille > 0 {
            let _ = writeln!(
                script,
                "add rule ip lab impair iifname \"{from}\" oifname \"{to}\" meta l4proto udp \
                 numgen random mod 1000 < {permille} drop"
            );
        }
    }
    script
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_is_small_and_bounded() {
        assert_eq!(queue_packets(1000), 15);
        assert_eq!(queue_packets(64), 4);
        assert_eq!(queue_packets(100_000), 1562);
    }

    #[test]
    fn impair_rules_follow_state() {
        let idle = impair_rules(&LinkState::default());
        assert_eq!(idle, "flush chain ip lab impair\n");
        let busy = impair_rules(&LinkState {
            loss_up_permille: 100,
            block_udp: true,
            ..LinkState::default()
        });
        assert!(busy.contains("meta l4proto udp drop"));
        assert!(busy.contains(
            "iifname \"lan\" oifname \"wan\" meta l4proto udp numgen random mod 1000 < 100 drop"
        ));
        assert!(!busy.contains("iifname \"wan\" oifname \"lan\" meta l4proto udp numgen"));
    }

    #[test]
    fn rulesets_differ_by_nat() {
        assert!(router_ruleset(Nat::Symmetric).contains("masquerade to :20000-29999 random"));
        assert!(!router_ruleset(Nat::Cone).contains("random"));
        assert!(!router_ruleset(Nat::None).contains("masquerade"));
    }
}
