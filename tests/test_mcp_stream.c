/*
 * tests/test_mcp_stream.c — the server→client SSE stream: a subscription
 * and a REST-created post give notifications/resources/updated on the GET
 * stream within 1 s; Last-Event-ID resumes with what was missed; a stream
 * ended by the client or the server's shutdown does not hang anything.
 *
 * The stream is read with libcurl directly: the write callback timestamps
 * each notification as it arrives and stops the transfer once it has what
 * it waits for.
 */
#include "mcp_common.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

static mcp_env env;

static void setup(void) { mcp_env_start(&env, NULL); }
static void teardown(void) { mcp_env_stop(&env); }

TestSuite(mcp_stream, .init = setup, .fini = teardown, .timeout = 60);

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct sse_reader {
    const char  *sid;
    const char  *last_event_id;
    int          want;          /* stop after this many updated notifications */
    int          timeout_ms;
    char         buf[1 << 16];
    size_t       len;
    atomic_bool  opened;        /* the first bytes arrived: the stream is live */
    atomic_int   notes;
    int64_t      first_note_ms;
    long         status;
} sse_reader;

static size_t on_data(char *p, size_t sz, size_t n, void *ud)
{
    sse_reader *r = ud;
    size_t k = sz * n, room = sizeof r->buf - 1 - r->len;
    int count = 0;
    memcpy(r->buf + r->len, p, k < room ? k : room);
    r->len += k < room ? k : room;
    r->buf[r->len] = '\0';
    atomic_store(&r->opened, true);
    for (const char *s = r->buf; (s = strstr(s, "notifications/resources/updated")); s++) count++;
    if (count > 0 && atomic_load(&r->notes) == 0) r->first_note_ms = now_ms();
    atomic_store(&r->notes, count);
    return r->want > 0 && count >= r->want ? 0 : k;   /* 0 ends the transfer */
}

static void *read_stream(void *arg)
{
    sse_reader *r = arg;
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    char auth[200], sid[200], lei[200];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", env.key);
    snprintf(sid, sizeof sid, "Mcp-Session-Id: %s", r->sid);
    h = curl_slist_append(h, auth);
    h = curl_slist_append(h, sid);
    h = curl_slist_append(h, "Accept: text/event-stream");
    if (r->last_event_id) {
        snprintf(lei, sizeof lei, "Last-Event-ID: %s", r->last_event_id);
        h = curl_slist_append(h, lei);
    }
    curl_easy_setopt(c, CURLOPT_URL, env.url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)r->timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return NULL;
}

static void rest_post(const char *content)
{
    char url[256], auth[200], body[512];
    const char *h[] = { auth, "Content-Type: application/json", NULL };
    bbt_response r;
    snprintf(url, sizeof url, "%s/v1/teams/default/posts", env.srv.base_url);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", env.key);
    snprintf(body, sizeof body, "{\"author\":\"rest-writer\",\"content\":\"%s\",\"tags\":[\"stream\"]}", content);
    cr_assert(bbt_http("POST", url, h, body, strlen(body), &r));
    cr_assert_eq(r.status, 201, "REST create: %ld %s", r.status, r.body);
    bbt_response_free(&r);
}

static void subscribe(const char *sid, const char *uri)
{
    char body[256];
    bbt_response r;
    snprintf(body, sizeof body, "{\"jsonrpc\":\"2.0\",\"id\":\"s\",\"method\":\"resources/subscribe\",\"params\":{\"uri\":\"%s\"}}", uri);
    r = mcp_post(&env, sid, body);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "{\"jsonrpc\":\"2.0\",\"id\":\"s\",\"result\":{}}");
    bbt_response_free(&r);
}

static void wait_open(sse_reader *r)
{
    int64_t until = now_ms() + 5000;
    while (!atomic_load(&r->opened) && now_ms() < until) {
        struct timespec ts = { 0, 5 * 1000 * 1000 };
        nanosleep(&ts, NULL);   /* polling a flag with a bound, not standing in for synchronisation */
    }
    cr_assert(atomic_load(&r->opened), "the GET stream did not open");
}

Test(mcp_stream, subscription_delivers_an_update_for_a_rest_post_within_1s)
{
    char *sid = mcp_open(&env, "2025-11-25");
    static sse_reader rd;
    pthread_t t;
    int64_t t0;
    memset(&rd, 0, sizeof rd);
    rd.sid = sid;
    rd.want = 1;
    rd.timeout_ms = 5000;
    subscribe(sid, "social://feed");
    cr_assert_eq(pthread_create(&t, NULL, read_stream, &rd), 0);
    wait_open(&rd);
    t0 = now_ms();
    rest_post("hello stream");
    pthread_join(t, NULL);
    cr_expect_eq(rd.status, 200);
    cr_assert_eq(atomic_load(&rd.notes), 1, "no update on the GET stream: %s", rd.buf);
    cr_expect_lt(rd.first_note_ms - t0, 1000, "update after %lld ms", (long long)(rd.first_note_ms - t0));
    cr_expect_not_null(strstr(rd.buf, "\"uri\":\"social://feed\""), "%s", rd.buf);
    cr_expect_not_null(strstr(rd.buf, "\nid: g-"), "events carry ids: %s", rd.buf);
    cr_expect_null(strstr(rd.buf, "\"result\""), "the GET stream never carries responses: %s", rd.buf);
    free(sid);
}

