//! The frame-level rules of RFC 6455 section 5 (those Autobahn's cases 1 to 7 check), one
//! test per rule, spoken byte by byte to a real server. Each violation is followed by a
//! ping in the same write: the server must fail the connection at the violating frame,
//! with its close frame next and nothing after it (no pong).

mod common;

use common::raw::{close, frame, Raw, BINARY, CLOSE, CONTINUATION, MASK, PING, PONG, TEXT};
use common::{test_limits, TestServer};
use serde_json::{json, Value};
use transport_ws::WsConfig;

/// Sends `bytes` and then a ping on a new connection; returns the close code the server
/// fails the connection with (checking the close comes next and nothing follows it).
async fn fails_at(server: &TestServer, bytes: &[u8]) -> Option<u16> {
    let mut raw = Raw::hello(server).await;
    raw.send(&[bytes, &frame(PING, true, b"after")[..]].concat())
        .await;
    raw.fails_with().await
}

/// A request whose reply echoes `id`, as one text payload.
fn request(id: &str) -> Vec<u8> {
    json!({"type": "list_channels", "id": id})
        .to_string()
        .into_bytes()
}

/// The `id` the reply echoes.
fn replied(reply: &Value) -> &str {
    reply["id"].as_str().expect("a reply with an id")
}

on_both! {
async fn reserved_bits_without_a_negotiated_extension_fail_with_1002() {
    let server = TestServer::start(test_limits());
    for rsv in 1..=7u8 {
        for mut bytes in [frame(TEXT, true, &request("rsv")), frame(PING, true, b"")] {
            bytes[0] |= rsv << 4;
            assert_eq!(fails_at(&server, &bytes).await, Some(1002), "RSV {rsv}");
        }
    }
}
}

on_both! {
async fn reserved_opcodes_fail_with_1002() {
    let server = TestServer::start(test_limits());
    for opcode in (0x3..=0x7).chain(0xB..=0xF) {
        for payload in [&b""[..], b"reserved"] {
            let bytes = frame(opcode, true, payload);
            assert_eq!(fails_at(&server, &bytes).await, Some(1002), "{opcode:#x}");
        }
    }
}
}

on_both! {
async fn control_frames_over_125_bytes_fail_with_1002() {
    let server = TestServer::start(test_limits());
    let close_126 = [&1000u16.to_be_bytes()[..], &[b'*'; 124]].concat();
    let long = [b'*'; 126];
    for (opcode, payload) in [
        (PING, &long[..]),
        (PONG, &long[..]),
        (CLOSE, &close_126[..]),
    ] {
        let bytes = frame(opcode, true, payload);
        assert_eq!(fails_at(&server, &bytes).await, Some(1002), "{opcode:#x}");
    }
}
}

on_both! {
async fn a_control_frame_over_125_bytes_fails_from_its_header_alone() {
    let server = TestServer::start(test_limits());
    // Only the headers: the server must not wait for a payload it will refuse anyway, and
    // a control frame announcing more than the size limit is a protocol error too.
    let mut header_126 = frame(PING, true, &[b'*'; 126]);
    header_126.truncate(2 + 2 + MASK.len());
    let mut header_1_tib = vec![0x80 | PING, 0x80 | 127];
    header_1_tib.extend_from_slice(&(1u64 << 40).to_be_bytes());
    header_1_tib.extend_from_slice(&MASK);
    for header in [header_126, header_1_tib] {
        let mut raw = Raw::hello(&server).await;
        raw.send(&header).await;
        assert_eq!(raw.fails_with().await, Some(1002), "{header:x?}");
    }
}
}

on_both! {
async fn control_frames_without_fin_fail_with_1002() {
    let server = TestServer::start(test_limits());
    for opcode in [PING, PONG, CLOSE] {
        let payload = [&1000u16.to_be_bytes()[..], b"x"].concat();
        // Alone, as Autobahn 5.1 sends it (the rest in a continuation frame), and in the
        // middle of a fragmented message.
        let alone = [
            frame(opcode, false, &payload),
            frame(CONTINUATION, true, b""),
        ];
        let inside = [
            frame(TEXT, false, b"{"),
            frame(opcode, false, &payload),
            frame(CONTINUATION, true, b"}"),
        ];
        for bytes in [alone.concat(), inside.concat()] {
            assert_eq!(fails_at(&server, &bytes).await, Some(1002), "{opcode:#x}");
        }
    }
}
}

on_both! {
async fn a_continuation_with_no_message_started_fails_with_1002() {
    let server = TestServer::start(test_limits());
    for fin in [true, false] {
        let bytes = frame(CONTINUATION, fin, &request("stray"));
        assert_eq!(fails_at(&server, &bytes).await, Some(1002), "FIN {fin}");
    }
    // After a whole fragmented message: that one is answered, the stray one fails.
    let message = request("whole");
    let (a, b) = message.split_at(5);
    let mut raw = Raw::hello(&server).await;
    raw.send(
        &[
            frame(TEXT, false, a),
            frame(CONTINUATION, true, b),
            frame(CONTINUATION, true, b"x"),
        ]
        .concat(),
    )
    .await;
    assert_eq!(replied(&raw.json().await), "whole");
    assert_eq!(raw.fails_with().await, Some(1002));
}
}

