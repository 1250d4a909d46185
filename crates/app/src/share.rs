//! "Host on this computer": the in-process signal server, this machine's LAN address, and the
//! share links that bring a second person (browser or `duet`) into the same room.
//!
//! Finding the LAN address only reads the interface list; it sends nothing.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use signal::HostedSignal;

/// The port "Host on this computer" tries first.
pub const DEFAULT_HOST_PORT: u16 = 8080;

/// How a second person joins the room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareLinks {
    /// `http://ADDR:PORT/?room=NAME`: the browser client served by the signal server.
    pub browser: String,
    /// `duet --join NAME --signal ws://ADDR:PORT/`: the same room from another duet.
    pub duet: String,
    /// `ws://ADDR:PORT/`: the signal URL others use.
    pub signal_url: String,
}

/// Share links for a server at `host:port` (the hosted server, seen from the LAN).
pub fn share_links(host: IpAddr, port: u16, room: &str) -> ShareLinks {
    let authority = SocketAddr::new(host, port).to_string();
    let signal_url = format!("ws://{authority}/");
    ShareLinks {
        browser: format!("http://{authority}/?room={}", percent_encode(room)),
        duet: duet_command(room, &signal_url),
        signal_url,
    }
}

/// Share links for a server given by its `ws://` or `wss://` URL (a server elsewhere). The
/// browser link assumes that server also serves the web client, as `signal` does.
pub fn share_links_for_url(signal_url: &str, room: &str) -> ShareLinks {
    let web = if let Some(rest) = signal_url.strip_prefix("wss://") {
        format!("https://{rest}")
    } else if let Some(rest) = signal_url.strip_prefix("ws://") {
        format!("http://{rest}")
    } else {
        signal_url.to_owned()
    };
    let base = web.split(['?', '#']).next().unwrap_or(&web);
    let separator = if base.ends_with('/') { "" } else { "/" };
    ShareLinks {
        browser: format!("{base}{separator}?room={}", percent_encode(room)),
        duet: duet_command(room, signal_url),
        signal_url: signal_url.to_owned(),
    }
}

fn duet_command(room: &str, signal_url: &str) -> String {
    format!(
        "duet --join {} --signal {}",
        shell_quote(room),
        shell_quote(signal_url)
    )
}

/// What the "server" field of the start screen means: a `ws://`/`wss://` URL as typed, or a
/// pasted browser share link (`http://host:port/?room=x`) turned into its signal URL and room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTarget {
    /// `ws://` or `wss://` URL of the signal server.
    pub signal_url: String,
    /// The room named in a pasted share link.
    pub room: Option<String>,
}

/// Parses the server field; `Err` says what is wrong, for people.
pub fn parse_server(text: &str) -> Result<ServerTarget, String> {
    let text = text.trim();
    let (scheme, rest) = text
        .split_once("://")
        .ok_or_else(|| "the server address starts with ws://, wss:// or http(s)://".to_owned())?;
    let ws_scheme = match scheme.to_ascii_lowercase().as_str() {
        "ws" | "http" => "ws",
        "wss" | "https" => "wss",
        _ => return Err(format!("unknown scheme {scheme:?}: use ws:// or wss://")),
    };
    let (before_fragment, _) = rest.split_once('#').unwrap_or((rest, ""));
    let (path, query) = before_fragment
        .split_once('?')
        .unwrap_or((before_fragment, ""));
    let host = path.split('/').next().unwrap_or("");
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err("the server address has no host name".to_owned());
    }
    let room = query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == "room").then(|| percent_decode(value))
    });
    // A browser link points at the web client; the signal endpoint is the server root.
    let path = if scheme.starts_with("http") {
        format!("{host}/")
    } else if path.contains('/') {
        path.to_owned()
    } else {
        format!("{path}/")
    };
    Ok(ServerTarget {
        signal_url: format!("{ws_scheme}://{path}"),
        room: room.filter(|r| !r.is_empty()),
    })
}

/// This machine's address on the local network, for share links: the first private IPv4
/// address of an interface that is up (skipping container bridges), else any non-loopback
/// IPv4, else `None`. Reads the interface list only.
pub fn lan_address() -> Option<IpAddr> {
    let interfaces = if_addrs::get_if_addrs().ok()?;
    let candidates: Vec<(String, IpAddr)> = interfaces
        .into_iter()
        .filter(|i| i.is_oper_up() || i.oper_status == if_addrs::IfOperStatus::Unknown)
        .map(|i| (i.name.clone(), i.ip()))
        .collect();
    pick_lan_address(&candidates)
}

