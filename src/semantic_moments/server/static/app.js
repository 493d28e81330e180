// semantic-moments search page: browse, query by click or upload (or several examples, and what not to
// find), re-weight with the slider, filter the results, explain a match, see the collection as a map.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { query: null, queryLabel: "", more: [], not: [], results: [], timer: null, searchId: 0, k: 12,
                actsUpTo: 1 };

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.detail ? JSON.stringify(body.detail) : response.statusText);
  return body;
}

function clock(seconds) { // 75.5 -> "1:15.5"
  const minutes = Math.floor(seconds / 60), rest = seconds - 60 * minutes;
  return `${minutes}:${rest < 10 ? "0" : ""}${rest.toFixed(1)}`;
}

function isSegment(clip) { return clip.start !== undefined && clip.end !== undefined; }

function loopSegment(media, clip) {
  // one mechanism keeps a found segment playing inside [start, end]: start there once the video is
  // ready, and jump back whenever playback reaches the end (never while a seek is in flight)
  const restart = () => { media.currentTime = clip.start; media.play().catch(() => {}); };
  media.addEventListener("loadedmetadata", () => { media.currentTime = clip.start; });
  media.addEventListener("timeupdate", () => {
    if (!media.seeking && (media.currentTime >= clip.end || media.currentTime < clip.start - 0.25)) restart();
  });
  media.addEventListener("ended", restart);
}

function card(clip, { video = false, score = null, percentile = null } = {}) {
  const element = document.createElement(video ? "li" : "div");
  element.className = "card";
  element.dataset.id = clip.id;
  const segment = isSegment(clip);
  if (segment) { element.dataset.start = clip.start; element.dataset.end = clip.end; }
  const media = document.createElement(video ? "video" : "img");
  const frameAt = segment ? `?t=${((clip.start + clip.end) / 2).toFixed(1)}` : "";
  if (video) {
    const source = clip.upload ? `/api/uploads/${clip.upload}/video` : `/api/clips/${clip.id}/video`;
    Object.assign(media, { src: source, muted: true, loop: !segment, autoplay: true, playsInline: true,
                           preload: "metadata",
                           ...(clip.upload ? {} : { poster: `/api/clips/${clip.id}/thumbnail${frameAt}` }) });
    if (segment) loopSegment(media, clip);
  } else {
    Object.assign(media, { src: `/api/clips/${clip.id}/thumbnail`, loading: "lazy", alt: clip.name });
    // a clip that cannot be thumbnailed (the server says why) shows a placeholder, not a broken image
    media.addEventListener("error", () => { element.classList.add("no-thumbnail"); media.alt = `${clip.name}: no preview`; });
  }
  element.tabIndex = 0; // keyboard: Tab to a card, Enter or Space to use it
  element.setAttribute("role", "button");
  element.addEventListener("keydown", (event) => {
    if (event.target === element && (event.key === "Enter" || event.key === " ")) { event.preventDefault(); element.click(); }
  });
  const caption = document.createElement("div");
  caption.className = "caption";
  caption.title = clip.name;
  caption.innerHTML = score === null ? "" : `<span class="score" title="cosine; percentile among all pairs of this collection">${score.toFixed(3)}${percentile === null ? "" : ` · top ${Math.max(0.1, 100 - percentile).toFixed(1)}%`}</span> `;
  if (segment) {
    const span = document.createElement("span");
    span.className = "span";
    span.textContent = `${clock(clip.start)}–${clock(clip.end)} `;
    caption.append(span);
  }
  caption.append(document.createTextNode(clip.name));
  element.append(media, caption);
  return element;
}

function resultActions(element, hit) {
  // what a result can do: become the query, join it as an example, or be ruled out
  const bar = document.createElement("div");
  bar.className = "actions";
  const button = (label, title, action) => {
    const b = document.createElement("button");
    b.type = "button"; b.textContent = label; b.title = title;
    b.addEventListener("click", (event) => { event.stopPropagation(); action(); });
    bar.append(b);
  };
  const ref = isSegment(hit) && hit.window !== null && hit.window !== undefined
    ? { id: hit.id, segment: [hit.start, hit.end] } : { id: hit.id };
  const label = isSegment(hit) ? `${hit.name} ${clock(hit.start)}–${clock(hit.end)}` : hit.name;
  button(isSegment(hit) ? "Search with this segment" : "Search with this", "make this result the query",
         () => setQuery(ref, label));
  button("More like this", "add it as another example of what you want", () => { state.more.push(ref); refine(); });
  button("Not like this", "rule out motion like it", () => { state.not.push(ref); refine(); });
  element.append(bar);
}

