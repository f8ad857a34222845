/*
 * tests/test_config.c — configuration: every broken file gets its exact
 * "file:line:col: message", substitution and masking work, defaults and
 * examples validate, and the man page documents every key.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <fcntl.h>

#include "app.h"
#include "config.h"
#include "log.h"

static char dir[256];

static void make_dir(void)
{
    snprintf(dir, sizeof dir, "%s/bbcfg.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

static char *write_cfg(const char *name, const char *text)
{
    static char path[512];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* Load + validate the core keys; returns the first error line (or "" if valid). */
static const char *errors_of(const char *text)
{
    static char err[4096];
    char *path = write_cfg("botboard.yaml", text);
    bb_config *c = bb_config_load(path, err, sizeof err);
    if (c && bb_config_validate_core(c, err, sizeof err)) err[0] = '\0';
    bb_config_free(c);
    return err;
}

TestSuite(config, .init = make_dir, .fini = remove_dir);

/* ---- broken configs: one table row each --------------------------------- */

typedef struct broken { const char *yaml; const char *expect; } broken;

static const broken cases[] = {
    { "server:\n  listne: 1\n", "2:3: unknown key 'server.listne' (did you mean 'server.listen'?)" },
    { "sever:\n  listen: 1\n", "1:1: unknown key 'sever' (did you mean 'server'?)" },
    { "server:\n  threads: 0\n", "2:3: server.threads: 0 is out of range (1..256)" },
    { "server:\n  threads: 1000\n", "2:3: server.threads: 1000 is out of range (1..256)" },
    { "server:\n  threads: four\n", "2:3: server.threads must be a whole number, not 'four'" },
    { "server:\n  threads: [1]\n", "2:3: server.threads must be a single value, not a list" },
    { "server: 8080\n", "1:1: server must be a mapping, not a single value" },
    { "environment: production\n", "1:1: environment must be one of dev|staging|prod, not 'production'" },
    { "server:\n  connection_timeout: 10parsecs\n",
      "2:3: server.connection_timeout: '10parsecs' is not a duration (e.g. 250ms, 30s, 5m, 2h)" },
    { "server:\n  connection_timeout: 10ms\n", "2:3: server.connection_timeout: 10ms is out of range (1000..3600000)" },
    { "server:\n  max_body: 12 apples\n", "2:3: server.max_body: '12 apples' is not a size (e.g. 512, 64KiB, 1MiB)" },
    { "server:\n  max_body: 2GiB\n", "2:3: server.max_body: 2GiB is out of range (1024..1073741824)" },
    { "storage:\n  auto_migrate: maybe\n", "2:3: storage.auto_migrate must be true or false, not 'maybe'" },
    { "logging:\n  level: loud\n", "2:3: logging.level must be one of debug|info|warn|error, not 'loud'" },
    { "logging: {format: xml}\n", "1:11: logging.format must be one of auto|json|text, not 'xml'" },
    { "plugins:\n  path: /opt/x\n", "2:3: plugins.path must be a list, not a single value" },
    { "plugins:\n  path: [[a]]\n", "2:10: items of plugins.path must be single values" },
    { "features: on\n", "1:1: features must be a mapping, not a single value" },
    { "server:\n  listen: 8080\n", "2:3: server.listen must be host:port or [v6addr]:port, not '8080'" },
    { "server:\n  listen: 127.0.0.1:99999\n", "2:3: server.listen must be host:port or [v6addr]:port, not '127.0.0.1:99999'" },
    { "environment: prod\nmcp:\n  auth: none\n", "3:3: mcp.auth: none is not allowed with environment: prod" },
    { "server:\n  listen: 0.0.0.0:8080\nmcp:\n  auth: none\n",
      "4:3: mcp.auth: none serves without a key, so server.listen must be a loopback address, not '0.0.0.0:8080'" },
    { "environment: prod\n",
      "1:1: environment: prod needs session.keys (sessions must be sealed with a persistent key)" },
    { "server:\n  tls:\n    cert_file: /x.pem\n", "3:5: server.tls needs both cert_file and key_file" },
    { "storage:\n  retry:\n    base_ms: 500\n    max_ms: 100\n",
      "3:5: storage.retry.base_ms (500) is larger than max_ms (100)" },
    { "storage:\n  retry:\n    attempts: 3\n", "3:5: unknown key 'storage.retry.attempts'" },
    { "server:\n  listen: 1\n  listen: 2\n", "3:3: duplicate key 'listen'" },
    { "server:\n  listen: ${env:BB_TEST_SURELY_UNSET_VAR}\n",
      "2:11: environment variable BB_TEST_SURELY_UNSET_VAR is not set" },
    { "server:\n  listen: ${file:missing.txt}\n", "2:11: cannot read " },
    { "server:\n  listen: ${vault:x}\n", "2:11: unknown reference ${vault:x}: use ${env:NAME} or ${file:PATH}" },
    { "server:\n  listen: ${env:X\n", "2:11: unterminated ${ in value" },
    { "- a\n- b\n", "1:1: the top level must be a mapping of settings" },
    { "server:\n  listen: [1, 2\n", "3:1: YAML syntax error: " },
    { "server:\n\tlisten: 1\n", "2:1: YAML syntax error: " },
    { "session:\n  ttl_s: -5\n", "2:3: session.ttl_s: -5 is out of range (1..31536000)" },
};

