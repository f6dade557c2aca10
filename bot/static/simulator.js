// Lianxin simulator: a WeChat-like group chat driven through the real bridge endpoint.
// Plain browser JavaScript, no build step. The server does the signing; this page only
// posts {as, group_id, text} and renders what comes back on the event stream.
"use strict";

const API = "/simulator/api";
const $ = (id) => document.getElementById(id);

const state = {
  people: {},          // sender id -> {id, nickname, role, verified}
  groups: [],          // [{id, name, station, officer}]
  group: null,         // current group id
  seen: new Set(),     // event ids already shown
  events: [],          // every event, in arrival order
  unread: {},          // group id -> count
  tickets: [],
  newcomers: 0,
  timeZone: undefined, // the server's configured zone (Asia/Shanghai), not the browser's
};

const GROUP_EXAMPLES = [
  "我家電動車昨晚在樓下被偷了",
  "身份證丟了怎麼補辦?",
  "建議村口裝個路燈",
  "救命!廣場上有人拿刀打架!",
];
const PRIVATE_EXAMPLES = ["待辦", "實名 周小明 13700001111", "我的資訊"];

// --- small helpers -------------------------------------------------------------------------

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function nameOf(id) {
  return (state.people[id] && state.people[id].nickname) || id;
}

function hue(id) {
  let h = 0;
  for (const ch of id) h = (h * 31 + ch.codePointAt(0)) % 360;
  return h;
}

function avatar(id, label) {
  const a = el("span", "avatar");
  setAvatar(a, id, label);
  return a;
}

function setAvatar(node, id, label) {
  const bot = id === "bot";
  const name = label || (bot ? "連" : nameOf(id));
  node.textContent = Array.from(name.replace(/^(小|老|阿)/, ""))[0] || "?";
  node.classList.toggle("bot", bot);
  node.style.background = bot ? "" : `hsl(${hue(id)} 55% 52%)`;
}

function clock(iso, withDate) {
  const opts = { hour: "2-digit", minute: "2-digit", hour12: false, timeZone: state.timeZone };
  const day = (d) => d.toLocaleDateString("zh-Hant", { timeZone: state.timeZone });
  const d = new Date(iso);
  if (withDate && day(d) !== day(new Date())) {
    opts.month = "numeric";
    opts.day = "numeric";
  }
  return d.toLocaleString("zh-Hant", opts);
}

function toast(text) {
  const t = $("toast");
  t.textContent = text;
  t.classList.add("on");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => t.classList.remove("on"), 3500);
}

async function getJSON(path, options) {
  const response = await fetch(API + path, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.detail || `HTTP ${response.status}`);
  return body;
}

// --- rendering messages --------------------------------------------------------------------

