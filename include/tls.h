/* tls: the listener's TLS context (certificate chain, key, protocol versions,
 * ciphers, ALPN, session tickets), reloadable while connections keep theirs,
 * and the TLS transport that uses it. Built on OpenSSL's libssl; nothing
 * outside transport_tls.c sees an OpenSSL type. */
#ifndef WSHUB_TLS_H
#define WSHUB_TLS_H

#include <stddef.h>

#include "transport.h"

struct tls_ctx;

/* Loads cert (PEM: the certificate, then its chain) and key (PEM) and sets up
 * TLS 1.2 and 1.3 from min_version ("1.2" or "1.3"), with kernel TLS for
 * sending where the kernel offers it unless ktls is 0. NULL on failure, with
 * which file and OpenSSL's reason in err. */
struct tls_ctx *tls_ctx_new(const char *cert, const char *key, const char *min_version, int ktls, char *err,
                            size_t errlen);

/* Loads the same files again for connections accepted from now on (open ones
 * keep what they have). Returns 0, or -1 with the reason in err and the
 * current certificate kept. */
int tls_ctx_reload(struct tls_ctx *t, char *err, size_t errlen);

/* One line about the certificate in use (subject and expiry), for the log. */
void tls_ctx_describe(const struct tls_ctx *t, char *out, size_t len);

/* Frees the context; connections still open keep what they use. */
void tls_ctx_free(struct tls_ctx *t);

/* The TLS transport; its context is a struct tls_ctx. The handshake runs on
 * the loop inside recv and writes; anything but a TLS record first (plain
 * HTTP) gets a 400 in clear and the connection ends (EPROTO). */
extern const struct transport_ops transport_tls_ops;

#endif