function refine() {
  $("examples").textContent = state.more.length || state.not.length
    ? `${1 + state.more.length} example(s)${state.not.length ? `, ${state.not.length} ruled out` : ""}` : "";
  $("clear-examples").hidden = !(state.more.length || state.not.length);
  search({ scroll: false });
}

async function drawTimeline(element, hit) {
  // the score of every window along the video, the found segment marked: where else it matches
  const q = state.query.id !== undefined ? `a=${state.query.id}` + (state.query.segment ? `&start=${state.query.segment[0]}&end=${state.query.segment[1]}` : "")
    : `upload=${state.query.upload}`;
  const data = await api(`/api/timeline?${q}&b=${hit.id}&motion=${Number($("motion").value)}`);
  const canvas = document.createElement("canvas");
  canvas.className = "timeline";
  canvas.width = 240; canvas.height = 28;
  canvas.title = "score along the video (orange: this result); click to play from there";
  const context = canvas.getContext("2d");
  const duration = Math.max(data.duration_seconds, ...data.windows.map((w) => w.end), 1e-6);
  const scores = data.windows.map((w) => w.score);
  const low = Math.min(...scores), high = Math.max(...scores, low + 1e-6);
  context.fillStyle = "#eee"; context.fillRect(0, 0, canvas.width, canvas.height);
  context.fillStyle = "rgba(224,138,0,.35)";
  context.fillRect((hit.start / duration) * canvas.width, 0, ((hit.end - hit.start) / duration) * canvas.width, canvas.height);
  context.strokeStyle = "#2c6ecb"; context.beginPath();
  data.windows.forEach((w, i) => {
    const x = (((w.start + w.end) / 2) / duration) * canvas.width;
    const y = canvas.height - 2 - ((w.score - low) / (high - low)) * (canvas.height - 4);
    if (i === 0) context.moveTo(x, y); else context.lineTo(x, y);
  });
  context.stroke();
  canvas.dataset.duration = duration;
  canvas.addEventListener("click", (event) => {
    // the canvas is drawn 240 px wide but laid out by CSS: map the click through its real box
    event.stopPropagation();
    const box = canvas.getBoundingClientRect();
    const seconds = Math.min(Math.max((event.clientX - box.left) / box.width, 0), 1) * duration;
    const video = element.querySelector("video");
    if (video) { video.loop = true; video.currentTime = seconds; video.play().catch(() => {}); }
    canvas.dataset.clicked = seconds.toFixed(2);
  });
  element.insertBefore(canvas, element.querySelector(".caption"));
}

const PAGE = 120;

async function loadClips(append = false) {
  const filter = $("filter").value;
  const offset = append ? $("clips").children.length : 0;
  const data = await api(`/api/clips?limit=${PAGE}&offset=${offset}&q=${encodeURIComponent(filter)}`);
  const cards = data.clips.map((clip) => {
    const element = card(clip);
    element.addEventListener("click", () => setQuery({ id: clip.id }, clip.name));
    if (state.query && state.query.id === clip.id) element.classList.add("selected");
    return element;
  });
  if (append) $("clips").append(...cards); else $("clips").replaceChildren(...cards);
  const shown = $("clips").children.length;
  $("more").textContent = data.total === 0 ? (filter ? `No clip matches "${filter}".` : "The index is empty.")
    : `${shown} of ${data.total} shown`;
  $("more-clips").hidden = shown >= data.total;
}

function setQuery(query, label) {
  state.query = query;
  state.queryLabel = label;
  state.k = 12;
  state.more = []; state.not = [];
  $("examples").textContent = ""; $("clear-examples").hidden = true;
  document.querySelectorAll("#clips .card").forEach((el) =>
    el.classList.toggle("selected", query.id !== undefined && !query.segment && Number(el.dataset.id) === query.id));
  search();
}

