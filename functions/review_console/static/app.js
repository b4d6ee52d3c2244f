// Review console. Every piece of data goes into the page as text (textContent, text nodes), never as HTML.
import { ApiError, call, localSignIn, token } from "./api.js";
import { chooseLanguage, saveLanguage, translate } from "./i18n.js";

const REFRESH_MS = Number(localStorage.getItem("console.refreshMs")) || 5000;
const state = { lang: chooseLanguage(), reviewer: null, timer: null, caseId: null, lastQueue: null, lastCase: null,
  queueAsked: 0, caseAsked: 0 };
const $ = (selector) => document.querySelector(selector);
const t = (key, params) => translate(state.lang, key, params);

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "href") node.href = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function when(iso) {
  if (!iso) return "-";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return new Intl.DateTimeFormat(state.lang, { dateStyle: "short", timeStyle: "medium" }).format(date);
}

function flash(message) {
  const box = $("#flash");
  box.textContent = message || "";
  box.hidden = !message;
}

function applyLanguage() {
  document.documentElement.lang = state.lang;
  document.title = t("title");
  $("#lang").value = state.lang;
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  if (state.reviewer) $("#who").textContent = t("signedInAs", { name: state.reviewer });
  if (state.lastQueue) renderQueue(state.lastQueue);
  if (state.lastCase) renderCase(state.lastCase);
}

function show(section) {
  for (const id of ["sign-in", "queue", "case"]) $(`#${id}`).hidden = id !== section;
  $("#sign-out").hidden = section === "sign-in";
}

function failed(err) {
  if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
    token.clear();
    state.reviewer = null;
    $("#who").textContent = "";
    show("sign-in");
    flash(t("refused"));
    return;
  }
  flash(t("failed", { message: err.message }));
}

// ------------------------------------------------------------------ sign in
async function signedIn() {
  try {
    state.reviewer = (await call("GET", "/console/api/me")).reviewer;
  } catch (err) {
    failed(err);
    return false;
  }
  $("#who").textContent = t("signedInAs", { name: state.reviewer });
  flash("");
  return true;
}

async function start() {
  if (token.get() && (await signedIn())) route();
  else show("sign-in");
}

// ------------------------------------------------------------------ the queue
async function loadQueue() {
  const asked = ++state.queueAsked; // answers can overtake each other: only the latest request is shown
  try {
    const data = await call("GET", "/console/api/cases",
      { query: { category: $("#filter-category").value, loan: $("#filter-loan").value.trim() } });
    if (asked !== state.queueAsked) return;
    state.lastQueue = data;
    renderQueue(data);
  } catch (err) {
    failed(err);
  }
}

function renderQueue(data) {
  const counts = $("#counts");
  counts.replaceChildren(...["open", "overdue", "unassigned"].map((key) =>
    el("span", { class: `count count-${key}`, dataset: { count: key } }, el("b", {}, String(data.counts[key])),
      " ", t(`count.${key}`))),
  ...["no_channel", "borrower_report", "prepare_failed", "borrower_missing", "outcome_unknown"].map((key) =>
    el("span", { class: "count", dataset: { count: key } }, el("b", {}, String(data.counts[key] || 0)), " ",
      t(`cat.${key}`))));
  const rows = data.cases.map((c) => {
    const link = el("a", { href: `#/case/${encodeURIComponent(c.case_id)}` }, c.loan_id);
    return el("tr", { class: c.overdue ? "overdue" : "", dataset: { caseId: c.case_id } },
      el("td", {}, when(c.due_at), c.overdue ? el("span", { class: "badge" }, t("overdue")) : null),
      el("td", { class: "loan" }, link),
      el("td", {}, c.status),
      el("td", { title: c.reason }, t(`cat.${c.category}`)),
      el("td", { class: "assignee" }, c.assignee || t("nobody")),
      el("td", {}, when(c.opened_at)));
  });
  $("#cases tbody").replaceChildren(...rows);
  $("#empty").hidden = rows.length > 0;
  $("#refreshed").textContent = t("refreshedAt", { time: when(data.generated_at) });
}

