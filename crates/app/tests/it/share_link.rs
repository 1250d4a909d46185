//! The embedded server: what the share links point at works. The app's hosting function
//! serves the browser client at the browser link, and two browser-less peers (`duet call`)
//! that take the signal URL from the share link meet in the room and exchange media.
//! Everything runs on 127.0.0.1 (the LAN address itself is never contacted in tests).

use crate::common;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{KillOnDrop, duet, unique_room};
use duet::share::{host_signal, parse_server, share_links};

#[test]
fn peers_join_through_the_share_link() {
    // Real calls: not at the same time as a lab test measuring frame rates.
    let _slot = crate::common::slots::call_slot();
    let hosted = host_signal(IpAddr::V4(Ipv4Addr::LOCALHOST), 0).expect("host a signal server");
    let port = hosted.addr().port();
    let room = unique_room("share link");
    let links = share_links(IpAddr::V4(Ipv4Addr::LOCALHOST), port, &room);

    // The browser link serves the web client.
    let path = links
        .browser
        .split_once(&format!(":{port}"))
        .map(|(_, p)| p.to_owned())
        .expect("link has the port");
    let mut http = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    http.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(
        http,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .expect("send request");
    let mut response = String::new();
    http.read_to_string(&mut response).expect("read response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response:.200}");
    assert!(
        response.to_ascii_lowercase().contains("<html"),
        "serves a page"
    );

    // What a person pastes (the browser link) and what another duet runs give the same server.
    let target = parse_server(&links.browser).expect("the share link parses");
    assert_eq!(target.room.as_deref(), Some(room.as_str()));
    assert_eq!(target.signal_url, links.signal_url);
    assert!(
        links
            .duet
            .ends_with(&format!("--signal {}", links.signal_url)),
        "{}",
        links.duet
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let peer = |name: &str| {
        let report = dir.path().join(format!("{name}.json"));
        let child = duet()
            .args(["call", &room, "--signal", &target.signal_url, "--loopback"])
            .args(["--video", "test", "--audio", "tone", "--size", "320x240"])
            .args(["--duration", "8", "--stats-every", "0", "--stats-json"])
            .arg(&report)
            .stdout(Stdio::null())
            .spawn()
            .expect("start duet call");
        (KillOnDrop(child), report)
    };
    let (mut a, a_report) = peer("a");
    let (mut b, b_report) = peer("b");
    let deadline = Instant::now() + Duration::from_secs(40);
    for (child, name) in [(&mut a, "a"), (&mut b, "b")] {
        let status = loop {
            if let Some(status) = child.0.try_wait().expect("wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "peer {name} did not finish");
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(status.success(), "peer {name} failed: {status}");
    }
    for report in [a_report, b_report] {
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&report).expect("report")).expect("json");
        assert_eq!(json["success"], true, "{json}");
        assert!(
            json["stats"]["pattern_frames"].as_u64().unwrap_or(0) > 0,
            "test-pattern frames arrived: {json}"
        );
    }
}