async function search({ scroll = true } = {}) {
  if (!state.query) return;
  const motion = Number($("motion").value);
  const searchId = ++state.searchId;
  $("query").textContent = `Query: ${state.queryLabel} (motion weight ${motion.toFixed(2)})`;
  const preview = state.query.id !== undefined
    ? { id: state.query.id, name: state.queryLabel, ...(state.query.segment ? { start: state.query.segment[0], end: state.query.segment[1] } : {}) }
    : { id: null, name: state.queryLabel, upload: state.query.upload };
  $("query-preview").replaceChildren(card(preview, { video: true }));
  const filter = $("filter").value.trim();
  const body = { query: state.query, more: state.more, not: state.not, k: state.k, motion,
                 ...(filter ? { where: { contains: filter } } : {}) };
  const data = await api("/api/search", { method: "POST", headers: { "Content-Type": "application/json" },
                                          body: JSON.stringify(body) });
  if (searchId !== state.searchId) return; // a newer search is on its way
  state.results = data.results;
  // a new ranking: the explanation of an earlier pair no longer describes anything on screen
  $("explain").hidden = true;
  $("explain-bars").replaceChildren();
  $("more-results").hidden = data.results.length < state.k;
  const only = filter ? `Only results whose path contains "${filter}".` : "";
  $("results-note").textContent = data.results.length ? only
    : (filter ? `No other clip's path contains "${filter}": a query is left out of its own results.`
              : "Nothing else matched: a query's own video is left out of its results.");
  $("results").replaceChildren(...data.results.map((hit) => {
    const element = card(hit, { video: true, score: hit.score, percentile: hit.percentile });
    element.addEventListener("click", () => explain(hit));
    resultActions(element, hit);
    if (data.segments) drawTimeline(element, hit).catch((error) => {
      const note = document.createElement("div"); // said on the card, not swallowed
      note.className = "timeline-error"; note.textContent = `no timeline: ${error.message || error}`;
      element.insertBefore(note, element.querySelector(".caption"));
    });
    return element;
  }));
  $("results").dataset.ranking = data.results.map((hit) => `${hit.id}${isSegment(hit) ? `@${hit.start}` : ""}`).join(",");
  const top = $("results-panel").getBoundingClientRect().top;
  if (scroll && (top < 0 || top > window.innerHeight * 0.6)) $("results-panel").scrollIntoView({ block: "start" });
}

function heat(v) { // 0..1 -> transparent blue .. opaque red: where the features change over time
  return `rgba(${Math.round(255 * v)}, ${Math.round(60 * v)}, ${Math.round(255 * (1 - v))}, ${0.15 + 0.6 * v})`;
}

async function drawMap(canvas, map, frameUrl) {
  const context = canvas.getContext("2d");
  context.clearRect(0, 0, canvas.width, canvas.height);
  if (frameUrl) { // the clip's frame underneath, so the map says where in the picture
    const image = new Image();
    image.src = frameUrl;
    try { await image.decode(); context.drawImage(image, 0, 0, canvas.width, canvas.height); } catch (_) { /* no frame */ }
  }
  if (!map) return;
  const rows = map.length, columns = map[0].length;
  const peak = Math.max(...map.flat(), 1e-9);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < columns; c++) {
      const x0 = Math.floor((c * canvas.width) / columns), x1 = Math.floor(((c + 1) * canvas.width) / columns);
      const y0 = Math.floor((r * canvas.height) / rows), y1 = Math.floor(((r + 1) * canvas.height) / rows);
      context.fillStyle = heat(map[r][c] / peak); // cells meet exactly: translucent overlaps would draw a grid
      context.fillRect(x0, y0, x1 - x0, y1 - y0);
    }
  }
}

