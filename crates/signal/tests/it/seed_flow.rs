//! A client written for the seed server works unchanged: join, ready, offer, answer,
//! candidates both ways including the null end-of-candidates, every field preserved.
#![allow(clippy::unwrap_used)]
use crate::common;

use common::{Client, TestServer};
use serde_json::json;

#[tokio::test]
async fn seed_client_flow() {
    let server = TestServer::start().await;
    let (mut a, mut b) = common::pair(&server, "seed").await;

    // Seed clients send exactly these shapes; extra fields must survive the relay.
    let offer = json!({"type": "offer", "room": "seed", "offer": {"type": "offer", "sdp": "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n"}, "x-extra": [1, 2, {"k": null}]});
    a.send_json(offer.clone()).await;
    assert_eq!(b.recv().await, offer);

    let answer =
        json!({"type": "answer", "room": "seed", "answer": {"type": "answer", "sdp": "v=0\r\n"}});
    b.send_json(answer.clone()).await;
    assert_eq!(a.recv().await, answer);

    let cand_a = json!({"type": "candidate", "room": "seed", "candidate": {"candidate": "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}});
    let cand_b = json!({"type": "candidate", "room": "seed", "candidate": {"candidate": "candidate:2 1 udp 2130706431 127.0.0.1 5001 typ host", "sdpMid": "0", "sdpMLineIndex": 0, "usernameFragment": "abcd"}});
    a.send_json(cand_a.clone()).await;
    b.send_json(cand_b.clone()).await;
    assert_eq!(b.recv().await, cand_a);
    assert_eq!(a.recv().await, cand_b);

    // End of candidates, as a browser's `onicecandidate` with `event.candidate === null`.
    let end = json!({"type": "candidate", "room": "seed", "candidate": null});
    a.send_json(end.clone()).await;
    b.send_json(end.clone()).await;
    assert_eq!(b.recv().await, end);
    assert_eq!(a.recv().await, end);

    // Nothing is echoed back to a sender.
    a.expect_silence().await;
    b.expect_silence().await;
    server.shutdown().await;
}

#[tokio::test]
async fn relayed_text_is_forwarded_byte_for_byte() {
    let server = TestServer::start().await;
    let (mut a, mut b) = common::pair(&server, "bytes").await;
    // Unusual but valid JSON formatting and escapes are kept exactly.
    let text = "{ \"type\" : \"candidate\",\"room\":\"bytes\",\"candidate\":{\"candidate\":\"\\u0063and\"} , \"n\": 1.50 }";
    a.send_text(text).await;
    let got = match b.ws.next_text().await {
        Some(t) => t,
        None => panic!("no message"),
    };
    assert_eq!(got, text);
    server.shutdown().await;
}

trait NextText {
    async fn next_text(&mut self) -> Option<String>;
}

impl NextText
    for tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>
{
    async fn next_text(&mut self) -> Option<String> {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let deadline = common::WAIT;
        tokio::time::timeout(deadline, async {
            while let Some(Ok(msg)) = self.next().await {
                if let Message::Text(t) = msg {
                    return Some(t.to_string());
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
    }
}

#[tokio::test]
async fn ready_has_exactly_one_offerer_the_first_joiner() {
    let server = TestServer::start().await;
    let mut first = Client::connect(&server.url()).await;
    let mut second = Client::connect(&server.url()).await;
    first.join("order").await;
    first.sync().await;
    second.join("order").await;
    let f = first.recv().await;
    let s = second.recv().await;
    assert_eq!(f["offerer"], true);
    assert_eq!(s["offerer"], false);
    assert_eq!(f["type"], "ready");
    assert_eq!(s["room"], "order");
    server.shutdown().await;
}
