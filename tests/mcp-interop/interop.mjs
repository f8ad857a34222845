#!/usr/bin/env node
// BotBoard MCP interop test: drives a BotBoard server with the official MCP TypeScript SDK client
// (the client Claude Desktop / Claude Code build on), over Streamable HTTP or stdio, at one
// protocol version, and checks the contract of DESIGN.md §6 and docs/MCP.md.
//
//   node interop.mjs --url http://127.0.0.1:PORT/mcp --key KEY --rest http://127.0.0.1:PORT --team TEAM
//   node interop.mjs --stdio "/path/botboard mcp-stdio -c cfg.yaml" --key KEY --rest ... --team ...
//   [--protocol 2025-11-25|2025-06-18|2025-03-26] [--timeout SECONDS]
//
// Prints `ok N - name` / `not ok N - name: reason` (skips: `ok N - name # SKIP reason`), then
// exactly `P passed, F failed` (skips count in neither) and exits 1 if anything failed.
// Every wait is bounded: per-request timeouts plus an overall watchdog.

import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';

const VERSIONS = ['2025-11-25', '2025-06-18', '2025-03-26'];
const REQUEST_TIMEOUT_MS = 10_000;   // one JSON-RPC round trip
const HTTP_TIMEOUT_MS = 5_000;       // one raw REST / HTTP call
const NOTIFY_WITHIN_MS = 2_000;      // resources/updated must arrive within this
const CLOSE_TIMEOUT_MS = 3_000;      // shutting clients down at the end

const TOOLS = ['login', 'logout', 'read_posts', 'create_post', 'get_post', 'delete_post'];
const PROMPTS = ['summarize-thread', 'summarize-agent-activity', 'draft-reply', 'generate-hashtags',
  'create-engagement-post', 'analyze-sentiment', 'find-related-discussions',
  'generate-engagement-report'];
const TEMPLATES = ['social://posts/{postId}', 'social://threads/{threadId}',
  'social://agents/{agentName}/profile', 'social://agents/{agentName}/posts'];
const FEED = 'social://feed';
const NOTIFICATIONS = 'social://notifications';
const ERR_INVALID_PARAMS = -32602;
const ERR_RESOURCE_NOT_FOUND = -32002;

// ---------------------------------------------------------------------------------------------
// Command line

function usage(msg) {
  process.stderr.write(`interop.mjs: ${msg}\nusage: node interop.mjs (--url URL | --stdio "CMD ARGS") ` +
    '--key KEY --rest BASE --team TEAM [--protocol ' + VERSIONS.join('|') + '] [--timeout SECONDS]\n');
  process.exit(2);
}

function parseCommandLine() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        url: { type: 'string' }, stdio: { type: 'string' }, key: { type: 'string' },
        rest: { type: 'string' }, team: { type: 'string' },
        protocol: { type: 'string', default: VERSIONS[0] }, timeout: { type: 'string', default: '60' },
      },
    }));
  } catch (e) {
    usage(e.message);
  }
  if (!values.url === !values.stdio) usage('give exactly one of --url and --stdio');
  for (const k of ['key', 'rest', 'team']) if (!values[k]) usage(`--${k} is required`);
  if (!VERSIONS.includes(values.protocol)) usage(`--protocol must be one of ${VERSIONS.join(', ')}`);
  const watchdogS = Number(values.timeout);
  if (!(watchdogS > 0 && watchdogS <= 600)) usage('--timeout must be 1..600 seconds');
  return {
    url: values.url, stdio: values.stdio ? splitCommand(values.stdio) : null, key: values.key,
    rest: values.rest.replace(/\/+$/, ''), team: values.team, version: values.protocol,
    watchdogMs: watchdogS * 1000,
  };
}

// Splits a command line on blanks; single or double quotes group words (no escapes inside).
function splitCommand(line) {
  const words = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  let m, cur = null, lastEnd = -1;
  while ((m = re.exec(line)) !== null) {
    const piece = m[1] ?? m[2] ?? m[3];
    if (cur !== null && m.index === lastEnd) cur += piece; else { if (cur !== null) words.push(cur); cur = piece; }
    lastEnd = re.lastIndex;
  }
  if (cur !== null) words.push(cur);
  if (words.length === 0) usage('--stdio needs a command');
  return words;
}

// ---------------------------------------------------------------------------------------------
// Small assertion helpers: a failed check throws, its message becomes the `not ok` reason.

class CheckFailed extends Error {}
class Skip { constructor(reason) { this.reason = reason; } }

function expect(cond, msg) { if (!cond) throw new CheckFailed(msg); }
function need(value, what) {
  if (value === undefined || value === null || value === false) throw new CheckFailed(`prerequisite missing: ${what}`);
  return value;
}
const show = (v) => { const s = JSON.stringify(v); return s && s.length > 300 ? s.slice(0, 300) + '…' : s; };
const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const sameSet = (a, b) => a.length === b.length && [...a].sort().join('\n') === [...b].sort().join('\n');

// Expects `fn` to be rejected with a JSON-RPC error of `code` (the SDK throws McpError).
async function expectRpcError(fn, code, what) {
  let result;
  try {
    result = await fn();
  } catch (e) {
    if (e instanceof CheckFailed) throw e;
    expect(e && e.code === code, `${what}: expected JSON-RPC error ${code}, got ${e && e.code !== undefined ? `code ${e.code}` : 'exception'}: ${e && e.message}`);
    return e;
  }
  throw new CheckFailed(`${what}: expected JSON-RPC error ${code}, got result ${show(result)}`);
}

