/* tlsfloor: what OpenSSL itself holds for one idle TLS connection of wshub's
 * TLS transport (src/transport_tls.c, linked in as it is), counted through
 * OpenSSL's allocation hooks. Opens --conns server connections over
 * socketpairs, each driven through a handshake and one message each way (as
 * a WebSocket upgrade and its answer), frees every client side, and prints
 * the heap the server sides keep per connection, by OpenSSL source file.
 * That is the floor under wshub's idle wss figure that no setting of
 * OpenSSL's API can lower. A benchmark tool: never part of the server, and
 * never a pass/fail test.
 *
 *   build/tlsfloor [--conns N] [--tls12]
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tls.h"

/* Every OpenSSL allocation carries this header: a list of the live ones,
 * where each was made, and which phase made it. */
struct block {
    struct block *prev, *next;
    const char *file;
    size_t size;
    int phase;   /* 0 set-up, 1 a connection */
    int pad;
};

static struct block live = {&live, &live, NULL, 0, 0, 0};
static int phase;

static void *count_malloc(size_t n, const char *file, int line)
{
    (void)line;
    struct block *b = malloc(sizeof(*b) + n);
    if (!b)
        return NULL;
    *b = (struct block){&live, live.next, file, n, phase, 0};
    live.next->prev = b;
    live.next = b;
    return b + 1;
}

static void count_free(void *p, const char *file, int line)
{
    (void)file;
    (void)line;
    if (!p)
        return;
    struct block *b = (struct block *)p - 1;
    b->prev->next = b->next;
    b->next->prev = b->prev;
    free(b);
}

static void *count_realloc(void *p, size_t n, const char *file, int line)
{
    if (!p)
        return count_malloc(n, file, line);
    if (!n) {
        count_free(p, file, line);
        return NULL;
    }
    struct block *old = (struct block *)p - 1;
    void *q = count_malloc(n, file, line);
    if (!q)
        return NULL;
    memcpy(q, p, old->size < n ? old->size : n);
    ((struct block *)q - 1)->phase = old->phase;
    count_free(p, file, line);
    return q;
}

/* What glibc's malloc holds for a request of n bytes: a 16-byte-aligned
 * chunk with an 8-byte size field, 32 bytes at least. */
static size_t chunk_size(size_t n)
{
    size_t c = (n + 8 + 15) & ~(size_t)15;
    return c < 32 ? 32 : c;
}

static void die(const char *what)
{
    fprintf(stderr, "tlsfloor: %s\n", what);
    exit(1);
}

/* A self-signed P-256 certificate and its key, written to dir as cert.pem and key.pem. */
static void make_cert(const char *dir, char *cert, char *key, size_t len)
{
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    if (!pk || !x)
        die("cannot make a key");
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, pk);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *)"localhost",
                               -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    if (!X509_sign(x, pk, EVP_sha256()))
        die("cannot sign the certificate");
    snprintf(cert, len, "%s/cert.pem", dir);
    snprintf(key, len, "%s/key.pem", dir);
    FILE *fc = fopen(cert, "w"), *fk = fopen(key, "w");
    if (!fc || !fk || !PEM_write_X509(fc, x) || !PEM_write_PrivateKey(fk, pk, NULL, NULL, 0, NULL, NULL))
        die("cannot write the certificate");
    fclose(fc);
    fclose(fk);
    X509_free(x);
    EVP_PKEY_free(pk);
}

/* Drives one client and one server connection through the handshake and a
 * message each way. Returns 0, or -1 when it does not finish. */
static int converse(SSL *client, void *server, int sfd)
{
    static const char hello[] = "GET /echo HTTP/1.1\r\n\r\n", answer[] = "HTTP/1.1 101 Switching Protocols\r\n\r\n";
    char buf[256];
    int asked = 0, answered = 0;
    for (int round = 0; round < 200 && answered < (int)sizeof(answer) - 1; round++) {
        if (!asked && SSL_write(client, hello, sizeof(hello) - 1) > 0)
            asked = 1;
        ssize_t n = transport_tls_ops.recv(server, sfd, buf, sizeof(buf));
        if (n > 0) {
            struct iovec iov = {(void *)answer, sizeof(answer) - 1};
            if (transport_tls_ops.writev(server, sfd, &iov, 1) != (ssize_t)iov.iov_len)
                return -1;
        } else if (n == 0 || errno != EAGAIN) {
            return -1;
        }
        if (transport_tls_ops.status(server) & TRANSPORT_HAS_OUTPUT)
            transport_tls_ops.writev(server, sfd, NULL, 0);
        int r = SSL_read(client, buf, sizeof(buf));
        if (r > 0)
            answered += r;
    }
    return answered == (int)sizeof(answer) - 1 ? 0 : -1;
}

