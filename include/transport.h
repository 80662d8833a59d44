/* transport: the seam between a connection and its byte stream. A connection
 * reads and writes only through these operations, so plain TCP (below) and
 * TLS (tls.h) are two implementations of one interface rather than branches
 * through the session layer. Every operation is non-blocking: -1 with errno
 * EAGAIN means "try again when the socket is ready" (which readiness: see
 * status); EPROTO means the peer broke the transport's protocol. */
#ifndef WSHUB_TRANSPORT_H
#define WSHUB_TRANSPORT_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

/* Bits of transport_ops.status: what a transport holds or waits for beyond
 * what its caller asked. Plain TCP never sets any. */
enum {
    TRANSPORT_READ_WANTS_WRITE = 1u << 0,  /* recv is blocked until the socket is writable (a handshake message) */
    TRANSPORT_WRITE_WANTS_READ = 1u << 1,  /* writes are blocked until the socket is readable */
    TRANSPORT_HAS_INPUT = 1u << 2,         /* input is buffered inside: recv again without waiting */
    TRANSPORT_HAS_OUTPUT = 1u << 3,        /* output taken but not yet on the socket: call writev (n may be 0) */
};

struct transport_ops {
    const char *name;
    /* Prepares per-connection state for an accepted socket (*state may stay
     * NULL). Returns 0 or -1. */
    int (*attach)(void *ctx, int fd, void **state);
    /* Reads up to len bytes: the count, 0 at the peer's end of stream, or -1. */
    ssize_t (*recv)(void *state, int fd, void *buf, size_t len);
    /* Writes from n iovecs (first pushing output it holds, the only thing it
     * does when n is 0): the count taken, or -1. */
    ssize_t (*writev)(void *state, int fd, const struct iovec *iov, int n);
    /* Writes up to len bytes of file_fd from *off (advanced): the count, or -1. */
    ssize_t (*sendfile)(void *state, int fd, int file_fd, off_t *off, size_t len);
    /* TRANSPORT_* bits for this connection, to wait for the right readiness
     * and to come back for what the transport holds. */
    unsigned (*status)(void *state);
    /* Ends our direction of the stream (the peer then sees end of stream). */
    void (*shutdown_write)(void *state, int fd);
    /* Frees the per-connection state; the caller closes fd. */
    void (*detach)(void *state);
    /* Tells a connection that will not be served (before attach) why, as far
     * as the transport can without blocking: `http` is a whole HTTP response
     * that plain TCP sends as it is. The caller closes fd. */
    void (*refuse)(void *ctx, int fd, const char *http, size_t len);
};

/* A listener's transport: its operations and their shared context. */
struct transport {
    const struct transport_ops *ops;
    void *ctx;
};

/* Plain TCP: recv, sendmsg(MSG_NOSIGNAL), sendfile, shutdown. No state. */
extern const struct transport_ops transport_tcp_ops;

#endif
