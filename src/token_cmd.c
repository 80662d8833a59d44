/* token_cmd: `wshub token`, which prints an HS256 connection token so that
 * operators and the README's examples can try authentication without writing
 * code. Reads the secret file, builds the claims with jansson and signs with
 * jwt. Prints to stdout, errors to stderr; never touches the server. */
#include "token_cmd.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "jwt.h"


static void usage(FILE *out)
{
    fprintf(out, "Usage: wshub token --secret-file FILE --sub ID [--name NICK] [--rooms 'a,b*'] [--mod] [--ttl S]\n"
                 "Prints an HS256 connection token signed with the secret in FILE (one trailing newline ignored).\n"
                 "  --sub ID        the user id (required)\n"
                 "  --name NICK     the display nick (default: the user id)\n"
                 "  --rooms LIST    comma-separated room names or prefix* patterns (default: every room)\n"
                 "  --mod           the user is a moderator\n"
                 "  --ttl S         seconds until it expires (default 3600; 0 = never)\n");
}

/* Adds "rooms": the comma-separated list. Returns 0 or -1. */
static int add_rooms(json_t *claims, const char *list)
{
    json_t *rooms = json_array();
    char *copy = strdup(list), *save = NULL;
    int rc = rooms && copy ? 0 : -1;
    for (char *r = copy ? strtok_r(copy, ",", &save) : NULL; r && rc == 0; r = strtok_r(NULL, ",", &save))
        rc = json_array_append_new(rooms, json_string(r));
    free(copy);
    if (rc == 0)
        return json_object_set_new(claims, "rooms", rooms);
    json_decref(rooms);
    return -1;
}

int token_command(int argc, char **argv)
{
    static const struct option opts[] = {
        {"secret-file", required_argument, NULL, 's'}, {"sub", required_argument, NULL, 'u'},
        {"name", required_argument, NULL, 'n'}, {"rooms", required_argument, NULL, 'r'},
        {"mod", no_argument, NULL, 'm'}, {"ttl", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    const char *secret_file = NULL, *sub = NULL, *name = NULL, *rooms = NULL;
    int mod = 0;
    long long ttl = 3600;
    char *end;
    optind = 1;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
        switch (c) {
        case 's': secret_file = optarg; break;
        case 'u': sub = optarg; break;
        case 'n': name = optarg; break;
        case 'r': rooms = optarg; break;
        case 'm': mod = 1; break;
        case 't':
            ttl = strtoll(optarg, &end, 10);
            if (*end || ttl < 0 || end == optarg) {
                fprintf(stderr, "wshub token: --ttl '%s' must be a number of seconds\n", optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!secret_file || !sub || !*sub || optind < argc) {
        usage(stderr);
        return 2;
    }
    uint8_t secret[AUTH_SECRET_MAX];
    char err[512];
    long n = auth_read_secret(secret_file, secret, sizeof(secret), err, sizeof(err));
    if (n < 0) {
        fprintf(stderr, "wshub token: %s\n", err);
        return 1;
    }
    struct jwt_key *key = jwt_key_secret(secret, (size_t)n);
    json_t *claims = json_pack("{s:s, s:I}", "sub", sub, "iat", (json_int_t)time(NULL));
    int rc = key && claims ? 0 : -1;
    if (rc == 0 && name)
        rc = json_object_set_new(claims, "name", json_string(name));
    if (rc == 0 && rooms)
        rc = add_rooms(claims, rooms);
    if (rc == 0 && mod)
        rc = json_object_set_new(claims, "mod", json_true());
    if (rc == 0 && ttl)
        rc = json_object_set_new(claims, "exp", json_integer((json_int_t)time(NULL) + ttl));
    char *payload = rc == 0 ? json_dumps(claims, JSON_COMPACT) : NULL;
    char token[JWT_MAX_TOKEN + 1];
    size_t len = payload ? jwt_sign_hs256(key, payload, token, sizeof(token)) : 0;
    free(payload);
    json_decref(claims);
    jwt_key_free(key);
    if (!len) {
        fprintf(stderr, "wshub token: cannot build the token (a value is not valid UTF-8, or it is too long)\n");
        return 1;
    }
    printf("%s\n", token);
    return 0;
}
