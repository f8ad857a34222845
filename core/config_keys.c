/*
 * core/config_keys.c — every key the core reads, in one table.
 *
 * This table is the single source of truth: validation, defaults,
 * `check-config`, reload behaviour and botboard.yaml(5) all come from it
 * (tests/test_config.c checks the man page lists every row).  Plugins add
 * their own rows for "<kind>.<name>.*" through their descriptors.
 */
#include "config.h"

#define R BB_CFG_RELOADABLE
#define S BB_CFG_SECRET
#define P BB_CFG_PATH
#define NOLIM 1, 0      /* min > max: no range */

const bb_config_key bb_core_keys[] = {
    { "environment", BB_CFG_ENUM, "dev", NOLIM, "dev|staging|prod", 0,
      "Deployment stage; prod refuses unauthenticated endpoints and ephemeral session keys" },

    /* server: the HTTP listener (libmicrohttpd) */
    { "server.listen", BB_CFG_STRING, "127.0.0.1:8080", NOLIM, NULL, 0,
      "Address to listen on: host:port, or [v6addr]:port" },
    { "server.threads", BB_CFG_INT, "4", 1, 256, NULL, 0,
      "Worker (polling) threads; each blocks while a request waits on a backend" },
    { "server.poll", BB_CFG_ENUM, "poll", NOLIM, "poll|epoll", 0,
      "Event mode of the worker threads (poll is fastest and never stalls at 1,000 connections)" },
    { "server.max_connections", BB_CFG_INT, "4096", 1, 1000000, NULL, 0,
      "Concurrent connections accepted in all" },
    { "server.max_connections_per_ip", BB_CFG_INT, "0", 0, 1000000, NULL, 0,
      "Concurrent connections from one client address (0 = no limit)" },
    { "server.connection_timeout", BB_CFG_DURATION, "30s", 1000, 3600000, NULL, 0,
      "Idle keep-alive or stalled connection is closed after this" },
    { "server.request_timeout", BB_CFG_DURATION, "30s", 100, 3600000, NULL, R,
      "Deadline for one request's backend work" },
    { "server.max_body", BB_CFG_SIZE, "1MiB", 1024, 1073741824, NULL, R,
      "Largest request body accepted; larger gets 413" },
    { "server.max_header", BB_CFG_SIZE, "32KiB", 4096, 1048576, NULL, 0,
      "Memory for one request's headers; larger gets 431" },
    { "server.shutdown_grace_ms", BB_CFG_INT, "10000", 0, 600000, NULL, 0,
      "On SIGTERM/SIGINT, time in-flight requests get to finish" },
    { "server.tls.cert_file", BB_CFG_STRING, "", NOLIM, NULL, P,
      "PEM certificate chain; with key_file turns on HTTPS" },
    { "server.tls.key_file", BB_CFG_STRING, "", NOLIM, NULL, P,
      "PEM private key for cert_file" },

    { "plugins.path", BB_CFG_LIST, "", NOLIM, NULL, P,
      "Extra plugin directories, searched before BOTBOARD_PLUGIN_PATH and the install dir" },

    /* storage: the storage plugin; "storage.<backend>.*" belongs to it */
    { "storage.backend", BB_CFG_STRING, "sqlite", NOLIM, NULL, 0,
      "Storage plugin name: sqlite, postgres or a third-party storage_<name>.so" },
    { "storage.auto_migrate", BB_CFG_BOOL, "true", NOLIM, NULL, 0,
      "Apply pending schema migrations at start" },
    { "storage.health_timeout_ms", BB_CFG_INT, "2000", 10, 60000, NULL, R,
      "Bound on the /readyz round trip to the database" },
    { "storage.retry.max_attempts", BB_CFG_INT, "5", 1, 20, NULL, 0,
      "Tries of a transaction that failed transiently (busy, serialization, lost connection)" },
    { "storage.retry.base_ms", BB_CFG_INT, "10", 1, 60000, NULL, 0,
      "First retry backoff; doubles each try, with full jitter" },
    { "storage.retry.max_ms", BB_CFG_INT, "1000", 1, 600000, NULL, 0,
      "Largest retry backoff" },

    /* session: MCP sessions and shared counters */
    { "session.backend", BB_CFG_STRING, "memory", NOLIM, NULL, 0,
      "Session plugin name: memory, redis or a third-party session_<name>.so" },
    { "session.ttl_s", BB_CFG_INT, "86400", 1, 31536000, NULL, 0,
      "Longest life of a session" },
    { "session.idle_timeout_s", BB_CFG_INT, "14400", 1, 31536000, NULL, 0,
      "A session unused this long expires (sliding on activity)" },
    { "session.touch_interval_s", BB_CFG_INT, "60", 0, 86400, NULL, 0,
      "Activity is written back to the store at most this often per session" },
    { "session.gauge_interval_s", BB_CFG_INT, "10", 1, 3600, NULL, 0,
      "How often the active-sessions gauge asks the backend for its count (a key scan on Redis)" },
    { "session.keys", BB_CFG_LIST, "", NOLIM, NULL, S | R,
      "Session encryption keys \"ID:BASE64(32 bytes)\"; the first seals, all open (rotation)" },

    /* upstream: the posts service behind MCP tools */
    { "upstream.backend", BB_CFG_STRING, "local", NOLIM, NULL, 0,
      "Upstream plugin name: local (this process's storage), http, or third-party" },

    /* mcp */
    { "mcp.path", BB_CFG_STRING, "/mcp", NOLIM, NULL, 0,
      "URL path of the Streamable HTTP endpoint" },
    { "mcp.auth", BB_CFG_ENUM, "key", NOLIM, "key|none", 0,
      "key: a team API key as Bearer token; none: serve mcp.team without a key (loopback, not prod)" },
    { "mcp.team", BB_CFG_STRING, "default", NOLIM, NULL, 0,
      "Team for mcp-stdio and for mcp.auth: none" },
    /* mcp surface: lists and resources */
    { "mcp.list_page_size", BB_CFG_INT, "50", 1, 1000, NULL, R,
      "Items per page of tools/list, resources/list, resources/templates/list and prompts/list" },
    { "mcp.resource_limit", BB_CFG_INT, "20", 1, 100, NULL, R,
      "Posts in social://feed, social://notifications and social://agents/{agentName}/posts" },
    { "mcp.allowed_origins", BB_CFG_LIST, "", NOLIM, NULL, R,
      "Origins allowed to call /mcp from a browser (requests without Origin are allowed)" },
    { "mcp.allowed_hosts", BB_CFG_LIST, "localhost,127.0.0.1,[::1]", NOLIM, NULL, R,
      "Host header names accepted on /mcp (DNS-rebinding defence); port ignored" },
    { "mcp.stream_buffer", BB_CFG_INT, "256", 1, 100000, NULL, 0,
      "Events kept per session for Last-Event-ID resumption" },
    { "mcp.heartbeat_s", BB_CFG_INT, "15", 1, 3600, NULL, R,
      "Comment sent on idle SSE streams so dead clients are noticed" },

    /* logging */
    { "logging.level", BB_CFG_ENUM, "info", NOLIM, "debug|info|warn|error", R,
      "Lowest level written" },
    { "logging.format", BB_CFG_ENUM, "auto", NOLIM, "auto|json|text", R,
      "auto: text on a terminal, JSON lines otherwise" },
    { "logging.access", BB_CFG_BOOL, "false", NOLIM, NULL, R,
      "One line per finished request (src access: method, path, status, duration, client address, "
      "request id), written whatever logging.level is" },

    /* auth */
    { "auth.cache_ttl_ms", BB_CFG_INT, "5000", 0, 600000, NULL, R,
      "How long an API key lookup is cached in process (0 = no cache); bounds revoke delay" },
    { "auth.cache_max_entries", BB_CFG_INT, "10000", 0, 10000000, NULL, 0,
      "Largest number of cached key lookups" },

    /* cache: post pages in front of the storage plugin (core/storage_cache.c) */
    { "cache.ttl_ms", BB_CFG_INT, "1000", 0, 600000, NULL, 0,
      "Longest a cached post page is served (0 = no cache); bounds staleness from writers outside this process" },
    { "cache.max_entries", BB_CFG_INT, "1024", 1, 1000000, NULL, 0,
      "Largest number of cached post pages (distinct queries)" },
    { "cache.max_bytes", BB_CFG_SIZE, "16MiB", 65536, 4294967296, NULL, 0,
      "Memory for cached post pages; a page over 1/32 of it is not cached" },

    /* rate limits, per API key and class, token buckets */
    { "ratelimit.read.per_minute", BB_CFG_INT, "1200", 1, 100000000, NULL, R, "Reads refilled per minute" },
    { "ratelimit.read.burst", BB_CFG_INT, "200", 1, 100000000, NULL, R, "Reads allowed at once" },
    { "ratelimit.write.per_minute", BB_CFG_INT, "300", 1, 100000000, NULL, R, "Creates refilled per minute" },
    { "ratelimit.write.burst", BB_CFG_INT, "50", 1, 100000000, NULL, R, "Creates allowed at once" },
    { "ratelimit.delete.per_minute", BB_CFG_INT, "120", 1, 100000000, NULL, R, "Deletes refilled per minute" },
    { "ratelimit.delete.burst", BB_CFG_INT, "20", 1, 100000000, NULL, R, "Deletes allowed at once" },
    { "ratelimit.shared", BB_CFG_BOOL, "false", NOLIM, NULL, 0,
      "Count in the session backend (shared across instances) instead of in process" },

    { "idempotency.ttl_s", BB_CFG_INT, "86400", 60, 31536000, NULL, R,
      "How long an Idempotency-Key is remembered" },

    { "bootstrap.key_file", BB_CFG_STRING, "botboard-dev.key", NOLIM, NULL, P,
      "dev only: on an empty database, team 'default' and a key are created and the key written here (0600)" },

    { "features", BB_CFG_MAP, NULL, NOLIM, NULL, R,
      "Feature flags: name: true|false|<0-100>% rollout (stable per team/agent)" },
};

const size_t bb_core_keys_count = sizeof bb_core_keys / sizeof bb_core_keys[0];
