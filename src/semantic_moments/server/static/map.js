// The collection as a map: every clip a dot placed by its motion (UMAP or PCA of the motion vectors),
// coloured by motion group; hover shows the clip, click searches with it. One canvas, whatever the count.
"use strict";

window.motionMap = (() => {
  const COLOURS = ["#2c6ecb", "#e08a00", "#2e9e5b", "#c23b3b", "#7b4fc9", "#8c6d1f", "#d45fa8", "#4a4a4a",
                   "#1fa3a3", "#9aa82a"];
  let points = null, shown = false;
  const canvas = () => document.getElementById("map");
  const tip = () => document.getElementById("map-tip");

  function place(point, box) { return [6 + point.x * (box.width - 12), 6 + (1 - point.y) * (box.height - 12)]; }

  function draw() {
    const element = canvas(), context = element.getContext("2d");
    const ratio = window.devicePixelRatio || 1, box = element.getBoundingClientRect();
    element.width = Math.round(box.width * ratio); element.height = Math.round(box.height * ratio);
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.clearRect(0, 0, box.width, box.height);
    const radius = points.length > 2000 ? 1.8 : 3.5;
    for (const point of points) {
      const [x, y] = place(point, box);
      context.fillStyle = point.group < 0 ? "#999" : COLOURS[point.group % COLOURS.length];
      context.fillRect(x - radius, y - radius, 2 * radius, 2 * radius);
    }
  }

  function nearest(event) {
    const box = canvas().getBoundingClientRect();
    const mx = event.clientX - box.left, my = event.clientY - box.top;
    let best = null, distance = 64; // within 8 px
    for (const point of points) {
      const [x, y] = place(point, box);
      const d = (x - mx) ** 2 + (y - my) ** 2;
      if (d < distance) { best = point; distance = d; }
    }
    return best;
  }

  async function load() {
    document.getElementById("map-status").textContent = "Laying out the collection…";
    const data = await fetch("/api/map").then((response) => response.json());
    points = data.points;
    document.getElementById("map-status").textContent =
      `${points.length} clips, ${data.groups} motion groups (${data.method.toUpperCase()}, ${data.seconds} s). ` +
      "Hover a dot to see the clip, click it to search with it.";
    canvas().dataset.points = points.length;
    draw();
  }

  function toggle() {
    shown = !shown;
    document.getElementById("map-panel").hidden = !shown;
    document.getElementById("show-map").textContent = shown ? "Hide the map" : "Map";
    if (shown && !points) load(); else if (shown) draw();
  }

  document.addEventListener("DOMContentLoaded", () => {});
  window.addEventListener("resize", () => { if (shown && points) draw(); });
  document.getElementById("map").addEventListener("mousemove", (event) => {
    if (!points) return;
    const point = nearest(event), box = tip();
    if (!point) { box.hidden = true; return; }
    box.hidden = false;
    box.style.left = `${event.offsetX + 14}px`; box.style.top = `${event.offsetY + 14}px`;
    box.innerHTML = `<img src="/api/clips/${point.id}/thumbnail" alt=""><div></div>`;
    box.querySelector("div").textContent = point.name;
    box.dataset.id = point.id;
  });
  document.getElementById("map").addEventListener("mouseleave", () => { tip().hidden = true; });
  document.getElementById("map").addEventListener("click", (event) => {
    if (!points) return;
    const point = nearest(event);
    if (point) setQuery({ id: point.id }, point.name);
  });
  return { toggle };
})();
