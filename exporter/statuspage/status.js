// The status page's table: drawn from status.json, filtered, sorted and paged here, so that
// the server sends the fleet once and a large fleet still renders a page of rows at a time.
// Every string from the API goes in with textContent: never parsed as markup.
"use strict";

(function () {
  const PAGE_ROWS = 100;
  const REFRESH_MS = 30000;
  const RANK = { trouble: 0, warning: 1, pending: 2, ok: 3 };
  const FILTERS = ["health", "account", "region", "engine"];
  const view = { rows: [], sortKey: "health", descending: false, page: 0, generatedAt: 0 };

  const $ = (id) => document.getElementById(id);

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "";
    let left = Math.max(0, Math.round(seconds));
    const parts = [];
    for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]]) {
      if (left >= size || (unit === "s" && parts.length === 0)) {
        parts.push(Math.floor(left / size) + unit);
        left %= size;
      }
    }
    return parts.slice(0, 2).join("");
  }

  function isoTime(epoch) {
    return epoch === null || epoch === undefined ? "" : new Date(epoch * 1000).toISOString();
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function sortValue(row, key) {
    switch (key) {
      case "health": return RANK[row.health];
      case "full_age": return row.full ? row.full.age_seconds : null;
      case "incremental_age": return row.incremental ? row.incremental.age_seconds : null;
      case "collection": return row.collection.state;
      case "recovery_lag": return row.recovery_lag_seconds;
      case "copy_age": return row.cross_region_copy_age_seconds;
      default: return row[key];
    }
  }

  // Code-point order: the same on every browser and locale.
  const byText = (x, y) => (x < y ? -1 : x > y ? 1 : 0);

  function compare(a, b) {
    const x = sortValue(a, view.sortKey);
    const y = sortValue(b, view.sortKey);
    if (x === y || (x == null && y == null)) {
      return RANK[a.health] - RANK[b.health] || byText(a.instance_id, b.instance_id);
    }
    if (x == null) return 1; // unknown values last, whichever the direction
    if (y == null) return -1;
    const order = typeof x === "number" ? x - y : byText(String(x), String(y));
    return view.descending ? -order : order;
  }

  function matches(row, filters, words) {
    for (const name of FILTERS) {
      // An option's value is "=" and the value it selects ("=" alone: the empty one); "": all.
      if (filters[name] && row[name] !== filters[name].slice(1)) return false;
    }
    if (!words.length) return true;
    const haystack = [
      row.instance_id, row.description, row.account, row.region, row.engine,
      row.collection.error_code, row.collection.error_message,
      ...row.problems.map((p) => p.text),
    ].join(" ").toLowerCase();
    return words.every((word) => haystack.includes(word));
  }

  function ageCell(newest, expected, staleAfter) {
    const cell = element("td", "num");
    if (!newest) {
      cell.textContent = "none";
      return cell;
    }
    const age = element("span", newest.age_seconds > staleAfter ? "late" : "", duration(newest.age_seconds) + " ago");
    age.title = "ended " + isoTime(newest.end);
    cell.append(age);
    if (expected) cell.append(element("div", "sub", "policy: every " + duration(expected)));
    return cell;
  }

  function drawRow(row) {
    const tr = element("tr", row.health);
    tr.dataset.instance = row.instance_id;
    tr.dataset.health = row.health;
    const state = element("td", "state");
    state.append(element("span", "badge " + row.health, row.health.toUpperCase()));
    if (row.problems.length) {
      const list = element("ul", "problems");
      for (const problem of row.problems) {
        const item = element("li", problem.severity, problem.text);
        item.dataset.code = problem.code;
        list.append(item);
      }
      state.append(list);
    }
    const instance = element("td");
    instance.append(element("div", "id", row.instance_id));
    if (row.description) instance.append(element("div", "description", row.description));
    const collection = element("td", "collection");
    collection.append(element("span", row.collection.state === "failing" ? "late" : "", row.collection.state));
    // The message starts with the action and the code; the code alone when there is none.
    const error = row.collection.error_message || row.collection.error_code;
    if (error) collection.append(element("div", "error", error));
    const failed = row.failed_sets === null ? "" : String(row.failed_sets) + (row.lookback_complete ? "" : " (partial)");
    const wait = row.next_poll === null ? null : row.next_poll - view.generatedAt;
    const nextPoll = wait === null ? "" : wait > 0 ? "in " + duration(wait) : "polling";
    tr.append(
      state,
      instance,
      element("td", "nowrap", row.account),
      element("td", "nowrap", row.region),
      element("td", "nowrap", row.engine),
      ageCell(row.full, row.expected_interval_seconds, row.stale_after_seconds),
      ageCell(row.incremental, null, Infinity),
      element("td", row.last_status === "failed" ? "late" : "", row.last_status || ""),
      element("td", "num", failed),
      collection,
      element("td", "num", nextPoll),
      element("td", "num", duration(row.recovery_lag_seconds)),
      element("td", "num", duration(row.cross_region_copy_age_seconds)),
    );
    return tr;
  }

  function draw() {
    const filters = {};
    for (const name of FILTERS) filters[name] = $("filter-" + name).value;
    const words = $("search").value.toLowerCase().split(/\s+/).filter(Boolean);
    const shown = view.rows.filter((row) => matches(row, filters, words)).sort(compare);
    const pages = Math.max(1, Math.ceil(shown.length / PAGE_ROWS));
    view.page = Math.min(view.page, pages - 1);
    const first = view.page * PAGE_ROWS;
    const body = $("rows");
    body.replaceChildren(...shown.slice(first, first + PAGE_ROWS).map(drawRow));
    $("page-info").textContent = shown.length
      ? `rows ${first + 1}-${Math.min(first + PAGE_ROWS, shown.length)} of ${shown.length} (page ${view.page + 1} of ${pages})`
      : "no instance matches";
    $("prev").disabled = view.page === 0;
    $("next").disabled = view.page >= pages - 1;
    for (const th of document.querySelectorAll("th[data-sort]")) {
      th.removeAttribute("aria-sort");
      if (th.dataset.sort === view.sortKey) th.setAttribute("aria-sort", view.descending ? "descending" : "ascending");
    }
  }

  function fillFilter(name, values) {
    const select = $("filter-" + name);
    const chosen = select.value;
    select.replaceChildren(element("option", "", "all"));
    select.firstChild.value = "";
    for (const value of values) {
      const option = element("option", "", value || "(none)");
      option.value = "=" + value;
      select.append(option);
    }
    select.value = chosen && values.includes(chosen.slice(1)) ? chosen : "";
  }

  function summarize(doc) {
    const summary = $("summary");
    summary.replaceChildren();
    for (const health of Object.keys(RANK)) {
      summary.append(element("span", "count " + health, `${doc.counts[health] || 0} ${health}`));
    }
    const when = element("span", "sub", `of ${doc.instances.length} instances, as of ${isoTime(doc.generated_at)}`);
    summary.append(when);
    if (!doc.ready) summary.append(element("span", "sub", " (first polls still running)"));
    for (const entry of doc.discovery.filter((d) => d.state === "failing")) {
      const text = `discovery ${entry.account}/${entry.region} failing (${entry.error_code}): its instances may be missing`;
      summary.append(element("div", "late", text));
    }
  }

  async function load() {
    try {
      const response = await fetch("status.json", { cache: "no-store", credentials: "same-origin" });
      if (!response.ok) throw new Error(`status.json: HTTP ${response.status}`);
      const doc = await response.json();
      view.rows = doc.instances;
      view.generatedAt = doc.generated_at;
      for (const name of FILTERS) {
        const values = [...new Set(doc.instances.map((row) => row[name]))];
        values.sort(name === "health" ? (a, b) => RANK[a] - RANK[b] : undefined);
        fillFilter(name, values);
      }
      summarize(doc);
      draw();
      if (!document.body.dataset.loaded) performance.mark("status-drawn"); // bench/status_page.py
      document.body.dataset.loaded = "true";
    } catch (error) {
      $("summary").textContent = "Cannot load status.json: " + error.message;
    }
  }

  function start() {
    for (const th of document.querySelectorAll("th[data-sort]")) {
      th.addEventListener("click", () => {
        const key = th.dataset.sort;
        view.descending = view.sortKey === key ? !view.descending : false;
        view.sortKey = key;
        draw();
      });
    }
    const redraw = () => { view.page = 0; draw(); };
    $("search").addEventListener("input", redraw);
    for (const name of FILTERS) $("filter-" + name).addEventListener("change", redraw);
    $("filters").addEventListener("submit", (event) => event.preventDefault());
    $("prev").addEventListener("click", () => { view.page -= 1; draw(); });
    $("next").addEventListener("click", () => { view.page += 1; draw(); });
    load();
    setInterval(load, REFRESH_MS);
  }

  start();
})();
