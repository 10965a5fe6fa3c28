//! The reading and writing halves against a real loopback socket.

use super::{declared_length, Incoming, Reader, Writer};
use crate::buffers;
use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// Both ends of a loopback connection: the client's, then the server's.
async fn connected() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let client = TcpStream::connect(listener.local_addr().expect("addr"))
        .await
        .expect("connect");
    let (server, _) = listener.accept().await.expect("accept");
    (client, server)
}

/// A frame written in parts is the frame actix-http writes for the joined payload, in
/// each of the three length forms.
#[test]
fn a_frame_in_parts_is_the_same_frame() {
    for len in [0, 1, 125, 126, 300, 65_535, 65_536, 70_000] {
        let payload: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
        let (a, b) = payload.split_at(len / 3);
        let mut whole = Writer::new();
        whole.text(&payload);
        let mut parts = Writer::new();
        parts.text_parts(&[a, b"", b]);
        assert_eq!(parts.buf, whole.buf, "payload of {len} bytes");
    }
}

/// An idle connection's cost is what this module keeps between messages: nothing.
#[tokio::test]
async fn buffers_are_given_back_once_emptied() {
    let (mut client, mut server) = connected().await;

    let mut writer = Writer::new();
    for _ in 0..100 {
        writer.text(&[b'x'; 1000]);
    }
    assert!(writer.buf.capacity() >= 100_000);
    writer.flush(&mut server).await.expect("flush");
    assert_eq!(writer.buf.capacity(), 0);

    // A masked text frame "hi" (mask 0), then half of a second frame.
    client
        .write_all(&[0x81, 0x82, 0, 0, 0, 0, b'h', b'i', 0x81])
        .await
        .expect("write");
    let mut reader = Reader::new(BytesMut::new(), 1024);
    assert!(matches!(reader.next(&mut server).await, Ok(Incoming::Text(t)) if t == "hi"));
    assert!(reader.buf.capacity() > 0, "the partial frame is kept");
    client.write_all(&[0x80, 0, 0, 0, 0]).await.expect("write");
    assert!(matches!(reader.next(&mut server).await, Ok(Incoming::Text(t)) if t.is_empty()));
    assert_eq!(reader.buf.capacity(), 0);
}

/// Reading a message allocates no buffer: the buffer goes back to the spares whole
/// once its last frame is taken apart. (Given back while that frame still shared it,
/// it was allocated anew each time a read ended on a whole message, and a 4 KiB
/// allocation also makes glibc consolidate its free lists.)
#[tokio::test]
async fn a_read_buffer_goes_back_as_the_same_allocation() {
    let (mut client, mut server) = connected().await;
    let spare = buffers::take();
    let at = spare.as_ptr() as usize;
    buffers::give(spare);

    // A masked text frame "hi" (mask 0).
    client
        .write_all(&[0x81, 0x82, 0, 0, 0, 0, b'h', b'i'])
        .await
        .expect("write");
    let mut reader = Reader::new(BytesMut::new(), 1024);
    assert!(matches!(reader.next(&mut server).await, Ok(Incoming::Text(t)) if t == "hi"));
    assert_eq!(reader.buf.capacity(), 0, "given back");
    assert_eq!(buffers::take().as_ptr() as usize, at, "the same allocation");
}

#[test]
fn the_declared_length_is_read_from_each_header_form() {
    assert_eq!(declared_length(&[0x81]), None);
    assert_eq!(declared_length(&[0x81, 0x80 | 5]), Some(5));
    assert_eq!(declared_length(&[0x81, 0x80 | 126, 0x01]), None);
    assert_eq!(declared_length(&[0x81, 0x80 | 126, 0x01, 0x00]), Some(256));
    let mut long = vec![0x81, 0x80 | 127];
    long.extend_from_slice(&(1u64 << 40).to_be_bytes());
    assert_eq!(declared_length(&long), Some(1 << 40));
    assert_eq!(declared_length(&long[..9]), None);
}
