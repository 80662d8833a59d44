/*
 * Peer server for wshub's benchmarks (bench/run.sh), on uWebSockets
 * (uNetworking/uWebSockets v20 with uNetworking/uSockets, plain TCP:
 * LIBUS_NO_SSL). Usage: uws-server PORT.
 *
 * Listens on 127.0.0.1:PORT. /echo sends every message back to its sender
 * with the same type; any other path is a room named by the path that relays
 * every message (same type, same bytes) to all its members, the sender
 * included. One thread (one uWS::Loop), no compression, messages up to
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
#include <string>

namespace {

struct PerSocket {
    std::string room;   /* empty on /echo */
};

constexpr unsigned MAX_MESSAGE = 16u * 1024 * 1024;
unsigned long long dropped;

}  // namespace

int main(int argc, char **argv)
{
    int port = argc > 1 ? std::atoi(argv[1]) : 9004;
    if (port <= 0 || port > 65535) {
        std::fprintf(stderr, "usage: uws-server PORT\n");
        return 2;
    }
    std::signal(SIGPIPE, SIG_IGN);

    uWS::App app;
    uWS::App *appp = &app;
    app.ws<PerSocket>("/*", {
        .compression = uWS::DISABLED,
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
        .message = [appp](auto *ws, std::string_view message, uWS::OpCode op) {
            PerSocket *p = ws->getUserData();
            if (p->room.empty())
                ws->send(message, op);
            else
                appp->publish(p->room, message, op);
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
    return 0;
}
