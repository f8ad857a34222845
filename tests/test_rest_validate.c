/*
 * tests/test_rest_validate.c — the input rules (core/validate.c) and the
 * wire format (core/wire.c), shared by REST and MCP.  Every rule has a case.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/validate.h"
#include "../core/jsonw.h"
#include "../core/mcp_surface.h"
#include "../core/wire.h"

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &e);
    cr_assert(j, "test JSON does not parse: %s: %s", text, e.text);
    return j;
}

/* Validate a body; returns the refused field ("" when accepted). */
static const char *body_field(const char *text, bb_error *err)
{
    static char field[BB_ERROR_FIELD_MAX + 1];
    bb_post_input in;
    json_t *j = parse(text);
    bool ok;
    bb_error_clear(err);
    ok = bb_validate_create_body(j, &in, err);
    json_decref(j);
    if (ok) {
        bb_post_input_clear(&in);
        return "";
    }
    cr_assert_eq(err->code, BB_INVALID, "%s: code %d", text, err->code);
    snprintf(field, sizeof field, "%s", err->field);
    return field;
}

static char *repeat(const char *unit, size_t n)
{
    size_t ul = strlen(unit);
    char *s = malloc(ul * n + 1);
    cr_assert(s);
    for (size_t i = 0; i < n; i++) memcpy(s + i * ul, unit, ul);
    s[ul * n] = '\0';
    return s;
}

static const char *body_with_content(const char *content, bb_error *err)
{
    json_t *j = json_pack("{s:s, s:s}", "author", "alice", "content", content);
    char *text = json_dumps(j, 0);
    const char *f = body_field(text, err);
    free(text);
    json_decref(j);
    return f;
}

Test(utf8, counts_code_points_and_refuses_bad_bytes)
{
    cr_assert_eq(bb_utf8_chars("abc", 3), 3);
    cr_assert_eq(bb_utf8_chars("h\xc3\xa9llo", 6), 5);
    cr_assert_eq(bb_utf8_chars("\xf0\x9f\x98\x80", 4), 1);            /* emoji */
    cr_assert_eq(bb_utf8_chars("\xe2\x82\xac", 3), 1);                /* euro */
    cr_assert_eq(bb_utf8_chars("\xc3", 1), -1);                       /* truncated */
    cr_assert_eq(bb_utf8_chars("\xc0\xaf", 2), -1);                   /* overlong '/' */
    cr_assert_eq(bb_utf8_chars("\xe0\x80\xaf", 3), -1);               /* overlong 3-byte */
    cr_assert_eq(bb_utf8_chars("\xed\xa0\x80", 3), -1);               /* surrogate */
    cr_assert_eq(bb_utf8_chars("\xf4\x90\x80\x80", 4), -1);           /* > U+10FFFF */
    cr_assert_eq(bb_utf8_chars("\xff", 1), -1);
    cr_assert_eq(bb_utf8_chars("a\0b", 3), -1);                       /* NUL */
    cr_assert_eq(bb_utf8_chars("", 0), 0);
}

Test(create_body, accepts_camel_and_snake_case)
{
    bb_post_input in;
    bb_error err;
    json_t *j = parse("{\"author\":\" alice \",\"content\":\"  hi there \\n\",\"tags\":[\" x \",\"y\"],"
                      "\"parentPostId\":\"01ABC\"}");
    cr_assert(bb_validate_create_body(j, &in, &err), "%s", err.msg);
    cr_assert_str_eq(in.author, "alice");
    cr_assert_str_eq(in.content, "hi there");
    cr_assert_eq(in.n_tags, 2);
    cr_assert_str_eq(in.tags[0], "x");
    cr_assert_str_eq(in.parent_id, "01ABC");
    bb_post_input_clear(&in);
    json_decref(j);

    j = parse("{\"author_name\":\"bob\",\"content\":\"c\",\"parent_post_id\":\"P1\"}");
    cr_assert(bb_validate_create_body(j, &in, &err), "%s", err.msg);
    cr_assert_str_eq(in.author, "bob");
    cr_assert_str_eq(in.parent_id, "P1");
    cr_assert_eq(in.n_tags, 0);
    bb_post_input_clear(&in);
    json_decref(j);

    j = parse("{\"author\":\"bob\",\"content\":\"c\",\"parentPostId\":null,\"tags\":null}");
    cr_assert(bb_validate_create_body(j, &in, &err), "%s", err.msg);
    cr_assert_str_eq(in.parent_id, "");
    bb_post_input_clear(&in);
    json_decref(j);
}

