// papersim's page: plain JavaScript over the JSON API of the same server. Every text from the
// library is set with textContent, never parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { view: "results", selected: -1, abstracts: new Map(), liked: new Set(), disliked: new Set() };

function status(text, isError) {
  const s = $("status");
  s.textContent = text || "";
  s.classList.toggle("error", Boolean(isError));
}

async function api(path, options) {
  const response = await fetch(path, Object.assign({ credentials: "same-origin" }, options || {}));
  let body = null;
  try { body = await response.json(); } catch (_) { body = null; }
  if (!response.ok) {
    throw new Error((body && body.error) || `${response.status} ${response.statusText}`);
  }
  return body;
}

function post(path, value) {
  return api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(value) });
}

// An arXiv id (new style 2403.12345, with or without a version, or old style hep-th/9901001).
const ARXIV = /^(\d{4}\.\d{4,5}(v\d+)?|[a-z-]+(\.[A-Z]{2})?\/\d{7}(v\d+)?)$/;

function arxivLink(row) {
  if (row.url && /^https?:\/\/(www\.)?arxiv\.org\//.test(row.url)) return row.url;
  if (ARXIV.test(row.id)) return `https://arxiv.org/abs/${row.id}`;
  return row.url && /^https?:\/\//.test(row.url) ? row.url : null;
}

function render(list, report) {
  const ol = $(list);
  ol.replaceChildren();
  const template = $("card");
  for (const row of report.results) {
    const li = template.content.firstElementChild.cloneNode(true);
    li.dataset.id = row.id;
    li.querySelector(".rank").textContent = row.rank;
    const title = li.querySelector(".title-button");
    title.textContent = row.title;
    title.addEventListener("click", () => toggleAbstract(li));
    li.querySelector(".date").textContent = row.date || "undated";
    li.querySelector(".score").textContent = `score ${row.score.toFixed(3)}`;
    li.querySelector(".closest").textContent = row.closest_like ? `like “${row.closest_like.title}”` : "";
    const link = arxivLink(row);
    const a = li.querySelector(".arxiv");
    if (link) { a.href = link; a.textContent = link.includes("arxiv.org") ? "arXiv ↗" : "link ↗"; } else { a.remove(); }
    li.querySelector(".similar").addEventListener("click", () => similar(row.id, row.title));
    const like = li.querySelector(".like");
    const dislike = li.querySelector(".dislike");
    like.setAttribute("aria-pressed", String(state.liked.has(row.id)));
    dislike.setAttribute("aria-pressed", String(state.disliked.has(row.id)));
    like.addEventListener("click", () => feedback(li, "like"));
    dislike.addEventListener("click", () => feedback(li, "dislike"));
    li.addEventListener("click", () => select(cards().indexOf(li)));
    ol.appendChild(li);
  }
  state.selected = -1;
  if (report.results.length) select(0, true);
}

function cards() {
  return Array.from(document.querySelectorAll(`#view-${state.view} .card`));
}

function select(i, quiet) {
  const all = cards();
  if (!all.length) return;
  state.selected = Math.max(0, Math.min(i, all.length - 1));
  all.forEach((c, j) => c.classList.toggle("selected", j === state.selected));
  if (!quiet) all[state.selected].scrollIntoView({ block: "nearest" });
}

function current() {
  return cards()[state.selected] || null;
}

async function toggleAbstract(li) {
  const p = li.querySelector(".abstract");
  if (!p.hidden) { p.hidden = true; return; }
  const id = li.dataset.id;
  try {
    if (!state.abstracts.has(id)) {
      const paper = await api(`/api/papers/${encodeURIComponent(id)}`);
      state.abstracts.set(id, paper.abstract || "(no abstract)");
    }
    p.textContent = state.abstracts.get(id);
  } catch (e) {
    // A triaged paper is not in the library yet: there is no record to read.
    p.textContent = `Abstract unavailable: ${e.message}`;
  }
  p.hidden = false;
}

async function feedback(li, op) {
  const id = li.dataset.id;
  try {
    await post(`/api/${op}`, { papers: [id] });
    (op === "like" ? state.liked : state.disliked).add(id);
    (op === "like" ? state.disliked : state.liked).delete(id);
    li.querySelector(".like").setAttribute("aria-pressed", String(state.liked.has(id)));
    li.querySelector(".dislike").setAttribute("aria-pressed", String(state.disliked.has(id)));
    status(op === "like" ? "Liked: it shapes your recommendations." : "Noted: rankings keep away from it.");
  } catch (e) {
    status(e.message, true);
  }
}

function show(view) {
  state.view = view;
  for (const v of ["results", "profile", "triage"]) {
    $(`view-${v}`).hidden = v !== view;
    $(`tab-${v}`).classList.toggle("active", v === view);
  }
  state.selected = -1;
  if (cards().length) select(0, true);
  if (view === "profile") loadProfile();
}

async function search(text) {
  const mode = $("mode").value;
  show("results");
  status("Searching…");
  try {
    const report = await api(`/api/query?q=${encodeURIComponent(text)}&mode=${mode}&k=20`);
    $("heading").textContent = `Results for “${text}”`;
    render("results", report);
    status(`${report.results.length} papers`);
  } catch (e) {
    status(e.message, true);
  }
}

async function similar(id, title) {
  show("results");
  status("Finding similar papers…");
  try {
    const report = await api(`/api/similar/${encodeURIComponent(id)}?k=20&mode=${$("mode").value}`);
    $("heading").textContent = `Papers like “${title || report.query.title}”`;
    render("results", report);
    status(`${report.results.length} papers`);
  } catch (e) {
    status(e.message, true);
  }
}

async function loadProfile() {
  const box = $("profile");
  try {
    const profile = await api("/api/profile");
    box.replaceChildren();
    const tags = Object.entries(profile.likes);
    if (!tags.length) {
      const p = document.createElement("p");
      p.className = "hint";
      p.textContent = "No likes yet: press l on a paper you like.";
      box.appendChild(p);
    }
    for (const [tag, marks] of tags) {
      const h = document.createElement("h3");
      h.className = "profile-tag";
      h.textContent = `Liked · ${tag} (${marks.length})`;
      const ul = document.createElement("ul");
      ul.className = "profile-list liked";
      for (const m of marks) {
        state.liked.add(m.id);
        const li = document.createElement("li");
        li.textContent = m.title;
        ul.appendChild(li);
      }
      box.append(h, ul);
    }
    if (profile.dislikes.length) {
      const h = document.createElement("h3");
      h.className = "profile-tag";
      h.textContent = `Not for me (${profile.dislikes.length})`;
      const ul = document.createElement("ul");
      ul.className = "profile-list";
      for (const m of profile.dislikes) {
        const li = document.createElement("li");
        li.textContent = m.title;
        ul.appendChild(li);
      }
      box.append(h, ul);
    }
    const seen = document.createElement("p");
    seen.className = "hint";
    seen.textContent = `${profile.seen} papers seen`;
    box.appendChild(seen);
    if (tags.length) {
      const report = await post("/api/recommend", { k: 10 });
      render("recommended", report);
    } else {
      $("recommended").replaceChildren();
    }
    status("");
  } catch (e) {
    status(e.message, true);
  }
}

async function triageNewest() {
  status("Ranking the newest digest…");
  try {
    const info = await api("/api/info");
    const dated = info.digests.filter((d) => d.date).map((d) => d.date).sort();
    if (!dated.length) {
      status("The library's digests carry no dates: choose a digest file to triage instead.", true);
      return;
    }
    const day = dated[dated.length - 1];
    const report = await post("/api/recommend", { k: 20, since: day, until: day });
    render("triaged", report);
    status(`Digest of ${day}: ${report.results.length} papers, best for you first`);
  } catch (e) {
    status(e.message, true);
  }
}

async function triageFile(file) {
  status(`Ranking ${file.name}…`);
  try {
    const text = await file.text();
    const response = await fetch(`/api/triage?k=20&name=${encodeURIComponent(file.name)}`, {
      method: "POST", credentials: "same-origin", headers: { "Content-Type": "text/plain" }, body: text,
    });
    const report = await response.json();
    if (!response.ok) throw new Error(report.error);
    render("triaged", report);
    status(`${file.name}: ${report.query.papers} papers, ${report.query.hidden_as_seen} already seen`);
  } catch (e) {
    status(e.message, true);
  }
}

function onKey(event) {
  const typing = ["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement.tagName);
  if (event.key === "Escape") { document.activeElement.blur(); return; }
  if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
  const li = current();
  switch (event.key) {
    case "/": event.preventDefault(); $("q").focus(); $("q").select(); break;
    case "j": case "ArrowDown": event.preventDefault(); select(state.selected + 1); break;
    case "k": case "ArrowUp": event.preventDefault(); select(state.selected - 1); break;
    case "Enter": if (li) { event.preventDefault(); toggleAbstract(li); } break;
    case "o": if (li) { const a = li.querySelector(".arxiv"); if (a) window.open(a.href, "_blank", "noopener"); } break;
    case "s": if (li) similar(li.dataset.id, li.querySelector(".title-button").textContent); break;
    case "l": if (li) feedback(li, "like"); break;
    case "d": if (li) feedback(li, "dislike"); break;
    case "p": show("profile"); break;
    case "r": show("results"); break;
    case "t": show("triage"); break;
    default: break;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("search").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("q").value.trim();
    if (text) { $("q").blur(); search(text); }
  });
  for (const tab of document.querySelectorAll(".tab")) {
    tab.addEventListener("click", () => show(tab.dataset.view));
  }
  $("triage-newest").addEventListener("click", triageNewest);
  $("triage-file").addEventListener("change", (e) => { if (e.target.files[0]) triageFile(e.target.files[0]); });
  document.addEventListener("keydown", onKey);
  api("/api/info").then((info) => {
    status(`${info.papers} papers · ${info.model.id}`);
  }).catch((e) => status(e.message, true));
});