struct by_file {
    const char *file;
    size_t bytes, allocs;
};

static int by_bytes(const void *a, const void *b)
{
    const struct by_file *x = a, *y = b;
    return x->bytes < y->bytes ? 1 : x->bytes > y->bytes ? -1 : 0;
}

int main(int argc, char **argv)
{
    long conns = 1000;
    const char *version = "1.3";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--conns") == 0 && i + 1 < argc)
            conns = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--tls12") == 0)
            version = "1.2";
        else
            die("usage: tlsfloor [--conns N] [--tls12]");
    }
    if (conns < 1 || conns > 8000)
        die("--conns: 1 to 8000");
    if (!CRYPTO_set_mem_functions(count_malloc, count_realloc, count_free))
        die("OpenSSL allocated before its hooks could be set");

    char dir[] = "/tmp/tlsfloor-XXXXXX", cert[64], key[64], err[256];
    if (!mkdtemp(dir))
        die("cannot make a temporary directory");
    make_cert(dir, cert, key, sizeof(cert));
    struct tls_ctx *ctx = tls_ctx_new(cert, key, "1.2", 0, err, sizeof(err));
    unlink(cert);
    unlink(key);
    rmdir(dir);
    if (!ctx)
        die(err);
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    if (!cctx)
        die("cannot make the client context");
    SSL_CTX_set_min_proto_version(cctx, strcmp(version, "1.3") == 0 ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(cctx, strcmp(version, "1.3") == 0 ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_ciphersuites(cctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256");
    SSL_CTX_set_cipher_list(cctx, "ECDHE-ECDSA-AES128-GCM-SHA256");

    void **servers = calloc((size_t)conns + 1, sizeof(*servers));
    int *fds = calloc((size_t)conns + 1, sizeof(*fds));
    char cipher[64] = "?";
    if (!servers || !fds)
        die("out of memory");
    /* Connection 0 is a warm-up (what OpenSSL makes once, at the first
     * handshake, stays in the set-up phase); 1..conns are counted. */
    for (long i = 0; i <= conns; i++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0)
            die(strerror(errno));
        phase = i > 0;
        if (transport_tls_ops.attach(ctx, sv[0], &servers[i]) < 0)
            die("attach failed");
        SSL *client = SSL_new(cctx);
        if (!client || SSL_set_fd(client, sv[1]) != 1)
            die("cannot make a client");
        SSL_set_tlsext_host_name(client, "localhost");
        SSL_set_connect_state(client);
        if (converse(client, servers[i], sv[0]) < 0)
            die("a handshake did not finish");
        snprintf(cipher, sizeof(cipher), "%s %s", SSL_get_version(client), SSL_get_cipher_name(client));
        SSL_free(client);
        close(sv[1]);
        fds[i] = sv[0];
        phase = 0;
    }

    struct by_file files[64];
    size_t nfiles = 0, bytes = 0, chunks = 0, allocs = 0;
    for (struct block *b = live.next; b != &live; b = b->next) {
        if (!b->phase)
            continue;
        bytes += b->size;
        chunks += chunk_size(b->size);
        allocs++;
        size_t f = 0;
        while (f < nfiles && strcmp(files[f].file ? files[f].file : "", b->file ? b->file : "") != 0)
            f++;
        if (f == nfiles) {
            if (nfiles == sizeof(files) / sizeof(files[0]))
                continue;
            files[nfiles++] = (struct by_file){b->file, 0, 0};
        }
        files[f].bytes += b->size;
        files[f].allocs++;
    }
    qsort(files, nfiles, sizeof(files[0]), by_bytes);
    printf("tlsfloor: %ld idle server connections of wshub's TLS transport, %s, record buffers released\n", conns,
           cipher);
    printf("per connection: %zu bytes asked of malloc by OpenSSL in %.1f allocations; %zu bytes as glibc's chunks\n",
           bytes / (size_t)conns, (double)allocs / (double)conns, chunks / (size_t)conns);
    printf("by OpenSSL source file (bytes per connection, allocations):\n");
    for (size_t f = 0; f < nfiles; f++)
        printf("  %-40s %7zu %5.1f\n", files[f].file ? files[f].file : "?", files[f].bytes / (size_t)conns,
               (double)files[f].allocs / (double)conns);
    printf("RESULT tls=%s conns=%ld openssl_bytes_per_conn=%zu glibc_chunk_bytes_per_conn=%zu allocs_per_conn=%.1f\n",
           version, conns, bytes / (size_t)conns, chunks / (size_t)conns, (double)allocs / (double)conns);

    for (long i = 0; i <= conns; i++) {
        transport_tls_ops.detach(servers[i]);
        close(fds[i]);
    }
    free(servers);
    free(fds);
    SSL_CTX_free(cctx);
    tls_ctx_free(ctx);
    return 0;
}
