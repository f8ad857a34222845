/*
 * tests/test_rest_openapi.c — the document matches the server.
 *
 * Runs after the other REST suites (tests/rest.inc orders the logs): it
 * fetches GET /v1/openapi.yaml from a live server, checks that every row of
 * the route table is in it, and has tests/openapi/check.mjs (real
 * validators from npm, pinned by package-lock.json) validate the document
 * as OpenAPI 3.1 and every response those suites recorded against it.
 * Skipped, with the reason, when node/npm are missing.
 */
#include <sys/wait.h>

#define REST_SUITE "openapi"
#include "rest_env.h"

ReportHook(PRE_ALL)(struct criterion_test_set *tests)
{
    (void)tests;
    rest_record_reset();
}

#ifndef BB_TESTS_SRCDIR
#error BB_TESTS_SRCDIR must name the tests source folder
#endif

Test(openapi, served_document_matches_every_response, .timeout = 400)
{
    rest_env e;
    bbt_response r;
    char *doc_path, cmd[4096], buf[1024];
    size_t used = 0;
    static char out[65536];
    FILE *p;
    int status;

    rest_start(&e, NULL);
    r = rest_call(&e, "GET", "/v1/openapi.yaml", NULL, NULL);
    cr_assert_eq(r.status, 200);
    {
        char *ct = bbt_header(&r, "Content-Type");
        cr_expect(ct && strstr(ct, "yaml"), "Content-Type: %s", ct ? ct : "(none)");
        free(ct);
    }
    /* every route template of the table (core/routes.c: rows are
     * { "METHOD", "/template", ... }) is a path of the document */
    {
        char src[1024], *routes;
        int rows = 0;
        snprintf(src, sizeof src, "%s/../core/routes.c", BB_TESTS_SRCDIR);
        routes = bbt_read_file(src, NULL);
        cr_assert(routes, "cannot read %s", src);
        for (char *q = strstr(routes, "bb_routes[]"); q && (q = strstr(q, "{ \"")); q++) {
            char method[16], tmpl[256], line[300];
            if (sscanf(q, "{ \"%15[A-Z]\", \"%255[^\"]\"", method, tmpl) != 2) continue;
            rows++;
            snprintf(line, sizeof line, "\n  %s:\n", tmpl);
            cr_expect(strstr(r.body, line), "route %s %s is missing from the document", method, tmpl);
        }
        cr_expect_geq(rows, 9, "read only %d rows of the route table", rows);
        free(routes);
    }
    doc_path = bbt_write_file(e.s.dir, "served-openapi.yaml", r.body);
    cr_assert(doc_path);
    bbt_response_free(&r);

    snprintf(cmd, sizeof cmd, "sh '%s/openapi/run-check.sh' '%s/openapi' '%s/tests/openapi-run' '%s' '%s' 2>&1",
             BB_TESTS_SRCDIR, BB_TESTS_SRCDIR, getenv("BB_BUILDDIR") ? getenv("BB_BUILDDIR") : BB_ABS_BUILDDIR,
             doc_path, rest_record_dir());
    p = popen(cmd, "r");
    cr_assert(p, "cannot run %s", cmd);
    while (fgets(buf, sizeof buf, p)) {
        size_t n = strlen(buf);
        if (used + n < sizeof out) { memcpy(out + used, buf, n); used += n; }
    }
    out[used] = '\0';
    status = pclose(p);
    free(doc_path);
    rest_stop(&e);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77) cr_skip_test("OpenAPI check skipped: %s", out);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "document-vs-server check failed:\n%s", out);
    cr_assert(strstr(out, "every response matches the served document"), "%s", out);
}
