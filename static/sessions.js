// The transcript viewer: "Next error" and the n / p keys step through the
// lines with an error or a finding. A line not loaded yet is fetched by its
// offset (the page of lines starting just before it), so a 50 MB transcript
// never has to be scrolled through to reach its last error.
(() => {
  const btn = document.getElementById("next-error");
  const box = document.getElementById("transcript");
  if (!btn || !box) return;
  const marks = JSON.parse(btn.dataset.marks || "[]");
  const url = box.dataset.turnsUrl;
  let cur = -1;
  async function go(i) {
    if (!marks.length) return;
    cur = (i + marks.length) % marks.length;
    const line = marks[cur];
    let el = document.getElementById("line-" + line);
    if (!el) {
      const resp = await fetch(url + "?offset=" + Math.max(0, line - 2), { headers: { "HX-Request": "true" } });
      box.innerHTML = await resp.text();
      if (window.htmx) window.htmx.process(box);
      el = document.getElementById("line-" + line);
    }
    if (!el) return;
    document.querySelectorAll(".turn.current").forEach((e) => e.classList.remove("current"));
    el.classList.add("current");
    for (let p = el.parentElement; p; p = p.parentElement) if (p.tagName === "DETAILS") p.open = true;
    el.scrollIntoView({ block: "center" });
    btn.textContent = `Next error (${cur + 1}/${marks.length})`;
    btn.dataset.current = String(line);
  }
  btn.addEventListener("click", () => go(cur + 1));
  document.addEventListener("keydown", (e) => {
    if (e.metaKey || e.ctrlKey || e.altKey || (e.target.closest && e.target.closest("input, textarea, select"))) return;
    if (e.key === "n") go(cur + 1);
    else if (e.key === "p") go(cur - 1);
  });
})();
