//! When bytes reached a client's socket, by the kernel's clock (`SO_TIMESTAMPNS`), as
//! opposed to when the loadgen got round to reading them.
//!
//! The loadgen plays a thousand clients on one core. When that core is nearly full (it is
//! at 90 to 97 % in scenario 3, whatever the server), a client reads a message some time
//! after it arrived, and that wait is in the measured latency: it belongs to the
//! measurement, not to the server, and a real client on a machine of its own would not
//! have it. With this on, each read also says when the kernel queued the last of its
//! bytes on the socket (on loopback: during the server's own `write`), so a message's
//! *arrival* latency is the server's (and the sender's) part alone. A read that takes
//! several of the server's writes carries the time of the last, so an arrival time is
//! never early. The kernel starts stamping a moment after the first socket asks (it is
//! off system-wide until then): a read without a stamp gives no arrival sample.

use std::io;
use std::mem::{size_of, MaybeUninit};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::io::Interest;
use tokio::net::TcpStream;

/// Asks the kernel to stamp what `stream` receives.
pub fn enable(stream: &TcpStream) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: a valid socket, and a pointer to an int with its size.
    let done = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if done == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Nanoseconds since the Unix epoch now, on the clock the kernel stamps with.
pub fn unix_now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Reads once into `buf`'s spare capacity (waiting until the socket has data). Returns
/// the bytes read (0 at the end of the stream) and the kernel's stamp of the last of
/// them, in nanoseconds since the Unix epoch, if it gave one.
pub async fn read(stream: &TcpStream, buf: &mut Vec<u8>) -> io::Result<(usize, Option<u64>)> {
    loop {
        stream.readable().await?;
        let fd = stream.as_raw_fd();
        match stream.try_io(Interest::READABLE, || {
            recv_stamped(fd, buf.spare_capacity_mut())
        }) {
            Ok((n, stamp)) => {
                // SAFETY: the kernel initialised the first `n` spare bytes.
                unsafe { buf.set_len(buf.len() + n) };
                return Ok((n, stamp));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

fn recv_stamped(fd: RawFd, spare: &mut [MaybeUninit<u8>]) -> io::Result<(usize, Option<u64>)> {
    let mut iov = libc::iovec {
        iov_base: spare.as_mut_ptr().cast(),
        iov_len: spare.len(),
    };
    // Room for one control message holding a timespec, aligned as cmsghdr needs.
    let mut control = [0u64; 8];
    // SAFETY: a zeroed msghdr is valid; the pointers set below outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of::<[u64; 8]>() as _;
    // SAFETY: `msg` points at a writable buffer of `spare.len()` bytes and at `control`.
    let n = unsafe { libc::recvmsg(fd, &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((n as usize, stamp_of(&msg)))
}

/// The `SCM_TIMESTAMPNS` control message of a received `msg`, if any.
fn stamp_of(msg: &libc::msghdr) -> Option<u64> {
    // SAFETY: `msg` was filled by recvmsg; the CMSG macros stay within msg_controllen.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
            {
                let ts = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::timespec>());
                return Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64);
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};

    use super::{enable, read, unix_now_ns};

    #[tokio::test]
    async fn a_read_says_when_its_bytes_arrived() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr"))
            .await
            .expect("connect");
        let (mut server, _) = listener.accept().await.expect("accept");
        enable(&client).expect("stamps");
        // The kernel turns stamping on a moment later (deferred work): wait for it.
        let mut buf = Vec::with_capacity(64);
        for _ in 0..100 {
            server.write_all(b"x").await.expect("write");
            buf.clear();
            if read(&client, &mut buf).await.expect("read").1.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }

        let before = unix_now_ns();
        server.write_all(b"hello").await.expect("write");
        let after_write = unix_now_ns();
        // Read well after the bytes arrived: the stamp is their arrival, not the read.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        buf.clear();
        let (n, stamp) = read(&client, &mut buf).await.expect("read");
        assert_eq!(&buf[..n], b"hello");
        let stamp = stamp.expect("a stamp");
        assert!(
            before <= stamp && stamp <= after_write,
            "{before} <= {stamp} <= {after_write}"
        );
    }
}