Test(create_body, refuses_each_broken_field)
{
    bb_error err;
    static const struct { const char *body, *field; } cases[] = {
        { "[]", "body" },
        { "\"text\"", "body" },
        { "{\"content\":\"c\"}", "author" },
        { "{\"author\":\"a\"}", "content" },
        { "{\"author\":5,\"content\":\"c\"}", "author" },
        { "{\"author\":null,\"content\":\"c\"}", "author" },
        { "{\"author\":\"a\",\"content\":[1]}", "content" },
        { "{\"author\":\"a\",\"content\":true}", "content" },
        { "{\"author\":\"a\",\"content\":\"\"}", "content" },
        { "{\"author\":\"a\",\"content\":\" \\t\\n \"}", "content" },
        { "{\"author\":\"a\",\"content\":\"\\u00a0\\u3000\"}", "content" },
        { "{\"author\":\"\",\"content\":\"c\"}", "author" },
        { "{\"author\":\"   \",\"content\":\"c\"}", "author" },
        { "{\"author\":\"a\\u0007b\",\"content\":\"c\"}", "author" },
        { "{\"author\":\"a\\nb\",\"content\":\"c\"}", "author" },
        { "{\"author\":\"a\\u0085b\",\"content\":\"c\"}", "author" },
        { "{\"author\":\"a\",\"author_name\":\"b\",\"content\":\"c\"}", "author" },
        { "{\"author\":\"a\",\"content\":\"c\",\"tags\":\"x\"}", "tags" },
        { "{\"author\":\"a\",\"content\":\"c\",\"tags\":{}}", "tags" },
        { "{\"author\":\"a\",\"content\":\"c\",\"tags\":[1]}", "tags[0]" },
        { "{\"author\":\"a\",\"content\":\"c\",\"tags\":[\"ok\",\"\"]}", "tags[1]" },
        { "{\"author\":\"a\",\"content\":\"c\",\"tags\":[\"ok\",\"  \"]}", "tags[1]" },
        { "{\"author\":\"a\",\"content\":\"c\",\"tags\":[\"a\\u0001\"]}", "tags[0]" },
        { "{\"author\":\"a\",\"content\":\"c\",\"tags\":[null]}", "tags[0]" },
        { "{\"author\":\"a\",\"content\":\"c\",\"parentPostId\":5}", "parentPostId" },
        { "{\"author\":\"a\",\"content\":\"c\",\"parentPostId\":\"../x\"}", "parentPostId" },
        { "{\"author\":\"a\",\"content\":\"c\",\"parentPostId\":\"a b\"}", "parentPostId" },
        { "{\"author\":\"a\",\"content\":\"c\",\"parent_post_id\":\"x'; DROP\"}", "parentPostId" },
        { "{\"author\":\"a\",\"content\":\"c\",\"parentPostId\":\"a\",\"parent_post_id\":\"b\"}", "parentPostId" },
        { "{\"author\":\"a\",\"content\":\"c\",\"extra\":1}", "extra" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_expect_str_eq(body_field(cases[i].body, &err), cases[i].field, "%s -> %s (%s)", cases[i].body, err.field,
                         err.msg);
}

Test(create_body, content_length_counts_characters)
{
    bb_error err;
    char *s = repeat("a", 10000);
    cr_assert_str_eq(body_with_content(s, &err), "");
    free(s);
    s = repeat("a", 10001);
    cr_assert_str_eq(body_with_content(s, &err), "content");
    free(s);
    /* 10,000 two-byte characters = 20,000 bytes: still allowed */
    s = repeat("\xc3\xa9", 10000);
    cr_assert_str_eq(body_with_content(s, &err), "", "%s", err.msg);
    free(s);
    s = repeat("\xf0\x9f\x98\x80", 10001);
    cr_assert_str_eq(body_with_content(s, &err), "content");
    free(s);
    /* white space around does not count */
    s = repeat("a", 10000);
    {
        char *padded = malloc(10000 + 5);
        cr_assert(padded);
        snprintf(padded, 10005, "  %s  ", s);
        cr_assert_str_eq(body_with_content(padded, &err), "");
        free(padded);
    }
    free(s);
}

Test(create_body, author_and_tag_lengths)
{
    bb_error err;
    char *a128 = repeat("\xc3\xa9", 128), *a129 = repeat("x", 129), *t32 = repeat("\xe2\x82\xac", 32),
         *t33 = repeat("t", 33), body[2048];
    snprintf(body, sizeof body, "{\"author\":\"%s\",\"content\":\"c\",\"tags\":[\"%s\"]}", a128, t32);
    cr_assert_str_eq(body_field(body, &err), "", "%s", err.msg);
    snprintf(body, sizeof body, "{\"author\":\"%s\",\"content\":\"c\"}", a129);
    cr_assert_str_eq(body_field(body, &err), "author");
    snprintf(body, sizeof body, "{\"author\":\"a\",\"content\":\"c\",\"tags\":[\"%s\"]}", t33);
    cr_assert_str_eq(body_field(body, &err), "tags[0]");
    free(a128);
    free(a129);
    free(t32);
    free(t33);
}

Test(create_body, at_most_twenty_tags)
{
    bb_error err;
    char body[1024];
    size_t n = (size_t)snprintf(body, sizeof body, "{\"author\":\"a\",\"content\":\"c\",\"tags\":[");
    for (int i = 0; i < 20; i++) n += (size_t)snprintf(body + n, sizeof body - n, "%s\"t%d\"", i ? "," : "", i);
    snprintf(body + n, sizeof body - n, "]}");
    cr_assert_str_eq(body_field(body, &err), "");
    snprintf(body + n, sizeof body - n, ",\"t20\"]}");
    cr_assert_str_eq(body_field(body, &err), "tags");
}

Test(fields, mcp_entry_point_applies_the_same_rules)
{
    bb_post_input in;
    bb_error err;
    json_t *tags = parse("[\"a\"]");
    cr_assert(bb_validate_post_fields("alice", "hello", tags, NULL, &in, &err));
    cr_assert_eq(in.n_tags, 1);
    bb_post_input_clear(&in);
    cr_assert(bb_validate_post_fields("alice", "hello", NULL, "", &in, &err));
    bb_post_input_clear(&in);
    cr_assert_not(bb_validate_post_fields("alice", "   ", NULL, NULL, &in, &err));
    cr_assert_str_eq(err.field, "content");
    cr_assert_not(bb_validate_post_fields("alice", "\xff", NULL, NULL, &in, &err));
    cr_assert_str_eq(err.field, "content");
    cr_assert_not(bb_validate_post_fields(NULL, "x", NULL, NULL, &in, &err));
    cr_assert_str_eq(err.field, "author");
    cr_assert(bb_validate_author("alice", &err, "agent_name"));
    cr_assert_not(bb_validate_author("al\x01ice", &err, "agent_name"));
    cr_assert_str_eq(err.field, "agent_name");
    cr_assert_not(bb_validate_author("\xc3", &err, NULL));
    cr_assert_str_eq(err.field, "author");
    json_decref(tags);
}

static const char *query_field(const char *limit, const char *offset, const char *agent, const char *tag,
                               const char *thread, const char *sort, bb_post_query *q)
{
    static char field[BB_ERROR_FIELD_MAX + 1];
    bb_error err;
    bb_error_clear(&err);
    memset(q, 0, sizeof *q);
    if (bb_validate_list_query(limit, offset, agent, tag, thread, sort, q, &err)) return "";
    cr_assert_eq(err.code, BB_INVALID);
    snprintf(field, sizeof field, "%s", err.field);
    return field;
}

Test(list_query, defaults_and_bounds)
{
    bb_post_query q;
    cr_assert_str_eq(query_field(NULL, NULL, NULL, NULL, NULL, NULL, &q), "");
    cr_assert_eq(q.limit, 10);
    cr_assert_eq(q.offset, 0);
    cr_assert_not(q.ascending);
    cr_assert_str_eq(query_field("1", "0", "alice", "news", "01ABC", "asc", &q), "");
    cr_assert_eq(q.limit, 1);
    cr_assert(q.ascending);
    cr_assert_str_eq(q.author, "alice");
    cr_assert_str_eq(q.tag, "news");
    cr_assert_str_eq(q.thread_id, "01ABC");
    cr_assert_str_eq(query_field("100", "999999", NULL, NULL, NULL, "desc", &q), "");
    cr_assert_eq(q.limit, 100);
    cr_assert_eq(q.offset, 999999);

    static const char *bad_limits[] = { "0", "101", "-1", "abc", "", "1e3", " 5", "5 ", "+5", "0x10",
                                        "99999999999999999999999", "10.5" };
    for (size_t i = 0; i < sizeof bad_limits / sizeof bad_limits[0]; i++)
        cr_expect_str_eq(query_field(bad_limits[i], NULL, NULL, NULL, NULL, NULL, &q), "limit", "limit=%s",
                         bad_limits[i]);
    static const char *bad_offsets[] = { "-1", "x", "", "1.0", "9223372036854775808", "99999999999999999999" };
    for (size_t i = 0; i < sizeof bad_offsets / sizeof bad_offsets[0]; i++)
        cr_expect_str_eq(query_field(NULL, bad_offsets[i], NULL, NULL, NULL, NULL, &q), "offset", "offset=%s",
                         bad_offsets[i]);
    cr_assert_str_eq(query_field(NULL, NULL, "", NULL, NULL, NULL, &q), "agent");
    cr_assert_str_eq(query_field(NULL, NULL, "a\x01", NULL, NULL, NULL, &q), "agent");
    cr_assert_str_eq(query_field(NULL, NULL, "\xc3\x28", NULL, NULL, NULL, &q), "agent");
    cr_assert_str_eq(query_field(NULL, NULL, NULL, "", NULL, NULL, &q), "tag");
    cr_assert_str_eq(query_field(NULL, NULL, NULL, "123456789012345678901234567890123", NULL, NULL, &q), "tag");
    cr_assert_str_eq(query_field(NULL, NULL, NULL, NULL, "../etc", NULL, &q), "thread_id");
    cr_assert_str_eq(query_field(NULL, NULL, NULL, NULL, "a'--", NULL, &q), "thread_id");
    cr_assert_str_eq(query_field(NULL, NULL, NULL, NULL, NULL, "up", &q), "sort");
}

Test(wire, post_and_page_have_the_original_field_names)
{
    char *tags[] = { "x", "y" };
    bb_post p = { .id = "01P", .team = "t", .author = "alice", .content = "hi", .tags = tags, .n_tags = 2,
                  .thread_id = "01P", .created_ms = 1733230000123 };
    bb_post_page pg = { .posts = &p, .n = 1, .total = 37 };
    json_t *j = bb_wire_post(&p), *page;
    char *text;
    cr_assert(j);
    cr_assert_str_eq(json_string_value(json_object_get(j, "postId")), "01P");
    cr_assert_str_eq(json_string_value(json_object_get(j, "author")), "alice");
    cr_assert_str_eq(json_string_value(json_object_get(j, "content")), "hi");
    cr_assert_eq(json_array_size(json_object_get(j, "tags")), 2);
    cr_assert(json_is_null(json_object_get(j, "parentPostId")));
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(j, "createdAt"), "_seconds")), 1733230000);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(j, "createdAt"), "_nanoseconds")), 123000000);
    json_decref(j);

    snprintf(p.parent_id, sizeof p.parent_id, "01R");
    page = bb_wire_page(&pg, 19);
    cr_assert(page);
    text = json_dumps(page, JSON_COMPACT);
    cr_assert_str_eq(json_string_value(json_object_get(page, "nextOffset")), "20", "%s", text);
    cr_assert_eq(json_integer_value(json_object_get(page, "totalCount")), 37);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(page, "posts"), 0),
                                                       "parentPostId")), "01R");
    free(text);
    json_decref(page);

    page = bb_wire_page(&pg, 36);   /* last page */
    cr_assert(json_is_null(json_object_get(page, "nextOffset")));
    json_decref(page);
    pg.n = 0;
    page = bb_wire_page(&pg, 100);  /* past the end */
    cr_assert(json_is_null(json_object_get(page, "nextOffset")));
    cr_assert_eq(json_array_size(json_object_get(page, "posts")), 0);
    json_decref(page);
}

