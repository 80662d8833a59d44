/* transport_tls: TLS on the listener with OpenSSL's libssl. Owns the server
 * context (certificate chain and key, TLS 1.2 and 1.3, AEAD ciphers with
 * forward secrecy, ALPN http/1.1, stateless session tickets, kernel TLS when
 * the kernel has it), its reload, and every connection's SSL object: the
 * handshake runs inside recv and writes, without blocking, and the status op
 * tells the connection which readiness it waits for. Writes are gathered into
 * full records in one scratch buffer (the loop is single-threaded). Never
 * blocks, never prompts for a password, never touches a connection's queue. */
#include "tls.h"

#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define TLS_RECORD 16384          /* plaintext bytes of a full TLS record */
#define TLS_HANDSHAKE_RECORD 0x16 /* first byte of a record carrying a handshake message (ClientHello) */

/* TLS 1.2 suites (TLS 1.3 keeps OpenSSL's defaults): ECDHE for forward
 * secrecy and AEAD only, Mozilla's "intermediate" list without DHE. */
#define TLS12_CIPHERS                                                                                   \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"          \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

#define PLAIN_REASON "this port speaks TLS: use https:// or wss://\n"

struct tls_ctx {
    SSL_CTX *ssl;                 /* for new connections; a reload replaces it */
    char *cert, *key;
    int min_version;
    int ktls;                     /* kernel TLS allowed (--no-ktls not given) */
    uint8_t scratch[TLS_RECORD];  /* small writes gathered into one record, and file reads */
};

struct tls_conn {
    SSL *ssl;
    struct tls_ctx *ctx;
    uint8_t *held;      /* bytes SSL_write took into a record it could not finish sending, */
    uint32_t held_off;  /* at held + held_off: reported as written, and handed to SSL_write */
    uint32_t held_len;  /* again, as OpenSSL requires (TLS_RECORD bytes, allocated on demand) */
    uint8_t status;     /* TRANSPORT_* bits */
    uint8_t started;    /* the first byte was a TLS handshake record */
    uint8_t failed;     /* a fatal error: no close_notify, no more I/O */
    uint8_t told;       /* the handshake was logged */
};

/* ------------------------------------------------------------------ context */

/* An encrypted key fails to load instead of asking for a password on a terminal. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return 0;
}

/* ALPN: http/1.1 or nothing (RFC 7301: a client offering only others gets a
 * no_application_protocol alert). */
