/* echo: the /echo endpoint. Every text or binary message goes back to its
 * sender, same type, same bytes; it is what conformance suites drive. */
#ifndef WSHUB_ECHO_H
#define WSHUB_ECHO_H

#include "conn.h"

/* The echo endpoint, for router_mount; its messages are bounded by --max-message. */
extern const struct endpoint echo_endpoint;

#endif
