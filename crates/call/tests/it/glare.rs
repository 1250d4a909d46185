//! Glare: with a seed-style server (no `offerer` flag in `ready`), both sides offer at once;
//! the engines still agree on who backs down and the call connects.
use crate::common;

use std::time::Duration;

use call::Engine;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

/// A faithful Rust copy of the seed server's behaviour: relay to the other member, `ready`
/// without `offerer` to both when the second joins.
fn seed_server() -> (String, std::thread::JoinHandle<()>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let url = format!("ws://{}/", listener.local_addr().expect("addr"));
    let handle = std::thread::spawn(move || {
        rt.block_on(async move {
            let (tx, _) = tokio::sync::broadcast::channel::<(usize, String)>(256);
            let mut id = 0;
            let joined = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            while let Ok((stream, _)) = listener.accept().await {
                id += 1;
                let me = id;
                let tx = tx.clone();
                let mut rx = tx.subscribe();
                let joined = joined.clone();
                tokio::spawn(async move {
                    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else { return };
                    loop {
                        tokio::select! {
                            msg = ws.next() => {
                                let Some(Ok(Message::Text(t))) = msg else { break };
                                let v: serde_json::Value = serde_json::from_str(&t).unwrap_or_default();
                                if v["type"] == "join" {
                                    if joined.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == 2 {
                                        let ready = serde_json::json!({"type": "ready", "room": v["room"]}).to_string();
                                        let _ = tx.send((0, ready));
                                    }
                                } else {
                                    let _ = tx.send((me, t.to_string()));
                                }
                            }
                            Ok((from, text)) = rx.recv() => {
                                if from != me && ws.send(Message::Text(text.into())).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                });
            }
        });
    });
    (url, handle)
}

#[test]
fn both_offer_and_still_connect() {
    let (url, _server) = seed_server();
    let a = Engine::start(common::config(&url, "glare", 440.0), None).expect("engine a");
    let b = Engine::start(common::config(&url, "glare", 660.0), None).expect("engine b");
    let (mut sa, mut sb) = (common::Seen::default(), common::Seen::default());
    let ok = common::watch_both(
        &a,
        &mut sa,
        &b,
        &mut sb,
        Duration::from_secs(20),
        common::media_flowing(30, 50),
    );
    assert!(
        ok,
        "glare call did not connect: a={:?} {:?} b={:?} {:?}",
        sa.states, sa.stats, sb.states, sb.stats
    );
    // Both sides offered on `ready`, so the offers collided: one side ignored the other's
    // offer and the other rolled its own back.
    let ignored = sa.stats.glare_offers_ignored + sb.stats.glare_offers_ignored;
    let rollbacks = sa.stats.glare_rollbacks + sb.stats.glare_rollbacks;
    assert!(
        ignored >= 1 && rollbacks >= 1,
        "expected an ignored offer and a rollback ({ignored}, {rollbacks}): a={:?} b={:?}",
        sa.stats,
        sb.stats
    );
}
