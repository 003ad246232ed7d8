// The inspector page: reads /ui/api/* with the key the user pasted (kept in this page's memory only,
// sent in the Authorization header). Every value from the store is put in the page as text
// (textContent), never as HTML: response content is user data.
"use strict";

let apiKey = "";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = String(value);
    else node.setAttribute(name, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function showMessage(text) {
  const box = document.getElementById("message");
  box.textContent = text || "";
  box.hidden = !text;
}

async function api(path) {
  const headers = { Accept: "application/json" };
  if (apiKey) headers.Authorization = "Bearer " + apiKey;
  const answer = await fetch(path, { headers, credentials: "omit", cache: "no-store" });
  let body = null;
  try { body = await answer.json(); } catch (_) { body = null; }
  if (!answer.ok) {
    const message = body && body.error && body.error.message ? body.error.message : answer.statusText;
    const error = new Error(answer.status === 401
      ? "This gateway needs an API key (auth.api_keys): paste one above. " + message
      : "HTTP " + answer.status + ": " + message);
    error.status = answer.status;
    throw error;
  }
  return body;
}

function when(seconds) {
  return new Date(seconds * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

function renderHealth(report) {
  const list = document.getElementById("health");
  list.replaceChildren();
  const add = (name, value) => list.append(el("dt", { text: name }), el("dd", { text: value }));
  add("owner", JSON.stringify(report.owner));
  for (const [name, value] of Object.entries(report.health)) {
    if (Array.isArray(value)) {
      value.forEach((entry, index) => add(name + " " + (index + 1),
        typeof entry === "object" && entry !== null
          ? Object.entries(entry).map(([k, v]) => k + "=" + v).join(", ")
          : String(entry)));
    } else {
      add(name, value === null ? "–" : String(value));
    }
  }
  document.getElementById("who").textContent = "tenant: " + JSON.stringify(report.owner);
}

function renderRecent(list) {
  const box = document.getElementById("recent");
  box.replaceChildren();
  if (list.data.length === 0) box.append(el("li", { class: "muted", text: "no responses yet" }));
  for (const entry of list.data) {
    const link = el("a", { href: "#" + entry.id, class: "id", "data-testid": "recent-link" }, entry.id);
    box.append(el("li", { "data-id": entry.id },
      link, " ",
      el("span", { class: "muted", text: when(entry.created_at) + " · " + (entry.status || "?") + " · " + (entry.model || "?") }),
      el("span", { class: "preview", text: entry.preview || "" })));
  }
}

function renderItems(label, items) {
  return items.map((item) => {
    const who = item.type === "message" ? item.role || "message" : [item.type, item.name].filter(Boolean).join(" ");
    return el("li", { class: "item " + label, "data-kind": label },
      el("span", { class: "who", text: (label === "input" ? "in · " : "out · ") + who }),
      el("pre", { text: item.text || "" }));
  });
}

function renderChain(tree) {
  const box = document.getElementById("chain");
  box.replaceChildren();
  box.append(el("h2", {}, "Thread of ", el("code", { text: tree.id }),
    el("span", { class: "muted", text: " · " + tree.turns.length + " turns · " + tree.path.length + " on the path" })));
  box.append(el("p", { class: "muted", text: "found by " + tree.found_by + (tree.complete ? "" : " (stopped at a bound: turns may be missing)") }));
  for (const turn of tree.turns) {
    const classes = ["turn", turn.on_path ? "on-path" : "", turn.selected ? "selected" : "",
      turn.branch ? "branch" : "", turn.deleted ? "deleted" : ""].filter(Boolean).join(" ");
    const head = el("div", { class: "turn-head" },
      el("a", { href: "#" + turn.id, class: "id", text: turn.id }),
      el("span", { class: "muted", text: when(turn.created_at) }),
      el("span", { class: "badge", text: turn.deleted ? "deleted" : (turn.status || "?") + " · " + (turn.model || "?") }),
      turn.branch ? el("span", { class: "badge branch", text: "branch from " + turn.parent }) : null,
      turn.parent_missing ? el("span", { class: "badge", text: "parent gone: " + turn.parent }) : null,
      turn.children.length > 1 ? el("span", { class: "badge", text: turn.children.length + " children" }) : null);
    const items = el("ul", { class: "items" }, ...renderItems("input", turn.input), ...renderItems("output", turn.output));
    const card = el("article", {
      class: classes, "data-testid": "turn", "data-id": turn.id, "data-level": turn.level,
      "data-branch": turn.branch ? "true" : "false", "data-on-path": turn.on_path ? "true" : "false",
    }, head, items);
    card.style.marginLeft = (turn.level * 2.2) + "em";
    box.append(card);
  }
}

async function refresh() {
  try {
    renderHealth(await api("/ui/api/health"));
    renderRecent(await api("/ui/api/recent"));
    showMessage("");
  } catch (error) {
    showMessage(error.message);
    return;
  }
  await showHash();
}

async function showHash() {
  const id = decodeURIComponent(location.hash.slice(1));
  if (!id) return;
  document.getElementById("lookup-id").value = id;
  try {
    renderChain(await api("/ui/api/responses/" + encodeURIComponent(id)));
    showMessage("");
  } catch (error) {
    showMessage(error.message);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    apiKey = document.getElementById("key").value.trim();
    refresh();
  });
  document.getElementById("lookup").addEventListener("submit", (event) => {
    event.preventDefault();
    const id = document.getElementById("lookup-id").value.trim();
    if (location.hash === "#" + id) showHash(); else location.hash = id;
  });
  window.addEventListener("hashchange", showHash);
  refresh();
});
