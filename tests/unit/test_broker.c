/* test_broker: the in-memory broker (src/broker_memory.c): a publication comes
 * straight back to the handler, in publish order, with its kind and bytes and
 * no number (the hub numbers messages on one node), even when the publisher
 * passed one; a roster change comes back as asked, as this node's, with the
 * nick the hub guessed standing. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"

static struct {
    int calls;
    char room[16];
    struct broker_pub last;
    char data[64];
    void *ctx;
} R;

static void on_deliver(void *ctx, const char *room, const struct broker_pub *p)
{
    R.calls++;
    R.ctx = ctx;
    strcpy(R.room, room);
    R.last = *p;
    memcpy(R.data, p->data, p->len);
}

static struct {
    int calls;
    char room[16];
    struct broker_presence last;
    char nick[40], old[40];
} P;

static void on_presence(void *ctx, const char *room, const struct broker_presence *p)
{
    (void)ctx;
    P.calls++;
    strcpy(P.room, room);
    P.last = *p;
    strcpy(P.nick, p->nick);
    strcpy(P.old, p->old ? p->old : "");
}

START_TEST(test_memory_hands_presence_back_as_asked)
{
    struct broker_handler h = {.deliver = on_deliver, .presence = on_presence};
    struct broker b;
    memset(&P, 0, sizeof(P));
    ck_assert_int_eq(broker_memory_init(&b, &h), 0);
    struct broker_presence j = {.kind = BROKER_JOIN, .id = 7, .nick = "want", .old = "guess", .guest = 0};
    ck_assert_int_eq(broker_presence(&b, "lobby", &j), 0);
    ck_assert_int_eq(P.calls, 1);
    ck_assert_str_eq(P.room, "lobby");
    ck_assert_int_eq(P.last.kind, BROKER_JOIN);
    ck_assert_uint_eq(P.last.id, 7);
    ck_assert_int_eq(P.last.mine, 1);    /* one node: every member is this node's */
    ck_assert_int_eq(P.last.given, 0);   /* the hub's guess stands */
    ck_assert_int_eq(P.last.refused, 0);
    ck_assert_str_eq(P.nick, "want");
    ck_assert_str_eq(P.old, "guess");
    struct broker_presence l = {.kind = BROKER_LEAVE, .nick = "want"};
    ck_assert_int_eq(broker_presence(&b, "lobby", &l), 0);
    ck_assert_int_eq(P.calls, 2);
    ck_assert_int_eq(P.last.kind, BROKER_LEAVE);
    broker_free(&b);
}
END_TEST

START_TEST(test_memory_hands_back_in_order)
{
    int token;
    struct broker_handler h = {.ctx = &token, .deliver = on_deliver};
    struct broker b;
    memset(&R, 0, sizeof(R));
    ck_assert_int_eq(broker_memory_init(&b, &h), 0);
    ck_assert_str_eq(b.ops->name, "memory");
    struct broker_pub m = {.kind = BROKER_MESSAGE, .seq = 99, .data = (const uint8_t *)"{\"a\":1", .len = 6};
    ck_assert_int_eq(broker_publish(&b, "lobby", &m), 0);
    ck_assert_int_eq(R.calls, 1);
    ck_assert_ptr_eq(R.ctx, &token);
    ck_assert_str_eq(R.room, "lobby");
    ck_assert_int_eq(R.last.kind, BROKER_MESSAGE);
    ck_assert_uint_eq(R.last.seq, 0);
    ck_assert_uint_eq(R.last.len, 6);
    ck_assert_mem_eq(R.data, "{\"a\":1", 6);
    struct broker_pub bin = {.kind = BROKER_BINARY, .data = (const uint8_t *)"\0\1", .len = 2};
    ck_assert_int_eq(broker_publish(&b, "r2", &bin), 0);
    ck_assert_int_eq(R.calls, 2);
    ck_assert_str_eq(R.room, "r2");
    ck_assert_int_eq(R.last.kind, BROKER_BINARY);
    ck_assert_mem_eq(R.data, "\0\1", 2);
    broker_free(&b);
    ck_assert_ptr_null(b.ops);
    broker_free(&b);   /* twice is harmless */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("broker");
    TCase *tc = tcase_create("memory");
    tcase_add_test(tc, test_memory_hands_back_in_order);
    tcase_add_test(tc, test_memory_hands_presence_back_as_asked);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
