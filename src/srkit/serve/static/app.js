// srkit serve: the page. Plain JavaScript, no library, no network beyond this server.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { catalogue: [], job: null, zoom: 1, cx: 0.5, cy: 0.5, size: [1, 1], sources: [] };

function showMessage(text) { $("message").textContent = text || ""; }

async function fetchJSON(url, options) {
  let response;
  try {
    response = await fetch(url, options);
  } catch (error) {
    throw new Error("the server does not answer (is srkit serve still running?)");
  }
  let body = null;
  try { body = await response.json(); } catch (error) { body = null; }
  if (!response.ok) {
    throw new Error((body && body.error) || `the server answered ${response.status}`);
  }
  return body;
}

// ------------------------------------------------------------------ the form

function mode() { return document.querySelector("input[name=mode]:checked").value; }

function renderModels() {
  const scale = Number($("scale").value);
  const box = $("models");
  const checked = new Set([...box.querySelectorAll("input:checked")].map((i) => i.value));
  box.textContent = "";
  const models = state.catalogue.filter((m) => m.scale === scale);
  if (!models.some((m) => checked.has(m.name))) checked.clear();
  const purposes = [...new Set(models.map((m) => m.purpose))];
  for (const purpose of purposes) {
    const head = document.createElement("div");
    head.className = "purpose";
    head.textContent = purpose;
    box.appendChild(head);
    for (const m of models.filter((x) => x.purpose === purpose)) {
      const label = document.createElement("label");
      const input = document.createElement("input");
      input.type = "checkbox";
      input.name = "model";
      input.value = m.name;
      input.checked = checked.size ? checked.has(m.name) : m.default;
      label.appendChild(input);
      label.append(" " + m.name + " ");
      const note = document.createElement("small");
      const bits = [];
      if (m.params) bits.push(`${(m.params / 1e6).toFixed(2)}M`);
      if (m.set5_psnr) bits.push(`Set5 ${m.set5_psnr.toFixed(2)} dB`);
      if (m.input_size) bits.push(`${m.input_size[1]}x${m.input_size[0]} only`);
      note.textContent = bits.join(", ");
      label.appendChild(note);
      box.appendChild(label);
    }
  }
}

async function loadCatalogue() {
  const body = await fetchJSON("/api/models");
  state.catalogue = body.models;
  const scales = [...new Set(body.models.map((m) => m.scale))].sort();
  for (const s of scales) {
    const option = document.createElement("option");
    option.value = s;
    option.textContent = `x${s}`;
    if (s === 4) option.selected = true;
    $("scale").appendChild(option);
  }
  const l = body.limits;
  $("limits").textContent =
    `at most ${l.max_pixels.toLocaleString()} pixels per image, ` +
    `${(l.max_upload_bytes / 1048576).toFixed(0)} MiB per upload`;
  renderModels();
}

function setupDrop(zoneId, inputId) {
  const zone = $(zoneId);
  const input = $(inputId);
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer.files.length) input.files = e.dataTransfer.files;
  });
}

async function submit(event) {
  event.preventDefault();
  showMessage("");
  const image = $("image").files[0];
  if (!image) { showMessage("choose an image to upload"); return; }
  const models = [...document.querySelectorAll("#models input:checked")].map((i) => i.value);
  if (!models.length) { showMessage("pick at least one model"); return; }
  const data = new FormData();
  data.append("image", image);
  if (mode() === "pair") {
    const hr = $("hr").files[0];
    if (!hr) { showMessage("LR + HR mode: upload the HR image too"); return; }
    data.append("hr", hr);
  }
  data.append("mode", mode());
  data.append("scale", $("scale").value);
  data.append("models", models.join(","));
  $("run").disabled = true;
  $("progress").classList.remove("hidden");
  $("progress").value = 0;
  $("status").textContent = "uploading";
  try {
    const job = await fetchJSON("/api/jobs", { method: "POST", body: data });
    await follow(job.id);
  } catch (error) {
    showMessage(error.message);
    $("status").textContent = "";
  } finally {
    $("run").disabled = false;
    $("progress").classList.add("hidden");
  }
}

