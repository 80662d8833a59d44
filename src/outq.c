/* outq: ordered output queue of shared-frame references and files, written
 * with sendmsg(MSG_NOSIGNAL) over up to OUTQ_IOV iovecs, or sendfile for files
 * so that a large file is never read whole into memory. */
#include "outq.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define OUTQ_IOV 64
#define OUTQ_MIN_CAP 4

struct out_file {
    int fd;
    off_t off;
    size_t left;
};

static int grow(struct outq *q)
{
    uint32_t cap = q->cap ? q->cap * 2 : OUTQ_MIN_CAP;
    struct outq_item *items = malloc(cap * sizeof(*items));
    if (!items)
        return -1;
    for (uint32_t i = 0; i < q->count; i++)
        items[i] = q->items[(q->head + i) % q->cap];
    free(q->items);
    q->items = items;
    q->head = 0;
    q->cap = cap;
    return 0;
}

static struct outq_item *tail_slot(struct outq *q)
{
    if (q->count == q->cap && grow(q) < 0)
        return NULL;
    return &q->items[(q->head + q->count) % q->cap];
}

int outq_push(struct outq *q, struct sbuf *s, size_t off)
{
    if (off >= s->len)
        return 0;
    struct outq_item *it = tail_slot(q);
    if (!it)
        return -1;
    it->buf = sbuf_ref(s);
    it->file = NULL;
    it->off = (uint32_t)off;
    q->count++;
    q->bytes += s->len - off;
    return 0;
}

int outq_push_file(struct outq *q, int fd, off_t off, size_t len)
{
    struct out_file *f = len ? malloc(sizeof(*f)) : NULL;
    struct outq_item *it = f ? tail_slot(q) : NULL;
    if (!it) {
        free(f);
        close(fd);
        return len ? -1 : 0;
    }
    f->fd = fd;
    f->off = off;
    f->left = len;
    it->buf = NULL;
    it->file = f;
    it->off = 0;
    q->count++;
    q->bytes += len;
    return 0;
}

int outq_empty(const struct outq *q)
{
    return q->count == 0;
}

/* Bytes of the item not yet written. */
static size_t item_left(const struct outq_item *it)
{
    return it->buf ? it->buf->len - it->off : it->file->left;
}

/* Drops the item's reference, or closes its file. */
static void item_release(struct outq_item *it)
{
    if (it->buf) {
        sbuf_unref(it->buf);
    } else {
        close(it->file->fd);
        free(it->file);
    }
}

/* An empty queue holds no memory. */
static void free_if_empty(struct outq *q)
{
    if (q->count == 0) {
        free(q->items);
        q->items = NULL;
        q->head = q->cap = 0;
    }
}

static void release_head(struct outq *q)
{
    item_release(&q->items[q->head]);
    q->head = (q->head + 1) % q->cap;
    q->count--;
    free_if_empty(q);
}

/* Marks n bytes as sent from the head, releasing finished items. */
static void advance(struct outq *q, size_t n)
{
    q->bytes -= n;
    q->sent += (uint32_t)n;
    while (n > 0) {
        struct outq_item *it = &q->items[q->head];
        size_t left = item_left(it);
        if (n < left) {
            if (it->buf) {
                it->off += (uint32_t)n;
            } else {
                it->file->off += (off_t)n;
                it->file->left -= n;
            }
            return;
        }
        n -= left;
        release_head(q);
    }
}

static ssize_t write_file(struct outq *q, int fd, size_t budget)
{
    struct out_file *f = q->items[q->head].file;
    size_t want = f->left < budget ? f->left : budget;
    off_t off = f->off;
    ssize_t n = sendfile(fd, f->fd, &off, want);
    if (n == 0) {
        errno = EIO;   /* the file shrank under us: the promised length cannot be sent */
        return -1;
    }
    return n;
}

static ssize_t write_bufs(struct outq *q, int fd, size_t budget)
{
    struct iovec iov[OUTQ_IOV];
    int n = 0;
    size_t total = 0;
    for (uint32_t i = 0; i < q->count && n < OUTQ_IOV && total < budget; i++) {
        struct outq_item *it = &q->items[(q->head + i) % q->cap];
        if (!it->buf)
            break;
        iov[n].iov_base = it->buf->data + it->off;
        iov[n].iov_len = it->buf->len - it->off;
        total += iov[n].iov_len;
        n++;
    }
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
    return sendmsg(fd, &msg, MSG_NOSIGNAL);
}

ssize_t outq_write(struct outq *q, int fd, size_t budget)
{
    size_t sent = 0;
    while (q->count && sent < budget) {
        int is_file = q->items[q->head].buf == NULL;
        ssize_t n = is_file ? write_file(q, fd, budget - sent) : write_bufs(q, fd, budget - sent);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return -1;
        }
        advance(q, (size_t)n);
        sent += (size_t)n;
    }
    return (ssize_t)sent;
}

void outq_drop_unsent(struct outq *q)
{
    struct outq_item *head = q->count ? &q->items[q->head] : NULL;
    uint32_t keep = head && head->buf && head->off > 0 ? 1 : 0;
    while (q->count > keep) {
        struct outq_item *it = &q->items[(q->head + q->count - 1) % q->cap];
        q->bytes -= item_left(it);
        item_release(it);
        q->count--;
    }
    free_if_empty(q);
}

void outq_clear(struct outq *q)
{
    while (q->count)
        release_head(q);
    q->bytes = 0;
}