static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg)
{
    static const unsigned char http11[] = "\x08http/1.1";
    (void)ssl;
    (void)arg;
    if (SSL_select_next_proto((unsigned char **)out, outlen, http11, sizeof(http11) - 1, in, inlen) ==
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_OK;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* Writes "what path: reason (detail)" to err, from OpenSSL's first error
 * (the root cause), and empties OpenSSL's error queue. */
static void set_error(char *err, size_t errlen, const char *what, const char *path)
{
    const char *data;
    int flags;
    unsigned long e = ERR_peek_error_data(&data, &flags);
    const char *reason = ERR_GET_LIB(e) == ERR_LIB_SYS ? strerror(ERR_GET_REASON(e)) : ERR_reason_error_string(e);
    if (!(flags & ERR_TXT_STRING))
        data = "";
    snprintf(err, errlen, "%s %s: %s%s%s%s", what, path, reason ? reason : "unknown error", *data ? " (" : "",
             data, *data ? ")" : "");
    ERR_clear_error();
}

static SSL_CTX *make_ctx(const struct tls_ctx *t, char *err, size_t errlen)
{
    ERR_clear_error();
    SSL_CTX *c = SSL_CTX_new(TLS_server_method());
    if (!c) {
        set_error(err, errlen, "cannot set up TLS for --tls-cert", t->cert);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(c, t->min_version);
    SSL_CTX_set_security_level(c, 2);
    /* Kernel TLS: OpenSSL hands the keys to the kernel after the handshake
     * where it takes them (the tls module; TCP_ULP), else stays in user space. */
    SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF |
                               (t->ktls ? SSL_OP_ENABLE_KTLS : 0));
    /* Release the 16+ KiB record buffers of idle connections; a write may
     * stop inside a record and be finished from a copy (see held). */
    SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(c, 1);
    /* Resumption by stateless tickets (TLS 1.2 and 1.3): no per-session memory here. */
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_alpn_select_cb(c, select_alpn, NULL);
    SSL_CTX_set_default_passwd_cb(c, no_password);
    if (SSL_CTX_set_cipher_list(c, TLS12_CIPHERS) != 1)
        set_error(err, errlen, "cannot set the TLS 1.2 ciphers for --tls-cert", t->cert);
    else if (SSL_CTX_use_certificate_chain_file(c, t->cert) != 1)
        set_error(err, errlen, "cannot load --tls-cert", t->cert);
    else if (SSL_CTX_use_PrivateKey_file(c, t->key, SSL_FILETYPE_PEM) != 1)   /* also checks it fits the cert */
        set_error(err, errlen, "cannot load --tls-key", t->key);
    else
        return c;
    SSL_CTX_free(c);
    return NULL;
}

struct tls_ctx *tls_ctx_new(const char *cert, const char *key, const char *min_version, int ktls, char *err,
                            size_t errlen)
{
    int min = strcmp(min_version, "1.3") == 0 ? TLS1_3_VERSION : strcmp(min_version, "1.2") == 0 ? TLS1_2_VERSION : 0;
    if (!min) {
        snprintf(err, errlen, "--tls-min %s: must be 1.2 or 1.3", min_version);
        return NULL;
    }
    struct tls_ctx *t = calloc(1, sizeof(*t));
    if (!t || !(t->cert = strdup(cert)) || !(t->key = strdup(key))) {
        snprintf(err, errlen, "out of memory");
        tls_ctx_free(t);
        return NULL;
    }
    t->min_version = min;
    t->ktls = ktls;
    if (!(t->ssl = make_ctx(t, err, errlen))) {
        tls_ctx_free(t);
        return NULL;
    }
    return t;
}

int tls_ctx_reload(struct tls_ctx *t, char *err, size_t errlen)
{
    SSL_CTX *c = make_ctx(t, err, errlen);
    if (!c)
        return -1;
    SSL_CTX_free(t->ssl);   /* open connections hold their own reference */
    t->ssl = c;
    return 0;
}

void tls_ctx_describe(const struct tls_ctx *t, char *out, size_t len)
{
    X509 *x = SSL_CTX_get0_certificate(t->ssl);
    char subject[256] = "?";
    struct tm tm;
    char expires[32] = "?";
    if (x) {
        X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof(subject));
        if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1)
            strftime(expires, sizeof(expires), "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    snprintf(out, len, "cert=%s subject=\"%s\" expires=%s ktls=%s", t->cert, subject, expires,
             t->ktls ? "where-offered" : "off");
}

void tls_ctx_free(struct tls_ctx *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ssl);
    free(t->cert);
    free(t->key);
    free(t);
}

/* ------------------------------------------------------------------ connections */

static int tls_attach(void *ctx, int fd, void **state)
{
    struct tls_ctx *x = ctx;
    struct tls_conn *t = calloc(1, sizeof(*t));
    SSL *ssl = t ? SSL_new(x->ssl) : NULL;
    if (!ssl || SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        free(t);
        ERR_clear_error();
        errno = ENOMEM;
        return -1;
    }
    SSL_set_accept_state(ssl);
    t->ssl = ssl;
    t->ctx = x;
    *state = t;
    return 0;
}

static void tls_detach(void *state)
{
    struct tls_conn *t = state;
    SSL_free(t->ssl);
    free(t->held);
    free(t);
}

/* A fatal error from an SSL call: errno for the connection (EPROTO for the
 * peer breaking TLS), logged at debug. Returns -1. */
static int fail(struct tls_conn *t, int fd, int e)
{
    t->failed = 1;
    if (e == SSL_ERROR_SYSCALL) {
        if (errno == 0 || errno == EAGAIN)
            errno = ECONNRESET;
    } else {
        if (log_enabled(LOG_DEBUG)) {
            char reason[256];
            ERR_error_string_n(ERR_peek_error(), reason, sizeof(reason));
            log_msg(LOG_DEBUG, "tls error fd=%d error=\"%s\"", fd, reason);
        }
        errno = EPROTO;
    }
    ERR_clear_error();
    return -1;
}

static void log_handshake(struct tls_conn *t, int fd)
{
    const unsigned char *alpn;
    unsigned alpn_len;
    t->told = 1;
    if (!log_enabled(LOG_DEBUG))
        return;
    SSL_get0_alpn_selected(t->ssl, &alpn, &alpn_len);
    log_msg(LOG_DEBUG, "tls handshake fd=%d version=%s cipher=%s alpn=%.*s resumed=%d ktls_send=%d", fd,
            SSL_get_version(t->ssl), SSL_get_cipher_name(t->ssl), (int)alpn_len, (const char *)alpn,
            SSL_session_reused(t->ssl), (int)BIO_get_ktls_send(SSL_get_wbio(t->ssl)));
}

/* Plain text where a ClientHello belongs: answer in clear and end. What the
 * client sent is read first, so that closing does not reset the connection
 * before it reads the answer. */
