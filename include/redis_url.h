/* redis_url: where Redis is and how to log in. Parses
 *   redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]     HOST a name, IPv4 or [IPv6]
 *   unix://[[USER]:PASSWORD@]/PATH[?db=N]
 * (USER and PASSWORD percent-decoded; a userinfo without ':' is the password,
 * as redis-cli reads it; port 6379 and db 0 by default) into fixed-size
 * fields, and reads a password file. Pure apart from
 * redis_password_file_read, which reads one small file at start: never
 * allocates, never connects, never logs. */
#ifndef WSHUB_REDIS_URL_H
#define WSHUB_REDIS_URL_H

#include <stddef.h>

#define REDIS_URL_HOST_MAX 256
#define REDIS_URL_PATH_MAX 108       /* sizeof sun_path, with its NUL */
#define REDIS_URL_USER_MAX 256
#define REDIS_URL_PASSWORD_MAX 512

struct redis_url {
    int unix_socket;                        /* 1: path is set; host and port are not */
    char host[REDIS_URL_HOST_MAX];          /* name or numeric address, IPv6 without brackets */
    int port;                               /* 1..65535 */
    char path[REDIS_URL_PATH_MAX];          /* absolute path of the socket */
    char user[REDIS_URL_USER_MAX];          /* ACL user, "" for none (AUTH PASSWORD) */
    char password[REDIS_URL_PASSWORD_MAX];  /* "" for none (no AUTH) */
    int db;                                 /* SELECT index, 0..2147483647 */
};

/* Parses text into *u. Returns 0, or -1 with the reason (one line, no
 * password in it) written to err. */
int redis_url_parse(const char *text, struct redis_url *u, char *err, size_t errsz);

/* Writes the URL without user or password ("redis://HOST:PORT/DB",
 * "unix:///PATH?db=N"), for logs and error messages; always NUL-terminated. */
void redis_url_describe(const struct redis_url *u, char *out, size_t outsz);

/* Reads a password from the file at path into out (outsz bytes with the
 * NUL): the whole file, less one trailing "\n" or "\r\n". Returns 0, or -1
 * with the reason in err (cannot open or read it, empty, too long, more than
 * one line, a NUL byte). */
int redis_password_file_read(const char *path, char *out, size_t outsz, char *err, size_t errsz);

#endif