async function follow(id) {
  for (;;) {
    const job = await fetchJSON(`/api/jobs/${id}`);
    $("progress").value = job.progress;
    if (job.state === "queued") {
      $("status").textContent = job.position ? `queued: ${job.position} job(s) ahead` : "queued";
    } else if (job.state === "running") {
      $("status").textContent = `running ${job.message}: ${Math.round(job.progress * 100)}%`;
    } else if (job.state === "error") {
      throw new Error(job.error);
    } else {
      const seconds = job.finished - job.started;
      $("status").textContent = `done in ${seconds.toFixed(1)} s`;
      showResults(job);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

// ------------------------------------------------------------------ results

function card(title, source, lines, error) {
  const div = document.createElement("div");
  div.className = "card";
  div.dataset.name = title;
  const h = document.createElement("h3");
  h.textContent = title;
  div.appendChild(h);
  if (source) {
    const view = document.createElement("div");
    view.className = "view";
    const layer = document.createElement("div");
    layer.className = "layer";
    const img = document.createElement("img");
    img.src = source.url;
    img.alt = title;
    if (source.nearest) img.className = "nearest";
    layer.appendChild(img);
    view.appendChild(layer);
    div.appendChild(view);
    attachView(view);
  }
  for (const [cls, text, data] of lines) {
    const p = document.createElement(cls === "download" ? "a" : "p");
    p.className = cls;
    if (cls === "download") {
      p.href = data.href;
      p.download = data.name;
      p.textContent = text;
    } else {
      p.textContent = text;
      Object.assign(p.dataset, data || {});
    }
    div.appendChild(p);
  }
  if (error) {
    const p = document.createElement("p");
    p.className = "error";
    p.textContent = error;
    div.appendChild(p);
  }
  return div;
}

function showResults(job) {
  const box = $("results");
  box.textContent = "";
  const scale = job.scale;
  const input = job.inputs.input;
  state.size = [input.width * scale, input.height * scale];
  state.sources = [{ name: `input (LR ${input.width}x${input.height}, nearest)`, url: input.url }];
  box.appendChild(card(state.sources[0].name, { url: input.url, nearest: true },
    [["note", `${input.name}`]]));
  for (const r of job.results) {
    const lines = [];
    if (r.psnr !== undefined) {
      lines.push(["figures", `PSNR ${r.psnr.toFixed(2)} dB · SSIM ${r.ssim.toFixed(4)}`,
                  { psnr: r.psnr, ssim: r.ssim }]);
    }
    if (!r.error) {
      lines.push(["note", `${r.width}x${r.height}, ${r.tiles} tile(s), ${r.seconds.toFixed(2)} s`]);
      lines.push(["download", "download PNG", { href: `${r.url}?download=1`, name: r.download }]);
      state.sources.push({ name: r.model, url: r.url });
    }
    box.appendChild(card(r.model, r.error ? null : r, lines, r.error));
  }
  if (job.inputs.hr) {
    const hr = job.inputs.hr;
    state.sources.push({ name: "HR", url: hr.url });
    box.appendChild(card("HR", hr, [["note", `${hr.width}x${hr.height}` +
      (job.mode === "degrade" ? " (the LR was made from it)" : "")]]));
  }
  $("results-section").classList.remove("hidden");
  setupCompare();
  state.zoom = 1; state.cx = 0.5; state.cy = 0.5;
  applyViews();
}

function setupCompare() {
  const left = $("left"), right = $("right");
  left.textContent = ""; right.textContent = "";
  state.sources.forEach((s, i) => {
    left.add(new Option(s.name, i));
    right.add(new Option(s.name, i));
  });
  left.value = 0;
  right.value = state.sources.length > 1 ? 1 : 0;
  const update = () => {
    $("compare-left").src = state.sources[left.value].url;
    $("compare-right").src = state.sources[right.value].url;
    $("compare-left").className = Number(left.value) === 0 ? "nearest" : "";
    $("compare-right").className = Number(right.value) === 0 ? "nearest" : "";
    applyViews();
  };
  left.onchange = update;
  right.onchange = update;
  $("split").oninput = applyViews;
  $("compare-section").classList.remove("hidden");
  update();
}

// ------------------------------------------------------------------ synchronized zoom
// One view state for every view: zoom (1 = fit) and the image point at the view's centre,
// in fractions of the output size, so views of different sizes show the same region.

function geometry(view) {
  const [w, h] = state.size;
  const vw = view.clientWidth, vh = view.clientHeight;
  const s = Math.min(vw / w, vh / h) * state.zoom;
  return { w, h, vw, vh, s, tx: vw / 2 - state.cx * w * s, ty: vh / 2 - state.cy * h * s };
}

function applyViews() {
  for (const view of document.querySelectorAll(".view")) {
    const g = geometry(view);
    const layer = view.querySelector(".layer");
    layer.style.width = `${g.w}px`;
    layer.style.height = `${g.h}px`;
    layer.style.transform = `translate(${g.tx}px, ${g.ty}px) scale(${g.s})`;
    view.dataset.zoom = state.zoom.toFixed(4);
    view.classList.toggle("zoomed", state.zoom > 1);
    if (view.id === "compare") {
      const x = (Number($("split").value) / 100) * g.vw;
      $("split-line").style.left = `${x - 1}px`;
      const cut = Math.min(100, Math.max(0, ((x - g.tx) / g.s / g.w) * 100));
      $("compare-right").style.clipPath = `inset(0 0 0 ${cut}%)`;
    }
  }
}

function clampCentre() {
  state.cx = Math.min(1, Math.max(0, state.cx));
  state.cy = Math.min(1, Math.max(0, state.cy));
}

function attachView(view) {
  view.addEventListener("wheel", (e) => {
    e.preventDefault();
    const g = geometry(view);
    const rect = view.getBoundingClientRect();
    const mx = e.clientX - rect.left, my = e.clientY - rect.top;
    const px = (mx - g.tx) / (g.s * g.w), py = (my - g.ty) / (g.s * g.h);
    state.zoom = Math.min(64, Math.max(1, state.zoom * (e.deltaY < 0 ? 1.25 : 0.8)));
    const s = Math.min(g.vw / g.w, g.vh / g.h) * state.zoom;
    state.cx = px - (mx - g.vw / 2) / (s * g.w);
    state.cy = py - (my - g.vh / 2) / (s * g.h);
    clampCentre();
    applyViews();
  }, { passive: false });
  let drag = null;
  view.addEventListener("mousedown", (e) => {
    drag = { x: e.clientX, y: e.clientY };
    view.classList.add("dragging");
  });
  window.addEventListener("mousemove", (e) => {
    if (!drag) return;
    const g = geometry(view);
    state.cx -= (e.clientX - drag.x) / (g.s * g.w);
    state.cy -= (e.clientY - drag.y) / (g.s * g.h);
    drag = { x: e.clientX, y: e.clientY };
    clampCentre();
    applyViews();
  });
  window.addEventListener("mouseup", () => { drag = null; view.classList.remove("dragging"); });
  view.addEventListener("dblclick", () => {
    state.zoom = 1; state.cx = 0.5; state.cy = 0.5;
    applyViews();
  });
}

// ------------------------------------------------------------------ start

window.addEventListener("DOMContentLoaded", () => {
  for (const radio of document.querySelectorAll("input[name=mode]")) {
    radio.addEventListener("change", () => {
      $("drop-hr").classList.toggle("hidden", mode() !== "pair");
      $("image-label").textContent = mode() === "pair" ? "LR image" :
        mode() === "degrade" ? "HR image (its LR is made here)" :
        "Drop an image here or click to choose";
    });
  }
  $("scale").addEventListener("change", renderModels);
  $("form").addEventListener("submit", submit);
  setupDrop("drop-image", "image");
  setupDrop("drop-hr", "hr");
  attachView($("compare"));
  window.addEventListener("resize", applyViews);
  loadCatalogue().catch((error) => showMessage(error.message));
});