function refreshQueue() {
  clearInterval(state.timer);
  state.timer = setInterval(() => {
    if (!document.hidden && !$("#queue").hidden) loadQueue();
  }, REFRESH_MS);
}

// ------------------------------------------------------------------ one case
async function loadCase(caseId) {
  const asked = ++state.caseAsked;
  try {
    const data = await call("GET", "/console/api/case", { query: { case_id: caseId } });
    if (asked !== state.caseAsked || caseId !== state.caseId) return;
    state.lastCase = data;
    renderCase(data);
  } catch (err) {
    failed(err);
  }
}

function fact(dl, label, ...value) {
  dl.append(el("dt", {}, label), el("dd", {}, ...value));
}

function health(h) {
  if (!h) return "";
  const bad = ["verified", "bounced", "opted_out"].filter((k) => h[k]).map((k) => t(`health.${k}`));
  return bad.length ? bad.join(", ") : t("health.ok");
}

function eventText(e) {
  const params = { ...e, plan: (e.plan || []).join(" > "), reason: e.reason ? t(`cat.${reasonCategory(e.reason)}`) : "-",
    decision: e.decision ? t(`dec.${e.decision}`) : "-", due_at: when(e.due_at) };
  const parts = [t(`ev.${e.kind}`, params)];
  if (e.kind === "status_change" && e.status_reason) parts.push(t("statusReason", { text: e.status_reason }));
  if (e.kind === "attempt" && e.error) parts.push(t("error", { error: e.error }));
  if (e.kind === "attempt" && e.delivery_status) parts.push(t("deliveryStatus", { status: e.delivery_status }));
  if (e.kind === "attempt" && e.confirm_by) parts.push(t("confirmBy", { time: when(e.confirm_by) }));
  if (e.kind === "receipt" && e.detail) parts.push(String(e.detail));
  if (e.kind === "human_action" && e.corrected) parts.push(e.corrected.join(", "));
  if (e.kind === "human_action" && e.note) parts.push(`"${e.note}"`);
  return parts.join(" · ");
}

const REASON_CATEGORY = {
  no_channel_delivered: "no_channel", borrower_reports_not_notified: "borrower_report",
  borrower_reports_not_notified_no_notice_on_record: "borrower_report", prepare_failed: "prepare_failed",
  borrower_not_found: "borrower_missing", send_outcome_unknown: "outcome_unknown",
};
const reasonCategory = (reason) => REASON_CATEGORY[reason] || "other";

function renderCase(data) {
  const c = data.case;
  $("#case-title").textContent = t("caseTitle", { id: c.case_id });
  const facts = $("#case-facts");
  facts.replaceChildren();
  fact(facts, t("loan"), el("span", { class: "loan" }, c.loan_id));
  fact(facts, t("status"), c.status);
  fact(facts, t("reason"), el("span", { class: "reason" }, t(`cat.${c.category}`)), " (", c.reason, ")");
  fact(facts, t("opened"), when(c.opened_at));
  fact(facts, t("due"), when(c.due_at), c.overdue ? el("span", { class: "badge" }, t("overdue")) : null);
  fact(facts, t("caseState"), c.state, c.resolving ? ` · ${t("resolving", { decision: t(`dec.${c.resolving}`) })}` : "",
    c.decision ? ` · ${t(`dec.${c.decision}`)} (${c.resolved_by}): ${c.outcome || ""}` : "");

  const open = c.state === "OPEN";
  const mine = c.assignee && c.assignee === state.reviewer;
  $("#owner").textContent = !c.assignee ? t("notTaken") : mine ? t("youHaveIt") : t("takenBy", { name: c.assignee });
  $("#take").hidden = !open || Boolean(c.assignee);
  $("#decision").hidden = !open || (c.assignee && !mine);

  const borrower = $("#borrower");
  if (!data.borrower) borrower.replaceChildren(el("p", { class: "muted" }, t("noBorrower")));
  else {
    borrower.replaceChildren(el("p", {}, data.borrower.borrower_id, ` · ${data.borrower.locale}`),
      el("ul", { class: "contacts" }, ...data.borrower.contacts.map((k) =>
        el("li", { dataset: { channel: k.channel } }, `${k.channel}: `, el("code", {}, k.value), ` · ${health(k.health)}`))));
  }

  $("#notices").replaceChildren(...data.notices.map((n) => el("article", { class: n.this_case ? "notice current" : "notice" },
    el("h4", {}, `${n.status} v${n.version} · ${n.state}`, n.reason ? ` (${n.reason})` : "",
      n.this_case ? el("span", { class: "badge info" }, t("thisCase")) : null),
    el("ol", { class: "timeline" }, ...n.timeline.map((e) =>
      el("li", { class: `ev ev-${e.kind}` }, el("time", { datetime: e.at || "" }, when(e.at)), " ", eventText(e)))))));
}

