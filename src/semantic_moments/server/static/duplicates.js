// Duplicates: copies of one footage (a part of a long video with the span it covers) or pairs of clips
// that move alike, each pair labelled with its kind; a click on a clip searches with it (its span).
"use strict";

window.duplicatesView = (() => {
  let shown = false;
  const KIND = { copy: "copy", part: "part of", "same motion": "same motion" };

  function side(clip) {
    const element = document.createElement("button");
    element.type = "button";
    element.className = "pair-side";
    const at = clip.start !== undefined ? `?t=${((clip.start + clip.end) / 2).toFixed(1)}` : "";
    const image = document.createElement("img");
    Object.assign(image, { src: `/api/clips/${clip.id}/thumbnail${at}`, alt: "", loading: "lazy" });
    const name = document.createElement("span");
    name.textContent = clip.start !== undefined ? `${clip.name} ${clock(clip.start)}–${clock(clip.end)}` : clip.name;
    element.append(image, name);
    element.addEventListener("click", () => setQuery(
      clip.start !== undefined ? { id: clip.id, segment: [clip.start, clip.end] } : { id: clip.id },
      clip.start !== undefined ? `${clip.name} ${clock(clip.start)}–${clock(clip.end)}` : clip.name));
    return element;
  }

  async function load() {
    const kind = document.querySelector("input[name=duplicates-kind]:checked").value;
    const status = document.getElementById("duplicates-status"), list = document.getElementById("duplicates");
    status.textContent = kind === "copies" ? "Checking candidates frame by frame…" : "Finding pairs…";
    list.replaceChildren();
    try {
      const data = await api(`/api/duplicates?kind=${kind}`);
      status.textContent = data.total === 0 ? "No pairs."
        : `${data.total} pair(s)${data.total > data.pairs.length ? `, the best ${data.pairs.length} shown` : ""}` +
          (data.unread ? `; ${data.unread} file(s) could not be read` : "") + ". Click a clip to search with it.";
      for (const pair of data.pairs) {
        const row = document.createElement("li");
        row.className = "pair";
        row.dataset.kind = pair.kind;
        const label = document.createElement("span");
        label.className = `pair-kind kind-${pair.kind.replace(" ", "-")}`;
        label.textContent = KIND[pair.kind] || pair.kind;
        label.title = pair.kind === "same motion" ? "motion cosine" : "frames' agreement under the best alignment";
        const score = document.createElement("span");
        score.className = "score";
        score.textContent = pair.score.toFixed(3);
        // a part: the clip (b) is a part of the long video (a), shown at the span it covers
        row.append(label, score, ...(pair.kind === "part" ? [side(pair.b), side(pair.a)] : [side(pair.a), side(pair.b)]));
        list.append(row);
      }
    } catch (error) {
      status.textContent = `Could not find duplicates: ${error.message}`;
    }
  }

  function toggle() {
    shown = !shown;
    document.getElementById("duplicates-panel").hidden = !shown;
    document.getElementById("show-duplicates").textContent = shown ? "Hide duplicates" : "Duplicates";
    if (shown) load();
  }

  document.getElementById("show-duplicates").addEventListener("click", toggle);
  document.querySelectorAll("input[name=duplicates-kind]").forEach((input) => input.addEventListener("change", load));
  return { toggle };
})();
