"use strict";
// Every piece of text from the server or the URL goes in as text (textContent, text nodes);
// nothing is parsed as HTML. No cookies or storage: a cross-site frame may be denied them.
// The options (theme, language, accent, filters, ...) were checked by the server (routes/embed.py)
// and arrive as JSON data, with this page's translations (i18n.py).
(function () {
  var params = new URLSearchParams(location.search);
  var config = JSON.parse(document.getElementById("pd-config").textContent);
  var MESSAGES = config.messages || {};
  var API = "api/";  // relative: works at the site root and under a proxy's path prefix
  var log = document.getElementById("pd-log");
  var thread = document.getElementById("pd-thread");
  var form = document.getElementById("pd-form");
  var box = document.getElementById("pd-question");
  var send = document.getElementById("pd-send");
  var maxChars = config.max_chars || 2000;
  var filters = config.filters || {};
  var history = [];
  var busy = false;
  var turns = 0;

  // A fixed string in the page's language: `t("Source {n}", {n: 2})`. Extracted by `make i18n`.
  function t(message, values) {
    var text = MESSAGES[message] || message;
    return values ? text.replace(/\{(\w+)\}/g, function (all, name) {
      return name in values ? String(values[name]) : all;
    }) : text;
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function button(cls, text) {
    var b = el("button", cls, text);
    b.type = "button";
    return b;
  }

  function safeUrl(url) {
    try {
      var u = new URL(url);
      return (u.protocol === "http:" || u.protocol === "https:") ? u.href : "";
    } catch (e) { return ""; }
  }

  form.addEventListener("submit", function (ev) { ev.preventDefault(); ask(); });
  box.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); ask(); }
  });

  async function ask() {
    var question = box.value.trim();
    if (!question || busy) return;
    busy = true; send.disabled = true;
    var hint = thread.querySelector(".pd-hint");
    if (hint) hint.remove();
    var turn = el("section", "pd-turn");
    turn.dataset.turn = String(++turns);
    var answer = el("div", "pd-a");
    var text = el("p", "pd-text pd-pending", t("Searching the articles…"));
    answer.append(text);
    answer.setAttribute("aria-busy", "true");
    turn.append(el("p", "pd-q", question), answer);
    thread.append(turn);
    log.scrollTop = log.scrollHeight;
    var asked = {question: question, history: history.slice(-5)};
    if (Object.keys(filters).length) asked.filters = filters;
    try {
      var res = await fetch(API + "ask/stream", {
        method: "POST", headers: {"Content-Type": "application/json", "Accept": "text/event-stream",
                                  "Accept-Language": config.lang, "X-Desk-Channel": "embed"},
        body: JSON.stringify(asked), credentials: "omit", cache: "no-store"
      });
      if (!res.ok) throw new Error(await problem(res));
      box.value = "";
      var streamed = "";
      var result = null;
      await readEvents(res, function (event, data) {
        if (event === "delta") {
          streamed += data.text;
          text.textContent = streamed;
          text.classList.remove("pd-pending");
        } else if (event === "answer") {
          result = data;
        } else if (event === "error") {
          throw new Error(data.detail || t("Something went wrong. Please try again."));
        }
      });
      if (!result) throw new Error(t("The answer was cut off. Please try again."));
      render(answer, result, turn.dataset.turn);
      answer.append(actions(asked, result, turn.dataset.turn));
      history.push(question);
    } catch (err) {
      answer.replaceChildren(el("p", "pd-error", (err && err.message) || t("Something went wrong. Please try again.")));
      answer.classList.add("pd-failed");
    } finally {
      busy = false; send.disabled = false;
      answer.removeAttribute("aria-busy");
      log.scrollTop = log.scrollHeight;
      box.focus();
    }
  }

  async function problem(res) {
    var detail = "";
    try {
      var data = await res.json();
      detail = typeof data.detail === "string" ? data.detail
        : (Array.isArray(data.detail) && data.detail[0] && data.detail[0].msg) || "";
    } catch (e) { /* not JSON: fall through */ }
    if (res.status === 429) {
      return detail || t("Too many questions at once. Please wait {wait} s.", {wait: res.headers.get("Retry-After") || "10"});
    }
    return detail || t("The assistant could not answer (HTTP {status}). Please try again.", {status: res.status});
  }

  async function readEvents(res, onEvent) {
    var reader = res.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    for (;;) {
      var chunk = await reader.read();
      if (chunk.done) break;
      buffer += decoder.decode(chunk.value, {stream: true}).replace(/\r\n?/g, "\n");
      var cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        var block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        var event = "message", data = [];
        block.split("\n").forEach(function (line) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        });
        if (data.length) onEvent(event, JSON.parse(data.join("\n")));
      }
    }
  }

  function render(answer, result, turnId) {
    var notes = new Map();
    var list = el("ol", "pd-notes");
    (result.citations || []).forEach(function (c) {
      var item = el("li");
      var details = el("details");
      details.id = "pd-note-" + turnId + "-" + c.n;
      var summary = el("summary");
      summary.append(el("span", "pd-n", "[" + c.n + "] "), el("span", "pd-title", c.title || c.article_id));
      summary.append(el("span", "pd-meta", " — " + [c.source, c.date || t("date unknown")].filter(Boolean).join(", ")));
      details.append(summary, el("blockquote", "pd-quote", "“" + c.quote + "”"));
      var url = safeUrl(c.link || "");  // the article, opened at the quote (a text fragment)
      if (url) {
        var link = el("a", "pd-link", t("Open the article at the quote") + " ↗");
        link.href = url;
        link.target = "_blank";
        link.rel = "noopener noreferrer";
        details.append(link);
      }
      item.append(details);
      list.append(item);
      notes.set(String(c.n), details);
    });
    var text = el("p", "pd-text");
    if (result.lead) text.append(el("strong", "pd-lead", result.lead), document.createTextNode(" — "));
    String(result.answer || "").split(/\[(\d+)\]/).forEach(function (part, i) {
      if (i % 2 === 0) { text.append(document.createTextNode(part)); return; }
      var note = notes.get(part);
      if (!note) return;  // the server drops numbers that point nowhere; so do we
      var ref = button("pd-ref", "[" + part + "]");
      ref.setAttribute("aria-label", t("Source {n}", {n: part}));
      ref.setAttribute("aria-controls", note.id);
      ref.addEventListener("click", function () {
        note.open = true;
        note.scrollIntoView({block: "nearest"});
        note.querySelector("summary").focus();  // keyboard readers land on the opened note
      });
      text.append(ref);
    });
    answer.replaceChildren(text);
    if (result.refused && result.notice) answer.append(el("p", "pd-notice", result.notice));
    if (result.refused && (result.closest || []).length) {
      var near = el("ul", "pd-closest");
      result.closest.forEach(function (a) {
        var item = el("li");
        var url = safeUrl(a.url);
        var name = el(url ? "a" : "span", "pd-title", a.title || a.article_id);
        if (url) { name.href = url; name.target = "_blank"; name.rel = "noopener noreferrer"; }
        item.append(name, el("span", "pd-meta", " — " + [a.source, a.date || t("date unknown")].filter(Boolean).join(", ")));
        near.append(item);
      });
      answer.append(el("p", "pd-notice", t("The closest articles I have:")), near);
    }
    if (notes.size) answer.append(list);
  }

  // --- under each answer: 👍/👎 (then an optional comment) and "Copy" ------------------------
  function actions(asked, result, turnId) {
    var wrap = el("div");
    var bar = el("div", "pd-actions");
    bar.setAttribute("role", "group");
    bar.setAttribute("aria-label", t("This answer"));
    var status = el("span", "pd-status");
    status.setAttribute("role", "status");
    var up = button("pd-rate"), down = button("pd-rate"), copy = button("pd-copy", t("Copy"));
    up.append(icon(THUMB_UP), " " + t("Helpful"));
    down.append(icon(THUMB_DOWN), " " + t("Not helpful"));
    up.dataset.rating = "up";
    down.dataset.rating = "down";
    copy.title = t("Copy the answer with its sources and links, as Markdown");
    [up, down].forEach(function (b) { b.setAttribute("aria-pressed", "false"); });
    bar.append(up, down, copy, status);

    var comment = el("form", "pd-comment");
    comment.hidden = true;
    var boxId = "pd-comment-" + turnId;
    var label = el("label", "", t("What was right or wrong? (optional)"));
    label.htmlFor = boxId;
    var note = el("textarea");
    note.id = boxId; note.rows = 2; note.maxLength = 2000;
    var sendNote = el("button", "", t("Send"));
    sendNote.type = "submit";
    comment.append(label, note, sendNote);
    wrap.append(bar, comment);

    var entry = null;  // {id, token} once stored
    var sending = false;
    async function rate(rating) {
      if (sending) return;
      sending = true;
      try {
        if (!entry) {
          entry = await feedback("POST", "feedback", {
            question: asked.question, answer: String(result.answer || ""), rating: rating,
            citations: (result.citations || []).map(function (c) {
              return {n: c.n, article_id: c.article_id, title: c.title, url: c.url, link: c.link, quote: c.quote};
            }),
            history: asked.history, filters: asked.filters || {}
          });
        } else {
          await feedback("PATCH", "feedback/" + entry.id, {token: entry.token, rating: rating});
        }
        up.setAttribute("aria-pressed", String(rating === "up"));
        down.setAttribute("aria-pressed", String(rating === "down"));
        status.textContent = t("Thanks! Tell us more below, if you like.");
        comment.hidden = false;
        note.focus();
      } catch (err) {
        status.textContent = err.message;
      } finally { sending = false; }
    }
    up.addEventListener("click", function () { rate("up"); });
    down.addEventListener("click", function () { rate("down"); });
    comment.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      if (!entry || !note.value.trim()) return;
      try {
        await feedback("PATCH", "feedback/" + entry.id, {token: entry.token, comment: note.value.trim()});
        comment.hidden = true;
        status.textContent = t("Comment sent. Thank you!");
        up.getAttribute("aria-pressed") === "true" ? up.focus() : down.focus();
      } catch (err) { status.textContent = err.message; }
    });
    note.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); comment.requestSubmit(); }
    });
    copy.addEventListener("click", async function () {
      var ask = new URL("./", location.href);
      ask.searchParams.set("q", asked.question);
      var ok = await toClipboard(clipboardMarkdown(asked.question, result, ask.href));
      status.textContent = ok ? t("Copied the answer and its sources.") : t("Your browser did not allow copying.");
    });
    return wrap;
  }

  // 👍 and 👎 drawn as SVG (Feather icons, MIT): emoji fonts are missing on some systems.
  var THUMB_UP = "M14 9V5a3 3 0 0 0-3-3l-4 9v11h11.28a2 2 0 0 0 2-1.7l1.38-9a2 2 0 0 0-2-2.3zM7 22H4a2 2 0 0 1-2-2v-7a2 2 0 0 1 2-2h3";
  var THUMB_DOWN = "M10 15v4a3 3 0 0 0 3 3l4-9V2H5.72a2 2 0 0 0-2 1.7l-1.38 9a2 2 0 0 0 2 2.3zm7-13h2.67A2.31 2.31 0 0 1 22 4v7a2.31 2.31 0 0 1-2.33 2H17";
  function icon(d) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    var path = document.createElementNS(ns, "path");
    path.setAttribute("d", d);
    svg.append(path);
    return svg;
  }

  async function feedback(method, path, body) {
    var res = await fetch(API + path, {
      method: method, headers: {"Content-Type": "application/json", "Accept-Language": config.lang},
      body: JSON.stringify(body),
      credentials: "omit", cache: "no-store"
    });
    if (!res.ok) throw new Error(await problem(res));
    return res.status === 204 ? null : res.json();
  }

  async function toClipboard(text) {
    try { await navigator.clipboard.writeText(text); return true; } catch (e) { /* a frame without permission */ }
    var area = el("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed"; area.style.opacity = "0";
    document.body.append(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    area.remove();
    return ok;
  }

  // The same Markdown as `share.clipboard_markdown` on the server (tests compare the two).
  var MD_SPECIAL = /([\\`*_{}\[\]()<>#+!|~])/g;
  function mdText(t) { return String(t || "").replace(/\s+/g, " ").replace(MD_SPECIAL, "\\$1"); }
  function clipboardMarkdown(question, result, askUrl) {
    var body = String(result.answer || "").split(/\[(\d+)\]/).map(function (part, i) {
      return i % 2 === 0 ? mdText(part) : "[" + part + "]";
    }).join("").trim();
    if (result.lead) body = "**" + mdText(result.lead).trim() + "** — " + body;
    var lines = ["**Q: " + mdText(question).trim() + "**", "", body];
    var cites = result.citations || [];
    if (cites.length) lines.push("", "Sources:");
    cites.forEach(function (c) {
      var name = mdText(c.title || c.article_id).trim();
      var link = safeUrl(c.link || c.url || "");
      var meta = [c.source, c.date || "date unknown"].filter(Boolean)
        .map(function (x) { return mdText(x).trim(); }).join(", ");
      lines.push(c.n + ". " + (link ? "[" + name + "](<" + link + ">)" : name) + " — " + meta
                 + ": “" + mdText(c.quote).trim() + "”");
    });
    if (askUrl) lines.push("", "Asked on Policy Desk: <" + askUrl + ">");
    return lines.join("\n");
  }

  // --- fitting the host site ------------------------------------------------------------
  // An accent colour (checked by the server, and here by the browser's own parser): the question
  // bubble and the send button take it, with white or near-black text, whichever reads better;
  // links take it only where it reads as text on the page's background (WCAG AA, 4.5:1).
  function rgb(colour) {
    var probe = el("span");
    probe.style.color = colour;
    document.body.append(probe);
    var parts = getComputedStyle(probe).color.match(/[\d.]+/g).slice(0, 3).map(Number);
    probe.remove();
    return parts;
  }
  function luminance(c) {
    var l = c.map(function (v) { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * l[0] + 0.7152 * l[1] + 0.0722 * l[2];
  }
  function contrast(a, b) {
    var x = luminance(a), y = luminance(b);
    return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05);
  }
  function applyAccent() {
    var root = document.documentElement.style;
    if (!config.accent || !CSS.supports("color", config.accent)) return;
    root.setProperty("--accent", config.accent);
    var accent = rgb(config.accent);
    var bg = rgb(getComputedStyle(document.body).backgroundColor);
    root.setProperty("--on-accent", contrast(accent, [255, 255, 255]) >= contrast(accent, [13, 17, 23]) ? "#ffffff" : "#0d1117");
    root.setProperty("--link", contrast(accent, bg) >= 4.5 ? config.accent : "var(--fg)");
  }
  applyAccent();
  // "auto": the system's setting can change while the page is open; the link colour follows.
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", applyAccent);

  // Suggested questions (the widget's data-suggest): a click asks one.
  thread.querySelectorAll(".pd-suggestion").forEach(function (b) {
    b.addEventListener("click", function () { box.value = b.textContent; ask(); });
  });

  // --- the widget's frame (widget.js): its height, and focus when its panel opens ---------------
  // Messages go to the host's origin only (never "*"), and only from it are they read.
  var host = config.host_origin;
  if (host && window.parent !== window) {
    var header = document.querySelector("header");
    var sent = 0;
    var report = function () {
      var height = Math.ceil(header.getBoundingClientRect().height + thread.getBoundingClientRect().height
                             + form.getBoundingClientRect().height + 24);  // + #pd-log's padding and borders
      if (height === sent) return;
      sent = height;
      window.parent.postMessage({type: "policy-desk:height", height: height}, host);
    };
    new ResizeObserver(report).observe(thread);
    window.addEventListener("resize", report);
    window.addEventListener("message", function (ev) {
      if (ev.origin !== host || ev.source !== window.parent || !ev.data || typeof ev.data !== "object") return;
      if (ev.data.type === "policy-desk:open") box.focus();
    });
    document.addEventListener("keydown", function (ev) {  // Escape closes the widget's panel
      if (ev.key === "Escape") window.parent.postMessage({type: "policy-desk:close"}, host);
    });
    report();
  }

  // A shared link (`/embed?q=…`) asks its question on load.
  var shared = (params.get("q") || "").trim().slice(0, maxChars);
  if (shared) { box.value = shared; ask(); }
})();