/// The choice behind [`lan_address`], over `(interface name, address)` pairs.
pub fn pick_lan_address(candidates: &[(String, IpAddr)]) -> Option<IpAddr> {
    const VIRTUAL: &[&str] = &["docker", "br-", "veth", "virbr", "cni", "flannel", "podman"];
    let usable = |ip: &Ipv4Addr| !ip.is_loopback() && !ip.is_link_local() && !ip.is_unspecified();
    let v4: Vec<(&str, Ipv4Addr)> = candidates
        .iter()
        .filter_map(|(name, ip)| match ip {
            IpAddr::V4(v4) if usable(v4) => Some((name.as_str(), *v4)),
            _ => None,
        })
        .collect();
    let physical = |name: &str| !VIRTUAL.iter().any(|p| name.starts_with(p));
    v4.iter()
        .find(|(name, ip)| ip.is_private() && physical(name))
        .or_else(|| v4.iter().find(|(name, _)| physical(name)))
        .or_else(|| v4.first())
        .map(|(_, ip)| IpAddr::V4(*ip))
}

/// Starts the in-process signal server on `ip:port`, or on a free port of `ip` when that port
/// is taken. Serves the browser client at `GET /`.
pub fn host_signal(ip: IpAddr, port: u16) -> Result<HostedSignal, String> {
    let config = || signal::Config {
        pages: Some(signal::web::pages()),
        ..signal::Config::default()
    };
    match HostedSignal::start(SocketAddr::new(ip, port), config()) {
        Ok(hosted) => Ok(hosted),
        Err(first) if port != 0 => {
            tracing::info!(%ip, port, error = %first, "port taken; hosting on a free port");
            HostedSignal::start(SocketAddr::new(ip, 0), config()).map_err(|e| e.to_string())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Percent-encodes everything except RFC 3986 unreserved characters.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes and `+` (as a space); invalid escapes are kept as they are.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Quotes `text` for a POSIX shell when it needs it.
fn shell_quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_for_a_lan_host() {
        let links = share_links(
            IpAddr::V4(Ipv4Addr::new(192, 168, 1, 20)),
            8080,
            "team sync",
        );
        assert_eq!(links.browser, "http://192.168.1.20:8080/?room=team%20sync");
        assert_eq!(
            links.duet,
            "duet --join 'team sync' --signal ws://192.168.1.20:8080/"
        );
        assert_eq!(links.signal_url, "ws://192.168.1.20:8080/");
    }

    #[test]
    fn links_round_trip_through_the_server_field() {
        for room in ["plain", "with space", "ünïcode/&?=#", "it's"] {
            let links = share_links(IpAddr::V4(Ipv4Addr::LOCALHOST), 9000, room);
            let target = parse_server(&links.browser).expect("parses");
            assert_eq!(target.signal_url, "ws://127.0.0.1:9000/");
            assert_eq!(target.room.as_deref(), Some(room));
        }
    }

    #[test]
    fn links_for_a_remote_server() {
        let links = share_links_for_url("wss://call.example.org/", "abc");
        assert_eq!(links.browser, "https://call.example.org/?room=abc");
        let links = share_links_for_url("ws://10.0.0.2:8080", "abc");
        assert_eq!(links.browser, "http://10.0.0.2:8080/?room=abc");
    }

    #[test]
    fn server_field() {
        let t = parse_server(" wss://call.example.org/signal ").expect("ok");
        assert_eq!(t.signal_url, "wss://call.example.org/signal");
        assert_eq!(t.room, None);
        assert_eq!(
            parse_server("ws://h:1").expect("ok").signal_url,
            "ws://h:1/"
        );
        assert!(parse_server("call.example.org").is_err());
        assert!(parse_server("ftp://x/").is_err());
        assert!(parse_server("ws:///").is_err());
        let t = parse_server("https://call.example.org/?room=a%2Bb+c").expect("ok");
        assert_eq!(t.signal_url, "wss://call.example.org/");
        assert_eq!(t.room.as_deref(), Some("a+b c"));
    }

    #[test]
    fn lan_address_choice() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        let list = vec![
            ("lo".to_owned(), ip("127.0.0.1")),
            ("docker0".to_owned(), ip("172.17.0.1")),
            ("eth0".to_owned(), ip("192.168.1.7")),
            ("eth0".to_owned(), ip("fe80::1")),
        ];
        assert_eq!(pick_lan_address(&list), Some(ip("192.168.1.7")));
        let only_public = vec![("eth0".to_owned(), ip("203.0.113.5"))];
        assert_eq!(pick_lan_address(&only_public), Some(ip("203.0.113.5")));
        assert_eq!(
            pick_lan_address(&[("lo".to_owned(), ip("127.0.0.1"))]),
            None
        );
    }
}