static void answer_plain(int fd, void *buf, size_t len)
{
    char resp[256];
    int n = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     sizeof(PLAIN_REASON) - 1, PLAIN_REASON);
    for (int i = 0; i < 4 && recv(fd, buf, len, MSG_DONTWAIT) > 0; i++)
        ;
    send(fd, resp, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
    shutdown(fd, SHUT_WR);
}

static ssize_t tls_recv(void *state, int fd, void *buf, size_t len)
{
    struct tls_conn *t = state;
    if (!t->started) {
        uint8_t first;
        ssize_t n = recv(fd, &first, 1, MSG_PEEK);
        if (n <= 0)
            return n;
        if (first != TLS_HANDSHAKE_RECORD) {
            log_msg(LOG_DEBUG, "tls refused fd=%d reason=\"not a TLS record\"", fd);
            answer_plain(fd, buf, len);
            t->failed = 1;
            errno = EPROTO;
            return -1;
        }
        t->started = 1;
    }
    t->status &= (uint8_t) ~(TRANSPORT_READ_WANTS_WRITE | TRANSPORT_HAS_INPUT);
    size_t got = 0;
    while (got < len) {
        ERR_clear_error();
        size_t want = len - got < INT_MAX ? len - got : INT_MAX;
        int r = SSL_read(t->ssl, (uint8_t *)buf + got, (int)want);
        if (r > 0) {
            got += (size_t)r;
            if (!SSL_has_pending(t->ssl))
                break;   /* all read ahead is used: epoll (level-triggered) tells when more comes */
            continue;
        }
        int e = SSL_get_error(t->ssl, r);
        if (e == SSL_ERROR_WANT_READ)
            break;
        if (e == SSL_ERROR_WANT_WRITE) {
            t->status |= TRANSPORT_READ_WANTS_WRITE;
            break;
        }
        if (got)
            break;   /* the data now; the end or the error again on the next call */
        if (e == SSL_ERROR_ZERO_RETURN)
            return 0;
        return fail(t, fd, e);
    }
    if (!t->told && SSL_is_init_finished(t->ssl))
        log_handshake(t, fd);
    if (got == len && SSL_has_pending(t->ssl))
        t->status |= TRANSPORT_HAS_INPUT;   /* decrypted or read ahead: epoll will not report it */
    if (got)
        return (ssize_t)got;
    errno = EAGAIN;
    return -1;
}

/* Copies p[0..len) to the start of the held buffer. Returns it, or NULL (ENOMEM). */
static uint8_t *stage(struct tls_conn *t, const uint8_t *p, size_t len)
{
    if (!t->held && !(t->held = malloc(TLS_RECORD))) {
        errno = ENOMEM;
        return NULL;
    }
    memmove(t->held, p, len);
    t->held_off = 0;
    return t->held;
}

/* Hands len bytes (at most TLS_RECORD) to SSL_write: all are taken, or -1
 * with errno. Those not yet on the socket when it stops (WANT_WRITE, or
 * WANT_READ) are held for its retry. In user space OpenSSL has encrypted a
 * copy, so any pointer to the same bytes will do; kernel TLS keeps pointing
 * at the bytes it was given, so they are staged in the held buffer first and
 * never move. */
static int write_all(struct tls_conn *t, int fd, const uint8_t *p, size_t len)
{
    int ktls = BIO_get_ktls_send(SSL_get_wbio(t->ssl));
    if (ktls && (!t->held || p != t->held + t->held_off) && !(p = stage(t, p, len)))
        return -1;
    while (len) {
        ERR_clear_error();
        int r = SSL_write(t->ssl, p, (int)len);
        if (r > 0) {
            p += r;
            len -= (size_t)r;
            continue;
        }
        int e = SSL_get_error(t->ssl, r);
        if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ)
            return fail(t, fd, e);
        if (!ktls && !(p = stage(t, p, len)))
            return -1;
        t->held_off = (uint32_t)(p - t->held);
        t->held_len = (uint32_t)len;
        t->status &= (uint8_t)~TRANSPORT_WRITE_WANTS_READ;
        t->status |= TRANSPORT_HAS_OUTPUT | (e == SSL_ERROR_WANT_READ ? TRANSPORT_WRITE_WANTS_READ : 0);
        return 0;
    }
    free(t->held);   /* nothing waits: an idle connection holds no buffer */
    t->held = NULL;
    return 0;
}

/* Finishes the held record. Returns 0 once it is on the socket, or -1 (EAGAIN:
 * not yet). */