Test(config, broken_files_point_at_line_and_column)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char expect[1024];
        const char *got = errors_of(cases[i].yaml);
        snprintf(expect, sizeof expect, "%s/botboard.yaml:%s", dir, cases[i].expect);
        cr_expect(strncmp(got, expect, strlen(expect)) == 0, "case %zu:\n  yaml: %s\n  want: %s\n  got:  %s", i,
                  cases[i].yaml, expect, got);
    }
}

Test(config, at_least_25_broken_cases)
{
    cr_assert_geq(sizeof cases / sizeof cases[0], 25);
}

Test(config, several_errors_are_all_reported)
{
    const char *got = errors_of("server:\n  listne: 1\n  threads: 0\n");
    cr_assert(strstr(got, "botboard.yaml:2:3: unknown key 'server.listne'"), "%s", got);
    cr_assert(strstr(got, "botboard.yaml:3:3: server.threads: 0 is out of range"), "%s", got);
}

Test(config, defaults_fill_every_core_key)
{
    char err[1024];
    bb_config *c = bb_config_load(NULL, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    cr_assert(bb_config_validate_core(c, err, sizeof err), "%s", err);
    for (size_t i = 0; i < bb_core_keys_count; i++)
        cr_expect_not_null(bb_cfg_find(bb_config_root(c), bb_core_keys[i].path), "no default for %s",
                           bb_core_keys[i].path);
    cr_expect_str_eq(bb_cfg_str(bb_config_root(c), "server.listen", ""), "127.0.0.1:8080");
    cr_expect_eq(bb_cfg_i64(bb_config_root(c), "server.max_body", 0), 1048576);
    cr_expect_eq(bb_cfg_i64(bb_config_root(c), "server.connection_timeout", 0), 30000);
    bb_config_free(c);
}

Test(config, env_and_file_substitution)
{
    char err[2048], yaml[512];
    bb_config *c;
    write_cfg("secret.txt", "czNjcjN0LXZhbHVlLW9mLTMyLWJ5dGVzLWV4YWN0bHk=\n");   /* session keys are validated */
    setenv("BB_TEST_LISTEN", "127.0.0.1:9999", 1);
    snprintf(yaml, sizeof yaml,
             "server:\n  listen: ${env:BB_TEST_LISTEN}\nsession:\n  keys: [\"k1:${file:secret.txt}\"]\n");
    c = bb_config_load(write_cfg("botboard.yaml", yaml), err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    cr_assert(bb_config_validate_core(c, err, sizeof err), "%s", err);
    cr_expect_str_eq(bb_cfg_str(bb_config_root(c), "server.listen", ""), "127.0.0.1:9999");
    {
        size_t n;
        const char *const *items;
        cr_assert_eq(bb_cfg_get_list(bb_config_root(c), "session.keys", &n, &items, NULL), BB_OK);
        cr_assert_eq(n, 1);
        cr_expect_str_eq(items[0], "k1:czNjcjN0LXZhbHVlLW9mLTMyLWJ5dGVzLWV4YWN0bHk=");   /* trailing newline stripped */
    }
    bb_config_free(c);
}

Test(config, confd_files_merge_in_name_order)
{
    char err[2048], sub[512];
    bb_config *c;
    snprintf(sub, sizeof sub, "%s/conf.d", dir);
    cr_assert_eq(mkdir(sub, 0700), 0);
    write_cfg("conf.d/10-a.yaml", "server:\n  threads: 8\nlogging:\n  level: debug\n");
    write_cfg("conf.d/20-b.yaml", "server:\n  threads: 16\n");
    write_cfg("conf.d/ignored.txt", "server: {threads: 99}\n");
    c = bb_config_load(write_cfg("botboard.yaml", "server:\n  threads: 2\n  listen: 127.0.0.1:1234\n"), err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    cr_assert(bb_config_validate_core(c, err, sizeof err), "%s", err);
    cr_expect_eq(bb_cfg_i64(bb_config_root(c), "server.threads", 0), 16);
    cr_expect_str_eq(bb_cfg_str(bb_config_root(c), "server.listen", ""), "127.0.0.1:1234");
    cr_expect_str_eq(bb_cfg_str(bb_config_root(c), "logging.level", ""), "debug");
    bb_config_free(c);
}

Test(config, errors_in_confd_name_that_file)
{
    char sub[512], expect[1024];
    const char *got;
    snprintf(sub, sizeof sub, "%s/conf.d", dir);
    cr_assert_eq(mkdir(sub, 0700), 0);
    write_cfg("conf.d/50-bad.yaml", "\nserver:\n  threads: zero\n");
    got = errors_of("server:\n  threads: 2\n");
    snprintf(expect, sizeof expect, "%s/conf.d/50-bad.yaml:3:3: server.threads must be a whole number", dir);
    cr_assert(strncmp(got, expect, strlen(expect)) == 0, "got %s", got);
}

Test(config, relative_paths_resolve_against_their_file)
{
    char err[2048], want[600];
    bb_config *c = bb_config_load(write_cfg("botboard.yaml", "bootstrap:\n  key_file: dev.key\n"), err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    cr_assert(bb_config_validate_core(c, err, sizeof err), "%s", err);
    snprintf(want, sizeof want, "%s/dev.key", dir);
    cr_expect_str_eq(bb_cfg_str(bb_config_root(c), "bootstrap.key_file", ""), want);
    bb_config_free(c);
}

Test(config, check_config_output_masks_secrets)
{
    char err[2048], *buf = NULL;
    size_t len = 0;
    FILE *mem;
    bb_config *c;
    setenv("BB_TEST_KEY", "k1:c2VjcmV0LXNlc3Npb24ta2V5LW5ldmVyLXByaW50ZWQ=", 1);
    c = bb_config_load(write_cfg("botboard.yaml", "session:\n  keys: [\"${env:BB_TEST_KEY}\"]\n"), err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    cr_assert(bb_config_validate_core(c, err, sizeof err), "%s", err);
    mem = open_memstream(&buf, &len);
    bb_config_print(c, mem);
    fclose(mem);
    cr_expect_null(strstr(buf, "c2VjcmV0"), "secret printed:\n%s", buf);
    cr_expect_not_null(strstr(buf, "********"), "%s", buf);
    cr_expect_not_null(strstr(buf, "listen: \"127.0.0.1:8080\""), "%s", buf);
    free(buf);
    bb_config_free(c);
}

/* ---- the log masker -------------------------------------------------------- */

Test(logmask, masks_keys_passwords_and_registered_secrets)
{
    char out[512];
    bb_log_add_secret("hunter2-registered");
    bb_log_mask("key bbk_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefg used", out, sizeof out);
    cr_expect_str_eq(out, "key bbk_*** used");
    bb_log_mask("conninfo host=db password=pa55w0rd dbname=x", out, sizeof out);
    cr_expect_str_eq(out, "conninfo host=db password=*** dbname=x");
    bb_log_mask("redis://:t0ps3cret@127.0.0.1:6379/0", out, sizeof out);
    cr_expect_str_eq(out, "redis://:***@127.0.0.1:6379/0");
    bb_log_mask("postgres://bob:pw@db/x ok", out, sizeof out);
    cr_expect_str_eq(out, "postgres://bob:***@db/x ok");
    bb_log_mask("the value hunter2-registered leaked", out, sizeof out);
    cr_expect_str_eq(out, "the value *** leaked");
    bb_log_mask("nothing secret here: http://host:80/path", out, sizeof out);
    cr_expect_str_eq(out, "nothing secret here: http://host:80/path");
}

Test(logmask, every_log_line_is_masked)
{
    char path[300], buf[4096] = "";
    FILE *f;
    int fd;
    size_t n;
    make_dir();
    snprintf(path, sizeof path, "%s/log.txt", dir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    bb_log_set_fd(fd);
    bb_log_configure(BB_LOG_DEBUG, BB_LOG_FMT_JSON);
    bb_log_set_request("req-123", NULL);
    bb_log(BB_LOG_INFO, "test", "connecting with password=abc123xyz and bbk_ZZZZZZZZZZZZZZZZZZZZ");
    bb_log_clear_request();
    close(fd);
    bb_log_set_fd(2);
    f = fopen(path, "r");
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    cr_expect_null(strstr(buf, "abc123xyz"), "%s", buf);
    cr_expect_null(strstr(buf, "ZZZZZZZZ"), "%s", buf);
    cr_expect_not_null(strstr(buf, "\"request_id\":\"req-123\""), "%s", buf);
    cr_expect_not_null(strstr(buf, "\"level\":\"info\""), "%s", buf);
    remove_dir();
}
