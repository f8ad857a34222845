/*
 * tests/test_mcp_stdio.c — `botboard mcp-stdio`: newline-delimited
 * JSON-RPC on stdin/stdout (MCP.md 13), the same handlers as HTTP.
 */
#include "mcp_common.h"

static mcp_env env;

static void setup(void) { mcp_env_start(&env, NULL); }
static void teardown(void) { mcp_env_stop(&env); }

TestSuite(mcp_stdio, .init = setup, .fini = teardown, .timeout = 60);

/* Run mcp-stdio on input; returns its stdout split into parsed lines (a
 * JSON array of the messages); every stdout line must be one JSON object
 * or array. */
static json_t *run_stdio(const char *input, int *exit_code, char **err_out)
{
    const char *args[] = { "mcp-stdio", NULL };
    char *out = NULL, *line, *save = NULL;
    json_t *msgs = json_array();
    *exit_code = bbt_botboard_cli_input(env.srv.config_path, args, input, strlen(input), &out, err_out);
    cr_assert_not_null(out);
    for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_error_t jerr;
        json_t *m = json_loads(line, 0, &jerr);
        cr_assert_not_null(m, "stdout line is not JSON (%s): %s", jerr.text, line);
        json_array_append_new(msgs, m);
    }
    free(out);
    return msgs;
}

#define INIT(v) "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"" v "\"," \
                "\"capabilities\":{},\"clientInfo\":{\"name\":\"t\",\"version\":\"1\"}}}\n"
#define INITIALIZED "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n"

Test(mcp_stdio, lifecycle_ping_errors_and_clean_exit_on_eof)
{
    int code;
    char *err = NULL;
    json_t *m, *msgs = run_stdio(INIT("2025-06-18") INITIALIZED
                                 "{\"jsonrpc\":\"2.0\",\"id\":\"p\",\"method\":\"ping\"}\r\n"
                                 "\n"
                                 "{not json\n"
                                 "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"no/such\"}\n"
                                 "[{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"ping\"}]\n"
                                 "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"2025-06-18\"}}\n",
                                 &code, &err);
    cr_expect_eq(code, 0, "exit status at EOF: %d (%s)", code, err);
    cr_assert_eq(json_array_size(msgs), 6, "one answer per request line, none for the notification or the blank line");
    m = json_array_get(msgs, 0);
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(m, "result"), "protocolVersion")), "2025-06-18");
    m = json_array_get(msgs, 1);
    cr_expect_str_eq(json_string_value(json_object_get(m, "id")), "p", "\\r stripped, id echoed");
    cr_expect(json_equal(json_object_get(m, "result"), json_object()));
    m = json_array_get(msgs, 2);
    cr_expect_eq(mcp_error_code(m), -32700);
    cr_expect_null(json_object_get(m, "id"));
    m = json_array_get(msgs, 3);
    cr_expect_eq(mcp_error_code(m), -32601);
    cr_expect_eq(json_integer_value(json_object_get(m, "id")), 0);
    cr_expect(json_integer_value(json_object_get(m, "id")) == 0 && json_is_integer(json_object_get(m, "id")));
    m = json_array_get(msgs, 4);
    cr_expect(json_is_object(m), "a batch under 2025-06-18 is refused as a whole");
    cr_expect_eq(mcp_error_code(m), -32600);
    m = json_array_get(msgs, 5);
    cr_expect_eq(mcp_error_code(m), -32600, "second initialize");
    /* logs never on stdout: they went to stderr */
    cr_expect_not_null(err);
    json_decref(msgs);
    free(err);
}

Test(mcp_stdio, batches_under_2025_03_26)
{
    int code;
    char *err = NULL;
    json_t *m, *msgs = run_stdio(INIT("2025-03-26") INITIALIZED
                                 "[{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"ping\"},{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"ping\"}]\n",
                                 &code, &err);
    cr_expect_eq(code, 0);
    cr_assert_eq(json_array_size(msgs), 2);
    m = json_array_get(msgs, 1);
    cr_assert(json_is_array(m), "the batch is answered by an array");
    cr_expect_eq(json_array_size(m), 2);
    cr_expect_eq(json_integer_value(json_object_get(json_array_get(m, 1), "id")), 6);
    json_decref(msgs);
    free(err);
}

Test(mcp_stdio, requests_before_initialize_are_refused)
{
    int code;
    char *err = NULL;
    json_t *msgs = run_stdio("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}\n", &code, &err);
    cr_expect_eq(code, 0);
    cr_assert_eq(json_array_size(msgs), 1);
    cr_expect_eq(mcp_error_code(json_array_get(msgs, 0)), -32600);
    json_decref(msgs);
    free(err);
}
