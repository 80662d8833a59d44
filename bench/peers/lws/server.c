/*
 * Peer server for wshub's benchmarks (bench/run.sh), on libwebsockets
 * (Debian 12's libwebsockets-dev, 4.1.x).
 * Usage: lws-server PORT [--cert FILE --key FILE] [--deflate]
 *   --cert/--key  TLS (lws's OpenSSL backend): https and wss
 *   --deflate     permessage-deflate (lws_extension_callback_pm_deflate, with
 *                 lws's defaults: the server keeps its context; compressed per
 *                 send, so a room message is compressed once per member)
 *
 * Listens on 127.0.0.1:PORT. /echo sends every message back to its sender
 * with the same type; any other path is a room named by the path that relays
 * every message (same type, same bytes) to all its members, the sender
 * included. One thread (lws_service), no extensions unless --deflate,
 * messages up to 16 MiB, pings answered by lws, no per-message logging. The
 * same behaviour as bench/peers/node and bench/peers/python.
 *
 * It is written the way lws wants to be used, and as efficiently as that
 * allows, since it is what wshub is measured against: a received message is
 * copied once into a reference-counted buffer with LWS_PRE bytes of headroom;
 * every recipient's queue holds a reference; lws only lets us write in
 * LWS_CALLBACK_SERVER_WRITEABLE, where we write queued messages (one lws_write
 * each: lws has no gather write) until the queue is empty or lws had to buffer
 * a partial write, i.e. the socket is full.
 */
#include <libwebsockets.h>

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MESSAGE (16u * 1024 * 1024)
#define ROOM_BUCKETS 1024

/* One message, shared by every queue it is on; payload at data + LWS_PRE. */
struct msg {
	unsigned refs;
	unsigned binary;
	size_t len, cap;
	unsigned char data[]; /* LWS_PRE + cap bytes */
};

struct room;

/* Per connection (lws allocates and zeroes it: per_session_data_size). */
struct pss {
	struct lws *wsi;
	struct room *room;         /* NULL on /echo */
	struct pss *prev, *next;   /* room membership */
	struct msg **q;            /* ring of pending messages */
	unsigned qhead, qlen, qcap;
	struct msg *rx;            /* message being reassembled */
};

struct room {
	struct room *next_in_bucket;
	struct pss *members;
	unsigned count;
	char path[];
};

static struct room *rooms[ROOM_BUCKETS];
static volatile sig_atomic_t interrupted;
static struct lws_context *context;

static unsigned hash(const char *s)
{
	uint32_t h = 2166136261u;
	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h % ROOM_BUCKETS;
}

static struct room *room_get(const char *path)
{
	unsigned b = hash(path);
	struct room *r;
	for (r = rooms[b]; r; r = r->next_in_bucket)
		if (!strcmp(r->path, path))
			return r;
	r = calloc(1, sizeof(*r) + strlen(path) + 1);
	if (!r)
		return NULL;
	strcpy(r->path, path);
	r->next_in_bucket = rooms[b];
	rooms[b] = r;
	return r;
}

static void room_leave(struct pss *p)
{
	struct room *r = p->room, **pp;
	if (!r)
		return;
	if (p->prev)
		p->prev->next = p->next;
	else
		r->members = p->next;
	if (p->next)
		p->next->prev = p->prev;
	p->room = NULL;
	if (--r->count)
		return;
	for (pp = &rooms[hash(r->path)]; *pp != r; pp = &(*pp)->next_in_bucket)
		;
	*pp = r->next_in_bucket;
	free(r);
}

static void msg_unref(struct msg *m)
{
	if (!--m->refs)
		free(m);
}

/* Appends a reference to m to p's queue and asks for a writeable callback. */
static int enqueue(struct pss *p, struct msg *m)
{
	if (p->qlen == p->qcap) {
		unsigned ncap = p->qcap ? p->qcap * 2 : 8, i;
		struct msg **nq = malloc(ncap * sizeof(*nq));
		if (!nq)
			return -1;
		for (i = 0; i < p->qlen; i++)
			nq[i] = p->q[(p->qhead + i) % p->qcap];
		free(p->q);
		p->q = nq;
		p->qhead = 0;
		p->qcap = ncap;
	}
	p->q[(p->qhead + p->qlen++) % p->qcap] = m;
	m->refs++;
	if (p->qlen == 1)
		lws_callback_on_writable(p->wsi);
	return 0;
}

static void queue_free(struct pss *p)
{
	while (p->qlen) {
		msg_unref(p->q[p->qhead]);
		p->qhead = (p->qhead + 1) % p->qcap;
		p->qlen--;
	}
	free(p->q);
	p->q = NULL;
	p->qcap = 0;
}

/* Adds len bytes to the message being received; returns it when complete. */
static struct msg *receive(struct pss *p, struct lws *wsi, const void *in, size_t len, int *err)
{
	struct msg *m = p->rx;
	int first = lws_is_first_fragment(wsi), final = lws_is_final_fragment(wsi);

