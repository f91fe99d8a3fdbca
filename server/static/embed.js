/* threadql embed: a page's comment thread, drawn in a shadow root. Usage and options:
 * docs/embed.md. <div data-threadql-thread="KEY"></div><script src=".../embed.js" async></script>
 */
(() => {
  "use strict";

  const script = document.currentScript || document.querySelector('script[src$="/embed.js"]');
  if (!script || !script.src) return;
  // Relative to the script, so that a threadql served under a path prefix keeps it.
  const API = new URL("graphql", script.src).href;
  const SOCKET = API.replace(/^http/, "ws");

  const PAGE = 20; // top-level comments per page
  const REPLIES = 5; // replies per comment, at each level
  const MORE = 10; // replies fetched by "N more replies"
  const LEVELS = 4; // depths drawn inline (0 to 3); deeper ones behind "Continue this thread"
  const CLIP = 280; // characters shown before "Expand full comment"
  const ORDERS = { OLDEST: "Oldest", NEWEST: "Newest", TOP: "Top" };

  // ---- GraphQL documents

  const FIELDS = `fragment C on Comment { id depth state createdAt editedAt likeCount
    viewerHasLiked viewerCanEdit viewerCanDelete replyCount descendantCount bodyHtml
    excerpt(maxLength: ${CLIP}) { text truncated } author { name avatarUrl } parent { id } }`;
  const CONNECTION = "totalCount pageInfo { hasNextPage endCursor }";
  // Levels of replies beneath a comment. Each multiplies the worst case the server
  // checks against its node limit: 20 > 5 > 5 > 5 stays near 3,000.
  const replies = (levels, first = REPLIES, after = "") =>
    levels > 0
      ? `replies(first: ${first}${after}) { ${CONNECTION} nodes { ...C ${replies(levels - 1)} } }`
      : "";

  const THREAD = `query Thread($key: String!, $order: CommentOrder, $after: String) {
    viewer { name avatarUrl }
    thread(key: $key) { id locked commentCount
      comments(first: ${PAGE}, after: $after, orderBy: $order) {
        ${CONNECTION} nodes { ...C ${replies(LEVELS - 1)} } } } } ${FIELDS}`;
  const COUNT = "query Count($id: ID!) { thread(id: $id) { commentCount } }";
  const SUBTREE = `query Subtree($id: ID!) { comment(id: $id) { ...C ${replies(LEVELS - 1)} } } ${FIELDS}`;
  const moreReplies = (levels) => `query MoreReplies($id: ID!, $after: String) {
    comment(id: $id) { id ${replies(1 + levels, MORE, ", after: $after")} } } ${FIELDS}`;
  const BODY = "query Body($id: ID!) { comment(id: $id) { id body } }";
  const mutation = (name, input) => `mutation ($input: ${input}!) {
    ${name}(input: $input) { comment { ...C } errors { code message field } } } ${FIELDS}`;
  const ADD = mutation("addComment", "AddCommentInput");
  const EDIT = mutation("editComment", "EditCommentInput");
  const DELETE = mutation("deleteComment", "CommentIdInput");
  const LIKE = mutation("likeComment", "CommentIdInput");
  const UNLIKE = mutation("unlikeComment", "CommentIdInput");
  const ADDED = `subscription ($id: ID!) { commentAdded(threadId: $id) { ...C } } ${FIELDS}`;
  const UPDATED = `subscription ($id: ID!) { commentUpdated(threadId: $id) { ...C } } ${FIELDS}`;

  const failure = (message, code) => Object.assign(new Error(message), { code });

  // Messages name fields in backticks (`body`); a reader needs the words only.
  const plain = (message) => String(message).replace(/`([^`]*)`/g, "$1");

  async function request(query, variables, token) {
    const headers = {
      "content-type": "application/json",
      accept: "application/graphql-response+json, application/json",
    };
    if (token) headers.authorization = `Bearer ${token}`;
    let response;
    try {
      response = await fetch(API, {
        method: "POST",
        headers,
        credentials: "omit", // the token is the only credential
        body: JSON.stringify({ query, variables }),
      });
    } catch {
      throw failure("The comment server could not be reached. Try again later.");
    }
    let body;
    try {
      body = await response.json();
    } catch {
      throw failure(`The comment server answered ${response.status}. Try again later.`);
    }
    if (body.errors && body.errors.length) {
      const [first] = body.errors;
      throw failure(plain(first.message), first.extensions && first.extensions.code);
    }
    return body.data;
  }

  // A mutation's expected refusals come back as data, for the form to show: [comment, refusal].
  async function mutate(document, input, token) {
    const [payload] = Object.values(await request(document, { input }, token));
    const { comment, errors } = payload;
    return [comment, errors.length ? errors.map((e) => plain(e.message)).join(" ") : null];
  }

  async function tokenOf(host) {
    const attribute = host.getAttribute("data-threadql-token");
    if (attribute !== null) return attribute.trim() || null;
    if (typeof window.threadqlToken === "function") {
      try {
        return (await window.threadqlToken()) || null;
      } catch {
        return null;
      }
    }
    return null;
  }

  // ---- Live updates: the client side of graphql-transport-ws

  class Live {
    constructor(token, operations, onData, onReconnect, onExpired) {
      Object.assign(this, { token, operations, onData, onReconnect, onExpired });
      this.failures = 0;
      this.stopped = false;
      this.open();
    }

    open() {
      const ws = (this.ws = new WebSocket(SOCKET, "graphql-transport-ws"));
      ws.binaryType = "arraybuffer"; // the server may send its JSON in binary frames
      const send = (message) => ws.send(JSON.stringify(message));
      ws.onopen = () => {
        const payload = this.token ? { authorization: `Bearer ${this.token}` } : {};
        send({ type: "connection_init", payload });
      };
      ws.onmessage = (event) => {
        let message;
        try {
          const { data } = event;
          message = JSON.parse(typeof data === "string" ? data : new TextDecoder().decode(data));
        } catch {
          return;
        }
        if (message.type === "connection_ack") {
          if (this.failures) this.onReconnect();
          this.failures = 0;
          for (const [id, payload] of this.operations) send({ id, type: "subscribe", payload });
        } else if (message.type === "ping") {
          send({ type: "pong" });
        } else if (message.type === "next" && message.payload && message.payload.data) {
          this.onData(message.id, message.payload.data);
        }
      };
      ws.onclose = (event) => {
        if (this.stopped) return;
        // 4401: the token has expired. Its socket would only be refused again: load afresh.
        if (event.code === 4401) return this.onExpired();
        // Back off, with jitter, so that a restarted server is not met by every reader at once.
        const delay = Math.min(30000, 1000 * 2 ** this.failures++) * (0.5 + Math.random() / 2);
        this.timer = setTimeout(() => this.open(), delay);
      };
    }

    stop() {
      this.stopped = true;
      clearTimeout(this.timer);
      this.ws.close(1000);
    }
  }

  // Runs `work` once at a time per button. aria-disabled rather than disabled: a disabled
  // button would drop keyboard focus.
  async function busy(control, work) {
    if (control.getAttribute("aria-disabled") === "true") return;
    control.setAttribute("aria-disabled", "true");
    try {
      return await work();
    } finally {
      control.removeAttribute("aria-disabled");
    }
  }

  // ---- DOM helpers

  let lastId = 0;
  const uid = () => `tq${++lastId}`;

  // Children are nodes or strings; strings become text nodes, never markup.
  function h(tag, props = {}, ...children) {
    const el = document.createElement(tag);
    for (const [name, value] of Object.entries(props)) {
      if (value == null || value === false) continue;
      if (name === "class") el.className = value;
      else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
      else el.setAttribute(name, value === true ? "" : value);
    }
    el.append(...children.filter((child) => child != null && child !== false));
    return el;
  }

  const button = (props, ...children) => h("button", { type: "button", ...props }, ...children);

  const SVG = "http://www.w3.org/2000/svg";
  const HEART =
    "M12 20.5s-7.6-4.6-9.4-9.3C1.3 7.9 3.4 4.5 6.9 4.5c2.1 0 3.7 1.2 5.1 3 1.4-1.8 3-3 5.1-3 3.5 0 5.6 3.4 4.3 6.7-1.8 4.7-9.4 9.3-9.4 9.3z";
  const ARROW = "M10 8.5V5l-7 6.5 7 6.5v-3.6c4.6 0 8 1.4 11 5.1-1-5-4.3-10.4-11-11z";

  function icon(path) {
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    const shape = document.createElementNS(SVG, "path");
    shape.setAttribute("d", path);
    svg.append(shape);
    return svg;
  }

  // Avatars drawn by the server carry the scheme of the request: ws(s) in a live update.
  const httpUrl = (url) => url.replace(/^ws(s?):/, "http$1:");

  const drawn = (node) =>
    JSON.stringify([
      node.state,
      node.bodyHtml,
      node.editedAt,
      node.viewerCanEdit,
      node.viewerCanDelete,
    ]);

  const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

  const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  function ago(date) {
    const seconds = (date.getTime() - Date.now()) / 1000;
    const past = Math.abs(seconds);
    if (past < 45) return "just now";
    if (past < 3600) return relative.format(Math.round(seconds / 60), "minute");
    if (past < 86400) return relative.format(Math.round(seconds / 3600), "hour");
    if (past < 7 * 86400) return relative.format(Math.round(seconds / 86400), "day");
    const sameYear = date.getFullYear() === new Date().getFullYear();
    return date.toLocaleDateString(undefined, {
      month: "short",
      day: "numeric",
      year: sameYear ? undefined : "numeric",
    });
  }
  const exact = (date) => date.toLocaleString(undefined, { dateStyle: "full", timeStyle: "short" });

  // ---- Styles: adopted by each shadow root, so the host page's CSS and ours never meet

  const DARK = `color-scheme: dark; --fg: #e7e9ec; --muted: #a3a9b1; --bg: #16181b; --soft: #23262a;
  --line: #363a40; --accent: var(--threadql-accent-dark, #fb923c); --on-accent: #1b1002;
  --error: #ff9b8f;`;
  const CSS = `
:host { all: initial; display: block; container-type: inline-size; color-scheme: light;
  --fg: #1d2125; --muted: #5f656d; --bg: #fff; --soft: #f3f4f6; --line: #e1e4e8;
  --accent: var(--threadql-accent, #c2410c); --on-accent: #fff; --error: #b42318;
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg); background: var(--bg); }
@media (prefers-color-scheme: dark) { :host(:not([data-threadql-theme="light"])) { ${DARK} } }
:host([data-threadql-theme="dark"]) { ${DARK} }
* { box-sizing: border-box; }
[hidden], .tail:empty, .error:empty { display: none !important; }
.tq { padding: .25rem 0 1rem; }
.head { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: center;
  justify-content: space-between; border-bottom: 1px solid var(--line); padding-bottom: .75rem; }
h2 { font-size: 1.25rem; line-height: 1.3; margin: 0; }
.sort, .meta, .hint { color: var(--muted); font-size: .875rem; }
select, textarea, button { font: inherit; color: inherit; background: none; }
select { margin-left: .25rem; padding: .25rem .5rem; border: 1px solid var(--line);
  border-radius: .5rem; background: var(--bg); }
button { cursor: pointer; border: 0; padding: .25rem 0; font-size: .875rem; font-weight: 600; }
:focus-visible { outline: 2px solid var(--accent); outline-offset: 2px; }
[tabindex="-1"]:focus { outline: none; }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0);
  white-space: nowrap; }
.notice { margin: .75rem 0 0; padding: .5rem .75rem; border-radius: .5rem;
  background: var(--soft); color: var(--muted); }
.compose { margin: 1rem 0 .25rem; }
textarea { display: block; width: 100%; min-height: 5.5rem; resize: vertical;
  padding: .5rem .75rem; border: 1px solid var(--line); border-radius: .5rem; }
textarea[aria-invalid="true"] { border-color: var(--error); }
.error { color: var(--error); font-size: .875rem; margin: .375rem 0 0; }
.row { display: flex; flex-wrap: wrap; gap: .5rem; justify-content: flex-end;
  align-items: center; margin-top: .5rem; }
.hint { margin-right: auto; }
.primary, .ghost, .banner { border-radius: 999px; padding: .375rem 1rem; min-height: 2.25rem; }
.primary, .banner { background: var(--accent); color: var(--on-accent); }
.ghost { border: 1px solid var(--line); }
[aria-disabled="true"] { opacity: .6; cursor: progress; }
.link { color: var(--accent); text-align: start; }
.link:hover { text-decoration: underline; }
.banner { position: sticky; top: .75rem; z-index: 1; display: block; margin: .75rem auto 0;
  box-shadow: 0 2px 8px rgb(0 0 0 / .2); }
ol { list-style: none; margin: 0; padding: 0; }
.card, .writer { display: grid; grid-template-columns: 2.25rem minmax(0, 1fr); gap: .75rem; }
.card { padding: .75rem 0 .25rem; border-radius: .5rem; }
.avatar { display: block; width: 2.25rem; height: 2.25rem; border-radius: 50%;
  object-fit: cover; background: var(--soft); }
.meta { display: flex; flex-wrap: wrap; align-items: baseline; gap: 0 .5rem; }
.name { color: var(--fg); font-weight: 600; overflow-wrap: anywhere; }
.edited, .gone .body { font-style: italic; }
.body { overflow-wrap: anywhere; margin-top: .125rem; }
.body > :last-child { margin-bottom: 0; }
.body p, .body ul, .body ol, .body blockquote, .body pre { margin: 0 0 .625rem; }
.body ul, .body ol { padding-left: 1.25rem; list-style: revert; }
.body a { color: var(--accent); }
.body blockquote { padding-left: .75rem; border-left: 3px solid var(--line); }
.body blockquote, .gone .body { color: var(--muted); }
.body pre { overflow-x: auto; padding: .5rem; background: var(--soft); border-radius: .375rem; }
.body code { font: .875em/1.4 ui-monospace, Menlo, monospace; }
.actions { display: flex; flex-wrap: wrap; gap: .125rem; margin: .25rem 0 0 -.5rem; }
.actions button { display: inline-flex; align-items: center; gap: .375rem; min-height: 2rem;
  padding: .25rem .5rem; border-radius: 999px; color: var(--muted); font-weight: 400; }
.actions button:hover { background: var(--soft); color: var(--fg); }
.actions svg { width: 1.125rem; height: 1.125rem; fill: none; stroke: currentColor;
  stroke-width: 1.8; stroke-linejoin: round; }
.like[aria-pressed="true"] { color: var(--accent); }
.like[aria-pressed="true"] svg { fill: currentColor; }
.replies { margin-left: 1.125rem; padding-left: 1.375rem; border-left: 2px solid var(--line); }
.slot, .tail { margin-left: 3rem; }
.tail { padding: .125rem 0 .25rem; }
.more { display: block; width: 100%; margin-top: 1rem; }
.fresh > .card { animation: fresh 3s ease-out; }
@keyframes fresh { from { background: color-mix(in srgb, var(--accent) 22%, transparent); } }
@container (max-width: 30rem) {
  .card, .writer { grid-template-columns: 1.75rem minmax(0, 1fr); gap: .5rem; }
  .avatar { width: 1.75rem; height: 1.75rem; }
  .replies { margin-left: .875rem; padding-left: .5rem; }
  .slot, .tail { margin-left: 2.25rem; }
}
@media (prefers-reduced-motion: reduce) { .fresh > .card { animation: none; } }
`;

  let sheet = null;
  function adopt(root) {
    // A constructed stylesheet needs no 'unsafe-inline' in the host page's CSP.
    if ("adoptedStyleSheets" in root && typeof CSSStyleSheet.prototype.replaceSync === "function") {
      if (!sheet) {
        sheet = new CSSStyleSheet();
        sheet.replaceSync(CSS);
      }
      root.adoptedStyleSheets = [sheet];
    } else {
      root.append(h("style", {}, CSS));
    }
  }

  // ---- One thread's widget

  class Thread {
    constructor(host) {
      this.host = host;
      this.key = host.getAttribute("data-threadql-thread");
      const order = (host.getAttribute("data-threadql-order") || "").toUpperCase();
      this.order = order in ORDERS ? order : "OLDEST";
      this.generation = 0;
      this.comments = new Map(); // id -> entry: { node, li, card, rel, ... }
      this.root = host.attachShadow({ mode: "open" });
      adopt(this.root);
      this.build();
      new MutationObserver(() => this.load()).observe(host, {
        attributes: true,
        attributeFilter: ["data-threadql-token"],
      });
      setInterval(() => this.tick(), 60000);
      this.load();
    }

    build() {
      const headingId = uid();
      this.heading = h("h2", { id: headingId }, "Comments");
      this.sort = h(
        "select",
        { onchange: () => ((this.order = this.sort.value), this.load()) },
        ...Object.entries(ORDERS).map(([value, label]) =>
          h("option", { value, selected: value === this.order }, label),
        ),
      );
      this.notice = h("p", { class: "notice", hidden: true });
      this.composer = h("div");
      this.banner = button({ class: "banner", hidden: true, onclick: () => this.showNew() });
      this.back = button(
        { class: "link", hidden: true, onclick: () => this.load() },
        "← Back to all comments",
      );
      this.list = h("ol", { "aria-labelledby": headingId, "aria-busy": "true" });
      this.more = button(
        { class: "ghost more", hidden: true, onclick: () => this.loadMore() },
        "Load more comments",
      );
      this.status = h("p", { class: "sr-only", role: "status" });
      this.root.append(
        h(
          "section",
          { class: "tq", "aria-labelledby": headingId },
          h(
            "div",
            { class: "head" },
            this.heading,
            h("label", { class: "sort" }, "Sort by", this.sort),
          ),
          this.notice,
          this.composer,
          this.banner,
          this.back,
          this.list,
          this.more,
          this.status,
        ),
      );
    }

    // ---- Loading

    async load() {
      const generation = ++this.generation; // a newer load makes an older one moot
      if (this.live) this.live.stop();
      this.live = null;
      this.list.setAttribute("aria-busy", "true");
      let token = await tokenOf(this.host);
      let data = null;
      let problem = null;
      while (!data) {
        try {
          data = await request(THREAD, { key: this.key, order: this.order }, token);
        } catch (error) {
          if (error.code !== "UNAUTHENTICATED" || !token) return this.failed(generation, error);
          // A stale token should not hide the comments: read them anonymously and say why.
          problem = `Signing in did not work (${error.message}); you can read but not write.`;
          token = null;
        }
      }
      if (generation !== this.generation) return;
      Object.assign(this, {
        token,
        viewer: data.viewer,
        thread: data.thread,
        count: data.thread ? data.thread.commentCount : 0,
        pending: [],
        counted: new Set(),
        stale: false,
        focused: false,
      });
      this.comments.clear();
      this.list.replaceChildren();
      this.back.hidden = true;
      this.say(problem);
      this.renderCount();
      this.renderComposer();
      this.renderBanner();
      if (this.thread) this.appendPage(this.thread.comments);
      else this.more.hidden = true;
      this.list.setAttribute("aria-busy", "false");
      if (this.thread) this.subscribe();
    }

    failed(generation, error) {
      if (generation !== this.generation) return;
      this.list.setAttribute("aria-busy", "false");
      this.say(`The comments could not be loaded: ${error.message}`);
      this.notice.append(" ", button({ class: "link", onclick: () => this.load() }, "Try again"));
    }

    say(text) {
      this.notice.textContent = text || "";
      this.notice.hidden = !text;
    }

    appendPage(connection) {
      for (const node of connection.nodes) {
        const known = this.comments.get(node.id);
        if (!known) this.list.append(this.renderComment(node, 0));
        else if (this.release(known.li)) this.list.append(known.li);
      }
      this.cursor = connection.pageInfo.endCursor;
      this.more.hidden = !connection.pageInfo.hasNextPage;
    }

    loadMore() {
      return busy(this.more, async () => {
        try {
          const variables = { key: this.key, order: this.order, after: this.cursor };
          const data = await request(THREAD, variables, this.token);
          if (data.thread) this.appendPage(data.thread.comments);
        } catch (error) {
          this.say(error.message);
        }
      });
    }

    loadReplies(entry, control) {
      return busy(control, async () => {
        try {
          const query = moreReplies(LEVELS - 2 - entry.rel);
          const data = await request(query, { id: entry.node.id, after: entry.cursor }, this.token);
          if (data.comment) this.appendReplies(entry, data.comment.replies);
        } catch (error) {
          this.flash(entry, error.message);
        }
      });
    }

    // "Continue this thread": the comment becomes the root of the list, its replies beneath.
    async focusOn(id) {
      let data;
      try {
        data = await request(SUBTREE, { id }, this.token);
      } catch (error) {
        return this.say(error.message);
      }
      if (!data.comment) return this.say("This comment is no longer there.");
      this.focused = true;
      this.comments.clear();
      this.list.replaceChildren(this.renderComment(data.comment, 0));
      this.more.hidden = true;
      this.composer.hidden = true;
      this.back.hidden = false;
      this.say(null);
      this.back.focus();
      this.host.scrollIntoView({ block: "start", behavior: "smooth" });
    }

    tick() {
      for (const time of this.root.querySelectorAll("time")) {
        time.textContent = ago(new Date(time.dateTime));
      }
    }

    // ---- Live updates

    subscribe() {
      const variables = { id: this.thread.id };
      this.live = new Live(
        this.token,
        [
          ["added", { query: ADDED, variables }],
          ["updated", { query: UPDATED, variables }],
        ],
        (id, data) =>
          id === "added" ? this.arrived(data.commentAdded) : this.update(data.commentUpdated),
        () => this.resync(),
        () => this.load(),
      );
    }

    // A new top-level comment is drawn at once but held off the list behind the banner: as a
    // comment like any other, it takes replies, likes, edits and deletions while it waits.
    arrived(node) {
      if (this.comments.has(node.id)) return;
      if (!node.parent) {
        this.counts(node.id);
        const li = this.renderComment(node, 0);
        li.classList.add("fresh");
        this.pending.push(li);
        this.renderBanner();
      } else if (this.comments.has(node.parent.id)) {
        const li = this.place(node);
        if (li && li.isConnected)
          this.status.textContent = `New reply from ${node.author ? node.author.name : "someone"}`;
      } else {
        this.counts(node.id); // beneath a comment not shown here: only the total changes
      }
    }

    // After a dropped connection, events may have been missed: offer a reload if so.
    async resync() {
      try {
        const data = await request(COUNT, { id: this.thread.id }, this.token);
        if (data.thread && data.thread.commentCount !== this.count) {
          this.stale = true;
          this.renderBanner();
        }
      } catch {
        // The next reconnection tries again.
      }
    }

    counts(id) {
      if (this.counted.has(id)) return;
      this.counted.add(id);
      this.count += 1;
      this.renderCount();
    }

    showNew() {
      if (this.stale || this.focused) return this.load();
      const arrived = this.pending.splice(0);
      for (const li of arrived) this.list.prepend(li);
      this.tick();
      this.renderBanner();
      if (arrived.length) arrived[arrived.length - 1].querySelector(".card").focus();
      this.status.textContent = `${plural(arrived.length, "new comment", "new comments")} shown`;
    }

    // The reader's own comment, at the top of the list (out of the held ones if it is there).
    prepend(node) {
      this.counts(node.id);
      const known = this.comments.get(node.id);
      if (known && !this.release(known.li)) return known.li;
      const li = known ? known.li : this.renderComment(node, 0);
      li.classList.add("fresh");
      this.list.prepend(li);
      return li;
    }

    // Takes a comment out of those held behind the banner; whether it was held.
    release(li) {
      const held = this.pending.includes(li);
      if (held) {
        this.pending = this.pending.filter((p) => p !== li);
        this.renderBanner();
      }
      return held;
    }

    // A reply under its parent, when the parent is on the page; null when it sits too deep.
    place(node) {
      const parent = this.comments.get(node.parent.id);
      if (!parent) return null;
      this.counts(node.id);
      const known = this.comments.get(node.id);
      if (known) return known.li;
      parent.node.replyCount += 1;
      parent.node.descendantCount += 1;
      if (parent.rel >= LEVELS - 1) {
        this.renderTail(parent);
        return null;
      }
      const li = this.renderComment(node, parent.rel + 1);
      li.classList.add("fresh");
      this.repliesOf(parent).append(li);
      parent.loaded = (parent.loaded || 0) + 1;
      parent.total = (parent.total || 0) + 1;
      this.renderTail(parent);
      return li;
    }

    update(node) {
      const entry = this.comments.get(node.id);
      if (!entry) return;
      const before = entry.node;
      if (before.state === "VISIBLE" && node.state !== "VISIBLE") {
        this.count -= 1;
        this.renderCount();
      }
      entry.node = { ...before, ...node, replies: null };
      // A placeholder with nothing visible beneath it leaves the listing, as on the server.
      if (node.state !== "VISIBLE" && node.descendantCount === 0) {
        entry.li.remove();
        this.release(entry.li);
        this.comments.delete(node.id);
        return;
      }
      // Compared with what the card shows: an update may arrive while its author edits.
      if (!entry.editing && drawn(entry.node) !== entry.drawn) {
        const card = this.card(entry);
        entry.card.replaceWith(card);
        entry.card = card;
      } else {
        this.renderLike(entry);
      }
    }

    // ---- Rendering

    renderCount() {
      this.heading.textContent = plural(this.count, "Comment", "Comments");
    }

    renderBanner() {
      const n = this.pending.length;
      this.banner.hidden = !n && !this.stale;
      this.banner.textContent = this.stale
        ? "New comments: reload"
        : plural(n, "new comment", "new comments");
      if (n || this.stale) this.status.textContent = this.banner.textContent;
    }

    renderComposer() {
      const thread = this.thread;
      this.composer.hidden = false;
      if (thread && thread.locked) {
        this.composer.replaceChildren(
          h("p", { class: "notice" }, "This thread is closed to new comments."),
        );
      } else if (!this.token) {
        const signIn = button(
          { class: "primary", onclick: () => this.signIn() },
          "Sign in to comment",
        );
        this.composer.replaceChildren(
          h(
            "div",
            { class: "row compose" },
            h("span", { class: "hint" }, "Join the conversation."),
            signIn,
          ),
        );
      } else {
        const form = this.form({
          label: "Write a comment",
          submit: "Post",
          send: async (body) => {
            const input = thread
              ? { threadId: thread.id, body }
              : { threadKey: this.key, threadTitle: this.title(), threadUrl: this.page(), body };
            const [comment, refused] = await mutate(ADD, input, this.token);
            if (refused) return refused;
            if (!thread || this.focused) {
              await this.load(); // the first comment opened the thread; or back to the full list
            } else {
              this.prepend(comment).querySelector(".card").focus();
            }
            this.status.textContent = "Your comment was posted.";
            return null;
          },
        });
        const viewer = this.viewer;
        this.composer.replaceChildren(
          h(
            "div",
            { class: "writer compose" },
            viewer
              ? h("img", {
                  class: "avatar",
                  src: httpUrl(viewer.avatarUrl),
                  alt: "",
                  width: 36,
                  height: 36,
                })
              : h("span"),
            form,
          ),
        );
      }
    }

    title() {
      return this.host.getAttribute("data-threadql-title") || document.title || this.key;
    }

    page() {
      const link = document.querySelector('link[rel="canonical"]');
      try {
        const url = new URL(this.host.getAttribute("data-threadql-url") || (link || location).href);
        url.hash = "";
        return /^https?:$/.test(url.protocol) ? url.href : null;
      } catch (error) {
        return null;
      }
    }

    renderComment(node, rel) {
      const entry = { node, rel, li: h("li", { class: "comment", "data-depth": rel }) };
      entry.slot = h("div", { class: "slot" });
      entry.tail = h("div", { class: "tail" });
      entry.card = this.card(entry);
      entry.li.append(entry.card, entry.slot, entry.tail);
      this.comments.set(node.id, entry);
      if (node.replies) this.appendReplies(entry, node.replies);
      else this.renderTail(entry);
      return entry.li;
    }

    repliesOf(entry) {
      if (!entry.replies) {
        entry.replies = h("ol", {
          class: "replies",
          "aria-label": `Replies to ${this.nameOf(entry.node)}`,
        });
        entry.li.insertBefore(entry.replies, entry.tail);
      }
      return entry.replies;
    }

    appendReplies(entry, connection) {
      for (const child of connection.nodes) {
        if (this.comments.has(child.id)) continue;
        this.repliesOf(entry).append(this.renderComment(child, entry.rel + 1));
        entry.loaded = (entry.loaded || 0) + 1;
      }
      entry.total = Math.max(connection.totalCount, entry.loaded || 0);
      entry.cursor = connection.pageInfo.endCursor;
      entry.hasMore = connection.pageInfo.hasNextPage;
      this.renderTail(entry);
    }

    renderTail(entry) {
      const { node, rel } = entry;
      let action = null;
      if (rel >= LEVELS - 1 && node.descendantCount > 0) {
        action = button(
          { class: "link", onclick: () => this.focusOn(node.id) },
          `Continue this thread (${plural(node.descendantCount, "reply", "replies")}) →`,
        );
      } else if (rel < LEVELS - 1 && entry.hasMore) {
        const left = entry.total - (entry.loaded || 0);
        const more = button(
          { class: "link", onclick: () => this.loadReplies(entry, more) },
          left > 0 ? plural(left, "more reply", "more replies") : "More replies",
        );
        action = more;
      }
      entry.tail.replaceChildren(...(action ? [action] : []));
    }

    nameOf(node) {
      return node.author ? node.author.name : "a deleted comment";
    }

    card(entry) {
      const { node } = entry;
      entry.drawn = drawn(node);
      const gone = node.state !== "VISIBLE";
      const nameId = uid();
      const bodyId = uid();
      const body = h("div", { class: "body", id: bodyId, tabindex: "-1" });
      const clipped = !gone && node.excerpt.truncated && !entry.expanded;
      if (gone) {
        body.textContent =
          node.state === "REMOVED"
            ? "This comment was removed by a moderator."
            : "This comment was deleted.";
      } else if (clipped) {
        body.append(h("p", {}, node.excerpt.text));
      } else {
        body.innerHTML = node.bodyHtml; // sanitised by the server: the only HTML taken from it
      }
      const created = new Date(node.createdAt);
      const meta = h(
        "div",
        { class: "meta" },
        gone ? null : h("span", { class: "name", id: nameId }, this.nameOf(node)),
        h("time", { datetime: node.createdAt, title: exact(created) }, ago(created)),
        node.editedAt && !gone
          ? h(
              "span",
              { class: "edited", title: `Edited ${exact(new Date(node.editedAt))}` },
              "edited",
            )
          : null,
      );
      const expand = clipped
        ? button(
            {
              class: "link",
              "aria-expanded": "false",
              "aria-controls": bodyId,
              onclick: () => {
                entry.expanded = true;
                body.innerHTML = node.bodyHtml;
                expand.remove();
                body.focus(); // the button is gone; keep the reader's place
              },
            },
            "Expand full comment",
          )
        : null;
      const avatar =
        gone || !node.author
          ? h("span", { class: "avatar", "aria-hidden": "true" })
          : h("img", {
              class: "avatar",
              src: httpUrl(node.author.avatarUrl),
              alt: "",
              width: 36,
              height: 36,
              loading: "lazy",
              referrerpolicy: "no-referrer",
            });
      entry.message = h("p", { class: "error", role: "alert" });
      return h(
        "article",
        {
          class: gone ? "card gone" : "card",
          tabindex: "-1",
          "aria-labelledby": gone ? null : nameId,
          "aria-label": gone ? "Deleted comment" : null,
        },
        avatar,
        h(
          "div",
          { class: "main" },
          meta,
          body,
          expand,
          gone ? null : this.actions(entry),
          entry.message,
        ),
      );
    }

    actions(entry) {
      const { node } = entry;
      const name = this.nameOf(node);
      entry.like = button(
        { class: "like", onclick: () => this.like(entry) },
        icon(HEART),
        h("span", { class: "sr-only" }, "Like"),
        h("span", { class: "n" }),
      );
      this.renderLike(entry);
      const reply = button(
        { "aria-label": `Reply to ${name}`, onclick: () => this.reply(entry, reply) },
        icon(ARROW),
        "Reply",
      );
      const edit = node.viewerCanEdit
        ? button({ onclick: () => this.edit(entry, edit) }, "Edit")
        : null;
      const remove = node.viewerCanDelete
        ? button({ onclick: () => this.remove(entry) }, "Delete")
        : null;
      const locked = this.thread && this.thread.locked;
      entry.like.disabled = !!locked;
      return h("div", { class: "actions" }, entry.like, ...(locked ? [] : [reply, edit, remove]));
    }

    renderLike(entry) {
      if (!entry.like) return;
      entry.like.setAttribute("aria-pressed", String(entry.node.viewerHasLiked));
      entry.like.querySelector(".n").textContent = entry.node.likeCount
        ? String(entry.node.likeCount)
        : "";
    }

    flash(entry, text) {
      entry.message.textContent = text || "";
    }

    // ---- Writing

    signIn(entry) {
      // The host page signs readers in; it cancels the event when it takes care of it.
      const event = new CustomEvent("threadql:signin", {
        bubbles: true,
        composed: true,
        cancelable: true,
      });
      if (this.host.dispatchEvent(event)) {
        const hint = "Sign in on this site to like and reply.";
        if (entry) this.flash(entry, hint);
        else this.say(hint);
      }
    }

    // A comment box. `send` resolves to an error message, or null once the text is posted;
    // on an error the text stays in the box.
    form({ label, placeholder = "Write a comment…", submit, initial = "", send, cancel = null }) {
      const textId = uid();
      const errorId = uid();
      const text = h("textarea", {
        id: textId,
        name: "body",
        rows: 3,
        placeholder,
        "aria-describedby": errorId,
      });
      text.value = initial;
      const error = h("p", { class: "error", id: errorId, role: "alert" });
      const post = h("button", { type: "submit", class: "primary" }, submit);
      const form = h(
        "form",
        {
          class: "compose",
          onsubmit: (event) => {
            event.preventDefault();
            busy(post, async () => {
              error.textContent = "";
              text.removeAttribute("aria-invalid");
              const problem = await send(text.value).catch((thrown) => thrown.message);
              if (problem) {
                error.textContent = problem;
                text.setAttribute("aria-invalid", "true");
              } else {
                text.value = "";
              }
            });
          },
        },
        h("label", { for: textId, class: "sr-only" }, label),
        text,
        error,
        h(
          "div",
          { class: "row" },
          h("span", { class: "hint" }, "Markdown works. Ctrl+Enter posts."),
          cancel ? button({ class: "ghost", onclick: cancel }, "Cancel") : null,
          post,
        ),
      );
      text.addEventListener("keydown", (event) => {
        if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
        else if (event.key === "Escape" && cancel) cancel();
      });
      return form;
    }

    reply(entry, opener) {
      if (!this.token) return this.signIn(entry);
      if (entry.replying) return entry.replying.querySelector("textarea").focus();
      const close = () => {
        entry.replying.remove();
        entry.replying = null;
        opener.focus();
      };
      entry.replying = this.form({
        label: `Reply to ${this.nameOf(entry.node)}`,
        placeholder: "Write a reply…",
        submit: "Reply",
        cancel: close,
        send: async (body) => {
          const input = { parentId: entry.node.id, body };
          const [comment, refused] = await mutate(ADD, input, this.token);
          if (refused) return refused;
          entry.replying.remove();
          entry.replying = null;
          const li = this.place(comment);
          if (li) li.querySelector(".card").focus();
          else await this.focusOn(entry.node.id); // too deep to show here: open its thread
          this.status.textContent = "Your reply was posted.";
          return null;
        },
      });
      entry.slot.append(entry.replying);
      entry.replying.querySelector("textarea").focus();
    }

    async edit(entry, opener) {
      if (entry.editing) return;
      let source;
      try {
        source = (await request(BODY, { id: entry.node.id }, this.token)).comment.body;
      } catch (error) {
        return this.flash(entry, error.message);
      }
      const main = entry.card.querySelector(".main");
      const hidden = [...main.children].filter((el) => !el.classList.contains("meta"));
      const close = () => {
        form.remove();
        hidden.forEach((el) => (el.hidden = false));
        entry.editing = false;
        opener.focus();
      };
      const form = this.form({
        label: "Edit your comment",
        submit: "Save",
        initial: source,
        cancel: close,
        send: async (body) => {
          const input = { commentId: entry.node.id, body };
          const [comment, refused] = await mutate(EDIT, input, this.token);
          if (refused) return refused;
          close();
          entry.expanded = true;
          this.update(comment);
          entry.card.focus();
          return null;
        },
      });
      entry.editing = true;
      hidden.forEach((el) => (el.hidden = true));
      main.append(form);
      form.querySelector("textarea").focus();
    }

    async remove(entry) {
      if (!window.confirm("Delete this comment? This cannot be undone.")) return;
      try {
        const [comment, refused] = await mutate(DELETE, { commentId: entry.node.id }, this.token);
        if (refused) return this.flash(entry, refused);
        this.update(comment);
        this.status.textContent = "Your comment was deleted.";
      } catch (error) {
        this.flash(entry, error.message);
      }
    }

    async like(entry) {
      if (!this.token) return this.signIn(entry);
      if (entry.liking) return;
      entry.liking = true;
      const node = entry.node;
      const liked = node.viewerHasLiked;
      // Drawn at once; the server's answer then settles the count.
      Object.assign(node, { viewerHasLiked: !liked, likeCount: node.likeCount + (liked ? -1 : 1) });
      this.renderLike(entry);
      this.flash(entry, null);
      try {
        const [comment, refused] = await mutate(
          liked ? UNLIKE : LIKE,
          { commentId: node.id },
          this.token,
        );
        if (refused) throw failure(refused);
        this.update(comment);
      } catch (error) {
        Object.assign(node, {
          viewerHasLiked: liked,
          likeCount: node.likeCount + (liked ? 1 : -1),
        });
        this.renderLike(entry);
        this.flash(entry, error.message);
      } finally {
        entry.liking = false;
      }
    }
  }

  // ---- Mounting

  const mounted = new WeakSet();
  function mount() {
    for (const host of document.querySelectorAll("[data-threadql-thread]")) {
      if (mounted.has(host) || host.shadowRoot) continue;
      mounted.add(host);
      new Thread(host);
    }
  }
  mount();
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mount);
  // For pages that add a thread element later (single-page apps).
  window.threadql = { mount };
})();