on_both! {
async fn a_new_message_inside_a_fragmented_one_fails_with_1002() {
    let server = TestServer::start(test_limits());
    for (first, second, fin) in [
        (TEXT, TEXT, false),
        (TEXT, TEXT, true),
        (BINARY, TEXT, true),
        (TEXT, BINARY, false),
    ] {
        let bytes = [frame(first, false, b"{"), frame(second, fin, b"}")].concat();
        assert_eq!(fails_at(&server, &bytes).await, Some(1002), "{second:#x}");
    }
}
}

on_both! {
async fn control_frames_between_fragments_are_answered_and_the_message_reassembles() {
    let server = TestServer::start(test_limits());
    let mut raw = Raw::hello(&server).await;
    let message = request("five pieces");
    // Two of the five pieces are empty, which fragments may be.
    let cuts = [0, 0, 10, 11, 11, message.len()];
    let mut bytes = Vec::new();
    for i in 0..5 {
        let (opcode, fin) = (if i == 0 { TEXT } else { CONTINUATION }, i == 4);
        bytes.extend(frame(opcode, fin, &message[cuts[i]..cuts[i + 1]]));
        if !fin {
            bytes.extend(frame(PING, true, format!("ping {i}").as_bytes()));
            bytes.extend(frame(PONG, true, b"unsolicited"));
        }
    }
    raw.send(&bytes).await;
    for i in 0..4 {
        let pong = raw.next().await;
        assert_eq!(
            (pong.opcode, pong.payload),
            (PONG, format!("ping {i}").into())
        );
    }
    assert_eq!(replied(&raw.json().await), "five pieces");
}
}

on_both! {
async fn a_code_point_split_across_fragments_is_valid_utf8() {
    let server = TestServer::start(test_limits());
    // "€" is 3 bytes and "𝄞" 4: one byte per fragment cuts each code point everywhere.
    let message = request("€𝄞");
    let start = message.windows(3).position(|w| w == "€".as_bytes());
    let start = start.expect("€ is in the message");
    let end = start + "€𝄞".len();
    let mut bytes = frame(TEXT, false, &message[..start]);
    for byte in &message[start..end] {
        bytes.extend(frame(CONTINUATION, false, &[*byte]));
    }
    bytes.extend(frame(CONTINUATION, true, &message[end..]));
    let mut raw = Raw::hello(&server).await;
    raw.send(&bytes).await;
    assert_eq!(replied(&raw.json().await), "€𝄞");
}
}

on_both! {
async fn text_that_is_not_utf8_fails_with_1007_whole_or_fragmented() {
    let server = TestServer::start(test_limits());
    let invalid: [&[u8]; 7] = [
        b"\xff",             // never in UTF-8
        b"\x80",             // a continuation byte alone
        b"\xc0\xaf",         // overlong "/"
        b"\xed\xa0\x80",     // a UTF-16 surrogate
        b"\xf4\x90\x80\x80", // past U+10FFFF
        b"\xe2\x82",         // a code point cut at the end of the message
        b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
    ];
    for bad in invalid {
        let payload = [b"\"", bad].concat();
        let whole = frame(TEXT, true, &payload);
        let (a, b) = payload.split_at(2);
        let split = [frame(TEXT, false, a), frame(CONTINUATION, true, b)].concat();
        for bytes in [whole, split] {
            assert_eq!(fails_at(&server, &bytes).await, Some(1007), "{bad:x?}");
        }
    }
}
}

on_both! {
async fn invalid_utf8_fails_as_soon_as_its_fragment_arrives() {
    let server = TestServer::start(test_limits());
    // The message never ends: the server must not wait for it to find the bad bytes.
    for first in [&b"\"\xff"[..], b"\"\xed\xa0"] {
        let mut raw = Raw::hello(&server).await;
        raw.send(&frame(TEXT, false, first)).await;
        assert_eq!(raw.fails_with().await, Some(1007), "{first:x?}");
    }
    // Nor when the bad bytes come in a later fragment.
    let mut raw = Raw::hello(&server).await;
    let bytes = [
        frame(TEXT, false, b"\"\xe2"),
        frame(CONTINUATION, false, b"\x28"),
    ];
    raw.send(&bytes.concat()).await;
    assert_eq!(raw.fails_with().await, Some(1007));
}
}

on_both! {
async fn unmasked_client_frames_fail_with_1002() {
    let server = TestServer::start(test_limits());
    let message = request("unmasked");
    let text = [&[0x80 | TEXT, message.len() as u8][..], &message].concat();
    for bytes in [text, vec![0x80 | PING, 2, b'h', b'i']] {
        assert_eq!(fails_at(&server, &bytes).await, Some(1002), "{bytes:x?}");
    }
}
}

