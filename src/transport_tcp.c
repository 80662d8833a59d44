/* transport_tcp: the plain TCP transport: system calls on the socket and
 * nothing else. Holds no per-connection state; never blocks (the sockets are
 * non-blocking) and never raises SIGPIPE. */
#include "transport.h"

#include <sys/sendfile.h>
#include <sys/socket.h>

static int tcp_attach(void *ctx, int fd, void **state)
{
    (void)ctx;
    (void)fd;
    *state = NULL;
    return 0;
}

static ssize_t tcp_recv(void *state, int fd, void *buf, size_t len)
{
    (void)state;
    return recv(fd, buf, len, 0);
}

static ssize_t tcp_writev(void *state, int fd, const struct iovec *iov, int n)
{
    (void)state;
    if (n == 1)   /* the common case: send() skips sendmsg's copy of the msghdr and iovec */
        return send(fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
    struct msghdr msg = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n};
    return sendmsg(fd, &msg, MSG_NOSIGNAL);
}

static ssize_t tcp_sendfile(void *state, int fd, int file_fd, off_t *off, size_t len)
{
    (void)state;
    return sendfile(fd, file_fd, off, len);
}

static unsigned tcp_status(void *state)
{
    (void)state;
    return 0;
}

static void tcp_shutdown_write(void *state, int fd)
{
    (void)state;
    shutdown(fd, SHUT_WR);
}

static void tcp_detach(void *state)
{
    (void)state;
}

static void tcp_refuse(void *ctx, int fd, const char *http, size_t len)
{
    (void)ctx;
    send(fd, http, len, MSG_NOSIGNAL | MSG_DONTWAIT);
}

const struct transport_ops transport_tcp_ops = {
    .name = "tcp",
    .attach = tcp_attach,
    .recv = tcp_recv,
    .writev = tcp_writev,
    .sendfile = tcp_sendfile,
    .status = tcp_status,
    .shutdown_write = tcp_shutdown_write,
    .detach = tcp_detach,
    .refuse = tcp_refuse,
};