// Text with @mentions and #CODEs highlighted (built from text nodes: nothing is parsed as HTML).
function richText(text, mentions) {
  const frag = document.createDocumentFragment();
  for (const id of mentions || []) {
    frag.append(el("span", "mention", "@" + nameOf(id)), " ");
  }
  const pattern = /(@[^\s@,,::]+|#[A-Z]\d{3,6})/g;
  let last = 0;
  for (const m of text.matchAll(pattern)) {
    frag.append(text.slice(last, m.index));
    frag.append(el("span", m[0][0] === "@" ? "mention" : "code", m[0]));
    last = m.index + m[0].length;
  }
  frag.append(text.slice(last));
  return frag;
}

// What the bridge sends carries its kind (CONTRACT §3): a photo is shown as the photo, so that
// residents see a lost child's face; only a 視頻號 link (channels.weixin.qq.com) says 視頻號.
function isChannelsVideo(url) {
  try { return new URL(url, location.href).hostname.endsWith("channels.weixin.qq.com"); }
  catch (e) { return false; }
}

function mediaCard(media) {
  const card = el("div", "media " + (media.type || "file"));
  card.dataset.type = media.type || "";
  const info = el("div", "info");
  if (media.type === "image") {
    const img = el("img", "photo");
    img.src = media.url;
    img.alt = media.title || "圖片";
    card.append(img);
    info.append(el("b", "", media.title || "圖片"));
  } else if (media.type === "video") {
    card.append(el("div", "thumb", "▶"));
    const channels = isChannelsVideo(media.url);
    info.append(el("b", "", media.title || (channels ? "視頻號" : "視頻")),
                el("small", "", channels ? "視頻號 · 點擊播放" : "視頻 · 點擊播放"));
  } else {
    card.append(el("div", "thumb file", "📄"));
    info.append(el("b", "", media.title || "文件"), el("small", "", media.url));
  }
  card.append(info);
  return card;
}

function bubble(ev, me) {
  const who = ev.kind === "bot" ? "bot" : ev.sender.id;
  const mine = ev.kind === "user" && who === me;
  const row = el("div", "msg" + (mine ? " mine" : "") + (ev.kind === "bot" ? " from-bot" : ""));
  row.dataset.kind = ev.kind;
  const body = el("div", "body");
  if (!mine) body.append(el("div", "nick", ev.kind === "bot" ? "連心" : nameOf(who)));
  const b = el("div", "bubble");
  b.append(richText(ev.text, ev.mentions));
  body.append(b);
  if (ev.media) body.append(mediaCard(ev.media));
  row.append(avatar(who), body);
  return row;
}

function renderList(box, events, me) {
  const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  box.replaceChildren();
  let previous = 0;
  for (const ev of events) {
    const t = new Date(ev.at).getTime();
    if (t - previous > 3 * 60 * 1000) box.append(el("div", "time", clock(ev.at, true)));
    previous = t;
    box.append(bubble(ev, me));
  }
  if (!events.length) box.append(el("div", "time", "還沒有消息"));
  if (nearBottom || box.dataset.fresh !== "no") box.scrollTop = box.scrollHeight;
  box.dataset.fresh = "no";
}

function groupEvents(groupId) {
  return state.events.filter((e) => e.kind !== "sms" && e.group_id === groupId);
}

function privateEvents(userId) {
  return state.events.filter((e) => e.kind !== "sms" && !e.group_id && e.user_id === userId);
}

function renderGroup() {
  const g = state.groups.find((x) => x.id === state.group);
  if (!g) return;
  $("group-title").textContent = g.name;
  $("group-sub").textContent = `${g.station} · 社區民警 ${g.officer}`;
  renderList($("group-messages"), groupEvents(g.id), $("group-as").value);
  state.unread[g.id] = 0;
  renderGroupList();
}

function renderPrivate() {
  const me = $("private-as").value;
  $("private-sub").textContent = `你是 ${nameOf(me)}`;
  renderList($("private-messages"), privateEvents(me), me);
}

function renderGroupList() {
  const list = $("group-list");
  list.replaceChildren();
  for (const g of state.groups) {
    const item = el("li", g.id === state.group ? "on" : "");
    const last = groupEvents(g.id).at(-1);
    const text = el("div", "text");
    text.append(el("b", "", g.name), el("small", "", last ? `${last.kind === "bot" ? "連心" : nameOf(last.sender.id)}:${last.text}` : g.station));
    item.append(avatar(g.id, g.name), text);
    if (state.unread[g.id]) item.append(el("i", "badge", String(state.unread[g.id])));
    item.addEventListener("click", () => openGroup(g.id));
    list.append(item);
  }
}

function openGroup(id) {
  state.group = id;
  $("group-messages").dataset.fresh = "yes";
  document.body.dataset.view = "group";
  document.body.classList.add("in-chat");
  renderGroup();
}

// --- events from the server ----------------------------------------------------------------

function add(ev) {
  if (!ev.id || state.seen.has(ev.id)) return;
  state.seen.add(ev.id);
  if (ev.sender && !state.people[ev.sender.id]) {
    state.people[ev.sender.id] = { id: ev.sender.id, nickname: ev.sender.nickname };
  }
  state.events.push(ev);
  if (ev.kind === "sms") return renderSms(ev);
  if (ev.group_id) {
    if (ev.group_id === state.group) renderGroup();
    else state.unread[ev.group_id] = (state.unread[ev.group_id] || 0) + 1;
    renderGroupList();
    badge("group", ev.group_id !== state.group || document.body.dataset.view !== "group");
  } else if (ev.user_id === $("private-as").value) {
    renderPrivate();
    badge("private", document.body.dataset.view !== "private");
  }
  refreshTicketsSoon();
}

function badge(tab, on) {
  $("badge-" + tab).classList.toggle("on", on);
}

function renderSms(ev) {
  const box = $("sms");
  box.querySelector(".empty")?.remove();
  const item = el("li");
  item.append(el("div", "meta", `發往 ${ev.phone} · ${clock(ev.at)}`), el("div", "", ev.text));
  box.prepend(item);
  badge("side", document.body.dataset.view !== "side");
}

function connect() {
  const source = new EventSource(API + "/stream");
  source.onopen = async () => {
    $("live").textContent = "● 即時";
    $("live").classList.add("ok");
    for (const ev of await getJSON("/history")) add(ev);
  };
  source.onerror = () => {
    $("live").textContent = "重新連線…";
    $("live").classList.remove("ok");
  };
  source.onmessage = (message) => add(JSON.parse(message.data));
}

// --- tickets -------------------------------------------------------------------------------

// The deadline that matters now, or when the matter was settled.
function ticketTimes(t) {
  if (t.closed_at) return `結案於 ${clock(t.closed_at, true)}`;
  if (t.answered_at && t.status === "answered") return `答覆於 ${clock(t.answered_at, true)}`;
  if (t.status === "new") return `接單期限 ${clock(t.ack_due_at, true)}`;
  return `答覆期限 ${clock(t.answer_due_at, true)}`;
}

function ticketItem(t) {
  const item = el("li", `ticket st-${t.status}` + (t.emergency ? " urgent" : ""));
  const head = el("div", "head");
  head.append(el("span", "code", "#" + t.code), el("span", "prio p" + t.priority, "P" + t.priority), el("span", "cat", t.category), el("span", "status", t.status_label));
  const meta = el("div", "meta", `${t.group} · 負責:${t.assignee} · ${ticketTimes(t)}`);
  item.append(head, el("div", "text", t.text), meta);
  if (t.escalation_level) item.append(el("div", "meta warn", `已升級 ${t.escalation_level} 級`));
  if (t.satisfaction) item.append(el("div", "meta", t.satisfaction === "satisfied" ? "居民評價:滿意" : "居民評價:不滿意"));
  return item;
}

async function refreshTickets() {
  try {
    state.tickets = await getJSON("/tickets");
  } catch {
    return;
  }
  const box = $("tickets");
  box.replaceChildren(...state.tickets.map(ticketItem));
  if (!state.tickets.length) box.append(el("li", "empty", "還沒有工單。以實名居民身份在群裡報事試試。"));
  const open = state.tickets.filter((t) => t.status !== "closed").length;
  $("ticket-count").textContent = state.tickets.length ? `${open} 件處理中 / 共 ${state.tickets.length} 件` : "";
  renderChips();
}

function refreshTicketsSoon() {
  clearTimeout(refreshTicketsSoon.timer);
  refreshTicketsSoon.timer = setTimeout(refreshTickets, 400);
}

// --- speaking ------------------------------------------------------------------------------

function speakerOptions(select, chosen) {
  select.replaceChildren();
  const groups = { resident: "居民", officer: "民警", leader: "所長" };
  for (const [role, label] of Object.entries(groups)) {
    const og = el("optgroup");
    og.label = label;
    for (const p of Object.values(state.people).filter((x) => (x.role || "resident") === role)) {
      const extra = role === "resident" ? (p.verified ? " ✓實名" : p.newcomer ? " 新人" : " 未實名") : ` ${p.station || ""}`;
      const opt = el("option", "", p.nickname + extra);
      opt.value = p.id;
      og.append(opt);
    }
    select.append(og);
  }
  const fresh = el("option", "", "＋ 新來的人(隨機身份)");
  fresh.value = "__new__";
  select.append(fresh);
  select.value = chosen;
}

function newcomer() {
  state.newcomers += 1;
  const id = "wxid_new_" + Math.random().toString(36).slice(2, 8);
  state.people[id] = { id, nickname: `新鄰居${state.newcomers}`, role: "resident", newcomer: true };
  return id;
}

function onSpeakerChange(select, other, render) {
  if (select.value === "__new__") {
    const id = newcomer();
    speakerOptions(other, other.value);
    speakerOptions(select, id);
  }
  setAvatar($(select.id.replace("-as", "-avatar")), select.value);
  select.closest(".pane").querySelector(".messages").dataset.fresh = "yes";
  render();
  renderChips();
}

async function say(as, groupId, input) {
  const text = input.value.trim();
  if (!text) return;
  input.value = "";
  try {
    const answer = await getJSON("/say", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ as, nickname: nameOf(as), group_id: groupId, text }),
    });
    if (answer.status !== 200) toast(`橋接端點回覆 ${answer.status}:${JSON.stringify(answer.bridge)}`);
  } catch (err) {
    toast("發送失敗:" + err.message);
    input.value = text;
  }
}