// Bounded polling: no sleep stands in for synchronisation.
async function waitFor(pred, ms, what) {
  const end = Date.now() + ms;
  for (;;) {
    const v = pred();
    if (v) return v;
    if (Date.now() >= end) throw new CheckFailed(`${what} not seen within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([promise, new Promise((_, rej) => {
    timer = setTimeout(() => rej(new CheckFailed(`${what} timed out after ${ms} ms`)), ms);
  })]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------------------------
// Transport instrumentation.
//
// The SDK Client always asks for LATEST_PROTOCOL_VERSION in `initialize` and has no option to ask
// for another one. We wrap the transport's send() and rewrite the outgoing initialize request's
// params.protocolVersion; the Client then accepts whatever supported version the server answers
// and (over HTTP) sends it back in MCP-Protocol-Version. We also tap incoming messages so checks
// can look at the raw JSON-RPC results (exactly `{}`, absent fields) before the SDK's Zod parsing.

function instrument(transport, version) {
  const tap = { methodById: new Map(), rawResult: new Map(), initialize: null };
  const send = transport.send.bind(transport);
  transport.send = (msg, opts) => {
    if (msg && msg.method !== undefined && msg.id !== undefined) {
      if (msg.method === 'initialize') msg = { ...msg, params: { ...msg.params, protocolVersion: version } };
      tap.methodById.set(msg.id, msg.method);
    }
    return send(msg, opts);
  };
  let handler;
  const tapped = (msg, extra) => {
    if (msg && msg.id !== undefined && msg.method === undefined && tap.methodById.has(msg.id)) {
      const method = tap.methodById.get(msg.id);
      tap.methodById.delete(msg.id);
      tap.rawResult.set(method, msg);
      if (method === 'initialize') tap.initialize = msg;
    }
    handler?.(msg, extra);
  };
  Object.defineProperty(transport, 'onmessage', {
    configurable: true, enumerable: true,
    get: () => (handler ? tapped : undefined),
    set: (h) => { handler = h; },
  });
  return tap;
}

// Opens a client at opts.version; returns {client, transport, tap, httpLog, updates}.
async function openClient(opts) {
  const httpLog = [];
  let transport;
  if (opts.url) {
    transport = new StreamableHTTPClientTransport(new URL(opts.url), {
      requestInit: { headers: { Authorization: `Bearer ${opts.key}` } },
      // Records each HTTP exchange so checks can assert status codes the SDK tolerates (e.g. 405 on DELETE).
      fetch: async (url, init) => {
        const res = await fetch(url, init);
        httpLog.push({ method: init?.method ?? 'GET', status: res.status });
        return res;
      },
      reconnectionOptions: { maxReconnectionDelay: 1000, initialReconnectionDelay: 200,
        reconnectionDelayGrowFactor: 1.5, maxRetries: 2 },
    });
  } else {
    transport = new StdioClientTransport({ command: opts.stdio[0], args: opts.stdio.slice(1),
      env: { ...process.env }, stderr: 'inherit' });
  }
  const tap = instrument(transport, opts.version);
  const client = new Client({ name: 'botboard-interop', version: '1.0.0' }, { capabilities: {} });
  const updates = [];
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
    updates.push({ uri: n.params.uri, at: Date.now() });
  });
  const session = { client, transport, tap, httpLog, updates };
  try {
    await withTimeout(client.connect(transport, { timeout: REQUEST_TIMEOUT_MS }), REQUEST_TIMEOUT_MS, 'initialize');
  } catch (e) {
    await closeQuietly(session);
    throw e;
  }
  return session;
}

async function closeQuietly(session) {
  if (!session) return;
  try { await withTimeout(session.client.close(), CLOSE_TIMEOUT_MS, 'close'); } catch { /* best effort */ }
}

// ---------------------------------------------------------------------------------------------
// REST side (creating posts as another author, cross-checking what MCP did).

async function rest(opts, method, path, body) {
  const res = await fetch(`${opts.rest}/v1/teams/${encodeURIComponent(opts.team)}${path}`, {
    method,
    headers: { 'x-api-key': opts.key, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
  });
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* leave null */ }
  return { status: res.status, json, text };
}

async function restCreate(opts, body) {
  const r = await rest(opts, 'POST', '/posts', body);
  expect(r.status === 201, `REST POST /posts: expected 201, got ${r.status} ${r.text.slice(0, 200)}`);
  expect(isObj(r.json) && typeof r.json.postId === 'string', `REST POST /posts: no postId in ${show(r.json)}`);
  return r.json;
}

// Finds a post by exact content among an author's posts, through REST.
async function restFindByContent(opts, author, content) {
  const r = await rest(opts, 'GET', `/posts?agent=${encodeURIComponent(author)}&limit=100`);
  expect(r.status === 200, `REST GET /posts?agent=${author}: ${r.status}`);
  return (r.json?.posts ?? []).find((p) => p.content === content) ?? null;
}

// ---------------------------------------------------------------------------------------------
// Tool-result helpers. From 2025-06-18 tool results carry structuredContent; 2025-03-26 has no
// such field, so there the checks read the text block (which must name ids) and REST instead.

const textOf = (result) => (Array.isArray(result?.content) ? result.content : [])
  .filter((c) => c && c.type === 'text' && typeof c.text === 'string').map((c) => c.text).join('\n');

function checkPostShape(p, where) {
  expect(isObj(p), `${where}: post is not an object: ${show(p)}`);
  expect(typeof p.postId === 'string' && p.postId.length > 0, `${where}: postId missing in ${show(p)}`);
  expect(typeof p.author === 'string' && p.author.length > 0, `${where}: author missing in ${show(p)}`);
  expect(typeof p.content === 'string', `${where}: content missing in ${show(p)}`);
  expect(Array.isArray(p.tags) && p.tags.every((t) => typeof t === 'string'), `${where}: tags not a string array in ${show(p)}`);
  expect('parentPostId' in p && (p.parentPostId === null || typeof p.parentPostId === 'string'),
    `${where}: parentPostId must be null or a string in ${show(p)}`);
  expect(isObj(p.createdAt) && Number.isFinite(p.createdAt._seconds),
    `${where}: createdAt must be {_seconds: number} in ${show(p)}`);
}

class Scenario {
  constructor(opts) {
    this.opts = opts;
    // title, outputSchema and structuredContent arrived in 2025-06-18 (ISO dates compare as strings).
    this.since0618 = opts.version >= '2025-06-18';
    const rand = randomBytes(4).toString('hex');
    // Unique names make exact counts possible on a shared database.
    this.agent = `ia${rand}`;
    this.other = `ib${rand}`;
    this.tag = `t${rand}`;
    this.tag2 = `u${rand}`;
    this.token = `tok${rand}`;
    this.content = {
      root: `Interop root post ${this.token}: hello from the SDK client`,
      reply: `Interop reply ${this.token}: answering my own root`,
      other: `Interop other ${this.token}: @${this.agent} nice post`,
      doomed: `Interop doomed ${this.token}: to be deleted`,
      restLive: `Interop live ${this.token}: REST post for the feed subscription`,
      mcpLive: `Interop live-mcp ${this.token}: MCP post for the feed subscription`,
    };
    this.ids = {};
    this.s = null;           // the open session
    this.prompts = null;     // prompts/list result
  }

  get session() { return need(this.s, 'MCP session (initialize failed)'); }

  get client() { return this.session.client; }

  call(name, args) {
    return this.client.callTool({ name, arguments: args }, undefined, { timeout: REQUEST_TIMEOUT_MS });
  }

  raw(method) { return this.session.tap.rawResult.get(method); }

  expectRawEmpty(method) {
    const m = this.raw(method);
    expect(m && isObj(m.result) && Object.keys(m.result).length === 0,
      `${method}: result must be exactly {}, got ${show(m?.result ?? m?.error)}`);
  }

  // 2025-03-26 had no `title` on tools, resources, templates or prompts.
  expectNoTitleBefore0618(items, what) {
    if (this.since0618) return;
    for (const x of items) expect(!('title' in x), `${what} ${x.name ?? x.uri}: title present under 2025-03-26`);
  }

  expectToolOk(result, what) {
    expect(result.isError !== true, `${what}: isError result: ${textOf(result).slice(0, 200)}`);
    expect(textOf(result).trim().length > 0, `${what}: no non-empty text content block`);
    if (this.since0618) {
      expect(isObj(result.structuredContent), `${what}: structuredContent missing`);
    } else {
      const raw = this.raw('tools/call');
      expect(raw && raw.result && !('structuredContent' in raw.result),
        `${what}: structuredContent present under 2025-03-26`);
    }
  }

  expectToolError(result, what, mention) {
    expect(result.isError === true, `${what}: expected isError true, got ${show(result)}`);
    const text = textOf(result);
    expect(text.trim().length > 0, `${what}: error result without a message`);
    if (mention) expect(mention.test(text), `${what}: message does not match ${mention}: ${text.slice(0, 200)}`);
  }

  // The post a create_post / get_post returns: structuredContent is the post or {post}.
  postOf(result, what) {
    if (!this.since0618) return null;
    const sc = result.structuredContent;
    const p = isObj(sc?.post) ? sc.post : sc;
    checkPostShape(p, what);
    return p;
  }

  // Creates a post through the create_post tool and returns its id (from structuredContent, or
  // from REST under 2025-03-26), checking author, content, tags, parent and REST visibility.
  async createViaTool(content, tags, parent) {
    const args = { content, tags };
    if (parent) args.parent_post_id = parent;
    const r = await this.call('create_post', args);
    this.expectToolOk(r, 'create_post');
    const viaRest = await restFindByContent(this.opts, this.agent, content);
    expect(viaRest, `create_post: post not visible through REST under author ${this.agent}`);
    const p = this.postOf(r, 'create_post') ?? viaRest;
    expect(p.postId === viaRest.postId, `create_post: id ${p.postId} differs from REST's ${viaRest.postId}`);
    expect(p.author === this.agent, `create_post: author ${p.author}, expected ${this.agent}`);
    expect(p.content === content, `create_post: content ${show(p.content)}`);
    expect(sameSet(p.tags, tags), `create_post: tags ${show(p.tags)}, expected ${show(tags)}`);
    expect((p.parentPostId ?? null) === (parent ?? null), `create_post: parentPostId ${p.parentPostId}, expected ${parent ?? null}`);
    expect(textOf(r).includes(p.postId), `create_post: text does not give the new post id ${p.postId}`);
    return p.postId;
  }

  // read_posts with `args`; checks the page against the ids that must / must not be there.
  async readPosts(args, { include = [], exclude = [], total, each }) {
    const r = await this.call('read_posts', args);
    this.expectToolOk(r, `read_posts ${show(args)}`);
    const text = textOf(r);
    if (!this.since0618) {
      for (const id of include) expect(text.includes(id), `read_posts ${show(args)}: text lacks post ${id}`);
      for (const id of exclude) expect(!text.includes(id), `read_posts ${show(args)}: text shows excluded post ${id}`);
      return null;
    }
    const sc = r.structuredContent;
    expect(Array.isArray(sc.posts), `read_posts: structuredContent.posts not an array: ${show(sc)}`);
    expect(Number.isInteger(sc.totalCount) && sc.totalCount >= sc.posts.length,
      `read_posts: bad totalCount ${show(sc.totalCount)}`);
    sc.posts.forEach((p, i) => checkPostShape(p, `read_posts posts[${i}]`));
    const ids = sc.posts.map((p) => p.postId);
    for (const id of include) expect(ids.includes(id), `read_posts ${show(args)}: post ${id} missing from ${show(ids)}`);
    for (const id of exclude) expect(!ids.includes(id), `read_posts ${show(args)}: excluded post ${id} present`);
    if (total !== undefined) expect(sc.totalCount === total, `read_posts ${show(args)}: totalCount ${sc.totalCount}, expected ${total}`);
    if (each) sc.posts.forEach((p) => expect(each(p), `read_posts ${show(args)}: post does not match the filter: ${show(p)}`));
    for (const id of ids) expect(text.includes(id), `read_posts: text block does not list post ${id}`);
    return sc;
  }

  async readResource(uri, mustContain = []) {
    const r = await this.client.readResource({ uri }, { timeout: REQUEST_TIMEOUT_MS });
    expect(Array.isArray(r.contents) && r.contents.length > 0, `${uri}: no contents`);
    for (const c of r.contents) {
      expect(typeof c.uri === 'string' && c.uri.length > 0, `${uri}: content item without uri`);
      expect(typeof c.text === 'string' && c.text.trim().length > 0, `${uri}: content item without text`);
    }
    const all = r.contents.map((c) => c.text).join('\n');
    for (const s of mustContain) expect(all.includes(s), `${uri}: text does not contain ${show(s)}`);
    return all;
  }

  // Plausible prompt arguments by argument name: the first matching row fills it. Identity rows
  // (ids, handle, tag, topic) also fill optional arguments; the rest only required ones.
  promptArgs(prompt) {
    const rows = [
      { re: /thread/i, v: () => this.ids.root, identity: true },
      { re: /content|text|draft|message|body/i, v: () => this.content.root },  // before /post/: post_content
      { re: /post/i, v: () => this.ids.root, identity: true },
      { re: /agent|author|handle|user/i, v: () => this.agent, identity: true },
      { re: /tag/i, v: () => this.tag, identity: true },
      { re: /topic|query|keyword|subject|theme|search/i, v: () => this.token, identity: true },
      { re: /limit|count|days|hours|period|window|max|number/i, v: () => '10' },
      { re: /tone|style|mood|voice/i, v: () => 'friendly' },
    ];
    const args = {};
    for (const a of prompt.arguments ?? []) {
      const row = rows.find((x) => x.re.test(a.name));
      if (a.required) {
        expect(row, `${prompt.name}: no idea how to fill required argument ${a.name} (extend promptArgs)`);
        args[a.name] = String(need(row.v(), `value for ${a.name}`));
      } else if (row?.identity) {
        args[a.name] = String(need(row.v(), `value for ${a.name}`));
      }
    }
    return args;
  }

  async waitForUpdate(uri, since, what) {
    await waitFor(() => this.session.updates.find((u) => u.uri === uri && u.at >= since), NOTIFY_WITHIN_MS, what);
  }
}

// ---------------------------------------------------------------------------------------------
// The checks, in order. `run(sc)` throws CheckFailed (or anything) to fail, returns a Skip to skip.

const http = (sc) => Boolean(sc.opts.url);
const skipUnlessHttp = (sc) => (http(sc) ? null : new Skip('HTTP transport only'));

function promptCheck(name) {
  return {
    name: `prompts/get ${name} mentions real posts`,
    run: async (sc) => {
      const p = need(sc.prompts, 'prompts/list result').find((x) => x.name === name);
      expect(p, `${name} not listed`);
      const args = sc.promptArgs(p);
      const r = await sc.client.getPrompt({ name, arguments: args }, { timeout: REQUEST_TIMEOUT_MS });
      expect(Array.isArray(r.messages) && r.messages.length > 0, `${name}: no messages`);
      for (const m of r.messages) {
        expect(m.role === 'user' || m.role === 'assistant', `${name}: bad role ${show(m.role)}`);
        expect(isObj(m.content), `${name}: message without content`);
      }
      const all = JSON.stringify(r.messages);
      const real = [sc.content.root, sc.content.reply, sc.content.other];
      expect(real.some((c) => all.includes(c)),
        `${name} ${show(args)}: messages quote none of the posts created by this run`);
    },
  };
}

const CHECKS = [
  {
    name: 'initialize: version, serverInfo, capabilities, instructions',
    run: async (sc) => {
      sc.s = await openClient(sc.opts);
      const init = sc.s.tap.initialize;
      expect(init && isObj(init.result), `no initialize result captured: ${show(init)}`);
      const res = init.result;
      expect(res.protocolVersion === sc.opts.version, `asked for ${sc.opts.version}, server answered ${res.protocolVersion}`);
      expect(isObj(res.serverInfo) && typeof res.serverInfo.name === 'string' && res.serverInfo.name &&
        typeof res.serverInfo.version === 'string', `serverInfo incomplete: ${show(res.serverInfo)}`);
      const caps = res.capabilities;
      expect(isObj(caps), 'capabilities missing');
      for (const k of ['tools', 'resources', 'prompts', 'logging', 'completions']) {
        expect(isObj(caps[k]), `capability ${k} missing in ${show(caps)}`);
      }
      expect(caps.resources.subscribe === true, 'resources.subscribe is not true');
      expect(typeof res.instructions === 'string' && res.instructions.trim().length > 0, 'instructions empty');
      if (http(sc)) {
        const sid = sc.s.transport.sessionId;
        expect(typeof sid === 'string' && /^[\x21-\x7e]+$/.test(sid), `Mcp-Session-Id missing or malformed: ${show(sid)}`);
        expect(sc.s.transport.protocolVersion === sc.opts.version, 'client did not adopt the negotiated version');
      }
    },
  },
  {
    name: 'tools/list: exactly the six tools with schemas for this version',
    run: async (sc) => {
      const r = await sc.client.listTools(undefined, { timeout: REQUEST_TIMEOUT_MS });  // compiles outputSchemas
      const tools = sc.raw('tools/list').result.tools;
      expect(sameSet(tools.map((t) => t.name), TOOLS), `tools are ${show(tools.map((t) => t.name))}`);
      expect(r.tools.length === TOOLS.length, 'SDK parsed a different tool count');
      for (const t of tools) {
        expect(typeof t.description === 'string' && t.description.trim(), `${t.name}: empty description`);
        expect(isObj(t.inputSchema) && t.inputSchema.type === 'object', `${t.name}: inputSchema not an object schema`);
        if (sc.since0618) {
          expect(isObj(t.outputSchema) && t.outputSchema.type === 'object', `${t.name}: outputSchema missing`);
        } else {
          expect(!('outputSchema' in t), `${t.name}: outputSchema present under 2025-03-26`);
        }
      }
      sc.expectNoTitleBefore0618(tools, 'tool');
      const props = (n) => Object.keys(tools.find((t) => t.name === n).inputSchema.properties ?? {});
      const argNames = { login: ['agent_name'], read_posts: ['limit', 'offset', 'agent_filter', 'tag_filter', 'thread_id'],
        create_post: ['content', 'tags', 'parent_post_id'], get_post: ['post_id'], delete_post: ['post_id'] };
      for (const [n, want] of Object.entries(argNames)) {
        for (const a of want) expect(props(n).includes(a), `${n}: inputSchema lacks property ${a}`);
      }
    },
  },
  {
    name: 'tool annotations: read-only reads, destructive delete',
    run: async (sc) => {
      const tools = need(sc.raw('tools/list'), 'tools/list result').result.tools;
      const ann = (n) => tools.find((t) => t.name === n)?.annotations ?? {};
      for (const n of ['read_posts', 'get_post']) expect(ann(n).readOnlyHint === true, `${n}: readOnlyHint not true`);
      expect(ann('delete_post').destructiveHint === true, 'delete_post: destructiveHint not true');
      expect(ann('create_post').readOnlyHint !== true, 'create_post: marked read-only');
    },
  },
  {
    name: 'create_post before login is an isError result asking to log in',
    run: async (sc) => {
      const r = await sc.call('create_post', { content: `Interop too early ${sc.token}`, tags: [sc.tag] });
      sc.expectToolError(r, 'create_post before login', /login/i);
    },
  },
  {
    name: 'login binds the handle',
    run: async (sc) => {
      const r = await sc.call('login', { agent_name: sc.agent });
      sc.expectToolOk(r, 'login');
      expect(textOf(r).includes(sc.agent), `login text does not name ${sc.agent}`);
      sc.loggedIn = true;
    },
  },
  {
    name: 'create_post with tags',
    run: async (sc) => {
      need(sc.loggedIn, 'login');
      sc.ids.root = await sc.createViaTool(sc.content.root, [sc.tag]);
    },
  },
  {
    name: 'create_post reply with parent_post_id',
    run: async (sc) => {
      const root = need(sc.ids.root, 'root post');
      sc.ids.reply = await sc.createViaTool(sc.content.reply, [sc.tag2], root);
    },
  },
  {
    name: 'REST: another author replies to the root post',
    run: async (sc) => {
      const root = need(sc.ids.root, 'root post');
      const p = await restCreate(sc.opts, { author: sc.other, content: sc.content.other, tags: [sc.tag], parentPostId: root });
      expect(p.author === sc.other && p.parentPostId === root, `REST post wrong: ${show(p)}`);
      sc.ids.other = p.postId;
    },
  },
  {
    name: 'read_posts agent_filter',
    run: async (sc) => {
      const { root, reply, other } = sc.ids;
      need(root && reply && other, 'the three posts');
      await sc.readPosts({ agent_filter: sc.agent, limit: 100 },
        { include: [root, reply], exclude: [other], total: 2, each: (p) => p.author === sc.agent });
    },
  },
  {
    name: 'read_posts tag_filter',
    run: async (sc) => {
      const { root, reply, other } = sc.ids;
      need(root && reply && other, 'the three posts');
      await sc.readPosts({ tag_filter: sc.tag, limit: 100 },
        { include: [root, other], exclude: [reply], total: 2, each: (p) => p.tags.includes(sc.tag) });
    },
  },
  {
    name: 'read_posts thread_id',
    run: async (sc) => {
      const { root, reply, other } = sc.ids;
      need(root && reply && other, 'the three posts');
      await sc.readPosts({ thread_id: root, limit: 100 },
        { include: [root, reply, other], total: 3, each: (p) => p.postId === root || p.parentPostId === root });
    },
  },
  {
    name: 'read_posts limit/offset pages without overlap',
    run: async (sc) => {
      const { root, reply, other } = sc.ids;
      need(root && reply && other, 'the three posts');
      const all = [root, reply, other];
      const pages = [];
      for (const [offset, size] of [[0, 2], [2, 1]]) {
        const args = { thread_id: root, limit: 2, offset };
        if (sc.since0618) {
          const page = await sc.readPosts(args, { total: 3 });
          expect(page.posts.length === size, `offset ${offset}: ${page.posts.length} posts, expected ${size}`);
          pages.push(page.posts.map((p) => p.postId));
        } else {
          const r = await sc.call('read_posts', args);
          sc.expectToolOk(r, `read_posts ${show(args)}`);
          const seen = all.filter((id) => textOf(r).includes(id));
          expect(seen.length === size, `offset ${offset}: text lists ${seen.length} of the thread's posts, expected ${size}`);
          pages.push(seen);
        }
      }
      expect(sameSet(pages.flat(), all), `pages ${show(pages)} do not partition the thread ${show(all)}`);
      if (sc.since0618) {
        const r = await sc.readPosts({ limit: 2 }, {});
        expect(r.posts.length === 2 && r.totalCount >= 3, `unfiltered limit 2: ${r.posts.length} posts, totalCount ${r.totalCount}`);
      }
    },
  },
  {
    name: 'get_post returns the post',
    run: async (sc) => {
      const root = need(sc.ids.root, 'root post');
      const r = await sc.call('get_post', { post_id: root });
      sc.expectToolOk(r, 'get_post');
      const p = sc.postOf(r, 'get_post');
      if (p) {
        expect(p.postId === root && p.content === sc.content.root && p.author === sc.agent, `get_post returned ${show(p)}`);
      }
      expect(textOf(r).includes(sc.content.root), 'get_post text does not show the content');
    },
  },
  {
    name: 'get_post of an unknown id is an isError result',
    run: async (sc) => {
      sc.expectToolError(await sc.call('get_post', { post_id: `nope${sc.token}` }), 'get_post unknown');
    },
  },
  {
    name: 'delete_post own post succeeds, then get_post is an isError result',
    run: async (sc) => {
      need(sc.loggedIn, 'login');
      const id = await sc.createViaTool(sc.content.doomed, []);
      const d = await sc.call('delete_post', { post_id: id });
      expect(d.isError !== true, `delete_post own: isError: ${textOf(d).slice(0, 200)}`);
      expect(textOf(d).trim().length > 0, 'delete_post own: no text');
      sc.expectToolError(await sc.call('get_post', { post_id: id }), 'get_post after delete');
      const r = await rest(sc.opts, 'GET', `/posts/${encodeURIComponent(id)}`);
      expect(r.status === 404, `REST GET of the deleted post: ${r.status}, expected 404`);
    },
  },
  {
    name: "delete_post of someone else's post is an isError result and keeps it",
    run: async (sc) => {
      const other = need(sc.ids.other, "other author's post");
      sc.expectToolError(await sc.call('delete_post', { post_id: other }), 'delete_post foreign');
      const r = await rest(sc.opts, 'GET', `/posts/${encodeURIComponent(other)}`);
      expect(r.status === 200, `REST GET of the foreign post after the refused delete: ${r.status}`);
    },
  },
  {
    name: 'resources/list has the feed and notifications',
    run: async (sc) => {
      const r = await sc.client.listResources(undefined, { timeout: REQUEST_TIMEOUT_MS });
      const uris = r.resources.map((x) => x.uri);
      for (const u of [FEED, NOTIFICATIONS]) expect(uris.includes(u), `${u} missing from ${show(uris)}`);
      for (const x of r.resources) expect(typeof x.name === 'string' && x.name, `${x.uri}: no name`);
      sc.expectNoTitleBefore0618(sc.raw('resources/list').result.resources, 'resource');
      expect(!('nextCursor' in sc.raw('resources/list').result) || typeof sc.raw('resources/list').result.nextCursor === 'string',
        'nextCursor must be omitted or a string');
    },
  },
  {
    name: 'resources/templates/list has the four templates',
    run: async (sc) => {
      const r = await sc.client.listResourceTemplates(undefined, { timeout: REQUEST_TIMEOUT_MS });
      const got = r.resourceTemplates.map((x) => x.uriTemplate);
      for (const t of TEMPLATES) expect(got.includes(t), `${t} missing from ${show(got)}`);
      for (const x of r.resourceTemplates) expect(typeof x.name === 'string' && x.name, `${x.uriTemplate}: no name`);
      sc.expectNoTitleBefore0618(sc.raw('resources/templates/list').result.resourceTemplates, 'template');
    },
  },
  {
    name: 'resources/read social://feed shows recent posts',
    run: async (sc) => {
      need(sc.ids.other, "other author's post");
      await sc.readResource(FEED, [sc.content.other]);
    },
  },
  {
    name: 'resources/read social://notifications shows the reply from another agent',
    run: async (sc) => {
      need(sc.ids.other, "other author's reply");
      await sc.readResource(NOTIFICATIONS, [sc.content.other]);
    },
  },
  {
    name: 'resources/read social://posts/{postId}',
    run: async (sc) => { await sc.readResource(`social://posts/${need(sc.ids.root, 'root post')}`, [sc.content.root]); },
  },
  {
    name: 'resources/read social://threads/{threadId}',
    run: async (sc) => {
      need(sc.ids.reply && sc.ids.other, 'replies');
      await sc.readResource(`social://threads/${need(sc.ids.root, 'root post')}`, [sc.content.root, sc.content.reply, sc.content.other]);
    },
  },
  {
    name: 'resources/read social://agents/{agentName}/profile',
    run: async (sc) => { await sc.readResource(`social://agents/${sc.agent}/profile`, [sc.agent]); },
  },
  {
    name: 'resources/read social://agents/{agentName}/posts',
    run: async (sc) => {
      need(sc.ids.root && sc.ids.reply, 'own posts');
      const text = await sc.readResource(`social://agents/${sc.agent}/posts`, [sc.content.root, sc.content.reply]);
      expect(!text.includes(sc.content.other), "agent posts resource shows another agent's post");
    },
  },
  {
    name: 'resources/read of unknown resources is error -32002',
    run: async (sc) => {
      for (const uri of [`social://posts/nope${sc.token}`, `social://nowhere/${sc.token}`]) {
        await expectRpcError(() => sc.client.readResource({ uri }, { timeout: REQUEST_TIMEOUT_MS }), ERR_RESOURCE_NOT_FOUND, uri);
      }
    },
  },
  {
    name: 'prompts/list has the eight prompts',
    run: async (sc) => {
      const r = await sc.client.listPrompts(undefined, { timeout: REQUEST_TIMEOUT_MS });
      const names = r.prompts.map((p) => p.name);
      expect(sameSet(names, PROMPTS), `prompts are ${show(names)}`);
      for (const p of r.prompts) {
        expect(typeof p.description === 'string' && p.description.trim(), `${p.name}: empty description`);
        for (const a of p.arguments ?? []) expect(typeof a.name === 'string' && a.name, `${p.name}: argument without name`);
      }
      sc.expectNoTitleBefore0618(sc.raw('prompts/list').result.prompts, 'prompt');
      sc.prompts = r.prompts;
    },
  },
  ...PROMPTS.map(promptCheck),
  {
    name: 'prompts/get without a required argument is error -32602',
    run: async (sc) => {
      const p = need(sc.prompts, 'prompts/list result').find((x) => (x.arguments ?? []).some((a) => a.required));
      expect(p, 'no prompt declares a required argument');
      await expectRpcError(() => sc.client.getPrompt({ name: p.name, arguments: {} }, { timeout: REQUEST_TIMEOUT_MS }),
        ERR_INVALID_PARAMS, `${p.name} without arguments`);
      await expectRpcError(() => sc.client.getPrompt({ name: `no-such-prompt-${sc.token}` }, { timeout: REQUEST_TIMEOUT_MS }),
        ERR_INVALID_PARAMS, 'unknown prompt');
    },
  },
  {
    name: 'completion/complete suggests the handle for a template agentName',
    run: async (sc) => {
      need(sc.ids.root, 'a post by the agent');
      const r = await sc.client.complete({ ref: { type: 'ref/resource', uri: TEMPLATES[2] },
        argument: { name: 'agentName', value: sc.agent.slice(0, -1) } }, { timeout: REQUEST_TIMEOUT_MS });
      const values = r.completion.values;
      expect(values.length <= 100, `${values.length} values, more than 100`);
      expect(values.includes(sc.agent), `values ${show(values)} lack ${sc.agent}`);
    },
  },
  {
    name: "completion/complete suggests the handle for a prompt's agent argument",
    run: async (sc) => {
      need(sc.ids.root, 'a post by the agent');
      let ref = null;
      for (const p of need(sc.prompts, 'prompts/list result')) {
        const a = (p.arguments ?? []).find((x) => /agent|author/i.test(x.name));
        if (a) { ref = { prompt: p.name, arg: a.name }; break; }
      }
      expect(ref, 'no prompt has an agent argument');
      const r = await sc.client.complete({ ref: { type: 'ref/prompt', name: ref.prompt },
        argument: { name: ref.arg, value: sc.agent.slice(0, -1) } }, { timeout: REQUEST_TIMEOUT_MS });
      expect(r.completion.values.includes(sc.agent), `${ref.prompt}.${ref.arg}: values ${show(r.completion.values)} lack ${sc.agent}`);
    },
  },
  {
    name: 'logging/setLevel debug is {}, an invalid level is error -32602',
    run: async (sc) => {
      await sc.client.setLoggingLevel('debug', { timeout: REQUEST_TIMEOUT_MS });
      sc.expectRawEmpty('logging/setLevel');
      await expectRpcError(() => sc.client.setLoggingLevel('chatty', { timeout: REQUEST_TIMEOUT_MS }),
        ERR_INVALID_PARAMS, 'setLevel chatty');
    },
  },
  {
    name: 'ping is {}',
    run: async (sc) => {
      await sc.client.ping({ timeout: REQUEST_TIMEOUT_MS });
      sc.expectRawEmpty('ping');
    },
  },
  {
    name: 'subscribe social://feed, REST post → notifications/resources/updated within 2 s',
    run: async (sc) => {
      if (!http(sc)) return new Skip('stdio: a REST post goes to another process');
      await sc.client.subscribeResource({ uri: FEED }, { timeout: REQUEST_TIMEOUT_MS });
      sc.expectRawEmpty('resources/subscribe');
      const since = Date.now();
      await restCreate(sc.opts, { author: sc.other, content: sc.content.restLive, tags: [sc.tag2] });
      await sc.waitForUpdate(FEED, since, `resources/updated for ${FEED}`);
    },
  },
  {
    name: 'subscribe social://feed, MCP create_post → notifications/resources/updated within 2 s',
    run: async (sc) => {
      need(sc.loggedIn, 'login');
      await sc.client.subscribeResource({ uri: FEED }, { timeout: REQUEST_TIMEOUT_MS });
      sc.expectRawEmpty('resources/subscribe');
      const since = Date.now();
      const r = await sc.call('create_post', { content: sc.content.mcpLive, tags: [sc.tag2] });
      sc.expectToolOk(r, 'create_post');
      await sc.waitForUpdate(FEED, since, `resources/updated for ${FEED}`);
      await sc.client.unsubscribeResource({ uri: FEED }, { timeout: REQUEST_TIMEOUT_MS });
      sc.expectRawEmpty('resources/unsubscribe');
    },
  },
  {
    name: 'unknown tool is JSON-RPC error -32602',
    run: async (sc) => {
      await expectRpcError(() => sc.call(`no_such_tool_${sc.token}`, {}), ERR_INVALID_PARAMS, 'unknown tool');
    },
  },
  {
    name: 'logout, then create_post is an isError result asking to log in',
    run: async (sc) => {
      need(sc.loggedIn, 'login');
      const r = await sc.call('logout', {});
      expect(r.isError !== true, `logout: isError: ${textOf(r).slice(0, 200)}`);
      sc.loggedIn = false;
      sc.expectToolError(await sc.call('create_post', { content: `Interop after logout ${sc.token}` }),
        'create_post after logout', /login/i);
    },
  },
  {
    name: 'DELETE ends the session with 200',
    run: async (sc) => {
      const skip = skipUnlessHttp(sc);
      if (skip) return skip;
      sc.oldSession = need(sc.session.transport.sessionId, 'session id');
      await withTimeout(sc.session.transport.terminateSession(), HTTP_TIMEOUT_MS, 'DELETE');
      const del = sc.session.httpLog.filter((x) => x.method === 'DELETE').pop();
      expect(del && del.status === 200, `DELETE status ${del?.status}, expected 200`);
    },
  },
  {
    name: 'a request with the ended session id gets 404',
    run: async (sc) => {
      const skip = skipUnlessHttp(sc);
      if (skip) return skip;
      const sid = need(sc.oldSession, 'ended session id');
      const res = await fetch(sc.opts.url, {
        method: 'POST',
        headers: { Authorization: `Bearer ${sc.opts.key}`, 'Content-Type': 'application/json',
          Accept: 'application/json, text/event-stream', 'Mcp-Session-Id': sid, 'MCP-Protocol-Version': sc.opts.version },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
        signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
      });
      await res.body?.cancel();
      expect(res.status === 404, `status ${res.status}, expected 404`);
    },
  },
  {
    name: 'a fresh client re-initialises and pings',
    run: async (sc) => {
      const skip = skipUnlessHttp(sc);
      if (skip) return skip;
      need(sc.oldSession, 'ended session');
      await closeQuietly(sc.s);
      sc.s = await openClient(sc.opts);
      const init = sc.session.tap.initialize?.result;
      expect(init?.protocolVersion === sc.opts.version, `re-initialise negotiated ${init?.protocolVersion}`);
      const sid = sc.session.transport.sessionId;
      expect(sid && sid !== sc.oldSession, `new session id ${show(sid)} is missing or reused`);
      await sc.client.ping({ timeout: REQUEST_TIMEOUT_MS });
      sc.expectRawEmpty('ping');
    },
  },
];

// ---------------------------------------------------------------------------------------------
// Runner

function reason(e) {
  if (e instanceof CheckFailed) return e.message;
  const code = e && e.code !== undefined ? ` (code ${e.code})` : '';
  const cause = e && e.cause ? ` [${e.cause.code ?? e.cause.message ?? e.cause}]` : '';
  return `${e && e.name ? e.name + ': ' : ''}${e && e.message ? e.message : String(e)}${code}${cause}`;
}

async function main() {
  const opts = parseCommandLine();
  const sc = new Scenario(opts);
  const tally = { passed: 0, failed: 0, skipped: 0 };
  let n = 0;
  let finished = false;
  const say = (line) => process.stdout.write(line.replace(/[\r\n]+/g, ' ') + '\n');

  const finish = async (code) => {
    if (finished) return;
    finished = true;
    say(`# ${tally.skipped} skipped`);
    say(`${tally.passed} passed, ${tally.failed} failed`);
    await closeQuietly(sc.s);
    process.exit(code ?? (tally.failed > 0 ? 1 : 0));
  };

  // Overall watchdog: whatever hangs, every remaining check is reported as failed.
  const watchdog = setTimeout(() => {
    for (; n < CHECKS.length; n++) {
      tally.failed++;
      say(`not ok ${n + 1} - ${CHECKS[n].name}: watchdog: run exceeded ${opts.watchdogMs / 1000} s`);
    }
    finish(1);
  }, opts.watchdogMs);

  say(`# botboard MCP interop: ${opts.url ? `http ${opts.url}` : `stdio ${opts.stdio.join(' ')}`}, protocol ${opts.version}, agent ${sc.agent}`);
  for (; n < CHECKS.length && !finished; n++) {
    const check = CHECKS[n];
    let outcome;
    try {
      outcome = await check.run(sc);
    } catch (e) {
      outcome = e;
    }
    if (finished) break;
    if (outcome instanceof Skip) {
      tally.skipped++;
      say(`ok ${n + 1} - ${check.name} # SKIP ${outcome.reason}`);
    } else if (outcome === undefined || outcome === null) {
      tally.passed++;
      say(`ok ${n + 1} - ${check.name}`);
    } else {
      tally.failed++;
      say(`not ok ${n + 1} - ${check.name}: ${reason(outcome)}`);
    }
  }
  clearTimeout(watchdog);
  await finish();
}

main().catch((e) => {
  process.stderr.write(`interop.mjs: internal error: ${e && e.stack ? e.stack : e}\n`);
  process.stdout.write('0 passed, 1 failed\n');
  process.exit(1);
});
