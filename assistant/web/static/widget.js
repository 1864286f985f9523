/* Policy Desk, embedded in one line:
 *   <script src="https://desk.example.org/widget.js" async data-target="#desk"></script>
 * Puts the desk's /embed page in an iframe: inside `data-target`, or behind a floating button.
 * No framework, no inline style sheet or script (a host page's CSP need only allow this origin
 * for scripts and frames), nothing kept in the host page's storage. Options: docs/embedding.md. */
(function () {
  "use strict";
  var SETTINGS = "__POLICY_DESK_SETTINGS__";  // filled in by the server: allowed sites, languages, messages
  var script = document.currentScript;
  if (!script || !script.src) return;
  var NAME = "Policy Desk";
  var deskOrigin = new URL(script.src).origin;
  var here = location.origin;
  if (SETTINGS.allowed.length && SETTINGS.allowed.indexOf(here) < 0) {
    console.error(NAME + ": this page's origin (" + here + ") is not among the sites allowed to embed " +
                  deskOrigin + ", so the widget stays off. The desk's owner can add it to EMBED_ALLOWED_ORIGINS.");
    return;
  }
  var data = script.dataset;
  function warn(name, value, why) {
    console.warn(NAME + ": data-" + name + '="' + value + '" ignored: ' + why + ".");
  }
  function text(name, limit) {  // text is text: control characters out, white space folded, bounded
    var value = (data[name] || "").replace(/[\u0000-\u001f\u007f]/g, " ").replace(/\s+/g, " ").trim();
    if (value.length > limit) { warn(name, value.slice(0, 20) + "…", "longer than " + limit + " characters"); }
    return value.slice(0, limit);
  }
  function choice(name, options, fallback) {
    var value = data[name];
    if (value === undefined || value === "") return fallback;
    if (options.indexOf(value) >= 0) return value;
    warn(name, value, "use one of " + options.join(", "));
    return fallback;
  }
  function day(name) {
    var value = (data[name] || "").trim();
    if (!value) return "";
    var d = new Date(value + "T00:00:00Z");
    if (/^\d{4}-\d{2}-\d{2}$/.test(value) && !isNaN(d) && d.toISOString().slice(0, 10) === value) return value;
    warn(name, value, "not a YYYY-MM-DD date");
    return "";
  }

  // The reader's language: data-lang, else the browser's; a shipped one, else English.
  function shipped(tag) {
    tag = String(tag || "").toLowerCase();
    if (/^zh(-|$)/.test(tag)) return /-(hant|tw|hk|mo)(-|$)/.test(tag) ? "" : "zh-Hans";
    var base = tag.split("-")[0];
    return SETTINGS.languages.indexOf(base) >= 0 ? base : "";
  }
  var lang = "";
  if (data.lang) { lang = shipped(data.lang); if (!lang) warn("lang", data.lang, "use one of " + SETTINGS.languages.join(", ")); }
  (navigator.languages || [navigator.language]).forEach(function (tag) { lang = lang || shipped(tag); });
  lang = lang || "en";
  var messages = SETTINGS.messages[lang] || {};
  function t(message) { return messages[message] || message; }
  var rtl = SETTINGS.rtl.indexOf(lang) >= 0;

  var theme = choice("theme", ["light", "dark", "auto"], "auto");
  var accent = (data.accent || "").trim();
  if (accent && !(window.CSS && CSS.supports("color", accent) && /^[#a-zA-Z0-9(),.%\/ +-]{1,60}$/.test(accent))) {
    warn("accent", accent, "not a CSS colour");
    accent = "";
  }
  var since = day("since"), until = day("until");
  if (since && until && since > until) { warn("since", since, "after data-until"); since = until = ""; }
  var page = new URL("embed", script.src);  // beside widget.js: a path prefix carries over
  var query = page.searchParams;
  query.set("lang", lang);
  query.set("origin", here);
  if (theme !== "auto") query.set("theme", theme);
  if (accent) query.set("accent", accent);
  var title = text("title", 80);
  if (title) query.set("title", title);
  [["placeholder", 120], ["welcome", 240], ["source", 100]].forEach(function (option) {
    var value = text(option[0], option[1]);
    if (value) query.set(option[0], value);
  });
  text("suggest", 400).split("|").map(function (s) { return s.trim().slice(0, 120); })
    .filter(Boolean).slice(0, 3).forEach(function (s) { query.append("suggest", s); });
  if (since) query.set("since", since);
  if (until) query.set("until", until);

  function style(node, rules) { for (var k in rules) node.style[k] = rules[k]; return node; }
  var frame = style(document.createElement("iframe"), {border: "0", width: "100%", height: "420px",
                                                        display: "block", colorScheme: "normal"});
  frame.title = title || t("Policy Desk chat");
  frame.setAttribute("allow", "clipboard-write");
  var minHeight = 320, maxHeight = 640;
  function fit(height) {
    var room = launcher ? Math.max(minHeight, window.innerHeight - 110) : Infinity;
    frame.style.height = Math.round(Math.min(Math.max(height, minHeight), maxHeight, room)) + "px";
  }

  var launcher = null, panel = null;
  function open(show) {
    if (show && !frame.src) frame.src = page.href;  // the chat loads when first opened
    panel.hidden = !show;
    launcher.setAttribute("aria-expanded", String(show));
    launcher.textContent = show ? "×" : label;
    launcher.setAttribute("aria-label", show ? t("Close the chat") : label);
    if (show && frame.contentWindow) frame.contentWindow.postMessage({type: "policy-desk:open"}, deskOrigin);
    if (!show) launcher.focus();
  }

  var target = null;
  if (data.target) {
    try { target = document.querySelector(data.target); } catch (e) { target = null; }
    if (!target) {
      console.error(NAME + ': data-target="' + data.target + '" matches nothing on this page; the widget stays off.');
      return;
    }
    var height = parseInt(data.height || "", 10);
    if (data.height && !(height >= 240 && height <= 2000)) warn("height", data.height, "use 240 to 2000 (pixels)");
    else if (height) maxHeight = height;
    minHeight = Math.min(minHeight, maxHeight);
    frame.src = page.href;
    target.append(frame);
  } else {
    var side = choice("position", ["bottom-right", "bottom-left"], rtl ? "bottom-left" : "bottom-right");
    var label = text("label", 40) || t("Ask a question");
    var edge = side === "bottom-left" ? "left" : "right";
    launcher = style(document.createElement("button"), {
      position: "fixed", bottom: "20px", zIndex: "2147483000", padding: "12px 18px", border: "0",
      borderRadius: "24px", font: "600 15px/1.2 system-ui, sans-serif", cursor: "pointer",
      boxShadow: "0 4px 14px rgba(0,0,0,.25)", background: accent || "#0b5cad", color: "#ffffff"});
    launcher.style[edge] = "20px";
    launcher.type = "button";
    launcher.id = "policy-desk-launcher";
    panel = style(document.createElement("div"), {
      position: "fixed", bottom: "76px", zIndex: "2147483000", width: "min(400px, calc(100vw - 32px))",
      borderRadius: "12px", overflow: "hidden", boxShadow: "0 8px 30px rgba(0,0,0,.3)",
      background: theme === "dark" ? "#0d1117" : "#ffffff"});
    panel.style[edge] = "16px";
    panel.id = "policy-desk-panel";
    panel.setAttribute("role", "region");
    panel.setAttribute("aria-label", frame.title);
    if (rtl) panel.dir = "rtl";
    panel.hidden = true;
    launcher.setAttribute("aria-controls", panel.id);
    panel.append(frame);
    launcher.addEventListener("click", function () { open(panel.hidden); });
    frame.addEventListener("load", function () {  // opened before the chat had loaded: focus it now
      if (!panel.hidden) frame.contentWindow.postMessage({type: "policy-desk:open"}, deskOrigin);
    });
    document.addEventListener("keydown", function (ev) { if (ev.key === "Escape" && !panel.hidden) open(false); });
    open(false);
    document.body.append(panel, launcher);
    if (accent) {  // white or near-black text on the accent, whichever reads better (computed once shown)
      var lum = getComputedStyle(launcher).backgroundColor.match(/[\d.]+/g).slice(0, 3).map(function (v) {
        v /= 255;
        return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
      });
      if (0.2126 * lum[0] + 0.7152 * lum[1] + 0.0722 * lum[2] > 0.179) launcher.style.color = "#0d1117";
    }
  }

  // The embedded page says how tall its content is; only that frame, from the desk's origin, is heard.
  window.addEventListener("message", function (ev) {
    if (ev.origin !== deskOrigin || ev.source !== frame.contentWindow || !ev.data || typeof ev.data !== "object") return;
    if (ev.data.type === "policy-desk:height" && typeof ev.data.height === "number" && isFinite(ev.data.height)) fit(ev.data.height);
    else if (ev.data.type === "policy-desk:close" && panel && !panel.hidden) open(false);
  });
})();