/* The hot-path writer must produce exactly what jansson would. */
static void expect_same_text(const bb_post_page *pg, int64_t offset)
{
    json_t *page = bb_wire_page(pg, offset);
    char *want = json_dumps(page, JSON_COMPACT), *got;
    size_t len = 0;
    cr_assert(want);
    got = bb_wire_page_text(pg, offset, &len);
    cr_assert(got);
    cr_expect_str_eq(got, want);
    cr_expect_eq(len, strlen(want));
    free(got);
    free(want);
    json_decref(page);
    for (size_t i = 0; i < pg->n; i++) {
        json_t *p = bb_wire_post(&pg->posts[i]);
        want = json_dumps(p, JSON_COMPACT);
        got = bb_wire_post_text(&pg->posts[i], &len);
        cr_expect_str_eq(got, want);
        free(got);
        free(want);
        json_decref(p);
    }
}

Test(wire, direct_text_matches_jansson)
{
    char *tags[] = { "x", "caf\xc3\xa9", "q\"uote", "back\\slash" };
    bb_post posts[3] = {
        { .id = "01A", .team = "t", .author = "alice", .content = "plain", .tags = tags, .n_tags = 4,
          .thread_id = "01A", .created_ms = 1733230000123 },
        { .id = "01B", .team = "t", .author = "b\xf0\x9f\x98\x80", .content = "line\nbreak\ttab\r\x01\x1f \x7f </script> \"q\" \\",
          .parent_id = "01A", .thread_id = "01A", .created_ms = 5 },
        { .id = "01C", .team = "t", .author = "c", .content = "\b\f", .created_ms = 0 },
    };
    bb_post_page pg = { .posts = posts, .n = 3, .total = 40 };
    expect_same_text(&pg, 0);
    expect_same_text(&pg, 37);
    pg.n = 0;
    expect_same_text(&pg, 0);
}

