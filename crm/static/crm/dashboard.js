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
  const suggestions = document.getElementById("search-suggestions");
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
    const next = readLocation();
    // Opening or closing a contact changes only the #fragment: the table stays as it is.
    if (!sameView(next, state)) {
      clearTimeout(typingTimer);
      lastTyped = null;
      state = next;
      syncControls();
      load();
    }
    routeContact();
  });
  window.addEventListener("hashchange", () => routeContact()); // an edited address bar

  function sameView(a, b) {
    const [x, y] = [new URLSearchParams(a), new URLSearchParams(b)];
    x.sort();
    y.sort();
    return x.toString() === y.toString();
  }

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
    const here = location.pathname + location.search + location.hash;
    return `/accounts/login/?next=${encodeURIComponent(here)}`;
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
    markOpenRow();
    updateExportLink();
    status.textContent = countText(body);
    caption.textContent = captionText();
    renderSuggestions(body);
    renderPager(body);
  }

  // A search that found nothing shows the first search offered instead (body.fuzzy); one
  // that found very few offers others. Each offer is a button that searches it.
  function renderSuggestions(body) {
    const offers = body.suggestions ?? [];
    suggestions.hidden = !offers.length;
    if (!offers.length) return suggestions.replaceChildren();
    const parts = [];
    if (body.fuzzy) {
      parts.push(`No contacts match “${state.get("search")}”. Showing results for “${offers[0]}”.`);
    }
    const others = body.fuzzy ? offers.slice(1) : offers;
    if (others.length) {
      parts.push(`${parts.length ? " " : ""}Did you mean `);
      others.forEach((offer, n) => {
        if (n) parts.push(n === others.length - 1 ? " or " : ", ");
        const button = document.createElement("button");
        button.type = "button";
        button.className = "suggestion";
        button.textContent = offer;
        button.addEventListener("click", () => searchFor(offer));
        parts.push(button);
      });
      parts.push("?");
    }
    suggestions.replaceChildren(...parts);
  }

  function searchFor(text) {
    const search = document.getElementById("search");
    search.value = text;
    clearTimeout(typingTimer);
    lastTyped = null;
    applyControl(search, "push");
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
    row.dataset.id = String(contact.id);
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

  // ---- one contact: a dialog over the list ------------------------------------------------
  // A row (click, or Enter when it has the focus) or "New contact" opens the dialog; the
  // address bar names it as #contact=<id> or #contact=new beside the list's query, so it can
  // be shared and reloaded, and Back closes it. An edit or a delete sends the ETag of the
  // version the user saw (If-Match), so a change someone else made meanwhile is never
  // overwritten (a points change is an increment and needs none); after each write the table
  // is fetched again and shows the change at once.

  const dialog = document.getElementById("contact-dialog");
  const contactTemplate = document.getElementById("contact-template").content.firstElementChild;
  const newContactButton = document.getElementById("new-contact");
  const pageNotice = document.getElementById("page-notice");
  const EDITABLE = ["first_name", "last_name", "gender", "birthday", "customer_id", "phone_number",
    "address.street", "address.street_number", "address.city_code", "address.city", "address.country"];
  const genderNames = new Map(
    [...contactTemplate.querySelectorAll('select[name="gender"] option')].map((o) => [o.value, o.textContent]),
  );
  const fieldLabels = new Map(
    [...contactTemplate.querySelectorAll("label[for]")].map((label) => {
      const input = contactTemplate.querySelector(`#${CSS.escape(label.htmlFor)}`);
      return [input ? input.name : "", label.textContent.trim()];
    }),
  );
  const dateTimeFormat = new Intl.DateTimeFormat(LOCALE, { dateStyle: "medium", timeStyle: "short" });
  const signed = new Intl.NumberFormat(LOCALE, { signDisplay: "always" });

  // The open contact: { key: "new" or the id, contact: the row, etag, panel, controller,
  // opener: the element to focus afterwards, pushed: whether opening added a history entry }.
  let open = null;

  const contactUrl = (id) => `${API_URL}/${encodeURIComponent(id)}`;
  const listUrl = () => location.pathname + location.search;

  function contactInLocation() {
    return new URLSearchParams(location.hash.slice(1)).get("contact") || null;
  }

  function openContact(key, opener) {
    if (open && open.key === String(key)) return;
    history.pushState(null, "", `${listUrl()}#contact=${key}`);
    routeContact(opener, true);
  }

  // Show what the address bar names: no contact, a new one, or the contact with that id.
  function routeContact(opener = null, pushed = false) {
    const key = contactInLocation();
    if (open && open.key === key) return;
    if (open) dismiss();
    if (!key) return;
    const panel = contactTemplate.cloneNode(true);
    dialog.replaceChildren(panel);
    open = { key, contact: null, etag: null, panel, controller: new AbortController(),
      opener, pushed, busy: false }; // prettier-ignore
    wire(panel);
    if (!dialog.open) dialog.showModal();
    if (key === "new") {
      fillForm(null);
      setMode("new");
    } else if (/^[1-9][0-9]{0,18}$/.test(key)) {
      fetchContact();
    } else {
      showMissing();
    }
  }

  // The user closes the dialog: the address bar goes back to the list.
  function closeContact(focusTarget) {
    if (!open) return;
    const { pushed } = open;
    dismiss(focusTarget);
    if (!contactInLocation()) return;
    if (pushed) history.back(); // the entry before is the list itself
    else history.replaceState(null, "", listUrl());
  }

  // Close the dialog without touching the history (the address bar already moved on).
  function dismiss(focusTarget) {
    const session = open;
    open = null;
    session.controller.abort();
    if (dialog.open) dialog.close();
    dialog.replaceChildren();
    markOpenRow();
    const id = session.contact ? session.contact.id : null;
    const row = id != null ? tbody.querySelector(`tr[data-id="${id}"]`) : null;
    const opener = session.opener && session.opener.isConnected ? session.opener : null;
    (focusTarget || row || opener || table).focus();
  }

  dialog.addEventListener("close", () => {
    if (open && !dialog.open) closeContact(); // Escape
  });

  function markOpenRow() {
    for (const row of tbody.querySelectorAll("tr[aria-current]")) row.removeAttribute("aria-current");
    const id = open && open.contact ? String(open.contact.id) : null;
    const row = id ? tbody.querySelector(`tr[data-id="${id}"]`) : null;
    if (row) row.setAttribute("aria-current", "true");
  }

  tbody.addEventListener("click", (event) => {
    const row = event.target.closest("tr[data-id]");
    if (!row || event.button !== 0) return;
    const selection = window.getSelection();
    if (selection && !selection.isCollapsed && row.contains(selection.anchorNode)) return; // copying
    openContact(row.dataset.id, row);
  });

  tbody.addEventListener("keydown", (event) => {
    const row = event.target;
    if (!(row instanceof HTMLTableRowElement) || !row.dataset.id) return;
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      openContact(row.dataset.id, row);
    } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      const next = event.key === "ArrowDown" ? row.nextElementSibling : row.previousElementSibling;
      if (next && next.dataset.id) {
        event.preventDefault();
        next.focus();
      }
    }
  });

  newContactButton.addEventListener("click", () => openContact("new", newContactButton));

  // ---- the dialog's parts

  function part(name) {
    return open.panel.querySelector(`[data-slot="${name}"]`);
  }

  function wire(panel) {
    panel.addEventListener("click", (event) => {
      const button = event.target.closest("[data-action]");
      if (!button || !open) return;
      const action = button.dataset.action;
      if (action === "close") closeContact(); // also while a request is in flight: it aborts
      else if (open.busy) return;
      else if (action === "edit") startEditing();
      else if (action === "cancel-edit") cancelEditing();
      else if (action === "delete") askToDelete();
      else if (action === "cancel-delete") hideConfirm(true);
      else if (action === "confirm-delete") deleteContact();
      else if (action === "reload") reloadCurrentVersion();
    });
    panel.querySelector('[data-slot="edit-form"]').addEventListener("submit", saveContact);
    panel.querySelector('[data-slot="points-form"]').addEventListener("submit", changePoints);
  }

  function setMode(mode, focus = true) {
    const { panel } = open;
    panel.dataset.mode = mode; // loading, view, edit, new or missing
    part("view").hidden = mode !== "view";
    const form = part("edit-form");
    form.hidden = mode !== "edit" && mode !== "new";
    for (const element of form.querySelectorAll(".new-only")) element.hidden = mode !== "new";
    part("submit").textContent = mode === "new" ? "Create contact" : "Save changes";
    form.setAttribute("aria-label", mode === "new" ? "New contact" : "Edit contact");
    if (mode === "new") {
      part("avatar").hidden = true;
      setTitle("New contact", "");
    }
    hideConfirm(false);
    if (!focus) return;
    if (mode === "edit" || mode === "new") form.elements.first_name.focus();
    else panel.querySelector("#contact-title").focus();
  }

  function setTitle(title, subtitle) {
    open.panel.querySelector("#contact-title").textContent = title;
    part("subtitle").textContent = subtitle;
  }

  function fullName(contact) {
    return `${contact.first_name} ${contact.last_name}`.trim() || `Contact ${contact.id}`;
  }

  // fill: false keeps what the user has typed into the form (a refresh while editing).
  function showContact(contact, etag, { mode = "view", focus = true, fill = true } = {}) {
    open.key = String(contact.id);
    open.contact = contact;
    open.etag = etag;
    setTitle(fullName(contact), `Customer ${contact.customer_id}`);
    const avatar = part("avatar");
    avatar.hidden = false;
    avatar.querySelector(".initials").textContent = initials(contact);
    const img = avatar.querySelector("img");
    if (contact.avatar_url) img.src = contact.avatar_url;
    else img.removeAttribute("src");
    img.hidden = !contact.avatar_url;
    renderFacts(contact);
    if (fill) fillForm(contact);
    setMode(mode, focus);
    markOpenRow();
  }

  function renderFacts(contact) {
    const address = contact.address || {};
    const relationship = contact.relationship;
    const country = countryNames.has(address.country)
      ? `${countryNames.get(address.country)} (${address.country})`
      : address.country;
    const facts = {
      id: String(contact.id),
      customer_id: contact.customer_id,
      phone_number: contact.phone_number,
      gender: genderNames.get(contact.gender) || contact.gender,
      birthday: contact.birthday ? dateFormat.format(new Date(`${contact.birthday}T00:00:00Z`)) : "Not given",
      address: [`${address.street} ${address.street_number}`, `${address.city_code} ${address.city}`, country]
        .join("\n"),
      points: relationship ? integer.format(relationship.points) : "No loyalty account",
      last_activity: timestamp(relationship && relationship.last_activity),
      member_since: timestamp(relationship && relationship.created),
      created: timestamp(contact.created),
      last_updated: timestamp(contact.last_updated),
    };
    for (const [name, text] of Object.entries(facts)) {
      open.panel.querySelector(`[data-show="${name}"]`).textContent = text;
    }
  }

  function timestamp(value) {
    return value ? dateTimeFormat.format(new Date(value)) : "—";
  }

  function showMissing() {
    open.contact = null;
    open.panel.dataset.mode = "missing";
    part("view").hidden = true;
    part("edit-form").hidden = true;
    part("avatar").hidden = true;
    setTitle("Contact not found", "");
    showAlert(["There is no such contact: it may have been deleted."]);
    open.panel.querySelector("#contact-title").focus();
    load(); // the table may still show it
  }

  // ---- the form

  function valueAt(contact, name) {
    const [first, second] = name.split(".");
    const value = second ? (contact[first] || {})[second] : contact[first];
    return value == null ? "" : String(value);
  }

  // What the API gets for a field's text: trimmed, a country code in capitals, no birthday as null.
  function clean(name, text) {
    const value = text.trim();
    if (name === "address.country") return value.toUpperCase();
    if (name === "birthday") return value || null;
    return value;
  }

  // A whole number as a number; anything else as typed, for the API to explain what it expects.
  function integerOrText(text) {
    return /^[+-]?[0-9]{1,10}$/.test(text) ? Number(text) : text;
  }

  function fillForm(contact) {
    const form = part("edit-form");
    for (const name of EDITABLE) {
      form.elements.namedItem(name).value = contact ? valueAt(contact, name) : name === "gender" ? "U" : "";
    }
    form.elements.namedItem("relationship.points").value = "";
  }

  function formBody(form, base) {
    const body = {};
    for (const name of EDITABLE) {
      const value = clean(name, form.elements.namedItem(name).value);
      if (base && value === clean(name, valueAt(base, name))) continue; // a PATCH sends changes only
      const [first, second] = name.split(".");
      if (second) (body[first] ||= {})[second] = value;
      else body[first] = value;
    }
    return body;
  }

  function startEditing() {
    clearMessages();
    fillForm(open.contact);
    setMode("edit");
  }

  function cancelEditing() {
    clearMessages();
    if (!open.contact) return closeContact();
    fillForm(open.contact);
    setMode("view");
    open.panel.querySelector('[data-action="edit"]').focus();
  }

  async function saveContact(event) {
    event.preventDefault();
    if (!open || open.busy) return;
    const form = event.currentTarget;
    clearMessages();
    if (!open.contact) return createContact(form);
    const changes = formBody(form, open.contact);
    if (!Object.keys(changes).length) {
      setMode("view");
      notify("Nothing to save: no field was changed.");
      return;
    }
    const session = open;
    const result = await send("PATCH", contactUrl(open.contact.id), changes, open.etag);
    if (session !== open || result.aborted) return;
    if (result.ok) {
      showContact(result.body, result.etag);
      notify("Saved.");
      load();
    } else if (result.status === 412) {
      showConflict("Your changes were not saved: load the current version, then make them again.");
    } else if (result.status === 404) {
      showMissing();
    } else {
      showContactErrors(form, result);
    }
  }

  async function createContact(form) {
    const body = formBody(form, null);
    const points = form.elements.namedItem("relationship.points").value.trim();
    if (points) body.relationship = { points: integerOrText(points) };
    const session = open;
    const result = await send("POST", API_URL, body);
    if (session !== open || result.aborted) return;
    if (result.status === 201 && result.body) {
      history.replaceState(null, "", `${listUrl()}#contact=${result.body.id}`);
      showContact(result.body, result.etag);
      notify("Contact created.");
      load();
    } else {
      showContactErrors(form, result);
    }
  }

  // ---- points

  async function changePoints(event) {
    event.preventDefault();
    if (!open || open.busy || !open.contact) return;
    const form = event.currentTarget;
    clearMessages();
    const delta = integerOrText(form.elements.delta.value.trim());
    const reason = form.elements.reason.value.trim();
    const session = open;
    const result = await send("POST", `${contactUrl(open.contact.id)}/points`, { delta, reason });
    if (session !== open || result.aborted) return;
    if (result.ok && result.body) {
      form.reset();
      open.panel.querySelector('[data-show="points"]').textContent = integer.format(result.body.points);
      notify(`Points changed by ${signed.format(result.body.delta)}: the balance is now ${integer.format(result.body.points)}.`);
      load();
      refreshContact(); // the last activity, and the version the next edit is based on
    } else if (result.status === 404) {
      showMissing();
    } else {
      showContactErrors(form, result);
    }
  }

  // ---- delete

  function askToDelete() {
    clearMessages();
    const confirm = part("confirm");
    confirm.querySelector("p").textContent =
      `Delete ${fullName(open.contact)} with their address and points history? This cannot be undone.`;
    confirm.hidden = false;
    confirm.querySelector('[data-action="cancel-delete"]').focus();
  }

  function hideConfirm(focus) {
    part("confirm").hidden = true;
    if (focus) open.panel.querySelector('[data-action="delete"]').focus();
  }

  async function deleteContact() {
    const session = open;
    const name = fullName(open.contact);
    const result = await send("DELETE", contactUrl(open.contact.id), undefined, open.etag);
    if (session !== open || result.aborted) return;
    if (result.ok || result.status === 404) {
      closeContact(table);
      pageNotice.textContent = result.ok ? `Deleted ${name}.` : `${name} had already been deleted.`;
      load();
    } else if (result.status === 412) {
      hideConfirm(false);
      showConflict("It was not deleted: check the current version first.");
    } else {
      hideConfirm(false);
      showContactErrors(null, result);
    }
  }

  // ---- versions

  async function fetchContact() {
    const session = open;
    const result = await send("GET", contactUrl(open.key));
    if (session !== open || result.aborted) return null;
    if (result.ok && result.body) showContact(result.body, result.etag);
    else if (result.status === 404) showMissing();
    else showContactErrors(null, result);
    return result.ok ? result.body : null;
  }

  async function refreshContact() {
    const session = open;
    const result = await send("GET", contactUrl(open.contact.id));
    if (session !== open || result.aborted) return;
    if (result.ok && result.body) {
      const mode = open.panel.dataset.mode;
      showContact(result.body, result.etag, { mode, focus: false, fill: mode !== "edit" });
    }
    else if (result.status === 404) showMissing();
  }

  function showConflict(outcome) {
    const paragraph = document.createElement("p");
    paragraph.textContent = `This contact was changed by someone else since you opened it. ${outcome}`;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "secondary";
    button.dataset.action = "reload";
    button.textContent = "Load the current version";
    open.panel.dataset.conflict = "true";
    showAlert([paragraph, button]);
    button.focus();
  }

  async function reloadCurrentVersion() {
    const before = open.contact;
    const mode = open.panel.dataset.mode;
    const session = open;
    const result = await send("GET", contactUrl(before.id));
    if (session !== open || result.aborted) return;
    if (!result.ok || !result.body) return result.status === 404 ? showMissing() : showContactErrors(null, result);
    clearMessages();
    showContact(result.body, result.etag, { mode: mode === "edit" ? "edit" : "view" });
    const changed = [...EDITABLE, "points"].filter((name) =>
      name === "points"
        ? (before.relationship || {}).points !== (result.body.relationship || {}).points
        : valueAt(before, name) !== valueAt(result.body, name),
    );
    const labels = changed.map((name) => (fieldLabels.get(name) || name).toLowerCase());
    notify(labels.length
      ? `Loaded the current version. Changed meanwhile: ${labels.join(", ")}.`
      : "Loaded the current version.");
    load();
  }

  // ---- requests and messages

  function csrfToken() {
    const input = document.querySelector('input[name="csrfmiddlewaretoken"]');
    if (input) return input.value;
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  // One request of the open contact: { ok, status, body, etag, aborted }. Closing the dialog
  // aborts it.
  async function send(method, url, body, ifMatch) {
    const session = open;
    const headers = { Accept: "application/json" };
    if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (ifMatch) headers["If-Match"] = ifMatch;
    session.busy = true;
    session.panel.setAttribute("aria-busy", "true");
    try {
      const response = await fetch(url, {
        method, headers, credentials: "same-origin", cache: "no-cache", signal: session.controller.signal,
        body: body === undefined ? undefined : JSON.stringify(body),
      }); // prettier-ignore
      const data = response.status === 204 ? null : await response.json().catch(() => null);
      return { ok: response.ok, status: response.status, body: data, etag: response.headers.get("ETag") };
    } catch {
      return { ok: false, status: 0, body: null, etag: null, aborted: session.controller.signal.aborted };
    } finally {
      session.busy = false;
      session.panel.removeAttribute("aria-busy");
    }
  }

  function notify(text) {
    part("notice").textContent = text;
  }

  function showAlert(items) {
    const alert = part("alert");
    const nodes = items.map((item) => {
      if (typeof item !== "string") return item;
      const paragraph = document.createElement("p");
      paragraph.textContent = item;
      return paragraph;
    });
    alert.replaceChildren(...nodes);
    alert.hidden = false;
  }

  function clearMessages() {
    if (!open) return;
    const alert = part("alert");
    alert.hidden = true;
    alert.replaceChildren();
    delete open.panel.dataset.conflict;
    notify("");
    pageNotice.textContent = "";
    for (const input of open.panel.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
    for (const slot of open.panel.querySelectorAll(".field-error")) {
      slot.hidden = true;
      slot.textContent = "";
    }
  }

  // A 400's errors next to their fields ("address.country" → the country input), the others
  // at the top; a failure without an errors body as one message.
  function showContactErrors(form, result) {
    const errors = result.body && Array.isArray(result.body.errors) ? result.body.errors : null;
    if (!errors) return showAlert([failureMessage(result)]);
    const general = [];
    let first = null;
    for (const error of errors) {
      const input = form && form.elements.namedItem(error.param);
      const slot = input && open.panel.querySelector(`#${CSS.escape(`ce-${error.param}`)}`);
      if (!slot) {
        general.push(error.message);
        continue;
      }
      input.setAttribute("aria-invalid", "true");
      const message = contactFieldMessage(error);
      slot.textContent = slot.textContent ? `${slot.textContent} ${message}` : message;
      slot.hidden = false;
      first ||= input;
    }
    if (general.length) showAlert(general);
    if (first) {
      const fields = errors.length - general.length;
      notify(`Not saved: ${fields === 1 ? "a field needs" : `${fields} fields need`} correcting.`);
      first.focus();
    }
  }

  function contactFieldMessage(error) {
    // "delta -50 would make the balance of 7 negative" → "Changing by -50 would make …"
    const message = fieldMessage(error);
    return /^[-+0-9]/.test(message) ? `Changing by ${message}` : message;
  }

  function failureMessage(result) {
    if (result.status === 0) return "The server did not answer. Check the connection and try again.";
    if (result.status === 401) return "Your session has ended: reload the page and sign in again.";
    if (result.status === 403) return "The server refused the request (HTTP 403): reload the page and try again.";
    return `The request failed (HTTP ${result.status}). Try again.`;
  }

  syncControls();
  load();
  routeContact();
})();
