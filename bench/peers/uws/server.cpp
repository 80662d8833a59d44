/*
 * Peer server for wshub's benchmarks (bench/run.sh), on uWebSockets
 * (uNetworking/uWebSockets v20 with uNetworking/uSockets), built by
 * bench/peers/uws/build.sh in two flavours: plain TCP (LIBUS_NO_SSL) and
 * OpenSSL (LIBUS_USE_OPENSSL).
 * Usage: uws-server PORT [--cert FILE --key FILE] [--deflate]
 *   --cert/--key  TLS (an SSLApp; the OpenSSL flavour only): https and wss
 *   --deflate     permessage-deflate with uWS's SHARED_COMPRESSOR and
 *                 SHARED_DECOMPRESSOR (no context takeover either way: one
 *                 deflate and one inflate stream for the whole loop, no
 *                 per-socket window, the lowest memory uWS offers); a room
 *                 message is compressed once (Loop::prepareMessage) and sent
 *                 to every member with App::publishPrepared, as wshub's
 *                 broadcast compresses once. Echo compresses per send.
 *
 * Listens on 127.0.0.1:PORT. /echo sends every message back to its sender
 * with the same type; any other path is a room named by the path that relays
 * every message (same type, same bytes) to all its members, the sender
 * included. One thread (one uWS::Loop), compression only with --deflate, messages up to
 * 16 MiB, pings answered by uWS, no keepalive pings of its own, no idle
 * timeout, no per-message logging. The same behaviour as bench/peers/lws,
 * bench/peers/node and bench/peers/python.
 *
 * It is written the way uWS wants to be used, since it is the fastest server
 * wshub is measured against: echo answers from inside the message handler,
 * where uWS has the socket corked (the frame goes into the loop's cork
 * buffer and leaves in one send() when the handler returns); a room is a
 * pub/sub topic and a message is published with App::publish, which includes
 * the sender, and which uWS's TopicTree batches per subscriber and drains
 * corked once per loop iteration. maxBackpressure is raised so that no
 * message is dropped for a slow reader (the other peers never drop either);
 * a drop would be printed and wsbench would count it as lost.
 */
#include "App.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

struct PerSocket {
    std::string room;   /* empty on /echo */
};

constexpr unsigned MAX_MESSAGE = 16u * 1024 * 1024;
unsigned long long dropped;

}  // namespace

/* The app (App or SSLApp) with the peer's behaviour, listening on 127.0.0.1:port. */
template <class APP>
void serve(APP &app, int port, bool deflate)
{
    APP *appp = &app;
    app.template ws<PerSocket>("/*", {
        .compression = deflate ? uWS::CompressOptions(uWS::SHARED_COMPRESSOR | uWS::SHARED_DECOMPRESSOR)
                               : uWS::DISABLED,
        .maxPayloadLength = MAX_MESSAGE,
        .idleTimeout = 0,
        .maxBackpressure = 1024u * 1024 * 1024,
        .closeOnBackpressureLimit = false,
        .resetIdleTimeoutOnSend = false,
        .sendPingsAutomatically = false,
        .upgrade = [](auto *res, auto *req, auto *context) {
            std::string_view url = req->getUrl();     /* the path, without the query */
            res->template upgrade<PerSocket>(
                PerSocket{url == "/echo" ? std::string() : std::string(url)},
                req->getHeader("sec-websocket-key"), req->getHeader("sec-websocket-protocol"),
                req->getHeader("sec-websocket-extensions"), context);
        },
        .open = [](auto *ws) {
            PerSocket *p = ws->getUserData();
            if (!p->room.empty())
                ws->subscribe(p->room);
        },
        .message = [appp, deflate](auto *ws, std::string_view message, uWS::OpCode op) {
            PerSocket *p = ws->getUserData();
            if (p->room.empty()) {
                ws->send(message, op, deflate);
            } else if (deflate) {
                uWS::PreparedMessage m = uWS::Loop::get()->prepareMessage(message, op, true);
                appp->publishPrepared(p->room, m);
            } else {
                appp->publish(p->room, message, op);
            }
        },
        .dropped = [](auto *, std::string_view, uWS::OpCode) {
            if (dropped++ < 10)
                std::fprintf(stderr, "uws peer: a message was dropped (backpressure)\n");
        },
    }).listen("127.0.0.1", port, [port](auto *listen_socket) {
        if (!listen_socket) {
            std::fprintf(stderr, "uws peer: cannot listen on 127.0.0.1:%d\n", port);
            std::exit(1);
        }
        std::fprintf(stderr, "uws peer listening on 127.0.0.1:%d\n", port);
    });
    app.run();
}

int main(int argc, char **argv)
{
    int port = argc > 1 ? std::atoi(argv[1]) : 0;
    const char *cert = nullptr, *key = nullptr;
    bool deflate = false;
    for (int i = 2; i < argc; i++) {
        if (!std::strcmp(argv[i], "--cert") && i + 1 < argc)
            cert = argv[++i];
        else if (!std::strcmp(argv[i], "--key") && i + 1 < argc)
            key = argv[++i];
        else if (!std::strcmp(argv[i], "--deflate"))
            deflate = true;
        else
            port = 0;
    }
    if (port <= 0 || port > 65535 || !cert != !key) {
        std::fprintf(stderr, "usage: uws-server PORT [--cert FILE --key FILE] [--deflate]\n");
        return 2;
    }
    std::signal(SIGPIPE, SIG_IGN);
    if (cert) {
#ifdef LIBUS_NO_SSL
        std::fprintf(stderr, "uws peer: built without TLS (LIBUS_NO_SSL); use uws-server-ssl\n");
        return 2;
#else
        uWS::SSLApp app({ .key_file_name = key, .cert_file_name = cert });
        if (app.constructorFailed()) {
            std::fprintf(stderr, "uws peer: cannot load %s / %s\n", cert, key);
            return 1;
        }
        serve(app, port, deflate);
#endif
    } else {
        uWS::App app;
        serve(app, port, deflate);
    }
    return 0;
}