async function explain(hit) {
  const q = state.query.id !== undefined ? `a=${state.query.id}` + (state.query.segment ? `&start=${state.query.segment[0]}&end=${state.query.segment[1]}` : "")
    : `upload=${state.query.upload}`;
  const window_ = isSegment(hit) && hit.window !== null && hit.window !== undefined ? `&window=${hit.window}` : "";
  const data = await api(`/api/explain?${q}&b=${hit.id}${window_}&motion=${Number($("motion").value)}`);
  const names = { 1: "M(1) appearance", 2: "M(2) spread of change", 3: "M(3) asymmetry", 4: "M(4) tails",
                  flow: "token flow (direction)" };
  const what = data.segment ? `${hit.name} ${clock(data.segment[0])}–${clock(data.segment[1])}` : hit.name;
  $("explain-title").textContent = `Why ${state.queryLabel} and ${what} match (${data.score.toFixed(3)})`;
  document.querySelectorAll("#results .card").forEach((el) =>
    el.classList.toggle("explained", Number(el.dataset.id) === hit.id && (!isSegment(hit) || Number(el.dataset.start) === hit.start)));
  $("explain-bars").replaceChildren(...Object.entries(data.per_part).map(([order, value]) => {
    const row = document.createElement("div");
    row.className = "barrow";
    row.innerHTML = `<span style="width:11rem">${names[order] || order}</span>` +
      `<span class="fill" style="width:${Math.max(0, value) * 12}rem"></span><span>${value.toFixed(3)}</span>`;
    return row;
  }));
  const frameAt = isSegment(hit) ? `?t=${((hit.start + hit.end) / 2).toFixed(1)}` : "";
  await Promise.all([
    drawMap($("map-query"), data.maps.query, state.query.id !== undefined ? `/api/clips/${state.query.id}/thumbnail` : null),
    drawMap($("map-candidate"), data.maps.candidate, `/api/clips/${hit.id}/thumbnail${frameAt}`),
  ]);
  $("explain-path").textContent = hit.path || "";
  $("open-video").href = `/api/clips/${hit.id}/video`;
  $("copy-path").onclick = () => navigator.clipboard && navigator.clipboard.writeText(hit.path || "");
  $("explain").hidden = false;
  $("explain").scrollIntoView({ block: "nearest" });
}

function upload(file) {
  const form = new FormData();
  form.append("file", file);
  const request = new XMLHttpRequest();
  const status = $("upload-status");
  request.upload.onprogress = (event) => {
    if (event.lengthComputable) status.textContent = `Uploading ${file.name}: ${Math.round((100 * event.loaded) / event.total)}%`;
  };
  request.upload.onload = () => { status.textContent = `Embedding ${file.name}…`; };
  request.onload = () => {
    const body = JSON.parse(request.responseText || "{}");
    if (request.status !== 200) { status.textContent = `Upload failed: ${body.detail || request.statusText}`; return; }
    status.textContent = `Query: ${body.name}`;
    setQuery({ upload: body.token }, `${body.name} (uploaded)`);
  };
  request.onerror = () => { status.textContent = "Upload failed: the server did not answer"; };
  request.open("POST", "/api/uploads");
  request.send(form);
}

function showKnob() {
  // above the point where rankings stop moving the slider changes nothing: say so on the slider itself
  const acts = state.actsUpTo, slider = $("motion");
  slider.style.setProperty("--acts", `${acts * 100}%`);
  slider.classList.toggle("saturates", acts < 1);
  $("motion-note").textContent = acts < 1 ? `above ${acts.toFixed(2)} the ranking no longer changes` : "";
  const value = Number(slider.value);
  $("motion-value").textContent = value.toFixed(2) + (value > acts ? " (= motion only)" : "");
}

$("filter").addEventListener("input", () => {
  clearTimeout(state.timer);
  state.timer = setTimeout(() => { loadClips(); search({ scroll: false }); }, 200);
});
$("motion").addEventListener("input", () => { showKnob(); search(); });
$("upload").addEventListener("change", (event) => { if (event.target.files[0]) upload(event.target.files[0]); });
$("upload-button").addEventListener("keydown", (event) => {
  if (event.key === "Enter" || event.key === " ") { event.preventDefault(); $("upload").click(); }
});
$("more-clips").addEventListener("click", () => loadClips(true));
$("more-results").addEventListener("click", () => { state.k += 12; search({ scroll: false }); });
$("clear-examples").addEventListener("click", () => { state.more = []; state.not = []; refine(); });
$("show-map").addEventListener("click", () => window.motionMap.toggle());

api("/api/info").then((info) => {
  $("info").textContent = `${info.clips} clips · ${info.features.backbone.name}` +
    (info.window_rows ? ` · ${info.window_rows} windows of long videos (${info.windows.length} s)` : "");
  state.actsUpTo = info.motion_acts_up_to ?? 1;
  showKnob();
});
loadClips();