	*err = 0;
	if (!m || first) {
		size_t cap = len;
		if (!final) {
			/* more to come: start with the rest of this frame, or 4 KiB */
			size_t rest = lws_remaining_packet_payload(wsi);
			cap = len + (rest > 4096 ? rest : 4096);
		}
		if (m)
			free(m);
		m = malloc(sizeof(*m) + LWS_PRE + cap);
		if (!m) {
			*err = 1;
			return NULL;
		}
		m->refs = 0;
		m->binary = (unsigned)lws_frame_is_binary(wsi);
		m->len = 0;
		m->cap = cap;
		p->rx = m;
	}
	if (m->len + len > MAX_MESSAGE) {
		*err = 1;
		return NULL;
	}
	if (m->len + len > m->cap) {
		size_t ncap = m->cap * 2;
		struct msg *nm;
		if (ncap < m->len + len + lws_remaining_packet_payload(wsi))
			ncap = m->len + len + lws_remaining_packet_payload(wsi);
		if (ncap > MAX_MESSAGE)
			ncap = MAX_MESSAGE;
		nm = realloc(m, sizeof(*m) + LWS_PRE + ncap);
		if (!nm) {
			*err = 1;
			return NULL;
		}
		m = p->rx = nm;
		m->cap = ncap;
	}
	memcpy(m->data + LWS_PRE + m->len, in, len);
	m->len += len;
	if (!final)
		return NULL;
	p->rx = NULL;
	return m;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		    size_t len)
{
	struct pss *p = user;
	char path[512];
	struct msg *m;
	int err;

	switch (reason) {
	case LWS_CALLBACK_ESTABLISHED:
		p->wsi = wsi;
		if (lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI) < 0)
			return -1;
		if (!strcmp(path, "/echo"))
			return 0;
		p->room = room_get(path);
		if (!p->room)
			return -1;
		p->next = p->room->members;
		if (p->next)
			p->next->prev = p;
		p->room->members = p;
		p->room->count++;
		return 0;

	case LWS_CALLBACK_RECEIVE:
		m = receive(p, wsi, in, len, &err);
		if (err)
			return -1;
		if (!m)
			return 0;
		m->refs = 1; /* held while fanning out */
		if (!p->room) {
			if (enqueue(p, m))
				err = 1;
		} else {
			for (struct pss *o = p->room->members; o; o = o->next)
				if (enqueue(o, m))
					lws_set_timeout(o->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT,
							LWS_TO_KILL_ASYNC);
		}
		msg_unref(m);
		return err ? -1 : 0;

	case LWS_CALLBACK_SERVER_WRITEABLE:
		while (p->qlen) {
			m = p->q[p->qhead];
			p->qhead = (p->qhead + 1) % p->qcap;
			p->qlen--;
			err = lws_write(wsi, m->data + LWS_PRE, m->len,
					m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT) < (int)m->len;
			msg_unref(m);
			if (err)
				return -1;
			/* lws kept part of it: the socket is full; it calls us again */
			if (lws_partial_buffered(wsi))
				return 0;
		}
		return 0;

	case LWS_CALLBACK_CLOSED:
		room_leave(p);
		queue_free(p);
		free(p->rx);
		p->rx = NULL;
		return 0;

	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

static const struct lws_protocols protocols[] = {
	{
		.name = "bench",
		.callback = callback,
		.per_session_data_size = sizeof(struct pss),
		.rx_buffer_size = 4096,      /* per-connection receive chunk */
		.tx_packet_size = 65536,     /* one send() per message up to 64 KiB */
	},
	{ NULL, NULL, 0, 0, 0, NULL, 0 } /* terminator */
};

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
	if (context)
		lws_cancel_service(context);
}

int main(int argc, char **argv)
{
	struct lws_context_creation_info info;

	lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
	memset(&info, 0, sizeof(info));
	static const struct lws_extension exts[] = {
		{ "permessage-deflate", lws_extension_callback_pm_deflate, "permessage-deflate; client_max_window_bits" },
		{ NULL, NULL, NULL },
	};
	info.port = argc > 1 ? atoi(argv[1]) : 9002;
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--cert") && i + 1 < argc) {
			info.ssl_cert_filepath = argv[++i];
		} else if (!strcmp(argv[i], "--key") && i + 1 < argc) {
			info.ssl_private_key_filepath = argv[++i];
		} else if (!strcmp(argv[i], "--deflate")) {
			info.extensions = exts;
		} else {
			fprintf(stderr, "usage: lws-server PORT [--cert FILE --key FILE] [--deflate]\n");
			return 2;
		}
	}
	info.iface = "127.0.0.1";
	info.protocols = protocols;
	info.options = LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_DISABLE_IPV6;
	if (info.ssl_cert_filepath)
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info.count_threads = 1;
	info.pt_serv_buf_size = 65536;

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);

	context = lws_create_context(&info);
	if (!context) {
		fprintf(stderr, "lws peer: lws_create_context failed\n");
		return 1;
	}
	fprintf(stderr, "lws peer (libwebsockets %s) listening on 127.0.0.1:%d\n",
		lws_get_library_version(), info.port);
	while (!interrupted)
		if (lws_service(context, 0) < 0)
			break;
	lws_context_destroy(context);
	return 0;
}