on_both! {
async fn a_close_with_a_one_byte_payload_fails_with_1002() {
    let server = TestServer::start(test_limits());
    let bytes = frame(CLOSE, true, &[0x03]);
    assert_eq!(fails_at(&server, &bytes).await, Some(1002));
}
}

on_both! {
async fn invalid_close_codes_fail_with_1002() {
    let server = TestServer::start(test_limits());
    let invalid = [
        0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
    ];
    for code in invalid {
        assert_eq!(
            fails_at(&server, &close(code, b"")).await,
            Some(1002),
            "{code}"
        );
    }
}
}

on_both! {
async fn valid_close_codes_are_answered_with_the_same_close() {
    let server = TestServer::start(test_limits());
    let valid = (1000..=1003)
        .chain(1007..=1011)
        .chain([3000, 3999, 4000, 4999]);
    let reason = [b'!'; 123];
    for code in valid {
        for reason in [&b""[..], b"bye", &reason] {
            let mut raw = Raw::hello(&server).await;
            raw.send(&close(code, reason)).await;
            let answer = raw.closing().await;
            assert!(answer.fin);
            assert_eq!(answer.payload, [&code.to_be_bytes()[..], reason].concat());
        }
    }
    // A close without a code is answered with one without a code.
    let mut raw = Raw::hello(&server).await;
    raw.send(&frame(CLOSE, true, b"")).await;
    assert_eq!(raw.closing().await.payload, b"");
}
}

on_both! {
async fn a_close_reason_that_is_not_utf8_fails_with_1002() {
    let server = TestServer::start(test_limits());
    let reason = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited";
    assert_eq!(fails_at(&server, &close(1000, reason)).await, Some(1002));
}
}

on_both! {
async fn after_its_close_the_server_sends_nothing() {
    let server = TestServer::start(test_limits());
    // What came before the client's close is answered; what comes after it is not.
    let mut raw = Raw::hello(&server).await;
    let message = request("after");
    let (a, b) = message.split_at(5);
    raw.send(
        &[
            frame(PING, true, b"before"),
            frame(TEXT, false, a),
            close(1000, b""),
            frame(CONTINUATION, true, b),
            frame(PING, true, b"after"),
            frame(TEXT, true, &request("after")),
            close(1001, b""),
        ]
        .concat(),
    )
    .await;
    let pong = raw.next().await;
    assert_eq!((pong.opcode, &pong.payload[..]), (PONG, &b"before"[..]));
    assert_eq!(raw.fails_with().await, Some(1000));
}
}

on_both! {
async fn a_ping_payload_is_echoed_in_its_pong_exactly() {
    let server = TestServer::start(test_limits());
    let mut raw = Raw::hello(&server).await;
    let bytes: Vec<u8> = (0..=124u8).map(|b| b.wrapping_mul(37) ^ 0xa5).collect();
    let payloads: [&[u8]; 4] = [b"", b"hello", &[0, 0xff, 0xfe, 0x80], &bytes];
    // An unsolicited pong is not answered.
    raw.send(&frame(PONG, true, b"unsolicited")).await;
    for payload in payloads {
        raw.send(&frame(PING, true, payload)).await;
        let pong = raw.next().await;
        assert_eq!(
            (pong.fin, pong.opcode, &pong.payload[..]),
            (true, PONG, payload)
        );
    }
    // Ten at once get ten pongs, in order; one sent a byte at a time gets its pong too.
    let pings: Vec<Vec<u8>> = (0..10).map(|i| frame(PING, true, &[i])).collect();
    raw.send(&pings.concat()).await;
    for i in 0..10 {
        assert_eq!(raw.next().await.payload, [i]);
    }
    raw.send_bytewise(&frame(PING, true, &bytes)).await;
    assert_eq!(raw.next().await.payload, bytes);
}
}

on_both! {
async fn a_message_over_the_limit_across_fragments_fails_with_1009() {
    let server = TestServer::start(test_limits());
    // Each fragment is within the limit; the message is not.
    let piece = vec![b' '; WsConfig::default().max_frame_bytes / 2 + 1];
    let bytes = [
        frame(TEXT, false, &piece),
        frame(CONTINUATION, true, &piece),
    ]
    .concat();
    assert_eq!(fails_at(&server, &bytes).await, Some(1009));
}
}

on_both! {
async fn every_payload_length_form_is_read() {
    let server = TestServer::start(test_limits());
    let mut raw = Raw::hello(&server).await;
    let max_frame_bytes = WsConfig::default().max_frame_bytes;
    // 7-bit, 16-bit (both ends) and 64-bit lengths, up to the limit itself.
    assert!(
        max_frame_bytes > 65_535,
        "the 64-bit form is within the limit"
    );
    for len in [125, 126, 65_535, max_frame_bytes] {
        let id = format!("{len}");
        let mut payload = request(&id);
        payload.resize(len.max(payload.len()), b' ');
        raw.send(&frame(TEXT, true, &payload)).await;
        assert_eq!(replied(&raw.json().await), id, "{len} bytes");
    }
}
}
