// The contacts dashboard. The page's query string is the list API's query string: every
// control is named after the API parameter it sets, so a view can be bookmarked, shared and
// replayed against /crm/appusers as it is. No framework, nothing loaded from elsewhere.
"use strict";

(() => {
  const root = document.getElementById("dashboard");
  if (!root) return;

  const API_URL = root.dataset.apiUrl;
  const PAGE_SIZE_DEFAULT = root.dataset.pageSizeDefault;
  const TYPING_DELAY_MS = 150; // debounce for search and other typed values
  // Parameters that are not filters: "Clear filters" keeps them.
  const NON_FILTER_PARAMS = new Set(["search", "ordering", "page", "page_size", "count"]);
  const COLUMNS = 8;
  const LOCALE = document.documentElement.lang || "en";

  const searchForm = document.getElementById("search-form");
  const filterForm = document.getElementById("filters");
  const table = document.getElementById("results-table");
  const caption = document.getElementById("results-caption");
  const tbody = document.getElementById("rows");
  const status = document.getElementById("result-status");
  const generalError = document.getElementById("general-error");
  const pageRange = document.getElementById("page-range");
  const pageList = document.getElementById("page-list");
  const prevLink = document.getElementById("page-prev");
  const nextLink = document.getElementById("page-next");
  const pager = prevLink.closest("nav");
  const rowTemplate = document.getElementById("row-template").content.firstElementChild;
  const controls = [...root.querySelectorAll("[data-param]")];
  const sortHeaders = [...root.querySelectorAll("th[data-sort]")];

  const countryNames = new Map(
    [...root.querySelectorAll('[data-param="address__country"] option')]
      .filter((option) => option.value)
      .map((option) => [option.value, option.textContent.replace(/\s*\(\w+\)$/, "")]),
  );
  const integer = new Intl.NumberFormat(LOCALE);
  const compact = new Intl.NumberFormat(LOCALE, {
    notation: "compact",
    compactDisplay: "long",
    maximumFractionDigits: 1,
  });
  const rounded = new Intl.NumberFormat(LOCALE, { maximumSignificantDigits: 2 });
  // An estimate, worded as one: "about 1.2 million", "about 130,000".
  const approximately = (n) => `about ${n >= 1e6 ? compact.format(n) : rounded.format(n)}`;
  const dateFormat = new Intl.DateTimeFormat(LOCALE, { dateStyle: "medium", timeZone: "UTC" });

  let state = readLocation(); // URLSearchParams: the view, as in the address bar
  let controller = null; // AbortController of the request in flight
  let typingTimer = 0;
  let lastTyped = null; // the control of the previous typed edit, to coalesce history
  let pendingFocus = null; // "page", "prev" or "next" after a pager click

  // ---- state <-> address bar ------------------------------------------------------------

  function readLocation() {
    const params = new URLSearchParams(location.search);
    params.delete("cursor"); // the dashboard pages by number
    for (const [name, value] of [...params]) {
      if (value === "") params.delete(name); // the API rejects empty values
    }
    return params;
  }

  function dashboardUrl(params) {
    const query = params.toString();
    return location.pathname + (query ? `?${query}` : "");
  }

  function writeHistory(mode) {
    state.sort();
    const url = dashboardUrl(state);
    if (url === location.pathname + location.search) return;
    if (mode === "replace") history.replaceState(null, "", url);
    else history.pushState(null, "", url);
  }

  function setParam(name, value) {
    if (value === "" || value == null) state.delete(name);
    else state.set(name, value);
  }

  // ---- controls ---------------------------------------------------------------------------

  function paramValue(control) {
    const value = control.value.trim();
    if (!value) return "";
    if (control.name === "page_size" && value === PAGE_SIZE_DEFAULT) return "";
    // A date "to" includes the whole day: the API compares timestamps.
    if ("endOfDay" in control.dataset) return `${value}T23:59:59.999999Z`;
    return value;
  }

  function controlValue(control) {
    const value = state.get(control.name);
    if (value == null) return control.name === "page_size" ? PAGE_SIZE_DEFAULT : "";
    return control.type === "date" ? value.slice(0, 10) : value;
  }

  function syncControls() {
    for (const control of controls) {
      if (control === document.activeElement && "typing" in control.dataset) {
        const current = paramValue(control);
        if (current === (state.get(control.name) ?? "")) continue; // keep the caret as it is
      }
      const value = controlValue(control);
      if (control.tagName === "SELECT" && value && ![...control.options].some((o) => o.value === value)) {
        control.add(new Option(value, value)); // a value from a shared URL that the list lacks
      }
      control.value = value;
    }
    const ordering = (state.get("ordering") || "").split(",")[0];
    for (const th of sortHeaders) {
      const field = th.dataset.sort;
      if (ordering === field) th.setAttribute("aria-sort", "ascending");
      else if (ordering === `-${field}`) th.setAttribute("aria-sort", "descending");
      else th.removeAttribute("aria-sort");
    }
  }

  function applyControl(control, historyMode) {
    const value = paramValue(control);
    if (value === (state.get(control.name) ?? "")) return;
    setParam(control.name, value);
    state.delete("page");
    writeHistory(historyMode);
    load();
  }

  function onTyping(event) {
    const control = event.target;
    if (!("typing" in control.dataset)) return;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(() => {
      // Successive keystrokes in one field make one history entry, not one per letter.
      const mode = lastTyped === control ? "replace" : "push";
      lastTyped = control;
      applyControl(control, mode);
    }, TYPING_DELAY_MS);
  }

  function onChange(event) {
    const control = event.target;
    if (!control.dataset || !("param" in control.dataset)) return;
    if ("typing" in control.dataset) {
      clearTimeout(typingTimer); // committed (blur): apply now
      if (lastTyped === control) return applyControl(control, "replace");
    }
    lastTyped = null;
    applyControl(control, "push");
  }

  root.addEventListener("input", onTyping);
  root.addEventListener("change", onChange);

  searchForm.addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(typingTimer);
    const search = document.getElementById("search");
    applyControl(search, lastTyped === search ? "replace" : "push");
  });
  filterForm.addEventListener("submit", (event) => event.preventDefault());
  filterForm.addEventListener("reset", (event) => {
    event.preventDefault();
    clearTimeout(typingTimer);
    lastTyped = null;
    for (const name of [...state.keys()]) {
      if (!NON_FILTER_PARAMS.has(name)) state.delete(name);
    }
    state.delete("page");
    syncControls();
    writeHistory("push");
    load();
  });

  for (const th of sortHeaders) {
    th.querySelector("button").addEventListener("click", () => {
      const field = th.dataset.sort;
      const current = (state.get("ordering") || "").split(",")[0];
      state.set("ordering", current === field ? `-${field}` : field);
      state.delete("page");
      lastTyped = null;
      syncControls();
      writeHistory("push");
      load();
    });
  }

  pager.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-page]");
    if (!link || !link.hasAttribute("href")) return;
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
      return; // let the browser open it in a new tab or window
    }
    event.preventDefault();
    pendingFocus = link.dataset.step || "page";
    setParam("page", link.dataset.page === "1" ? "" : link.dataset.page);
    lastTyped = null;
    writeHistory("push");
    load();
  });

  window.addEventListener("popstate", () => {
    clearTimeout(typingTimer);
    lastTyped = null;
    state = readLocation();
    syncControls();
    load();
  });

  // ---- loading ----------------------------------------------------------------------------

  function apiParams() {
    const params = new URLSearchParams(state);
    if (!params.has("page")) params.set("page", "1"); // page numbers, and num_pages
    return params;
  }

  async function load() {
    if (controller) controller.abort(); // the answer to an older query is of no use now
    controller = new AbortController();
    const { signal } = controller;
    let params = apiParams();
    let url = `${API_URL}?${params}`;
    const preload = document.getElementById("first-page");
    if (preload) {
      // The server named the same query in a preload: request that exact URL to reuse it.
      preload.remove();
      url = preload.getAttribute("href");
      params = new URL(url, location.href).searchParams;
    }
    root.dataset.state = "loading";
    table.setAttribute("aria-busy", "true");
    let response;
    let body = null;
    try {
      // Same mode and credentials as the preload (crossorigin="anonymous"), no extra headers.
      response = await fetch(url, { signal, credentials: "same-origin" });
      body = await response.json().catch(() => null);
    } catch (error) {
      if (signal.aborted) return;
      finish(params, "error");
      showFailure("The contacts could not be loaded: the server did not answer. Try again.");
      return;
    }
    if (signal.aborted) return;
    if (response.ok && body && Array.isArray(body.results)) {
      const started = performance.now();
      render(body);
      root.dataset.renderMs = (performance.now() - started).toFixed(1); // response -> DOM
      finish(params, "ready");
    } else if (response.status === 401) {
      finish(params, "error");
      showFailure("Your session has ended.", { href: loginUrl(), text: "Sign in again" });
    } else if (body && Array.isArray(body.errors)) {
      showErrors(body.errors);
      finish(params, "error");
    } else {
      finish(params, "error");
      showFailure(`The contacts could not be loaded (HTTP ${response.status}). Try again.`);
    }
  }

  function finish(params, outcome) {
    table.removeAttribute("aria-busy");
    root.dataset.query = params.toString(); // what the table shows, for tests and debugging
    root.dataset.state = outcome;
    performance.mark("contacts-shown", { detail: outcome });
  }

  function loginUrl() {
    return `/accounts/login/?next=${encodeURIComponent(location.pathname + location.search)}`;
  }

  // ---- rendering --------------------------------------------------------------------------

  function render(body) {
    clearErrors();
    const fragment = document.createDocumentFragment();
    for (const contact of body.results) fragment.append(contactRow(contact));
    if (!body.results.length) {
      fragment.append(messageRow(hasQuery() ? "No contacts match the search and filters." : "There are no contacts yet."));
    }
    tbody.replaceChildren(fragment);
    updateExportLink();
    status.textContent = countText(body);
    caption.textContent = captionText();
    renderPager(body);
  }

  function updateExportLink() {
    // The same filters, search and ordering; paging does not apply to an export.
    const params = new URLSearchParams(state);
    for (const name of ["page", "page_size", "cursor", "count"]) params.delete(name);
    params.set("bom", "true"); // a UTF-8 BOM so that Excel reads the names correctly
    document.getElementById("export-csv").href = `/crm/appusers/export.csv?${params}`;
  }

  function contactRow(contact) {
    const row = rowTemplate.cloneNode(true);
    const cells = row.cells;
    const name = `${contact.first_name} ${contact.last_name}`.trim();
    const address = contact.address || {};
    const relationship = contact.relationship;
    cells[0].querySelector(".initials").textContent = initials(contact);
    const img = cells[0].querySelector("img");
    if (contact.avatar_url) img.src = contact.avatar_url;
    else img.remove();
    cells[1].textContent = name;
    cells[2].textContent = contact.customer_id;
    cells[3].textContent = contact.phone_number;
    cells[4].textContent = address.city ?? "";
    cells[5].textContent = address.country ?? "";
    if (countryNames.has(address.country)) cells[5].title = countryNames.get(address.country);
    cells[6].textContent = relationship ? integer.format(relationship.points) : "—";
    const time = cells[7].firstElementChild;
    if (relationship && relationship.last_activity) {
      time.dateTime = relationship.last_activity;
      time.textContent = dateFormat.format(new Date(relationship.last_activity));
    } else {
      time.replaceWith("—");
    }
    return row;
  }

  function initials(contact) {
    const first = [...(contact.first_name || "").trim()][0] || "";
    const last = [...(contact.last_name || "").trim()][0] || "";
    return (first + last).toUpperCase();
  }

  function messageRow(text) {
    const row = document.createElement("tr");
    row.className = "message";
    const cell = row.insertCell();
    cell.colSpan = COLUMNS;
    cell.textContent = text;
    return row;
  }

  function hasQuery() {
    return [...state.keys()].some((name) => name === "search" || !NON_FILTER_PARAMS.has(name));
  }

  function plural(n, word) {
    return `${word}${n === 1 ? "" : "s"}`;
  }

  function countText(body) {
    if (body.count === 0) return "No contacts found";
    if (!body.count_exact) return `${approximately(body.count)} contacts`;
    return `${integer.format(body.count)} ${plural(body.count, "contact")}`;
  }

  function captionText() {
    const th = sortHeaders.find((header) => header.hasAttribute("aria-sort"));
    if (!th) return "Contacts";
    return `Contacts, sorted by ${th.textContent.trim()}, ${th.getAttribute("aria-sort")}`;
  }

  function pageHref(number) {
    const params = new URLSearchParams(state);
    if (number === 1) params.delete("page");
    else params.set("page", String(number));
    params.sort();
    return dashboardUrl(params);
  }

  function setStep(link, number, enabled) {
    if (enabled) {
      link.href = pageHref(number);
      link.dataset.page = String(number);
      link.removeAttribute("aria-disabled");
    } else {
      link.removeAttribute("href");
      delete link.dataset.page;
      link.setAttribute("aria-disabled", "true");
    }
  }

  function pageNumbers(current, last) {
    // 1 … c-2 c-1 c c+1 c+2 … last
    const numbers = [1];
    for (let n = Math.max(current - 2, 2); n <= Math.min(current + 2, last); n++) numbers.push(n);
    if (last > numbers[numbers.length - 1]) numbers.push(last);
    return numbers;
  }

  function renderPager(body) {
    const current = body.page || 1;
    const size = body.page_size;
    const hasNext = Boolean(body.next);
    // With an estimated count the last page is a guess: offer a few pages ahead, never "last".
    const ahead = hasNext ? Math.max(current + 1, Math.min(body.num_pages || 0, current + 2)) : current;
    const last = body.count_exact ? Math.max(body.num_pages || 1, 1) : ahead;
    const hadFocus = pager.contains(document.activeElement);

    setStep(prevLink, current - 1, current > 1);
    setStep(nextLink, current + 1, hasNext);

    const fragment = document.createDocumentFragment();
    let previous = 0;
    const numbers = body.count === 0 ? [] : pageNumbers(current, last);
    for (const n of numbers) {
      if (n - previous > 1) {
        const gap = document.createElement("li");
        gap.className = "gap";
        gap.textContent = "…";
        gap.setAttribute("aria-hidden", "true");
        fragment.append(gap);
      }
      const item = document.createElement("li");
      const link = document.createElement("a");
      link.textContent = integer.format(n);
      link.dataset.page = String(n);
      link.href = pageHref(n);
      link.setAttribute("aria-label", `Page ${n}`);
      if (n === current) link.setAttribute("aria-current", "page");
      item.append(link);
      fragment.append(item);
      previous = n;
    }
    pageList.replaceChildren(fragment);

    const first = body.results.length ? (current - 1) * size + 1 : 0;
    const to = first ? first + body.results.length - 1 : 0;
    const of = body.count_exact ? integer.format(body.count) : approximately(body.count);
    pageRange.textContent = first ? `Showing ${integer.format(first)}–${integer.format(to)} of ${of}` : "";

    if (pendingFocus || hadFocus) restorePagerFocus();
    if (pendingFocus && table.getBoundingClientRect().top < 0) table.scrollIntoView();
    pendingFocus = null;
  }

  function restorePagerFocus() {
    const step = pendingFocus === "prev" ? prevLink : pendingFocus === "next" ? nextLink : null;
    if (step && step.hasAttribute("href")) step.focus();
    else pageList.querySelector("[aria-current]")?.focus();
  }

  // ---- errors -----------------------------------------------------------------------------

  function controlFor(param) {
    return controls.find((control) => control.name === param) || null;
  }

  function fieldMessage(error) {
    // "relationship__points__gte expects an integer …" next to its field: "Expects an integer …"
    const prefix = `${error.param} `;
    if (!error.message.startsWith(prefix)) return error.message;
    const rest = error.message.slice(prefix.length);
    return rest.charAt(0).toUpperCase() + rest.slice(1);
  }

  function clearErrors() {
    generalError.hidden = true;
    generalError.replaceChildren();
    for (const control of controls) {
      control.removeAttribute("aria-invalid");
      const slot = document.getElementById(`error-${control.name}`);
      if (slot) {
        slot.hidden = true;
        slot.textContent = "";
      }
    }
  }

  function showErrors(errors) {
    clearErrors();
    const general = [];
    let fields = 0;
    for (const error of errors) {
      const control = controlFor(error.param);
      const slot = control && document.getElementById(`error-${control.name}`);
      if (slot) {
        control.setAttribute("aria-invalid", "true");
        const message = fieldMessage(error);
        slot.textContent = slot.textContent ? `${slot.textContent} ${message}` : message;
        slot.hidden = false;
        fields += 1;
      } else {
        general.push(error);
      }
    }
    if (general.length) {
      const list = document.createElement("ul");
      for (const error of general) {
        const item = document.createElement("li");
        item.textContent = error.message;
        if (error.param === "page") {
          item.append(" ");
          const link = document.createElement("a");
          link.href = pageHref(1);
          link.dataset.page = "1";
          link.textContent = "Go to the first page";
          link.addEventListener("click", (event) => {
            event.preventDefault();
            state.delete("page");
            writeHistory("push");
            load();
          });
          item.append(link);
        }
        list.append(item);
      }
      generalError.replaceChildren(list);
      generalError.hidden = false;
    }
    const text = fields
      ? `No results: ${fields === 1 ? "a field needs" : `${fields} fields need`} correcting.`
      : "No results: the request could not be answered.";
    tbody.replaceChildren(messageRow(text));
    status.textContent = text;
    pageList.replaceChildren();
    pageRange.textContent = "";
    setStep(prevLink, 0, false);
    setStep(nextLink, 0, false);
  }

  function showFailure(message, link) {
    clearErrors();
    const paragraph = document.createElement("p");
    paragraph.textContent = `${message} `;
    if (link) {
      const anchor = document.createElement("a");
      anchor.href = link.href;
      anchor.textContent = link.text;
      paragraph.append(anchor);
    }
    generalError.replaceChildren(paragraph);
    generalError.hidden = false;
    tbody.replaceChildren(messageRow("Contacts are not available right now."));
    status.textContent = message;
  }

  syncControls();
  load();
})();
