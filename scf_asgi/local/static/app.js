// The invocation inspector: a list that follows the emulator's server-sent events, and the
// detail of one invocation (event, result, output), with replay. No framework, no build step.
"use strict";
(function () {
  var root = document.body.getAttribute("data-root");
  var api = root + "/api";
  var rows = document.querySelector("#invocations tbody");
  var selected = null;
  var current = null; // the detail shown

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function label(s) {
    return s.method ? s.method + " " + s.path : (s.path || "event");
  }

  function cells(s) {
    var time = new Date(s.time * 1000).toLocaleTimeString();
    var status = s.state === "done" ? String(s.status) : s.state;
    var start = s.cold === null ? "" : (s.cold ? "cold" : "warm");
    var out = [
      el("td", {}, s.seq),
      el("td", {}, time),
      el("td", { "class": "path", title: label(s) }),
      el("td", { "class": "status status-" + String(s.status || "").charAt(0) }, status),
      el("td", {}, s.duration_ms === null ? "" : s.duration_ms.toFixed(1)),
      el("td", {}),
      el("td", { "class": "instance" }, s.instance === null ? "" : s.instance),
      el("td", { "class": "rid", title: s.request_id }, (s.request_id || "").slice(0, 8)),
    ];
    if (s.source !== "http") out[2].appendChild(el("span", { "class": "tag " + s.source }, s.source));
    out[2].appendChild(document.createTextNode(" " + label(s)));
    if (start) out[5].appendChild(el("span", { "class": "tag " + start }, start));
    return out;
  }

  // A row is updated in place, never replaced: a click whose press and release straddled a
  // replaced row would be lost (the two would have no element in common).
  function upsert(s) {
    var row = rows.querySelector('tr[data-seq="' + s.seq + '"]');
    if (!row) {
      row = el("tr", { "data-seq": s.seq });
      row.addEventListener("click", function () { select(s.seq); });
      var later = Array.prototype.find.call(rows.children, function (r) {
        return Number(r.getAttribute("data-seq")) < s.seq;
      });
      rows.insertBefore(row, later || null); // newest first
    }
    row.setAttribute("data-status", s.status === null ? "" : s.status);
    row.setAttribute("data-source", s.source);
    row.setAttribute("data-state", s.state);
    row.textContent = "";
    cells(s).forEach(function (c) { row.appendChild(c); });
    row.classList.toggle("selected", s.seq === selected);
    document.getElementById("empty").hidden = true;
    if (s.seq === selected) load(s.seq);
  }

  function refresh() {
    return fetch(api + "/invocations").then(function (r) { return r.json(); }).then(function (list) {
      var listed = {};
      list.forEach(function (s) { listed[s.seq] = true; });
      Array.prototype.slice.call(rows.children).forEach(function (r) {
        if (!listed[r.getAttribute("data-seq")]) rows.removeChild(r);
      });
      list.slice().reverse().forEach(upsert);
      document.getElementById("empty").hidden = list.length > 0;
    });
  }

  function showBody(container, view, title) {
    container.textContent = "";
    if (!view) return;
    container.appendChild(el("div", { "class": "label" },
      title + " (" + view.kind + ", " + (view.size === undefined ? "?" : view.size) + " bytes" +
      (view.kind === "binary" ? ", first bytes in hex" : "") + ")"));
    var text = view.kind === "text" ? view.text : view.kind === "binary"
      ? view.hex + (view.truncated ? " ..." : "") : view.error;
    container.appendChild(el("pre", { "class": "body-" + view.kind }, text));
  }

  function render(d) {
    current = d;
    document.getElementById("detail").hidden = false;
    document.getElementById("detail-title").textContent = "#" + d.seq + " " + label(d);
    var meta = [d.state === "done" ? "status " + d.status : d.state];
    if (d.duration_ms !== null) meta.push(d.duration_ms.toFixed(1) + " ms");
    if (d.cold !== null) meta.push(d.cold ? "cold start" : "warm");
    if (d.instance !== null) meta.push("instance " + d.instance + " (pid " + d.pid + ")");
    if (d.request_id) meta.push("request " + d.request_id);
    if (d.replayable) meta.push("event " + d.event_size + " bytes");
    if (d.result_kind) meta.push(d.result_size + " bytes posted to /runtime/invocation/" + d.result_kind);
    document.getElementById("detail-meta").textContent = meta.join(" · ");
    var error = document.getElementById("detail-error");
    error.hidden = !d.error;
    error.textContent = d.error || "";
    document.getElementById("detail-event").textContent = d.event || "";
    document.getElementById("detail-result").textContent = d.result === null ? "(no result)" : d.result;
    showBody(document.getElementById("event-body"), d.event_body, "body, decoded");
    showBody(document.getElementById("result-body"), d.result_body, "body, decoded");
    var output = document.getElementById("output");
    output.textContent = "";
    d.output.forEach(function (line) { output.appendChild(el("span", { "class": line[0] }, line[1])); });
    if (!d.output.length) output.textContent = "(nothing)";
    document.getElementById("replay").hidden = !d.replayable;
    document.getElementById("edit").hidden = !d.replayable;
  }

  function load(seq) {
    return fetch(api + "/invocations/" + seq).then(function (r) {
      return r.ok ? r.json() : null;
    }).then(function (d) { if (d && d.seq === selected) render(d); });
  }

  function select(seq) {
    selected = seq;
    Array.prototype.forEach.call(rows.children, function (row) {
      row.classList.toggle("selected", Number(row.getAttribute("data-seq")) === seq);
    });
    document.getElementById("editor").hidden = true;
    load(seq);
  }

  function send(url, event) {
    return fetch(url, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: event,
    }).then(function (r) {
      var seq = Number(r.headers.get("X-Scf-Invocation"));
      if (seq) select(seq);
    });
  }

  document.getElementById("replay").addEventListener("click", function () {
    if (current) send(api + "/invocations/" + current.seq + "/replay", "");
  });
  document.getElementById("edit").addEventListener("click", function () {
    if (!current) return;
    // The whole event (the detail shows at most 256 KB of it), pretty-printed by the emulator.
    var error = document.getElementById("editor-error");
    fetch(api + "/invocations/" + current.seq + "/event?pretty").then(function (r) {
      if (!r.ok) throw new Error("the event is no longer kept");
      return r.text();
    }).then(function (text) {
      document.getElementById("event-editor").value = text;
      error.textContent = "";
      document.getElementById("editor").hidden = false;
    }).catch(function (e) {
      error.textContent = e.message;
      document.getElementById("editor").hidden = false;
    });
  });
  document.getElementById("cancel").addEventListener("click", function () {
    document.getElementById("editor").hidden = true;
  });
  document.getElementById("send").addEventListener("click", function () {
    var text = document.getElementById("event-editor").value;
    try { JSON.parse(text); } catch (e) {
      document.getElementById("editor-error").textContent = "not JSON: " + e.message;
      return;
    }
    document.getElementById("editor").hidden = true;
    send(api + "/invoke?replay", text);
  });

  var live = document.getElementById("live");
  function connect() {
    var source = new EventSource(api + "/stream");
    source.addEventListener("open", function () {
      live.textContent = "live"; live.classList.remove("off");
      refresh();
    });
    source.addEventListener("invocation", function (message) { upsert(JSON.parse(message.data)); });
    source.addEventListener("error", function () {
      live.textContent = "reconnecting"; live.classList.add("off");
    });
  }
  refresh().then(connect, connect);
})();
