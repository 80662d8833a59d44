/* main: parses options into the config, wires the server (routes, signals),
 * and runs the loop. The only place that exits. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chat.h"
#include "config.h"
#include "echo.h"
#include "log.h"
#include "loop.h"
#include "server.h"

struct signals {
    struct loop_io io;
    struct server *srv;
};

static void on_signal(struct loop *l, struct loop_io *io, uint32_t events)
{
    (void)events;
    struct signalfd_siginfo si;
    if (read(io->fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
        log_msg(LOG_INFO, "received %s, shutting down", strsignal((int)si.ssi_signo));
    loop_stop(l);
}

int main(int argc, char **argv)
{
    struct config cfg;
    config_defaults(&cfg);
    int rc = config_parse_args(&cfg, argc, argv, stdout, stderr);
    if (rc == 1)
        return 0;
    if (rc != 0)
        return rc;
    log_set_level((enum log_level)cfg.log_level);

    struct stat st;
    if (stat(cfg.static_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "wshub: --static '%s' is not a directory\n", cfg.static_dir);
        return 2;
    }

    signal(SIGPIPE, SIG_IGN);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigprocmask(SIG_BLOCK, &mask, NULL);

    struct chat_config chat_cfg = {
        .hub = {.history = cfg.history, .max_rooms = cfg.max_rooms,
                .max_members = cfg.max_room_members, .max_backlog = cfg.max_backlog},
        .rate_limit = cfg.rate_limit,
        .max_line = cfg.max_line,
    };
    struct chat *chat = chat_new(&chat_cfg);
    struct loop *loop = chat ? loop_new() : NULL;
    struct server *srv = loop ? server_new(loop, &cfg) : NULL;
    if (!srv) {
        loop_free(loop);
        chat_free(chat);
        return 1;
    }
    server_route(srv, "/echo", 0, &echo_endpoint);
    server_route(srv, "/ws", 1, chat_endpoint(chat));

    struct signals sig = {.io = {.fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC), .cb = on_signal},
                          .srv = srv};
    if (sig.io.fd < 0 || loop_io_add(loop, &sig.io, LOOP_READ) < 0) {
        log_msg(LOG_ERROR, "signalfd: %s", strerror(errno));
        server_free(srv);
        loop_free(loop);
        chat_free(chat);
        return 1;
    }
    log_msg(LOG_INFO, "wshub listening on %s port %d, static files from %s", cfg.host, cfg.port,
            cfg.static_dir);
    rc = loop_run(loop) == 0 ? 0 : 1;
    close(sig.io.fd);
    server_free(srv);
    loop_free(loop);
    chat_free(chat);
    log_msg(LOG_INFO, "stopped");
    return rc;
}