static int push_held(struct tls_conn *t, int fd)
{
    size_t len = t->held_len;
    t->held_len = 0;
    if (write_all(t, fd, t->held + t->held_off, len) < 0)
        return -1;
    if (t->held_len) {
        errno = EAGAIN;
        return -1;
    }
    t->status &= (uint8_t) ~(TRANSPORT_HAS_OUTPUT | TRANSPORT_WRITE_WANTS_READ);
    return 0;
}

static ssize_t tls_writev(void *state, int fd, const struct iovec *iov, int n)
{
    struct tls_conn *t = state;
    if (t->failed) {
        errno = EPIPE;
        return -1;
    }
    if (t->held_len && push_held(t, fd) < 0)
        return -1;
    uint8_t *scratch = t->ctx->scratch;
    size_t taken = 0, off = 0;
    int i = 0;
    while (i < n && !t->held_len) {
        const uint8_t *p;
        size_t len;
        if (iov[i].iov_len - off >= TLS_RECORD) {   /* a full record straight from the caller */
            p = (const uint8_t *)iov[i].iov_base + off;
            len = TLS_RECORD;
            off += len;
        } else {                                     /* small pieces gathered into one record */
            p = scratch;
            len = 0;
            while (i < n && len < TLS_RECORD) {
                size_t k = iov[i].iov_len - off;
                if (k > TLS_RECORD - len)
                    k = TLS_RECORD - len;
                memcpy(scratch + len, (const uint8_t *)iov[i].iov_base + off, k);
                len += k;
                off += k;
                if (off == iov[i].iov_len)
                    i++, off = 0;
            }
        }
        if (i < n && off == iov[i].iov_len)
            i++, off = 0;
        if (len && write_all(t, fd, p, len) < 0)
            return taken ? (ssize_t)taken : -1;
        taken += len;
    }
    return (ssize_t)taken;
}

/* A file: with kernel TLS the kernel encrypts what sendfile sends; otherwise
 * it is read a record at a time and written like anything else. */
static ssize_t tls_sendfile(void *state, int fd, int file_fd, off_t *off, size_t len)
{
    struct tls_conn *t = state;
    if (t->failed) {
        errno = EPIPE;
        return -1;
    }
    if (t->held_len && push_held(t, fd) < 0)
        return -1;
    if (BIO_get_ktls_send(SSL_get_wbio(t->ssl))) {
        ERR_clear_error();
        ossl_ssize_t r = SSL_sendfile(t->ssl, file_fd, *off, len, 0);
        if (r > 0) {
            *off += r;
            return r;
        }
        int e = SSL_get_error(t->ssl, (int)r);
        if (e == SSL_ERROR_WANT_WRITE) {
            errno = EAGAIN;
            return -1;
        }
        return fail(t, fd, e);
    }
    uint8_t *scratch = t->ctx->scratch;
    size_t taken = 0;
    while (taken < len && !t->held_len) {
        size_t want = len - taken < TLS_RECORD ? len - taken : TLS_RECORD;
        ssize_t n = pread(file_fd, scratch, want, *off);
        if (n <= 0) {
            if (taken)
                break;
            return n;   /* 0: the file shrank; the caller knows what to say */
        }
        if (write_all(t, fd, scratch, (size_t)n) < 0)
            return taken ? (ssize_t)taken : -1;
        *off += n;
        taken += (size_t)n;
    }
    return (ssize_t)taken;
}

static unsigned tls_status(void *state)
{
    const struct tls_conn *t = state;
    return t->status;
}

/* close_notify, then FIN: best effort, as the queue is already written. */
static void tls_shutdown_write(void *state, int fd)
{
    struct tls_conn *t = state;
    if (!t->failed && SSL_is_init_finished(t->ssl)) {
        ERR_clear_error();
        SSL_shutdown(t->ssl);
        ERR_clear_error();
    }
    shutdown(fd, SHUT_WR);
}

/* No handshake has happened, so an HTTP answer would be noise to a TLS
 * client: a fatal internal_error alert in clear (allowed before the
 * handshake) makes it report why it failed. */
static void tls_refuse(void *ctx, int fd, const char *http, size_t len)
{
    static const uint8_t alert[] = {0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x50};
    (void)ctx;
    (void)http;
    (void)len;
    send(fd, alert, sizeof(alert), MSG_NOSIGNAL | MSG_DONTWAIT);
}

const struct transport_ops transport_tls_ops = {
    .name = "tls",
    .attach = tls_attach,
    .recv = tls_recv,
    .writev = tls_writev,
    .sendfile = tls_sendfile,
    .status = tls_status,
    .shutdown_write = tls_shutdown_write,
    .detach = tls_detach,
    .refuse = tls_refuse,
};