/* jsonw: integers and escapes byte-identical to jansson's compact output. */
Test(jsonw, integers_and_escapes_match_jansson)
{
    const int64_t ints[] = { 0, 1, -1, 9, 10, -10, 1733230000123, INT64_MAX, INT64_MIN };
    const char *strs[] = { "", "plain", "quote \" backslash \\ slash /", "tab\tnl\ncr\rbs\bff\f",
                           "\x01\x1f\x7f", "UTF-8: é ↳ 𝄞 …" };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        bb_jw b = { 0 };
        json_t *j = json_integer((json_int_t)ints[i]);
        char *want = json_dumps(j, JSON_ENCODE_ANY), *got;
        bb_jw_int(&b, ints[i]);
        got = bb_jw_finish(&b, NULL);
        cr_expect_str_eq(got, want);
        free(got);
        free(want);
        json_decref(j);
    }
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        bb_jw b = { 0 };
        json_t *j = json_string(strs[i]);
        char *want = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT), *got;
        bb_jw_str(&b, strs[i]);
        got = bb_jw_finish(&b, NULL);
        cr_expect_str_eq(got, want);
        free(got);
        free(want);
        json_decref(j);
    }
}

/* bb_jw_json writes scalars itself (the echoed request id) and hands the
 * rest to jansson: every kind gives jansson's bytes, an embedded NUL too. */
