//! The Rust client the call engine uses: connect, join, exchange messages, see peer-left, and
//! get clear errors for bad URLs and unreachable servers.
#![allow(clippy::unwrap_used)]
use crate::common;

use std::time::Duration;

use common::TestServer;
use serde_json::json;
use signal::client::{self, ClientError, SignalEvent};
use signal::{ClientMessage, ServerMessage};

async fn next(rx: &mut client::SignalReceiver) -> SignalEvent {
    tokio::time::timeout(common::WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn client_round_trip() {
    let server = TestServer::start().await;
    let (a, mut a_rx) = client::connect(&server.url(), Duration::from_secs(2))
        .await
        .unwrap();
    let (b, mut b_rx) = client::connect(&server.url(), Duration::from_secs(2))
        .await
        .unwrap();
    a.join("api").await.unwrap();
    common::wait_for(|| server.stats.stats().rooms == 1).await;
    b.join("api").await.unwrap();
    assert_eq!(
        next(&mut a_rx).await,
        SignalEvent::Message(ServerMessage::Ready {
            room: "api".into(),
            offerer: Some(true),
            ice_servers: None
        })
    );
    assert_eq!(
        next(&mut b_rx).await,
        SignalEvent::Message(ServerMessage::Ready {
            room: "api".into(),
            offerer: Some(false),
            ice_servers: None
        })
    );
    let offer = json!({"type": "offer", "sdp": "v=0\r\n"});
    a.send(ClientMessage::Offer {
        room: "api".into(),
        offer: offer.clone(),
    })
    .await
    .unwrap();
    assert_eq!(
        next(&mut b_rx).await,
        SignalEvent::Message(ServerMessage::Offer {
            room: "api".into(),
            offer
        })
    );
    b.send(ClientMessage::Candidate {
        room: "api".into(),
        candidate: None,
    })
    .await
    .unwrap();
    assert_eq!(
        next(&mut a_rx).await,
        SignalEvent::Message(ServerMessage::Candidate {
            room: "api".into(),
            candidate: None
        })
    );
    b.leave("api").await.unwrap();
    assert_eq!(
        next(&mut a_rx).await,
        SignalEvent::Message(ServerMessage::PeerLeft { room: "api".into() })
    );
    // Dropping the sender hangs up; the receiver then reports the end.
    drop(b);
    assert!(matches!(next(&mut b_rx).await, SignalEvent::Closed(_)));
    server.shutdown().await;
    assert!(
        matches!(next(&mut a_rx).await, SignalEvent::Closed(Some(reason)) if reason.contains("1001"))
    );
}

#[tokio::test]
async fn client_errors_are_clear() {
    let err = client::connect("http://127.0.0.1:1/", Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::InvalidUrl(_)));
    // Nothing listens on port 1 of loopback.
    let err = client::connect("ws://127.0.0.1:1/", Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains("127.0.0.1:1"));
}