async function takeCase() {
  try {
    await call("POST", "/console/api/case/take", { body: { case_id: state.caseId } });
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 409)) return failed(err);
    flash(t("takenBy", { name: err.body.error.assignee }));
  }
  await loadCase(state.caseId);
}

async function submitDecision(event) {
  event.preventDefault();
  const form = event.target;
  const decision = form.elements.decision.value;
  const body = { case_id: state.caseId, decision, note: form.elements.note.value,
    corrected: decision === "contact_corrected"
      ? [...form.querySelectorAll("input[name=corrected]:checked")].map((i) => i.value) : [] };
  try {
    const result = await call("POST", "/console/api/case/decision", { body });
    $("#decision-result").textContent = t("decided", { decision: t(`dec.${result.decision}`), outcome: result.outcome });
    form.reset();
  } catch (err) {
    if (err instanceof ApiError && err.status < 500 && err.status !== 401 && err.status !== 403) {
      $("#decision-result").textContent = t("failed", { message: err.message });
    } else failed(err);
  }
  await loadCase(state.caseId);
}

async function exportEvidence() {
  const loanId = state.lastCase && state.lastCase.case.loan_id;
  try {
    const evidence = await call("GET", "/console/api/evidence", { query: { loan_id: loanId } });
    const blob = new Blob([JSON.stringify(evidence, null, 2)], { type: "application/json" });
    const link = el("a", { href: URL.createObjectURL(blob),
      download: `evidence-${String(loanId).replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 60)}.json` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  } catch (err) {
    failed(err);
  }
}

// ------------------------------------------------------------------ navigation
function route() {
  const match = location.hash.match(/^#\/case\/(.+)$/);
  flash("");
  if (match) {
    state.caseId = decodeURIComponent(match[1]);
    state.lastCase = null;
    $("#decision-result").textContent = "";
    show("case");
    loadCase(state.caseId);
  } else {
    state.caseId = null;
    state.lastCase = null;
    show("queue");
    loadQueue();
    refreshQueue();
  }
}

function wire() {
  $("#lang").addEventListener("change", (e) => { state.lang = e.target.value; saveLanguage(state.lang); applyLanguage(); });
  $("#local-sign-in").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      token.set(await localSignIn($("#sign-in-name").value.trim()));
    } catch {
      flash(t("localSignInMissing"));
      return;
    }
    if (await signedIn()) route();
  });
  $("#token-sign-in").addEventListener("submit", async (e) => {
    e.preventDefault();
    token.set($("#sign-in-token").value.trim());
    if (await signedIn()) route();
  });
  $("#sign-out").addEventListener("click", () => {
    token.clear();
    state.reviewer = null;
    $("#who").textContent = "";
    clearInterval(state.timer);
    show("sign-in");
  });
  $("#filter-category").addEventListener("change", loadQueue);
  $("#filter-loan").addEventListener("input", loadQueue);
  $("#take").addEventListener("click", takeCase);
  $("#decision").addEventListener("submit", submitDecision);
  $("#decision").addEventListener("change", (e) => {
    if (e.target.name === "decision") $("#corrected").hidden = e.target.value !== "contact_corrected";
  });
  $("#evidence").addEventListener("click", exportEvidence);
  window.addEventListener("hashchange", () => { if (state.reviewer) route(); });
}

wire();
applyLanguage();
start();
