/* request: answers one parsed HTTP request on a connection: a WebSocket
 * upgrade to a routed endpoint, a static file, or a refusal with a status and
 * a one-line reason. Session layer: it queues responses through conn. */
#ifndef WSHUB_REQUEST_H
#define WSHUB_REQUEST_H

#include "conn.h"
#include "http.h"

/* Answers req on c. Everything it needs from req is used before it returns. */
void request_handle(struct conn *c, const struct http_request *req);

#endif
