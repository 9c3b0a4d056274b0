// Interactive API docs: renders /api/v1/openapi.json and sends "try it" requests.
"use strict";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const child of children) node.append(child);
  return node;
}

function operationCard(path, method, op) {
  const card = el("section", { class: "card operation", "data-path": path, "data-method": method });
  card.append(el("h3", {}, el("code", {}, method.toUpperCase() + " " + path), " ", el("span", { class: "muted" }, op.summary)));
  const inputs = {};
  for (const p of op.parameters || []) {
    const input = el("input", { name: p.name, placeholder: p.in + (p.name === "ns" ? " (_)" : "") });
    if (p.name === "ns") input.value = "_";
    inputs[p.name] = [p, input];
    card.append(el("label", {}, p.name + (p.required ? " *" : "")), input);
  }
  let body = null;
  if (op.requestBody) {
    body = el("textarea", { rows: "3", spellcheck: "false" });
    body.value = "{}";
    card.append(el("label", {}, "JSON body"), body);
  }
  const out = el("pre", { class: "code response", hidden: "" });
  const button = el("button", { type: "button" }, "Try it");
  button.addEventListener("click", async () => {
    let url = path;
    const query = new URLSearchParams();
    for (const [name, [p, input]] of Object.entries(inputs)) {
      if (!input.value) continue;
      if (p.in === "path") url = url.replace("{" + name + "}", encodeURIComponent(input.value));
      else query.set(name, input.value);
    }
    if ([...query].length) url += "?" + query;
    const headers = { "Content-Type": "application/json" };
    const auth = document.getElementById("auth").value.trim();
    if (auth) headers.Authorization = "Basic " + btoa(auth);
    out.hidden = false;
    out.textContent = "…";
    try {
      const response = await fetch(url, { method: method.toUpperCase(), headers, body: body ? body.value : undefined });
      const text = await response.text();
      let shown = text;
      try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* not JSON */ }
      out.textContent = response.status + " " + response.statusText + "\n" + shown;
    } catch (e) {
      out.textContent = String(e);
    }
  });
  card.append(button, out);
  return card;
}

async function main() {
  const doc = await (await fetch("/api/v1/openapi.json")).json();
  document.getElementById("version").textContent = doc.info.version;
  const root = document.getElementById("operations");
  root.textContent = "";
  const byTag = {};
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      (byTag[op.tags[0]] = byTag[op.tags[0]] || []).push(operationCard(path, method, op));
    }
  }
  for (const [tag, cards] of Object.entries(byTag)) {
    root.append(el("h2", {}, tag), ...cards);
  }
}

main();
