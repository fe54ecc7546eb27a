use fastwebsockets::{Frame, OpCode, Payload, Role, WebSocket};

use super::{Event, ImageFormat, decode_binary, decode_text, read_message};

/// A client socket whose peer sends `frames` (fin, opcode, payload).
fn peer_sends(frames: Vec<(bool, OpCode, Vec<u8>)>) -> WebSocket<tokio::io::DuplexStream> {
    let (client_io, server_io) = tokio::io::duplex(1 << 20);
    let mut server = WebSocket::after_handshake(server_io, Role::Server);
    tokio::spawn(async move {
        for (fin, op, payload) in frames {
            if server
                .write_frame(Frame::new(fin, op, None, Payload::Owned(payload)))
                .await
                .is_err()
            {
                return;
            }
        }
    });
    WebSocket::after_handshake(client_io, Role::Client)
}

#[tokio::test]
async fn fragmented_messages_are_reassembled_and_capped_in_total() {
    let text = br#"{"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}}}}"#.to_vec();
    let (a, b) = text.split_at(10);
    let (b, c) = b.split_at(20);
    let mut ws = peer_sends(vec![
        (false, OpCode::Text, a.to_vec()),
        (false, OpCode::Continuation, b.to_vec()),
        (true, OpCode::Continuation, c.to_vec()),
        (true, OpCode::Binary, vec![0, 0, 0, 1, 0, 0, 0, 2, 0xff]),
    ]);
    let (op, bytes) = read_message(&mut ws, 1024).await.unwrap().unwrap();
    assert_eq!((op, bytes.as_ref()), (OpCode::Text, text.as_slice()));
    let (op, bytes) = read_message(&mut ws, 1024).await.unwrap().unwrap();
    assert_eq!((op, bytes.len()), (OpCode::Binary, 9));

    // Every frame is small; together they pass the cap: refused as soon
    // as they do, not after buffering them all.
    let mut frames = vec![(false, OpCode::Text, vec![b' '; 600])];
    frames.extend((0..1000).map(|_| (false, OpCode::Continuation, vec![b' '; 600])));
    let mut ws = peer_sends(frames);
    let err = read_message(&mut ws, 4096).await.unwrap_err();
    assert!(err.to_string().contains("limit of 4096 bytes"), "{err}");
}

proptest::proptest! {
    /// Fuzz target `ws_decoder`: no frame makes the decoder panic.
    #[test]
    fn fuzz_ws_decoder_never_panics_on_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
        let _ = decode_text(&bytes);
        let _ = decode_binary(&bytes);
    }

    /// Fuzz target `ws_decoder`: ComfyUI-shaped messages with any values.
    #[test]
    fn fuzz_ws_decoder_never_panics_on_messages(
        kind in "(status|progress|executing|executed|execution_start|execution_cached|execution_error|execution_success|execution_interrupted|progress_state|[a-z_]{0,12})",
        data in proptest_json(),
    ) {
        let text = serde_json::json!({"type": kind, "data": data}).to_string();
        let _ = decode_text(text.as_bytes());
    }
}

/// Any JSON value, a few levels deep, with ComfyUI's field names.
fn proptest_json() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        "\\PC{0,16}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            proptest::collection::vec(
                (
                    "(prompt_id|node|value|max|nodes|output|status|exec_info|queue_remaining|display_node|[a-z]{1,6})",
                    inner
                ),
                0..6
            )
            .prop_map(|kv| serde_json::Value::Object(kv.into_iter().collect())),
        ]
    })
}

#[test]
fn decodes_comfyui_messages_and_skips_junk() {
    let ev = decode_text(br#"{"type": "progress", "data": {"value": 2, "max": 4, "prompt_id": "p", "node": "3"}}"#);
    assert_eq!(
        ev,
        Some(Event::Progress {
            prompt_id: "p".into(),
            node: "3".into(),
            value: 2,
            max: 4
        })
    );
    assert!(decode_text(b"{not json").is_none());
    assert!(decode_text(br#"{"data": {}}"#).is_none());
    assert!(
        decode_text(br#"{"type": "executing", "data": {"node": "1"}}"#).is_none(),
        "no prompt id"
    );
    assert!(matches!(
        decode_text(br#"{"type": "brand_new", "data": {"x": 1}}"#),
        Some(Event::Other { .. })
    ));
    assert!(decode_text(br#"{"type": "progress", "data": {"value": NaN}}"#).is_none());
}

#[test]
fn decodes_binary_frames() {
    let mut jpeg = vec![0, 0, 0, 1, 0, 0, 0, 1];
    jpeg.extend_from_slice(&[0xff, 0xd8]);
    assert!(matches!(
        decode_binary(&jpeg),
        Some(Event::Preview {
            format: ImageFormat::Jpeg,
            ..
        })
    ));
    let text = [0, 0, 0, 3, 0, 0, 0, 1, b'2', b'h', b'i'];
    assert_eq!(
        decode_binary(&text),
        Some(Event::Text {
            node: "2".into(),
            text: "hi".into()
        })
    );
    let meta = br#"{"node_id": "5", "prompt_id": "p", "image_type": "image/png"}"#;
    let mut four = vec![0, 0, 0, 4];
    four.extend_from_slice(&(meta.len() as u32).to_be_bytes());
    four.extend_from_slice(meta);
    four.push(0x89);
    assert!(
        matches!(decode_binary(&four), Some(Event::Preview { prompt_id: Some(p), format: ImageFormat::Png, .. }) if p == "p")
    );
    assert!(decode_binary(&[0, 0, 0, 99]).is_none());
    assert!(
        decode_binary(&[0, 0, 0, 3, 0, 0, 0, 50, b'x']).is_none(),
        "length past the end"
    );
    assert!(decode_binary(&[1]).is_none());
}