Test(mcp_stream, unsubscribed_sessions_and_other_uris_get_nothing)
{
    char *sid = mcp_open(&env, "2025-06-18");
    static sse_reader rd;
    pthread_t t;
    memset(&rd, 0, sizeof rd);
    rd.sid = sid;
    rd.want = 1;
    rd.timeout_ms = 1500;
    subscribe(sid, "social://threads/no-such-thread");
    cr_assert_eq(pthread_create(&t, NULL, read_stream, &rd), 0);
    wait_open(&rd);
    rest_post("not for you");
    pthread_join(t, NULL);
    cr_expect_eq(atomic_load(&rd.notes), 0, "%s", rd.buf);
    free(sid);
}

/* The id of the last "id:" line in an SSE text. */
static void last_id(const char *text, char *out, size_t len)
{
    const char *s = text, *hit = NULL;
    out[0] = '\0';
    while ((s = strstr(s, "id: "))) { if (s == text || s[-1] == '\n') hit = s; s++; }
    if (hit) snprintf(out, len, "%.*s", (int)strcspn(hit + 4, "\n"), hit + 4);
}

Test(mcp_stream, last_event_id_resumes_with_the_missed_events)
{
    char *sid = mcp_open(&env, "2025-11-25");
    static sse_reader first, again, later;
    char mark[128], second[128];
    pthread_t t;
    subscribe(sid, "social://feed");

    /* Stream 1: read the priming event (its id is the resume point), go away. */
    memset(&first, 0, sizeof first);
    first.sid = sid;
    first.timeout_ms = 600;
    cr_assert_eq(pthread_create(&t, NULL, read_stream, &first), 0);
    pthread_join(t, NULL);
    last_id(first.buf, mark, sizeof mark);
    cr_assert(mark[0], "no event id on the stream: %s", first.buf);

    /* Missed while disconnected. */
    rest_post("missed one");
    rest_post("missed two");

    memset(&again, 0, sizeof again);
    again.sid = sid;
    again.last_event_id = mark;
    again.want = 2;
    again.timeout_ms = 3000;
    cr_assert_eq(pthread_create(&t, NULL, read_stream, &again), 0);
    pthread_join(t, NULL);
    cr_expect_eq(again.status, 200);
    cr_assert_eq(atomic_load(&again.notes), 2, "resume after %s replayed: %s", mark, again.buf);

    /* Resuming after the first replayed event gives only the second. */
    {
        /* frames are "id: X\nevent: message\ndata: ..." */
        const char *ev = strstr(again.buf, "\nevent: message"), *b = ev;
        cr_assert_not_null(ev, "%s", again.buf);
        while (b > again.buf && b[-1] != '\n') b--;
        cr_assert_eq(strncmp(b, "id: ", 4), 0, "%s", again.buf);
        snprintf(second, sizeof second, "%.*s", (int)(ev - b - 4), b + 4);
    }
    memset(&later, 0, sizeof later);
    later.sid = sid;
    later.last_event_id = second;
    later.want = 0;
    later.timeout_ms = 800;
    cr_assert_eq(pthread_create(&t, NULL, read_stream, &later), 0);
    pthread_join(t, NULL);
    cr_expect_eq(atomic_load(&later.notes), 1, "resume after %s: %s", second, later.buf);
    free(sid);
}

Test(mcp_stream, a_stream_open_at_shutdown_does_not_hold_the_server, .timeout = 30)
{
    char *sid = mcp_open(&env, "2025-03-26");
    static sse_reader rd;
    pthread_t t;
    int64_t t0;
    memset(&rd, 0, sizeof rd);
    rd.sid = sid;
    rd.timeout_ms = 20000;
    cr_assert_eq(pthread_create(&t, NULL, read_stream, &rd), 0);
    wait_open(&rd);
    t0 = now_ms();
    cr_expect_eq(bbt_server_stop(&env.srv), 0, "clean exit with a stream open");
    pthread_join(t, NULL);
    cr_expect_lt(now_ms() - t0, 2500, "shutdown took %lld ms", (long long)(now_ms() - t0));
    free(sid);
}

Test(mcp_stream, idle_streams_get_heartbeats, .timeout = 30)
{
    mcp_env quick;
    static sse_reader rd;
    pthread_t t;
    char *sid;
    mcp_env saved = env;
    mcp_env_start(&quick, "mcp:\n  heartbeat_s: 1\n");
    env = quick;   /* read_stream talks to the suite's env */
    sid = mcp_open(&env, "2025-06-18");
    memset(&rd, 0, sizeof rd);
    rd.sid = sid;
    rd.timeout_ms = 2600;
    cr_assert_eq(pthread_create(&t, NULL, read_stream, &rd), 0);
    pthread_join(t, NULL);
    cr_expect_eq(rd.status, 200);
    cr_expect_not_null(strstr(rd.buf, "\n: keep-alive\n"), "no heartbeat in 2.6 s with heartbeat_s: 1: %s", rd.buf);
    free(sid);
    mcp_env_stop(&env);
    env = saved;
}