function chip(text, input) {
  const c = el("button", "chip", text);
  c.type = "button";
  c.addEventListener("click", () => {
    input.value = text;
    input.focus();
  });
  return c;
}

// Example phrases; officers get "#CODE …" for the newest open ticket assigned to them.
function renderChips() {
  const isOfficer = (id) => ["officer", "leader"].includes(state.people[id]?.role);
  const openFor = (id) => state.tickets.find((t) => t.status !== "closed" && t.assignee === nameOf(id));
  const build = (box, input, speaker, examples) => {
    const list = isOfficer(speaker) ? [] : examples.slice();
    const t = isOfficer(speaker) && openFor(speaker);
    if (t) list.unshift(`#${t.code} 已收到,民警馬上聯繫您`, `接單 #${t.code}`, `結案 #${t.code} 已處理完畢`);
    if (isOfficer(speaker)) list.push("待辦");
    box.replaceChildren(...list.map((text) => chip(text, input)));
  };
  build($("group-chips"), $("group-text"), $("group-as").value, GROUP_EXAMPLES);
  build($("private-chips"), $("private-text"), $("private-as").value, PRIVATE_EXAMPLES);
}

// --- bulletins -----------------------------------------------------------------------------

function setupBulletins(info) {
  const button = $("bulletin-btn");
  button.disabled = !info.enabled;
  $("bulletin-note").textContent = info.note;
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const answer = await getJSON("/bulletin", { method: "POST" });
      toast(`公告 ${answer.id} 已排程,${clock(answer.at)} 推送`);
    } catch (err) {
      toast("排程失敗:" + err.message);
    } finally {
      setTimeout(() => { button.disabled = false; }, 2000);
    }
  });
}

