//! Standard input and output for the MCP stdio transport, read and written
//! on the runtime's own event loop when they are pipes or sockets.
//!
//! `tokio::io::stdin()`/`stdout()` hand every read and write to a thread of
//! the blocking pool, because a terminal or a file cannot be polled: each
//! request line then costs two thread hand-offs on top of the work. MCP
//! clients start servers with pipes (or, through libuv, Unix sockets),
//! which can be polled, so for those the descriptors are duplicated, made
//! non-blocking and registered with the runtime's reactor. Anything else
//! (a terminal, a file) keeps tokio's blocking-pool streams. The original
//! flags are put back when the server stops, since the open file
//! description is shared with whoever else holds the pipe.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use rustix::fs::{FileType, OFlags};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// One end of the transport.
pub(crate) enum End {
    /// A pipe end, read on the reactor.
    PipeIn(tokio::net::unix::pipe::Receiver),
    /// A pipe end, written on the reactor.
    PipeOut(tokio::net::unix::pipe::Sender),
    /// A Unix socket, on the reactor.
    Socket(tokio::net::UnixStream),
    /// Tokio's standard input (a terminal or a file).
    Stdin(tokio::io::Stdin),
    /// Tokio's standard output.
    Stdout(tokio::io::Stdout),
}

/// The descriptors whose flags were changed, and their flags before.
pub(crate) struct Restore(Vec<(OwnedFd, OFlags)>);

impl Drop for Restore {
    fn drop(&mut self) {
        for (fd, flags) in &self.0 {
            let _ = rustix::fs::fcntl_setfl(fd, *flags);
        }
    }
}

/// Standard input and output as transport ends, and what restores them.
pub(crate) fn open() -> (End, End, Restore) {
    let mut restore = Restore(Vec::new());
    let input = polled(std::io::stdin().as_fd(), true, &mut restore).unwrap_or_else(|| End::Stdin(tokio::io::stdin()));
    let output =
        polled(std::io::stdout().as_fd(), false, &mut restore).unwrap_or_else(|| End::Stdout(tokio::io::stdout()));
    (input, output, restore)
}

/// `fd` on the reactor, when it is a pipe or a socket and that works.
fn polled(fd: BorrowedFd<'_>, read: bool, restore: &mut Restore) -> Option<End> {
    let kind = FileType::from_raw_mode(rustix::fs::fstat(fd).ok()?.st_mode);
    let fifo = kind == FileType::Fifo;
    if !fifo && kind != FileType::Socket {
        return None;
    }
    let flags = rustix::fs::fcntl_getfl(fd).ok()?;
    let keep = fd.try_clone_to_owned().ok()?;
    let dup = fd.try_clone_to_owned().ok()?;
    let end = if fifo {
        // These set O_NONBLOCK themselves.
        if read {
            tokio::net::unix::pipe::Receiver::from_owned_fd(dup)
                .ok()
                .map(End::PipeIn)
        } else {
            tokio::net::unix::pipe::Sender::from_owned_fd(dup)
                .ok()
                .map(End::PipeOut)
        }
    } else {
        let socket = std::os::unix::net::UnixStream::from(dup);
        socket.set_nonblocking(true).ok()?;
        tokio::net::UnixStream::from_std(socket).ok().map(End::Socket)
    };
    restore.0.push((keep, flags));
    end
}

impl AsyncRead for End {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            End::PipeIn(r) => Pin::new(r).poll_read(cx, buf),
            End::Socket(s) => Pin::new(s).poll_read(cx, buf),
            End::Stdin(s) => Pin::new(s).poll_read(cx, buf),
            End::PipeOut(_) | End::Stdout(_) => Poll::Ready(Err(std::io::ErrorKind::Unsupported.into())),
        }
    }
}

impl AsyncWrite for End {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            End::PipeOut(w) => Pin::new(w).poll_write(cx, buf),
            End::Socket(s) => Pin::new(s).poll_write(cx, buf),
            End::Stdout(s) => Pin::new(s).poll_write(cx, buf),
            End::PipeIn(_) | End::Stdin(_) => Poll::Ready(Err(std::io::ErrorKind::Unsupported.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            End::PipeOut(w) => Pin::new(w).poll_flush(cx),
            End::Socket(s) => Pin::new(s).poll_flush(cx),
            End::Stdout(s) => Pin::new(s).poll_flush(cx),
            End::PipeIn(_) | End::Stdin(_) => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            End::PipeOut(w) => Pin::new(w).poll_shutdown(cx),
            // Shutting a socket's write side would also end the input when
            // both are the same socket; the descriptor closes on drop.
            End::Socket(_) | End::PipeIn(_) | End::Stdin(_) => Poll::Ready(Ok(())),
            End::Stdout(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
