/* transport: the seam between a connection and its byte stream. A connection
 * reads and writes only through these operations, so plain TCP (below) and
 * TLS are two implementations of one interface rather than branches through
 * the session layer. Every operation is non-blocking: -1 with errno EAGAIN
 * means "try again when the socket is ready". */
#ifndef WSHUB_TRANSPORT_H
#define WSHUB_TRANSPORT_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

struct transport_ops {
    const char *name;
    /* Prepares per-connection state for an accepted socket (*state may stay
     * NULL). Returns 0 or -1. */
    int (*attach)(void *ctx, int fd, void **state);
    /* Reads up to len bytes: the count, 0 at the peer's end of stream, or -1. */
    ssize_t (*recv)(void *state, int fd, void *buf, size_t len);
    /* Writes from n iovecs: the count written, or -1. */
    ssize_t (*writev)(void *state, int fd, const struct iovec *iov, int n);
    /* Writes up to len bytes of file_fd from *off (advanced): the count, or -1. */
    ssize_t (*sendfile)(void *state, int fd, int file_fd, off_t *off, size_t len);
    /* Ends our direction of the stream (the peer then sees end of stream). */
    void (*shutdown_write)(void *state, int fd);
    /* Frees the per-connection state; the caller closes fd. */
    void (*detach)(void *state);
};

/* A listener's transport: its operations and their shared context. */
struct transport {
    const struct transport_ops *ops;
    void *ctx;
};

/* Plain TCP: recv, sendmsg(MSG_NOSIGNAL), sendfile, shutdown. No state. */
extern const struct transport_ops transport_tcp_ops;

#endif