Test(jsonw, json_values_match_jansson)
{
    json_t *vals[] = { json_string("id-1 \"q\" \\ é"), json_stringn("a\0b", 3), json_integer(-42),
                       json_integer(INT64_MAX), json_true(), json_false(), json_null(), json_real(1.5),
                       json_pack("{s:i, s:[s, n]}", "a", 1, "b", "x", NULL) };
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        bb_jw b = { 0 };
        char *want, *got;
        cr_assert(vals[i]);
        want = json_dumps(vals[i], JSON_ENCODE_ANY | JSON_COMPACT);
        bb_jw_json(&b, vals[i]);
        got = bb_jw_finish(&b, NULL);
        cr_expect_str_eq(got, want, "value %zu", i);
        free(got);
        free(want);
        json_decref(vals[i]);
    }
}

/* The feed's timestamps: the hand-rolled calendar agrees with gmtime +
 * strftime across leap years, century rules and month ends. */
Test(jsonw, feed_time_text_matches_strftime)
{
    uint64_t x = 88172645463325252ull;   /* xorshift: a fixed, wide spread of instants */
    for (int i = 0; i < 20000; i++) {
        char got[40], want[40];
        int64_t ms;
        time_t t;
        struct tm tm;
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        ms = (int64_t)(x % 253402300799000ull);   /* 1970 .. 9999-12-31 */
        if (i < 4) ms = (int64_t[]){ 0, 951782400000, 4107542400000, 1709251199000 }[i];   /* 2000-02-29, 2100-03-01, 2024-02-29 */
        t = (time_t)(ms / 1000);
        cr_assert(gmtime_r(&t, &tm));
        cr_assert(strftime(want, sizeof want, "%Y-%m-%d %H:%M UTC", &tm) > 0);
        bb_mcp_time_text(ms, got, sizeof got);
        cr_assert_str_eq(got, want, "at %lld ms", (long long)ms);
    }
}

/* The 8-bytes-at-a-time scan: an escape at every offset of a long string,
 * among ASCII and multi-byte UTF-8, still matches jansson. */
Test(jsonw, escapes_at_every_offset_of_long_strings)
{
    const char *specials[] = { "\"", "\\", "\n", "\x01", "\x1f", "\t" };
    const char *fill = "abc é ↳ xyz 0123456789 ABCDEFGHIJ klmnop";   /* 45 bytes, mixed widths */
    for (size_t k = 0; k < sizeof specials / sizeof specials[0]; k++) {
        for (size_t at = 0; at <= strlen(fill); at++) {
            char s[128];
            bb_jw b = { 0 };
            json_t *j;
            char *want, *got;
            snprintf(s, sizeof s, "%.*s%s%s", (int)at, fill, specials[k], fill + at);
            if (!(j = json_string(s))) continue;   /* cut inside a UTF-8 sequence: not a valid string */
            want = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
            bb_jw_str(&b, s);
            got = bb_jw_finish(&b, NULL);
            cr_expect_str_eq(got, want, "special %zu at %zu", k, at);
            free(got);
            free(want);
            json_decref(j);
        }
    }
}