// --- start ---------------------------------------------------------------------------------

function setupTabs() {
  for (const tab of document.querySelectorAll(".tabs button")) {
    tab.addEventListener("click", () => {
      document.body.dataset.view = tab.dataset.tab;
      for (const t of document.querySelectorAll(".tabs button")) t.classList.toggle("on", t === tab);
      badge(tab.dataset.tab, false);
    });
  }
  $("back").addEventListener("click", () => document.body.classList.remove("in-chat"));
}

function setupForms() {
  const groupAs = $("group-as");
  const privateAs = $("private-as");
  $("group-form").addEventListener("submit", (e) => {
    e.preventDefault();
    say(groupAs.value, state.group, $("group-text"));
  });
  $("private-form").addEventListener("submit", (e) => {
    e.preventDefault();
    say(privateAs.value, null, $("private-text"));
  });
  groupAs.addEventListener("change", () => onSpeakerChange(groupAs, privateAs, renderGroup));
  privateAs.addEventListener("change", () => onSpeakerChange(privateAs, groupAs, renderPrivate));
}

async function start() {
  const info = await getJSON("/people");
  state.timeZone = info.timezone;
  for (const r of info.residents) state.people[r.id] = { ...r, role: "resident" };
  for (const o of info.officers) state.people[o.id] = o;
  state.groups = info.groups;
  speakerOptions($("group-as"), info.residents[0].id);
  const duty = info.officers.find((o) => o.nickname === info.groups[0].officer) || info.officers[0];
  speakerOptions($("private-as"), duty.id);
  setAvatar($("group-avatar"), $("group-as").value);
  setAvatar($("private-avatar"), $("private-as").value);
  setupTabs();
  setupForms();
  setupBulletins(info.bulletins);
  openGroup(info.groups[0].id);
  renderPrivate();
  connect();
  refreshTickets();
  setInterval(refreshTickets, 5000);
}

start().catch((err) => toast("載入失敗:" + err.message));
