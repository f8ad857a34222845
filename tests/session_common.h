/*
 * tests/session_common.h — shared by the session suites: open a bb_app
 * (session slot only) from YAML text in a temp dir, poll with a bound.
 */
#ifndef BB_TEST_SESSION_COMMON_H
#define BB_TEST_SESSION_COMMON_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app.h"
#include "bbtest.h"
#include "host.h"

/* Test keys: "ID:BASE64(32 bytes)". */
#define KEY_A "ka:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define KEY_B "kb:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="
#define KEY_C "kc:QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8="

static inline void sess_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* Write yaml as DIR/NAME and open it with the session slot only. */
static inline bb_app *sess_open(const char *dir, const char *name, const char *yaml)
{
    bb_error err;
    char *path = bbt_write_file(dir, name, yaml);
    bb_app *app;
    cr_assert_not_null(path);
    app = bb_app_open(path, BB_APP_SESSION, &err);
    cr_assert_not_null(app, "bb_app_open: %s", err.msg);
    free(path);
    return app;
}

static inline bb_call sess_call(int64_t budget_ms)
{
    bb_call c = { "test", NULL, bb_now_ms() + budget_ms };
    return c;
}

/* Poll cond (an expression) every 20 ms for at most ms; true when it held. */
#define POLL_UNTIL(ms, cond)                                              \
    ({                                                                    \
        int64_t poll_end_ = bb_now_ms() + (ms);                           \
        bool poll_ok_ = false;                                            \
        while (!(poll_ok_ = (cond)) && bb_now_ms() < poll_end_) sess_sleep_ms(20); \
        poll_ok_;                                                         \
    })

#endif
